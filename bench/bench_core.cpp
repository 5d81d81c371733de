// bench-core: parse+validate rates of request messages and result.tar archives,
// next to the Python equivalent (bench_core.py) on the same inputs.
// Usage: bench-core [SECONDS]   (default 2 per measurement)
#include "bench_util.hpp"
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/request.hpp>
#include <autopkgtest_cloud/result.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace {

std::vector<std::string> make_requests(std::size_t n) {
    std::mt19937 rng(42);
    auto word = [&](int len) {
        std::string s;
        for (int i = 0; i < len; ++i) s += static_cast<char>('a' + rng() % 26);
        return s;
    };
    std::vector<std::string> out;
    for (std::size_t i = 0; i < n; ++i) {
        apcloud::TestRequest r;
        r.package = word(3 + static_cast<int>(rng() % 10));
        // Shapes britney sends: one or a few triggers, some with a PPA or env.
        int triggers = 1 + static_cast<int>(rng() % 3);
        for (int t = 0; t < triggers; ++t)
            r.triggers.push_back(word(4 + static_cast<int>(rng() % 8)) + "/" + std::to_string(rng() % 20) + "." +
                                 std::to_string(rng() % 10) + "-" + std::to_string(1 + rng() % 3) + "ubuntu1");
        if (rng() % 10 == 0) r.ppas.push_back(word(6) + "/" + word(8));
        if (rng() % 10 == 0) r.env.push_back("DEB_BUILD_OPTIONS=nocheck parallel=4");
        if (rng() % 2 == 0) r.submit_time = "2024-03-21 13:04:12";
        out.push_back(r.to_message());
    }
    return out;
}

std::vector<std::string> make_result_tars(std::size_t n, const fs::path& scratch) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < n; ++i) {
        fs::path d = scratch / ("out" + std::to_string(i));
        fs::create_directories(d);
        std::ofstream(d / "testpkg-version") << "pkg" << i << " 1." << i << "-1\n";
        std::ofstream(d / "testinfo.json")
            << R"({"virt_server": "autopkgtest-virt-ssh", "nproc": "4", "custom_environment": ["ADT_TEST_TRIGGERS=pkg)"
            << i << "/1." << i << R"(-1 glib2.0/2.80-1"]})";
        std::ofstream tb(d / "testbed-packages");  // ~8 kB, a typical small testbed list
        for (int p = 0; p < 300; ++p) tb << "package-name-" << p << "\t1.2.3-4ubuntu" << p << "\n";
        tb.close();
        std::ofstream(d / "log") << "log\n";
        apcloud::PackOptions o;
        o.exitcode = static_cast<int>(i % 3) * 2;
        o.duration = 100 + i;
        o.requester = "britney";
        o.mtime = 1700000000;
        out.push_back(apcloud::pack_results(d.string(), o).result_tar);
    }
    return out;
}

template <typename F>
double rate(const std::vector<std::string>& items, double seconds, F&& f) {
    std::size_t n = 0;
    auto start = clock_type::now();
    for (;;) {
        for (const auto& item : items) f(item);
        n += items.size();
        double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
        if (elapsed >= seconds) return static_cast<double>(n) / elapsed;
    }
}

std::string run_python(const std::vector<std::string>& args) { return bench::capture_output(args).value_or(""); }

double json_number(const std::string& text, const std::string& key) {
    auto pos = text.find("\"" + key + "\": ");
    return pos == std::string::npos ? 0.0 : std::atof(text.c_str() + pos + key.size() + 4);
}

}  // namespace

int main(int argc, char** argv) {
    const double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
    const fs::path scratch = fs::temp_directory_path() / ("apcloud-bench-" + std::to_string(getpid()));
    fs::create_directories(scratch);

    auto requests = make_requests(10000);
    auto tars = make_result_tars(200, scratch / "dirs");
    std::size_t sink = 0;
    double req_rate = rate(requests, seconds, [&](const std::string& m) { sink += apcloud::parse_request(m).triggers.size(); });
    double tar_rate = rate(tars, seconds, [&](const std::string& t) { sink += apcloud::parse_result_tar(t).exitcode; });

    {
        std::ofstream f(scratch / "requests", std::ios::binary);
        for (std::size_t i = 0; i < requests.size(); ++i) f << (i ? std::string(1, '\0') : "") << requests[i];
        fs::create_directories(scratch / "tars");
        for (std::size_t i = 0; i < tars.size(); ++i)
            std::ofstream(scratch / "tars" / (std::to_string(1000 + i) + ".tar"), std::ios::binary) << tars[i];
    }
    std::string py = run_python({APCLOUD_PYTHON, APCLOUD_BENCH_PY, (scratch / "requests").string(),
                                 (scratch / "tars").string(), std::to_string(seconds)});
    fs::remove_all(scratch);
    double py_req = json_number(py, "requests"), py_tar = json_number(py, "result_tar");

    std::printf("%-34s %14s %14s %8s %8s\n", "benchmark", "C++ /s", "Python /s", "ratio", "target");
    std::printf("%-34s %14.0f %14.0f %7.1fx %7s\n", "request parse+validate", req_rate, py_req,
                py_req > 0 ? req_rate / py_req : 0.0, ">=3x");
    std::printf("%-34s %14.0f %14.0f %7.1fx %7s\n", "result.tar parse (~10 kB)", tar_rate, py_tar,
                py_tar > 0 ? tar_rate / py_tar : 0.0, ">=20x");
    std::printf("(checksum %zu; inputs: %zu requests, %zu result.tar of %zu bytes)\n", sink, requests.size(),
                tars.size(), tars.empty() ? 0 : tars[0].size());
    return py.empty() ? 1 : 0;
}
