// Unit tests of the exit code table (SPEC.md section 4).
#include <doctest/doctest.h>
#include <autopkgtest_cloud/exit_codes.hpp>

#include <string>

using namespace apcloud;

TEST_CASE("the table of SPEC.md section 4, row by row") {
    struct Row {
        int code;
        const char* browse;
        const char* britney;
        const char* github;
    };
    const Row rows[] = {
        {0, "pass", "PASS", "success"},     {2, "pass", "PASS", "success"},
        {4, "fail", "FAIL", "failure"},     {6, "fail", "FAIL", "failure"},
        {8, "neutral", "NEUTRAL", "error"}, {12, "fail", "FAIL", "failure"},
        {14, "fail", "FAIL", "error"},      {16, "tmpfail", "FAIL", "error"},
        {20, "error", "FAIL", "error"},     {99, "denylisted", "FAIL", "error"},
    };
    for (const auto& r : rows) {
        CAPTURE(r.code);
        CHECK(outcome_name(outcome(r.code)) == r.browse);
        CHECK(britney_status(r.code) == r.britney);
        CHECK(github_state(r.code) == r.github);
    }
}

TEST_CASE("unknown combinations never pass") {
    for (int code : {1, 3, 5, 7, 9, 13, 15, 17, 18, 24, 28, 30, 100, 255, 256, -1, -15}) {
        CAPTURE(code);
        auto o = outcome(code);
        CHECK(o != Outcome::pass);
        CHECK(o != Outcome::neutral);
        CHECK(britney_status(code) == "FAIL");
        CHECK(github_state(code) == "error");
    }
    CHECK(outcome(5) == Outcome::fail);    // failed bit set
    CHECK(outcome(18) == Outcome::error);  // testbed bit with others
    CHECK(outcome(10) == Outcome::neutral);
    // britney counts only 8 as NEUTRAL; 10 (no tests ran, some skipped) is a FAIL to it.
    CHECK(britney_status(10) == "FAIL");
}

TEST_CASE("'PACKAGE unknown' is written for exactly the codes britney repairs") {
    for (int code = -1; code <= 256; ++code) {
        CAPTURE(code);
        CHECK(reports_unknown_version(code) == (code == 4 || code == 12 || code == 20));
    }
    CHECK(reports_unknown_version(exit_failed));
    CHECK(reports_unknown_version(exit_erroneous));
    CHECK(reports_unknown_version(exit_unexpected));
    CHECK_FALSE(reports_unknown_version(exit_testbed_failure));
}
