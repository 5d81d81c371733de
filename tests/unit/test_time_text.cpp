// Unit tests of the UTC time texts (run stamps, Swift listing times, HTTP dates).
#include <doctest/doctest.h>

#include <ctime>

#include "core/time_text.hpp"

using namespace apcloud::detail;

TEST_CASE("every form of a known instant") {
    const std::int64_t t = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example)
    CHECK(format_http_date(t) == "Sun, 06 Nov 1994 08:49:37 GMT");
    CHECK(format_iso_time(t) == "1994-11-06T08:49:37.000000");
    CHECK(format_iso_time(t, 12345) == "1994-11-06T08:49:37.012345");
    CHECK(format_run_stamp(t) == "19941106_084937");
    CHECK(format_submit_stamp(t) == "1994-11-06 08:49:37");
    CHECK(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == t);
    CHECK(parse_iso_time("1994-11-06T08:49:37") == t);
    CHECK(parse_iso_time("1994-11-06T08:49:37.012345") == t);
    CHECK(parse_iso_time("1994-11-06T08:49:37.000000Z") == t);
}

TEST_CASE("agrees with the C library over centuries, leap days included") {
    for (std::int64_t t = -2208988800; t < 4102444800; t += 86400 * 37 + 3671) {
        CAPTURE(t);
        std::time_t tt = static_cast<std::time_t>(t);
        std::tm tm{};
        gmtime_r(&tt, &tm);
        char buf[64];
        std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        CHECK(format_http_date(t) == buf);
        CHECK(parse_http_date(buf) == t);
        CHECK(parse_iso_time(format_iso_time(t)) == t);
    }
    CHECK(parse_iso_time("2024-02-29T00:00:00") == 1709164800);
}

TEST_CASE("malformed or impossible times are refused") {
    for (const char* bad : {"", "2024-02-30T00:00:00", "2023-02-29T00:00:00", "2024-13-01T00:00:00",
                            "2024-01-01 00:00:00", "2024-01-01T24:00:00", "2024-01-01T00:00:00.",
                            "2024-1-01T00:00:00", "2024-01-01T00:00:00+01:00", "2024-01-01T00:00:00ZZ"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_iso_time(bad));
    }
    for (const char* bad : {"Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Foo 1994 08:49:37 GMT",
                            "Sunday, 06-Nov-94 08:49:37 GMT", "Sun, 31 Nov 1994 08:49:37 GMT", ""}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_http_date(bad));
    }
}
