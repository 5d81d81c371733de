/// @file gating.hpp
/// What gating code (britney) needs: Debian version comparison, the results
/// cache and pending-tests files (SPEC.md section 9), collecting a package's
/// results from a store, and sinks that send test requests.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "autopkgtest_cloud/request.hpp"
#include "autopkgtest_cloud/store.hpp"

namespace apcloud {

/// Compares two Debian versions exactly like `dpkg --compare-versions`:
/// -1 when a < b, 0 when equal, 1 when a > b.
int version_compare(std::string_view a, std::string_view b);

/// One results-cache entry: `[STATUS, version, run_id, seen_epoch]`.
struct CacheEntry {
    std::string status;     ///< "PASS", "NEUTRAL" or "FAIL" (britney_status)
    std::string version;    ///< tested version
    std::string run_id;     ///< run id of the result
    std::int64_t seen = 0;  ///< the run's start: the time in its run id (unix seconds)
};

/// britney's results cache: `{trigger: {src: {arch: [STATUS, version,
/// run_id, seen_epoch]}}}`.
class ResultsCache {
public:
    /// Reads the cache; a missing file gives an empty cache. Throws ParseError
    /// naming `path` when the file is not a valid cache.
    static ResultsCache load(const std::string& path);
    /// Writes the cache atomically (`path.new`, fsync, rename). Throws Error
    /// naming the path on I/O errors.
    void save(const std::string& path) const;
    /// Records a result, as britney does: a PASS is never replaced by a
    /// non-PASS, except (in `reference_mode`) the entry of trigger
    /// `migration-reference/0`, which follows the newest reference run; a
    /// PASS replaces any non-PASS and an older PASS; a non-PASS replaces a
    /// non-PASS when its run id is newer. Returns true when stored.
    bool add(const std::string& trigger, const std::string& package, const std::string& arch,
             const CacheEntry& entry, bool reference_mode = false);
    /// The entry for trigger/package/arch, if any.
    std::optional<CacheEntry> get(const std::string& trigger, const std::string& package,
                                  const std::string& arch) const;
    /// The newest run id recorded for package/arch over all triggers.
    std::optional<std::string> latest_run_id(const std::string& package, const std::string& arch) const;
    /// Every entry for package/arch, as (trigger, entry) pairs in trigger order.
    std::vector<std::pair<std::string, CacheEntry>> entries_for(const std::string& package,
                                                                const std::string& arch) const;

private:
    std::map<std::string, std::map<std::string, std::map<std::string, CacheEntry>>> entries_;
};

/// britney's pending tests: `{trigger: {src: [arches]}}`.
class PendingTests {
public:
    /// Reads the file; a missing file gives no pending tests. Throws
    /// ParseError naming `path` when the file is malformed.
    static PendingTests load(const std::string& path);
    /// Writes the file atomically (`path.new`, fsync, rename).
    void save(const std::string& path) const;
    /// Marks trigger/src/arch as pending.
    void add(const std::string& trigger, const std::string& src, const std::string& arch);
    /// Removes trigger/src/arch, pruning empty sources and triggers; false
    /// when it was not pending.
    bool remove(const std::string& trigger, const std::string& src, const std::string& arch);
    /// True when trigger/src/arch is pending.
    bool contains(const std::string& trigger, const std::string& src, const std::string& arch) const;

private:
    std::map<std::string, std::map<std::string, std::set<std::string>>> pending_;
};

/// One run's result as gating code sees it.
struct GatingResult {
    std::string run_id;                                ///< the run's directory name
    int exitcode = 0;                                  ///< autopkgtest's exit code
    std::string outcome;                               ///< outcome_name of the exit code
    std::optional<std::string> version;                ///< tested version
    std::optional<std::vector<std::string>> triggers;  ///< ADT_TEST_TRIGGERS; absent: ignore the run
    std::optional<std::uint64_t> duration;             ///< seconds
};

/// The cache entry of a result, as britney makes it: britney_status of the
/// exit code, the tested version, the run id, and as `seen` the time in the
/// run id (0 when it does not parse). A result without a version gets
/// "unknown" when reports_unknown_version(exitcode) (britney repairs those);
/// any other result without one is damaged: nullopt (britney ignores it, and
/// its test stays pending: a tmpfail never turns into a FAIL this way).
std::optional<CacheEntry> cache_entry(const GatingResult& result);

/// Feeds collected results of `package` on `arch` into britney's state, by
/// britney's rules: a damaged result (see cache_entry) is ignored and leaves
/// its triggers pending; otherwise each result counts for each of its
/// triggers (a result without triggers, or a trigger without '/', counts for
/// none); a result of `package` for a trigger naming `package` itself at a
/// newer version than the one tested is ignored for that trigger (the run
/// tested an older upload); ResultsCache::add keeps a PASS from being
/// overwritten (see there for `reference_mode`). Every trigger of a counted
/// result is removed from `pending` (when given), so a test whose result was
/// ignored for an older version is neither pending nor cached and gets
/// requested again. Returns the number of cache entries stored.
std::size_t record_results(ResultsCache& cache, PendingTests* pending, const std::string& package,
                           const std::string& arch, const std::vector<GatingResult>& results,
                           bool reference_mode = false);

/// What collect_results found.
struct CollectedResults {
    std::vector<GatingResult> results;  ///< in run-id order
    std::size_t missing = 0;            ///< runs without result.tar (upload in progress, or abandoned)
    std::size_t corrupt = 0;            ///< runs whose result.tar could not be parsed
    std::size_t held_back = 0;          ///< complete runs not returned because an earlier one is in progress
};

/// How long after its newest object was written a run without result.tar
/// counts as an upload in progress (the worker uploads result.tar last)
/// rather than one abandoned by a worker that died (its request runs again
/// under a new run id).
inline constexpr std::int64_t upload_grace_seconds = 600;

/// Lists the runs of `package` in `container` (prefix package_prefix,
/// delimiter '@', runs strictly after `after_run_id` when given), fetches
/// their result.tar files and parses them. Runs with a corrupt result.tar or
/// one naming another package, and runs without one whose objects were all
/// written more than upload_grace_seconds before `now`, are skipped and
/// counted. A run without result.tar with a more recent object is still
/// being stored (however long ago the test started): results stop before it
/// (later ones are counted as held back), so a caller whose next marker is its
/// newest result never skips a run whose result has not arrived yet. `now`
/// defaults to the current time.
CollectedResults collect_results(Store& store, const std::string& container, const std::string& release,
                                 const std::string& arch, const std::string& package,
                                 const std::optional<std::string>& after_run_id = std::nullopt,
                                 std::optional<std::int64_t> now = std::nullopt);

/// Verifies a downloaded results database (SPEC.md section 6) against its
/// checksum file: `sha256_path` holds the SHA-256 of the database as 64 hex
/// digits, optionally followed by whitespace and a file name (`sha256sum`
/// output). Throws ParseError naming the file when the checksum file is
/// malformed, and IntegrityError naming both digests when they differ.
void verify_results_db(const std::string& db_path, const std::string& sha256_path);

/// The results of `package` on release/arch in a results database
/// (autopkgtest-web's `autopkgtest.db`, SPEC.md section 6), in run-id order,
/// only those with `run_id > after_run_id` when given: the query britney
/// runs. The triggers column is split on spaces; a NULL or blank one gives a
/// result without triggers (nullopt). Opens the file read-only and never modifies it. When
/// `sha256_path` is given the file is verified first (verify_results_db).
/// Throws NotFound when the file does not exist, ParseError naming the file
/// when it is not such a database.
CollectedResults collect_db_results(const std::string& db_path, const std::string& release,
                                    const std::string& arch, const std::string& package,
                                    const std::optional<std::string>& after_run_id = std::nullopt,
                                    const std::optional<std::string>& sha256_path = std::nullopt);

/// Downloads a results database and its checksum (`url` and `url + ".sha256"`,
/// http(s):// or file://) to `path`: both are fetched into `path.new`,
/// verified, fsynced and renamed over `path`, so `path` is always a whole,
/// verified database. HTTP timeouts, connection errors and 5xx answers are
/// retried `retries` times with exponential backoff from `backoff` seconds.
/// Throws IntegrityError when the checksum does not match (the old `path`
/// stays), NotFound for a 404, HttpError for other failures.
void download_results_db(const std::string& url, const std::string& path, int retries = 4,
                         double backoff = 1.0);

/// Where people look at and act on one result.
struct ResultLinks {
    std::string log;        ///< the run's log.gz in the store (empty without a run id)
    std::string artifacts;  ///< the run's artifacts.tar.gz (empty without a run id)
    std::string history;    ///< the package's results page: `<web>/packages/<pkg>/<release>/<arch>`
    std::string retry;      ///< the request URL that runs the test again (same triggers and ppas)
};

/// The links britney shows for a result. `store_url` is the public storage URL
/// (`https://host/v1/AUTH_x`) or a `file://` store; `web_url` is the web
/// service's base URL (e.g. `https://autopkgtest.example.org`). Path segments
/// and query values are percent-encoded; trailing slashes of the bases are
/// ignored.
ResultLinks result_links(const std::string& store_url, const std::string& web_url,
                         const std::string& container, const std::string& release, const std::string& arch,
                         const std::string& package, const std::string& run_id,
                         const std::vector<std::string>& triggers, const std::vector<std::string>& ppas = {});

/// Where gating code sends test requests.
class RequestSink {
public:
    virtual ~RequestSink();
    /// Validates and sends `request` for release/arch, with `submit-time` set
    /// to now (UTC) unless the request has one; returns the queue name.
    virtual std::string send(const TestRequest& request, const std::string& release, const std::string& arch,
                             bool huge = false) = 0;
};

/// Formats a file-sink line (no newline): `<queue>:<src> <json>`, or
/// `<queue>:<src>` when the request has no parameters.
std::string sink_line(const std::string& queue, const TestRequest& request);

/// Opens a sink: `amqp://...` and `sqlite://...` publish through open_broker;
/// `file:///path` appends one sink_line per request to the file. Throws
/// ConfigError naming the URL otherwise. A broker sink publishing to a queue
/// that does not exist throws NotFound, unless `declare_queues` is set: then
/// it declares each queue before publishing to it. Requests are validated
/// with `options` (e.g. allow_local_sources for a one-machine site whose
/// workers accept local source trees).
std::unique_ptr<RequestSink> open_sink(const std::string& url, bool declare_queues = false,
                                       const ValidationOptions& options = {});

/// britney's verdict on one trigger/package/arch.
enum class Verdict {
    pass,
    neutral,
    fail,
    regression,
    always_fail,
    running,
    running_always_fail,
    running_reference
};

/// britney's name of a verdict: "PASS", "NEUTRAL", "FAIL", "REGRESSION", "ALWAYSFAIL", "RUNNING",
/// "RUNNING-ALWAYSFAIL", "RUNNING-REFERENCE".
std::string_view verdict_name(Verdict v) noexcept;

/// britney's verdict for `package` on `arch` triggered by `trigger`, exactly as britney's
/// `pkg_test_result` gives it (SPEC.md section 9). The baseline (`result_in_baseline`) is, in
/// reference mode, the entry of trigger "migration-reference/0" (NONE when absent); otherwise the
/// first non-FAIL status over all triggers, a PASS winning, else FAIL (also with no entries).
/// - A PASS or NEUTRAL result for the trigger is PASS or NEUTRAL.
/// - A failed result is ALWAYSFAIL when the baseline is FAIL. Otherwise it is REGRESSION when some
///   result of package/arch, for any trigger, PASSed at a version <= `version`
///   (`check_ever_passed_before`; NEUTRAL never counts, nor a PASS at a higher version), else
///   ALWAYSFAIL. `version` is the version under test; default: the failed result's version.
/// - In reference mode with no reference result (NONE), a failure is RUNNING-REFERENCE when
///   `test_in_target` (britney then requests the reference run), else decided as above.
/// - Without a result: when `pending`, RUNNING-ALWAYSFAIL if the baseline is FAIL, else RUNNING;
///   when not pending, RUNNING (not yet run: britney requests it).
/// Never returns Verdict::fail.
Verdict decide(const ResultsCache& cache, const std::string& trigger, const std::string& package,
               const std::string& arch, bool pending, bool reference_mode = false,
               const std::optional<std::string>& version = std::nullopt, bool test_in_target = true);

}  // namespace apcloud
