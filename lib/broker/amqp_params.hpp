// The connection parameters of the AMQP broker, taken from its URL (private header; no rabbitmq-c).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "autopkgtest_cloud/credentials.hpp"
#include "autopkgtest_cloud/url.hpp"

namespace apcloud {

/// Everything needed to (re)connect to a RabbitMQ node, taken from an
/// `amqp(s)://user:pass@host:port/vhost?key=value` URL and the resolved
/// credentials.
///
/// Query keys (all optional):
/// - `heartbeat=S`       AMQP heartbeat in seconds (default 30, 0 disables);
/// - `connect_timeout=S` TCP connect + AMQP handshake timeout (default 10);
/// - `reconnect_wait=S`  total time to keep retrying a lost or refused
///                       connection, with capped exponential backoff (default 60;
///                       0 means a single attempt);
/// - `confirm_timeout=S` how long a publish waits for the publisher confirm
///                       and an RPC for its reply (default 60);
/// - `cacert=PATH`       CA bundle for amqps (default: the credentials' cacert,
///                       APCLOUD_AMQP_CACERT, else Debian's ca-certificates.crt);
/// - `cert=PATH`, `key=PATH`  client certificate and key for amqps;
/// - `verify=0`          do not verify the server certificate and host name
///                       (default 1: verify both).
/// Unknown keys are a ConfigError, so a typo never silently changes behaviour.
struct AmqpParams {
    bool tls = false;
    std::string host;
    std::uint16_t port = 5672;
    std::string user;
    std::string password;
    std::string vhost = "/";
    int heartbeat_s = 30;
    std::chrono::milliseconds connect_timeout{10000};
    std::chrono::milliseconds reconnect_wait{60000};
    std::chrono::milliseconds confirm_timeout{60000};
    /// Consumer leases (`?lease=SECONDS`): 0 keeps deliveries unacked in
    /// RabbitMQ (subject to its consumer ack timeout); see AmqpBroker.
    std::chrono::milliseconds lease{0};
    std::string cacert;
    std::string cert;
    std::string key;
    bool verify = true;
    std::string redacted;  ///< the URL without password, for messages
};

/// Builds the connection parameters from the URL and the resolved
/// credentials (resolve_broker_credentials: this adapter never reads the
/// environment). Throws ConfigError naming the (redacted) URL when something
/// is missing or malformed.
AmqpParams amqp_params(const Url& url, const BrokerCredentials& credentials);

}  // namespace apcloud
