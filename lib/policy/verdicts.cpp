// britney's verdicts (pkg_test_result, SPEC.md section 9) and the links shown
// with them.
#include "autopkgtest_cloud/verdicts.hpp"

#include "autopkgtest_cloud/britney_state.hpp"
#include "autopkgtest_cloud/excuses.hpp"
#include "autopkgtest_cloud/layout.hpp"
#include "autopkgtest_cloud/request.hpp"
#include "autopkgtest_cloud/url.hpp"

namespace apcloud {

// ---- verdicts ----

std::string_view verdict_name(Verdict v) noexcept {
    switch (v) {
        case Verdict::pass:
            return "PASS";
        case Verdict::neutral:
            return "NEUTRAL";
        case Verdict::fail:
            return "FAIL";
        case Verdict::regression:
            return "REGRESSION";
        case Verdict::always_fail:
            return "ALWAYSFAIL";
        case Verdict::running:
            return "RUNNING";
        case Verdict::running_always_fail:
            return "RUNNING-ALWAYSFAIL";
        case Verdict::running_reference:
            return "RUNNING-REFERENCE";
    }
    return "FAIL";
}

namespace {

// britney's result_in_baseline: in reference mode the migration-reference/0
// entry (nullopt: NONE); otherwise the first non-FAIL status over all
// triggers, a PASS winning, else FAIL (also when there are no entries).
std::optional<std::string> baseline_status(const ResultsCache& cache, const std::string& package,
                                           const std::string& arch, bool reference_mode) {
    if (reference_mode) {
        auto ref = cache.get(std::string(migration_reference_trigger), package, arch);
        if (!ref) return std::nullopt;
        return ref->status;
    }
    std::string best = "FAIL";
    for (const auto& [t, e] : cache.entries_for(package, arch)) {
        if (e.status == "PASS") return e.status;
        if (e.status == "NEUTRAL") best = e.status;
    }
    return best;
}

// britney's check_ever_passed_before: some result of package/arch, for any
// trigger, PASSed at a version not higher than `max_version`.
bool ever_passed(const ResultsCache& cache, const std::string& package, const std::string& arch,
                 const std::string& max_version) {
    for (const auto& [t, e] : cache.entries_for(package, arch))
        if (e.status == "PASS" && version_compare(e.version, max_version) <= 0) return true;
    return false;
}

}  // namespace

Verdict decide(const ResultsCache& cache, const std::string& trigger, const std::string& package,
               const std::string& arch, bool pending, bool reference_mode,
               const std::optional<std::string>& version, bool test_in_target) {
    const auto baseline = baseline_status(cache, package, arch, reference_mode);
    auto result = cache.get(trigger, package, arch);
    if (!result) {
        // britney requests a test that is neither cached nor pending: it is
        // shown as running (not yet run) whatever the baseline.
        if (!pending) return Verdict::running;
        return baseline && *baseline == "FAIL" ? Verdict::running_always_fail : Verdict::running;
    }
    if (result->status == "PASS") return Verdict::pass;
    if (result->status == "NEUTRAL") return Verdict::neutral;
    // A failure (any other status string counts as one, as in britney).
    const Verdict fail_verdict = ever_passed(cache, package, arch, version.value_or(result->version))
                                     ? Verdict::regression
                                     : Verdict::always_fail;
    if (!baseline) {
        // Reference mode without a reference result: britney requests one.
        return test_in_target ? Verdict::running_reference : fail_verdict;
    }
    if (*baseline == "FAIL") return Verdict::always_fail;
    return fail_verdict;
}

// ---- links ----

namespace {

std::string without_trailing_slashes(std::string s) {
    while (!s.empty() && s.back() == '/') s.pop_back();
    return s;
}

// Percent-encodes an object path for a URL, keeping '/' and the '@' that ends
// run ids (a valid path character, shown literally in links people read).
std::string encode_object_path(const std::string& path) {
    std::string encoded = percent_encode(path, true), out;
    for (std::size_t i = 0; i < encoded.size(); ++i) {
        if (encoded.compare(i, 3, "%40") == 0) {
            out += '@';
            i += 2;
        } else {
            out += encoded[i];
        }
    }
    return out;
}

}  // namespace

ResultLinks result_links(const std::string& store_url, const std::string& web_url,
                         const std::string& container, const std::string& release, const std::string& arch,
                         const std::string& package, const std::string& run_id,
                         const std::vector<std::string>& triggers, const std::vector<std::string>& ppas) {
    ResultLinks links;
    const std::string web = without_trailing_slashes(web_url);
    if (!run_id.empty()) {
        const std::string dir = without_trailing_slashes(store_url) + "/" + percent_encode(container) + "/" +
                                encode_object_path(result_dir(release, arch, package, run_id)) + "/";
        links.log = dir + "log.gz";
        links.artifacts = dir + "artifacts.tar.gz";
    }
    links.history = web + "/packages/" + percent_encode(package) + "/" + percent_encode(release) + "/" +
                    percent_encode(arch);
    RetryRequest retry;
    retry.release = release;
    retry.arch = arch;
    retry.package = package;
    retry.triggers = triggers;
    retry.ppas = ppas;
    links.retry = request_cgi_url(web, retry);
    return links;
}

}  // namespace apcloud
