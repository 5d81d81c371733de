// SwiftStore against a real Swift: URL forms, credentials, every operation, listings, errors, Keystone v3
// (stand-in).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/store.hpp"
#include "store/swift_store.hpp"
#include "swift_test_util.hpp"

using namespace apcloud;
using swift_test::env;
using swift_test::store_url;
using swift_test::unique_name;

namespace {

std::vector<std::string> names_of(const std::vector<ListEntry>& entries) {
    std::vector<std::string> out;
    for (const auto& e : entries) out.push_back((e.subdir ? "D:" : "") + e.name);
    return out;
}

// The message of the StoreError `f` throws (logged), "" when it throws none.
std::string store_error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const StoreError& e) {
        MESSAGE(e.what());
        return e.what();
    }
    FAIL("no StoreError");
    return "";
}

// Strips "http://" so a user:key@ can be put in front of the host.
std::string with_userinfo(const std::string& userinfo) {
    std::string auth = env("APCLOUD_SWIFT_AUTH_URL");
    return "swift+http://" + userinfo + "@" + auth.substr(std::string("http://").size());
}

}  // namespace

TEST_CASE("objects: put, get, head, remove") {
    auto store = open_test_store(store_url());
    CHECK(swift_auth_count(*store) == 0);  // no token until needed
    const std::string c = unique_name("h3-ops");
    store->ensure_container(c, ContainerAcl::public_container());
    CHECK(swift_auth_count(*store) == 1);

    const std::string data = "exitcode 0\n";
    PutOptions po;
    po.content_type = "text/plain; charset=UTF-8";
    po.content_encoding = "gzip";
    auto info = store->put(c, "noble/amd64/g/gedit/20240321_130412_3fa9c@/log.gz", data, po);
    CHECK(info.bytes == data.size());
    CHECK(info.etag == "bd6f1cf24f67584ae6d851c7d53f43da");  // md5 of "exitcode 0\n"
    CHECK(info.content_type == po.content_type);
    CHECK(info.content_encoding == po.content_encoding);
    CHECK(info.last_modified.size() == 26);

    auto obj = store->get(c, "noble/amd64/g/gedit/20240321_130412_3fa9c@/log.gz");
    REQUIRE(obj);
    CHECK(obj->data == data);
    CHECK(obj->info.etag == info.etag);
    CHECK(obj->info.content_type == "text/plain; charset=UTF-8");
    CHECK(obj->info.content_encoding == std::optional<std::string>("gzip"));
    CHECK(obj->info.bytes == data.size());

    auto head = store->head(c, "noble/amd64/g/gedit/20240321_130412_3fa9c@/log.gz");
    REQUIRE(head);
    CHECK(head->etag == info.etag);
    CHECK(head->bytes == data.size());
    CHECK(head->last_modified == obj->info.last_modified);
    // head() and the listing agree on the time to the microsecond.
    auto listed = store->list(c, {});
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].last_modified == head->last_modified);
    CHECK(listed[0].etag == info.etag);
    CHECK(listed[0].bytes == data.size());

    // A plain object has no Content-Encoding; replacing changes content.
    store->put(c, "plain", "one");
    auto plain = store->head(c, "plain");
    REQUIRE(plain);
    CHECK(!plain->content_encoding);
    CHECK(plain->content_type == "application/octet-stream");
    store->put(c, "plain", "two!");
    CHECK(store->get(c, "plain")->data == "two!");

    CHECK(!store->get(c, "missing"));
    CHECK(!store->head(c, "missing"));
    CHECK(store->remove(c, "plain"));
    CHECK(!store->remove(c, "plain"));
    CHECK(!store->get(c, "plain"));

    // Empty objects are objects.
    auto empty = store->put(c, "empty", "");
    CHECK(empty.etag == "d41d8cd98f00b204e9800998ecf8427e");
    CHECK(store->get(c, "empty")->data.empty());

    // A missing container.
    const std::string nc = unique_name("h3-none");
    CHECK(!store->get(nc, "x"));
    CHECK(!store->head(nc, "x"));
    CHECK(!store->remove(nc, "x"));
    CHECK_THROWS_AS(store->put(nc, "x", "y"), NotFound);
    CHECK_THROWS_AS(store->list(nc, {}), NotFound);
    CHECK_THROWS_AS(store->container_acl(nc), NotFound);
    CHECK(swift_auth_count(*store) == 1);  // one token for all of it
}

TEST_CASE("names round-trip exactly: spaces, @, +, %, ?, #, UTF-8") {
    auto store = open_test_store(store_url());
    const std::string c = unique_name("h3-names");
    store->ensure_container(c, ContainerAcl::public_container());
    std::vector<std::string> names = {"with space/a b",
                                      "at/20240321_130412_3fa9c@/result.tar",
                                      "plus/c++/g++ 1+1",
                                      "utf8/caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80",
                                      "percent/100%/%41%2F",
                                      "query/a?b=c&d=e",
                                      "hash/#1",
                                      "misc/;,=!$'()*[]~\"<>\\^`{|}"};
    for (const auto& n : names) {
        CAPTURE(n);
        store->put(c, n, "content of " + n);
        auto o = store->get(c, n);
        REQUIRE(o);
        CHECK(o->data == "content of " + n);
        CHECK(o->info.name == n);
    }
    auto all = store->list_all(c, {});
    std::vector<std::string> sorted = names;
    std::sort(sorted.begin(), sorted.end());
    CHECK(names_of(all) == sorted);
    // And as listing parameters.
    ListOptions lo;
    lo.prefix = "utf8/caf\xc3\xa9/";
    CHECK(names_of(store->list(c, lo)) == std::vector<std::string>{names[3]});
    lo.prefix = "percent/100%/";
    CHECK(names_of(store->list(c, lo)) == std::vector<std::string>{names[4]});
    lo.prefix = "";
    lo.marker = "query/a?b=c&d=e";
    CHECK(names_of(store->list(c, lo)) == std::vector<std::string>{names[3], names[0]});
    auto many = store->get_many(c, names);
    REQUIRE(many.size() == names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
        REQUIRE(many[i]);
        CHECK(many[i]->data == "content of " + names[i]);
    }
}

TEST_CASE("listings: prefix, delimiter @, markers, limit, paging") {
    auto store = open_test_store(store_url());
    const std::string c = unique_name("h3-list");
    store->ensure_container(c, ContainerAcl::public_container());
    CHECK(store->list(c, {}).empty());  // 204 for an empty container

    const std::string base = "noble/amd64/g/gedit/";
    std::vector<std::string> runs = {"20240101_000000_aaaaa@", "20240102_000000_bbbbb@", "20240103_000000@"};
    for (const auto& r : runs)
        for (const char* f : {"artifacts.tar.gz", "log.gz", "result.tar"})
            store->put(c, base + r + "/" + f, r + f);
    store->put(c, "noble/amd64/g/glib2.0/20240101_000000_ccccc@/result.tar", "x");

    ListOptions lo;
    lo.prefix = base;
    lo.delimiter = '@';
    auto runs_listed = store->list(c, lo);
    REQUIRE(runs_listed.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(runs_listed[i].subdir);
        CHECK(runs_listed[i].name == base + runs[i]);
    }
    lo.marker = base + runs[0];
    CHECK(names_of(store->list(c, lo)) ==
          std::vector<std::string>{"D:" + base + runs[1], "D:" + base + runs[2]});

    ListOptions slash;
    slash.prefix = "noble/amd64/g/";
    slash.delimiter = '/';
    CHECK(names_of(store->list(c, slash)) ==
          std::vector<std::string>{"D:noble/amd64/g/gedit/", "D:noble/amd64/g/glib2.0/"});

    ListOptions range;
    range.prefix = base;
    range.marker = base + runs[0] + "/log.gz";
    range.end_marker = base + runs[1] + "/result.tar";
    CHECK(names_of(store->list(c, range)) == std::vector<std::string>{base + runs[0] + "/result.tar",
                                                                      base + runs[1] + "/artifacts.tar.gz",
                                                                      base + runs[1] + "/log.gz"});

    ListOptions page;
    page.limit = 4;
    auto first = store->list(c, page);
    CHECK(first.size() == 4);
    auto all = store->list_all(c, page);
    CHECK(all.size() == 10);
    CHECK(all[0].name == first[0].name);
    CHECK(std::is_sorted(all.begin(), all.end(), [](auto& a, auto& b) { return a.name < b.name; }));
    CHECK(all[0].content_type == "application/octet-stream");

    ListOptions too_many;
    too_many.limit = 20000;  // means the maximum, as 0 does
    CHECK(store->list(c, too_many).size() == 10);
    ListOptions cut;
    cut.prefix = "noble/caf\xc3";  // not UTF-8: Swift would answer a bare 400
    CHECK_THROWS_AS(store->list(c, cut), ValidationError);
}

TEST_CASE("get_many: concurrent, in order, missing ones nullopt") {
    auto store = open_test_store(store_url("concurrency=8"));
    const std::string c = unique_name("h3-many");
    store->ensure_container(c, ContainerAcl::public_container());
    std::vector<std::string> names;
    for (int i = 0; i < 200; ++i) names.push_back("o/" + std::to_string(i));
    for (std::size_t i = 0; i < names.size(); i += 2) store->put(c, names[i], "v" + names[i]);
    auto got = store->get_many(c, names);
    REQUIRE(got.size() == names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
        CAPTURE(i);
        if (i % 2 == 0) {
            REQUIRE(got[i]);
            CHECK(got[i]->data == "v" + names[i]);
            CHECK(got[i]->info.name == names[i]);
        } else {
            CHECK(!got[i]);
        }
    }
    CHECK(store->get_many(c, {}).empty());
    CHECK_THROWS_AS(store->get_many(c, {"ok", "../bad"}), ValidationError);
}

TEST_CASE("container ACLs") {
    auto store = open_test_store(store_url());
    const std::string pub = unique_name("h3-pub");
    const std::string priv = unique_name("private-h3");
    store->ensure_container(pub, ContainerAcl::public_container());
    store->ensure_container(priv, ContainerAcl::private_to("test:worker"));
    CHECK(store->container_acl(pub).public_read);
    CHECK(store->container_acl(pub).swift_read_acl() == ".r:*,.rlistings");
    auto acl = store->container_acl(priv);
    CHECK(!acl.public_read);
    CHECK(acl.read_user == "test:worker");
    // ensure_container on an existing container updates its ACL.
    store->ensure_container(priv, ContainerAcl::public_container());
    CHECK(store->container_acl(priv).public_read);
    store->ensure_container(priv, ContainerAcl::private_to(""));
    CHECK(!store->container_acl(priv).public_read);
    CHECK(store->container_acl(priv).read_user.empty());
}

TEST_CASE("the public storage URL: reads without a token, writes refused") {
    auto writer = open_test_store(store_url());
    const std::string pub = unique_name("h3-anon");
    const std::string priv = unique_name("private-h3-anon");
    writer->ensure_container(pub, ContainerAcl::public_container());
    writer->ensure_container(priv, ContainerAcl::private_to("test2:other"));
    writer->put(pub, "a/b@/result.tar", "public bytes");
    writer->put(priv, "secret", "private bytes");

    auto reader = open_test_store(env("APCLOUD_SWIFT_STORAGE_URL"));
    auto o = reader->get(pub, "a/b@/result.tar");
    REQUIRE(o);
    CHECK(o->data == "public bytes");
    CHECK(reader->head(pub, "a/b@/result.tar"));
    CHECK(!reader->get(pub, "a/missing"));
    ListOptions lo;
    lo.delimiter = '@';
    lo.prefix = "a/";
    CHECK(names_of(reader->list(pub, lo)) == std::vector<std::string>{"D:a/b@"});
    CHECK(reader->container_acl(pub).public_read);
    auto many = reader->get_many(pub, {"a/b@/result.tar", "nope"});
    REQUIRE(many.size() == 2);
    CHECK(many[0]->data == "public bytes");
    CHECK(!many[1]);
    CHECK(swift_auth_count(*reader) == 0);

    CHECK_THROWS_AS(reader->list(priv, {}), NotFound);
    CHECK_THROWS_AS(reader->list(unique_name("h3-missing"), {}), NotFound);
    CHECK_THROWS_AS(reader->get(priv, "secret"), StoreError);

    // Streamed reads: as get().
    auto streamed = reader->open_object(pub, "a/b@/result.tar");
    REQUIRE(streamed);
    CHECK(streamed->info().bytes == 12);
    std::string chunk;
    REQUIRE(streamed->read(chunk));
    CHECK(chunk == "public bytes");
    CHECK_FALSE(streamed->read(chunk));
    CHECK(reader->open_object(pub, "a/missing") == nullptr);
    CHECK_THROWS_AS(reader->open_object(priv, "secret"), StoreError);
    // The account cannot be listed without a token.
    const std::string msg = store_error_of([&] { reader->list_containers(); });
    CHECK(msg.find("GET the account") == 0);
    CHECK(msg.find("listing containers needs credentials") != std::string::npos);
    CHECK(swift_auth_count(*reader) == 0);
    try {
        reader->put(pub, "x", "y");
        FAIL("no exception");
    } catch (const StoreError& e) {
        CHECK(std::string(e.what()).find("needs credentials") != std::string::npos);
    }
    CHECK_THROWS_AS(reader->remove(pub, "a/b@/result.tar"), StoreError);
    CHECK_THROWS_AS(reader->ensure_container(pub, {}), StoreError);
}

TEST_CASE("credentials: URL, StoreCredentials, environment; bad ones named without secrets") {
    const std::string c = unique_name("h3-cred");
    // In the URL (percent-encoded user "test:tester").
    auto in_url = open_test_store(with_userinfo("test%3Atester:" + percent_encode(env("APCLOUD_SWIFT_KEY"))));
    in_url->ensure_container(c, {});
    // From StoreCredentials.
    StoreCredentials creds;
    creds.user = "test2:other";
    creds.key = env("APCLOUD_SWIFT_OTHER_KEY");
    if (!creds.key.empty()) {
        auto other = open_test_store(store_url(), creds);
        other->ensure_container(c, {});
        other->put(c, "mine", "other's");
        // test2:other writes to its own account, not to AUTH_test.
        CHECK(!in_url->get(c, "mine"));
    }
    // A wrong key: StoreError naming the user and status, never the key.
    creds.user = "test:tester";
    creds.key = "wrong-key-value";
    auto bad = open_test_store(store_url(), creds);
    try {
        bad->get(c, "x");
        FAIL("no exception");
    } catch (const StoreError& e) {
        std::string msg = e.what();
        CHECK(msg.find("401") != std::string::npos);
        CHECK(msg.find("test:tester") != std::string::npos);
        CHECK(msg.find("wrong-key-value") == std::string::npos);
    }
    // A URL with a password never shows it.
    try {
        open_test_store(with_userinfo("u:topsecret") + "?bogus=1");
        FAIL("no exception");
    } catch (const ConfigError& e) {
        CHECK(std::string(e.what()).find("topsecret") == std::string::npos);
        CHECK(std::string(e.what()).find("bogus") != std::string::npos);
    }
    CHECK_THROWS_AS(open_test_store(store_url("retries=x")), ConfigError);
    CHECK_THROWS_AS(open_test_store(store_url("list_page=0")), ConfigError);
    CHECK_THROWS_AS(open_test_store(store_url("list_page=10001")), ConfigError);
    // A plain http(s) URL with any other path is a storage URL (the web service's /results is one).
    CHECK_NOTHROW(open_test_store("http://127.0.0.1:1/results"));
    CHECK_THROWS_AS(open_test_store("ftp://127.0.0.1:1/results"), ConfigError);
    CHECK_THROWS_AS(open_test_store("swift+http://127.0.0.1:1/v2.0"), ConfigError);
    // The auth URL as swift-start prints it (http://, no swift+) works too.
    auto plain_http = open_test_store(env("APCLOUD_SWIFT_AUTH_URL"));
    plain_http->ensure_container(c, {});
    CHECK(swift_auth_count(*plain_http) == 1);
}

TEST_CASE("list_containers lists the account of the credentials, and needs the right to") {
    auto tester = open_test_store(store_url("list_page=3"));
    const std::string mine = unique_name("h3-account");
    tester->ensure_container(mine, {});
    const auto listed = tester->list_containers();
    CHECK(std::find(listed.begin(), listed.end(), mine) != listed.end());

    StoreCredentials creds;
    creds.user = env("APCLOUD_SWIFT_OTHER_USER");
    creds.key = env("APCLOUD_SWIFT_OTHER_KEY");
    REQUIRE_FALSE(creds.key.empty());
    auto other = open_test_store(store_url(), creds);
    const std::string theirs = unique_name("h3-account-other");
    other->ensure_container(theirs, {});
    const auto other_listed = other->list_containers();
    CHECK(std::find(other_listed.begin(), other_listed.end(), theirs) != other_listed.end());
    CHECK(std::find(other_listed.begin(), other_listed.end(), mine) == other_listed.end());
    CHECK(std::find(listed.begin(), listed.end(), theirs) == listed.end());

    // test:worker is no admin of its account: tempauth refuses the listing.
    creds.user = env("APCLOUD_SWIFT_WORKER_USER");
    creds.key = env("APCLOUD_SWIFT_WORKER_KEY");
    REQUIRE_FALSE(creds.key.empty());
    auto worker = open_test_store(store_url(), creds);
    const std::string msg = store_error_of([&] { worker->list_containers(); });
    CHECK(msg.find("GET the account") == 0);
    CHECK(msg.find("403") != std::string::npos);
    CHECK(msg.find(creds.key) == std::string::npos);
}

TEST_CASE("no credentials at all is a ConfigError") {
    std::string user = env("APCLOUD_SWIFT_USER"), key = env("APCLOUD_SWIFT_KEY");
    unsetenv("APCLOUD_SWIFT_USER");
    unsetenv("APCLOUD_SWIFT_KEY");
    CHECK_THROWS_AS(open_test_store(store_url()), ConfigError);
    setenv("APCLOUD_SWIFT_USER", user.c_str(), 1);
    setenv("APCLOUD_SWIFT_KEY", key.c_str(), 1);
    CHECK_NOTHROW(open_test_store(store_url()));
}

TEST_CASE("threads share one store and one token") {
    auto store = open_test_store(store_url());
    const std::string c = unique_name("h3-threads");
    store->ensure_container(c, {});
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 25; ++i) {
                std::string n = "t" + std::to_string(t) + "/" + std::to_string(i);
                store->put(c, n, n);
                if (store->get(c, n)->data == n) ++ok;
            }
        });
    for (auto& t : threads) t.join();
    CHECK(ok == 100);
    CHECK(store->list_all(c, {}).size() == 100);
    CHECK(swift_auth_count(*store) == 1);
}

// Keystone v3 cannot run here; keystone_standin.py answers POST /v3/auth/tokens
// with Keystone's documented request checks and response shapes, handing out
// real Swift tokens, so everything after the login talks to the real Swift.
TEST_CASE("Keystone v3 password auth (local stand-in)") {
    const std::string script = env("APCLOUD_TEST_KEYSTONE_STANDIN");
    REQUIRE(!script.empty());
    SUBCASE("login, catalog, token use, renewal on 401") {
        swift_test::Background ks({"/usr/bin/python3", script, "--first-token-invalid"});
        REQUIRE(ks.first_line().rfind("http://", 0) == 0);
        StoreCredentials creds;
        creds.user = "gate";
        creds.key = "gate-pass";
        creds.project = "autopkgtest";
        creds.user_domain = "users";
        creds.project_domain = "projects";
        auto store = open_test_store("swift+" + ks.first_line() + "/v3?region=RegionTwo", creds);
        CHECK(swift_auth_count(*store) == 0);
        const std::string c = unique_name("h3-keystone");
        // The first token is one Swift does not know: a 401, then a new login.
        store->ensure_container(c, {});
        CHECK(swift_auth_count(*store) == 2);
        store->put(c, "k", "via keystone");
        CHECK(store->get(c, "k")->data == "via keystone");
        CHECK(swift_auth_count(*store) == 2);
        // The object is in the account the catalog named (the test account).
        auto direct = open_test_store(store_url());
        CHECK(direct->get(c, "k")->data == "via keystone");
    }
    SUBCASE("the OS_* environment and proactive renewal before expires_at") {
        swift_test::Background ks({"/usr/bin/python3", script, "--lifetime", "2"});
        setenv("OS_USERNAME", "gate", 1);
        setenv("OS_PASSWORD", "gate-pass", 1);
        setenv("OS_PROJECT_NAME", "autopkgtest", 1);
        setenv("OS_USER_DOMAIN_NAME", "users", 1);
        setenv("OS_PROJECT_DOMAIN_NAME", "projects", 1);
        std::string user = env("APCLOUD_SWIFT_USER"), key = env("APCLOUD_SWIFT_KEY");
        unsetenv("APCLOUD_SWIFT_USER");
        unsetenv("APCLOUD_SWIFT_KEY");
        auto store = open_test_store("swift+" + ks.first_line() + "/v3/?region=RegionTwo");
        setenv("APCLOUD_SWIFT_USER", user.c_str(), 1);
        setenv("APCLOUD_SWIFT_KEY", key.c_str(), 1);
        for (const char* n : {"OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME", "OS_USER_DOMAIN_NAME",
                              "OS_PROJECT_DOMAIN_NAME"})
            unsetenv(n);
        const std::string c = unique_name("h3-keystone-env");
        store->ensure_container(c, {});
        CHECK(swift_auth_count(*store) == 1);
        std::this_thread::sleep_for(std::chrono::milliseconds(2300));
        store->put(c, "k", "x");
        CHECK(swift_auth_count(*store) == 2);  // renewed before use, no 401 needed
    }
    SUBCASE("a refused password and a catalog without the region") {
        swift_test::Background ks({"/usr/bin/python3", script});
        StoreCredentials creds{"gate", "not-the-password", "autopkgtest", "users", "projects", ""};
        auto store = open_test_store("swift+" + ks.first_line() + "/v3?region=RegionTwo", creds);
        try {
            store->list("x", {});
            FAIL("no exception");
        } catch (const StoreError& e) {
            std::string msg = e.what();
            CHECK(msg.find("Keystone") != std::string::npos);
            CHECK(msg.find("401") != std::string::npos);
            CHECK(msg.find("not-the-password") == std::string::npos);
        }
        creds.key = "gate-pass";
        auto elsewhere = open_test_store("swift+" + ks.first_line() + "/v3?region=Atlantis", creds);
        try {
            elsewhere->list("x", {});
            FAIL("no exception");
        } catch (const StoreError& e) {
            CHECK(std::string(e.what()).find("no public object-store endpoint") != std::string::npos);
        }
        CHECK_THROWS_AS(open_test_store("swift+" + ks.first_line() + "/v3",
                                        StoreCredentials{"gate", "gate-pass", "", "", "", ""}),
                        ConfigError);
    }
}
