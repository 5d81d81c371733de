/// @file verdicts.hpp
/// britney's verdicts (pkg_test_result, SPEC.md section 9) and the links
/// shown with a result.
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

#include "autopkgtest_cloud/britney_state.hpp"

namespace apcloud {
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

}  // namespace apcloud
