// Unit tests of the store layout: prefixes, containers, run ids (SPEC.md section 3).
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/layout.hpp>
#include <doctest/doctest.h>

using namespace apcloud;

TEST_CASE("srcpkg_prefix, including the lib* edge cases") {
    CHECK(srcpkg_prefix("libpng") == "libp");
    CHECK(srcpkg_prefix("glibc") == "g");
    CHECK(srcpkg_prefix("lib") == "lib");
    CHECK(srcpkg_prefix("libc") == "libc");
    CHECK(srcpkg_prefix("libc6") == "libc");
    CHECK(srcpkg_prefix("li") == "l");
    CHECK(srcpkg_prefix("lib+x") == "lib+");
    CHECK(srcpkg_prefix("0ad") == "0");
    CHECK(srcpkg_prefix("linux") == "l");
    CHECK_THROWS_AS(srcpkg_prefix(""), ValidationError);
}

TEST_CASE("container names") {
    CHECK(container_name("noble") == "autopkgtest-noble");
    CHECK(container_name("wily", {"pitti/systemd"}) == "autopkgtest-wily-pitti-systemd");
    CHECK(container_name("xenial", {"ci-train-ppa-service/stable-phone-overlay", "ci-train-ppa-service/landing-003"}) ==
          "autopkgtest-xenial-ci-train-ppa-service-landing-003");
    CHECK(container_name("noble", {"u:tok@pitti/secret"}) == "private-autopkgtest-noble-pitti-secret");
    CHECK(container_name("noble", {"u:tok@pitti/secret", "pitti/public"}) == "private-autopkgtest-noble-pitti-public");
    CHECK(container_name("noble", {"pitti/x1:0123456789abcdef"}) == "autopkgtest-noble-pitti-x1");
    CHECK(container_name("noble", {}, true) == "private-autopkgtest-noble");
    CHECK_THROWS_AS(container_name("No ble"), ValidationError);
    CHECK_THROWS_AS(container_name("noble", {"bad"}), ValidationError);
}

TEST_CASE("run ids: time, sha1 of the body, @") {
    auto id = make_run_id(1711026252, "x");
    CHECK(id == "20240321_130412_11f6a@");  // sha1("x") = 11f6ad8e...
    CHECK(make_run_id(0, "") == "19700101_000000_da39a@");
    CHECK(make_run_id(951782400, "x").substr(0, 15) == "20000229_000000");  // leap day
    CHECK_THROWS_AS(make_run_id(-1, "x"), ValidationError);
}

TEST_CASE("run ids parse back, old form too") {
    auto r = parse_run_id("20240321_130412_3fa9c@");
    CHECK(r.unix_time == 1711026252);
    REQUIRE(r.hash);
    CHECK(*r.hash == "3fa9c");
    auto old = parse_run_id("20140321_130412@");
    CHECK(old.unix_time == 1395407052);
    CHECK_FALSE(old.hash);
    for (long long t : {0LL, 951782400LL, 1711026252LL, 4102444799LL}) {
        CAPTURE(t);
        CHECK(parse_run_id(make_run_id(t, "body")).unix_time == t);
    }
    for (auto bad : {"", "20240321_130412", "20240321_130412_3fa9c", "20241321_130412@", "20240321-130412@",
                     "20240321_130412_3FA9C@", "20240321_130412_3fa9@", "2024032a_130412@", "20240321_250000@",
                     "20240321_130412_3fa9cc@"})
        CHECK_THROWS_AS_MESSAGE(parse_run_id(bad), ParseError, bad);
}

TEST_CASE("result directories") {
    CHECK(result_dir("trusty", "amd64", "libpng", "20140321_130412@") == "trusty/amd64/libp/libpng/20140321_130412@");
    CHECK(result_dir("noble", "arm64", "gedit", "20240321_130412_3fa9c@") ==
          "noble/arm64/g/gedit/20240321_130412_3fa9c@");
    CHECK(package_prefix("noble", "amd64", "lib") == "noble/amd64/lib/lib/");
    CHECK_THROWS_AS(result_dir("noble", "amd64", "../etc", "20140321_130412@"), ValidationError);
    CHECK_THROWS_AS(result_dir("noble", "amd64", "gedit", "../x"), ParseError);
    CHECK_THROWS_AS(result_dir("noble/..", "amd64", "gedit", "20140321_130412@"), ValidationError);
}

TEST_CASE("runs of one request since a time (stored at most once, SPEC.md 5)") {
    const std::string prefix = package_prefix("noble", "amd64", "gedit");
    const std::string body = "gedit\n{\"triggers\": [\"gedit/1\"], \"uuid\": \"u-1\"}";
    const std::int64_t t = 1711026252;  // 20240321_130412
    const std::string mine = make_run_id(t, body), other = make_run_id(t, body + " ");
    REQUIRE(mine.substr(16) != other.substr(16));
    std::vector<std::string> dirs = {
        prefix + make_run_id(t - 60, body),  // before `since`
        prefix + mine,
        prefix + other,                      // another request
        prefix + "20240321_130413@",         // the old form has no hash
        prefix + "not-a-run@",
        prefix + make_run_id(t + 5, body) + "/",  // a trailing slash is the same dir
    };
    auto found = runs_of_request(dirs, body, t);
    REQUIRE(found.size() == 2);
    CHECK(found[0] == prefix + mine);
    CHECK(found[1] == prefix + make_run_id(t + 5, body));
    CHECK(runs_of_request(dirs, body, t + 6).empty());
    CHECK(runs_of_request(dirs, "other body", 0).empty());

    // The marker lists from the first run at `since`: earlier ones sort before it, those at `since` after.
    const std::string marker = runs_since_marker(prefix, t);
    CHECK(marker.rfind(prefix, 0) == 0);
    CHECK(prefix + make_run_id(t - 1, "zzz") < marker);
    CHECK(prefix + "20240321_130411@" < marker);
    CHECK(prefix + make_run_id(t, "") > marker);
    CHECK(prefix + "20240321_130412@" > marker);
    for (const char* h : {"00000", "fffff"}) CHECK(prefix + "20240321_130412_" + h + "@" > marker);
}
