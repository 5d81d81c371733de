// bench-index-ingest: filling an empty results index from a directory store of N runs
// (backfill_index: list every container, read each result.tar, write index.db and
// compat.db) next to the Python peer (bench_index_ingest.py: os.walk + tarfile +
// sqlite3 into the reference's two tables) on the same store.
//
// Usage: bench-index-ingest [--runs N] [--packages P] [--repeat K] [--store-dir DIR] [--scratch DIR]
//                           [--no-python]
// Each side runs K times (default 3), alternating, each into a new index; the
// ratio is printed of the medians and of the best runs (the machine is noisy).
// The store holds N runs (default 100000) of P packages (default 1000) on two
// architectures, each stored as the worker stores it (log.gz, artifacts.tar.gz,
// result.tar through Store::put). It is made in --store-dir when given and
// kept there for the next run (made again when it holds another N), else in
// a scratch directory under /dev/shm (the files are read from memory either
// way: the page cache holds them), removed at the end. The indexes are
// written under --scratch (default /tmp, a disk).
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/results_index.hpp>
#include <autopkgtest_cloud/store.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_fixtures.hpp"
#include "bench_util.hpp"

namespace fs = std::filesystem;

namespace {

const char* const usage =
    "bench-index-ingest [--runs N] [--packages P] [--repeat K] [--store-dir DIR] [--scratch DIR] "
    "[--no-python]";

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

// Stores `runs` runs into the store at `dir` (from a few threads: each put
// syncs its file and directory, as the worker's do), unless a previous run
// left exactly that many there.
void make_store(const std::string& dir, std::size_t runs, std::size_t packages,
                const std::string& work_parent) {
    const fs::path marker = fs::path(dir) / fmt::format(".bench-index-ingest-{}-{}", runs, packages);
    if (fs::exists(marker)) {
        fmt::print(stderr, "bench-index-ingest: reusing the store in {}\n", dir);
        return;
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir);
    auto store = apcloud::open_store("file://" + dir);
    store->ensure_container("autopkgtest-noble", apcloud::ContainerAcl::public_container());
    const auto names = bench::package_names(packages);
    const auto t0 = bench::Clock::now();
    std::atomic<std::size_t> next{0};
    std::vector<std::thread> threads;
    const unsigned n_threads = std::max(4u, std::thread::hardware_concurrency() * 2);
    bench::ScratchDir work(work_parent, "bench-index-ingest-out");
    for (unsigned t = 0; t < n_threads; ++t)
        threads.emplace_back([&, t] {
            const fs::path out = fs::path(work.path()) / std::to_string(t);
            for (std::size_t i; (i = next++) < runs;) {
                const auto spec = bench::make_spec(names[i % packages], i / packages % 2 ? "arm64" : "amd64",
                                                   i / packages / 2);
                bench::store_run(*store, spec, bench::pack_run(spec, out));
                if ((i + 1) % 20000 == 0) fmt::print(stderr, "  store: {} of {} runs\n", i + 1, runs);
            }
        });
    for (auto& t : threads) t.join();
    std::ofstream(marker) << runs << "\n";
    fmt::print(stderr, "bench-index-ingest: stored {} runs in {:.1f} s\n", runs, bench::seconds_since(t0));
}

// Where backfill_index's time goes: the same steps timed one after the other
// (list, read, parse, write), microseconds per run of one thread's time
// (backfill_index reads and parses on another thread while it writes).
struct Breakdown {
    double list = 0, read = 0, parse = 0, write = 0;
};

Breakdown breakdown(apcloud::Store& store, const std::string& index_dir) {
    Breakdown b;
    const std::string container = "autopkgtest-noble";
    const auto info = *apcloud::parse_container_name(container);
    auto t = bench::Clock::now();
    apcloud::ListOptions lo;
    lo.delimiter = '@';
    std::vector<apcloud::RunLocation> where;
    for (const auto& e : store.list_all(container, lo))
        if (auto w = apcloud::parse_run_dir(e.name); e.subdir && w) where.push_back(*w);
    b.list = bench::seconds_since(t);
    // In batches of 1000, as backfill_index's bulk load of an empty index goes:
    // read, parse, add, each timed on its own (the bulk load's end counts as adding).
    apcloud::ResultsIndex index(index_dir);
    t = bench::Clock::now();
    index.begin_bulk_load();
    b.write += bench::seconds_since(t);
    std::size_t done = 0;
    for (std::size_t i = 0; i < where.size(); i += 1000) {
        const std::size_t end = std::min(where.size(), i + 1000);
        std::vector<std::string> names;
        for (std::size_t j = i; j < end; ++j) names.push_back(where[j].dir() + "/result.tar");
        t = bench::Clock::now();
        auto objects = store.get_many(container, names);
        b.read += bench::seconds_since(t);
        t = bench::Clock::now();
        std::vector<apcloud::IndexedRun> runs;
        for (std::size_t j = i; j < end; ++j)
            runs.push_back(apcloud::index_run(
                info, where[j],
                apcloud::parse_result_tar(objects[j - i]->data, {}, apcloud::ResultDetail::summary)));
        b.parse += bench::seconds_since(t);
        t = bench::Clock::now();
        done += index.add(runs);
        b.write += bench::seconds_since(t);
    }
    t = bench::Clock::now();
    index.end_bulk_load();
    b.write += bench::seconds_since(t);
    const double per_run = 1e6 / static_cast<double>(std::max<std::size_t>(1, done));
    return {b.list * per_run, b.read * per_run, b.parse * per_run, b.write * per_run};
}

std::uint64_t tree_bytes(const fs::path& dir) {
    std::uint64_t n = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file()) n += e.file_size();
    return n;
}

}  // namespace

int main(int argc, char** argv) {
    bench::Options opts(argc, argv, usage);
    const auto runs = static_cast<std::size_t>(opts.number("--runs", 100000));
    const auto packages = static_cast<std::size_t>(opts.number("--packages", 1000));
    const std::string store_dir_opt = opts.text("--store-dir", "");
    const std::string scratch_parent = opts.text("--scratch", "/tmp");
    const auto repeat = static_cast<std::size_t>(std::max<long>(1, opts.number("--repeat", 3)));
    const bool python = !opts.flag("--no-python");
    opts.finish();
    apcloud::set_log_level(apcloud::LogLevel::warning);

    try {
        const bool shm = fs::is_directory("/dev/shm");
        std::optional<bench::ScratchDir> store_scratch;
        if (store_dir_opt.empty())
            store_scratch.emplace(shm ? "/dev/shm" : scratch_parent, "bench-index-ingest-store");
        const std::string store_dir =
            store_dir_opt.empty() ? store_scratch->path() + "/store" : store_dir_opt;
        make_store(store_dir, runs, packages, shm ? "/dev/shm" : scratch_parent);
        bench::ScratchDir scratch(scratch_parent, "bench-index-ingest");

        auto store = apcloud::open_store("file://" + store_dir);
        std::vector<double> cpp_rates, py_rates;
        std::size_t added = 0;
        double py_runs = 0;
        for (std::size_t k = 0; k < repeat; ++k) {
            const std::string index_dir = fmt::format("{}/index-{}", scratch.path(), k);
            const auto t0 = bench::Clock::now();
            {
                apcloud::ResultsIndex index(index_dir);
                added = apcloud::backfill_index(*store, index);
            }
            cpp_rates.push_back(static_cast<double>(added) / bench::seconds_since(t0));
            fs::remove_all(index_dir);
            if (!python) continue;
            const std::string py_db = fmt::format("{}/python-{}.db", scratch.path(), k);
            const auto out =
                bench::capture_output({APCLOUD_PYTHON, APCLOUD_BENCH_INGEST_PY, store_dir, py_db});
            if (!out) {
                fmt::print(stderr, "bench-index-ingest: {} failed\n", APCLOUD_BENCH_INGEST_PY);
                return 1;
            }
            py_runs = bench::json_number(*out, "runs");
            py_rates.push_back(py_runs / bench::json_number(*out, "seconds"));
            fs::remove_all(py_db);
        }

        fmt::print(
            "bench-index-ingest: {} runs of {} packages in a directory store ({:.0f} MB, {}), {} times "
            "each\n",
            runs, packages, static_cast<double>(tree_bytes(store_dir)) / 1e6,
            store_dir_opt.empty() && shm ? "tmpfs" : store_dir, repeat);
        fmt::print("{:<44} {:>9} {:>13} {:>11}\n", "ingest into an empty index", "runs", "median runs/s",
                   "best runs/s");
        const auto best = [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); };
        fmt::print("{:<44} {:>9} {:>13.0f} {:>11.0f}\n", "C++ backfill_index (index.db + compat.db)", added,
                   median(cpp_rates), best(cpp_rates));
        if (python) {
            fmt::print("{:<44} {:>9.0f} {:>13.0f} {:>11.0f}\n", "Python os.walk + tarfile + sqlite3", py_runs,
                       median(py_rates), best(py_rates));
            fmt::print("ratio C++/Python: {:.1f}x of the medians, {:.1f}x of the best runs (goal >= 10x)\n",
                       median(cpp_rates) / median(py_rates), best(cpp_rates) / best(py_rates));
        }
        const Breakdown b = breakdown(*store, scratch.path() + "/index-steps");
        fmt::print(
            "C++ steps, us per run: list {:.1f}, read result.tar {:.1f}, parse {:.1f}, index add {:.1f} "
            "(sum {:.1f})\n",
            b.list, b.read, b.parse, b.write, b.list + b.read + b.parse + b.write);
        if (added != runs || (python && static_cast<std::size_t>(py_runs) != runs)) {
            fmt::print(stderr, "bench-index-ingest: expected {} runs indexed by each\n", runs);
            return 1;
        }
        return 0;
    } catch (const std::exception& e) {
        fmt::print(stderr, "bench-index-ingest: {}\n", e.what());
        return 1;
    }
}
