// Token renewal: tempauth's tokens are wiped from memcached, and the next operations re-authenticate once.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "autopkgtest_cloud/log.hpp"
#include "autopkgtest_cloud/store.hpp"
#include "http/http_client.hpp"
#include "store/swift_store.hpp"
#include "swift_test_util.hpp"

using namespace apcloud;
using swift_test::env;

namespace {

// tempauth keeps its tokens only in memcached: flushing it revokes them all,
// as an expiry or a revocation on a real deployment does.
void revoke_all_tokens() {
    const std::string dir = env("APCLOUD_SWIFT_DIR");
    REQUIRE_MESSAGE(!dir.empty(), "APCLOUD_SWIFT_DIR (from swift-start's env) is needed to reach memcached");
    const std::string port = swift_test::read_kv(dir + "/etc/ports", "MEMCACHED_PORT");
    REQUIRE(!port.empty());
    REQUIRE(swift_test::memcached_command(std::stoi(port), "flush_all") == "OK");
}

std::string v1_token(http::HttpClient& client) {
    http::Request r;
    r.url = env("APCLOUD_SWIFT_AUTH_URL");
    r.headers["X-Auth-User"] = env("APCLOUD_SWIFT_USER");
    r.headers["X-Auth-Key"] = env("APCLOUD_SWIFT_KEY");
    return client.request(r).header("X-Auth-Token").value_or("");
}

int head_account(http::HttpClient& client, const std::string& token) {
    http::Request r;
    r.method = "HEAD";
    r.url = env("APCLOUD_SWIFT_STORAGE_URL");
    r.headers["X-Auth-Token"] = token;
    return client.request(r).status;
}

}  // namespace

TEST_CASE("a revoked token is renewed transparently, once") {
    auto store = open_test_store(swift_test::store_url());
    const std::string c = swift_test::unique_name("h3-token");
    store->ensure_container(c, {});
    store->put(c, "a", "before");
    CHECK(swift_auth_count(*store) == 1);

    http::HttpClient client;
    const std::string witness = v1_token(client);
    REQUIRE(head_account(client, witness) == 204);
    revoke_all_tokens();
    CHECK(head_account(client, witness) == 401);  // tokens really are gone

    auto a = store->get(c, "a");
    REQUIRE(a);
    CHECK(a->data == "before");
    CHECK(swift_auth_count(*store) == 2);

    SUBCASE("several threads hitting the revoked token log in once") {
        revoke_all_tokens();
        std::vector<std::thread> threads;
        std::atomic<int> ok{0};
        for (int t = 0; t < 6; ++t)
            threads.emplace_back([&, t] {
                const std::string n = "t" + std::to_string(t);
                store->put(c, n, n);
                if (store->get(c, n)->data == n) ++ok;
            });
        for (auto& t : threads) t.join();
        CHECK(ok == 6);
        CHECK(swift_auth_count(*store) == 3);
    }
    SUBCASE("get_many's concurrent pass renews and completes") {
        std::vector<std::string> names;
        for (int i = 0; i < 40; ++i) names.push_back("m/" + std::to_string(i));
        for (const auto& n : names) store->put(c, n, n);
        revoke_all_tokens();
        auto got = store->get_many(c, names);
        for (std::size_t i = 0; i < names.size(); ++i) {
            REQUIRE(got[i]);
            CHECK(got[i]->data == names[i]);
        }
        CHECK(swift_auth_count(*store) == 3);
    }
    SUBCASE("listings too") {
        revoke_all_tokens();
        CHECK(store->list(c, {}).size() == 1);
        CHECK(swift_auth_count(*store) == 3);
        revoke_all_tokens();
        const auto containers = store->list_containers();
        CHECK(std::find(containers.begin(), containers.end(), c) != containers.end());
        CHECK(swift_auth_count(*store) == 4);
    }
    SUBCASE("streamed reads too") {
        revoke_all_tokens();
        auto reader = store->open_object(c, "a");
        REQUIRE(reader);
        std::string chunk;
        REQUIRE(reader->read(chunk));
        CHECK(chunk == "before");
        CHECK(swift_auth_count(*store) == 3);
    }
}

TEST_CASE("a token renewal is logged (info), without the token or the key") {
    std::mutex mutex;
    std::vector<std::string> infos;
    set_log_sink([&](const LogRecord& r) {
        std::lock_guard<std::mutex> lock(mutex);
        if (r.component == "swift" && r.level == LogLevel::info) infos.emplace_back(r.message);
    });
    auto store = open_test_store(swift_test::store_url());
    const std::string c = swift_test::unique_name("h3-token-log");
    store->ensure_container(c, {});
    CHECK(infos.empty());  // the first login is no renewal
    http::HttpClient client;
    const std::string witness = v1_token(client);
    revoke_all_tokens();
    store->put(c, "a", "after");
    set_log_sink({});
    REQUIRE(infos.size() == 1);
    MESSAGE(infos[0]);
    CHECK(infos[0].find("(Swift v1 auth as '" + env("APCLOUD_SWIFT_USER") +
                        "'): the server refused the token; renewed it (valid for ") != std::string::npos);
    CHECK(infos[0].find(witness) == std::string::npos);
    CHECK(infos[0].find("AUTH_tk") == std::string::npos);
    CHECK(infos[0].find(env("APCLOUD_SWIFT_KEY")) == std::string::npos);
}
