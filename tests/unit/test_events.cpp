// Unit tests of the teststatus / testcomplete events and the log tail.
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/events.hpp>
#include <doctest/doctest.h>

using namespace apcloud;

TEST_CASE("log tail: whole short logs, head + marker + last 2000 bytes of long ones") {
    CHECK(make_logtail("a\nb\n") == "a\nb\n");
    std::string log;
    for (int i = 0; i < 1000; ++i) log += "line " + std::to_string(i) + "\n";
    auto t = make_logtail(log);
    CHECK(t.rfind("line 0\nline 1\nline 2\nline 3\nline 4\n[...]\n", 0) == 0);
    CHECK(t.size() == std::string("line 0\nline 1\nline 2\nline 3\nline 4\n[...]\n").size() + 2000);
    CHECK(t.substr(t.size() - 9) == "line 999\n");
}

TEST_CASE("log tail is valid UTF-8 even when the log is not, or is cut inside a character") {
    std::string log = "head\n\xff\xfe bad\n" + std::string(3000, 'x') + "\xc3\xa9\xc3\xa9";
    auto t = make_logtail(log);
    CHECK(is_valid_utf8(t));
    std::string cut = std::string(10, '\n') + "\xe2\x82\xac" + std::string(1999, 'y');
    CHECK(is_valid_utf8(make_logtail(cut)));
}

TEST_CASE("teststatus events") {
    auto r = parse_request("gedit\n{\"triggers\": [\"glib2.0/2.20-1\"]}");
    CHECK(teststatus_json(r, "noble", "amd64", true, 12, "tail\n") ==
          "{\"architecture\": \"amd64\", \"duration\": 12, \"logtail\": \"tail\\n\", \"package\": \"gedit\", "
          "\"params\": {\"triggers\": [\"glib2.0/2.20-1\"]}, \"release\": \"noble\", \"running\": true}");
    auto p = parse_request("secret\n{\"ppas\": [\"u:t@me/private\"], \"swiftuser\": \"me\"}");
    auto s = teststatus_json(p, "noble", "amd64", false, 5, "private log");
    CHECK(s.find("private-test") != std::string::npos);
    CHECK(s.find("secret") == std::string::npos);
    CHECK(s.find("private log") == std::string::npos);
    CHECK(s.find("\"running\": false") != std::string::npos);
}

TEST_CASE("testcomplete round trip") {
    TestComplete e;
    e.architecture = "amd64";
    e.container = "autopkgtest-noble";
    e.duration = 42;
    e.exitcode = 4;
    e.package = "gedit";
    e.testpkg_version = "gedit 44.2-1";
    e.release = "noble";
    e.requester = "britney";
    e.swift_dir = "noble/amd64/g/gedit/20240321_130412_3fa9c@";
    e.triggers = {"glib2.0/2.20-1"};
    e.env = {"A=1"};
    auto j = testcomplete_json(e);
    CHECK(j.rfind("{\"architecture\": \"amd64\", \"container\": \"autopkgtest-noble\", \"duration\": 42, ", 0) == 0);
    auto back = parse_testcomplete(j);
    CHECK(back.swift_dir == e.swift_dir);
    CHECK(back.triggers == e.triggers);
    CHECK(back.testpkg_version == e.testpkg_version);
    CHECK(back.exitcode == 4);
    e.requester.reset();
    CHECK_FALSE(parse_testcomplete(testcomplete_json(e)).requester);
    CHECK_THROWS_AS(parse_testcomplete("{\"architecture\": 1}"), ParseError);
    CHECK_THROWS_AS(parse_testcomplete("nope"), ParseError);
}
