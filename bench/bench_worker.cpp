// bench-worker: the worker's overhead per request beyond autopkgtest's own
// run time, and its peak RSS. The worker process runs N requests from the
// embedded broker into the directory store with a stand-in autopkgtest that
// exits at once; the same stand-in is also timed alone, and the difference
// per request is the worker's overhead (validate, argv, pack, upload,
// announce, ack). Usage: bench-worker [N] [--artifact-mb MB]
// N defaults to 200, or to 1 with --artifact-mb, which makes the stand-in
// write an artifact of MB MiB of random bytes into each run's output (so
// artifacts.tar.gz is as large): the peak RSS then shows whether the worker
// holds a result file in memory to upload it.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <autopkgtest_cloud/broker.hpp>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/store.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace {

pid_t spawn(const std::vector<std::string>& args, const std::string& out) {
    pid_t pid = fork();
    if (pid == 0) {
        std::vector<char*> argv;
        for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        freopen(out.c_str(), "a", stdout);
        freopen(out.c_str(), "a", stderr);
        execv(argv[0], argv.data());
        _exit(127);
    }
    return pid;
}

long vm_hwm_kb(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
    return -1;
}

struct Args {
    int n = 200;
    long artifact_mb = 0;
};

Args parse_args(int argc, char** argv) {
    Args a;
    bool have_n = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--artifact-mb" && i + 1 < argc) {
            a.artifact_mb = std::atol(argv[++i]);
        } else if (!arg.empty() && arg[0] != '-') {
            a.n = std::atoi(arg.c_str());
            have_n = true;
        } else {
            std::fprintf(stderr, "usage: bench-worker [N] [--artifact-mb MB]\n");
            std::exit(2);
        }
    }
    if (!have_n && a.artifact_mb > 0) a.n = 1;
    if (a.n <= 0 || a.artifact_mb < 0) {
        std::fprintf(stderr, "bench-worker: N must be positive and MB not negative\n");
        std::exit(2);
    }
    return a;
}

}  // namespace

int main(int argc, char** argv) {
    const Args args = parse_args(argc, argv);
    const int n = args.n;
    const fs::path root = fs::temp_directory_path() / ("apcloud-bench-worker-" + std::to_string(getpid()));
    fs::create_directories(root / "work");
    const std::string fake = std::string(APCLOUD_FAKE_ADT) + "/runner/autopkgtest";
    const std::string broker_url = "sqlite://" + (root / "q.db").string();
    const std::string store_url = "file://" + (root / "results").string();
    setenv("FAKE_ADT_DIR", (root / "fake").c_str(), 1);
    fs::create_directories(root / "fake");
    if (args.artifact_mb > 0) std::ofstream(root / "fake" / "artifact_mb") << args.artifact_mb << "\n";
    {
        std::ofstream conf(root / "worker.conf");
        conf << "[amqp]\nurl = " << broker_url << "\n[swift]\nurl = " << store_url
             << "\n[autopkgtest]\nreleases = noble\narchitectures = amd64\nwork_dir = "
             << (root / "work").string() << "\ncheckout_dir = " << APCLOUD_FAKE_ADT
             << "\nstatus_interval = 10\n[virt]\nargs = null\n";
    }

    // The stand-in alone: its own cost per run.
    auto t0 = clock_type::now();
    for (int i = 0; i < n; ++i) {
        fs::remove_all(root / "alone");
        pid_t pid = spawn(
            {fake, "--output-dir", (root / "alone").string(), "pkg", "--timeout-short=300", "--", "null"},
            (root / "alone.log").string());
        waitpid(pid, nullptr, 0);
    }
    const double alone = std::chrono::duration<double>(clock_type::now() - t0).count() / n;

    auto broker = apcloud::open_broker(broker_url);
    broker->declare_queue("debci-noble-amd64");
    for (int i = 0; i < n; ++i)
        broker->publish("debci-noble-amd64", "pkg" + std::to_string(i) + "\n{\"triggers\": [\"pkg" +
                                                 std::to_string(i) + "/1.0-1\"]}");

    auto store = apcloud::open_store(store_url);
    apcloud::ListOptions lo;
    lo.prefix = "noble/amd64/";
    auto stored_count = [&]() -> std::size_t {
        try {
            std::size_t c = 0;
            for (const auto& e : store->list_all("autopkgtest-noble", lo))
                c += e.name.size() > 10 && e.name.compare(e.name.size() - 10, 10, "result.tar") == 0;
            return c;
        } catch (const apcloud::Error&) {
            return 0;
        }
    };
    t0 = clock_type::now();
    pid_t worker =
        spawn({APCLOUD_WORKER_BIN, "-c", (root / "worker.conf").string()}, (root / "worker.log").string());
    long hwm = 0;
    std::size_t stored = 0;
    // A large artifact is written, gzipped and uploaded: about 1 s per 5 MiB at worst.
    const auto limit = clock_type::now() + std::chrono::seconds(60 + n * (1 + args.artifact_mb / 5));
    while ((stored = stored_count()) < static_cast<std::size_t>(n) && clock_type::now() < limit) {
        hwm = std::max(hwm, vm_hwm_kb(worker));
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    const double total = std::chrono::duration<double>(clock_type::now() - t0).count();
    hwm = std::max(hwm, vm_hwm_kb(worker));
    kill(worker, SIGTERM);
    waitpid(worker, nullptr, 0);
    fs::remove_all(root);

    const double per_request = total / n;
    std::printf("requests:                 %d (stored %zu)\n", n, stored);
    if (args.artifact_mb > 0)
        std::printf("artifact per request:     %ld MiB (random bytes)\n", args.artifact_mb);
    std::printf("worker time per request:  %.1f ms\n", per_request * 1000);
    std::printf("stand-in run alone:       %.1f ms\n", alone * 1000);
    std::printf("worker overhead/request:  %.1f ms   (target < 100 ms)\n", (per_request - alone) * 1000);
    std::printf("worker peak RSS (VmHWM):  %.1f MB   (target < 30 MB)\n", hwm / 1024.0);
    return stored == static_cast<std::size_t>(n) ? 0 : 1;
}
