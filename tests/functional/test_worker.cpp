// Functional tests of the worker on the embedded backends (local store,
// SQLite broker): real autopkgtest end to end, and the worker's handling of
// bad requests, never_run, testbed failures, crashes, upload failures,
// kill -9 and signals, with a stand-in autopkgtest where a real run cannot
// produce the situation (tests/data/fake-autopkgtest).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <autopkgtest_cloud/broker.hpp>
#include <autopkgtest_cloud/client.hpp>
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
#include <thread>

using namespace apcloud;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string env_path(const char* name) {
    const char* v = std::getenv(name);
    REQUIRE_MESSAGE(v != nullptr, name << " is not set (run through meson test)");
    return v;
}

// A scratch installation: store, broker, lists, stand-in autopkgtest state.
struct Site {
    fs::path root;
    std::string store_url, broker_url;
    std::vector<std::string> log;

    explicit Site(double lease = 2.0) {
        std::string tmpl = (fs::temp_directory_path() / "apcloud-func-XXXXXX").string();
        REQUIRE(mkdtemp(tmpl.data()));
        root = tmpl;
        fs::create_directories(root / "lists");
        fs::create_directories(root / "fake");
        fs::create_directories(root / "work");
        store_url = "file://" + (root / "results").string();
        broker_url = "sqlite://" + (root / "queue.db").string() + "?lease=" + std::to_string(lease);
        setenv("FAKE_ADT_DIR", (root / "fake").c_str(), 1);
    }
    ~Site() { fs::remove_all(root); }

    std::string config(bool real_autopkgtest = false) const {
        std::string c = "[amqp]\nurl = " + broker_url + "\n[swift]\nurl = " + store_url +
                        "\n[autopkgtest]\nreleases = noble\narchitectures = amd64\n"
                        "per_package_config_dir = " +
                        (root / "lists").string() + "\nwork_dir = " + (root / "work").string() +
                        "\nstatus_interval = 1\ntestbed_failure_backoff = 0\nupload_backoff = 0\n"
                        "allow_local_sources = true\n";
        if (!real_autopkgtest) c += "checkout_dir = " + env_path("APCLOUD_TEST_DATA") + "/fake-autopkgtest\n";
        return c + "[virt]\nargs = null\n";
    }
    void write(const fs::path& rel, const std::string& text) const { std::ofstream(root / rel) << text; }
    std::string read(const fs::path& rel) const {
        std::ifstream in(root / rel);
        return std::string(std::istreambuf_iterator<char>(in), {});
    }
    int fake_runs() const {
        std::string a = read("fake/argv");
        int n = 0;
        for (std::size_t p = 0; (p = a.find("--end--", p)) != std::string::npos; ++p) ++n;
        return n;
    }
    WorkerEnvironment wenv() {
        WorkerEnvironment e;
        e.sleep = [](std::chrono::seconds) {};
        e.log = [this](const std::string& l) { log.push_back(l); };
        return e;
    }
    void publish(const std::string& queue, const std::string& body) const {
        auto b = open_broker(broker_url);
        b->declare_queue(queue);
        b->publish(queue, body);
    }
    std::vector<ListEntry> runs(const std::string& container, const std::string& package) const {
        auto s = open_store(store_url);
        ListOptions o;
        o.prefix = package_prefix("noble", "amd64", package);
        o.delimiter = '@';
        try {
            return s->list_all(container, o);
        } catch (const NotFound&) {
            return {};
        }
    }
    bool logged(const std::string& needle) const {
        for (const auto& l : log)
            if (l.find(needle) != std::string::npos) return true;
        return false;
    }
};

const std::string queue = "debci-noble-amd64";

struct Rig {
    std::unique_ptr<Store> store;
    std::unique_ptr<Broker> broker;
    std::unique_ptr<Runner> runner = make_process_runner();
    std::unique_ptr<Worker> worker;
    Rig(Site& site, bool real = false) {
        store = open_store(site.store_url);
        broker = open_broker(site.broker_url);
        worker = std::make_unique<Worker>(parse_worker_config(site.config(real)), site.wenv(), *store,
                                          *broker, *runner);
    }
};

pid_t spawn_worker(const Site& site, const std::vector<std::string>& extra = {}) {
    site.write("worker.conf", site.config());
    std::vector<std::string> args = {env_path("APCLOUD_WORKER_BIN"), "-c",
                                     (site.root / "worker.conf").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        freopen((site.root / "worker.log").c_str(), "a", stderr);
        execv(argv[0], argv.data());
        _exit(127);
    }
    return pid;
}

bool wait_for(const std::function<bool()>& cond, std::chrono::seconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (cond()) return true;
        std::this_thread::sleep_for(50ms);
    }
    return cond();
}

int wait_exit(pid_t pid, std::chrono::seconds limit) {
    int status = 0;
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        std::this_thread::sleep_for(50ms);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

}  // namespace

TEST_CASE("end to end with the real autopkgtest: request in, results out, testcomplete, acked") {
    Site site;
    Rig rig(site, true);
    auto listener = open_broker(site.broker_url);
    auto sub = listener->subscribe(testcomplete_exchange);
    auto status = listener->subscribe(teststatus_exchange);
    const std::string body = "hello-apc\n{\"build-git\": \"" + env_path("APCLOUD_EXAMPLES") +
                             "/hello-apc/\", \"requester\": \"alice\", \"triggers\": [\"hello-apc/1.0-1\"]}";
    site.publish("debci-upstream-noble-amd64", body);
    REQUIRE(rig.worker->process_one(5s) == WorkerStep::stored);
    auto runs = site.runs("autopkgtest-noble", "hello-apc");
    REQUIRE(runs.size() == 1);
    const std::string dir = runs[0].name;
    auto tar = rig.store->get("autopkgtest-noble", dir + "/result.tar");
    REQUIRE(tar);
    auto r = parse_result_tar(tar->data);
    CHECK(r.exitcode == 0);
    CHECK(r.version == "1.0-1");
    CHECK(r.requester == "alice");
    REQUIRE(r.triggers);
    CHECK(*r.triggers == std::vector<std::string>{"hello-apc/1.0-1"});
    auto log = rig.store->head("autopkgtest-noble", dir + "/log.gz");
    REQUIRE(log);
    CHECK(log->content_type == "text/plain; charset=UTF-8");
    CHECK(log->content_encoding == "gzip");
    CHECK(rig.store->head("autopkgtest-noble", dir + "/artifacts.tar.gz"));
    auto event = sub->next(5s);
    REQUIRE(event);
    auto done = parse_testcomplete(*event);
    CHECK(done.swift_dir == dir);
    CHECK(done.exitcode == 0);
    CHECK(done.testpkg_version == "hello-apc 1.0-1");
    CHECK(listener->queue_depth("debci-upstream-noble-amd64") == 0);
    CHECK(rig.worker->process_one(100ms) == WorkerStep::idle);  // acked: not delivered again

    // teststatus: running events while the test ran (every status_interval,
    // with the log tail), then a final running: false.
    std::vector<std::string> events;
    while (auto e = status->next(200ms)) events.push_back(*e);
    REQUIRE(events.size() >= 3);
    CHECK(events.front().find("\"package\": \"hello-apc\"") != std::string::npos);
    CHECK(events.front().find("\"running\": true") != std::string::npos);
    CHECK(events[events.size() - 2].find("autopkgtest") != std::string::npos);  // log tail of the run
    CHECK(events.back().find("\"running\": false") != std::string::npos);
}

TEST_CASE("bad requests are dead-lettered with a named error and never reach a process") {
    Site site;
    Rig rig(site);
    const std::vector<std::pair<std::string, std::string>> table = {
        {"Bad_Name", "package"},
        {"gedit;id", "package"},
        {"gedit\n{\"triggers\": [\"glib2.0/1 2\"]}", "triggers"},
        {"gedit\n{\"triggers\": [\"glib2.0/$(id)\"]}", "triggers"},
        {"gedit\n{\"ppas\": [\"evil/ppa;rm\"]}", "ppas"},
        {"gedit\n{\"env\": [\"LD_PRELOAD =x\"]}", "env"},
        {"gedit\n{\"env\": [\"A=\\u001b[31m\"]}", "env"},
        {"gedit\n{\"test-git\": \"https://x/y.git`id`\"}", "test-git"},
        {"gedit\n{\"build-git\": \"ssh://x/y\"}", "build-git"},
        {"gedit\n{\"build-git\": \"https://x/y#$(reboot)\"}", "build-git"},
        {"gedit\n{\"testname\": \"a|b\"}", "testname"},
        {"gedit\n{\"test-bzr\": \"lp:gedit\"}", "test-bzr"},
        {"gedit\n{\"unknown\": 1}", "parameter"},
        {"gedit\n{\"env\": [\"A=" + std::string(200000, 'x') + "\"]}", "body"},
        {"ged\xc3\x28it", "UTF-8"},
        {"gedit\n{not json", "JSON"},
        // Env names the system sets itself: a forged trigger must never count.
        {"gedit\n{\"env\": [\"ADT_TEST_TRIGGERS=glib2.0/2.80-1\"]}", "ADT_TEST_TRIGGERS=glib2.0/2.80-1"},
        {"gedit\n{\"env\": [\"AUTOPKGTEST_NORMAL_USER=root\"]}", "AUTOPKGTEST_NORMAL_USER"},
        {"gedit\n{\"env\": [\"GITHUB_STATUSES_URL=https://evil.example/\"]}", "GITHUB_STATUSES_URL"},
        {"gedit\n{\"env\": [\"UPSTREAM_PULL_REQUEST=1\"]}", "UPSTREAM_PULL_REQUEST"},
    };
    for (const auto& [body, field] : table) site.publish(queue, body);
    for (const auto& [body, field] : table) {
        CAPTURE(field);
        CHECK(rig.worker->process_one(2s) == WorkerStep::dead_lettered);
        CHECK(site.logged(field));
    }
    auto b = open_broker(site.broker_url);
    CHECK(b->queue_depth(queue) == 0);
    CHECK(b->queue_depth(queue + ".dead") == table.size());
    auto depths = queue_depths(*b, {queue, queue + ".dead", "debci-nosuch-amd64"});
    REQUIRE(depths.size() == 3);
    CHECK(depths[0].second == 0u);
    CHECK(depths[1].second == table.size());
    CHECK_FALSE(depths[2].second);
    CHECK(site.fake_runs() == 0);  // nothing was run
    CHECK(site.runs("autopkgtest-noble", "gedit").empty());
    // The dead letters keep the body and say why, naming the field and value.
    auto dead = b->consume({queue + ".dead"}, 2s);
    REQUIRE(dead);
    CHECK(dead->body == table.front().first);
    CHECK(dead->reason.find("package") != std::string::npos);
}

TEST_CASE("the upstream queues accept the webhook's own env, never ADT_TEST_TRIGGERS") {
    Site site;
    Rig rig(site);
    const std::string upstream = "debci-upstream-noble-amd64";
    site.publish(upstream,
                 "gedit\n{\"build-git\": \"https://example.org/g.git\", \"env\": "
                 "[\"ADT_TEST_TRIGGERS=glib2.0/2.80-1\"], \"triggers\": [\"gedit/1\"]}");
    CHECK(rig.worker->process_one(2s) == WorkerStep::dead_lettered);
    CHECK(site.logged("ADT_TEST_TRIGGERS=glib2.0/2.80-1"));
    site.publish(upstream,
                 "gedit\n{\"build-git\": \"https://example.org/g.git\", \"env\": "
                 "[\"UPSTREAM_PULL_REQUEST=7\", \"GITHUB_STATUSES_URL=https://api.github.com/s\"], "
                 "\"triggers\": [\"gedit/1\"]}");
    CHECK(rig.worker->process_one(2s) == WorkerStep::stored);
    CHECK(site.read("fake/argv").find("--env=UPSTREAM_PULL_REQUEST=7") != std::string::npos);
    CHECK(site.fake_runs() == 1);
}

TEST_CASE("never_run packages get exit 99 without running") {
    Site site;
    site.write("lists/never_run", "# broken tests\ngedit/amd64\n");
    Rig rig(site);
    site.publish(queue, "gedit\n{\"triggers\": [\"gedit/1\"]}");
    REQUIRE(rig.worker->process_one(2s) == WorkerStep::stored);
    CHECK(site.fake_runs() == 0);
    auto runs = site.runs("autopkgtest-noble", "gedit");
    REQUIRE(runs.size() == 1);
    auto r = parse_result_tar(rig.store->get("autopkgtest-noble", runs[0].name + "/result.tar")->data);
    CHECK(r.exitcode == 99);
    CHECK(r.version == "blacklisted");
}

TEST_CASE("testbed failures are retried, then stored as tmpfail") {
    Site site;
    Rig rig(site);
    site.write("fake/exit", "16\n16\n0\n");
    site.publish(queue, "gedit");
    REQUIRE(rig.worker->process_one(2s) == WorkerStep::stored);
    CHECK(site.fake_runs() == 3);
    auto runs = site.runs("autopkgtest-noble", "gedit");
    REQUIRE(runs.size() == 1);
    CHECK(
        parse_result_tar(rig.store->get("autopkgtest-noble", runs[0].name + "/result.tar")->data).exitcode ==
        0);

    site.write("fake/exit", "16\n");
    site.publish(queue, "gedit\n{\"triggers\": [\"gedit/2\"]}");  // another body: another run id
    REQUIRE(rig.worker->process_one(2s) == WorkerStep::stored);
    CHECK(site.fake_runs() == 6);  // 1 + 2 retries
    CHECK(site.runs("autopkgtest-noble", "gedit").size() == 2);
}

TEST_CASE("per-package lists are re-read for every request") {
    Site site;
    Rig rig(site);
    site.publish(queue, "gedit");
    REQUIRE(rig.worker->process_one(2s) == WorkerStep::stored);
    CHECK(site.fake_runs() == 1);
    site.write("lists/never_run", "ged*\n");
    site.publish(queue, "gedit");
    REQUIRE(rig.worker->process_one(2s) == WorkerStep::stored);
    CHECK(site.fake_runs() == 1);
}

TEST_CASE("an autopkgtest crash gives the request back; max_attempts dead-letters it") {
    Site site;
    Rig rig(site);
    site.write("fake/exit", "crash\n0\n");
    site.publish(queue, "gedit");
    CHECK(rig.worker->process_one(2s) == WorkerStep::requeued);
    CHECK(rig.worker->process_one(2s) == WorkerStep::stored);
    CHECK(site.runs("autopkgtest-noble", "gedit").size() == 1);
}

namespace {
// A store whose puts fail a given number of times (a store outage).
struct FlakyStore : Store {
    Store& inner;
    int failures;
    int puts = 0;
    FlakyStore(Store& s, int f) : inner(s), failures(f) {}
    void ensure_container(const std::string& c, const ContainerAcl& a) override {
        inner.ensure_container(c, a);
    }
    ContainerAcl container_acl(const std::string& c) override { return inner.container_acl(c); }
    ObjectInfo put(const std::string& c, const std::string& n, std::string_view d,
                   const PutOptions& o) override {
        if (puts++ < failures) throw StoreError("store unavailable (test)");
        return inner.put(c, n, d, o);
    }
    std::optional<Object> get(const std::string& c, const std::string& n) override { return inner.get(c, n); }
    std::optional<ObjectInfo> head(const std::string& c, const std::string& n) override {
        return inner.head(c, n);
    }
    bool remove(const std::string& c, const std::string& n) override { return inner.remove(c, n); }
    std::vector<ListEntry> list(const std::string& c, const ListOptions& o) override {
        return inner.list(c, o);
    }
};
}  // namespace

TEST_CASE("uploads are retried; the request is acked only after they succeed") {
    Site site;
    auto real = open_store(site.store_url);
    auto broker = open_broker(site.broker_url);
    auto runner = make_process_runner();
    FlakyStore flaky(*real, 3);
    Worker w(parse_worker_config(site.config()), site.wenv(), flaky, *broker, *runner);
    site.publish(queue, "gedit");
    REQUIRE(w.process_one(2s) == WorkerStep::stored);
    CHECK(flaky.puts == 3 + 3);  // three failures, then the three files
    CHECK(site.runs("autopkgtest-noble", "gedit").size() == 1);

    FlakyStore down(*real, 1000);
    Worker w2(parse_worker_config(site.config()), site.wenv(), down, *broker, *runner);
    site.publish(queue, "gedit");
    REQUIRE(w2.process_one(2s) == WorkerStep::requeued);
    CHECK(broker->queue_depth(queue) == 1);  // given back, not lost
    CHECK(site.runs("autopkgtest-noble", "gedit").size() == 1);
}

TEST_CASE("kill -9 in the middle of a test: redelivered and completed exactly once") {
    Site site(2.0);
    site.write("fake/sleep", "30\n");
    site.publish(queue, "gedit\n{\"triggers\": [\"gedit/1\"]}");
    pid_t pid = spawn_worker(site);
    REQUIRE(wait_for([&] { return site.fake_runs() == 1; }, 20s));
    kill(pid, SIGKILL);
    CHECK(wait_exit(pid, 5s) == 128 + SIGKILL);
    fs::remove(site.root / "fake/sleep");
    auto scratch_dirs = [&] {
        return std::distance(fs::directory_iterator(site.root / "work"), fs::directory_iterator{});
    };
    CHECK(scratch_dirs() == 1);  // the killed worker removed nothing
    Rig rig(site);
    CHECK(scratch_dirs() == 0);  // swept when the next worker started
    CHECK(site.logged("left by a worker that is gone"));
    // The dead worker's lease runs out after 2 s; the request comes back.
    REQUIRE(rig.worker->process_one(15s) == WorkerStep::stored);
    CHECK(site.fake_runs() == 2);
    CHECK(site.runs("autopkgtest-noble", "gedit").size() == 1);
    CHECK(rig.worker->process_one(3s) == WorkerStep::idle);
    CHECK(site.runs("autopkgtest-noble", "gedit").size() == 1);
}

TEST_CASE("a cancelled request: acked unrun when queued, stopped at the next tick when running; nothing stored") {
    Site site;
    Rig rig(site);
    // Queued: the worker that takes it acks it without running it.
    site.publish(queue, "gedit\n{\"uuid\": \"cancel-me-1\"}");
    cancel_request(*rig.store, "cancel-me-1", "alice");
    CHECK(rig.worker->process_one(5s) == WorkerStep::cancelled);
    CHECK(site.fake_runs() == 0);
    CHECK(site.runs("autopkgtest-noble", "gedit").empty());
    CHECK(rig.broker->queue_depth(queue) == 0);
    CHECK(site.logged("request cancel-me-1 on noble/amd64 was cancelled by alice; acked instead of running it"));

    // Running: stopped at the next status tick (1 s here), long before its 30 s.
    site.write("fake/sleep", "30\n");
    site.publish(queue, "gedit\n{\"uuid\": \"cancel-me-2\"}");
    std::thread canceller([&] {
        REQUIRE(wait_for([&] { return site.fake_runs() == 1; }, 20s));
        auto store = open_store(site.store_url);
        cancel_request(*store, "cancel-me-2", "bob");
    });
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(rig.worker->process_one(5s) == WorkerStep::cancelled);
    canceller.join();
    CHECK(std::chrono::steady_clock::now() - t0 < 15s);
    CHECK(site.runs("autopkgtest-noble", "gedit").empty());
    CHECK(rig.broker->queue_depth(queue) == 0);
    CHECK(site.logged("cancelled by bob while it ran"));
    CHECK(cancelled_by(*rig.store, "cancel-me-2") == std::optional<std::string>("bob"));
    CHECK_FALSE(cancelled_by(*rig.store, "not-cancelled"));
    CHECK_THROWS_AS(cancel_request(*rig.store, "bad uuid!", "bob"), ValidationError);

    // Others run as before.
    fs::remove(site.root / "fake/sleep");
    site.publish(queue, "gedit\n{\"uuid\": \"keep-me\"}");
    CHECK(rig.worker->process_one(5s) == WorkerStep::stored);
    CHECK(site.runs("autopkgtest-noble", "gedit").size() == 1);
}

TEST_CASE("a worker start sweeps the scratch directories of dead workers, never those of live ones") {
    Site site;
    const fs::path work = site.root / "work";
    auto scratch = [&](const std::string& name, bool owner) {
        fs::create_directories(work / name / "out");
        site.write(fs::path("work") / name / "out" / "log", "left behind\n");
        if (owner) site.write(fs::path("work") / name / ".owner", "");
        return work / name;
    };
    scratch("apcloud-run-dead", true);
    const auto live = scratch("apcloud-run-live", true);
    const int held = ::open((live / ".owner").c_str(), O_RDWR | O_CLOEXEC);  // a live slot's lock
    REQUIRE(held >= 0);
    REQUIRE(::flock(held, LOCK_EX) == 0);
    scratch("apcloud-run-new", false);  // made an instant ago, its lock not taken yet
    const auto old = scratch("apcloud-run-old", false);
    fs::last_write_time(old, fs::file_time_type::clock::now() - std::chrono::minutes(5));
    scratch("not-ours", false);
    fs::last_write_time(work / "not-ours", fs::file_time_type::clock::now() - std::chrono::minutes(5));

    Rig rig(site);
    CHECK_FALSE(fs::exists(work / "apcloud-run-dead"));
    CHECK_FALSE(fs::exists(old));
    CHECK(fs::exists(live / "out" / "log"));
    CHECK(fs::exists(work / "apcloud-run-new"));
    CHECK(fs::exists(work / "not-ours"));
    CHECK(site.logged("apcloud-run-dead, left by a worker that is gone"));

    // A run's own directory is locked while it runs and gone after it.
    site.write("fake/sleep", "2\n");
    site.publish(queue, "gedit");
    std::thread other([&] {
        REQUIRE(wait_for([&] { return site.fake_runs() == 1; }, 20s));
        Rig second(site);  // another slot starting meanwhile leaves it alone
    });
    CHECK(rig.worker->process_one(5s) == WorkerStep::stored);
    other.join();
    CHECK(site.runs("autopkgtest-noble", "gedit").size() == 1);
    CHECK_FALSE(site.logged("apcloud-run-live, left"));
    std::size_t ours = 0;
    for (const auto& e : fs::directory_iterator(work))
        if (e.path().filename().string().rfind("apcloud-run-", 0) == 0) ++ours;
    CHECK(ours == 2);  // the live one and the new one: the run's own is gone
    ::close(held);  // that slot dies: the next start sweeps its directory
    Rig third(site);
    CHECK_FALSE(fs::exists(live));
}

namespace {
// Stores a run of `body` started at `t` as another worker would have: the
// given files, result.tar (exit 0) unless `result_tar` is false.
void store_foreign_run(const Site& site, std::int64_t t, const std::string& body, bool result_tar) {
    auto s = open_store(site.store_url);
    s->ensure_container("autopkgtest-noble", ContainerAcl::public_container());
    const std::string dir = result_dir("noble", "amd64", "gedit", make_run_id(t, body));
    s->put("autopkgtest-noble", dir + "/log.gz", "not really gzip", PutOptions{});
    if (result_tar) {
        PackOptions po;
        po.exitcode = 0;
        po.package = "gedit";
        fs::create_directories(site.root / "foreign-out");
        s->put("autopkgtest-noble", dir + "/result.tar",
               pack_results((site.root / "foreign-out").string(), po).result_tar, PutOptions{});
    }
}

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}
}  // namespace

TEST_CASE("stored at most once: a redelivery whose earlier run holds its results is acked, not run") {
    Site site(1.0);
    Rig rig(site);
    const std::string body = "gedit\n{\"triggers\": [\"gedit/1\"], \"uuid\": \"u-at-most-once\"}";
    auto lose_ack = [&] {  // another worker takes it and goes away before its ack
        site.publish(queue, body);
        const std::int64_t taken = unix_now();
        {
            auto other = open_broker(site.broker_url);
            REQUIRE(other->consume({queue}, 2s));
        }  // its broker closed: the delivery is released, as a dead worker's lease runs out
        REQUIRE(rig.broker->queue_depth(queue) == 1);
        return taken;
    };

    // Its run got as far as log.gz: that is no result, so it runs again.
    store_foreign_run(site, lose_ack(), body, false);
    std::this_thread::sleep_for(1s);  // else this run would replace that directory, as it may
    CHECK(rig.worker->process_one(5s) == WorkerStep::stored);
    CHECK(site.fake_runs() == 1);
    CHECK(site.runs("autopkgtest-noble", "gedit").size() == 2);

    // Its run stored result.tar: acked without running or storing again.
    std::this_thread::sleep_for(1s);  // a run id of its own
    store_foreign_run(site, lose_ack(), body, true);
    CHECK(rig.worker->process_one(5s) == WorkerStep::already_stored);
    CHECK(site.fake_runs() == 1);
    CHECK(site.runs("autopkgtest-noble", "gedit").size() == 3);
    CHECK(site.logged("already holds its results"));
    CHECK(rig.broker->queue_depth(queue) == 0);
    CHECK(rig.worker->process_one(2s) == WorkerStep::idle);

    // The same body as a new request (first delivery) runs, whatever ran before.
    site.publish(queue, body);
    CHECK(rig.worker->process_one(5s) == WorkerStep::stored);
    CHECK(site.fake_runs() == 2);
}

TEST_CASE("stored at most once: a copy that another worker finished first is not stored again") {
    Site site;
    Rig rig(site);
    const std::string body = "gedit\n{\"triggers\": [\"gedit/2\"]}";
    site.write("fake/sleep", "3\n");
    site.publish(queue, body);
    std::thread other([&] {
        REQUIRE(wait_for([&] { return site.fake_runs() == 1; }, 20s));
        // Started after this worker's run did (its copy came back after a lost lease), done first.
        store_foreign_run(site, unix_now() + 1, body, true);
    });
    auto step = rig.worker->process_one(5s);
    other.join();
    CHECK(step == WorkerStep::already_stored);
    CHECK(site.runs("autopkgtest-noble", "gedit").size() == 1);
    CHECK(site.logged("acked instead of storing its results"));
    CHECK(rig.broker->queue_depth(queue) == 0);
    CHECK(rig.worker->process_one(3s) == WorkerStep::idle);
}

TEST_CASE(
    "SIGTERM finishes the running test, stores it, acks, exits 0; SIGHUP exits 75; idle stops at once") {
    Site site;
    site.write("fake/sleep", "3\n");
    site.publish(queue, "gedit");
    pid_t pid = spawn_worker(site);
    REQUIRE(wait_for([&] { return site.fake_runs() == 1; }, 20s));
    kill(pid, SIGTERM);
    CHECK(wait_exit(pid, 30s) == 0);
    CHECK(site.runs("autopkgtest-noble", "gedit").size() == 1);
    CHECK(open_broker(site.broker_url)->queue_depth(queue) == 0);

    site.publish(queue, "gedit");
    pid = spawn_worker(site);
    REQUIRE(wait_for([&] { return site.fake_runs() == 2; }, 20s));
    kill(pid, SIGHUP);
    CHECK(wait_exit(pid, 30s) == 75);
    CHECK(site.runs("autopkgtest-noble", "gedit").size() == 2);

    pid = spawn_worker(site);
    std::this_thread::sleep_for(1s);
    auto t0 = std::chrono::steady_clock::now();
    kill(pid, SIGTERM);
    CHECK(wait_exit(pid, 10s) == 0);
    CHECK(std::chrono::steady_clock::now() - t0 < 3s);
}

TEST_CASE("a bad worker.conf is refused at start-up with exit 78, naming section, key and value") {
    Site site;
    site.write("worker.conf", "[autopkgtest]\nreleases = noble\narchitectures = amd64\n");
    std::string bin = env_path("APCLOUD_WORKER_BIN");
    std::string conf = (site.root / "bad.conf").string();
    std::ofstream(conf) << site.config() << "[virt]\nargs = ssh --image $NOSUCHVAR\n";
    pid_t pid = fork();
    if (pid == 0) {
        freopen((site.root / "err").c_str(), "w", stderr);
        execl(bin.c_str(), bin.c_str(), "-c", conf.c_str(), (char*)nullptr);
        _exit(127);
    }
    CHECK(wait_exit(pid, 10s) == 78);
    CHECK(site.read("err").find("[virt] args") != std::string::npos);
    CHECK(site.read("err").find("$NOSUCHVAR") != std::string::npos);
}

TEST_CASE(
    "an identical request started in the same second waits for the next one: results are never overwritten") {
    Site site;
    std::int64_t clock = 1800000000;  // a clock that moves only when the worker sleeps
    WorkerEnvironment e = site.wenv();
    e.now = [&] { return clock; };
    e.sleep = [&](std::chrono::seconds s) { clock += s.count(); };
    auto store = open_store(site.store_url);
    auto broker = open_broker(site.broker_url);
    auto runner = make_process_runner();
    Worker worker(parse_worker_config(site.config()), e, *store, *broker, *runner);
    const std::string body = "gedit\n{\"triggers\": [\"gedit/1\"]}";
    site.publish(queue, body);
    site.publish(queue, body);
    REQUIRE(worker.process_one(2s) == WorkerStep::stored);
    REQUIRE(worker.process_one(2s) == WorkerStep::stored);
    auto runs = site.runs("autopkgtest-noble", "gedit");
    REQUIRE(runs.size() == 2);
    const auto prefix = package_prefix("noble", "amd64", "gedit");
    CHECK(runs[0].name == prefix + make_run_id(1800000000, body));
    CHECK(runs[1].name == prefix + make_run_id(1800000001, body));
    CHECK(site.logged("is taken by an identical request"));
}
