// Broker restarts and forced disconnects: nothing lost, nothing acked comes back, the broker object goes on.
#include <doctest/doctest.h>

#include <autopkgtest_cloud/broker.hpp>
#include <autopkgtest_cloud/error.hpp>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "amqp_test_util.hpp"

using namespace apcloud;
using namespace std::chrono_literals;
using amqp_test::contains;
using amqp_test::require_env;
using amqp_test::unique_name;

namespace {
// Runs one of scripts/rabbitmq-* on the test's RabbitMQ directory.
void rabbit(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {require_env("APCLOUD_SCRIPTS") + "/" + args.at(0),
                                     require_env("APCLOUD_RABBITMQ_DIR")};
    argv.insert(argv.end(), args.begin() + 1, args.end());
    auto r = amqp_test::run(argv);
    REQUIRE_MESSAGE(r.status == 0, args.at(0) << " exited " << r.status);
}

// Consumes and acks everything until the queue stays empty for `idle`.
void drain(Broker& b, const std::string& q, std::map<std::string, int>& acked,
           std::chrono::milliseconds idle) {
    while (auto d = b.consume({q}, idle)) {
        b.ack(*d);
        ++acked[d->body];
    }
}

// The held delivery cannot be settled any more: a clear BrokerError, never a silent success.
void expect_stale(Broker& b, const Delivery& held, const std::string& q) {
    try {
        b.ack(held);
        FAIL("ack of a delivery from a closed connection succeeded");
    } catch (const NotFound& e) {
        FAIL("NotFound: " << e.what());
    } catch (const BrokerError& e) {
        MESSAGE("stale ack: " << std::string(e.what()));
        CHECK(contains(e.what(), q));
        CHECK(contains(e.what(), "delivered again"));
    }
}
}  // namespace

TEST_CASE("restarts while a delivery is held and while idle: every message acked exactly once") {
    require_env("APCLOUD_RABBITMQ_DIR");
    auto b = open_broker(require_env("APCLOUD_AMQP_URL"));
    auto q = unique_name("debci-restart-noble-amd64");
    b->declare_queue(q);
    const int n = 30;
    for (int i = 0; i < n; ++i) b->publish(q, "m-" + std::to_string(i));
    auto events = b->subscribe(testcomplete_exchange);

    std::map<std::string, int> acked;
    for (int i = 0; i < 5; ++i) {
        auto d = b->consume({q}, 5s);
        REQUIRE(d);
        b->ack(*d);
        ++acked[d->body];
    }
    auto held = b->consume({q}, 5s);
    REQUIRE(held);
    CHECK(held->body == "m-5");

    rabbit({"rabbitmq-restart"});  // while the delivery is held

    expect_stale(*b, *held, q);
    CHECK_THROWS_AS(b->requeue(*held), BrokerError);
    // Publishing reconnects by itself.
    for (int i = 0; i < 5; ++i) b->publish(q, "after-restart-" + std::to_string(i));
    bool saw_held_again = false;
    for (int i = 0; i < 10; ++i) {
        auto d = b->consume({q}, 10s);
        REQUIRE(d);
        if (d->body == held->body) {
            saw_held_again = true;
            CHECK(d->redelivered);
        }
        b->ack(*d);
        ++acked[d->body];
    }
    CHECK(saw_held_again);

    rabbit({"rabbitmq-restart"});  // while idle

    // The subscription comes back too (events published while it was down are gone).
    CHECK_FALSE(events->next(500ms));
    b->publish_event(testcomplete_exchange, "{\"marker\": \"" + q + "\"}");
    bool saw_event = false;
    for (int i = 0; i < 50 && !saw_event; ++i) {
        auto e = events->next(5s);
        REQUIRE(e);
        saw_event = contains(*e, q);
    }
    CHECK(saw_event);

    drain(*b, q, acked, 2s);
    CHECK(b->queue_depth(q) == 0);
    CHECK(acked.size() == static_cast<std::size_t>(n + 5));
    for (int i = 0; i < n; ++i) CHECK_MESSAGE(acked["m-" + std::to_string(i)] == 1, "m-" << i);
    for (int i = 0; i < 5; ++i)
        CHECK_MESSAGE(acked["after-restart-" + std::to_string(i)] == 1, "after-restart-" << i);
}

TEST_CASE("a bound queue keeps its events across a restart; a binding to teststatus must be made again") {
    require_env("APCLOUD_RABBITMQ_DIR");
    const std::string url = require_env("APCLOUD_AMQP_URL");
    auto b = open_broker(url);
    const auto ex = unique_name("apcloud-restart") + ".fanout";  // durable, as testcomplete
    const auto q = unique_name("apcloud-web-restart");
    const auto status_q = unique_name("apcloud-status-restart");
    b->bind_queue(q, ex);
    b->bind_queue(status_q, teststatus_exchange);
    for (int i = 0; i < 3; ++i) b->publish_event(ex, "before-" + std::to_string(i));
    const std::string status_marker = "{\"marker\": \"" + status_q + "\"}";
    b->publish_event(teststatus_exchange, status_marker);
    CHECK(b->peek(status_q, 10) == std::vector<std::string>{status_marker});
    CHECK(b->peek(q, 10) == std::vector<std::string>{"before-0", "before-1", "before-2"});

    rabbit({"rabbitmq-restart"});

    b->publish_event(ex, "after");  // reconnects; the durable binding is still there
    std::vector<std::string> got;
    while (auto d = b->consume({q}, 2s)) {
        b->ack(*d);
        got.push_back(d->body);
    }
    CHECK(got == std::vector<std::string>{"before-0", "before-1", "before-2", "after"});
    // The queue bound to the transient exchange is still there, without its
    // transient events or its binding (the exchange went with the restart)...
    CHECK(b->queue_depth(status_q) == 0);
    b->publish_event(teststatus_exchange, "{\"lost\": true}");
    CHECK(b->queue_depth(status_q) == 0);
    // ...until bind_queue is called again, as a service does when it starts.
    b->bind_queue(status_q, teststatus_exchange);
    b->publish_event(teststatus_exchange, "{\"seen\": true}");
    CHECK(b->peek(status_q, 10) == std::vector<std::string>{"{\"seen\": true}"});
    amqp_test::delete_queue(url, status_q);
    amqp_test::delete_queue(url, q);
}

TEST_CASE("a consume waiting across a restart gets the message published after it") {
    require_env("APCLOUD_RABBITMQ_DIR");
    auto b = open_broker(require_env("APCLOUD_AMQP_URL"));
    auto q = unique_name("debci-waiting-noble-amd64");
    b->declare_queue(q);
    std::string error;
    std::thread restarter([&] {
        try {
            std::this_thread::sleep_for(1s);
            rabbit({"rabbitmq-restart"});
            open_broker(require_env("APCLOUD_AMQP_URL"))->publish(q, "wake up");
        } catch (const std::exception& e) {
            error = e.what();
        } catch (...) {  // a failed REQUIRE in rabbit()
            error = "restarting RabbitMQ failed";
        }
    });
    auto d = b->consume({q}, 90s);
    restarter.join();
    CHECK_MESSAGE(error.empty(), error);
    REQUIRE(d);
    CHECK(d->body == "wake up");
    b->ack(*d);
    CHECK(b->queue_depth(q) == 0);
}

TEST_CASE("the broker closes every connection: the held delivery comes back, the rest goes on") {
    require_env("APCLOUD_RABBITMQ_DIR");
    auto b = open_broker(require_env("APCLOUD_AMQP_URL"));
    auto q = unique_name("debci-forced-noble-amd64");
    b->declare_queue(q);
    for (int i = 0; i < 4; ++i) b->publish(q, "f-" + std::to_string(i));
    auto held = b->consume({q}, 5s);
    REQUIRE(held);

    rabbit({"rabbitmqctl", "close_all_connections", "apcloud reconnect test"});

    expect_stale(*b, *held, q);
    std::map<std::string, int> acked;
    drain(*b, q, acked, 2s);
    CHECK(acked.size() == 4);
    for (const auto& [body, count] : acked) CHECK_MESSAGE(count == 1, body);
    CHECK(b->queue_depth(q) == 0);
}

TEST_CASE("a long idle hold survives: the keepalive answers heartbeats") {
    require_env("APCLOUD_RABBITMQ_DIR");
    // heartbeat=1: RabbitMQ drops a connection silent for ~2 s; we sleep 5 s
    // without calling the broker while holding the delivery.
    std::string url = require_env("APCLOUD_AMQP_URL");
    auto b = open_broker(url + (url.find('?') == std::string::npos ? "?" : "&") + "heartbeat=1");
    auto q = unique_name("debci-idle-noble-amd64");
    b->declare_queue(q);
    b->publish(q, "long test");
    auto held = b->consume({q}, 5s);
    REQUIRE(held);
    std::this_thread::sleep_for(5s);
    b->ack(*held);  // still the same connection and channel: no error
    CHECK(b->queue_depth(q) == 0);
    CHECK_FALSE(b->consume({q}, 300ms));
}
