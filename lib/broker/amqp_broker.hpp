// The AMQP 0-9-1 (RabbitMQ) broker via rabbitmq-c (private header; amqp.h stays in the .cpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "autopkgtest_cloud/broker.hpp"
#include "autopkgtest_cloud/credentials.hpp"
#include "autopkgtest_cloud/url.hpp"

namespace apcloud {

/// Everything needed to (re)connect to a RabbitMQ node, taken from an
/// `amqp(s)://user:pass@host:port/vhost?key=value` URL and the environment.
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

/// Connects to the broker at `amqp(s)://user:pass@host:port/vhost`
/// (see AmqpParams for the query keys). Retries a refused connection for
/// `reconnect_wait`; a refused login is a BrokerError at once.
///
/// How the Broker contract maps onto AMQP 0-9-1:
/// - publish: default exchange, routing key = queue, delivery_mode 2,
///   mandatory, publisher confirm awaited (a basic.return is NotFound);
/// - consume: basic.get on each queue in the given order, then, only while
///   waiting, a consumer per queue (channel-wide prefetch 1); no consumer
///   outlives the call, so RabbitMQ never pushes a message nobody asked for;
/// - ack/requeue: basic.ack / basic.reject(requeue), then a round trip on the
///   same channel, so that a return means the broker has processed it;
/// - dead_letter: a confirmed copy to `<queue>.dead` (headers
///   x-apcloud-reason, x-apcloud-queue), then the ack of the original;
/// - a lost connection is re-established (capped exponential backoff) by the
///   next call; deliveries held across the loss are stale (settling one is a
///   BrokerError; RabbitMQ delivers the message again); an unconfirmed
///   publish is sent again (it may be queued twice, never lost);
/// - with `?lease=SECONDS`, a delivery is moved into a lease at once: a
///   confirmed copy goes to this consumer's lease queue
///   `apcloud.lease.<queue>.<consumer id>`, whose messages dead-letter back to
///   `<queue>` when they expire, and the original is acked. RabbitMQ's
///   consumer ack timeout (30 min by default, global in 3.10) then never
///   applies, however long a test runs; renew() replaces the copy with a
///   fresh one every call, so only a consumer that stopped renewing (it died)
///   loses the request, which returns to its queue within one lease. A lease
///   survives lost connections and broker restarts (durable queue, persistent
///   copy), so ack/requeue/dead_letter of a leased delivery still work after a
///   reconnect. The attempt count travels in the header x-apcloud-attempt;
/// - a background thread answers heartbeats while the caller is busy
///   elsewhere (a worker running a test while it holds its delivery).
std::unique_ptr<Broker> make_amqp_broker(const Url& url, const BrokerCredentials& credentials);

}  // namespace apcloud
