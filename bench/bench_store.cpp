// bench-store: reading 10k results from a real Swift: our client vs Python urllib (britney's way) vs raw wrk.
//
// Usage: bench-store [--objects N] [--concurrency C[,C...]] (default 8,16; wrk uses the last as -c)
//                    [--wrk-seconds S] [--no-python]
// Needs the env of scripts/swift-start (APCLOUD_SWIFT_AUTH_URL, _USER, _KEY,
// _STORAGE_URL). Setup (not timed, done once per Swift): N result.tar-like
// objects of about 10 kB under 500 packages in the real layout
// (noble/amd64/<prefix>/<pkg>/<run_id>/result.tar) in a public container.
// Timed, all anonymous on the public storage URL like a gating client:
// (a) our Store: list_all (markers) + get_many; (b) bench_store.py: the same
// with sequential urllib; (c) wrk rotating GETs over the same object paths,
// the server's raw concurrent rate.
#include <sys/resource.h>
#include <sys/wait.h>

#include <unistd.h>
#include "bench_util.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/layout.hpp"
#include "autopkgtest_cloud/result.hpp"
#include "autopkgtest_cloud/store.hpp"
#include "autopkgtest_cloud/url.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using apcloud::ListOptions;

namespace {

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

// Runs argv (no shell) and returns its stdout; exits the bench on failure.
std::string run_capture(const std::vector<std::string>& argv) {
    auto out = bench::capture_output(argv);
    if (!out) {
        std::fprintf(stderr, "bench-store: %s failed\n", argv[0].c_str());
        std::exit(1);
    }
    return *out;
}

// 500 source package names shaped like the archive's: a third lib*, the rest
// spread over the alphabet, so prefixes are "libx" or one letter.
std::vector<std::string> package_names(std::size_t n) {
    std::mt19937 rng(7);
    std::set<std::string> seen;
    std::vector<std::string> out;
    while (out.size() < n) {
        std::string s = rng() % 3 == 0 ? "lib" : "";
        int len = 3 + static_cast<int>(rng() % 9);
        for (int i = 0; i < len; ++i) s += static_cast<char>('a' + rng() % 26);
        if (rng() % 4 == 0) s += "-" + std::to_string(rng() % 10);
        if (seen.insert(s).second) out.push_back(s);
    }
    return out;
}

// A real result.tar for one package (about 10 kB, like the archive's).
std::string make_result_tar(const std::string& pkg, const fs::path& scratch) {
    fs::path d = scratch / pkg;
    fs::create_directories(d);
    std::ofstream(d / "testpkg-version") << pkg << " 1.2-3ubuntu1\n";
    std::ofstream(d / "testinfo.json")
        << R"({"virt_server": "autopkgtest-virt-ssh", "nproc": "4", "custom_environment": ["ADT_TEST_TRIGGERS=)"
        << pkg << R"(/1.2-3ubuntu1"]})";
    std::ofstream tb(d / "testbed-packages");
    for (int p = 0; p < 120; ++p) tb << "package-" << p << "\t1.2.3-4ubuntu" << p << "\n";
    tb.close();
    std::ofstream(d / "summary") << "smoke                PASS\n";
    std::ofstream(d / "log") << "log\n";
    apcloud::PackOptions po;
    po.exitcode = 0;
    po.duration = 42;
    po.mtime = 1711026252;
    return apcloud::pack_results(d.string(), po).result_tar;
}

struct Layout {
    std::vector<std::string> names;       // object names, sorted
    std::vector<std::size_t> package_of;  // index into packages, per name
    std::vector<std::string> packages;
};

Layout make_layout(std::size_t objects) {
    Layout l;
    l.packages = package_names(500);
    const std::size_t runs = (objects + l.packages.size() - 1) / l.packages.size();
    std::vector<std::pair<std::string, std::size_t>> all;
    for (std::size_t p = 0; p < l.packages.size() && all.size() < objects; ++p)
        for (std::size_t r = 0; r < runs && all.size() < objects; ++r) {
            const std::string body =
                l.packages[p] + "\n{\"triggers\": [\"" + l.packages[p] + "/" + std::to_string(r) + "\"]}";
            const std::string run_id =
                apcloud::make_run_id(1700000000 + static_cast<std::int64_t>(r * 86400 + p), body);
            all.emplace_back(apcloud::result_dir("noble", "amd64", l.packages[p], run_id) + "/result.tar", p);
        }
    std::sort(all.begin(), all.end());
    for (auto& [n, p] : all) {
        l.names.push_back(n);
        l.package_of.push_back(p);
    }
    return l;
}

void setup(apcloud::Store& writer, const std::string& container, const Layout& l) {
    writer.ensure_container(container, apcloud::ContainerAcl::public_container());
    ListOptions lo;
    lo.prefix = "noble/";
    std::set<std::string> present;
    for (auto& e : writer.list_all(container, lo)) present.insert(e.name);
    std::vector<std::size_t> missing;
    for (std::size_t i = 0; i < l.names.size(); ++i)
        if (!present.count(l.names[i])) missing.push_back(i);
    if (missing.empty()) return;
    std::fprintf(stderr, "bench-store: setup: uploading %zu objects (once per Swift)...\n", missing.size());
    char tmpl[] = "/tmp/bench-store.XXXXXX";
    if (!mkdtemp(tmpl)) std::exit(1);
    std::vector<std::string> tars;
    for (const auto& p : l.packages) tars.push_back(make_result_tar(p, tmpl));
    fs::remove_all(tmpl);
    std::atomic<std::size_t> next{0};
    std::vector<std::thread> threads;
    const auto start = Clock::now();
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&] {
            for (std::size_t k; (k = next++) < missing.size();) {
                const std::size_t i = missing[k];
                writer.put(container, l.names[i], tars[l.package_of[i]], {"application/x-tar", std::nullopt});
            }
        });
    for (auto& t : threads) t.join();
    std::fprintf(stderr, "bench-store: setup took %.1f s\n", seconds_since(start));
}

struct OurRun {
    double seconds = 0, list_seconds = 0;
    std::size_t objects = 0, bytes = 0;
};

OurRun run_ours(const std::string& storage_url, const std::string& container, std::size_t concurrency) {
    auto store = apcloud::open_store(storage_url + "?concurrency=" + std::to_string(concurrency));
    OurRun r;
    const auto start = Clock::now();
    ListOptions lo;
    lo.prefix = "noble/";
    std::vector<std::string> names;
    for (auto& e : store->list_all(container, lo)) names.push_back(std::move(e.name));
    r.list_seconds = seconds_since(start);
    auto objects = store->get_many(container, names);
    r.seconds = seconds_since(start);
    for (const auto& o : objects)
        if (o) {
            ++r.objects;
            r.bytes += o->data.size();
        }
    return r;
}

double json_number(const std::string& text, const std::string& key) {
    auto at = text.find("\"" + key + "\":");
    return at == std::string::npos ? -1 : std::atof(text.c_str() + at + key.size() + 3);
}

// The server's raw rate: wrk with a Lua script rotating over every object path.
double run_wrk(const std::string& storage, const std::string& container, const Layout& layout,
               std::size_t connections, int seconds) {
    char tmpl[] = "/tmp/bench-store-wrk.XXXXXX";
    if (!mkdtemp(tmpl)) std::exit(1);
    const auto url = apcloud::parse_url(storage);
    const std::string origin =
        url.scheme + "://" + url.host + (url.port ? ":" + std::to_string(*url.port) : "");
    const fs::path lua = fs::path(tmpl) / "rotate.lua";
    {
        std::ofstream out(lua);
        out << "-- generated by bench-store: GET every object path in turn\npaths = {\n";
        for (const auto& n : layout.names)
            out << "  \"" << url.raw_path << "/" << apcloud::percent_encode(container) << "/"
                << apcloud::percent_encode(n, true) << "\",\n";
        out << "}\ni = 0\n"
               "function init(args) i = math.random(#paths) end\n"
               "function request()\n  i = i % #paths + 1\n  return wrk.format(\"GET\", paths[i])\nend\n";
    }
    const std::string wrk_out =
        run_capture({"/usr/bin/wrk", "-t2", "-c" + std::to_string(connections),
                     "-d" + std::to_string(seconds) + "s", "-s", lua.string(), origin});
    fs::remove_all(tmpl);
    if (wrk_out.find("Non-2xx") != std::string::npos) {
        std::fprintf(stderr, "bench-store: wrk saw error responses:\n%s\n", wrk_out.c_str());
        std::exit(1);
    }
    auto at = wrk_out.find("Requests/sec:");
    return at == std::string::npos ? 0 : std::atof(wrk_out.c_str() + at + 13);
}

double cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines interleave with stderr
    std::size_t objects = 10000;
    std::vector<std::size_t> concurrencies = {8, 16};
    int wrk_seconds = 10;
    bool python = true;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "bench-store: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--objects") {
            objects = std::stoul(value());
        } else if (a == "--concurrency") {
            concurrencies.clear();
            std::string v = value();
            for (std::size_t s = 0; s <= v.size();) {
                auto comma = v.find(',', s);
                concurrencies.push_back(std::stoul(v.substr(s, comma - s)));
                if (comma == std::string::npos) break;
                s = comma + 1;
            }
        } else if (a == "--wrk-seconds") {
            wrk_seconds = std::stoi(value());
        } else if (a == "--no-python") {
            python = false;
        } else {
            std::fprintf(stderr,
                         "usage: bench-store [--objects N] [--concurrency C[,C...]] [--wrk-seconds S] "
                         "[--no-python]\n");
            return 2;
        }
    }
    const std::string auth = env("APCLOUD_SWIFT_AUTH_URL"), storage = env("APCLOUD_SWIFT_STORAGE_URL");
    if (auth.empty() || storage.empty() || env("APCLOUD_SWIFT_USER").empty()) {
        std::fprintf(stderr, "bench-store: needs a Swift: scripts/swift-start DIR, then export DIR/env\n");
        return 77;
    }
    try {
        const std::string container = "apcloud-bench-store-" + std::to_string(objects);
        const Layout layout = make_layout(objects);
        auto writer = apcloud::open_store("swift+" + auth, {}, apcloud::process_environment());
        setup(*writer, container, layout);

        std::printf("bench-store: %zu result.tar objects (~10 kB) under %zu packages, container %s at %s\n",
                    layout.names.size(), layout.packages.size(), container.c_str(), storage.c_str());
        // Warm-up (connections, Swift's caches), not counted.
        run_ours(storage, container, concurrencies.front());
        // The machine may be shared: wrk runs before and after ours, and the
        // raw rate is their mean.
        const double raw_before = run_wrk(storage, container, layout, concurrencies.back(), wrk_seconds);
        OurRun best;
        std::size_t best_c = 0;
        for (std::size_t c : concurrencies) {
            const double cpu0 = cpu_seconds();
            OurRun r = run_ours(storage, container, c);
            const double cpu = cpu_seconds() - cpu0;
            if (r.objects != layout.names.size()) {
                std::fprintf(stderr, "bench-store: ours read %zu of %zu objects\n", r.objects,
                             layout.names.size());
                return 1;
            }
            std::printf(
                "  ours  list_all + get_many, concurrency %3zu: %8.0f objects/s  (%.2f s, list %.3f s, "
                "%.1f MB, client CPU %.2f s)\n",
                c, r.objects / r.seconds, r.seconds, r.list_seconds, r.bytes / 1e6, cpu);
            if (best_c == 0 || r.seconds < best.seconds) {
                best = r;
                best_c = c;
            }
        }
        const double ours = best.objects / best.seconds;
        const double raw_after = run_wrk(storage, container, layout, concurrencies.back(), wrk_seconds);
        const double raw = (raw_before + raw_after) / 2;
        std::printf(
            "  wrk -t2 -c%zu raw GET rate (same paths):   %8.0f requests/s  (%.0f before, %.0f after ours)\n",
            concurrencies.back(), raw, raw_before, raw_after);

        double py_rate = 0;
        if (python) {
            const std::string out =
                run_capture({APCLOUD_PYTHON, APCLOUD_BENCH_STORE_PY, storage, container, "noble/"});
            const double n = json_number(out, "objects"), s = json_number(out, "seconds");
            if (n != static_cast<double>(layout.names.size())) {
                std::fprintf(stderr, "bench-store: python read %.0f objects: %s\n", n, out.c_str());
                return 1;
            }
            py_rate = n / s;
            std::printf("  python urllib, sequential (britney):      %8.0f objects/s  (%.2f s)\n", py_rate,
                        s);
        }

        std::printf("  ours/raw = %.2f (goal >= 0.80)", raw > 0 ? ours / raw : 0);
        if (python) std::printf(", ours/python = %.1fx", ours / py_rate);
        std::printf("\n");
        return 0;
    } catch (const apcloud::Error& e) {
        std::fprintf(stderr, "bench-store: %s\n", e.what());
        return 1;
    }
}
