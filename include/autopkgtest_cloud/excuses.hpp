/// @file excuses.hpp
/// Retrying the autopkgtest results britney reports (SPEC.md section 8,
/// retry-autopkgtest-regressions): britney's excuses.yaml read, the tests
/// to run again chosen by the tool's filters, and each written as a
/// request.cgi URL (SPEC.md section 7) or as a TestRequest. Pure: the text
/// comes in, and the logs that `--log-regex` searches are fetched by the
/// caller (retries.hpp).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "autopkgtest_cloud/credentials.hpp"
#include "autopkgtest_cloud/request.hpp"

namespace apcloud {

/// One result of an excuse's autopkgtest policy, as britney2-ubuntu writes
/// it: `policy_info.autopkgtest.<src>[/<version>].<arch>:
/// [state, log, history, artifacts, retry]`.
struct ExcuseTest {
    std::string package;                       ///< the tested source package
    std::optional<std::string> version;        ///< its version; none while it runs on every arch
    std::string arch;                          ///< architecture
    std::string state;                         ///< REGRESSION, RUNNING, ALWAYSFAIL, PASS, ...
    std::optional<std::string> log_url;        ///< the run's log.gz; the running page while pending
    std::optional<std::string> history_url;    ///< the package's history page (not in PPA mode)
    std::optional<std::string> artifacts_url;  ///< artifacts.tar.gz (PPA mode only)
    std::optional<std::string> retry_url;      ///< britney's own retry link (REGRESSION only)

    /// True when britney points at a stored result: a log URL ending in
    /// `/log.gz` (a pending test has none, or the running page).
    bool has_log() const;
};

/// One excuse: an item britney considers for migration.
struct Excuse {
    std::string item_name;          ///< `src`, `-src` (a removal), `src/arch` (binaries only), `src_suite`
    std::string source;             ///< the source package
    std::string new_version;        ///< `-` for a removal
    std::string old_version;        ///< `-` for a new package
    std::optional<double> age;      ///< `policy_info.age.current-age`, days, as of `generated-date`
    std::vector<ExcuseTest> tests;  ///< sorted by package, then arch

    /// True for an item that removes a package (`-src`).
    bool is_removal() const;
};

/// What the tool needs of excuses.yaml.
struct Excuses {
    std::string generated_date;   ///< as britney wrote it; empty when absent
    std::vector<Excuse> excuses;  ///< in the file's order
};

/// Largest excuses.yaml accepted, after decompression (1 GiB).
inline constexpr std::size_t max_excuses_bytes = std::size_t(1) << 30;

/// Parses britney's excuses.yaml: plain, or compressed with gzip or xz
/// (recognised by their magic bytes, as Ubuntu publishes
/// `update_excuses.yaml.xz`). Fields the tool does not use are not kept, and
/// the file is read one excuse at a time, so a large file costs the memory of
/// its text. Throws ParseError: for bad YAML with its line and column; for a
/// document without a `sources` list; naming the excuse and field for a
/// value of the wrong shape (e.g. a result that is not a list).
Excuses parse_excuses(std::string_view data);

/// The series the excuses are about, read from the links britney wrote (the
/// `release` of its request.cgi links, else the series in its history
/// links): nullopt when they name none, or more than one.
std::optional<std::string> excuses_series(const Excuses& excuses);

/// Every state britney's autopkgtest policy reports, for `--state`.
const std::vector<std::string>& autopkgtest_states();

/// The filters and additions of retry-autopkgtest-regressions (SPEC.md 8).
struct RetryOptions {
    std::string release;                            ///< the series to request the tests in (required)
    std::vector<std::string> states{"REGRESSION"};  ///< results in these states are retried
    std::optional<double> min_age;                  ///< only items at least this many days old
    std::optional<double> max_age;                  ///< only items at most this many days old
    std::optional<std::string> blocks;      ///< only the excuse of this item (its source or item name)
    std::optional<std::string> blocked_by;  ///< only results of this tested package
    bool only_unknown = false;              ///< only results without a stored log (ExcuseTest::has_log)
    std::vector<std::string> add_triggers;  ///< `src/version` added to every request's triggers
    std::vector<std::string> ppas;          ///< `lpuser/ppa` for every request (default: britney's)
    bool all_proposed = false;              ///< `all-proposed=1`
};

/// Checks the options: release set, states known, triggers and PPAs valid
/// (request.hpp's rules), ages not negative and min <= max. Throws
/// ValidationError naming the option.
void validate(const RetryOptions& options);

/// One test to run again.
struct RetryRequest {
    std::string release;                 ///< series
    std::string arch;                    ///< architecture
    std::string package;                 ///< the tested source package
    std::vector<std::string> triggers;   ///< the excuse's item (`source/new-version`) first, then additions
    std::vector<std::string> ppas;       ///< `lpuser/ppa`
    bool all_proposed = false;           ///< use all of -proposed
    std::optional<std::string> log_url;  ///< the log of the result retried (for `--log-regex`)
    std::string item;                    ///< the excuse's item name (for messages)

    /// The request as the queue and the request API know it.
    TestRequest test_request() const;
};

/// The tests to run again: for every excuse (in the file's order) that is not
/// a removal and passes the age and `blocks` filters, every result (by
/// package, then arch) in one of `states` that passes `blocked_by` and
/// `only_unknown`. Triggers are the excuse's `source/new-version` (never its
/// item name, which may carry `/arch` or `_suite`) and `add_triggers`; PPAs
/// are `options.ppas`, or else those of britney's retry link (a britney
/// testing a PPA writes them there). An excuse without an age passes the age
/// filters (as in the reference tool). Identical requests are given once.
/// Validates the options (validate()) and each request (ValidationError
/// naming the excuse for a bad value in the file).
std::vector<RetryRequest> select_retries(const Excuses& excuses, const RetryOptions& options);

/// The request.cgi URL that asks for `request` (SPEC.md 7):
/// `<web_url>/request.cgi?release=R&arch=A&package=P&trigger=T...&ppa=P...[&all-proposed=1]`,
/// every value percent-encoded (RFC 3986 unreserved characters kept, so
/// `/` is `%2F`, `+` is `%2B`, `~` stays), trailing slashes of `web_url` ignored.
std::string request_cgi_url(std::string_view web_url, const RetryRequest& request);

/// The web service's base URL when none is configured (`apcloud up`'s).
inline constexpr std::string_view default_web_url = "http://127.0.0.1:8080";

/// The web service to send requests to: `given` (`--url`), else
/// `$APCLOUD_WEB_URL`, else default_web_url. Throws ValidationError("--url")
/// for one that is not http(s)://.
std::string resolve_web_url(const std::string& given, const Environment& environment);

/// Where to read the excuses from: `given` (a file, URL or `-`), else
/// $APCLOUD_EXCUSES_URL; "" when neither says (the tool's usage error).
std::string resolve_excuses_source(const std::string& given, const Environment& environment);

/// The series to retry in: `given` (`--series`), else the one the excuses
/// name (excuses_series), else `$APCLOUD_SERIES`; ValidationError("--series")
/// when none is known.
std::string resolve_series(const std::string& given, const Excuses& excuses, const Environment& environment);

/// A `--log-regex`: an ECMAScript regular expression (std::regex) searched
/// in each line of a log, as grep does (a line-by-line search keeps the
/// regex engine's recursion bounded by a line, not by the log).
class LogRegex {
public:
    /// Throws ValidationError("--log-regex", pattern, why) for a bad pattern.
    explicit LogRegex(const std::string& pattern);
    ~LogRegex();
    LogRegex(LogRegex&&) noexcept;
    LogRegex& operator=(LogRegex&&) noexcept;

    /// True when some line of `log` matches. Lines longer than 8 kB are
    /// searched in 8 kB pieces (a match across two pieces is missed).
    bool matches(std::string_view log) const;
    /// The pattern as given.
    const std::string& pattern() const noexcept { return pattern_; }

private:
    struct Impl;
    std::string pattern_;
    std::unique_ptr<Impl> impl_;
};

}  // namespace apcloud
