// Unit tests of the operator's commands' pure parts: dead-letter names, summaries, selection and text;
// running.json.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "autopkgtest_cloud/admin.hpp"
#include "autopkgtest_cloud/error.hpp"

using namespace apcloud;

TEST_CASE("dead-letter queue names: .dead added once, the original read back") {
    CHECK(dead_letter_queue_name("debci-noble-amd64") == "debci-noble-amd64.dead");
    CHECK(dead_letter_queue_name("debci-noble-amd64.dead") == "debci-noble-amd64.dead");
    CHECK_THROWS_AS(dead_letter_queue_name(""), ValidationError);
    CHECK_THROWS_AS(dead_letter_queue_name(".dead"), ValidationError);
    CHECK(original_queue_name("debci-ppa-noble-arm64.dead") == "debci-ppa-noble-arm64");
    CHECK_THROWS_WITH_AS(original_queue_name("debci-noble-amd64"), doctest::Contains("'debci-noble-amd64'"),
                         ValidationError);
    CHECK_THROWS_AS(original_queue_name(".dead"), ValidationError);
}

TEST_CASE("a valid body is summarised by the parser, an invalid one leniently, garbage not at all") {
    auto ok = summarize_request(
        "hello\n{\"requester\": \"alice\", \"triggers\": [\"hello/1\"], \"uuid\": \"u-1\"}");
    CHECK(ok.parse_error.empty());
    CHECK(ok.package == "hello");
    CHECK(ok.uuid == std::optional<std::string>("u-1"));
    CHECK(ok.requester == std::optional<std::string>("alice"));
    CHECK(ok.triggers == std::vector<std::string>{"hello/1"});

    auto forged = summarize_request(
        "gedit\n{\"env\": [\"ADT_TEST_TRIGGERS=x/1\"], \"uuid\": \"u-2\", \"triggers\": [1, \"a/1\"]}");
    CHECK_FALSE(forged.parse_error.empty());
    CHECK_FALSE(forged.unreadable);
    CHECK(forged.package == "gedit");
    CHECK(forged.uuid == std::optional<std::string>("u-2"));
    CHECK(forged.triggers == std::vector<std::string>{"a/1"});

    auto garbage = summarize_request("gedit\n{not json");
    CHECK_FALSE(garbage.parse_error.empty());
    CHECK(garbage.unreadable);
    CHECK_FALSE(garbage.uuid);
    auto deep = summarize_request("gedit\n" + std::string(100, '[') + std::string(100, ']'));
    CHECK(deep.unreadable);  // nesting bounded, no crash
}

TEST_CASE("selection: nothing selected is refused; --uuid takes only its requests") {
    DeadLetterSelection none;
    CHECK_THROWS_WITH_AS(none.validate(), doctest::Contains("--uuid"), ValidationError);
    PeekedMessage m{"hello\n{\"uuid\": \"u-1\"}", "why", std::nullopt};
    auto letter = describe_dead_letter("debci-noble-amd64.dead", 1, m);
    CHECK(letter.release == "noble");
    CHECK(letter.arch == "amd64");
    DeadLetterSelection by_uuid;
    by_uuid.uuids = {"u-1"};
    CHECK_NOTHROW(by_uuid.validate());
    CHECK(by_uuid.selects(letter));
    by_uuid.uuids = {"u-2"};
    CHECK_FALSE(by_uuid.selects(letter));
    DeadLetterSelection all;
    all.all = true;
    CHECK(all.selects(describe_dead_letter("other.dead", 1, PeekedMessage{"\xff", "", std::nullopt})));
}

TEST_CASE("dead letters as text and JSON") {
    std::vector<DeadLetter> letters = {
        describe_dead_letter(
            "debci-noble-amd64.dead", 1,
            PeekedMessage{"hello\n{\"requester\": \"alice\", \"uuid\": \"u-1\"}", "not configured", 2}),
        describe_dead_letter("debci-noble-amd64.dead", 2,
                             PeekedMessage{"Bad_Name", "package: bad", std::nullopt}),
    };
    CHECK(format_dead_letters(letters) ==
          "debci-noble-amd64.dead #1 'hello' noble/amd64 uuid='u-1' requester='alice'\n"
          "    reason: 'not configured'\n    deliveries: 2\n"
          "debci-noble-amd64.dead #2 'Bad_Name' noble/amd64\n    reason: 'package: bad'\n"
          "    body: 'Bad_Name'\n    invalid: " +
              letters[1].request.parse_error + "\n");
    auto j = nlohmann::json::parse(dead_letters_json(letters));
    CHECK(j[0]["deliveries"] == 2);
    CHECK(j[1]["deliveries"].is_null());
    CHECK(j[1]["valid"] == false);
    CHECK(j[0]["uuid"] == "u-1");
    CHECK(format_dead_letters({}).empty());
}

TEST_CASE("running.json read, stale flags applied, printed") {
    const std::string text =
        "{\"gedit\": {\"requester_alice;triggers_['g/1'];\": {\"noble\": {\"amd64\": "
        "[{\"requester\": \"alice\", \"triggers\": [\"g/1\"]}, 65, \"log\"]}}}}";
    auto tests = parse_running_json(text);
    REQUIRE(tests.size() == 1);
    CHECK(tests[0].package == "gedit");
    CHECK(tests[0].duration == 65);
    CHECK(tests[0].triggers == std::vector<std::string>{"g/1"});
    CHECK_FALSE(tests[0].stale);
    CHECK(
        format_running_tests(tests) ==
        "PACKAGE  RELEASE  ARCH   TIME     TRIGGERS  STALE\ngedit    noble    amd64  0:01:05  g/1       ?\n");
    apply_running_api(tests,
                      "[{\"package\": \"gedit\", \"release\": \"noble\", \"arch\": \"amd64\", \"params\": "
                      "{\"triggers\": [\"g/1\"], \"requester\": \"alice\"}, \"stale\": true}]");
    CHECK(tests[0].stale == std::optional<bool>(true));
    CHECK(nlohmann::json::parse(running_tests_json(tests))[0]["stale"] == true);
    CHECK(format_running_tests({}) == "no tests running\n");
    CHECK(format_running_time(3725) == "1:02:05");
    CHECK_THROWS_WITH_AS(parse_running_json("{\"gedit\": {\"h\": {\"noble\": {\"amd64\": [1]}}}}"),
                         doctest::Contains("'gedit'"), ParseError);
    CHECK_THROWS_AS(parse_running_json("[]"), ParseError);
    CHECK_THROWS_AS(parse_running_json("{"), ParseError);
    CHECK_THROWS_AS(apply_running_api(tests, "{}"), ParseError);
}
