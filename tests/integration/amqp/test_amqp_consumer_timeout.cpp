// RabbitMQ's consumer ack timeout (on a private node with a 2 s timeout): a clear error, the message back, no
// harm.
#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <autopkgtest_cloud/broker.hpp>
#include <autopkgtest_cloud/error.hpp>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>

#include "amqp_test_util.hpp"

using namespace apcloud;
using namespace std::chrono_literals;
using amqp_test::contains;
using amqp_test::require_env;
using amqp_test::unique_name;

namespace {
// A RabbitMQ node of its own (scripts/rabbitmq-start), stopped and removed at the end.
struct PrivateRabbit {
    std::string dir;
    std::string url;

    explicit PrivateRabbit(const char* consumer_timeout_ms) {
        char tmpl[] = "/tmp/apcloud-amqp-timeout-XXXXXX";
        REQUIRE(mkdtemp(tmpl));
        dir = tmpl;
        chmod(dir.c_str(), 0755);  // the server runs as user rabbitmq
        setenv("APCLOUD_RABBITMQ_CONSUMER_TIMEOUT_MS", consumer_timeout_ms, 1);
        auto r = amqp_test::run({require_env("APCLOUD_SCRIPTS") + "/rabbitmq-start", dir});
        unsetenv("APCLOUD_RABBITMQ_CONSUMER_TIMEOUT_MS");
        REQUIRE_MESSAGE(r.status == 0, "rabbitmq-start exited " << r.status);
        std::istringstream lines(r.out);
        for (std::string line; std::getline(lines, line);)
            if (line.rfind("APCLOUD_AMQP_URL=", 0) == 0) url = line.substr(17);
        REQUIRE_FALSE(url.empty());
    }
    ~PrivateRabbit() {
        amqp_test::run({require_env("APCLOUD_SCRIPTS") + "/rabbitmq-stop", dir});
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
};
}  // namespace

TEST_CASE("the broker times out a held delivery: ack says so, the message comes back, the broker goes on") {
    require_env("APCLOUD_RABBITMQ_DIR");  // RabbitMQ tests are enabled (we start a node of our own)
    PrivateRabbit rabbit("2000");
    auto b = open_broker(rabbit.url);
    auto q = unique_name("debci-timeout-noble-amd64");
    b->declare_queue(q);
    b->publish(q, "slow test");
    b->publish(q, "next");
    auto held = b->consume({q}, 5s);
    REQUIRE(held);
    CHECK(held->body == "slow test");

    // RabbitMQ checks the timeout periodically (about every 10 s in 3.10):
    // when it fires, the held message is back in the queue.
    auto until = std::chrono::steady_clock::now() + 60s;
    while (b->queue_depth(q) < 2 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(500ms);
    REQUIRE(b->queue_depth(q) == 2);

    try {
        b->ack(*held);
        FAIL("ack after the consumer timeout succeeded");
    } catch (const BrokerError& e) {
        MESSAGE("late ack: " << std::string(e.what()));
        CHECK(contains(e.what(), q));
        CHECK(contains(e.what(), "PRECONDITION_FAILED"));
        CHECK(contains(e.what(), "delivered again"));
    }
    // Same connection, new consumer channel: everything still works.
    b->publish(q, "after");
    for (const char* want : {"slow test", "next", "after"}) {
        auto d = b->consume({q}, 5s);
        REQUIRE(d);
        CHECK(d->body == want);
        if (d->body == "slow test") CHECK(d->redelivered);
        b->ack(*d);
    }
    CHECK(b->queue_depth(q) == 0);
}
