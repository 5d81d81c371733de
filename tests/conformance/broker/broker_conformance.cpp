// Broker conformance: the Broker contract, run against the backend named by APCLOUD_TEST_BROKER.
//
// APCLOUD_TEST_BROKER=embedded runs on a fresh SQLite file; =amqp on
// $APCLOUD_AMQP_URL (exit 77 when unset). Every case uses queue and exchange
// names unique to this run, so the suite can share a server with others.
// Cases that need other processes (the embedded broker is shared by processes;
// RabbitMQ is reached by connections, which threads cover) re-run this program
// with one "[child]" case selected; those cases are skipped otherwise.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "autopkgtest_cloud/broker.hpp"
#include "autopkgtest_cloud/error.hpp"

extern char** environ;

namespace {

using namespace std::chrono_literals;
using apcloud::Broker;
using apcloud::BrokerError;
using apcloud::Delivery;
using apcloud::NotFound;
using apcloud::Publication;
using apcloud::Subscription;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr const char* child_url_var = "APCLOUD_CONFORMANCE_CHILD_URL";
constexpr const char* child_dir_var = "APCLOUD_CONFORMANCE_CHILD_DIR";

/// The backend under test, chosen once per process.
struct Backend {
    std::string kind;  // "embedded" or "amqp"
    std::string url;
    std::string dir;  // embedded: scratch directory (the database, flag files)
    bool owns_dir = false;

    Backend() {
        if (const char* child = std::getenv(child_url_var)) {
            kind = "embedded";
            url = child;
            const char* d = std::getenv(child_dir_var);
            dir = d ? d : "";
            return;
        }
        const char* k = std::getenv("APCLOUD_TEST_BROKER");
        kind = k ? k : "";
        if (kind == "embedded") {
            char tmpl[] = "/tmp/apcloud-broker-conformance-XXXXXX";
            if (!mkdtemp(tmpl)) {
                std::perror("mkdtemp");
                std::exit(1);
            }
            dir = tmpl;
            owns_dir = true;
            url = "sqlite://" + dir + "/queue.db";
        } else if (kind == "amqp") {
            const char* u = std::getenv("APCLOUD_AMQP_URL");
            if (!u || !*u) {
                std::fprintf(stderr, "APCLOUD_AMQP_URL is not set: no AMQP broker to test (skipped)\n");
                std::exit(77);
            }
            url = u;
            // The same cases with consumer leases (what workers use).
            if (const char* q = std::getenv("APCLOUD_TEST_BROKER_QUERY"))
                url += (url.find('?') == std::string::npos ? "?" : "&") + std::string(q);
        } else {
            std::fprintf(stderr, "set APCLOUD_TEST_BROKER to embedded or amqp\n");
            std::exit(77);
        }
    }
    Backend(const Backend&) = delete;
    Backend& operator=(const Backend&) = delete;
    ~Backend() {
        if (owns_dir) {
            std::error_code ec;
            fs::remove_all(dir, ec);
        }
    }
};

Backend& backend() {
    static Backend b;
    return b;
}

bool embedded() {
    return backend().kind == "embedded";
}

// Decides at registration time whether the embedded-only cases run.
bool embedded_selected() {
    const char* k = std::getenv("APCLOUD_TEST_BROKER");
    return std::getenv(child_url_var) != nullptr || (k && std::string(k) == "embedded");
}

std::unique_ptr<Broker> open() {
    return apcloud::open_broker(backend().url);
}

/// An embedded broker URL on the same file with a short lease.
std::string short_lease_url(const char* seconds) {
    return backend().url + "?lease=" + seconds;
}

/// A queue name unique to this run, shaped like ours (debci-<release>-<arch>).
std::string unique_queue() {
    static std::atomic<int> n{0};
    return "debci-t" + std::to_string(getpid()) + "x" + std::to_string(++n) + "-amd64";
}

std::string unique_exchange() {
    static std::atomic<int> n{0};
    return "apcloud-t" + std::to_string(getpid()) + "x" + std::to_string(++n) + ".fanout";
}

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// Compares bodies without printing 100 kB on failure.
std::string difference(const std::string& got, const std::string& want) {
    if (got == want) return "";
    std::size_t i = 0;
    while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
    return "got " + std::to_string(got.size()) + " bytes, want " + std::to_string(want.size()) +
           "; first difference at byte " + std::to_string(i);
}

/// Waits until queue_depth(queue) == want (brokers may count asynchronously).
std::uint64_t depth_eventually(Broker& b, const std::string& queue, std::uint64_t want) {
    auto until = Clock::now() + 3s;
    std::uint64_t d = b.queue_depth(queue);
    while (d != want && Clock::now() < until) {
        std::this_thread::sleep_for(20ms);
        d = b.queue_depth(queue);
    }
    return d;
}

std::string what_of_publish(Broker& b, const std::string& queue) {
    try {
        b.publish(queue, "x");
    } catch (const NotFound& e) {
        return e.what();
    }
    return "(no NotFound)";
}

// ---- child processes (embedded backend) ----

std::string child_var(const char* name) {
    const char* v = std::getenv(name);
    REQUIRE_MESSAGE(v != nullptr, name << " is not set");
    return v;
}

/// Runs this program again with only `test_case` selected and `vars` added
/// to its environment; returns its pid.
pid_t spawn_child(const std::string& test_case, const std::map<std::string, std::string>& vars) {
    std::vector<std::string> args = {"/proc/self/exe", "--no-skip", "--minimal", "--test-case=" + test_case};
    std::vector<std::string> envs;
    for (char** e = environ; *e; ++e) envs.emplace_back(*e);
    std::map<std::string, std::string> all = vars;
    all.emplace(child_dir_var, backend().dir);
    all.emplace(child_url_var, backend().url);
    for (const auto& [k, v] : all) envs.push_back(k + "=" + v);
    // Built before fork: the child may only exec.
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : envs) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::fflush(nullptr);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        execve(argv[0], argv.data(), envp.data());
        _exit(127);
    }
    return pid;
}

/// The child's exit status, or -signal; kills it after `timeout`.
int wait_child(pid_t pid, std::chrono::seconds timeout) {
    auto until = Clock::now() + timeout;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (Clock::now() >= until) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            FAIL_CHECK("child " << pid << " did not finish in time");
            return -SIGKILL;
        }
        std::this_thread::sleep_for(10ms);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

bool wait_for_file(const std::string& path, std::chrono::seconds timeout) {
    auto until = Clock::now() + timeout;
    while (!fs::exists(path)) {
        if (Clock::now() >= until) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

/// Writes a file atomically (rename), so a poller never sees half of it.
void write_file(const std::string& path, const std::string& text) {
    std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary);
        out << text;
    }
    fs::rename(tmp, path);
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

/// Consumes and acks until a "STOP" message, collecting the other bodies;
/// returns what went wrong, or "" (no doctest assertions: runs in threads).
std::string drain_until_stop(Broker& b, const std::string& queue, std::vector<std::string>& got) {
    try {
        for (;;) {
            auto d = b.consume({queue}, 60s);
            if (!d) return "no message for 60 s after " + std::to_string(got.size());
            b.ack(*d);
            if (d->body == "STOP") return "";
            got.push_back(d->body);
        }
    } catch (const std::exception& e) {
        return e.what();
    }
}

/// Consumes and acks until `queue` stays empty for `idle`; the bodies in
/// the order they came.
std::vector<std::string> consume_all(Broker& b, const std::string& queue, milliseconds idle = 500ms) {
    std::vector<std::string> got;
    while (auto d = b.consume({queue}, idle)) {
        b.ack(*d);
        got.push_back(d->body);
    }
    return got;
}

/// Checks that `s` gives exactly `want`, in order, and then nothing.
void check_events(Subscription& s, const std::vector<std::string>& want) {
    for (const auto& w : want) {
        auto got = s.next(5s);
        REQUIRE(got);
        CHECK(*got == w);
    }
    CHECK_FALSE(s.next(200ms));
}

/// "e0", "e1", ...: events (or messages) numbered from 0.
std::vector<std::string> numbered(const std::string& prefix, int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
    return out;
}

/// Stops a child process at a moment it holds no write lock on the embedded
/// database (a process stopped inside a transaction would block everyone).
void stop_outside_transaction(pid_t pid) {
    for (int i = 0; i < 50; ++i) {
        kill(pid, SIGSTOP);
        int status = 0;
        REQUIRE(waitpid(pid, &status, WUNTRACED) == pid);
        REQUIRE(WIFSTOPPED(status));
        SQLite::Database db(backend().dir + "/queue.db", SQLite::OPEN_READWRITE, 200);
        try {
            db.exec("BEGIN IMMEDIATE");
            db.exec("ROLLBACK");
            return;
        } catch (const SQLite::Exception&) {
            kill(pid, SIGCONT);
            std::this_thread::sleep_for(20ms);
        }
    }
    FAIL("could not stop child " << pid << " outside a transaction");
}

}  // namespace

TEST_CASE("declare_queue is idempotent and keeps the queue's messages") {
    auto b = open();
    const auto q = unique_queue();
    b->declare_queue(q);
    b->declare_queue(q);
    CHECK(b->queue_depth(q) == 0);
    b->publish(q, "kept");
    b->declare_queue(q);
    CHECK(depth_eventually(*b, q, 1) == 1);

    // Another connection sees the same durable queue and message.
    auto other = open();
    other->declare_queue(q);
    CHECK(other->queue_depth(q) == 1);
    auto d = other->consume({q}, 5s);
    REQUIRE(d);
    CHECK(d->body == "kept");
    other->ack(*d);
}

TEST_CASE("publish, consume and ack keep bodies byte-exact") {
    std::string big;
    for (std::size_t i = 0; i < 100 * 1024; ++i) big.push_back(static_cast<char>((i * 7 + i / 256) % 256));
    const std::vector<std::string> bodies = {
        R"({"triggers": ["glibc/2.36-9"], "requester": "ana"})",
        "UTF-8: Grüße, ñandú, 日本語, emoji \xF0\x9F\x98\x80",
        "line one\nline two\r\n\ttabbed\n\n",
        std::string("nul\0inside\0", 11),
        "",
        big,
    };
    auto b = open();
    const auto q = unique_queue();
    b->declare_queue(q);
    for (const auto& body : bodies) b->publish(q, body);
    for (const auto& want : bodies) {
        auto d = b->consume({q}, 5s);
        REQUIRE(d);
        CHECK_MESSAGE(d->body == want, difference(d->body, want));
        CHECK(d->queue == q);
        CHECK_FALSE(d->redelivered);
        CHECK(d->attempt == 1);
        CHECK(d->reason.empty());
        b->ack(*d);
    }
    // Acked means gone, also for a new connection.
    CHECK_FALSE(b->consume({q}, 200ms));
    auto other = open();
    CHECK_FALSE(other->consume({q}, 200ms));
    CHECK(other->queue_depth(q) == 0);
}

TEST_CASE("a missing queue is NotFound and the broker stays usable") {
    auto b = open();
    const auto missing = unique_queue();
    const std::string what = what_of_publish(*b, missing);
    CHECK_MESSAGE(what.find(missing) != std::string::npos, "message does not name the queue: " << what);
    CHECK_THROWS_AS(b->consume({missing}, 100ms), NotFound);
    CHECK_THROWS_AS(b->queue_depth(missing), NotFound);

    const auto q = unique_queue();
    b->declare_queue(q);
    b->publish(q, "after the error");
    auto d = b->consume({q}, 5s);
    REQUIRE(d);
    CHECK(d->body == "after the error");
    b->ack(*d);
    // And the failed publish was not delivered anywhere once the queue exists.
    b->declare_queue(missing);
    CHECK_FALSE(b->consume({missing}, 200ms));
}

TEST_CASE("publish_many queues each message in order and refuses only those of a missing queue") {
    auto b = open();
    const auto q1 = unique_queue(), q2 = unique_queue(), missing = unique_queue();
    b->declare_queue(q1);
    b->declare_queue(q2);
    std::vector<Publication> messages;
    for (int i = 0; i < 1500; ++i) {  // more than one AMQP window, identical bodies among them
        const auto& q = i % 100 == 7 ? missing : i % 2 ? q2 : q1;
        messages.push_back({q, i % 3 == 0 ? std::string("same body") : "m" + std::to_string(i)});
    }
    messages.push_back({"", "invalid queue name"});
    messages.push_back({q1, "last"});
    const auto results = b->publish_many(messages);
    REQUIRE(results.size() == messages.size());
    std::size_t refused = 0;
    for (std::size_t i = 0; i < messages.size(); ++i) {
        CAPTURE(i);
        if (messages[i].queue == missing) {
            CHECK_FALSE(results[i].queued);
            CHECK(results[i].no_queue);
            CHECK_MESSAGE(results[i].error.find(missing) != std::string::npos, results[i].error);
            ++refused;
        } else if (messages[i].queue.empty()) {
            CHECK_FALSE(results[i].queued);
            CHECK_FALSE(results[i].error.empty());
        } else {
            CHECK_MESSAGE(results[i].queued, results[i].error);
            CHECK(results[i].error.empty());
        }
    }
    CHECK(refused == 15);
    // Every queued message is there once, in publication order per queue.
    for (const auto& q : {q1, q2}) {
        std::vector<std::string> want;
        for (const auto& m : messages)
            if (m.queue == q) want.push_back(m.body);
        CHECK(b->queue_depth(q) == want.size());
        for (const auto& body : want) {
            auto d = b->consume({q}, 5s);
            REQUIRE(d);
            CHECK(d->body == body);
            b->ack(*d);
        }
        CHECK_FALSE(b->consume({q}, 100ms));
    }
    b->declare_queue(missing);
    CHECK(b->queue_depth(missing) == 0);
    CHECK(b->publish_many({}).empty());
}

TEST_CASE("consume waits for its timeout, and no longer than it needs") {
    auto b = open();
    const auto q = unique_queue();
    b->declare_queue(q);

    auto t0 = Clock::now();
    CHECK_FALSE(b->consume({q}, 300ms));
    double waited = seconds_since(t0);
    CHECK(waited >= 0.28);
    CHECK(waited < 2.0);

    t0 = Clock::now();
    CHECK_FALSE(b->consume({q}, 0ms));
    CHECK(seconds_since(t0) < 0.5);

    // A message published by another connection during the wait ends it.
    std::thread publisher([q] {
        auto p = open();
        std::this_thread::sleep_for(200ms);
        p->publish(q, "late");
    });
    t0 = Clock::now();
    auto d = b->consume({q}, 10s);
    publisher.join();
    REQUIRE(d);
    CHECK(d->body == "late");
    CHECK(seconds_since(t0) < 2.0);
    b->ack(*d);
}

TEST_CASE("a queue is first in, first out") {
    auto b = open();
    const auto q = unique_queue();
    b->declare_queue(q);
    for (int i = 0; i < 30; ++i) b->publish(q, "m" + std::to_string(i));
    for (int i = 0; i < 30; ++i) {
        auto d = b->consume({q}, 5s);
        REQUIRE(d);
        CHECK(d->body == "m" + std::to_string(i));
        b->ack(*d);
    }
}

TEST_CASE("consume takes from any of the given queues and only from them") {
    auto b = open();
    const auto q1 = unique_queue(), q2 = unique_queue(), q3 = unique_queue();
    for (const auto& q : {q1, q2, q3}) b->declare_queue(q);
    b->publish(q1, "a");
    b->publish(q2, "b");
    b->publish(q3, "c");

    std::map<std::string, std::string> got;  // body -> queue
    for (int i = 0; i < 2; ++i) {
        auto d = b->consume({q1, q2}, 5s);
        REQUIRE(d);
        got[d->body] = d->queue;
        b->ack(*d);
    }
    CHECK(got == std::map<std::string, std::string>{{"a", q1}, {"b", q2}});
    CHECK_FALSE(b->consume({q1, q2}, 200ms));
    CHECK(b->queue_depth(q3) == 1);

    auto d = b->consume({q2, q3}, 5s);
    REQUIRE(d);
    CHECK(d->body == "c");
    CHECK(d->queue == q3);
    b->ack(*d);
}

TEST_CASE("requeue delivers the message again, marked redelivered") {
    auto b = open();
    const auto q = unique_queue();
    b->declare_queue(q);
    b->publish(q, "again");
    auto d1 = b->consume({q}, 5s);
    REQUIRE(d1);
    CHECK_FALSE(d1->redelivered);
    b->requeue(*d1);

    auto d2 = b->consume({q}, 5s);
    REQUIRE(d2);
    CHECK(d2->body == "again");
    CHECK(d2->redelivered);
    if (embedded()) CHECK(d2->attempt == 2);
    b->ack(*d2);
    CHECK_FALSE(b->consume({q}, 200ms));
}

TEST_CASE("prefetch 1: a consumer holds one delivery at a time") {
    auto b = open();
    const auto q = unique_queue();
    b->declare_queue(q);
    b->publish(q, "first");
    b->publish(q, "second");
    auto d1 = b->consume({q}, 5s);
    REQUIRE(d1);
    CHECK(d1->body == "first");
    CHECK_THROWS_AS(b->consume({q}, 100ms), BrokerError);
    b->ack(*d1);
    // Done with a delivery is done: a second ack is an error, not a no-op.
    CHECK_THROWS_AS(b->ack(*d1), BrokerError);

    auto d2 = b->consume({q}, 5s);
    REQUIRE(d2);
    CHECK(d2->body == "second");
    b->ack(*d2);
}

TEST_CASE("a second consumer does not get the message the first one holds") {
    auto first = open();
    auto second = open();
    const auto q = unique_queue();
    first->declare_queue(q);
    first->publish(q, "held");
    auto held = first->consume({q}, 5s);
    REQUIRE(held);
    CHECK_FALSE(second->consume({q}, 300ms));

    if (embedded()) {
        // Nor does another process.
        pid_t pid = spawn_child("[child] expects an empty queue", {{"APCLOUD_CHILD_QUEUE", q}});
        CHECK(wait_child(pid, 30s) == 0);
    }

    // The second consumer is live: it gets the next message.
    first->publish(q, "free");
    auto d = second->consume({q}, 5s);
    REQUIRE(d);
    CHECK(d->body == "free");
    second->ack(*d);
    first->ack(*held);
    CHECK(depth_eventually(*first, q, 0) == 0);
}

TEST_CASE("a delivery comes back when its consumer closes without acking") {
    auto keeper = open();
    const auto q = unique_queue();
    keeper->declare_queue(q);
    keeper->publish(q, "unfinished");
    {
        auto quitter = open();
        auto d = quitter->consume({q}, 5s);
        REQUIRE(d);
        CHECK(d->body == "unfinished");
    }
    auto d = keeper->consume({q}, 5s);
    REQUIRE(d);
    CHECK(d->body == "unfinished");
    CHECK(d->redelivered);
    if (embedded()) CHECK(d->attempt == 2);
    keeper->ack(*d);
}

TEST_CASE("dead_letter moves the message to <queue>.dead with its reason") {
    auto b = open();
    const auto q = unique_queue();
    const auto dead = q + ".dead";
    b->declare_queue(q);
    const std::string body = "{\"triggers\": [\"bad\"]}\n";
    const std::string reason = "invalid triggers \"bad\": not source/version";
    b->publish(q, body);
    auto d = b->consume({q}, 5s);
    REQUIRE(d);
    b->dead_letter(*d, reason);

    CHECK_FALSE(b->consume({q}, 300ms));
    CHECK(b->queue_depth(q) == 0);
    CHECK(depth_eventually(*b, dead, 1) == 1);
    auto dd = b->consume({dead}, 5s);
    REQUIRE(dd);
    CHECK(dd->body == body);
    CHECK(dd->queue == dead);
    CHECK(dd->reason == reason);
    b->ack(*dd);
    CHECK(depth_eventually(*b, dead, 0) == 0);
}

TEST_CASE("queue_depth counts ready messages, not unacknowledged ones") {
    auto b = open();
    const auto q = unique_queue();
    b->declare_queue(q);
    CHECK(b->queue_depth(q) == 0);
    for (int i = 0; i < 3; ++i) b->publish(q, "d" + std::to_string(i));
    CHECK(depth_eventually(*b, q, 3) == 3);
    auto d = b->consume({q}, 5s);
    REQUIRE(d);
    CHECK(depth_eventually(*b, q, 2) == 2);
    b->requeue(*d);
    CHECK(depth_eventually(*b, q, 3) == 3);
    d = b->consume({q}, 5s);
    REQUIRE(d);
    b->ack(*d);
    CHECK(depth_eventually(*b, q, 2) == 2);
    for (int i = 0; i < 2; ++i) {
        d = b->consume({q}, 5s);
        REQUIRE(d);
        b->ack(*d);
    }
    CHECK(depth_eventually(*b, q, 0) == 0);
}

TEST_CASE("fanout: every subscriber gets each event published after it subscribed, in order") {
    const auto ex = unique_exchange();
    auto publisher = open();
    auto b1 = open();
    auto b2 = open();
    publisher->publish_event(ex, "before anyone listened");
    auto s1 = b1->subscribe(ex);
    auto s2 = b2->subscribe(ex);
    auto s3 = publisher->subscribe(ex);  // also on the publishing connection
    std::vector<std::string> events;
    for (int i = 0; i < 20; ++i)
        events.push_back("{\"running\": true, \"n\": " + std::to_string(i) + ", \"logtail\": \"ü\\n\"}");
    for (const auto& e : events) publisher->publish_event(ex, e);
    for (Subscription* s : {s1.get(), s2.get(), s3.get()}) check_events(*s, events);
}

TEST_CASE("fanout: a subscriber that is gone or idle does not hold up the others") {
    const auto ex = unique_exchange();
    auto publisher = open();
    auto b1 = open();
    auto b2 = open();
    auto reader = b1->subscribe(ex);
    auto idle = b2->subscribe(ex);  // never reads
    auto gone = b2->subscribe(ex);
    gone.reset();
    for (int i = 0; i < 200; ++i) publisher->publish_event(ex, "e" + std::to_string(i));
    auto t0 = Clock::now();
    for (int i = 0; i < 200; ++i) {
        auto got = reader->next(5s);
        REQUIRE(got);
        CHECK(*got == "e" + std::to_string(i));
    }
    CHECK(seconds_since(t0) < 5.0);
    // A subscriber made after the events gets only what follows.
    auto late = b1->subscribe(ex);
    publisher->publish_event(ex, "after");
    auto got = late->next(5s);
    REQUIRE(got);
    CHECK(*got == "after");
    got = reader->next(5s);
    REQUIRE(got);
    CHECK(*got == "after");
}

// ---- bound queues: durable subscriptions to fanout exchanges ----

TEST_CASE("bind_queue: events published while nobody consumes are all delivered afterwards, in order, once") {
    const auto ex = unique_exchange();
    const auto q = unique_queue();
    open()->bind_queue(q, ex);  // the web service starts, binds, and goes down
    auto worker = open();
    std::vector<std::string> events;
    for (int i = 0; i < 20; ++i)
        events.push_back("{\"package\": \"p" + std::to_string(i) + "\", \"exitcode\": 0, \"ü\": \"\\n\"}");
    for (const auto& e : events) worker->publish_event(ex, e);
    CHECK(depth_eventually(*worker, q, events.size()) == events.size());

    auto web = open();       // back up
    web->bind_queue(q, ex);  // as every start does: the queue keeps what it holds
    CHECK(web->peek(q, 100) == events);
    for (const auto& want : events) {
        auto d = web->consume({q}, 5s);
        REQUIRE(d);
        CHECK(d->body == want);
        CHECK(d->queue == q);
        web->ack(*d);
    }
    CHECK_FALSE(web->consume({q}, 200ms));
    CHECK(web->queue_depth(q) == 0);
    CHECK(consume_all(*open(), q, 200ms).empty());  // acked is gone for everyone
    // And it goes on getting new events.
    worker->publish_event(ex, "later");
    auto d = web->consume({q}, 5s);
    REQUIRE(d);
    CHECK(d->body == "later");
    web->ack(*d);
}

TEST_CASE("bind_queue: an event not acked is delivered again, and every event is acked once") {
    const auto ex = unique_exchange();
    const auto q = unique_queue();
    auto b = open();
    b->bind_queue(q, ex);
    b->publish_event(ex, "first");
    b->publish_event(ex, "second");
    {
        auto crashed = open();
        auto d = crashed->consume({q}, 5s);
        REQUIRE(d);
        CHECK(d->body == "first");
    }  // gone without ack
    std::multiset<std::string> acked;
    bool first_again = false;
    while (auto d = b->consume({q}, 500ms)) {
        if (d->body == "first") {
            first_again = true;
            CHECK(d->redelivered);
            if (embedded()) CHECK(d->attempt == 2);
        }
        b->ack(*d);
        acked.insert(d->body);
    }
    CHECK(first_again);
    CHECK(acked == std::multiset<std::string>{"first", "second"});
    if (embedded()) {
        // The embedded broker keeps the order: the message kept its place.
        b->publish_event(ex, "third");
        b->publish_event(ex, "fourth");
        auto d = b->consume({q}, 5s);
        REQUIRE(d);
        b->requeue(*d);
        CHECK(consume_all(*b, q) == std::vector<std::string>{"third", "fourth"});
    }
}

TEST_CASE("bind_queue: two bound queues and a subscription each get every event") {
    const auto ex = unique_exchange();
    const auto q1 = unique_queue(), q2 = unique_queue();
    auto b1 = open();
    auto b2 = open();
    b1->bind_queue(q1, ex);
    b2->bind_queue(q2, ex);
    auto sub = b1->subscribe(ex);  // transient subscriptions work as before beside them
    const auto events = numbered("e", 10);
    for (const auto& e : events) b2->publish_event(ex, e);
    CHECK(consume_all(*b1, q1) == events);
    CHECK(consume_all(*b2, q2) == events);
    check_events(*sub, events);
}

TEST_CASE("bind_queue: binding twice is harmless, and a declared queue keeps its messages") {
    const auto ex = unique_exchange();
    const auto q = unique_queue();
    auto b = open();
    b->declare_queue(q);
    b->publish(q, "direct");
    b->bind_queue(q, ex);
    b->bind_queue(q, ex);
    open()->bind_queue(q, ex);  // another connection, as a restarted service
    CHECK(depth_eventually(*b, q, 1) == 1);
    b->publish_event(ex, "event");
    CHECK(depth_eventually(*b, q, 2) == 2);  // one copy, not one per bind
    CHECK(consume_all(*b, q) == std::vector<std::string>{"direct", "event"});
    // It is still an ordinary queue.
    b->publish(q, "direct again");
    CHECK(consume_all(*b, q) == std::vector<std::string>{"direct again"});
}

TEST_CASE("bind_queue: a queue bound after an event does not get it") {
    const auto ex = unique_exchange();
    const auto early = unique_queue(), late = unique_queue();
    auto b = open();
    b->publish_event(ex, "before any binding");
    b->bind_queue(early, ex);
    b->publish_event(ex, "e1");
    b->bind_queue(late, ex);
    b->publish_event(ex, "e2");
    CHECK(consume_all(*b, late) == std::vector<std::string>{"e2"});
    CHECK(consume_all(*b, early) == std::vector<std::string>{"e1", "e2"});
}

TEST_CASE("bind_queue: bad names are errors naming what is wrong") {
    auto b = open();
    CHECK_THROWS_AS(b->bind_queue("", unique_exchange()), apcloud::Error);
    CHECK_THROWS_AS(b->bind_queue(unique_queue(), ""), apcloud::Error);
    const std::string long_name(256, 'q');
    try {
        b->bind_queue(long_name, unique_exchange());
        FAIL_CHECK("accepted a queue name of 256 bytes");
    } catch (const apcloud::Error& e) {
        CHECK(std::string(e.what()).find("255") != std::string::npos);
    }
}

// ---- peek: what is queued, left queued ----

TEST_CASE("peek lists the ready messages in delivery order and leaves them queued") {
    auto b = open();
    const auto q = unique_queue();
    b->declare_queue(q);
    CHECK(b->peek(q, 10).empty());
    const auto messages = numbered("m", 5);
    for (const auto& m : messages) b->publish(q, m);
    CHECK(b->peek(q, 10) == messages);
    CHECK(b->peek(q, 10) == messages);  // nothing was taken
    CHECK(b->peek(q, 3) == std::vector<std::string>(messages.begin(), messages.begin() + 3));
    CHECK(b->peek(q, 1) == std::vector<std::string>{"m0"});
    CHECK(b->peek(q, 0).empty());
    CHECK(depth_eventually(*b, q, 5) == 5);
    auto other = open();
    CHECK(other->peek(q, 100) == messages);
    CHECK(other->queue_depth(q) == 5);

    for (const auto& want : messages) {
        auto d = b->consume({q}, 5s);
        REQUIRE(d);
        CHECK(d->body == want);
        if (embedded()) {
            // Not even counted as a delivery (RabbitMQ marks them redelivered).
            CHECK(d->attempt == 1);
            CHECK_FALSE(d->redelivered);
        }
        b->ack(*d);
    }
    CHECK(b->peek(q, 10).empty());
}

TEST_CASE("peek keeps bodies byte-exact") {
    auto b = open();
    const auto q = unique_queue();
    b->declare_queue(q);
    std::string big(200 * 1024, 'x');
    for (std::size_t i = 0; i < big.size(); i += 13) big[i] = static_cast<char>(i % 256);
    const std::vector<std::string> bodies = {std::string("nul\0inside", 10), "", "Grüße\r\n", big};
    for (const auto& body : bodies) b->publish(q, body);
    auto got = b->peek(q, 10);
    REQUIRE(got.size() == bodies.size());
    for (std::size_t i = 0; i < bodies.size(); ++i)
        CHECK_MESSAGE(got[i] == bodies[i], difference(got[i], bodies[i]));
    CHECK(consume_all(*b, q) == bodies);
}

TEST_CASE("peek does not list messages held by a consumer, and does not disturb them") {
    auto holder = open();
    auto viewer = open();
    const auto q = unique_queue();
    holder->declare_queue(q);
    for (const auto& m : {"held", "m1", "m2"}) holder->publish(q, m);
    auto d = holder->consume({q}, 5s);
    REQUIRE(d);
    CHECK(d->body == "held");
    CHECK(viewer->peek(q, 10) == std::vector<std::string>{"m1", "m2"});
    CHECK(holder->peek(q, 10) == std::vector<std::string>{"m1", "m2"});  // beside its own delivery
    holder->requeue(*d);  // the delivery is still the holder's to settle
    auto listed = viewer->peek(q, 10);
    CHECK(std::multiset<std::string>(listed.begin(), listed.end()) ==
          std::multiset<std::string>{"held", "m1", "m2"});
    d = holder->consume({q}, 5s);
    REQUIRE(d);
    CHECK(viewer->peek(q, 10).size() == 2);
    holder->ack(*d);
    CHECK(consume_all(*viewer, q).size() == 2);
    CHECK(holder->peek(q, 10).empty());
}

TEST_CASE("peek of a missing queue is NotFound naming it; the broker and its delivery go on") {
    auto b = open();
    const auto q = unique_queue();
    b->declare_queue(q);
    b->publish(q, "held");
    b->publish(q, "next");
    auto d = b->consume({q}, 5s);
    REQUIRE(d);
    const auto missing = unique_queue();
    try {
        b->peek(missing, 5);
        FAIL_CHECK("peek of a missing queue succeeded");
    } catch (const NotFound& e) {
        CHECK_MESSAGE(std::string(e.what()).find(missing) != std::string::npos, e.what());
    }
    CHECK_THROWS_AS(b->peek(missing, 0), NotFound);
    CHECK_THROWS_AS(b->peek("", 1), apcloud::Error);
    CHECK(b->peek(q, 5) == std::vector<std::string>{"next"});
    b->ack(*d);  // the consumer's delivery was not touched by the failed peeks
    CHECK(consume_all(*b, q) == std::vector<std::string>{"next"});
    CHECK(b->queue_depth(q) == 0);
}

TEST_CASE("peek shows a dead-letter queue and a bound queue like any other") {
    auto b = open();
    const auto q = unique_queue();
    b->declare_queue(q);
    b->publish(q, "poison");
    auto d = b->consume({q}, 5s);
    REQUIRE(d);
    b->dead_letter(*d, "bad");
    CHECK(depth_eventually(*b, q + ".dead", 1) == 1);
    CHECK(b->peek(q + ".dead", 5) == std::vector<std::string>{"poison"});
    auto dd = b->consume({q + ".dead"}, 5s);
    REQUIRE(dd);
    CHECK(dd->reason == "bad");  // peeking kept the reason
    b->ack(*dd);

    const auto ex = unique_exchange();
    const auto web = unique_queue();
    b->bind_queue(web, ex);
    b->publish_event(ex, "{\"exitcode\": 4}");
    CHECK(b->peek(web, 5) == std::vector<std::string>{"{\"exitcode\": 4}"});
    CHECK(consume_all(*b, web).size() == 1);
}

TEST_CASE("peek_messages gives each dead letter's reason, in order, and consumes nothing") {
    auto b = open();
    const auto q = unique_queue();
    const auto dead = q + ".dead";
    b->declare_queue(q);
    b->publish(q, "first");
    b->publish(q, "second");
    for (const char* reason : {"invalid package name \"Bad!\"", "delivered 4 times without completing"}) {
        auto d = b->consume({q}, 5s);
        REQUIRE(d);
        b->dead_letter(*d, reason);
    }
    REQUIRE(depth_eventually(*b, dead, 2) == 2);
    for (int round = 0; round < 2; ++round) {  // the second sees the same: nothing was taken
        auto got = b->peek_messages(dead, 10);
        REQUIRE(got.size() == 2);
        CHECK(got[0].body == "first");
        CHECK(got[0].reason == "invalid package name \"Bad!\"");
        CHECK(got[1].body == "second");
        CHECK(got[1].reason == "delivered 4 times without completing");
        if (embedded()) {
            CHECK(got[0].deliveries == std::optional<std::uint32_t>(0));  // counted afresh in the dead queue
        } else {
            CHECK_FALSE(got[0].deliveries.has_value());  // a classic queue keeps no count
        }
    }
    CHECK(b->peek(dead, 10) == std::vector<std::string>{"first", "second"});
    CHECK(b->peek_messages(dead, 1).size() == 1);
    CHECK(b->peek_messages(dead, 0).empty());
    CHECK(depth_eventually(*b, dead, 2) == 2);
    CHECK(b->queue_depth(q) == 0);
    auto d = b->consume({dead}, 5s);
    REQUIRE(d);
    CHECK(d->body == "first");
    CHECK(d->reason == "invalid package name \"Bad!\"");
    b->ack(*d);
    // An ordinary queue's messages have no reason.
    b->publish(q, "plain");
    auto plain = b->peek_messages(q, 10);
    REQUIRE(plain.size() == 1);
    CHECK(plain[0].body == "plain");
    CHECK(plain[0].reason.empty());
    CHECK_THROWS_AS(b->peek_messages(q + "-missing", 1), NotFound);
}

TEST_CASE("publish_dead_letter queues a dead letter with its reason, declaring the dead-letter queue") {
    auto b = open();
    const auto q = unique_queue();  // never declared: only its dead-letter queue is made
    b->publish_dead_letter(q, "hello\n{\"uuid\": \"u1\"}", "unknown release");
    b->publish_dead_letter(q, "again", "second reason");
    REQUIRE(depth_eventually(*b, q + ".dead", 2) == 2);
    auto got = b->peek_messages(q + ".dead", 10);
    REQUIRE(got.size() == 2);
    CHECK(got[0].body == "hello\n{\"uuid\": \"u1\"}");
    CHECK(got[0].reason == "unknown release");
    CHECK(got[1].reason == "second reason");
    CHECK_THROWS_AS(b->queue_depth(q), NotFound);
    auto d = b->consume({q + ".dead"}, 5s);
    REQUIRE(d);
    CHECK(d->reason == "unknown release");
    if (embedded()) CHECK(d->attempt == 1);  // on RabbitMQ the peek above made it a redelivery
    b->ack(*d);
    CHECK_THROWS_AS(b->publish_dead_letter("", "x", "y"), apcloud::Error);
    CHECK_THROWS_AS(b->publish_dead_letter(std::string(251, 'q'), "x", "y"), apcloud::Error);
}

TEST_CASE("1000 messages are delivered exactly once across two concurrent consumers") {
    const int n = 1000;
    auto b = open();
    const auto q = unique_queue();
    b->declare_queue(q);
    std::vector<std::vector<std::string>> received(2);
    std::vector<std::string> errors(2);
    std::vector<pid_t> children;
    std::vector<std::thread> threads;
    // Half before the consumers start (they compete for a backlog), half while
    // they run (they wait for new messages).
    for (int i = 0; i < n / 2; ++i) b->publish(q, "msg-" + std::to_string(i));
    if (embedded()) {
        for (int c = 0; c < 2; ++c)
            children.push_back(
                spawn_child("[child] drains a queue until STOP",
                            {{"APCLOUD_CHILD_QUEUE", q},
                             {"APCLOUD_CHILD_OUT", backend().dir + "/" + q + "-" + std::to_string(c)}}));
    } else {
        for (std::size_t c = 0; c < 2; ++c)
            threads.emplace_back([&received, &errors, q, c] {
                try {
                    auto consumer = open();
                    errors[c] = drain_until_stop(*consumer, q, received[c]);
                } catch (const std::exception& e) {
                    errors[c] = e.what();
                }
            });
    }
    for (int i = n / 2; i < n; ++i) b->publish(q, "msg-" + std::to_string(i));
    // One STOP each; a consumer leaves after its first, so each gets one.
    b->publish(q, "STOP");
    b->publish(q, "STOP");
    for (auto& t : threads) t.join();
    for (const auto& e : errors) CHECK_MESSAGE(e.empty(), e);
    for (std::size_t c = 0; c < children.size(); ++c) {
        CHECK(wait_child(children[c], 120s) == 0);
        received[c] = lines_of(read_file(backend().dir + "/" + q + "-" + std::to_string(c)));
    }
    std::map<std::string, int> count;
    for (const auto& r : received)
        for (const auto& body : r) ++count[body];
    CHECK(count.size() == static_cast<std::size_t>(n));
    int duplicates = 0;
    for (const auto& [body, k] : count) duplicates += k > 1;
    CHECK(duplicates == 0);
    for (int i = 0; i < n; ++i)
        CHECK_MESSAGE(count.count("msg-" + std::to_string(i)) == 1, "msg-" << i << " lost");
    MESSAGE("consumer shares: " << received[0].size() << " + " << received[1].size());
    CHECK(depth_eventually(*b, q, 0) == 0);
}

// ---- embedded only: processes that die or stall ----

TEST_CASE("embedded: a live consumer keeps its lease; a killed one's delivery comes back, attempt 2" *
          doctest::skip(!embedded_selected())) {
    auto b = open();
    const auto q = unique_queue();
    b->declare_queue(q);
    b->publish(q, "long test");
    const std::string flag = backend().dir + "/" + q + "-held";
    pid_t pid = spawn_child(
        "[child] holds a delivery until killed",
        {{"APCLOUD_CHILD_QUEUE", q}, {"APCLOUD_CHILD_FLAG", flag}, {child_url_var, short_lease_url("1.5")}});
    REQUIRE(wait_for_file(flag, 30s));
    CHECK(read_file(flag) == "1");
    // Several leases long: the child's heartbeat keeps the message.
    std::this_thread::sleep_for(4s);
    CHECK_FALSE(b->consume({q}, 0ms));
    CHECK(b->queue_depth(q) == 0);

    kill(pid, SIGKILL);
    CHECK(wait_child(pid, 10s) == -SIGKILL);
    auto t0 = Clock::now();
    auto d = b->consume({q}, 10s);
    REQUIRE(d);
    CHECK(seconds_since(t0) < 3.0);  // within one lease (1.5 s) and a poll
    CHECK(d->body == "long test");
    CHECK(d->redelivered);
    CHECK(d->attempt == 2);
    b->ack(*d);
}

TEST_CASE("embedded: a consumer whose lease ran out cannot ack" * doctest::skip(!embedded_selected())) {
    auto b = open();
    const auto q = unique_queue();
    b->declare_queue(q);
    b->publish(q, "contested");
    const std::string flag = backend().dir + "/" + q + "-held";
    const std::string go = backend().dir + "/" + q + "-go";
    pid_t pid =
        spawn_child("[child] acks late and must be refused", {{"APCLOUD_CHILD_QUEUE", q},
                                                              {"APCLOUD_CHILD_FLAG", flag},
                                                              {"APCLOUD_CHILD_GO", go},
                                                              {child_url_var, short_lease_url("0.5")}});
    REQUIRE(wait_for_file(flag, 30s));
    // A stopped process renews nothing: its lease expires while it lives.
    stop_outside_transaction(pid);
    auto d = b->consume({q}, 10s);
    REQUIRE(d);
    CHECK(d->attempt == 2);
    kill(pid, SIGCONT);
    write_file(go, "go");
    CHECK(wait_child(pid, 30s) == 0);  // the child CHECKs its ack throws
    b->ack(*d);                        // the new owner's ack counts
    CHECK(b->queue_depth(q) == 0);
    CHECK_FALSE(b->consume({q}, 100ms));
}

TEST_CASE("embedded: a dead subscriber is dropped and keeps no events" *
          doctest::skip(!embedded_selected())) {
    const auto ex = unique_exchange();
    const std::string flag = backend().dir + "/" + ex + "-subscribed";
    pid_t pid = spawn_child("[child] subscribes until killed", {{"APCLOUD_CHILD_EXCHANGE", ex},
                                                                {"APCLOUD_CHILD_FLAG", flag},
                                                                {child_url_var, short_lease_url("0.5")}});
    REQUIRE(wait_for_file(flag, 30s));
    auto b = open();
    auto live = b->subscribe(ex);
    SQLite::Database db(backend().dir + "/queue.db", SQLite::OPEN_READONLY, 5000);
    auto count = [&](const char* sql) {
        SQLite::Statement s(db, sql);
        s.bind(1, ex);
        s.executeStep();
        return s.getColumn(0).getInt64();
    };
    CHECK(count("SELECT count(*) FROM subscribers WHERE exchange=?1") == 2);
    kill(pid, SIGKILL);
    CHECK(wait_child(pid, 10s) == -SIGKILL);
    std::this_thread::sleep_for(1200ms);  // more than the dead one's lease
    for (int i = 0; i < 10; ++i) {
        b->publish_event(ex, "e" + std::to_string(i));
        auto got = live->next(5s);
        REQUIRE(got);
        CHECK(*got == "e" + std::to_string(i));
    }
    b->publish_event(ex, "last");  // collects what the live one has read
    CHECK(count("SELECT count(*) FROM subscribers WHERE exchange=?1") == 1);
    CHECK(count("SELECT count(*) FROM events WHERE exchange=?1") <= 2);
}

TEST_CASE("embedded: a bound queue across processes: another's events wait, a killed consumer's comes back" *
          doctest::skip(!embedded_selected())) {
    const auto ex = unique_exchange();
    const auto q = unique_queue();
    open()->bind_queue(q, ex);
    // Published by another process while nobody consumes.
    pid_t publisher = spawn_child("[child] publishes events",
                                  {{"APCLOUD_CHILD_EXCHANGE", ex}, {"APCLOUD_CHILD_COUNT", "5"}});
    CHECK(wait_child(publisher, 30s) == 0);
    auto b = open();
    const auto events = numbered("event-", 5);
    CHECK(b->peek(q, 10) == events);

    const std::string flag = backend().dir + "/" + q + "-held";
    pid_t pid = spawn_child(
        "[child] holds a delivery until killed",
        {{"APCLOUD_CHILD_QUEUE", q}, {"APCLOUD_CHILD_FLAG", flag}, {child_url_var, short_lease_url("1")}});
    REQUIRE(wait_for_file(flag, 30s));
    CHECK(read_file(flag) == "1");
    CHECK(b->peek(q, 10) == std::vector<std::string>(events.begin() + 1, events.end()));
    kill(pid, SIGKILL);
    CHECK(wait_child(pid, 10s) == -SIGKILL);
    // Once its lease (1 s) has run out, the killed one's event is first again.
    std::this_thread::sleep_for(1500ms);
    auto d = b->consume({q}, 10s);
    REQUIRE(d);
    CHECK(d->body == "event-0");
    CHECK(d->attempt == 2);
    b->ack(*d);
    CHECK(consume_all(*b, q) == std::vector<std::string>(events.begin() + 1, events.end()));
}

TEST_CASE("embedded: peek changes no row, and reads while another process holds the write lock" *
          doctest::skip(!embedded_selected())) {
    auto b = open();
    const auto q = unique_queue();
    b->declare_queue(q);
    for (const auto& m : numbered("m", 3)) b->publish(q, m);
    SQLite::Database db(backend().dir + "/queue.db", SQLite::OPEN_READWRITE, 5000);
    auto rows = [&] {
        SQLite::Statement s(
            db,
            "SELECT group_concat(id || ':' || lease_until || ':' || coalesce(owner, '-') || ':' "
            "|| attempt, ' ') FROM messages WHERE queue=?1");
        s.bind(1, q);
        s.executeStep();
        return s.getColumn(0).getString();
    };
    const std::string before = rows();
    db.exec("BEGIN IMMEDIATE");  // a writer busy elsewhere
    CHECK(b->peek(q, 10) == numbered("m", 3));
    db.exec("ROLLBACK");
    CHECK(rows() == before);
}

TEST_CASE("embedded: a schema version 1 file is upgraded in place and keeps its messages" *
          doctest::skip(!embedded_selected())) {
    const std::string path = backend().dir + "/v1.db";
    const std::string url = "sqlite://" + path;
    const auto q = unique_queue();
    {
        auto b = apcloud::open_broker(url);
        b->declare_queue(q);
        b->publish(q, "from version 1");
    }
    {
        // What version 1 of the library left: no bindings table.
        SQLite::Database db(path, SQLite::OPEN_READWRITE);
        db.exec("DROP TABLE bindings");
        db.exec("PRAGMA user_version=1");
    }
    auto b = apcloud::open_broker(url);
    const auto ex = unique_exchange();
    b->bind_queue(q, ex);
    b->publish_event(ex, "event");
    CHECK(consume_all(*b, q) == std::vector<std::string>{"from version 1", "event"});
    SQLite::Database db(path, SQLite::OPEN_READONLY);
    CHECK(db.execAndGet("PRAGMA user_version").getInt() == 2);
}

TEST_CASE("embedded: the broker file is made readable by its owner only" * doctest::skip(!embedded_selected())) {
    const std::string path = backend().dir + "/private-mode.db";
    auto b = apcloud::open_broker("sqlite://" + path);
    b->declare_queue("q");
    b->publish("q", "a private request");
    for (const std::string& f : {path, path + "-wal", path + "-shm"}) {
        CAPTURE(f);
        struct stat st {};
        if (::stat(f.c_str(), &st) != 0) continue;  // -wal/-shm exist only while open in WAL mode
        CHECK((st.st_mode & 0777) == 0600);
    }
    // A file an operator opened up keeps its mode.
    b.reset();
    ::chmod(path.c_str(), 0640);
    apcloud::open_broker("sqlite://" + path)->publish("q", "another");
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0640);
}

TEST_CASE("embedded: URL options, names and foreign files are checked" *
          doctest::skip(!embedded_selected())) {
    const std::string path = backend().dir + "/options.db";
    for (const char* query : {"?lease=abc", "?lease=0.01", "?lease=", "?synchronous=sometimes",
                              "?busy_timeout=-1", "?leese=30"}) {
        CAPTURE(query);
        try {
            apcloud::open_broker("sqlite://" + path + query);
            FAIL_CHECK("accepted");
        } catch (const apcloud::ConfigError& e) {
            CHECK(std::string(e.what()).find(path) != std::string::npos);
        }
    }
    for (const char* query : {"?lease=0.5", "?synchronous=full", "?synchronous=normal&busy_timeout=100"})
        CHECK_NOTHROW(apcloud::open_broker("sqlite://" + path + query));

    const std::string nowhere = backend().dir + "/no/such/dir/queue.db";
    try {
        apcloud::open_broker("sqlite://" + nowhere);
        FAIL_CHECK("opened a database in a missing directory");
    } catch (const BrokerError& e) {
        CHECK(std::string(e.what()).find(nowhere) != std::string::npos);
    }

    auto b = open();
    CHECK_THROWS_AS(b->declare_queue(""), apcloud::ValidationError);
    CHECK_THROWS_AS(b->declare_queue(std::string(256, 'q')), apcloud::ValidationError);
    CHECK_THROWS_AS(b->consume({}, 0ms), apcloud::ValidationError);
    CHECK_THROWS_AS(b->subscribe(""), apcloud::ValidationError);
    CHECK_THROWS_AS(b->bind_queue("", "x.fanout"), apcloud::ValidationError);
    CHECK_THROWS_AS(b->bind_queue("q", ""), apcloud::ValidationError);
    CHECK_THROWS_AS(b->peek(std::string(256, 'q'), 1), apcloud::ValidationError);

    // A database written by a different schema version is refused, not mangled.
    const std::string future = backend().dir + "/future.db";
    {
        SQLite::Database db(future, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
        db.exec("PRAGMA user_version=99");
    }
    try {
        apcloud::open_broker("sqlite://" + future);
        FAIL_CHECK("opened a database of schema version 99");
    } catch (const BrokerError& e) {
        CHECK(std::string(e.what()).find(future) != std::string::npos);
    }
}

// ---- the child processes' parts, run only through spawn_child ----

TEST_CASE("[child] expects an empty queue" * doctest::skip()) {
    auto b = open();
    CHECK_FALSE(b->consume({child_var("APCLOUD_CHILD_QUEUE")}, 500ms));
}

TEST_CASE("[child] drains a queue until STOP" * doctest::skip()) {
    auto b = open();
    std::vector<std::string> got;
    CHECK(drain_until_stop(*b, child_var("APCLOUD_CHILD_QUEUE"), got) == "");
    std::string text;
    for (const auto& body : got) text += body + "\n";
    write_file(child_var("APCLOUD_CHILD_OUT"), text);
}

TEST_CASE("[child] holds a delivery until killed" * doctest::skip()) {
    auto b = open();
    auto d = b->consume({child_var("APCLOUD_CHILD_QUEUE")}, 10s);
    REQUIRE(d);
    write_file(child_var("APCLOUD_CHILD_FLAG"), std::to_string(d->attempt));
    for (;;) std::this_thread::sleep_for(1s);
}

TEST_CASE("[child] acks late and must be refused" * doctest::skip()) {
    auto b = open();
    const auto q = child_var("APCLOUD_CHILD_QUEUE");
    auto d = b->consume({q}, 10s);
    REQUIRE(d);
    write_file(child_var("APCLOUD_CHILD_FLAG"), "held");
    REQUIRE(wait_for_file(child_var("APCLOUD_CHILD_GO"), 30s));
    try {
        b->ack(*d);
        FAIL_CHECK("ack after losing the lease succeeded");
    } catch (const BrokerError& e) {
        CHECK(std::string(e.what()).find(q) != std::string::npos);
    }
    // The broker object goes on working, and the message is someone else's.
    CHECK_FALSE(b->consume({q}, 100ms));
}

TEST_CASE("[child] publishes events" * doctest::skip()) {
    auto b = open();
    const auto ex = child_var("APCLOUD_CHILD_EXCHANGE");
    const int n = std::stoi(child_var("APCLOUD_CHILD_COUNT"));
    for (const auto& e : numbered("event-", n)) b->publish_event(ex, e);
}

TEST_CASE("[child] subscribes until killed" * doctest::skip()) {
    auto b = open();
    auto s = b->subscribe(child_var("APCLOUD_CHILD_EXCHANGE"));
    write_file(child_var("APCLOUD_CHILD_FLAG"), "subscribed");
    for (;;) std::this_thread::sleep_for(1s);
}
