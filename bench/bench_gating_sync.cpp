// bench-gating-sync: what a gating client's sync costs when 1k results are new among
// 1M: the incremental feed (ResultsFeed over /api/v1/results?since=CURSOR) against
// downloading the whole published database (download_results_db of
// /static/autopkgtest.db, verified by its checksum). The index is written with
// ResultsIndex::add, the 1k new runs added last, the web service (run_web_service)
// started on it in a thread; the client's cursor is where the 1k begin. Bytes are
// response bodies (what ResultsFeed::bytes_received counts, and the database file).
//
// Usage: bench-gating-sync [--total N] [--new K] [--index-dir DIR] [--scratch DIR]
// --index-dir keeps the index for the next run (reused when it holds N runs or
// more; each run adds its K new runs to it); without it the index is written in a
// scratch directory under --scratch (default /tmp).
#include <fmt/format.h>
#include <autopkgtest_cloud/collect.hpp>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/feed.hpp>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bench_fixtures.hpp"
#include "bench_util.hpp"

namespace fs = std::filesystem;

namespace {

const char* const usage = "bench-gating-sync [--total N] [--new K] [--index-dir DIR] [--scratch DIR]";

// Adds `count` runs newer than any before (of other packages than the history's
// target); returns the feed cursor just before them.
std::int64_t add_new_runs(const std::string& index_dir, std::size_t count) {
    apcloud::ResultsIndex index(index_dir);
    const auto before = static_cast<std::int64_t>(index.size());
    const auto names = bench::package_names(300, 23);
    const auto salt = static_cast<unsigned>(std::time(nullptr));
    std::vector<apcloud::IndexedRun> runs;
    for (std::size_t i = 0; i < count; ++i) {
        auto spec = bench::make_spec(names[i % names.size()], "amd64", 20000 + i, salt);
        spec.started = std::time(nullptr) - static_cast<std::int64_t>(count - i);
        runs.push_back(bench::indexed_run(spec));
    }
    index.add(runs);
    return before;
}

struct Sync {
    std::size_t results = 0;
    std::uint64_t bytes = 0;
    double seconds = 0;
};

Sync sync_feed(const std::string& url, const std::string& cursor_path) {
    const auto t0 = bench::Clock::now();
    apcloud::ResultsFeed feed(url, cursor_path);
    const auto results = feed.fetch();
    feed.commit();
    return {results.size(), feed.bytes_received(), bench::seconds_since(t0)};
}

Sync sync_db(const std::string& url, const std::string& path) {
    const auto mtime = fs::exists(path) ? fs::last_write_time(path) : fs::file_time_type{};
    const auto t0 = bench::Clock::now();
    apcloud::download_results_db(url + "/static/autopkgtest.db", path);
    Sync s;
    s.seconds = bench::seconds_since(t0);
    // Bodies only, as ResultsFeed counts them (the checksum comes in a header). A 304 leaves the file as
    // it was: no body.
    if (fs::last_write_time(path) != mtime) s.bytes = fs::file_size(path);
    return s;
}

void print_row(const std::string& what, const Sync& s) {
    fmt::print("{:<52} {:>14} {:>10.3f}\n", what, s.bytes, s.seconds);
}

}  // namespace

int main(int argc, char** argv) {
    bench::Options opts(argc, argv, usage);
    const auto total = static_cast<std::size_t>(opts.number("--total", 1000000));
    const auto fresh = static_cast<std::size_t>(opts.number("--new", 1000));
    const std::string index_dir_opt = opts.text("--index-dir", "");
    const std::string scratch_parent = opts.text("--scratch", "/tmp");
    opts.finish();
    apcloud::set_log_level(apcloud::LogLevel::warning);

    try {
        bench::ScratchDir scratch(scratch_parent, "bench-gating-sync");
        const std::string data_dir = index_dir_opt.empty() ? scratch.path() + "/web" : index_dir_opt;
        const double build_s = bench::build_index(data_dir + "/index", total, "glib2.0", 10000);
        if (build_s > 0)
            fmt::print(stderr, "bench-gating-sync: wrote {} runs with ResultsIndex::add in {:.1f} s\n", total,
                       build_s);
        const std::int64_t cursor = add_new_runs(data_dir + "/index", fresh);
        fs::create_directories(scratch.path() + "/store");
        bench::WebServiceThread web(data_dir, "file://" + scratch.path() + "/store",
                                    "sqlite://" + scratch.path() + "/queue.db");

        const std::string cursor_path = scratch.path() + "/cursor";
        std::ofstream(cursor_path) << cursor << "\n";
        const std::string db_path = scratch.path() + "/autopkgtest.db";
        const Sync feed = sync_feed(web.url(), cursor_path);
        const Sync db = sync_db(web.url(), db_path);
        const Sync feed_again = sync_feed(web.url(), cursor_path);
        const Sync db_again = sync_db(web.url(), db_path);

        fmt::print("bench-gating-sync: {} new results among {} (web service on loopback)\n", fresh,
                   static_cast<std::size_t>(cursor) + fresh);
        fmt::print("{:<52} {:>14} {:>10}\n", "sync", "bytes", "seconds");
        print_row(fmt::format("feed /api/v1/results?since=... ({} results)", feed.results), feed);
        print_row("whole database /static/autopkgtest.db (verified)", db);
        fmt::print("ratio whole db / feed: {:.0f}x bytes, {:.0f}x seconds\n",
                   feed.bytes ? static_cast<double>(db.bytes) / static_cast<double>(feed.bytes) : 0.0,
                   feed.seconds > 0 ? db.seconds / feed.seconds : 0.0);
        fmt::print("nothing new since: feed {} results {} bytes {:.4f} s; database {} ({:.4f} s)\n",
                   feed_again.results, feed_again.bytes, feed_again.seconds,
                   db_again.bytes == 0 ? "not modified (304)"
                                       : fmt::format("downloaded again, {} bytes", db_again.bytes),
                   db_again.seconds);
        if (feed.results != fresh) {
            fmt::print(stderr, "bench-gating-sync: the feed gave {} results, expected {}\n", feed.results,
                       fresh);
            return 1;
        }
        return 0;
    } catch (const std::exception& e) {
        fmt::print(stderr, "bench-gating-sync: {}\n", e.what());
        return 1;
    }
}
