// The AMQP broker against a real RabbitMQ: confirms, NotFound, prefetch 1, settle errors, events.
#include <doctest/doctest.h>

#include <algorithm>
#include <autopkgtest_cloud/broker.hpp>
#include <autopkgtest_cloud/error.hpp>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "amqp_test_util.hpp"

using namespace apcloud;
using namespace std::chrono_literals;
using amqp_test::contains;
using amqp_test::unique_name;

namespace {
std::unique_ptr<Broker> worker() {
    return open_broker(amqp_test::require_env("APCLOUD_AMQP_URL"));
}
}  // namespace

TEST_CASE("publish, consume, ack: persistent round trip, byte-exact") {
    auto b = worker();
    auto q = unique_name("apcloud-t-roundtrip");
    b->declare_queue(q);
    b->declare_queue(q);  // idempotent
    std::string binary;
    for (int i = 0; i < 256; ++i) binary += static_cast<char>(i);
    const std::string bodies[] = {"hello\n{\"triggers\": [\"hello/1.0\"]}", binary, ""};
    for (const auto& body : bodies) b->publish(q, body);
    CHECK(b->queue_depth(q) == 3);
    for (const auto& body : bodies) {
        auto d = b->consume({q}, 5s);
        REQUIRE(d);
        CHECK(d->queue == q);
        CHECK(d->body == body);
        CHECK_FALSE(d->redelivered);
        CHECK(d->attempt == 1);
        b->ack(*d);
    }
    CHECK(b->queue_depth(q) == 0);
    CHECK_FALSE(b->consume({q}, 200ms));
}

TEST_CASE("missing queues are NotFound, and the broker keeps working afterwards") {
    auto b = worker();
    auto missing = unique_name("apcloud-t-missing");
    try {
        b->publish(missing, "lost?");
        FAIL("publish to a missing queue succeeded");
    } catch (const NotFound& e) {
        CHECK(contains(e.what(), missing));
        CHECK(contains(e.what(), "312"));
    }
    CHECK_THROWS_AS(b->queue_depth(missing), NotFound);
    try {
        b->consume({missing}, 100ms);
        FAIL("consume from a missing queue succeeded");
    } catch (const NotFound& e) {
        CHECK(contains(e.what(), missing));
        CHECK(contains(e.what(), "404"));
    }
    auto q = unique_name("apcloud-t-after");
    b->declare_queue(q);
    b->publish(q, "still works");
    auto d = b->consume({q}, 5s);
    REQUIRE(d);
    CHECK(d->body == "still works");
    b->ack(*d);
}

TEST_CASE("prefetch 1 over several queues: one message held at a time") {
    auto b = worker();
    auto q1 = unique_name("apcloud-t-pf1"), q2 = unique_name("apcloud-t-pf2");
    b->declare_queue(q1);
    b->declare_queue(q2);
    b->publish(q1, "one");
    b->publish(q2, "two");
    auto first = b->consume({q1, q2}, 5s);
    REQUIRE(first);
    CHECK_THROWS_AS(b->consume({q1, q2}, 300ms), BrokerError);  // holding one: settle it first
    b->ack(*first);
    auto second = b->consume({q1, q2}, 5s);
    REQUIRE(second);
    CHECK(second->queue != first->queue);
    CHECK(second->body == (second->queue == q1 ? "one" : "two"));
    b->ack(*second);
}

TEST_CASE("changing the queue list: only the listed queues deliver") {
    auto b = worker();
    auto q1 = unique_name("apcloud-t-list1"), q2 = unique_name("apcloud-t-list2");
    b->declare_queue(q1);
    b->declare_queue(q2);
    for (int i = 0; i < 3; ++i) b->publish(q1, "q1-" + std::to_string(i));
    b->publish(q2, "q2-0");
    auto d = b->consume({q1}, 5s);
    REQUIRE(d);
    CHECK(d->body == "q1-0");
    b->ack(*d);
    d = b->consume({q2}, 5s);
    REQUIRE(d);
    CHECK(d->body == "q2-0");
    b->ack(*d);
    CHECK_FALSE(b->consume({q2}, 200ms));
    // A message prefetched for q1 before the switch went back to q1, in order.
    for (int i = 1; i < 3; ++i) {
        d = b->consume({q1}, 5s);
        REQUIRE(d);
        CHECK(d->body == "q1-" + std::to_string(i));
        b->ack(*d);
    }
    CHECK(b->queue_depth(q1) == 0);
}

TEST_CASE("requeue gives the message back, marked redelivered") {
    auto b = worker();
    auto q = unique_name("apcloud-t-requeue");
    b->declare_queue(q);
    b->publish(q, "again");
    auto d = b->consume({q}, 5s);
    REQUIRE(d);
    b->requeue(*d);
    auto d2 = b->consume({q}, 5s);
    REQUIRE(d2);
    CHECK(d2->body == "again");
    CHECK(d2->redelivered);
    CHECK(d2->attempt >= 2);
    CHECK(d2->tag != d->tag);
    b->ack(*d2);
    CHECK(b->queue_depth(q) == 0);
}

namespace {
std::unique_ptr<Broker> leasing_worker(int seconds) {
    std::string url = amqp_test::require_env("APCLOUD_AMQP_URL");
    url += (url.find('?') == std::string::npos ? "?lease=" : "&lease=") + std::to_string(seconds);
    return open_broker(url);
}

// Holds a delivery of `q` past its 1 s lease without renewing, until its copy is back on `q`.
Delivery hold_past_lease(Broker& leasing, Broker& observer, const std::string& q) {
    auto d = leasing.consume({q}, 5s);
    REQUIRE(d);
    CHECK(observer.queue_depth(q) == 0);  // leased: only the lease copy exists
    auto until = std::chrono::steady_clock::now() + 20s;
    while (observer.queue_depth(q) == 0 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(200ms);
    REQUIRE(observer.queue_depth(q) == 1);
    return *d;
}
}  // namespace

TEST_CASE("a lease that expired before the ack: its copy is dropped by its consumer, run by another") {
    auto b = leasing_worker(1);
    auto observer = worker();
    auto q = unique_name("apcloud-t-expired");
    b->declare_queue(q);

    // The same consumer: the request ran, so the copy is a duplicate.
    b->publish(q, "done late");
    Delivery d = hold_past_lease(*b, *observer, q);
    b->ack(d);
    CHECK(observer->queue_depth(q) == 1);
    CHECK_FALSE(b->consume({q}, 1s));
    CHECK(observer->queue_depth(q) == 0);

    // Given back late: the copy is the same request again, dropped too; the requeued one stays.
    b->publish(q, "given back late");
    d = hold_past_lease(*b, *observer, q);
    b->requeue(d);
    auto again = b->consume({q}, 5s);
    REQUIRE(again);
    CHECK(again->body == "given back late");
    b->ack(*again);
    CHECK_FALSE(b->consume({q}, 1s));
    CHECK(observer->queue_depth(q) == 0);

    // Another consumer knows nothing of the lease: it gets the copy (at least once, never lost).
    b->publish(q, "taken by another");
    d = hold_past_lease(*b, *observer, q);
    auto other = leasing_worker(30);
    auto o = other->consume({q}, 5s);
    REQUIRE(o);
    CHECK(o->body == "taken by another");
    CHECK(o->redelivered);
    b->ack(d);
    other->ack(*o);
    CHECK(observer->queue_depth(q) == 0);
}

TEST_CASE("settling twice is a BrokerError naming the queue; the broker goes on") {
    auto b = worker();
    auto q = unique_name("apcloud-t-twice");
    b->declare_queue(q);
    b->publish(q, "x");
    b->publish(q, "y");
    auto d = b->consume({q}, 5s);
    REQUIRE(d);
    b->ack(*d);
    try {
        b->ack(*d);
        FAIL("second ack succeeded");
    } catch (const BrokerError& e) {
        CHECK(contains(e.what(), q));
    }
    CHECK_THROWS_AS(b->requeue(*d), BrokerError);
    CHECK_THROWS_AS(b->dead_letter(*d, "no"), BrokerError);
    auto d2 = b->consume({q}, 5s);
    REQUIRE(d2);
    CHECK(d2->body == "y");
    b->ack(*d2);
}

TEST_CASE("dead_letter copies to <queue>.dead, then removes the original") {
    auto b = worker();
    auto q = unique_name("apcloud-t-dead");
    b->declare_queue(q);
    b->publish(q, "poison\n{}");
    auto d = b->consume({q}, 5s);
    REQUIRE(d);
    b->dead_letter(*d, "invalid request: bad JSON");
    CHECK(b->queue_depth(q) == 0);
    CHECK(b->queue_depth(q + ".dead") == 1);
    auto dd = b->consume({q + ".dead"}, 5s);
    REQUIRE(dd);
    CHECK(dd->body == "poison\n{}");
    CHECK(dd->reason == "invalid request: bad JSON");
    CHECK(dd->queue == q + ".dead");
    b->ack(*dd);
}

TEST_CASE("peek: RabbitMQ gives the messages back in order, marked redelivered") {
    auto b = worker();
    auto q = unique_name("apcloud-t-peek");
    b->declare_queue(q);
    for (int i = 0; i < 3; ++i) b->publish(q, "p" + std::to_string(i));
    CHECK(b->peek(q, 2) == std::vector<std::string>{"p0", "p1"});
    CHECK(b->queue_depth(q) == 3);
    for (int i = 0; i < 3; ++i) {
        auto d = b->consume({q}, 5s);
        REQUIRE(d);
        CHECK(d->body == "p" + std::to_string(i));
        // As documented: basic.get then channel close marks them redelivered
        // (the third was never handed out).
        CHECK(d->redelivered == (i < 2));
        b->ack(*d);
    }
}

TEST_CASE("peek beside a consumer waiting on another connection: nothing is lost or doubled") {
    auto viewer = worker();
    auto consumer = worker();
    auto q = unique_name("apcloud-t-peek-wait");
    viewer->declare_queue(q);
    std::vector<std::string> got;
    std::string error;
    std::thread t([&] {
        try {
            while (got.size() < 20) {
                auto d = consumer->consume({q}, 10s);
                if (!d) break;
                consumer->ack(*d);
                got.push_back(d->body);
            }
        } catch (const std::exception& e) {
            error = e.what();
        }
    });
    for (int i = 0; i < 20; ++i) {
        viewer->publish(q, "w" + std::to_string(i));
        viewer->peek(q, 5);
    }
    t.join();
    CHECK_MESSAGE(error.empty(), error);
    std::sort(got.begin(), got.end());
    CHECK(std::adjacent_find(got.begin(), got.end()) == got.end());
    CHECK(got.size() == 20);
    CHECK(viewer->queue_depth(q) == 0);
}

TEST_CASE("bind_queue on the transient teststatus exchange is allowed") {
    auto b = worker();
    auto q = unique_name("apcloud-t-status");
    b->bind_queue(q, teststatus_exchange);
    auto marker = unique_name("status");
    b->publish_event(teststatus_exchange, "{\"marker\": \"" + marker + "\"}");
    bool seen = false;
    while (auto d = b->consume({q}, 1s)) {
        seen = seen || contains(d->body, marker);
        b->ack(*d);
    }
    CHECK(seen);
    amqp_test::delete_queue(amqp_test::require_env("APCLOUD_AMQP_URL"), q);
}

TEST_CASE("fanout events reach every live subscriber, not later ones") {
    auto b = worker();
    for (const char* ex : {teststatus_exchange, testcomplete_exchange}) {
        CAPTURE(ex);
        auto s1 = b->subscribe(ex);
        auto s2 = b->subscribe(ex);
        auto marker = unique_name("event");
        b->publish_event(ex, "{\"id\": \"" + marker + "\"}");
        // Other tests may publish on the same exchange: skip their events.
        for (auto* s : {s1.get(), s2.get()}) {
            bool seen = false;
            for (int i = 0; i < 100 && !seen; ++i) {
                auto e = s->next(5s);
                REQUIRE(e);
                seen = contains(*e, marker);
            }
            CHECK(seen);
        }
        auto late = b->subscribe(ex);
        auto e = late->next(300ms);
        CHECK((!e || !contains(*e, marker)));
    }
}

TEST_CASE("publish_event without subscribers is fine; a bad exchange name is an error") {
    auto b = worker();
    b->publish_event(testcomplete_exchange, "{}");
    CHECK_THROWS_AS(b->publish_event("", "{}"), BrokerError);
    CHECK_THROWS_AS(b->subscribe(""), BrokerError);
}

TEST_CASE("an unreachable broker fails within reconnect_wait, naming the URL without password") {
    auto start = std::chrono::steady_clock::now();
    try {
        // Port 1 on loopback: connection refused at once.
        open_broker("amqp://worker:hunter2@127.0.0.1:1/%2F?reconnect_wait=1");
        FAIL("connected to port 1");
    } catch (const BrokerError& e) {
        std::string msg = e.what();
        CHECK(contains(msg, "127.0.0.1:1"));
        CHECK_FALSE(contains(msg, "hunter2"));
        CHECK(contains(msg, "attempts"));
    }
    CHECK(std::chrono::steady_clock::now() - start < 5s);
}
