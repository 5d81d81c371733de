// Unit tests of access.hpp: API keys (digests only, expiry, revocation, the
// reference's user:key), the access file's rules one by one, request identity.
#include <doctest/doctest.h>
#include <autopkgtest_cloud/access.hpp>
#include <autopkgtest_cloud/error.hpp>

using namespace apcloud;

TEST_CASE("API keys are stored as digests and authenticate their user until revoked or expired") {
    const auto k = make_api_key("alice", 1000, 5000);
    CHECK(k.key.rfind("apc_" + k.record.id + "_", 0) == 0);
    CHECK(k.key.size() == 85);
    CHECK(k.record.sha256.size() == 64);
    const std::string file = format_api_keys({k.record});
    CHECK(file.find(k.key) == std::string::npos);  // never the key itself
    CHECK(file.find(k.key.substr(21)) == std::string::npos);
    auto records = parse_api_keys(file);
    REQUIRE(records.size() == 1);
    CHECK(records[0].user == "alice");
    CHECK(records[0].expires == 5000);
    CHECK(authenticate_key(records, k.key, 2000) == std::optional<std::string>("alice"));
    CHECK(authenticate_key(records, k.key, 2000, std::string("alice")) == std::optional<std::string>("alice"));
    CHECK_FALSE(authenticate_key(records, k.key, 2000, std::string("bob")));
    CHECK_FALSE(authenticate_key(records, k.key, 5000));  // expired
    std::string wrong = k.key;
    wrong.back() = wrong.back() == 'a' ? 'b' : 'a';
    CHECK_FALSE(authenticate_key(records, wrong, 2000));
    CHECK_FALSE(authenticate_key(records, "apc_short", 2000));
    CHECK_FALSE(authenticate_key(records, "", 2000));
    records[0].revoked = true;
    CHECK_FALSE(authenticate_key(parse_api_keys(format_api_keys(records)), k.key, 2000));
    CHECK(make_api_key("bob", 1).key != make_api_key("bob", 1).key);
    CHECK_THROWS_AS(make_api_key("bad user", 1), ValidationError);
    CHECK_THROWS_AS(make_api_key("", 1), ValidationError);
    CHECK_THROWS_AS(parse_api_keys("abc alice short 1 0 active\n"), ParseError);
    CHECK_THROWS_AS(parse_api_keys(k.record.id + " alice " + k.record.sha256 + " 1 0 maybe\n"), ParseError);
    CHECK(parse_api_keys("# nothing\n\n").empty());
}

namespace {

TestRequest req(const std::string& package, std::vector<std::string> triggers, std::vector<std::string> ppas = {}) {
    TestRequest r;
    r.package = package;
    r.triggers = std::move(triggers);
    r.ppas = std::move(ppas);
    return r;
}

const char* const policy_text =
    "[admins]\nusers = root\n"
    "[team desktop]\nusers = carol dave\npackages = gedit gtk+3.0\n"
    "[team release]\nusers = rita\npackages = *\n"
    "[package glib2.0]\nusers = erin\n";

}  // namespace

TEST_CASE("authorization: each rule of the access file") {
    const AccessPolicy p = parse_access_policy(policy_text);
    CHECK(authorize(p, "root", req("anything", {})).rule == "admin");
    CHECK(authorize(p, "carol", req("gedit", {"gedit/1"})).rule == "team desktop");
    CHECK(authorize(p, "carol", req("nautilus", {"gtk+3.0/3.24-1"})).rule == "team desktop");  // a trigger's source
    CHECK_FALSE(authorize(p, "carol", req("nautilus", {"glib2.0/2.80-1"})).allowed);
    CHECK(authorize(p, "rita", req("nautilus", {})).rule == "team release");
    CHECK(authorize(p, "erin", req("gedit", {"glib2.0/2.80-1"})).rule == "package glib2.0");
    CHECK_FALSE(authorize(p, "erin", req("gedit", {"gedit/1"})).allowed);
    CHECK(authorize(p, "frank", req("gedit", {}, {"frank/stuff"})).rule == "ppa owner");
    CHECK_FALSE(authorize(p, "frank", req("gedit", {}, {"frank/stuff", "other/ppa"})).allowed);
    const auto no = authorize(p, "mallory", req("gedit", {"glib2.0/2.80-1"}));
    CHECK_FALSE(no.allowed);
    CHECK(no.reason.find("mallory may not request tests of gedit") != std::string::npos);
    CHECK(no.reason.find("gedit or glib2.0") != std::string::npos);
    AccessPolicy strict = parse_access_policy("[ppa]\nowners = false\n");
    CHECK_FALSE(authorize(strict, "frank", req("gedit", {}, {"frank/stuff"})).allowed);
    CHECK_FALSE(authorize(AccessPolicy{}, "anyone", req("gedit", {})).allowed);
    CHECK_THROWS_AS(parse_access_policy("[teams]\nusers = x\n"), ConfigError);
    CHECK_THROWS_AS(parse_access_policy("[team x]\nmembers = x\n"), ConfigError);
    CHECK_THROWS_AS(parse_access_policy("[package Not/A/Name]\nusers = x\n"), ValidationError);
}

TEST_CASE("request identity: what SPEC.md 7 counts, and nothing else") {
    TestRequest a = req("gedit", {"b/2", "a/1"});
    TestRequest b = req("gedit", {"a/1", "b/2"});
    b.requester = "someone else";
    b.uuid = "x";
    b.submit_time = "2024-01-01 00:00:00";
    CHECK(request_identity(a, "noble", "amd64") == request_identity(b, "noble", "amd64"));
    CHECK(request_identity(a, "noble", "amd64") != request_identity(a, "noble", "arm64"));
    CHECK(request_identity(a, "noble", "amd64") != request_identity(a, "oracular", "amd64"));
    TestRequest c = a;
    c.all_proposed = true;
    CHECK(request_identity(a, "noble", "amd64") != request_identity(c, "noble", "amd64"));
    c = a;
    c.env = {"X=1"};
    CHECK(request_identity(a, "noble", "amd64") != request_identity(c, "noble", "amd64"));
    c = a;
    c.testname = std::string("smoke");
    CHECK(request_identity(a, "noble", "amd64") != request_identity(c, "noble", "amd64"));
    TestRequest p1 = req("gedit", {}, {"u:tok@lp/ppa"}), p2 = req("gedit", {}, {"lp/ppa"});
    CHECK(request_identity(p1, "noble", "amd64") == request_identity(p2, "noble", "amd64"));  // credentials aside
}
