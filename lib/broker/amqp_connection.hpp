// One rabbitmq-c connection of the AMQP broker: connect, TLS, login, backoff, heartbeats, RPC checks.
// Private to lib/broker: the only header with rabbitmq-c's types; amqp_broker.hpp never includes it.
#pragma once

#include <amqp.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "autopkgtest_cloud/error.hpp"
#include "broker/amqp_params.hpp"

namespace apcloud::detail::amqp {

using Clock = std::chrono::steady_clock;

/// How often one operation may lose its connection and start again before
/// giving up (each reconnect also has its own time budget, reconnect_wait).
inline constexpr int kMaxConnectionLosses = 5;

/// Headers of a dead-lettered message.
inline constexpr const char* kReasonHeader = "x-apcloud-reason";
inline constexpr const char* kQueueHeader = "x-apcloud-queue";
/// The delivery attempt a message carries when we put it back (lease copies,
/// requeues), so the count survives classic queues, which keep none.
inline constexpr const char* kAttemptHeader = "x-apcloud-attempt";
/// The lease a lease copy belongs to: an expired copy back on its queue says
/// which lease it came from, so its consumer can tell a settled one.
inline constexpr const char* kLeaseHeader = "x-apcloud-lease";
/// When a request was first taken (unix time), carried by lease copies and
/// requeues (Delivery::first_taken).
inline constexpr const char* kTakenHeader = "x-apcloud-taken";

/// The bytes as a string (rabbitmq-c's amqp_bytes_t is not terminated).
std::string bytes_to_string(amqp_bytes_t b);
/// A view of `s` for rabbitmq-c (which does not write through it).
amqp_bytes_t as_bytes(const std::string& s);
/// "12 s", "1.5 s": a duration for messages.
std::string seconds_text(std::chrono::milliseconds ms);

/// AMQP names are short strings: throws BrokerError for an empty name (the
/// broker would invent one, which is never what a caller means) or one
/// longer than 255 bytes. `kind` is "queue", "exchange", ...
void check_name(const std::string& name, const char* kind);

/// The connection is gone (socket error, heartbeat timeout, connection.close,
/// no reply in time). Operations that are safe to repeat reconnect and retry.
class ConnectionLost : public BrokerError {
public:
    using BrokerError::BrokerError;
};

/// Why the broker closed a channel (reply code and text, e.g. 404
/// "NOT_FOUND - no queue 'x' in vhost '/'").
struct ChannelClose {
    std::uint16_t code = 0;
    std::string text;
};

/// Throws NotFound (404) or BrokerError for a channel the broker closed
/// while doing `what`.
[[noreturn]] void throw_channel_error(const std::string& what, const ChannelClose& c);

/// One AMQP connection: socket, login, channel bookkeeping, and the mapping of
/// rabbitmq-c results to our exceptions. Not thread-safe (the owner locks).
class AmqpConnection {
public:
    /// Connects and logs in once; a refusal that a retry may cure is
    /// ConnectionLost, any other failure BrokerError or ConfigError.
    explicit AmqpConnection(const AmqpParams& p);
    ~AmqpConnection();
    AmqpConnection(const AmqpConnection&) = delete;
    AmqpConnection& operator=(const AmqpConnection&) = delete;

    amqp_connection_state_t get() const { return conn_; }
    bool alive() const { return alive_; }
    /// Forgets the connection without the closing handshake (it is broken).
    void kill() { alive_ = false; }

    bool channel_open(amqp_channel_t ch) const;
    /// Identifies one incarnation of a channel, unique in the process.
    std::uint64_t epoch(amqp_channel_t ch) const;
    std::optional<ChannelClose> close_reason(amqp_channel_t ch) const;
    /// Opens a channel with a number not used lately and returns it. Numbers
    /// are not reused at once because RabbitMQ may still send a closed
    /// channel's close again (see on_channel_close).
    amqp_channel_t open_new_channel();

    /// Checks the reply of a synchronous method sent on `ch` for `what`.
    void check(const amqp_rpc_reply_t& r, amqp_channel_t ch, const std::string& what);
    /// Checks the reply of the last synchronous method sent on `ch`.
    void check_reply(amqp_channel_t ch, const std::string& what) {
        check(amqp_get_rpc_reply(conn_), ch, what);
    }
    /// Checks the status of an asynchronous send.
    void check_status(int status, const std::string& what);

    /// Answers a channel.close from the broker and marks the channel closed.
    ChannelClose on_channel_close(amqp_channel_t ch, const amqp_method_t& m);
    /// Closes channel `ch` from our side (channel.close, then its close-ok):
    /// RabbitMQ requeues whatever it delivered there unacknowledged. The
    /// other channels of the connection are not touched. Nothing happens
    /// for a channel already closed.
    void close_channel(amqp_channel_t ch, const std::string& what);
    /// Answers a connection.close from the broker; always throws ConnectionLost.
    [[noreturn]] void on_connection_close(const amqp_method_t& m, const std::string& what);
    /// Marks the connection dead and throws ConnectionLost for `what`.
    [[noreturn]] void lost(const std::string& what, const std::string& why);

    /// Waits for the next frame until `deadline`; false on timeout. rabbitmq-c
    /// sends and checks heartbeats while it waits.
    bool wait_frame(amqp_frame_t& frame, Clock::time_point deadline);

private:
    void open_socket(const AmqpParams& p);
    void log_in(const AmqpParams& p);
    void check_login(const amqp_rpc_reply_t& r, const AmqpParams& p);
    void mark_closed(amqp_channel_t ch, const ChannelClose& c);

    const std::string redacted_;
    amqp_connection_state_t conn_ = nullptr;
    bool alive_ = false;
    struct ChannelState {
        bool open = false;
        std::uint64_t epoch = 0;
        std::optional<ChannelClose> closed;
    };
    std::map<amqp_channel_t, ChannelState> channels_;
    std::deque<amqp_channel_t> closed_order_;
    amqp_channel_t last_channel_ = 0;
};

/// Connects, retrying with capped exponential backoff for p.reconnect_wait;
/// gives up with BrokerError. `reconnect`: it replaces a lost connection,
/// and success is logged as a reconnect.
std::unique_ptr<AmqpConnection> connect_with_backoff(const AmqpParams& p, bool reconnect);

/// The header and body frames that follow a basic.deliver/basic.return/basic.get-ok.
struct Content {
    std::string body;
    std::optional<std::int64_t> delivery_count;  ///< x-delivery-count (quorum queues)
    std::string reason;                          ///< x-apcloud-reason (dead-lettered by us)
    std::optional<std::int64_t> attempt;         ///< x-apcloud-attempt (put back by us)
    std::string lease;                           ///< x-apcloud-lease (an expired lease copy)
    std::optional<std::int64_t> taken;           ///< x-apcloud-taken
};

/// Reads the content of the message whose method was just received on `ch`.
Content read_content(AmqpConnection& c, amqp_channel_t ch, const std::string& what);

/// SPEC section 2: teststatus is transient (stale progress is worthless
/// after a restart), testcomplete and anything else durable.
bool exchange_is_durable(const std::string& exchange);

/// Declares the fanout exchange `exchange` (durable or not, as above).
void declare_fanout(AmqpConnection& c, amqp_channel_t ch, const std::string& exchange);

/// Binds `queue` (already declared) to the fanout exchange `exchange`.
void bind_to_fanout(AmqpConnection& c, amqp_channel_t ch, const std::string& queue,
                    const std::string& exchange);

/// Up to `limit` ready messages of `queue` (body and headers), in queue order,
/// left queued: basic.get without ack on a channel opened for the purpose,
/// which is then closed, so that RabbitMQ requeues them at their places
/// (marked redelivered). A missing queue is NotFound (the broker closes that
/// channel only). The caller has handled the frames queued for its other
/// channels (a new channel is opened here).
std::vector<Content> peek_queue(AmqpConnection& c, const std::string& queue, std::size_t limit);

/// Keeps a connection alive while its owner is busy elsewhere for a long time
/// (a worker runs a test for hours holding its delivery): without heartbeats
/// RabbitMQ would close the connection and requeue the message. rabbitmq-c
/// only sends heartbeats from inside its calls, hence a thread that makes such
/// a call (`poll`, under the owner's lock) when the owner has not for a third
/// of the heartbeat interval.
class Keepalive {
public:
    /// `mu` is the owner's lock; no thread runs when `heartbeat_s` is 0.
    Keepalive(std::mutex& mu, int heartbeat_s);
    ~Keepalive() { stop(); }
    Keepalive(const Keepalive&) = delete;
    Keepalive& operator=(const Keepalive&) = delete;

    /// Starts the thread, which calls `poll` with the owner's lock held.
    void start(std::function<void()> poll);
    /// Stops and joins the thread; the caller must not hold the owner's lock.
    void stop();
    /// Records an exchange with the broker now; the caller holds the lock.
    void touch() { last_io_ = Clock::now(); }

    /// Records the time of the last exchange with the broker when it ends.
    struct TouchOnExit {
        Keepalive* k;
        ~TouchOnExit() { k->touch(); }
    };
    TouchOnExit touch_on_exit() { return TouchOnExit{this}; }

private:
    void run();

    std::mutex& mu_;
    const int heartbeat_s_;
    const std::chrono::milliseconds period_;
    std::function<void()> poll_;
    std::thread thread_;
    std::condition_variable cv_;
    bool stop_ = false;
    Clock::time_point last_io_ = Clock::now();
};

}  // namespace apcloud::detail::amqp
