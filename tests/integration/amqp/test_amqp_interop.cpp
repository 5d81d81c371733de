// Interop with pika (the reference's client): each side consumes what the other published, byte-exact.
#include <doctest/doctest.h>

#include <autopkgtest_cloud/broker.hpp>
#include <autopkgtest_cloud/error.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "amqp_test_util.hpp"

using namespace apcloud;
using namespace std::chrono_literals;
using amqp_test::base64_decode;
using amqp_test::base64_encode;
using amqp_test::require_env;
using amqp_test::unique_name;

namespace {
std::vector<std::string> pika(const std::vector<std::string>& args, const std::string& input = "",
                              int want_status = 0) {
    std::vector<std::string> argv = {require_env("APCLOUD_PYTHON"), require_env("APCLOUD_PIKA_PEER")};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = amqp_test::run(argv, input);
    REQUIRE_MESSAGE(r.status == want_status,
                    "pika_peer " << args.at(0) << " exited " << r.status << ": " << r.out);
    return {r.out};
}

// Bodies that a text-minded client would mangle: binary, NUL, UTF-8, CR LF, large.
std::vector<std::string> tricky_bodies() {
    std::string binary;
    for (int i = 0; i < 256; ++i) binary += static_cast<char>(255 - i);
    std::string big(300 * 1024, 'x');  // more than one AMQP frame (128 kB)
    for (std::size_t i = 0; i < big.size(); i += 97) big[i] = static_cast<char>(i % 251);
    return {"gedit\n{\"triggers\": [\"gedit/46.1-1\"], \"submit-time\": \"2024-03-21 13:04:12\"}",
            "glibc {\"triggers\": [\"glibc/2.39-0ubuntu8\"]}",
            std::string("nul\0byte", 8),
            "Grüße 日本語 \xF0\x9F\x98\x80\r\n",
            binary,
            "",
            big};
}
}  // namespace

TEST_CASE("pika consumes what we published: persistent, byte-exact") {
    auto url = require_env("APCLOUD_AMQP_URL");
    auto b = open_broker(url);
    auto q = unique_name("debci-interop-ours");
    b->declare_queue(q);
    auto bodies = tricky_bodies();
    for (const auto& body : bodies) b->publish(q, body);
    auto out = nlohmann::json::parse(pika({"consume", url, q, std::to_string(bodies.size()), "20"})[0]);
    REQUIRE(out.size() == bodies.size());
    for (std::size_t i = 0; i < bodies.size(); ++i) {
        CAPTURE(i);
        CHECK(base64_decode(out[i]["body"].get<std::string>()) == bodies[i]);
        CHECK(out[i]["delivery_mode"] == 2);
        CHECK(out[i]["redelivered"] == false);
    }
    CHECK(b->queue_depth(q) == 0);
}

TEST_CASE("we consume what pika published") {
    auto url = require_env("APCLOUD_AMQP_URL");
    auto b = open_broker(url);
    auto q = unique_name("debci-interop-pika");
    b->declare_queue(q);
    auto bodies = tricky_bodies();
    nlohmann::json in = nlohmann::json::array();
    for (const auto& body : bodies) in.push_back(base64_encode(body));
    pika({"publish", url, q}, in.dump());
    for (const auto& body : bodies) {
        auto d = b->consume({q}, 10s);
        REQUIRE(d);
        CHECK(d->body == body);
        CHECK(d->queue == q);
        b->ack(*d);
    }
    CHECK_FALSE(b->consume({q}, 200ms));
}

TEST_CASE("what we declare is what the reference declares: durable queues, SPEC's exchanges") {
    auto url = require_env("APCLOUD_AMQP_URL");
    auto b = open_broker(url);
    auto q = unique_name("debci-interop-durable");
    b->declare_queue(q);
    // RabbitMQ refuses a redeclaration with other properties (406): pika's
    // declaration as the reference does it must be accepted as equivalent.
    pika({"check-durable", url, "queue", q, "1"});
    pika({"check-durable", url, "queue", q, "0"}, "", 3);
    b->publish_event(testcomplete_exchange, "{}");
    b->publish_event(teststatus_exchange, "{}");
    pika({"check-durable", url, "exchange", testcomplete_exchange, "1"});
    pika({"check-durable", url, "exchange", teststatus_exchange, "0"});
    pika({"check-durable", url, "exchange", teststatus_exchange, "1"}, "", 3);
}

TEST_CASE("bind_queue on testcomplete.fanout: the queue the reference's web service declares, read by pika") {
    auto url = require_env("APCLOUD_AMQP_URL");
    auto b = open_broker(url);
    auto ours = unique_name("apcloud-web-ours");
    auto theirs = unique_name("apcloud-web-theirs");
    b->bind_queue(ours, testcomplete_exchange);
    // Declared as the reference declares it: equivalent, no 406 either way.
    pika({"check-durable", url, "queue", ours, "1"});
    pika({"check-durable", url, "queue", ours, "0"}, "", 3);
    pika({"bind-web", url, theirs, testcomplete_exchange});
    b->bind_queue(theirs, testcomplete_exchange);

    const std::string event = "{\"marker\": \"" + ours + "\", \"exitcode\": 0}";
    b->publish_event(testcomplete_exchange, event);
    // Other tests may publish testcomplete events meanwhile: look for ours.
    for (const auto& q : {ours, theirs}) {
        CAPTURE(q);
        auto out = nlohmann::json::parse(pika({"consume", url, q, "100", "3"})[0]);
        bool seen = false;
        for (const auto& m : out) {
            if (base64_decode(m["body"].get<std::string>()) != event) continue;
            seen = true;
            CHECK(m["delivery_mode"] == 2);  // persistent: kept across RabbitMQ restarts
        }
        CHECK(seen);
        amqp_test::delete_queue(url, q);
    }
}

TEST_CASE("a dead-lettered message is readable by pika, with the reason in a header") {
    auto url = require_env("APCLOUD_AMQP_URL");
    auto b = open_broker(url);
    auto q = unique_name("debci-interop-dead");
    b->declare_queue(q);
    b->publish(q, "bad\n{\"triggers\": 3}");
    auto d = b->consume({q}, 5s);
    REQUIRE(d);
    b->dead_letter(*d, "invalid triggers: not a list");
    auto out = nlohmann::json::parse(pika({"consume", url, q + ".dead", "1", "10"})[0]);
    REQUIRE(out.size() == 1);
    CHECK(base64_decode(out[0]["body"].get<std::string>()) == "bad\n{\"triggers\": 3}");
    CHECK(out[0]["delivery_mode"] == 2);
    CHECK(out[0]["headers"]["x-apcloud-reason"] == "invalid triggers: not a list");
    CHECK(out[0]["headers"]["x-apcloud-queue"] == q);
    CHECK(b->queue_depth(q) == 0);
}
