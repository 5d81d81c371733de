// The worker on RabbitMQ + Swift: real autopkgtest end to end (read back by
// python-swiftclient), and the reliability cases: kill -9 mid-test, RabbitMQ
// restarts while busy and idle, Swift unavailable during upload, and a test
// longer than RabbitMQ's (shortened) consumer ack timeout. Needs the env of
// scripts/servers-up; exits 77 without it.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <autopkgtest_cloud/broker.hpp>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/events.hpp>
#include <autopkgtest_cloud/layout.hpp>
#include <autopkgtest_cloud/result.hpp>
#include <autopkgtest_cloud/store.hpp>
#include <autopkgtest_cloud/worker.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "subprocess.hpp"

using namespace apcloud;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string need(const char* name) {
    const char* v = std::getenv(name);
    if (!v || !*v) {
        std::fprintf(stderr, "%s is not set: start servers with scripts/servers-up DIR and export DIR/env\n",
                     name);
        std::exit(77);
    }
    return v;
}

// Runs a program (argv, no shell) with its output appended to `log`; returns its exit status.
int run(const std::vector<std::string>& args, const std::string& log = "/dev/null") {
    test_process::RunOptions options;
    options.stdout_path = log;
    options.stderr_path = log;
    return test_process::run(args, options).status;
}

bool wait_for(const std::function<bool()>& cond, std::chrono::seconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (cond()) return true;
        std::this_thread::sleep_for(100ms);
    }
    return cond();
}

int counter = 0;

// One test's world: unique release name (so queues and containers are its
// own), the shared RabbitMQ and Swift, a stand-in autopkgtest state dir.
struct World {
    fs::path root;
    std::string release;
    std::string amqp_url;
    std::string broker_url;
    std::string store_url;
    std::vector<std::string> log;

    explicit World(std::string amqp = need("APCLOUD_AMQP_URL"), double lease = 15.0)
        : amqp_url(std::move(amqp)) {
        std::string tmpl = (fs::temp_directory_path() / "apcloud-wd-XXXXXX").string();
        REQUIRE(mkdtemp(tmpl.data()));
        root = tmpl;
        fs::create_directories(root / "fake");
        fs::create_directories(root / "work");
        release = "r" + std::to_string(getpid()) + "x" + std::to_string(++counter);
        broker_url = amqp_url + (amqp_url.find('?') == std::string::npos ? "?" : "&") +
                     "lease=" + std::to_string(lease);
        store_url = "swift+" + need("APCLOUD_SWIFT_AUTH_URL");
        need("APCLOUD_SWIFT_USER");
        need("APCLOUD_SWIFT_KEY");
        setenv("FAKE_ADT_DIR", (root / "fake").c_str(), 1);
    }
    // A spawned worker's log is shown before it goes, so a failure in CI can be read.
    ~World() {
        std::ifstream in(root / "worker.log");
        if (in) std::fprintf(stderr, "--- worker.log of %s ---\n%s--- end ---\n", release.c_str(),
                             std::string(std::istreambuf_iterator<char>(in), {}).c_str());
        fs::remove_all(root);
    }

    std::string queue() const { return "debci-" + release + "-amd64"; }
    void publish(const std::string& body) const {
        auto b = open_broker(amqp_url);
        b->declare_queue(queue());
        b->publish(queue(), body);
    }
    std::string container() const { return "autopkgtest-" + release; }
    std::string config(bool real = false) const {
        std::string c =
            "[amqp]\nurl = " + broker_url + "\n[swift]\nurl = " + store_url +
            "\n[autopkgtest]\nreleases = " + release +
            "\narchitectures = amd64\nwork_dir = " + (root / "work").string() +
            "\nstatus_interval = 1\ntestbed_failure_backoff = 0\nupload_backoff = 1\nupload_retries = 8\n"
            "allow_local_sources = true\n";
        if (!real) c += "checkout_dir = " + need("APCLOUD_TEST_DATA") + "/fake-autopkgtest\n";
        return c + "[virt]\nargs = null\n";
    }
    std::map<std::string, std::string> env() const {
        return {{"APCLOUD_SWIFT_USER", need("APCLOUD_SWIFT_USER")},
                {"APCLOUD_SWIFT_KEY", need("APCLOUD_SWIFT_KEY")}};
    }
    WorkerConfig parsed(bool real = false) const { return parse_worker_config(config(real), env()); }
    std::unique_ptr<Store> store() const {
        StoreCredentials c;
        c.user = need("APCLOUD_SWIFT_USER");
        c.key = need("APCLOUD_SWIFT_KEY");
        return open_store(store_url, c);
    }
    void write(const std::string& rel, const std::string& text) const { std::ofstream(root / rel) << text; }
    int fake_runs() const {
        std::ifstream in(root / "fake/argv");
        std::string a((std::istreambuf_iterator<char>(in)), {});
        int n = 0;
        for (std::size_t p = 0; (p = a.find("--end--", p)) != std::string::npos; ++p) ++n;
        return n;
    }
    std::size_t results(const std::string& package) const {
        ListOptions o;
        o.prefix = package_prefix(release, "amd64", package);
        o.delimiter = '@';
        try {
            return store()->list_all(container(), o).size();
        } catch (const NotFound&) {
            return 0;
        }
    }
    WorkerEnvironment wenv() {
        WorkerEnvironment e;
        e.log = [this](const std::string& l) {
            log.push_back(l);
            std::fprintf(stderr, "worker: %s\n", l.c_str());
        };
        return e;
    }
    pid_t spawn_worker() const {
        std::ofstream(root / "worker.conf") << config();
        pid_t pid = fork();
        if (pid == 0) {
            freopen((root / "worker.log").c_str(), "a", stderr);
            execl(need("APCLOUD_WORKER_BIN").c_str(), "autopkgtest-cloud-worker", "-c",
                  (root / "worker.conf").c_str(), (char*)nullptr);
            _exit(127);
        }
        return pid;
    }
};

struct Rig {
    std::unique_ptr<Store> store;
    std::unique_ptr<Broker> broker;
    std::unique_ptr<Runner> runner = make_process_runner();
    std::unique_ptr<Worker> worker;
    explicit Rig(World& w, bool real = false) {
        store = w.store();
        broker = open_broker(w.broker_url);
        worker = std::make_unique<Worker>(w.parsed(real), w.wenv(), *store, *broker, *runner);
    }
};

}  // namespace

TEST_CASE("end to end: RabbitMQ + Swift + the real autopkgtest; python-swiftclient reads the results") {
    World w;
    Rig rig(w, true);
    auto listener = open_broker(w.amqp_url);
    auto sub = listener->subscribe(testcomplete_exchange);
    const std::string body = "hello-apc\n{\"build-git\": \"" + need("APCLOUD_EXAMPLES") +
                             "/hello-apc/\", \"triggers\": [\"hello-apc/1.0-1\"]}";
    listener->publish("debci-upstream-" + w.release + "-amd64", body);
    REQUIRE(rig.worker->process_one(10s) == WorkerStep::stored);
    std::optional<TestComplete> done;
    for (int i = 0; i < 20 && !done; ++i)
        if (auto e = sub->next(1s)) {
            auto t = parse_testcomplete(*e);
            if (t.release == w.release) done = t;
        }
    REQUIRE(done);
    CHECK(done->exitcode == 0);
    CHECK(listener->queue_depth("debci-upstream-" + w.release + "-amd64") == 0);
    CHECK(w.results("hello-apc") == 1);

    // python-swiftclient, as a britney-like client would, lists with
    // delimiter @ and downloads result.tar and log.gz.
    const std::string script = R"(
import gzip, io, os, sys, tarfile
import swiftclient
conn = swiftclient.Connection(authurl=os.environ["APCLOUD_SWIFT_AUTH_URL"], user=os.environ["APCLOUD_SWIFT_USER"],
                              key=os.environ["APCLOUD_SWIFT_KEY"])
container, prefix = sys.argv[1], sys.argv[2]
_, listing = conn.get_container(container, prefix=prefix, delimiter="@")
runs = [e["subdir"] for e in listing if "subdir" in e]
assert len(runs) == 1, listing
_, tar = conn.get_object(container, runs[0] + "/result.tar")
t = tarfile.open(fileobj=io.BytesIO(tar))
assert t.extractfile("exitcode").read() == b"0\n"
assert t.extractfile("testpkg-version").read().startswith(b"hello-apc 1.0-1")
headers, log = conn.get_object(container, runs[0] + "/log.gz")
assert headers["content-encoding"] == "gzip", headers
assert b"hello-apc" in gzip.decompress(log)
print("ok")
)";
    CHECK(run({need("APCLOUD_PYTHON"), "-c", script, w.container(),
               package_prefix(w.release, "amd64", "hello-apc")},
              (w.root / "py.log").string()) == 0);
}

TEST_CASE("Swift unavailable during upload: the worker retries and acks only after the upload succeeded") {
    World w;
    // The store's own retries (a few seconds) would hide the outage: keep
    // them short so the worker's retry loop is what carries the upload.
    w.store_url += "?retries=1&backoff=0.2";
    Rig rig(w);
    w.write("fake/sleep", "2\n");
    const std::string swift_dir = need("APCLOUD_SWIFT_DIR");
    std::thread outage([&] {
        REQUIRE(wait_for([&] { return w.fake_runs() == 1; }, 30s));
        CHECK(run({need("APCLOUD_SCRIPTS") + "/swift-pause", swift_dir}) == 0);
        std::this_thread::sleep_for(8s);
        CHECK(run({need("APCLOUD_SCRIPTS") + "/swift-resume", swift_dir}) == 0);
    });
    w.publish("gedit");
    auto step = rig.worker->process_one(10s);
    outage.join();
    CHECK(step == WorkerStep::stored);
    bool retried = false;
    for (const auto& l : w.log) retried = retried || l.find("; retry 1 of ") != std::string::npos;
    CHECK(retried);
    CHECK(w.results("gedit") == 1);
    CHECK(rig.worker->process_one(5s) == WorkerStep::idle);  // acked: not delivered again
}

TEST_CASE("kill -9 in the middle of a test: redelivered and completed exactly once") {
    World w;
    w.write("fake/sleep", "30\n");
    w.publish("gedit\n{\"triggers\": [\"gedit/1\"]}");
    pid_t pid = w.spawn_worker();
    REQUIRE(wait_for([&] { return w.fake_runs() == 1; }, 30s));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    fs::remove(w.root / "fake/sleep");
    Rig rig(w);
    // The dead worker's lease (15 s) runs out; the request comes back.
    REQUIRE(rig.worker->process_one(40s) == WorkerStep::stored);
    CHECK(w.fake_runs() == 2);
    CHECK(rig.worker->process_one(17s) == WorkerStep::idle);
    CHECK(w.results("gedit") == 1);
}

TEST_CASE("RabbitMQ restarts while a worker is busy and while it is idle: nothing lost, nothing run twice") {
    World w;
    const std::string rabbit = need("APCLOUD_RABBITMQ_DIR");
    w.write("fake/sleep", "6\n");
    w.publish("gedit\n{\"triggers\": [\"gedit/1\"]}");
    pid_t pid = w.spawn_worker();
    REQUIRE(wait_for([&] { return w.fake_runs() == 1; }, 30s));
    REQUIRE(run({need("APCLOUD_SCRIPTS") + "/rabbitmq-restart", rabbit}, (w.root / "restart.log").string()) ==
            0);
    REQUIRE(wait_for([&] { return w.results("gedit") == 1; }, 60s));
    fs::remove(w.root / "fake/sleep");

    // Idle: restart again, then a new request must still be served.
    std::this_thread::sleep_for(2s);
    REQUIRE(run({need("APCLOUD_SCRIPTS") + "/rabbitmq-restart", rabbit}, (w.root / "restart.log").string()) ==
            0);
    w.publish("gedit\n{\"triggers\": [\"gedit/2\"]}");
    REQUIRE(wait_for([&] { return w.results("gedit") == 2; }, 90s));
    std::this_thread::sleep_for(17s);  // longer than a lease: a lost ack would show up as a rerun
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(w.results("gedit") == 2);
    CHECK(w.fake_runs() == 2);
    CHECK(open_broker(w.amqp_url)->queue_depth(w.queue()) == 0);
}

TEST_CASE("a test longer than RabbitMQ's consumer ack timeout completes exactly once") {
    // A RabbitMQ node of its own whose consumer timeout is 3 s (checked every second).
    std::string tmpl = (fs::temp_directory_path() / "apcloud-rmq-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()));
    chmod(tmpl.c_str(), 0755);
    setenv("APCLOUD_RABBITMQ_CONSUMER_TIMEOUT_MS", "3000", 1);
    REQUIRE(run({need("APCLOUD_SCRIPTS") + "/rabbitmq-start", tmpl}, tmpl + "/start.out") == 0);
    unsetenv("APCLOUD_RABBITMQ_CONSUMER_TIMEOUT_MS");
    std::string url;
    {
        std::ifstream env(tmpl + "/env");
        std::string line;
        while (std::getline(env, line))
            if (line.rfind("APCLOUD_AMQP_URL=", 0) == 0) url = line.substr(17);
    }
    REQUIRE(!url.empty());
    {
        World w(url, 4.0);
        Rig rig(w);
        w.write("fake/sleep", "12\n");  // four times the ack timeout
        w.publish("gedit");
        CHECK(rig.worker->process_one(10s) == WorkerStep::stored);
        fs::remove(w.root / "fake/sleep");
        CHECK(rig.worker->process_one(10s) == WorkerStep::idle);
        CHECK(w.results("gedit") == 1);
        CHECK(w.fake_runs() == 1);
    }
    run({need("APCLOUD_SCRIPTS") + "/rabbitmq-stop", tmpl});
    fs::remove_all(tmpl);
}
