// bench-web-history: a package's history page under load, from an index of 1M runs.
// The index is written with ResultsIndex::add (10k runs of the target package on
// noble/amd64 among 1M of 1000 packages), the web service (run_web_service) runs on
// it in a thread, and wrk on loopback asks for the first page (100 runs) of the
// target's history as JSON (/api/v1/packages/PKG/RELEASE/ARCH) and as HTML
// (/packages/PKG/RELEASE/ARCH); then the same from a minimal Flask + sqlite3 app on
// the same index.db (bench_web_history_flask.py). Prints requests/s, p50 and p99 of
// both and the ratio, at C connections (the rate) and at one (a lone client's latency).
//
// Usage: bench-web-history [--page html|json|both] [--total N] [--target-runs N] [--seconds S]
//                          [--connections C] [--wrk-threads T] [--index-dir DIR] [--scratch DIR]
//                          [--no-python]
// --index-dir keeps the index for the next run (reused when it holds N runs or more);
// without it the index is written in a scratch directory under --scratch (default /tmp).
#include <fmt/format.h>
#include <autopkgtest_cloud/error.hpp>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bench_fixtures.hpp"
#include "bench_util.hpp"
#include "subprocess.hpp"

namespace fs = std::filesystem;

namespace {

const char* const usage =
    "bench-web-history [--page html|json|both] [--total N] [--target-runs N] [--seconds S] [--connections C] "
    "[--wrk-threads T] [--index-dir DIR] [--scratch DIR] [--no-python]";

const std::string target = "glib2.0";

struct WrkResult {
    double rate = 0, p50_ms = 0, p99_ms = 0;
    bool errors = false;
};

// A latency of wrk's output ("527.00us", "1.20ms", "2.01s") in milliseconds.
double wrk_ms(const std::string& text) {
    const double v = std::atof(text.c_str());
    if (text.find("us") != std::string::npos) return v / 1000;
    if (text.find("ms") != std::string::npos) return v;
    if (text.find('m') != std::string::npos) return v * 60000;
    return v * 1000;
}

double wrk_percentile(const std::string& out, const std::string& label) {
    const auto dist = out.find("Latency Distribution");
    const auto at = dist == std::string::npos ? dist : out.find(label, dist);
    if (at == std::string::npos) return 0;
    const auto start = out.find_first_not_of(' ', at + label.size());
    return wrk_ms(out.substr(start, out.find('\n', start) - start));
}

WrkResult run_wrk(const std::string& url, long threads, long connections, long seconds) {
    const auto out =
        bench::capture_output({"/usr/bin/wrk", fmt::format("-t{}", threads), fmt::format("-c{}", connections),
                               fmt::format("-d{}s", seconds), "--latency", url});
    if (!out) throw apcloud::Error(fmt::format("wrk on {} failed", url));
    WrkResult r;
    const auto at = out->find("Requests/sec:");
    r.rate = at == std::string::npos ? 0 : std::atof(out->c_str() + at + 13);
    r.p50_ms = wrk_percentile(*out, "50%");
    r.p99_ms = wrk_percentile(*out, "99%");
    r.errors = out->find("Non-2xx") != std::string::npos || out->find("Socket errors") != std::string::npos;
    if (r.errors) fmt::print(stderr, "bench-web-history: wrk saw errors on {}:\n{}\n", url, *out);
    return r;
}

// The Flask peer, running as long as this object lives.
struct FlaskPeer {
    explicit FlaskPeer(const std::string& index_db)
        : child({APCLOUD_PYTHON, APCLOUD_BENCH_FLASK_PY, index_db}) {
        const std::string line = child.read_line();  // "port N server NAME"
        if (line.rfind("port ", 0) != 0) throw apcloud::Error("the Flask peer did not start: " + line);
        port = static_cast<std::uint16_t>(std::atoi(line.c_str() + 5));
        server = line.substr(line.find("server ") + 7);
    }
    test_process::Child child;
    std::uint16_t port = 0;
    std::string server;
};

// The first page from one server, checked: 200, and (JSON) 100 runs.
std::string first_page(std::uint16_t port, const std::string& path, int& status) {
    bench::LoopbackHttp http(port);
    auto a = http.get(path);
    status = a.status;
    return a.body;
}

struct WrkSettings {
    long threads = 2, connections = 16, seconds = 10;
};

void print_row(const std::string& page, const std::string& who, const WrkResult& r) {
    fmt::print("{:<5} {:<44} {:>11.0f} {:>9.2f} {:>9.2f}\n", page, who, r.rate, r.p50_ms, r.p99_ms);
}

// Both servers on one page: wrk at C connections (the rate) and at one (a lone
// client's latency). False when a goal is missed.
bool compare(const std::string& mode, const std::string& path, const bench::WebServiceThread& web,
             const FlaskPeer* flask, const WrkSettings& wrk, std::size_t target_runs) {
    int status = 0;
    const std::string ours = first_page(web.port(), path, status);
    if (status != 200) throw apcloud::Error(fmt::format("GET {}: HTTP {}", path, status));
    if (mode == "json") {
        const auto runs = nlohmann::json::parse(ours).at("runs");
        if (runs.size() != std::min<std::size_t>(100, target_runs))
            throw apcloud::Error(fmt::format("{} gave {} runs", path, runs.size()));
        if (flask) {
            const auto theirs = nlohmann::json::parse(first_page(flask->port, path, status));
            fmt::print("json  same runs from both servers: {}\n", theirs.at("runs") == runs ? "yes" : "NO");
        }
    }
    const std::string flask_url = flask ? fmt::format("http://127.0.0.1:{}{}", flask->port, path) : "";
    const WrkResult cpp = run_wrk(web.url() + path, wrk.threads, wrk.connections, wrk.seconds);
    print_row(mode, fmt::format("C++ web service, {} connections", wrk.connections), cpp);
    std::optional<WrkResult> py;
    if (flask) {
        py = run_wrk(flask_url, wrk.threads, wrk.connections, wrk.seconds);
        print_row(mode, fmt::format("Flask + sqlite3, {} connections", wrk.connections), *py);
    }
    const WrkResult cpp1 = run_wrk(web.url() + path, 1, 1, wrk.seconds);
    print_row(mode, "C++ web service, 1 connection", cpp1);
    if (flask) print_row(mode, "Flask + sqlite3, 1 connection", run_wrk(flask_url, 1, 1, wrk.seconds));
    if (!py) return std::min(cpp.p50_ms, cpp1.p50_ms) < 5;
    const double ratio = py->rate > 0 ? cpp.rate / py->rate : 0;
    fmt::print(
        "{:<5} ratio {:.1f}x requests/s at {} connections (goal >= 10x); C++ p50 {:.2f} ms at {}, "
        "{:.2f} ms at 1 (goal < 5 ms)\n",
        mode, ratio, wrk.connections, cpp.p50_ms, wrk.connections, cpp1.p50_ms);
    return ratio >= 10 && std::min(cpp.p50_ms, cpp1.p50_ms) < 5;
}

}  // namespace

int main(int argc, char** argv) {
    bench::Options opts(argc, argv, usage);
    const std::string page = opts.text("--page", "both");
    const auto total = static_cast<std::size_t>(opts.number("--total", 1000000));
    const auto target_runs = static_cast<std::size_t>(opts.number("--target-runs", 10000));
    WrkSettings wrk;
    wrk.seconds = opts.number("--seconds", 10);
    wrk.connections = opts.number("--connections", 16);
    wrk.threads = opts.number("--wrk-threads", 2);
    const std::string index_dir_opt = opts.text("--index-dir", "");
    const std::string scratch_parent = opts.text("--scratch", "/tmp");
    const bool python = !opts.flag("--no-python");
    opts.finish();
    if (page != "html" && page != "json" && page != "both") opts.fail("--page must be html, json or both");
    if (!fs::exists("/usr/bin/wrk")) {
        fmt::print(stderr, "bench-web-history: needs wrk (/usr/bin/wrk, Debian package wrk)\n");
        return 77;
    }
    apcloud::set_log_level(apcloud::LogLevel::warning);

    try {
        bench::ScratchDir scratch(scratch_parent, "bench-web-history");
        const std::string data_dir = index_dir_opt.empty() ? scratch.path() + "/web" : index_dir_opt;
        const double build_s = bench::build_index(data_dir + "/index", total, target, target_runs);
        if (build_s > 0)
            fmt::print(
                stderr,
                "bench-web-history: wrote {} runs with ResultsIndex::add in {:.1f} s ({:.0f} runs/s)\n",
                total, build_s, static_cast<double>(total) / build_s);
        fs::create_directories(scratch.path() + "/store");
        bench::WebServiceThread web(data_dir, "file://" + scratch.path() + "/store",
                                    "sqlite://" + scratch.path() + "/queue.db");
        std::optional<FlaskPeer> flask;
        if (python) flask.emplace(data_dir + "/index/index.db");

        const std::string json_path = fmt::format("/api/v1/packages/{}/noble/amd64", target);
        const std::string html_path = fmt::format("/packages/{}/noble/amd64", target);
        fmt::print(
            "bench-web-history: history of {} on noble/amd64 ({} runs among {}; first page of 100), "
            "wrk -t{} -c{} -d{}s on loopback\n",
            target, target_runs, total, wrk.threads, wrk.connections, wrk.seconds);
        if (flask)
            fmt::print("Python peer: Flask + sqlite3 on {}{}\n", flask->server,
                       flask->server == "waitress" ? "" : " (waitress is not installed)");
        fmt::print("C++: the web service in this process, 4 server threads; wrk shares the 2 cores\n");
        fmt::print("{:<5} {:<44} {:>11} {:>9} {:>9}\n", "page", "server", "requests/s", "p50 ms", "p99 ms");

        bool goal = true;
        for (const std::string mode : {"json", "html"})
            if (page == "both" || page == mode)
                goal = compare(mode, mode == "json" ? json_path : html_path, web, flask ? &*flask : nullptr,
                               wrk, target_runs) &&
                       goal;
        {
            // How much of a request is the index query (ResultsIndex::history, rows decoded), in this
            // process.
            apcloud::ResultsIndex index(data_dir + "/index");
            const auto t0 = bench::Clock::now();
            std::size_t rows = 0;
            for (int i = 0; i < 200; ++i)
                rows += index.history(target, "noble", "amd64", "", std::nullopt, 100, apcloud::Viewer{})
                            .runs.size();
            fmt::print("ResultsIndex::history alone (first page, {} rows): {:.2f} ms per call\n", rows / 200,
                       bench::seconds_since(t0) * 1000 / 200);
        }
        fmt::print("goals: {}\n", goal ? "met" : "NOT met");
        return 0;
    } catch (const std::exception& e) {
        fmt::print(stderr, "bench-web-history: {}\n", e.what());
        return 1;
    }
}
