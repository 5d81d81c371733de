// The AMQP URL -> AmqpParams mapping: host, credentials, vhost and the query keys.
#include "broker/amqp_params.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "autopkgtest_cloud/error.hpp"

namespace apcloud {

namespace {

using std::chrono::milliseconds;

// Seconds in a query parameter (decimals allowed), checked against a range.
milliseconds parse_seconds(const Url& url, const std::string& key, const std::string& value, double min,
                           double max) {
    char* end = nullptr;
    errno = 0;
    double v = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || errno != 0 || !(v >= min && v <= max))
        throw ConfigError(fmt::format("invalid {}={} in {}: expected seconds between {} and {}", key,
                                      quote_for_message(value), url.redacted(), static_cast<long>(min),
                                      static_cast<long>(max)));
    return milliseconds(static_cast<long long>(v * 1000));
}

bool parse_verify(const AmqpParams& p, const std::string& value) {
    if (value == "1" || value == "true" || value == "yes") return true;
    if (value == "0" || value == "false" || value == "no") return false;
    throw ConfigError(
        fmt::format("invalid verify={} in {}: expected 1 or 0", quote_for_message(value), p.redacted));
}

// Applies one query parameter of the URL to `p`.
void apply_query_key(AmqpParams& p, const Url& url, const std::string& key, const std::string& value) {
    if (key == "heartbeat") {
        p.heartbeat_s = static_cast<int>(parse_seconds(url, key, value, 0, 3600).count() / 1000);
    } else if (key == "connect_timeout") {
        p.connect_timeout = parse_seconds(url, key, value, 0.1, 3600);
    } else if (key == "reconnect_wait") {
        p.reconnect_wait = parse_seconds(url, key, value, 0, 86400);
    } else if (key == "confirm_timeout") {
        p.confirm_timeout = parse_seconds(url, key, value, 0.1, 86400);
    } else if (key == "lease") {
        p.lease = parse_seconds(url, key, value, 1, 7 * 86400);
    } else if (key == "cacert") {
        // Taken into the credentials (resolve_broker_credentials).
    } else if (key == "cert") {
        p.cert = value;
    } else if (key == "key") {
        p.key = value;
    } else if (key == "verify") {
        p.verify = parse_verify(p, value);
    } else {
        throw ConfigError(fmt::format(
            "unknown AMQP URL parameter {} in {} (known: heartbeat, connect_timeout, reconnect_wait, "
            "confirm_timeout, lease, cacert, cert, key, verify)",
            quote_for_message(key), p.redacted));
    }
}

// The vhost is the single path segment, percent-decoded ("%2F" is the
// default vhost "/"); an empty path also means "/".
std::string vhost_of(const Url& url, const AmqpParams& p) {
    std::string raw = url.raw_path.empty() ? std::string() : url.raw_path.substr(1);
    if (raw.find('/') != std::string::npos)
        throw ConfigError(fmt::format(
            "AMQP URL path must be one vhost segment (write a '/' in it as %2F): {}", p.redacted));
    return raw.empty() ? "/" : percent_decode(raw);
}

}  // namespace

AmqpParams amqp_params(const Url& url, const BrokerCredentials& credentials) {
    AmqpParams p;
    if (url.scheme != "amqp" && url.scheme != "amqps")
        throw ConfigError(fmt::format("not an AMQP URL: {} (expected amqp:// or amqps://)", url.redacted()));
    p.redacted = url.redacted();
    p.tls = url.scheme == "amqps";
    if (url.host.empty()) throw ConfigError(fmt::format("AMQP URL without a host: {}", p.redacted));
    p.host = url.host;
    p.port = url.port.value_or(p.tls ? 5671 : 5672);
    p.user = credentials.user;
    p.password = credentials.password;
    if (!credentials.has_password) p.user.clear();
    if (p.user.empty())
        throw ConfigError(fmt::format(
            "no AMQP credentials for {}: put user:password in the URL or set APCLOUD_AMQP_USER and "
            "APCLOUD_AMQP_PASSWORD",
            p.redacted));
    p.vhost = vhost_of(url, p);
    p.cacert = credentials.cacert;
    for (const auto& [key, value] : url.query) apply_query_key(p, url, key, value);
    if (p.cert.empty() != p.key.empty())
        throw ConfigError(fmt::format("AMQP URL {}: cert and key go together", p.redacted));
    if (p.tls && p.cacert.empty() && access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0)
        p.cacert = "/etc/ssl/certs/ca-certificates.crt";
    return p;
}

}  // namespace apcloud
