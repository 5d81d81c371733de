// RabbitMQ's accounts as SPEC section 2 sets them up: the requester only publishes; guest cannot log in.
#include <doctest/doctest.h>

#include <autopkgtest_cloud/broker.hpp>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/url.hpp>
#include <chrono>
#include <string>

#include "amqp_test_util.hpp"

using namespace apcloud;
using namespace std::chrono_literals;
using amqp_test::contains;
using amqp_test::require_env;
using amqp_test::unique_name;

namespace {
// The worker's URL with other credentials (same host, port and vhost).
std::string with_credentials(const std::string& user, const std::string& password) {
    Url u = parse_url(require_env("APCLOUD_AMQP_URL"));
    return "amqp://" + percent_encode(user) + ":" + percent_encode(password) + "@" + u.host + ":" +
           std::to_string(u.port.value_or(5672)) + u.raw_path;
}

// Runs `f`, expecting a BrokerError (not NotFound) saying ACCESS_REFUSED and naming `name`.
template <class F>
void expect_refused(F&& f, const std::string& name) {
    try {
        f();
        FAIL("not refused: " << name);
    } catch (const NotFound& e) {
        FAIL("NotFound instead of a refusal: " << e.what());
    } catch (const BrokerError& e) {
        CHECK_MESSAGE(contains(e.what(), "403"), e.what());
        CHECK_MESSAGE(contains(e.what(), "ACCESS_REFUSED"), e.what());
        CHECK_MESSAGE(contains(e.what(), name), e.what());
    }
}
}  // namespace

TEST_CASE("the requester publishes to debci-* queues, and can do nothing else") {
    auto worker = open_broker(require_env("APCLOUD_AMQP_URL"));
    auto requester = open_broker(require_env("APCLOUD_AMQP_REQUESTER_URL"));
    auto q = unique_name("debci-perm-noble-amd64");
    worker->declare_queue(q);

    requester->publish(q, "hello\n{\"triggers\": [\"hello/1\"]}");
    requester->publish(q, "gedit");
    CHECK(worker->queue_depth(q) == 2);

    expect_refused([&] { requester->consume({q}, 1s); }, q);
    expect_refused([&] { requester->declare_queue(unique_name("debci-perm-new")); }, "debci-perm-new");
    expect_refused([&] { requester->publish_event(testcomplete_exchange, "{}"); }, testcomplete_exchange);
    expect_refused([&] { requester->subscribe(teststatus_exchange); }, teststatus_exchange);
    // A publish to a queue that does not exist is still NotFound, not lost.
    CHECK_THROWS_AS(requester->publish(unique_name("debci-perm-missing"), "x"), NotFound);

    // The refusals closed channels, not the connection: publishing goes on.
    requester->publish(q, "after the refusals");
    CHECK(worker->queue_depth(q) == 3);

    // And the worker consumes all of it.
    for (const char* want : {"hello\n{\"triggers\": [\"hello/1\"]}", "gedit", "after the refusals"}) {
        auto d = worker->consume({q}, 5s);
        REQUIRE(d);
        CHECK(d->body == want);
        worker->ack(*d);
    }
}

TEST_CASE("guest and wrong passwords cannot log in, and say so at once") {
    for (auto [user, password] : {std::pair<std::string, std::string>{"guest", "guest"},
                                  {"worker", "not-the-password"},
                                  {"requester", "guess"}}) {
        CAPTURE(user);
        auto start = std::chrono::steady_clock::now();
        try {
            open_broker(with_credentials(user, password));
            FAIL("logged in as " << user);
        } catch (const BrokerError& e) {
            std::string msg = e.what();
            CHECK_MESSAGE(contains(msg, "ACCESS_REFUSED"), msg);
            CHECK(contains(msg, "'" + user + "'"));
            if (password != user) CHECK_FALSE(contains(msg, password));
        }
        // A refused login is not retried like a broker that is down.
        CHECK(std::chrono::steady_clock::now() - start < 5s);
    }
}
