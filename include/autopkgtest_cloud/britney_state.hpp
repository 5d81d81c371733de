/// @file britney_state.hpp
/// britney's state (SPEC.md section 9): Debian version comparison, the
/// results cache and pending-tests files in britney's formats, and the rules
/// that feed collected results into them.
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
std::size_t record_results(ResultsCache& cache, const std::string& package, const std::string& arch,
                           const std::vector<GatingResult>& results, PendingTests* pending = nullptr,
                           bool reference_mode = false);

}  // namespace apcloud
