// Collecting a package's results from a store (SPEC.md sections 3 and 9):
// listing with delimiter '@' and markers, result.tar parsed, uploads in
// progress waited for.
#include "autopkgtest_cloud/collect.hpp"

#include <algorithm>
#include <ctime>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/exit_codes.hpp"
#include "autopkgtest_cloud/layout.hpp"
#include "autopkgtest_cloud/result.hpp"
#include "core/time_text.hpp"

namespace apcloud {

// ---- collect_results ----

namespace {

// True when a run without result.tar is still being stored: one of its
// objects was written less than upload_grace_seconds before `now` (a test may
// run for hours, so its start says nothing; the worker writes result.tar
// last, right after the others). A run whose objects cannot be listed or
// dated counts as in progress when it started within the grace period.
bool in_progress(Store& store, const std::string& container, const std::string& run_dir,
                 const std::string& run_id, std::int64_t now) {
    std::optional<std::int64_t> newest;
    ListOptions opts;
    opts.prefix = run_dir;
    for (const auto& e : store.list_all(container, opts))
        if (auto t = detail::parse_iso_time(e.last_modified)) newest = std::max(newest.value_or(*t), *t);
    if (!newest) newest = run_id_time(run_id);
    return newest && *newest > now - upload_grace_seconds;
}

}  // namespace

CollectedResults collect_results(Store& store, const std::string& container, const std::string& release,
                                 const std::string& arch, const std::string& package,
                                 const std::optional<std::string>& after_run_id,
                                 std::optional<std::int64_t> now) {
    const std::int64_t current = now ? *now : static_cast<std::int64_t>(std::time(nullptr));
    const std::string prefix = package_prefix(release, arch, package);
    ListOptions opts;
    opts.prefix = prefix;
    opts.delimiter = '@';
    if (after_run_id) opts.marker = prefix + *after_run_id;
    std::vector<std::string> run_ids;
    for (const auto& e : store.list_all(container, opts)) {
        // Runs roll up to subdirs `PREFIX RUN_ID` (ending with '@'); anything
        // else under the prefix is not a run.
        if (!e.subdir || e.name.size() <= prefix.size()) continue;
        std::string run_id = e.name.substr(prefix.size());
        if (run_id.find('/') != std::string::npos) continue;
        run_ids.push_back(std::move(run_id));
    }
    std::vector<std::string> names;
    names.reserve(run_ids.size());
    for (const auto& r : run_ids) names.push_back(prefix + r + "/result.tar");
    auto objects = store.get_many(container, names);

    CollectedResults out;
    for (std::size_t i = 0; i < run_ids.size(); ++i) {
        if (!objects[i]) {
            ++out.missing;
            if (in_progress(store, container, prefix + run_ids[i] + "/", run_ids[i], current)) {
                for (std::size_t j = i + 1; j < run_ids.size(); ++j) out.held_back += objects[j] ? 1 : 0;
                break;
            }
            continue;
        }
        Result r;
        try {
            r = parse_result_tar(objects[i]->data, {}, ResultDetail::summary);
        } catch (const ParseError&) {
            ++out.corrupt;
            continue;
        }
        // britney ignores a result that names another package.
        if (r.package && *r.package != package) {
            ++out.corrupt;
            continue;
        }
        GatingResult g;
        g.run_id = run_ids[i];
        g.exitcode = r.exitcode;
        g.outcome = std::string(outcome_name(outcome(r.exitcode)));
        g.version = std::move(r.version);
        g.triggers = std::move(r.triggers);
        g.duration = r.duration;
        out.results.push_back(std::move(g));
    }
    return out;
}

}  // namespace apcloud
