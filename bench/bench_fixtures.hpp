// Fixtures shared by the index and web benchmarks: package names, runs as the worker
// stores them, index rows in bulk, and the web service running in a thread.
#pragma once

#include <fmt/format.h>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/layout.hpp>
#include <autopkgtest_cloud/log.hpp>
#include <autopkgtest_cloud/request.hpp>
#include <autopkgtest_cloud/result.hpp>
#include <autopkgtest_cloud/results_index.hpp>
#include <autopkgtest_cloud/store.hpp>
#include <autopkgtest_cloud/web.hpp>

#include <atomic>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"

namespace bench {

namespace fs = std::filesystem;

/// `n` distinct source package names shaped like the archive's (a third lib*,
/// some with a -N suffix), the same for the same seed.
inline std::vector<std::string> package_names(std::size_t n, unsigned seed = 7) {
    std::mt19937 rng(seed);
    std::set<std::string> seen;
    std::vector<std::string> out;
    while (out.size() < n) {
        std::string s = rng() % 3 == 0 ? "lib" : "";
        const int len = 3 + static_cast<int>(rng() % 9);
        for (int i = 0; i < len; ++i) s += static_cast<char>('a' + rng() % 26);
        if (rng() % 4 == 0) s += "-" + std::to_string(rng() % 10);
        if (seen.insert(s).second) out.push_back(s);
    }
    return out;
}

/// What one run was: enough to write its output directory and its request.
struct RunSpec {
    std::string release = "noble", arch = "amd64", package, version;
    std::vector<std::string> triggers;
    std::vector<std::string> env;
    int exitcode = 0;
    std::uint64_t duration = 0;
    std::int64_t started = 0;  ///< unix time of the run's start (its run id)
    std::string uuid;
    std::string requester = "britney";

    /// The request the worker ran, as queued.
    apcloud::TestRequest request() const {
        apcloud::TestRequest r;
        r.package = package;
        r.triggers = triggers;
        r.env = env;
        r.requester = requester;
        r.uuid = uuid;
        r.submit_time = "2024-03-21 13:04:12";
        return r;
    }
    /// Its run id, from the start time and the request, as the worker makes it.
    std::string run_id() const { return apcloud::make_run_id(started, request().to_message()); }
    /// Its directory in the container.
    std::string dir() const { return apcloud::result_dir(release, arch, package, run_id()); }
    /// The release container.
    std::string container() const { return "autopkgtest-" + release; }
};

/// A run's spec with realistic values: run `i` of `package`, one to three triggers, now and then an env entry
/// and a failure.
inline RunSpec make_spec(const std::string& package, const std::string& arch, std::size_t i,
                         unsigned salt = 0) {
    std::minstd_rand rng(1 + (static_cast<unsigned>(i * 7919) ^ salt ^
                              static_cast<unsigned>(std::hash<std::string>{}(package))) %
                                 2147483646u);
    RunSpec s;
    s.arch = arch;
    s.package = package;
    s.version = fmt::format("{}.{}-{}ubuntu{}", 1 + i / 100, i % 100, 1 + rng() % 3, rng() % 4);
    s.triggers.push_back(package + "/" + s.version);
    static const char* others[] = {"glib2.0/2.80.0-6ubuntu1", "gcc-14/14-20240412-0ubuntu1",
                                   "python3-defaults/3.12.3-0ubuntu1", "systemd/255.4-1ubuntu8",
                                   "perl/5.38.2-3.2build2"};
    for (unsigned t = rng() % 3; t > 0; --t) s.triggers.emplace_back(others[rng() % 5]);
    if (rng() % 10 == 0) s.env.push_back("DEB_BUILD_OPTIONS=nocheck");
    static const int codes[] = {0, 0, 0, 0, 0, 0, 2, 4, 8, 16};
    s.exitcode = codes[rng() % 10];
    s.duration = 60 + rng() % 3000;
    s.started = 1700000000 + static_cast<std::int64_t>(i) * 3600 + static_cast<std::int64_t>(rng() % 3600);
    s.uuid = fmt::format("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", rng(), rng() & 0xffff, rng() & 0xfff,
                         rng() & 0xfff, (static_cast<std::uint64_t>(rng()) << 16) ^ rng());
    return s;
}

/// Writes the output directory autopkgtest leaves for `spec` into `out` (a
/// directory used only for this, reused from run to run) and packs it as the worker does: result.tar
/// with exitcode, duration, testpkg-version, testbed-packages (about 12 kB),
/// testinfo.json, requester, summary and the stored request; log.gz;
/// artifacts.tar.gz with each test's stdout/stderr.
inline apcloud::ResultFiles pack_run(const RunSpec& spec, const fs::path& out) {
    // The same files every time: the directory is reused, each file rewritten.
    static const std::string testbed_packages = [] {
        std::string s;
        for (int p = 0; p < 400; ++p)
            s += fmt::format("package-name-{}\t1.2.{}-4ubuntu{}\n", p, p % 17, p % 5);
        return s;
    }();
    static const std::string log = [] {
        std::string s;
        for (int l = 0; l < 200; ++l)
            s += fmt::format(" {:.2f}s autopkgtest [13:04:12]: test smoke: [-----------------------\n",
                             l * 0.37);
        return s;
    }();
    fs::create_directories(out);
    std::ofstream(out / "testpkg-version") << spec.package << " " << spec.version << "\n";
    std::ofstream(out / "testbed-packages") << testbed_packages;
    std::ofstream(out / "log") << log;
    std::string custom = "\"ADT_TEST_TRIGGERS=";
    for (std::size_t t = 0; t < spec.triggers.size(); ++t) custom += (t ? " " : "") + spec.triggers[t];
    custom += "\"";
    for (const auto& e : spec.env) custom += ", \"" + e + "\"";
    std::ofstream(out / "testinfo.json")
        << R"({"virt_server": "autopkgtest-virt-ssh -s /CONFIG/ssh-setup-nova -- -r bos03 -f autopkgtest-)"
        << spec.arch
        << R"(", "nproc": "4", "cpu_model": "AMD EPYC-Rome Processor", "cpu_flags": "fpu vme de pse )"
        << R"(tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx )"
        << R"(mmxext fxsr_opt pdpe1gb rdtscp lm rep_good nopl cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 )"
        << R"(fma cx16 sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy", )"
        << R"("kernel_version": "Linux 6.8.0-31-generic #31-Ubuntu SMP PREEMPT_DYNAMIC", "custom_environment": [)"
        << custom << "]}\n";
    const bool failed = spec.exitcode == 4;
    std::ofstream(out / "summary") << "smoke                "
                                   << (failed ? "FAIL non-zero exit status 1" : "PASS")
                                   << "\nunit-tests           PASS\n";
    std::ofstream(out / "smoke-stdout") << "ok\n";
    std::ofstream(out / "unit-tests-stdout") << "Ran 42 tests in 0.8s\n\nOK\n";
    apcloud::PackOptions po;
    po.exitcode = spec.exitcode;
    po.duration = spec.duration;
    po.requester = spec.requester;
    po.package = spec.package;
    po.request = spec.request().to_stored_message();
    po.mtime = spec.started + static_cast<std::int64_t>(spec.duration);
    return apcloud::pack_results(out.string(), po);
}

/// Stores a run's files in the order the worker uploads them (result.tar last).
inline void store_run(apcloud::Store& store, const RunSpec& spec, const apcloud::ResultFiles& files) {
    const std::string dir = spec.dir();
    for (const auto& f : apcloud::run_file_table) {
        apcloud::PutOptions po;
        po.content_type = std::string(f.content_type);
        if (!f.content_encoding.empty()) po.content_encoding = std::string(f.content_encoding);
        const std::string& data = f.name == "log.gz"             ? files.log_gz
                                  : f.name == "artifacts.tar.gz" ? files.artifacts_tar_gz
                                                                 : files.result_tar;
        store.put(spec.container(), dir + "/" + std::string(f.name), data, po);
    }
}

/// The index row of `spec`, as the index makes it from the stored run.
inline apcloud::IndexedRun indexed_run(const RunSpec& spec) {
    apcloud::IndexedRun r;
    r.container = spec.container();
    r.release = spec.release;
    r.arch = spec.arch;
    r.package = spec.package;
    r.run_id = spec.run_id();
    r.exitcode = spec.exitcode;
    r.version = spec.version;
    r.triggers = spec.triggers;
    r.has_triggers = true;
    r.duration = spec.duration;
    r.requester = spec.requester;
    r.env = spec.env;
    r.uuid = spec.uuid;
    r.summary = "smoke                PASS\nunit-tests           PASS\n";
    return r;
}

/// An index of `total` runs written with ResultsIndex::add in batches:
/// `target_runs` of them are runs of `target` on noble/amd64, the rest spread
/// over `packages` other packages and three architectures. Reuses the index
/// in `dir` when it already holds `total` runs or more. Returns the seconds
/// spent writing (0 when reused).
inline double build_index(const std::string& dir, std::size_t total, const std::string& target,
                          std::size_t target_runs, std::size_t packages = 1000) {
    {
        apcloud::ResultsIndex index(dir);
        if (index.size() >= total) return 0;
        if (index.size() > 0) throw apcloud::Error(fmt::format("{} holds a partial index: remove it", dir));
    }
    const auto t0 = Clock::now();
    apcloud::ResultsIndex index(dir);
    const auto names = package_names(packages, 11);
    static const char* arches[] = {"amd64", "arm64", "s390x"};
    const std::size_t others = total - std::min(total, target_runs);
    std::vector<apcloud::IndexedRun> batch;
    std::size_t written = 0;
    auto flush = [&] {
        index.add(batch);
        written += batch.size();
        batch.clear();
        if (written % 100000 < 5000) fmt::print(stderr, "  index: {} of {} runs written\n", written, total);
    };
    // Interleaved as they would arrive: the target's runs among the others'.
    const std::size_t every = target_runs ? std::max<std::size_t>(1, total / target_runs) : total + 1;
    std::size_t t = 0, o = 0;
    for (std::size_t i = 0; i < total; ++i) {
        if ((i % every == 0 && t < target_runs) || o >= others) {
            batch.push_back(indexed_run(make_spec(target, "amd64", t++)));
        } else {
            const std::size_t k = o++;
            batch.push_back(indexed_run(
                make_spec(names[k % names.size()], arches[k / names.size() % 3], k / names.size())));
        }
        if (batch.size() == 5000) flush();
    }
    if (!batch.empty()) flush();
    return seconds_since(t0);
}

/// The web service (run_web_service) on the embedded stack in a thread of
/// this process, on a free port of 127.0.0.1; stopped by the destructor.
class WebServiceThread {
public:
    /// `data_dir` holds (or receives) the index in `data_dir/index`; the
    /// store and broker are `file://` and `sqlite://` URLs.
    WebServiceThread(const std::string& data_dir, const std::string& store_url,
                     const std::string& broker_url) {
        config_.address = "127.0.0.1";
        config_.port = 0;
        config_.data_dir = data_dir;
        config_.name = "bench";
        config_.releases = {"noble"};
        config_.architectures = {"amd64"};
        config_.store_url = store_url;
        config_.broker_url = broker_url;
#ifdef APCLOUD_BENCH_SHARE_DIR
        config_.share_dir = APCLOUD_BENCH_SHARE_DIR;  // the templates and static files of the source tree
#endif
        std::promise<std::uint16_t> listening;
        auto port = listening.get_future();
        thread_ = std::thread([this, p = std::move(listening)]() mutable {
            try {
                apcloud::run_web_service(config_, stop_, [&p](std::uint16_t port) { p.set_value(port); });
            } catch (...) {
                try {
                    p.set_exception(std::current_exception());
                } catch (const std::future_error&) {
                    fmt::print(stderr, "the web service stopped with an error\n");
                }
            }
        });
        try {
            port_ = port.get();
        } catch (...) {
            stop_ = true;
            thread_.join();
            throw;
        }
    }
    ~WebServiceThread() {
        stop_ = true;
        thread_.join();
    }
    WebServiceThread(const WebServiceThread&) = delete;
    WebServiceThread& operator=(const WebServiceThread&) = delete;

    std::uint16_t port() const noexcept {
        return port_;
    }
    std::string url() const {
        return fmt::format("http://127.0.0.1:{}", port_);
    }
    /// The service's own durable queue of testcomplete events.
    std::string event_queue() const {
        return "apcloud.web." + config_.name + ".testcomplete";
    }

private:
    apcloud::WebConfig config_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    std::uint16_t port_ = 0;
};

/// A scratch directory under `parent`, removed with everything in it by the destructor unless kept.
class ScratchDir {
public:
    explicit ScratchDir(const std::string& parent, const std::string& name) {
        std::string tmpl = parent + "/" + name + ".XXXXXX";
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed under " + parent);
        path_ = tmpl;
    }
    ~ScratchDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    const std::string& path() const noexcept { return path_; }

private:
    std::string path_;
};

}  // namespace bench
