// Filling the index from the store: one run's result.tar read into a row, and
// the backfill that adds every run of every container the index misses.
#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <future>
#include <mutex>
#include <thread>

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

namespace {

// A bulk load of an empty index for as long as a backfill runs.
class BulkLoad {
public:
    explicit BulkLoad(ResultsIndex& index) : index_(index), active_(index.begin_bulk_load()) {}
    ~BulkLoad() {
        try {
            end();
        } catch (const std::exception& e) {
            logger.error("{} (the next open completes it)", e.what());
        }
    }
    BulkLoad(const BulkLoad&) = delete;
    BulkLoad& operator=(const BulkLoad&) = delete;
    bool active() const { return active_; }
    void end() {
        if (active_) index_.end_bulk_load();
        active_ = false;
    }

private:
    ResultsIndex& index_;
    bool active_;
};

// The runs of one container the index misses, found by a thread of its own
// that lists the container page by page while the first ones are read.
class MissingRuns {
public:
    MissingRuns(Store& store, const std::string& container, std::vector<std::string> known,
                const std::atomic<bool>* stop)
        : thread_([this, &store, container, known = std::move(known), stop] {
              try {
                  ListOptions opts;
                  opts.delimiter = '@';  // one entry per run: RELEASE/ARCH/PREFIX/PACKAGE/RUN_ID@
                  store.for_each_page(container, opts, [&](std::vector<ListEntry>& page) {
                      std::vector<RunLocation> found;
                      for (const auto& e : page) {
                          if (!e.subdir) continue;
                          auto where = parse_run_dir(e.name);
                          if (where && !std::binary_search(known.begin(), known.end(), where->dir()))
                              found.push_back(std::move(*where));
                      }
                      std::lock_guard<std::mutex> lock(mutex_);
                      for (auto& w : found) runs_.push_back(std::move(w));
                      changed_.notify_all();
                      return !quit_ && !(stop && stop->load());
                  });
              } catch (...) {
                  std::lock_guard<std::mutex> lock(mutex_);
                  error_ = std::current_exception();
              }
              std::lock_guard<std::mutex> lock(mutex_);
              done_ = true;
              changed_.notify_all();
          }) {}
    ~MissingRuns() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            quit_ = true;
        }
        thread_.join();
    }
    MissingRuns(const MissingRuns&) = delete;
    MissingRuns& operator=(const MissingRuns&) = delete;

    /// The next `n` runs found (fewer at the end of the listing); empty when
    /// none are left. Waits for them when `wait`, else gives none until `n`
    /// are there. Rethrows the listing's failure.
    std::vector<RunLocation> take(std::size_t n, bool wait) {
        std::unique_lock<std::mutex> lock(mutex_);
        if (wait) changed_.wait(lock, [&] { return done_ || runs_.size() - taken_ >= n; });
        if (error_) std::rethrow_exception(error_);
        const std::size_t ready = runs_.size() - taken_;
        if (ready < n && !done_) return {};
        std::vector<RunLocation> out(
            std::make_move_iterator(runs_.begin() + static_cast<std::ptrdiff_t>(taken_)),
            std::make_move_iterator(runs_.begin() +
                                    static_cast<std::ptrdiff_t>(taken_ + std::min(n, ready))));
        taken_ += out.size();
        return out;
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<RunLocation> runs_;
    std::size_t taken_ = 0;
    bool done_ = false, quit_ = false;
    std::exception_ptr error_;
    std::thread thread_;  // last: starts when the rest is ready
};

// The index rows of `runs` read from the store; runs without result.tar yet
// (still being stored, or abandoned) are left for next time, corrupt ones logged.
std::vector<IndexedRun> load_runs(Store& store, const ContainerInfo& container,
                                  const std::vector<RunLocation>& runs) {
    std::vector<std::string> names;
    names.reserve(runs.size());
    for (const auto& w : runs) names.push_back(w.dir() + "/result.tar");
    auto objects = store.get_many(container.name, names);
    std::vector<IndexedRun> out;
    for (std::size_t j = 0; j < runs.size(); ++j) {
        const auto& obj = objects[j];
        if (!obj) continue;
        try {
            Result r = parse_result_tar(obj->data, {}, ResultDetail::summary);
            if (r.package && *r.package != runs[j].package) continue;
            out.push_back(index_run(container, runs[j], r));
        } catch (const ParseError& e) {
            logger.warn("skipping {}/{}: {}", container.name, runs[j].dir(), e.what());
        }
    }
    return out;
}

}  // namespace

std::size_t backfill_index(Store& store, ResultsIndex& index, const std::atomic<bool>* stop) {
    std::size_t added = 0;
    BulkLoad bulk(index);
    // Listing, reading and parsing, and writing overlap: two chunks are read
    // and parsed while one is written, as they cost about twice what writing
    // does (bench-index-ingest). A bulk load has no readers waiting for its
    // commits: fewer, larger ones.
    const std::size_t chunk = bulk.active() ? 1000 : 200;
    constexpr std::size_t loaders = 2;
    for (const auto& name : store.list_containers()) {
        if (stop && stop->load()) break;
        const auto container = parse_container_name(name);
        if (!container) continue;
        MissingRuns missing(store, name, index.run_dirs(name), stop);
        std::deque<std::future<std::vector<IndexedRun>>> loading;
        auto load_more = [&] {
            while (loading.size() < loaders && !(stop && stop->load())) {
                auto runs = missing.take(chunk, loading.empty());
                if (runs.empty()) return;
                loading.push_back(
                    std::async(std::launch::async, [&store, &container, runs = std::move(runs)] {
                        return load_runs(store, *container, runs);
                    }));
            }
        };
        for (load_more(); !loading.empty(); load_more()) {
            auto runs = loading.front().get();
            loading.pop_front();
            load_more();
            added += index.add(runs);
        }
    }
    bulk.end();
    return added;
}

}  // namespace apcloud
