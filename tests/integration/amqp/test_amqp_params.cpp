// Unit tests of the AMQP URL -> connection parameters mapping (no server needed).
#include <doctest/doctest.h>
#include <stdlib.h>

#include <autopkgtest_cloud/credentials.hpp>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/url.hpp>
#include <string>

#include "broker/amqp_broker.hpp"

using namespace apcloud;

namespace {
// As open_broker does it: credentials resolved from the URL and this process's environment.
AmqpParams params(const std::string& url) {
    const Url u = parse_url(url);
    return amqp_params(u, resolve_broker_credentials(u, {}, process_environment()));
}

// Sets or clears an environment variable for the scope of a test.
struct EnvVar {
    std::string name;
    EnvVar(const char* n, const char* v) : name(n) {
        if (v)
            setenv(n, v, 1);
        else
            unsetenv(n);
    }
    ~EnvVar() { unsetenv(name.c_str()); }
};
}  // namespace

TEST_CASE("defaults: port, vhost, heartbeat") {
    EnvVar u("APCLOUD_AMQP_USER", nullptr), p("APCLOUD_AMQP_PASSWORD", nullptr),
        c("APCLOUD_AMQP_CACERT", nullptr);
    auto a = params("amqp://worker:s3cret@rabbit.example");
    CHECK_FALSE(a.tls);
    CHECK(a.host == "rabbit.example");
    CHECK(a.port == 5672);
    CHECK(a.user == "worker");
    CHECK(a.password == "s3cret");
    CHECK(a.vhost == "/");
    CHECK(a.heartbeat_s == 30);
    CHECK(a.verify);
    CHECK(a.redacted.find("s3cret") == std::string::npos);
    CHECK(params("amqp://w:p@h/").vhost == "/");
    CHECK(params("amqp://w:p@h/%2F").vhost == "/");
    CHECK(params("amqp://w:p@h/%2Fci%20x").vhost == "/ci x");
    CHECK(params("amqp://w:p@h/ci").vhost == "ci");
    CHECK(params("amqp://w:p@h:1234/").port == 1234);
    CHECK(params("amqps://w:p@h/").port == 5671);
    CHECK(params("amqps://w:p@h/").tls);
    CHECK(params("amqp://w:p@[::1]:5673/").host == "::1");
}

TEST_CASE("credentials from the environment") {
    EnvVar c("APCLOUD_AMQP_CACERT", nullptr);
    {
        EnvVar u("APCLOUD_AMQP_USER", "envuser"), p("APCLOUD_AMQP_PASSWORD", "envpass");
        auto a = params("amqp://h/%2F");
        CHECK(a.user == "envuser");
        CHECK(a.password == "envpass");
        // A user in the URL wins; its missing password comes from the environment.
        auto b = params("amqp://urluser@h/%2F");
        CHECK(b.user == "urluser");
        CHECK(b.password == "envpass");
    }
    {
        EnvVar u("APCLOUD_AMQP_USER", nullptr), p("APCLOUD_AMQP_PASSWORD", nullptr);
        CHECK_THROWS_AS(params("amqp://h/%2F"), ConfigError);
        CHECK_THROWS_AS(params("amqp://onlyuser@h/%2F"), ConfigError);
    }
}

TEST_CASE("query parameters") {
    EnvVar c("APCLOUD_AMQP_CACERT", nullptr);
    auto a = params(
        "amqps://w:p@h/?heartbeat=5&connect_timeout=2.5&reconnect_wait=0&confirm_timeout=9"
        "&cacert=/x/ca.pem&verify=0&cert=/x/c.pem&key=/x/k.pem");
    CHECK(a.heartbeat_s == 5);
    CHECK(a.connect_timeout.count() == 2500);
    CHECK(a.reconnect_wait.count() == 0);
    CHECK(a.confirm_timeout.count() == 9000);
    CHECK(a.cacert == "/x/ca.pem");
    CHECK(a.cert == "/x/c.pem");
    CHECK(a.key == "/x/k.pem");
    CHECK_FALSE(a.verify);
    CHECK(params("amqp://w:p@h/?heartbeat=0").heartbeat_s == 0);
    CHECK_THROWS_AS(params("amqp://w:p@h/?heartbeat=-1"), ConfigError);
    CHECK_THROWS_AS(params("amqp://w:p@h/?heartbeat=abc"), ConfigError);
    CHECK_THROWS_AS(params("amqp://w:p@h/?verify=maybe"), ConfigError);
    CHECK_THROWS_AS(params("amqp://w:p@h/?hearbeat=5"), ConfigError);  // a typo is an error
    CHECK_THROWS_AS(params("amqps://w:p@h/?cert=/x/c.pem"), ConfigError);
}

TEST_CASE("CA bundle from the environment") {
    EnvVar c("APCLOUD_AMQP_CACERT", "/etc/apcloud/ca.pem");
    CHECK(params("amqps://w:p@h/").cacert == "/etc/apcloud/ca.pem");
    CHECK(params("amqps://w:p@h/?cacert=/other.pem").cacert == "/other.pem");
}

TEST_CASE("malformed URLs name the URL, never the password") {
    for (const char* bad :
         {"amqp://w:topsecret@/%2F", "amqp://w:topsecret@h/a/b", "sqlite://w:topsecret@h/x"}) {
        try {
            params(bad);
            FAIL("accepted " << bad);
        } catch (const ConfigError& e) {
            CHECK(std::string(e.what()).find("topsecret") == std::string::npos);
        }
    }
}
