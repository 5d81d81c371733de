// Functional tests of the operator's commands of the built apcloud program: dead list/replay/drop on the
// broker of APCLOUD_TEST_BROKER, running against a web service.
//
// APCLOUD_TEST_BROKER=embedded: a fresh SQLite broker, one dead letter made
// by the real worker program (a forged ADT_TEST_TRIGGERS), and `apcloud
// running` against the web service program on the embedded stack.
// =amqp: the same dead-letter commands on $APCLOUD_AMQP_URL (exit 77 when
// unset), with queue names unique to this run.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "autopkgtest_cloud/broker.hpp"
#include "subprocess.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string env_path(const char* name) {
    const char* v = std::getenv(name);
    REQUIRE_MESSAGE(v != nullptr, name << " is not set (run through meson test)");
    return v;
}

bool amqp() {
    const char* k = std::getenv("APCLOUD_TEST_BROKER");
    return k && std::string(k) == "amqp";
}

std::string slurp(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// A scratch directory, the broker under test and the apcloud program run with its stderr kept.
struct Rig {
    fs::path dir;
    std::string broker_url, release, queue, dead;

    Rig() {
        std::string tmpl = (fs::temp_directory_path() / "apcloud-admin-XXXXXX").string();
        REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        dir = tmpl;
        unsetenv("APCLOUD_WEB_URL");
        if (amqp()) {
            broker_url = std::getenv("APCLOUD_AMQP_URL");
        } else {
            broker_url = "sqlite://" + (dir / "queue.db").string();
        }
        static int n = 0;
        release = "t" + std::to_string(getpid()) + "x" + std::to_string(++n);
        queue = "debci-" + release + "-amd64";
        dead = queue + ".dead";
    }
    ~Rig() { fs::remove_all(dir); }

    std::unique_ptr<apcloud::Broker> broker() const { return apcloud::open_broker(broker_url); }

    struct Run {
        int status;
        std::string out, err;
    };
    Run operator()(std::vector<std::string> args) const {
        args.insert(args.begin(), env_path("APCLOUD_TOOL"));
        test_process::RunOptions o;
        o.stderr_path = (dir / "stderr").string();
        fs::remove(o.stderr_path);
        auto r = test_process::run(args, o);
        return {r.status, r.out, slurp(o.stderr_path)};
    }

    // Publishes `body` to the queue, takes it and dead-letters it for `reason`.
    void dead_letter(const std::string& body, const std::string& reason) const {
        auto b = broker();
        b->publish(queue, body);
        auto d = b->consume({queue}, 5s);
        REQUIRE(d);
        REQUIRE(d->body == body);
        b->dead_letter(*d, reason);
    }

    // The real worker program takes one request from the queue (it dead-letters invalid ones).
    void run_worker_once() const {
        const fs::path conf = dir / "worker.conf";
        fs::create_directories(dir / "work");
        std::ofstream(conf) << "[amqp]\nurl = " << broker_url << "\n[swift]\nurl = file://"
                            << (dir / "results").string() << "\n[autopkgtest]\nreleases = " << release
                            << "\narchitectures = amd64\nwork_dir = " << (dir / "work").string()
                            << "\ncheckout_dir = " << env_path("APCLOUD_TEST_DATA")
                            << "/fake-autopkgtest\n[virt]\nargs = null\n";
        test_process::RunOptions o;
        o.stderr_path = (dir / "worker.log").string();
        auto r = test_process::run({env_path("APCLOUD_WORKER_BIN"), "-c", conf.string(), "--count", "1"}, o);
        INFO(slurp(o.stderr_path));
        REQUIRE(r.status == 0);
    }
};

std::uint64_t depth_eventually(apcloud::Broker& b, const std::string& queue, std::uint64_t want) {
    auto until = std::chrono::steady_clock::now() + 3s;
    std::uint64_t d = b.queue_depth(queue);
    while (d != want && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(20ms);
        d = b.queue_depth(queue);
    }
    return d;
}

const std::string forged =
    "gedit\n{\"env\": [\"ADT_TEST_TRIGGERS=glib2.0/2.80-1\"], \"requester\": \"mallory\", \"triggers\": "
    "[\"gedit/1\"], \"uuid\": \"11111111-1111-4111-8111-111111111111\"}";
const std::string hello =
    "hello\n{\"requester\": \"alice\", \"triggers\": [\"hello/2.10-3\"], \"uuid\": "
    "\"22222222-2222-4222-8222-222222222222\"}";
const std::string third = "zlib\n{\"uuid\": \"33333333-3333-4333-8333-333333333333\"}";

}  // namespace

TEST_CASE("dead list shows why, replay --uuid moves one back in order, drop --all empties the queue") {
    if (amqp() && !std::getenv("APCLOUD_AMQP_URL")) {
        std::fprintf(stderr, "APCLOUD_AMQP_URL is not set: no RabbitMQ to test (skipped)\n");
        std::exit(77);
    }
    Rig tool;
    auto b = tool.broker();
    b->declare_queue(tool.queue);
    if (amqp()) {
        tool.dead_letter(forged, "env: \"ADT_TEST_TRIGGERS=glib2.0/2.80-1\": is set by the worker");
    } else {
        b->publish(tool.queue, forged);
        tool.run_worker_once();  // the worker's own reason
    }
    tool.dead_letter(hello, "release is not configured on this worker");
    tool.dead_letter(third, "delivered 6 times without completing");
    REQUIRE(depth_eventually(*b, tool.dead, 3) == 3);

    // Every configured queue's dead letters; the queues without any are skipped.
    auto r =
        tool({"dead", "list", "--broker", tool.broker_url, "--release", tool.release, "--arch", "amd64"});
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out.find(tool.dead + " #1 'gedit' " + tool.release +
                     "/amd64 uuid='11111111-1111-4111-8111-111111111111' requester='mallory'") !=
          std::string::npos);
    CHECK(r.out.find("ADT_TEST_TRIGGERS") != std::string::npos);  // the reason, naming the field's value
    CHECK(r.out.find("    body: ") != std::string::npos);         // refused by the parser: shown raw
    CHECK(r.out.find(tool.dead + " #2 'hello' " + tool.release +
                     "/amd64 uuid='22222222-2222-4222-8222-222222222222' requester='alice'\n"
                     "    reason: 'release is not configured on this worker'") != std::string::npos);
    CHECK(r.out.find(tool.dead + " #3 'zlib'") != std::string::npos);

    r = tool({"dead", "list", "--broker", tool.broker_url, "--json", tool.queue});  // .dead added
    REQUIRE(r.status == 0);
    auto j = nlohmann::json::parse(r.out);
    REQUIRE(j.size() == 3);
    CHECK(j[0]["position"] == 1);
    CHECK(j[0]["valid"] == false);
    CHECK(j[0]["uuid"] == "11111111-1111-4111-8111-111111111111");
    CHECK(j[0]["reason"].get<std::string>().find("ADT_TEST_TRIGGERS") != std::string::npos);
    CHECK(j[1]["body"] == hello);
    CHECK(j[1]["valid"] == true);
    CHECK(j[1]["reason"] == "release is not configured on this worker");
    CHECK(j[1]["release"] == tool.release);
    CHECK(j[1]["triggers"] == nlohmann::json::array({"hello/2.10-3"}));
    CHECK(j[2]["reason"] == "delivered 6 times without completing");
    CHECK(depth_eventually(*b, tool.dead, 3) == 3);  // listing took nothing

    // Errors: a queue named that does not exist; usage errors exit 2.
    r = tool({"dead", "list", "--broker", tool.broker_url, "debci-" + tool.release + "-nosuch.dead"});
    CHECK(r.status == 4);
    CHECK(r.err.find("nosuch") != std::string::npos);
    CHECK(tool({"dead", "list", "--broker", tool.broker_url}).status == 2);
    CHECK(tool({"dead", "replay", "--broker", tool.broker_url, tool.dead}).status == 2);
    CHECK(tool({"dead", "drop", "--broker", tool.broker_url, tool.dead}).status == 2);
    CHECK(tool({"dead", "drop", "--broker", tool.broker_url, tool.dead, "--all", "--uuid", "x"}).status == 2);
    CHECK(tool({"dead", "replay", "--broker", tool.broker_url, ".dead", "--all"}).status == 3);
    r = tool({"dead", "replay", "--broker", tool.broker_url, tool.dead, "--uuid", "no-such-uuid"});
    CHECK(r.status == 4);
    CHECK(r.err.find("'no-such-uuid'") != std::string::npos);
    CHECK(depth_eventually(*b, tool.dead, 3) == 3);
    r = tool({"dead", "replay", "--help"});
    CHECK(r.status == 0);
    CHECK(r.out.find("Example: apcloud dead replay") != std::string::npos);

    // Replay one: it is back on its queue, the others kept in their order with their reasons.
    r = tool({"dead", "replay", "--broker", tool.broker_url, tool.dead, "--uuid",
              "22222222-2222-4222-8222-222222222222"});
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out.find("moved to " + tool.queue + ": " + tool.dead + " #2 'hello'") != std::string::npos);
    CHECK(r.err.find("1 moved back to " + tool.queue + ", 2 kept in " + tool.dead) != std::string::npos);
    REQUIRE(depth_eventually(*b, tool.queue, 1) == 1);
    CHECK(b->peek(tool.queue, 10) == std::vector<std::string>{hello});
    REQUIRE(depth_eventually(*b, tool.dead, 2) == 2);
    auto kept = b->peek_messages(tool.dead, 10);
    REQUIRE(kept.size() == 2);
    CHECK(kept[0].body == forged);
    CHECK(kept[0].reason.find("ADT_TEST_TRIGGERS") != std::string::npos);
    CHECK(kept[1].body == third);
    CHECK(kept[1].reason == "delivered 6 times without completing");

    // Drop the rest.
    r = tool({"dead", "drop", "--broker", tool.broker_url, tool.dead, "--all"});
    REQUIRE(r.status == 0);
    CHECK(r.out.find("dropped: " + tool.dead + " #1 'gedit'") != std::string::npos);
    CHECK(r.out.find("dropped: " + tool.dead + " #2 'zlib'") != std::string::npos);
    CHECK(depth_eventually(*b, tool.dead, 0) == 0);
    CHECK(b->peek(tool.queue, 10) == std::vector<std::string>{hello});
    r = tool({"dead", "list", "--broker", tool.broker_url, tool.dead});
    CHECK(r.status == 0);
    CHECK(r.out.empty());

    // Leave the shared server's queue empty.
    auto d = b->consume({tool.queue}, 5s);
    REQUIRE(d);
    b->ack(*d);
}

namespace {

std::uint16_t free_port() {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(s >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t n = sizeof a;
    getsockname(s, reinterpret_cast<sockaddr*>(&a), &n);
    close(s);
    return ntohs(a.sin_port);
}

}  // namespace

TEST_CASE("running prints the web service's running tests and which are stale" * doctest::skip(amqp())) {
    Rig tool;
    const std::uint16_t port = free_port();
    const std::string url = "http://127.0.0.1:" + std::to_string(port);
    fs::create_directories(tool.dir / "results");
    const fs::path conf = tool.dir / "web.conf";
    std::ofstream(conf) << "[web]\nlisten = 127.0.0.1\nport = " << port
                        << "\ndata_dir = " << (tool.dir / "web").string()
                        << "\nname = web\nreleases = " << tool.release
                        << "\narchitectures = amd64\nshare_dir = " << env_path("APCLOUD_SHARE_DIR")
                        << "\npublish_interval = 1\nqueue_interval = 1\nstatistics_interval = 1\n"
                           "status_interval = 1\n[amqp]\nurl = "
                        << tool.broker_url << "\n[swift]\nurl = file://" << (tool.dir / "results").string()
                        << "\n";
    test_process::Child web(
        {env_path("APCLOUD_WEB_BIN"), "-c", conf.string()});  // its log: the test's stderr

    // Nothing runs yet (and the service must be up first: events before its subscription are lost).
    Rig::Run r{};
    for (auto until = std::chrono::steady_clock::now() + 30s; std::chrono::steady_clock::now() < until;) {
        r = tool({"running", "--url", url});
        if (r.status == 0) break;
        std::this_thread::sleep_for(200ms);
    }
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out == "no tests running\n");

    auto b = tool.broker();
    const std::string event =
        "{\"architecture\": \"amd64\", \"duration\": 3725, \"logtail\": \"building\\n\", "
        "\"package\": \"gedit\", \"params\": {\"requester\": \"alice\", \"triggers\": "
        "[\"glib2.0/2.80-1\", \"gedit/46-1\"]}, \"release\": \"" +
        tool.release + "\", \"running\": true}";
    for (auto until = std::chrono::steady_clock::now() + 20s; std::chrono::steady_clock::now() < until;) {
        b->publish_event(apcloud::teststatus_exchange, event);
        setenv("APCLOUD_WEB_URL", url.c_str(), 1);  // the default for --url
        r = tool({"running"});
        unsetenv("APCLOUD_WEB_URL");
        if (r.out.find("gedit") != std::string::npos) break;
        std::this_thread::sleep_for(200ms);
    }
    REQUIRE(r.status == 0);
    CHECK(r.out.find("PACKAGE  RELEASE") == 0);
    CHECK(r.out.find("gedit    " + tool.release + "  amd64  1:02:05  glib2.0/2.80-1,gedit/46-1  no\n") !=
          std::string::npos);

    // No news for more than three status intervals: stale.
    for (auto until = std::chrono::steady_clock::now() + 8s; std::chrono::steady_clock::now() < until;) {
        r = tool({"running", "--url", url, "--json"});
        if (r.out.find("\"stale\":true") != std::string::npos) break;
        std::this_thread::sleep_for(300ms);
    }
    REQUIRE(r.status == 0);
    auto j = nlohmann::json::parse(r.out);
    REQUIRE(j.size() == 1);
    CHECK(j[0]["package"] == "gedit");
    CHECK(j[0]["duration"] == 3725);
    CHECK(j[0]["stale"] == true);
    CHECK(j[0]["triggers"] == nlohmann::json::array({"glib2.0/2.80-1", "gedit/46-1"}));

    // Errors: a service that is not there, a URL that is not http(s).
    CHECK(tool({"running", "--url", "ftp://example.org"}).status == 3);
    r = tool({"running", "--help"});
    CHECK(r.status == 0);
    CHECK(r.out.find("Example: apcloud running") != std::string::npos);
}
