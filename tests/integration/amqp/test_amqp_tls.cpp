// amqps:// end to end: our TLS client through a TLS front (tls_proxy.py) to the test RabbitMQ.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <autopkgtest_cloud/broker.hpp>
#include <autopkgtest_cloud/credentials.hpp>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/url.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "amqp_test_util.hpp"

using namespace apcloud;
using namespace std::chrono_literals;
using amqp_test::contains;
using amqp_test::require_env;
using amqp_test::unique_name;

namespace {
void openssl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = amqp_test::run(argv);
    REQUIRE_MESSAGE(r.status == 0, "openssl " << args.at(0) << " exited " << r.status);
}

// A CA, and a server certificate it signed for DNS name "localhost" only.
struct Pki {
    std::string dir;
    Pki() {
        char tmpl[] = "/tmp/apcloud-amqp-tls-XXXXXX";
        REQUIRE(mkdtemp(tmpl));
        dir = tmpl;
        openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", dir + "/ca.key", "-out", dir + "/ca.pem", "-days", "2", "-subj",
                 "/CN=apcloud test CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                 "keyUsage=critical,keyCertSign,cRLSign"});
        openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                 dir + "/server.key", "-out", dir + "/server.csr", "-subj", "/CN=localhost"});
        std::ofstream(dir + "/ext.cnf") << "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n"
                                           "extendedKeyUsage=serverAuth\n";
        openssl({"x509", "-req", "-in", dir + "/server.csr", "-CA", dir + "/ca.pem", "-CAkey",
                 dir + "/ca.key", "-CAcreateserial", "-out", dir + "/server.pem", "-days", "2", "-extfile",
                 dir + "/ext.cnf"});
    }
    ~Pki() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
};

// amqps://worker:...@HOST:PORT/%2F?QUERY for the TLS front.
std::string tls_url(const std::string& host, const std::string& port, const std::string& query) {
    Url u = parse_url(require_env("APCLOUD_AMQP_URL"));
    return "amqps://" + percent_encode(u.user) + ":" + percent_encode(u.password) + "@" + host + ":" + port +
           u.raw_path + (query.empty() ? "" : "?" + query);
}

void round_trip(Broker& b) {
    auto q = unique_name("debci-tls-noble-amd64");
    b.declare_queue(q);
    std::string big(200 * 1024, 'z');  // several TLS records and AMQP frames
    b.publish(q, big);
    auto d = b.consume({q}, 5s);
    REQUIRE(d);
    CHECK(d->body == big);
    b.ack(*d);
    CHECK(b.queue_depth(q) == 0);
}
}  // namespace

TEST_CASE("amqps: verified against the given CA; refused without it, at once") {
    Url plain = parse_url(require_env("APCLOUD_AMQP_URL"));
    Pki pki;
    amqp_test::Child proxy({require_env("APCLOUD_PYTHON"), require_env("APCLOUD_TLS_PROXY"),
                            pki.dir + "/server.pem", pki.dir + "/server.key",
                            std::to_string(plain.port.value_or(5672))});
    const std::string port = proxy.read_line();
    REQUIRE_FALSE(port.empty());

    SUBCASE("the right CA and host name") {
        auto b = open_broker(tls_url("localhost", port, "cacert=" + pki.dir + "/ca.pem"));
        round_trip(*b);
        auto s = b->subscribe(teststatus_exchange);  // the subscription's own connection is TLS too
        b->publish_event(teststatus_exchange, "{\"tls\": true}");
        bool seen = false;
        for (int i = 0; i < 50 && !seen; ++i) {
            auto e = s->next(5s);
            REQUIRE(e);
            seen = contains(*e, "\"tls\"");
        }
        CHECK(seen);
    }
    SUBCASE("the CA from APCLOUD_AMQP_CACERT") {
        setenv("APCLOUD_AMQP_CACERT", (pki.dir + "/ca.pem").c_str(), 1);
        auto b = open_broker(tls_url("localhost", port, ""), {}, process_environment());
        unsetenv("APCLOUD_AMQP_CACERT");
        round_trip(*b);
    }
    SUBCASE("an unknown CA is refused, not retried") {
        auto t0 = std::chrono::steady_clock::now();
        // The system bundle does not know our test CA.
        try {
            open_broker(tls_url("localhost", port, ""));
            FAIL("connected with an unknown CA");
        } catch (const BrokerError& e) {
            MESSAGE(std::string(e.what()));
            CHECK(contains(e.what(), "amqps://"));
        }
        CHECK(std::chrono::steady_clock::now() - t0 < 5s);
    }
    SUBCASE("a host name the certificate does not name is refused") {
        try {
            open_broker(tls_url("127.0.0.1", port, "cacert=" + pki.dir + "/ca.pem"));
            FAIL("connected to a host the certificate does not name");
        } catch (const BrokerError& e) {
            MESSAGE(std::string(e.what()));
            CHECK(contains(e.what(), "127.0.0.1"));
        }
    }
    SUBCASE("verify=0 accepts anything (for tests only)") {
        auto b = open_broker(tls_url("127.0.0.1", port, "verify=0"));
        round_trip(*b);
    }
    SUBCASE("plain AMQP spoken to the TLS port fails cleanly") {
        std::string url = tls_url("127.0.0.1", port, "reconnect_wait=0&connect_timeout=3");
        url.replace(0, 5, "amqp");
        try {
            open_broker(url);
            FAIL("plain AMQP to a TLS port worked");
        } catch (const BrokerError& e) {
            MESSAGE(std::string(e.what()));
        }
    }
}
