// Filling the index from the store: one run's result.tar read into a row, and
// the backfill that adds every run of every container the index misses.
#include <fmt/format.h>

#include <algorithm>
#include <future>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/result.hpp"
#include "autopkgtest_cloud/results_index.hpp"
#include "autopkgtest_cloud/store.hpp"
#include "core/logging.hpp"

namespace apcloud {

namespace {

const detail::Logger logger("index");

}  // namespace

// The index row of a run read from the store; nullopt while its result.tar is not there.
std::optional<IndexedRun> read_indexed_run(Store& store, const ContainerInfo& container,
                                           const RunLocation& where) {
    auto obj = store.get(container.name, where.dir() + "/result.tar");
    if (!obj) return std::nullopt;
    Result r = parse_result_tar(obj->data, {}, ResultDetail::summary);
    if (r.package && *r.package != where.package)
        throw ParseError(
            fmt::format("{}/{}/result.tar names package {}", container.name, where.dir(), *r.package));
    return index_run(container, where, r);
}

std::size_t backfill_index(Store& store, ResultsIndex& index, const std::atomic<bool>* stop) {
    std::size_t added = 0;
    for (const auto& name : store.list_containers()) {
        if (stop && stop->load()) break;
        const auto container = parse_container_name(name);
        if (!container) continue;
        const auto known = index.run_dirs(name);
        ListOptions opts;
        opts.delimiter = '@';  // one entry per run: RELEASE/ARCH/PREFIX/PACKAGE/RUN_ID@
        std::vector<RunLocation> missing;
        for (const auto& e : store.list_all(name, opts)) {
            if (!e.subdir) continue;
            auto where = parse_run_dir(e.name);
            if (!where || std::binary_search(known.begin(), known.end(), where->dir())) continue;
            missing.push_back(std::move(*where));
        }
        // Reading and parsing the next chunk overlaps with writing this one:
        // the two halves cost about the same (bench-index-ingest).
        constexpr std::size_t chunk = 200;
        auto load = [&store, &name, &missing, &container](std::size_t first) {
            std::vector<std::string> names;
            const std::size_t end = std::min(missing.size(), first + chunk);
            for (std::size_t j = first; j < end; ++j) names.push_back(missing[j].dir() + "/result.tar");
            auto objects = store.get_many(name, names);
            std::vector<IndexedRun> runs;
            for (std::size_t j = first; j < end; ++j) {
                const auto& obj = objects[j - first];
                if (!obj) continue;  // still being stored (or abandoned): next time
                try {
                    Result r = parse_result_tar(obj->data, {}, ResultDetail::summary);
                    if (r.package && *r.package != missing[j].package) continue;
                    runs.push_back(index_run(*container, missing[j], r));
                } catch (const ParseError& e) {
                    logger.warn("skipping {}/{}: {}", name, missing[j].dir(), e.what());
                }
            }
            return runs;
        };
        std::future<std::vector<IndexedRun>> next;
        if (!missing.empty()) next = std::async(std::launch::async, load, 0);
        for (std::size_t i = 0; i < missing.size(); i += chunk) {
            auto runs = next.get();
            if (i + chunk < missing.size() && !(stop && stop->load()))
                next = std::async(std::launch::async, load, i + chunk);
            added += index.add(runs);
            if (!next.valid()) break;
        }
    }
    return added;
}

}  // namespace apcloud
