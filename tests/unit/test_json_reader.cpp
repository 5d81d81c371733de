// Unit tests of the strict streaming JSON reader behind the request parser.
#include <autopkgtest_cloud/error.hpp>
#include <doctest/doctest.h>

#include "core/json_reader.hpp"

using apcloud::ParseError;
using apcloud::detail::JsonReader;
using apcloud::detail::JsonType;

namespace {
// Skips one whole value and requires the end; throws ParseError when malformed.
std::string_view skip_all(std::string_view text) {
    JsonReader in(text);
    auto v = in.skip_value();
    in.finish();
    return v;
}
}  // namespace

TEST_CASE("reads objects, arrays, strings, numbers, literals") {
    JsonReader in(R"( {"a": ["x", "y\n\u00e9\ud83d\ude00"], "b": true, "c": -1.5e+3, "d": null, "e": {}} )");
    in.begin_object();
    std::string key, s;
    REQUIRE(in.next_key(key));
    CHECK(key == "a");
    in.begin_array();
    REQUIRE(in.next_item());
    in.read_string(s);
    CHECK(s == "x");
    REQUIRE(in.next_item());
    in.read_string(s);
    CHECK(s == "y\n\xc3\xa9\xf0\x9f\x98\x80");
    CHECK_FALSE(in.next_item());
    REQUIRE(in.next_key(key));
    CHECK(in.read_bool());
    REQUIRE(in.next_key(key));
    CHECK(in.read_number() == "-1.5e+3");
    REQUIRE(in.next_key(key));
    CHECK(in.peek() == JsonType::null);
    CHECK(in.skip_value() == "null");
    REQUIRE(in.next_key(key));
    CHECK(in.skip_value() == "{}");
    CHECK_FALSE(in.next_key(key));
    in.finish();
}

TEST_CASE("skip_value returns the raw text") {
    CHECK(skip_all(R"({"k": [1, {"x": []}]})") == R"({"k": [1, {"x": []}]})");
    CHECK(skip_all("[]") == "[]");
    CHECK(skip_all(" 0 ") == "0");
}

TEST_CASE("malformed JSON is refused") {
    for (auto bad : {"", "{", "}", "[1,]", "{\"a\":1,}", "{,}", "[,1]", "{\"a\" 1}", "{a: 1}", "01", "1.", ".5", "1e",
                     "-", "+1", "tru", "nul", "\"abc", "\"a\tb\"", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"",
                     "\"\\udc00\"", "\"\\ud800\\u0041\"", "[1 2]", "{\"a\":1}{", "{\"a\":1} x", "'a'", "[1]]",
                     "{\"a\":1]", "[1}"})
        CHECK_THROWS_AS_MESSAGE(skip_all(bad), ParseError, bad);
}

TEST_CASE("nesting is bounded") {
    std::string deep(40, '[');
    deep += std::string(40, ']');
    CHECK_THROWS_AS(skip_all(deep), ParseError);
    std::string ok(20, '[');
    ok += std::string(20, ']');
    CHECK(skip_all(ok) == ok);
}

TEST_CASE("errors name the byte offset") {
    CHECK_THROWS_WITH_AS(skip_all("[1, x]"), "invalid JSON at byte 4: expected a value", ParseError);
}
