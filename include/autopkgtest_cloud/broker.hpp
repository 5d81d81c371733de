/// @file broker.hpp
/// The broker interface (AMQP semantics, SPEC.md section 2) and the factory
/// that opens a backend from its URL.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "autopkgtest_cloud/credentials.hpp"

namespace apcloud {

/// The fanout exchange of running-test status (transient).
inline constexpr const char* teststatus_exchange = "teststatus.fanout";
/// The fanout exchange of completed tests (durable).
inline constexpr const char* testcomplete_exchange = "testcomplete.fanout";

/// One message handed to a consumer. It stays owned by that consumer until it
/// is acked, requeued or dead-lettered (or the consumer dies).
struct Delivery {
    std::string queue;          ///< the queue it came from
    std::string body;           ///< the message body
    std::uint64_t tag = 0;      ///< identifies the delivery to ack/requeue/dead_letter
    bool redelivered = false;   ///< delivered before and not acked
    std::uint32_t attempt = 1;  ///< 1 on first delivery; counted where the backend can
    /// For a message read from a dead-letter queue (`<queue>.dead`): the
    /// reason given to Broker::dead_letter; empty otherwise.
    std::string reason;
    /// When this request was first handed to a consumer (unix time), where
    /// the backend carries it (RabbitMQ with leases); nullopt otherwise. No
    /// run of this delivery can have started before (SPEC.md 5).
    std::optional<std::int64_t> first_taken;
};

/// One ready message of a queue as Broker::peek_messages lists it: what an
/// operator needs to see of a dead letter (body, reason, deliveries).
struct PeekedMessage {
    std::string body;  ///< the message body
    /// For a message of a dead-letter queue (`<queue>.dead`): the reason
    /// given to Broker::dead_letter; empty otherwise.
    std::string reason;
    /// How many times it was delivered from this queue and not acked, where
    /// the backend counts (the embedded broker always, RabbitMQ through
    /// quorum queues' x-delivery-count or the count we carry on messages we
    /// put back); nullopt where it does not (RabbitMQ classic queues). A dead
    /// letter starts again at 0 in its dead-letter queue: the deliveries of
    /// the original are not carried over (the reason says when they caused it).
    std::optional<std::uint32_t> deliveries;
};

/// A subscription to a fanout exchange: receives events published after it
/// was made, while it lives.
class Subscription {
public:
    virtual ~Subscription();
    /// The next event, or nullopt after `timeout` without one.
    virtual std::optional<std::string> next(std::chrono::milliseconds timeout) = 0;
};

/// One message of Broker::publish_many.
struct Publication {
    std::string queue;
    std::string body;
};

/// What became of one message of Broker::publish_many.
struct PublishResult {
    bool queued = false;    ///< the broker confirmed it: it is queued
    bool no_queue = false;  ///< not queued: its queue does not exist
    std::string error;      ///< why it is not queued (empty when queued)
};

/// A message broker with durable queues, explicit acknowledgement and fanout
/// exchanges. One Broker object is used by one thread at a time.
class Broker {
public:
    virtual ~Broker();

    /// Creates a durable queue if it does not exist.
    virtual void declare_queue(const std::string& queue) = 0;
    /// Publishes a persistent message; returns once the broker has taken
    /// responsibility for it (publisher confirm). A missing queue is a
    /// NotFound error, never a silent loss.
    virtual void publish(const std::string& queue, const std::string& body) = 0;
    /// Publishes many persistent messages, each as publish does, and returns
    /// once every one is confirmed or refused: result i says what became of
    /// message i (a missing queue or an invalid name refuses only its own
    /// messages; a broker that stays unreachable refuses the unconfirmed).
    /// - AMQP: pipelined publisher confirms: up to a window of messages in
    ///   flight before waiting (britney sends thousands at once; one round
    ///   trip each is what a pika loop does). A message whose confirm did not
    ///   arrive before a lost connection is published again after the
    ///   reconnect (at least once, as publish does).
    /// - Embedded and default: publish, one after the other.
    virtual std::vector<PublishResult> publish_many(const std::vector<Publication>& messages);
    /// Waits up to `timeout` for a message from any of `queues` (prefetch 1:
    /// at most one unacknowledged delivery per consumer).
    virtual std::optional<Delivery> consume(const std::vector<std::string>& queues,
                                            std::chrono::milliseconds timeout) = 0;
    /// Acknowledges: the message is gone for good.
    virtual void ack(const Delivery& delivery) = 0;
    /// Puts the message back on its queue for another consumer.
    virtual void requeue(const Delivery& delivery) = 0;
    /// Removes the message from its queue into the dead-letter queue
    /// (`<queue>.dead`, holding the body and `reason`).
    virtual void dead_letter(const Delivery& delivery, const std::string& reason) = 0;
    /// Puts `body` into the dead-letter queue of `queue` (`<queue>.dead`,
    /// declared if absent) with `reason`, as dead_letter would a delivery of
    /// `queue`, and returns once the broker has taken responsibility for it
    /// (publisher confirm). `queue` itself need not exist. For operators'
    /// tools that give a dead letter back to its dead-letter queue after
    /// taking it (`apcloud dead replay` keeps what it does not move this way)
    /// and for tests. On AMQP the same headers as dead_letter's.
    virtual void publish_dead_letter(const std::string& queue, const std::string& body,
                                     const std::string& reason) = 0;
    /// Keeps a held delivery owned by this consumer during long work (a test
    /// may run for hours, longer than the broker's ack timeout). Call it
    /// regularly while working; backends that keep deliveries alive by
    /// themselves do nothing. Throws BrokerError when ownership was lost.
    virtual void renew(const Delivery& delivery);
    /// Messages ready in the queue (not counting unacknowledged ones).
    virtual std::uint64_t queue_depth(const std::string& queue) = 0;
    /// Up to `limit` ready messages of `queue` (body, dead-letter reason,
    /// delivery count), in the order consume would deliver them, for views of
    /// what is queued and of dead letters. Messages held
    /// by a consumer (unacknowledged or leased) are not listed. The messages
    /// stay queued: nothing is consumed, leased or acknowledged. A missing
    /// queue is NotFound.
    /// - Embedded: a read-only query; attempt counts and leases are untouched.
    ///   `deliveries` is the stored attempt count.
    /// - AMQP, as the reference's queue view does it: basic.get without ack
    ///   of up to `limit` messages on a channel of its own, then that channel
    ///   is closed, so RabbitMQ puts them all back at their places (the
    ///   broker's other channels, and the delivery it holds, are not
    ///   touched). RabbitMQ then marks them redelivered: the next consume
    ///   gets `redelivered` set (attempt 2 on a classic queue, which keeps no
    ///   count; on a quorum queue each peek adds one to x-delivery-count).
    ///   While a peek runs its messages are invisible to consumers, so a
    ///   consumer active at the same time may get a later message first; with
    ///   a single reader the order after the peek is the order before it.
    ///   The reason and the delivery count come from the message's headers
    ///   (x-apcloud-reason; x-delivery-count, x-apcloud-attempt) as consume
    ///   reads them (on a quorum queue earlier peeks count as deliveries).
    virtual std::vector<PeekedMessage> peek_messages(const std::string& queue, std::size_t limit) = 0;
    /// The bodies of peek_messages(queue, limit), for views that need no more.
    std::vector<std::string> peek(const std::string& queue, std::size_t limit);
    /// Publishes an event to a fanout exchange (teststatus / testcomplete).
    virtual void publish_event(const std::string& exchange, const std::string& body) = 0;
    /// Subscribes to a fanout exchange: a transient subscription, which gets
    /// the events published while it lives and loses the others.
    virtual std::unique_ptr<Subscription> subscribe(const std::string& exchange) = 0;
    /// Binds a durable queue to a fanout exchange, for a service that must
    /// see every event, including those published while it was down (the web
    /// service's `testcomplete` feed). Declares `queue` (durable) if absent;
    /// from the call on, every event published to `exchange` is also queued
    /// there, as a persistent message, and kept while nobody consumes. Read
    /// it with consume/ack/requeue like any queue: an event is gone only when
    /// acked, and one not acked comes back after a crash. Events published
    /// before the first binding are not in it. Binding again (each service
    /// start should) is harmless: the queue keeps its messages and gets each
    /// event once. Meant for `testcomplete.fanout` (durable). Binding to
    /// `teststatus.fanout` is allowed, but on RabbitMQ that exchange and its
    /// events are transient: a RabbitMQ restart removes the exchange with its
    /// bindings and the queued events (the queue stays), until bind_queue is
    /// called again.
    /// - Embedded: a copy of each event is inserted into every bound queue in
    ///   the transaction that publishes the event, so no process sees one
    ///   without the other; bindings live in the database file.
    /// - AMQP: a durable classic queue (declared as the reference's web
    ///   service does: durable, no arguments) bound to the exchange, which is
    ///   declared durable except for teststatus.
    virtual void bind_queue(const std::string& queue, const std::string& exchange) = 0;
};

/// Opens a broker from its URL:
/// - `sqlite:///path/queue.db` — the embedded broker (one file, many processes);
/// - `amqp://user:pass@host:port/vhost` (`amqps://` for TLS) — RabbitMQ.
/// Credentials: resolve_broker_credentials(url, credentials, env); pass
/// process_environment() to let APCLOUD_AMQP_* variables count. Throws
/// ConfigError naming the URL otherwise.
std::unique_ptr<Broker> open_broker(const std::string& url, const BrokerCredentials& credentials = {},
                                    const Environment& env = {});

}  // namespace apcloud
