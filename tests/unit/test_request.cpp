// Unit tests of the request codec and every validation rule of SPEC.md section 1.
#include <doctest/doctest.h>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/request.hpp>

#include <string>
#include <vector>

using namespace apcloud;

namespace {

// Parses `body`; returns the field named by the ValidationError, "" on success,
// "<parse>" on ParseError.
std::string rejected_field(const std::string& body, const ValidationOptions& o = {}) {
    try {
        parse_request(body, o);
        return "";
    } catch (const ValidationError& e) {
        CHECK(std::string(e.what()).find(e.field()) != std::string::npos);
        return e.field();
    } catch (const ParseError&) {
        return "<parse>";
    }
}

std::string with(const std::string& json) {
    return "gedit\n" + json;
}

}  // namespace

TEST_CASE("the three message forms parse to the same request") {
    auto a = parse_request("gedit\n{\"triggers\": [\"glib2.0/2.20-1\"]}");
    auto b = parse_request("gedit {\"triggers\": [\"glib2.0/2.20-1\"]}");
    CHECK(a == b);
    CHECK(a.package == "gedit");
    REQUIRE(a.triggers.size() == 1);
    CHECK(a.triggers[0] == "glib2.0/2.20-1");
    auto c = parse_request("gedit");
    CHECK(c.package == "gedit");
    CHECK(c.triggers.empty());
}

TEST_CASE("encoding: newline, sorted keys, Python json.dumps separators, no trailing newline") {
    TestRequest r;
    r.package = "systemd";
    r.triggers = {"systemd/255-1"};
    r.ppas = {"pitti/systemd"};
    r.env = {"XDG_SESSION_DESKTOP=xfce"};
    r.all_proposed = true;
    r.testname = "boot-smoke";
    r.submit_time = "2024-03-21 13:04:12";
    r.requester = "britney";
    r.uuid = "0f1e2d3c-aaaa-bbbb-cccc-111122223333";
    r.readable_by = {"alice"};
    r.swiftuser = "bob";
    CHECK(r.to_message() ==
          "systemd\n{\"all-proposed\": \"1\", \"env\": [\"XDG_SESSION_DESKTOP=xfce\"], "
          "\"ppas\": [\"pitti/systemd\"], \"readable-by\": [\"alice\"], \"requester\": \"britney\", "
          "\"submit-time\": \"2024-03-21 13:04:12\", \"swiftuser\": \"bob\", \"testname\": \"boot-smoke\", "
          "\"triggers\": [\"systemd/255-1\"], \"uuid\": \"0f1e2d3c-aaaa-bbbb-cccc-111122223333\"}");
    CHECK(parse_request(r.to_message()) == r);
    TestRequest bare;
    bare.package = "gzip";
    CHECK(bare.to_message() == "gzip");
}

TEST_CASE("round trips of git requests") {
    TestRequest r;
    r.package = "systemd-upstream";
    r.build_git = "https://github.com/systemd/systemd.git#refs/pull/123/head";
    r.ppas = {"pitti/systemd-semaphore"};
    r.env = {"UPSTREAM_PULL_REQUEST=123",
             "GITHUB_STATUSES_URL=https://api.github.com/repos/s/s/statuses/abc"};
    ValidationOptions webhook;
    webhook.allow_webhook_env = true;
    CHECK(parse_request(r.to_message(), webhook) == r);
    TestRequest t;
    t.package = "foo";
    t.test_git = "https://salsa.debian.org/foo/foo.git debian/latest";
    CHECK(parse_request(t.to_message()) == t);
}

TEST_CASE("non-ASCII is escaped as Python's ensure_ascii does") {
    auto r = parse_request(with("{\"env\": [\"GREETING=h\xc3\xa9llo \xf0\x9f\x98\x80\"]}"));
    CHECK(r.to_message() == "gedit\n{\"env\": [\"GREETING=h\\u00e9llo \\ud83d\\ude00\"]}");
    CHECK(parse_request(r.to_message()) == r);
}

TEST_CASE("all-proposed accepts \"1\", 1 and true; false forms disable it") {
    for (auto v : {"\"1\"", "1", "true", "\"true\""})
        CHECK(parse_request(with(std::string("{\"all-proposed\": ") + v + "}")).all_proposed);
    for (auto v : {"\"\"", "0", "false", "\"0\""})
        CHECK_FALSE(parse_request(with(std::string("{\"all-proposed\": ") + v + "}")).all_proposed);
    for (auto v : {"\"yes\"", "2", "[]", "null"})
        CHECK(rejected_field(with(std::string("{\"all-proposed\": ") + v + "}")) == "all-proposed");
}

TEST_CASE("readable-by is a string or a list") {
    CHECK(parse_request(with("{\"readable-by\": \"alice\"}")).readable_by ==
          std::vector<std::string>{"alice"});
    CHECK(parse_request(with("{\"readable-by\": [\"alice\", \"bob\"]}")).readable_by.size() == 2);
    CHECK(rejected_field(with("{\"readable-by\": 3}")) == "readable-by");
    CHECK(rejected_field(with("{\"readable-by\": [\"al ice\"]}")) == "readable-by");
}

TEST_CASE("package names") {
    for (auto good : {"gedit", "glib2.0", "libc++", "g-ir", "0ad", "ab"}) CHECK(rejected_field(good) == "");
    for (auto bad : {"G", "Gedit", "a", "-foo", ".foo", "foo_bar", "foo;rm", "foo$x", "foo/bar"})
        CHECK_MESSAGE(rejected_field(bad) != "", bad);
    CHECK(rejected_field("gedit;rm -rf /") == "package");  // space: the rest is not JSON
    CHECK(rejected_field(std::string(121, 'a')) == "package");
    CHECK(rejected_field("") == "package");
}

TEST_CASE("triggers") {
    CHECK(rejected_field(with("{\"triggers\": [\"glib2.0/2.20-1\", \"gcc-13/13.2.0-1ubuntu1~22.04\", "
                              "\"foo/1:2.0+dfsg-1\"]}")) == "");
    for (auto bad : {"\"glib2.0\"", "\"Glib/1\"", "\"glib/\"", "\"glib/1 2\"", "\"glib/1;ls\"", "\"/1\"",
                     "\"glib/1/2\""})
        CHECK_MESSAGE(rejected_field(with(std::string("{\"triggers\": [") + bad + "]}")) == "triggers", bad);
    CHECK(rejected_field(with("{\"triggers\": \"glib2.0/2.20-1\"}")) == "triggers");
    CHECK(rejected_field(with("{\"triggers\": [1]}")) == "triggers");
}

TEST_CASE("migration-reference/0 only alone, without ppas and all-proposed") {
    CHECK(parse_request(with("{\"triggers\": [\"migration-reference/0\"]}")).is_reference());
    CHECK(rejected_field(with("{\"triggers\": [\"migration-reference/0\", \"foo/1\"]}")) == "triggers");
    CHECK(rejected_field(with("{\"triggers\": [\"migration-reference/0\"], \"ppas\": [\"a/b1\"]}")) ==
          "triggers");
    CHECK(rejected_field(with("{\"triggers\": [\"migration-reference/0\"], \"all-proposed\": \"1\"}")) ==
          "triggers");
}

TEST_CASE("ppas") {
    CHECK(rejected_field(with("{\"ppas\": [\"pitti/systemd\", \"ci-train-ppa-service/landing-003\"]}")) ==
          "");
    CHECK(rejected_field(with("{\"ppas\": [\"pitti/systemd:0123456789ABCDEF0123456789ABCDEF01234567\"]}")) ==
          "");
    CHECK(rejected_field(with("{\"ppas\": [\"user:s3cret@pitti/private\"], \"swiftuser\": \"pitti\"}")) ==
          "");
    for (auto bad : {"pitti", "Pitti/systemd", "pitti/sys temd", "pitti/systemd:xyz", "pitti/systemd:12",
                     "@pitti/systemd", "user@pitti/systemd", "us;er:tok@pitti/x1", "pitti/$(id)"})
        CHECK_MESSAGE(rejected_field(with(std::string("{\"ppas\": [\"") + bad + "\"]}")) == "ppas", bad);
    // Private PPAs need a swiftuser to own the private container.
    CHECK(rejected_field(with("{\"ppas\": [\"user:s3cret@pitti/private\"]}")) == "swiftuser");
    auto p = parse_ppa("u:t@lp/name:ABCDEF01");
    CHECK(p.user == "u");
    CHECK(p.token == "t");
    CHECK(p.lpuser == "lp");
    CHECK(p.name == "name");
    CHECK(p.fingerprint == "ABCDEF01");
    CHECK(p.is_private());
}

TEST_CASE("env") {
    CHECK(rejected_field(
              with("{\"env\": [\"A=1\", \"_X=\", \"CFLAGS=-O0 -g\", \"V=a;b&c$d\\\"e'f(g)*,<\"]}")) == "");
    for (auto bad :
         {"NOEQUALS", "1A=x", "A-B=x", "=x", "A B=x", "A=x\\ny", "A=x\\u0000", "A=\\t", "A=\\u007f"})
        CHECK_MESSAGE(rejected_field(with(std::string("{\"env\": [\"") + bad + "\"]}")) == "env", bad);
}

TEST_CASE("env names the system sets itself are refused (no forged triggers, SPEC.md 1)") {
    ValidationOptions webhook;
    webhook.allow_webhook_env = true;
    struct Row {
        const char* entry;
        bool user_ok;     // from a user (request API, sinks, plain queues)
        bool webhook_ok;  // from the webhook path (upstream queues)
    };
    const Row rows[] = {
        {"ADT_TEST_TRIGGERS=glib2.0/2.80-1", false, false},
        {"ADT_TEST_TRIGGERS=", false, false},
        {"AUTOPKGTEST_TMP=/x", false, false},
        {"AUTOPKGTEST_ARTIFACTS=/x", false, false},
        {"AUTOPKGTEST_", false, false},
        {"UPSTREAM_PULL_REQUEST=12", false, true},
        {"GITHUB_STATUSES_URL=https://api.github.com/repos/a/b/statuses/1", false, true},
        // Near misses are ordinary names.
        {"ADT_TEST_TRIGGERS2=x", true, true},
        {"XADT_TEST_TRIGGERS=x", true, true},
        {"autopkgtest_tmp=x", true, true},
        {"AUTOPKGTESTX=x", true, true},
        {"UPSTREAM_MERGE_REQUEST=3", true, true},
    };
    for (const auto& row : rows) {
        CAPTURE(row.entry);
        const std::string body = with(std::string("{\"env\": [\"") + row.entry + "\"]}");
        CHECK(rejected_field(body) == (row.user_ok ? "" : "env"));
        CHECK(rejected_field(body, webhook) == (row.webhook_ok ? "" : "env"));
    }
    try {
        parse_request(with("{\"env\": [\"ADT_TEST_TRIGGERS=glib2.0/2.80-1\"]}"));
        FAIL("accepted a forged trigger");
    } catch (const ValidationError& e) {
        CHECK(e.field() == "env");
        CHECK(e.value() == "ADT_TEST_TRIGGERS=glib2.0/2.80-1");
        CHECK(std::string(e.what()).find("ADT_TEST_TRIGGERS=glib2.0/2.80-1") != std::string::npos);
    }
    TestRequest forged;
    forged.package = "gedit";
    forged.env = {"A=1", "AUTOPKGTEST_NORMAL_USER=root"};
    CHECK_THROWS_AS(validate(forged), ValidationError);
}

TEST_CASE("test-git and build-git URLs") {
    CHECK(rejected_field(with("{\"test-git\": \"https://git.launchpad.net/~pitti/+git/systemd-debian\"}")) ==
          "");
    CHECK(rejected_field(with("{\"test-git\": \"https://salsa.debian.org/a/b.git main\"}")) == "");
    CHECK(rejected_field(with("{\"build-git\": \"http://example.org/x.git#refs/pull/1/head\"}")) == "");
    for (auto bad :
         {"git://example.org/x", "ftp://x/y", "https://", "https:///path", "https://x/y;rm",
          "https://x/$(id)", "https://x/`id`", "https://x/a b c", "https://x/y|z", "file:///srv/x", "/srv/x",
          "https://x/y main --upload-pack=evil", "https://x/y -b", "https://x/y ../../etc"})
        CHECK_MESSAGE(rejected_field(with(std::string("{\"test-git\": \"") + bad + "\"}")) == "test-git",
                      bad);
    for (auto bad : {"https://x/y#ref;rm", "https://x/y#-x", "https://x/y#../a", "https://x/y z"})
        CHECK_MESSAGE(rejected_field(with(std::string("{\"build-git\": \"") + bad + "\"}")) == "build-git",
                      bad);
    CHECK(rejected_field(with("{\"test-git\": \"https://a/b\", \"build-git\": \"https://a/b\"}")) ==
          "build-git");
}

TEST_CASE("local sources only where the worker allows them") {
    ValidationOptions local;
    local.allow_local_sources = true;
    CHECK(rejected_field(with("{\"test-git\": \"file:///srv/src/hello\"}"), local) == "");
    CHECK(rejected_field(with("{\"build-git\": \"/srv/src/hello\"}"), local) == "");
    CHECK(rejected_field(with("{\"build-git\": \"relative/path\"}"), local) == "build-git");
    CHECK(rejected_field(with("{\"build-git\": \"/srv/../etc\"}"), local) == "build-git");
    CHECK(rejected_field(with("{\"test-git\": \"file:///srv/src/hello\"}")) == "test-git");
}

TEST_CASE("test-bzr is refused with a clear error, never ignored") {
    try {
        parse_request(with("{\"test-bzr\": \"lp:foo\"}"));
        FAIL("test-bzr accepted");
    } catch (const ValidationError& e) {
        CHECK(e.field() == "test-bzr");
        CHECK(std::string(e.what()).find("not supported") != std::string::npos);
    }
}

TEST_CASE("testname, submit-time, metadata") {
    CHECK(rejected_field(with("{\"testname\": \"upstream-tests_2.x\"}")) == "");
    for (auto bad : {"", "-x", "a b", "a/b", "a;b"})
        CHECK_MESSAGE(rejected_field(with(std::string("{\"testname\": \"") + bad + "\"}")) == "testname",
                      bad);
    for (auto good : {"2024-03-21 13:04:12", "2024-03-21 13:04:12+0000", "2024-12-31 23:59:59-0530"})
        CHECK_MESSAGE(rejected_field(with(std::string("{\"submit-time\": \"") + good + "\"}")) == "", good);
    for (auto bad : {"2024-03-21", "2024-03-21T13:04:12", "2024-13-21 13:04:12", "2024-03-21 25:04:12",
                     "2024-03-21 13:04:12Z", "2024-03-21 13:04:12 +0000", "x024-03-21 13:04:12"})
        CHECK_MESSAGE(
            rejected_field(with(std::string("{\"submit-time\": \"") + bad + "\"}")) == "submit-time", bad);
    CHECK(rejected_field(with("{\"requester\": \"some one\"}")) == "requester");
    CHECK(rejected_field(with("{\"uuid\": \"x;y\"}")) == "uuid");
    CHECK(rejected_field(with("{\"swiftuser\": \"\"}")) == "swiftuser");
    CHECK(rejected_field(with("{\"uuid\": 5}")) == "uuid");
}

TEST_CASE("unknown keys are refused, naming the key") {
    try {
        parse_request(with("{\"triggers\": [], \"shell\": \"rm -rf /\"}"));
        FAIL("unknown key accepted");
    } catch (const ValidationError& e) {
        CHECK(e.field() == "parameter");
        CHECK(e.value() == "shell");
    }
}

TEST_CASE("malformed bodies are ParseErrors") {
    CHECK(rejected_field("gedit {") == "<parse>");
    CHECK(rejected_field("gedit [1]") == "<parse>");
    CHECK(rejected_field("gedit\n\"x\"") == "<parse>");
    CHECK(rejected_field("gedit ") == "<parse>");
    CHECK(rejected_field("gedit\n{} trailing") == "<parse>");
    CHECK(rejected_field("ged\xff") == "<parse>");
    CHECK(rejected_field("gedit\n{\"env\": [\"A=\xc0\xaf\"]}") == "<parse>");      // overlong '/'
    CHECK(rejected_field("gedit\n{\"env\": [\"A=\xed\xa0\x80\"]}") == "<parse>");  // surrogate
}

TEST_CASE("huge bodies are refused before parsing") {
    std::string body = with("{\"env\": [\"A=" + std::string(200000, 'x') + "\"]}");
    CHECK(rejected_field(body) == "body");
    ValidationOptions big;
    big.max_body_bytes = 1 << 20;
    CHECK(rejected_field(body, big) == "env");  // single entries are still capped
}

TEST_CASE("error messages quote and escape the offending value") {
    try {
        parse_request(with("{\"env\": [\"A=\\u0001\"]}"));
        FAIL("accepted");
    } catch (const ValidationError& e) {
        CHECK(std::string(e.what()) == "invalid env 'A=\\x01': value contains control characters");
        CHECK(e.value() == "A=\x01");
    }
    CHECK(quote_for_message(std::string(300, 'a')).find("(300 bytes)") != std::string::npos);
}

TEST_CASE("UTF-8 validation") {
    CHECK(is_valid_utf8("plain"));
    CHECK(is_valid_utf8("h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
    CHECK_FALSE(is_valid_utf8("\x80"));
    CHECK_FALSE(is_valid_utf8("\xc3"));
    CHECK_FALSE(is_valid_utf8("\xe0\x80\x80"));
    CHECK_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));
    CHECK_FALSE(is_valid_utf8("\xf5\x80\x80\x80"));
}

TEST_CASE("format_submit_time: UTC in the format validation accepts") {
    CHECK(format_submit_time(0) == "1970-01-01 00:00:00");
    CHECK(format_submit_time(1711026252) == "2024-03-21 13:04:12");
    TestRequest r;
    r.package = "gedit";
    r.submit_time = format_submit_time(1711026252);
    CHECK_NOTHROW(validate(r));
}
