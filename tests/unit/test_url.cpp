// Unit tests of backend URL parsing.
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/url.hpp>
#include <doctest/doctest.h>

using namespace apcloud;

TEST_CASE("amqp URLs with credentials, port and vhost") {
    auto u = parse_url("amqp://worker:p%40ss%3Aw0rd@127.0.0.1:5673/%2F?heartbeat=30");
    CHECK(u.scheme == "amqp");
    CHECK(u.user == "worker");
    CHECK(u.password == "p@ss:w0rd");
    CHECK(u.has_password);
    CHECK(u.host == "127.0.0.1");
    CHECK(u.port == 5673);
    CHECK(u.path == "//");
    CHECK(u.raw_path == "/%2F");
    CHECK(u.query.at("heartbeat") == "30");
    CHECK(u.redacted() == "amqp://worker:***@127.0.0.1:5673/%2F");
}

TEST_CASE("a password with raw '@' in it: the host follows the last '@', and it is hidden") {
    auto u = parse_url("amqp://worker:p@ss@w@rd@127.0.0.1:5673/%2F");
    CHECK(u.user == "worker");
    CHECK(u.password == "p@ss@w@rd");
    CHECK(u.host == "127.0.0.1");
    CHECK(u.redacted() == "amqp://worker:***@127.0.0.1:5673/%2F");
    for (auto bad : {"amqp://u:se@cr@et@host:99999/", "amqp://u:se@cr@et@host:x/", "amqp://u:se@cr@et@[::1/"}) {
        CAPTURE(bad);
        try {
            parse_url(bad);
            FAIL("accepted");
        } catch (const ConfigError& e) {
            const std::string what = e.what();
            CHECK(what.find("cr@et") == std::string::npos);
            CHECK(what.find("se@") == std::string::npos);
        }
    }
}

TEST_CASE("file, sqlite, swift and IPv6 URLs") {
    auto f = parse_url("file:///var/lib/apcloud/results");
    CHECK(f.host.empty());
    CHECK(f.path == "/var/lib/apcloud/results");
    CHECK(parse_url("sqlite:///tmp/q.db?lease=60").query.at("lease") == "60");
    auto s = parse_url("SWIFT+HTTPS://test%3Atester:key@swift.example.org/auth/v1.0");
    CHECK(s.scheme == "swift+https");
    CHECK(s.user == "test:tester");
    CHECK_FALSE(s.port);
    auto v6 = parse_url("amqp://[::1]:5672/");
    CHECK(v6.host == "::1");
    CHECK(v6.port == 5672);
    CHECK(v6.redacted() == "amqp://[::1]:5672/");
}

TEST_CASE("malformed URLs are ConfigErrors that never show the password") {
    for (auto bad : {"no-scheme", "://x", "amqp://u:secret@host:99999/", "amqp://u:secret@host:x/",
                     "amqp://u:secret@[::1/", "amqp://host:0/", "a b://x"}) {
        CAPTURE(bad);
        try {
            parse_url(bad);
            FAIL("accepted");
        } catch (const ConfigError& e) {
            CHECK(std::string(e.what()).find("secret") == std::string::npos);
        }
    }
    CHECK_THROWS_AS(percent_decode("%4"), ConfigError);
    CHECK_THROWS_AS(percent_decode("%zz"), ConfigError);
}

TEST_CASE("percent encoding round trips") {
    CHECK(percent_encode("a b/c@d", false) == "a%20b%2Fc%40d");
    CHECK(percent_encode("a b/c", true) == "a%20b/c");
    CHECK(percent_decode(percent_encode("h\xc3\xa9/x y+z", false)) == "h\xc3\xa9/x y+z");
}

TEST_CASE("blanks and control characters are refused (found by fuzzing: ' worker' became a user name)") {
    for (const char* bad : {"amqp:// worker:secret@127.0.0.1/", "amqp://worker:secret@127.0.0.1/ ", "file:///my dir",
                            "amqp://worker\t@host/", "http://host/\x7f"}) {
        CHECK_THROWS_WITH_AS(parse_url(bad), doctest::Contains("blank or a control character"), ConfigError);
    }
    CHECK(parse_url("file:///my%20dir").path == "/my dir");
}
