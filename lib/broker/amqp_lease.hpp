// Consumer leases of the AMQP broker (?lease=SECONDS): lease queues, copies, renewal, end (private header).
// How they work is in amqp_broker.hpp; this part knows lease queues and copies, the broker the deliveries.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <set>
#include <string>

namespace apcloud::detail::amqp {

class AmqpConnection;

/// A delivery as the broker puts it back or leases it.
struct LeasedMessage {
    std::string queue;        ///< where it came from and goes back to
    std::string lease_queue;  ///< non-empty once the delivery lives in a lease
    std::string lease_id;     ///< names this lease; its copies carry it (x-apcloud-lease)
    /// For a delivery that is an expired lease copy back on its queue: the
    /// lease it came from (empty otherwise).
    std::string expired_from;
    std::uint32_t attempt = 1;
    std::optional<std::int64_t> taken;  ///< first taken (unix time), carried in x-apcloud-taken
    std::string body;  ///< kept for lease copies and requeues
};

/// What lease handling needs from the broker: its current connection and
/// admin channel, confirmed publishing, queue depths, the names declared on
/// this connection, and its reconnect-and-retry loop.
class LeaseHost {
public:
    /// The live connection (reconnected if needed by the caller).
    virtual AmqpConnection& connection() = 0;
    /// The channel for declarations and basic.get of lease copies.
    virtual std::uint16_t admin_channel() = 0;
    /// Publishes m.body to `queue` (persistent, mandatory, confirmed) with its
    /// attempt count; `expiration` (milliseconds, as text) makes it a lease copy.
    virtual void publish_with_attempt(const std::string& queue, const LeasedMessage& m,
                                      const std::string* expiration, const std::string& what) = 0;
    /// The number of ready messages in `queue`; also a round trip on the admin channel.
    virtual std::uint64_t message_count(const std::string& queue) = 0;
    /// The queues and exchanges declared on the current connection.
    virtual std::set<std::string>& declared() = 0;
    /// Runs `step`, reconnecting and running it again after a lost connection.
    virtual void retry(const std::string& what, const std::function<void()>& step) = 0;

protected:
    ~LeaseHost() = default;
};

/// The leases of one consumer (one Broker object): a lease queue
/// `apcloud.lease.<queue>.<consumer id>` per queue it consumes from, holding
/// copies that expire back to `<queue>`.
class Leases {
public:
    /// `lease` 0: no leases (deliveries stay unacked in RabbitMQ).
    explicit Leases(std::chrono::milliseconds lease);

    bool enabled() const { return lease_.count() > 0; }

    /// Puts a fresh delivery into a lease: declares the lease queue if needed
    /// and publishes a confirmed copy there, then sets m.lease_queue (left
    /// empty on failure). The caller then acks the original.
    void take(LeaseHost& host, LeasedMessage& m);

    /// Renews a lease: a fresh copy first (confirmed), then the older ones go,
    /// so that at every moment at least one unexpired copy exists. Each step
    /// is retried after a lost connection. Throws BrokerError when the lease
    /// had expired (the request went back to its queue).
    void renew(LeaseHost& host, const LeasedMessage& m, std::uint64_t tag);

    /// Ends a lease: every copy goes (the depth query makes the acks
    /// round-trip). One step (the caller retries). The lease counts as
    /// settled from then on (see is_settled_copy). Returns false when no copy
    /// was left: the lease had expired and its copy went back to m.queue.
    bool end(LeaseHost& host, const LeasedMessage& m);

    /// Whether `m` is a copy of a lease this consumer has ended: the request
    /// was settled (acked, given back or dead-lettered) after its lease had
    /// expired, so this copy is a duplicate, to be acked without running it.
    /// Only this consumer knows (the last 4096 leases it ended); another
    /// consumer that takes the copy runs the request again.
    bool is_settled_copy(const LeasedMessage& m) const;

private:
    std::string queue_for(LeaseHost& host, const std::string& queue);
    void copy(LeaseHost& host, const LeasedMessage& m, const std::string& what);
    void trim(LeaseHost& host, const LeasedMessage& m, std::uint64_t keep, const std::string& what);

    const std::chrono::milliseconds lease_;
    const std::string consumer_id_;  // names this consumer's lease queues
    std::set<std::string> settled_;  // lease ids ended, bounded by settled_order_
    std::deque<std::string> settled_order_;
};

}  // namespace apcloud::detail::amqp
