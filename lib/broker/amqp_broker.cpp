// The AMQP 0-9-1 broker (RabbitMQ) over rabbitmq-c: publisher confirms, explicit acks, reconnects.
#include "broker/amqp_broker.hpp"

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "autopkgtest_cloud/error.hpp"

namespace apcloud {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Closed channels remembered (for their close reason) per connection.
constexpr std::size_t kClosedChannelsKept = 16;

// How often one operation may lose its connection and start again before
// giving up (each reconnect also has its own time budget, reconnect_wait).
constexpr int kMaxConnectionLosses = 5;

// The first and the longest pause between two connection attempts.
constexpr milliseconds kFirstBackoff{100};
constexpr milliseconds kMaxBackoff{5000};

// Headers of a dead-lettered message.
constexpr const char* kReasonHeader = "x-apcloud-reason";
constexpr const char* kQueueHeader = "x-apcloud-queue";
// The delivery attempt a message carries when we put it back (lease copies,
// requeues), so the count survives classic queues, which keep none.
constexpr const char* kAttemptHeader = "x-apcloud-attempt";

std::string to_string(amqp_bytes_t b) {
    return b.len ? std::string(static_cast<const char*>(b.bytes), b.len) : std::string();
}

amqp_bytes_t as_bytes(const std::string& s) {
    amqp_bytes_t b;
    b.len = s.size();
    b.bytes = const_cast<char*>(s.data());
    return b;
}

timeval to_timeval(milliseconds ms) {
    if (ms.count() < 0) ms = milliseconds(0);
    timeval tv;
    tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
    return tv;
}

milliseconds until(Clock::time_point deadline) {
    auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now());
    return left.count() > 0 ? left : milliseconds(0);
}

std::string seconds_text(milliseconds ms) {
    std::string s = std::to_string(ms.count() / 1000);
    if (ms.count() % 1000) s += "." + std::to_string(ms.count() % 1000 / 100);
    return s + " s";
}

std::string quoted(const std::string& name) {
    return quote_for_message(name);
}

// The connection is gone (socket error, heartbeat timeout, connection.close,
// no reply in time). Operations that are safe to repeat reconnect and retry.
class ConnectionLost : public BrokerError {
public:
    using BrokerError::BrokerError;
};

// Why the broker closed a channel (reply code and text, e.g. 404
// "NOT_FOUND - no queue 'x' in vhost '/'").
struct ChannelClose {
    std::uint16_t code = 0;
    std::string text;
};

[[noreturn]] void throw_channel_error(const std::string& what, const ChannelClose& c) {
    std::string msg = what + ": the broker closed the channel: " + std::to_string(c.code) + " " + c.text;
    if (c.code == AMQP_NOT_FOUND) throw NotFound(msg);
    throw BrokerError(msg);
}

// Unique across all connections of the process, so that a delivery tag
// remembered from a channel can never match a later incarnation of it.
std::atomic<std::uint64_t> g_channel_epoch{0};

// One AMQP connection: socket, login, channel bookkeeping, and the mapping of
// rabbitmq-c results to our exceptions. Not thread-safe (the owner locks).
class AmqpConnection {
public:
    explicit AmqpConnection(const AmqpParams& p);
    ~AmqpConnection();
    AmqpConnection(const AmqpConnection&) = delete;
    AmqpConnection& operator=(const AmqpConnection&) = delete;

    amqp_connection_state_t get() const { return conn_; }
    bool alive() const { return alive_; }
    // Forgets the connection without the closing handshake (it is broken).
    void kill() { alive_ = false; }

    bool channel_open(amqp_channel_t ch) const {
        auto it = channels_.find(ch);
        return it != channels_.end() && it->second.open;
    }
    // Identifies one incarnation of a channel, unique in the process.
    std::uint64_t epoch(amqp_channel_t ch) const {
        auto it = channels_.find(ch);
        return it != channels_.end() ? it->second.epoch : 0;
    }
    std::optional<ChannelClose> close_reason(amqp_channel_t ch) const {
        auto it = channels_.find(ch);
        return it != channels_.end() ? it->second.closed : std::nullopt;
    }
    // Opens a channel with a number not used lately and returns it. Numbers
    // are not reused at once because RabbitMQ may still send a closed
    // channel's close again (see on_channel_close).
    amqp_channel_t open_new_channel();

    // Checks the reply of a synchronous method sent on `ch` for `what`.
    void check(const amqp_rpc_reply_t& r, amqp_channel_t ch, const std::string& what);
    // Checks the status of an asynchronous send.
    void check_status(int status, const std::string& what);

    // Answers a channel.close from the broker and marks the channel closed.
    ChannelClose on_channel_close(amqp_channel_t ch, const amqp_method_t& m);
    // Answers a connection.close from the broker; always throws ConnectionLost.
    [[noreturn]] void on_connection_close(const amqp_method_t& m, const std::string& what);
    [[noreturn]] void lost(const std::string& what, const std::string& why);

    // Waits for the next frame until `deadline`; false on timeout. rabbitmq-c
    // sends and checks heartbeats while it waits.
    bool wait_frame(amqp_frame_t& frame, Clock::time_point deadline);

private:
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

bool is_fatal_login_code(std::uint16_t code) {
    // Wrong credentials, no such vhost, no permission on it: retrying cannot help.
    return code == AMQP_ACCESS_REFUSED || code == AMQP_NOT_ALLOWED || code == 402 /* INVALID_PATH */;
}

AmqpConnection::AmqpConnection(const AmqpParams& p) : redacted_(p.redacted) {
    conn_ = amqp_new_connection();
    if (!conn_) throw BrokerError("cannot create an AMQP connection to " + redacted_ + ": out of memory");
    auto fail = [&](auto&& error) {
        amqp_destroy_connection(conn_);
        conn_ = nullptr;
        throw error;
    };
    amqp_socket_t* socket = p.tls ? amqp_ssl_socket_new(conn_) : amqp_tcp_socket_new(conn_);
    if (!socket) fail(BrokerError("cannot create a socket for " + redacted_));
    if (p.tls) {
        amqp_ssl_socket_set_verify_peer(socket, p.verify ? 1 : 0);
        amqp_ssl_socket_set_verify_hostname(socket, p.verify ? 1 : 0);
        if (!p.cacert.empty() && amqp_ssl_socket_set_cacert(socket, p.cacert.c_str()) != AMQP_STATUS_OK)
            fail(ConfigError("cannot load the CA certificates " + quoted(p.cacert) + " for " + redacted_));
        if (!p.cert.empty() &&
            amqp_ssl_socket_set_key(socket, p.cert.c_str(), p.key.c_str()) != AMQP_STATUS_OK)
            fail(ConfigError("cannot load the client certificate " + quoted(p.cert) + " / key " +
                             quoted(p.key) + " for " + redacted_));
    }
    timeval tv = to_timeval(p.connect_timeout);
    int status = amqp_socket_open_noblock(socket, p.host.c_str(), p.port, &tv);
    if (status != AMQP_STATUS_OK) {
        std::string why = amqp_error_string2(status);
        if (status == AMQP_STATUS_SOCKET_ERROR && errno)
            why += " (" + std::string(std::strerror(errno)) + ")";
        std::string msg = "cannot connect to " + redacted_ + ": " + why;
        // A certificate that does not verify will not verify on a retry either.
        if (status == AMQP_STATUS_SSL_PEER_VERIFY_FAILED || status == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED)
            fail(BrokerError(msg));
        fail(ConnectionLost(msg));
    }
    amqp_set_handshake_timeout(conn_, &tv);
    timeval rpc_tv = to_timeval(p.confirm_timeout);
    amqp_set_rpc_timeout(conn_, &rpc_tv);

    // Capabilities: without consumer_cancel_notify RabbitMQ would silently drop
    // our consumer when its queue is deleted; authentication_failure_close turns
    // a refused login into a connection.close with a reason instead of a reset.
    const char* caps[] = {"publisher_confirms", "basic.nack", "consumer_cancel_notify",
                          "authentication_failure_close", "connection.blocked"};
    amqp_table_entry_t cap_entries[5];
    for (int i = 0; i < 5; ++i) {
        cap_entries[i].key = amqp_cstring_bytes(caps[i]);
        cap_entries[i].value.kind = AMQP_FIELD_KIND_BOOLEAN;
        cap_entries[i].value.value.boolean = 1;
    }
    std::string name =
        std::string("apcloud ") + program_invocation_short_name + "[" + std::to_string(getpid()) + "]";
    amqp_table_entry_t props[2];
    props[0].key = amqp_cstring_bytes("capabilities");
    props[0].value.kind = AMQP_FIELD_KIND_TABLE;
    props[0].value.value.table.num_entries = 5;
    props[0].value.value.table.entries = cap_entries;
    props[1].key = amqp_cstring_bytes("connection_name");
    props[1].value.kind = AMQP_FIELD_KIND_UTF8;
    props[1].value.value.bytes = as_bytes(name);
    amqp_table_t table;
    table.num_entries = 2;
    table.entries = props;

    amqp_rpc_reply_t r =
        amqp_login_with_properties(conn_, p.vhost.c_str(), 0, AMQP_DEFAULT_FRAME_SIZE, p.heartbeat_s, &table,
                                   AMQP_SASL_METHOD_PLAIN, p.user.c_str(), p.password.c_str());
    std::string login =
        "cannot log in to " + redacted_ + " (user " + quoted(p.user) + ", vhost " + quoted(p.vhost) + ")";
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        fail(ConnectionLost(login + ": " + amqp_error_string2(r.library_error)));
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) {
        std::uint16_t code = 0;
        std::string text = "unexpected reply";
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            auto* m = static_cast<amqp_connection_close_t*>(r.reply.decoded);
            code = m->reply_code;
            text = to_string(m->reply_text);
            amqp_connection_close_ok_t ok{};
            amqp_send_method(conn_, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        }
        std::string msg = login + ": " + std::to_string(code) + " " + text;
        if (is_fatal_login_code(code)) fail(BrokerError(msg));
        fail(ConnectionLost(msg));
    }
    if (r.reply_type != AMQP_RESPONSE_NORMAL) fail(ConnectionLost(login + ": no reply"));
    alive_ = true;
}

AmqpConnection::~AmqpConnection() {
    if (!conn_) return;
    if (alive_) {
        // A polite close (RabbitMQ logs a warning for a dropped socket); the
        // broker requeues whatever this connection still had unacknowledged.
        timeval tv = to_timeval(milliseconds(2000));
        amqp_set_rpc_timeout(conn_, &tv);
        amqp_connection_close(conn_, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(conn_);
}

amqp_channel_t AmqpConnection::open_new_channel() {
    int max = amqp_get_channel_max(conn_);
    if (max <= 0 || max > 65535) max = 65535;
    amqp_channel_t ch = last_channel_;
    for (int tries = 0;; ++tries) {
        if (tries > max) throw BrokerError("no free AMQP channel on " + redacted_);
        ch = static_cast<amqp_channel_t>(ch >= max ? 1 : ch + 1);
        if (!channel_open(ch)) break;
    }
    last_channel_ = ch;
    // Open from the moment we ask: a refusal comes as a channel.close, which
    // must then be answered.
    ChannelState& st = channels_[ch];
    st.open = true;
    st.closed.reset();
    st.epoch = ++g_channel_epoch;
    amqp_channel_open(conn_, ch);
    check(amqp_get_rpc_reply(conn_), ch, "opening channel " + std::to_string(ch) + " on " + redacted_);
    return ch;
}

void AmqpConnection::lost(const std::string& what, const std::string& why) {
    alive_ = false;
    throw ConnectionLost(what + ": connection to " + redacted_ + " lost: " + why);
}

void AmqpConnection::check(const amqp_rpc_reply_t& r, amqp_channel_t ch, const std::string& what) {
    switch (r.reply_type) {
        case AMQP_RESPONSE_NORMAL:
            return;
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            lost(what, amqp_error_string2(r.library_error));
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) on_connection_close(r.reply, what);
            if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD)
                throw_channel_error(what, on_channel_close(ch, r.reply));
            lost(what, "unexpected method " + std::to_string(r.reply.id));
        default:
            lost(what, "no reply");
    }
}

void AmqpConnection::check_status(int status, const std::string& what) {
    if (status != AMQP_STATUS_OK) lost(what, amqp_error_string2(status));
}

ChannelClose AmqpConnection::on_channel_close(amqp_channel_t ch, const amqp_method_t& m) {
    auto* close = static_cast<amqp_channel_close_t*>(m.decoded);
    ChannelClose c{close->reply_code, to_string(close->reply_text)};
    // Answer once: RabbitMQ 3.10 sends the same channel.close several times
    // when a consumer ack timeout fires, and a second close-ok, on a channel
    // that is closed by then, is a connection error (504 CHANNEL_ERROR).
    auto it = channels_.find(ch);
    if (it == channels_.end() || !it->second.open)
        return it != channels_.end() ? it->second.closed.value_or(c) : c;
    it->second.open = false;
    it->second.closed = c;
    closed_order_.push_back(ch);
    while (closed_order_.size() > kClosedChannelsKept) {
        auto old = channels_.find(closed_order_.front());
        if (old != channels_.end() && !old->second.open) channels_.erase(old);
        closed_order_.pop_front();
    }
    amqp_channel_close_ok_t ok{};
    check_status(amqp_send_method(conn_, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok),
                 "answering the close of channel " + std::to_string(ch));
    return c;
}

void AmqpConnection::on_connection_close(const amqp_method_t& m, const std::string& what) {
    auto* close = static_cast<amqp_connection_close_t*>(m.decoded);
    std::string why =
        "closed by the broker: " + std::to_string(close->reply_code) + " " + to_string(close->reply_text);
    amqp_connection_close_ok_t ok{};
    amqp_send_method(conn_, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    lost(what, why);
}

bool AmqpConnection::wait_frame(amqp_frame_t& frame, Clock::time_point deadline) {
    if (!alive_) lost("waiting for the broker", "connection already closed");
    timeval tv = to_timeval(until(deadline));
    int status = amqp_simple_wait_frame_noblock(conn_, &frame, &tv);
    if (status == AMQP_STATUS_TIMEOUT) return false;
    if (status != AMQP_STATUS_OK) lost("waiting for the broker", amqp_error_string2(status));
    return true;
}

// Connects, retrying with capped exponential backoff for p.reconnect_wait.
std::unique_ptr<AmqpConnection> connect_with_backoff(const AmqpParams& p) {
    auto start = Clock::now();
    milliseconds delay = kFirstBackoff;
    for (int attempt = 1;; ++attempt) {
        try {
            return std::make_unique<AmqpConnection>(p);
        } catch (const ConnectionLost& e) {
            auto spent = Clock::now() - start;
            if (spent + delay > p.reconnect_wait)
                throw BrokerError(std::string(e.what()) + " (gave up after " + std::to_string(attempt) +
                                  (attempt == 1 ? " attempt" : " attempts") + " in " +
                                  seconds_text(std::chrono::duration_cast<milliseconds>(spent)) + ")");
        }
        std::this_thread::sleep_for(delay);
        delay = std::min(delay * 2, kMaxBackoff);
    }
}

// Reads the header and body frames that follow a basic.deliver/basic.return.
struct Content {
    std::string body;
    std::optional<std::int64_t> delivery_count;  // x-delivery-count (quorum queues)
    std::string reason;                          // x-apcloud-reason (dead-lettered by us)
    std::optional<std::int64_t> attempt;         // x-apcloud-attempt (put back by us)
};

Content read_content(AmqpConnection& c, amqp_channel_t ch, const std::string& what) {
    amqp_message_t msg;
    std::memset(&msg, 0, sizeof msg);
    amqp_rpc_reply_t r = amqp_read_message(c.get(), ch, &msg, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        amqp_destroy_message(&msg);
        c.check(r, ch, what);
    }
    Content out;
    out.body = to_string(msg.body);
    if (msg.properties._flags & AMQP_BASIC_HEADERS_FLAG) {
        const amqp_table_t& h = msg.properties.headers;
        for (int i = 0; i < h.num_entries; ++i) {
            const std::string key = to_string(h.entries[i].key);
            const amqp_field_value_t& v = h.entries[i].value;
            if (key == kReasonHeader && (v.kind == AMQP_FIELD_KIND_UTF8 || v.kind == AMQP_FIELD_KIND_BYTES)) {
                out.reason = to_string(v.value.bytes);
                continue;
            }
            if (key != "x-delivery-count" && key != kAttemptHeader) continue;
            std::optional<std::int64_t>& slot = key == kAttemptHeader ? out.attempt : out.delivery_count;
            switch (v.kind) {
                case AMQP_FIELD_KIND_I8:
                    slot = v.value.i8;
                    break;
                case AMQP_FIELD_KIND_U8:
                    slot = v.value.u8;
                    break;
                case AMQP_FIELD_KIND_I16:
                    slot = v.value.i16;
                    break;
                case AMQP_FIELD_KIND_U16:
                    slot = v.value.u16;
                    break;
                case AMQP_FIELD_KIND_I32:
                    slot = v.value.i32;
                    break;
                case AMQP_FIELD_KIND_U32:
                    slot = v.value.u32;
                    break;
                case AMQP_FIELD_KIND_I64:
                    slot = v.value.i64;
                    break;
                case AMQP_FIELD_KIND_U64:
                    slot = static_cast<std::int64_t>(v.value.u64);
                    break;
                default:
                    break;
            }
        }
    }
    amqp_destroy_message(&msg);
    return out;
}

bool exchange_is_durable(const std::string& exchange) {
    // SPEC section 2: teststatus is transient (stale progress is worthless
    // after a restart), testcomplete and anything else durable.
    return exchange != teststatus_exchange;
}

void declare_fanout(AmqpConnection& c, amqp_channel_t ch, const std::string& exchange) {
    amqp_exchange_declare(c.get(), ch, as_bytes(exchange), amqp_cstring_bytes("fanout"), 0,
                          exchange_is_durable(exchange) ? 1 : 0, 0, 0, amqp_empty_table);
    c.check(amqp_get_rpc_reply(c.get()), ch,
            "declaring fanout exchange " + quoted(exchange) +
                (exchange_is_durable(exchange) ? " (durable)" : " (transient)"));
}

void check_name(const std::string& name, const char* kind) {
    // AMQP names are short strings; an empty queue name would make the broker
    // invent one, which is never what a caller of this interface means.
    if (name.empty()) throw BrokerError(std::string("empty ") + kind + " name");
    if (name.size() > 255)
        throw BrokerError(std::string(kind) + " name longer than 255 bytes: " + quoted(name));
}

// ---------------------------------------------------------------------------

// A subscription: an exclusive, auto-deleted, server-named queue bound to the
// fanout exchange, on its own connection so that it can be read from another
// thread than the broker's. After a lost connection it subscribes again;
// events published in between are lost (fanout semantics: they were for
// whoever listened at the time). Heartbeats are answered only inside next(),
// so a reader that pauses longer than twice the heartbeat interval loses its
// connection (and the events meanwhile) and resubscribes on the next call.
class AmqpSubscription final : public Subscription {
public:
    AmqpSubscription(const AmqpParams& p, std::string exchange) : p_(p), exchange_(std::move(exchange)) {
        check_name(exchange_, "exchange");
        setup();
    }

    std::optional<std::string> next(milliseconds timeout) override {
        auto deadline = Clock::now() + timeout;
        for (int losses = 0;;) {
            try {
                if (!conn_) setup();
                while (true) {
                    amqp_frame_t frame;
                    if (!conn_->wait_frame(frame, deadline)) return std::nullopt;
                    if (auto event = dispatch(frame)) return event;
                }
            } catch (const ConnectionLost& e) {
                conn_.reset();
                if (++losses > kMaxConnectionLosses)
                    throw BrokerError("subscription to " + quoted(exchange_) + ": " + e.what());
            }
        }
    }

private:
    void setup() {
        conn_.reset();
        auto c = connect_with_backoff(p_);
        std::string what = "subscribing to " + quoted(exchange_);
        const amqp_channel_t ch = c->open_new_channel();
        declare_fanout(*c, ch, exchange_);
        auto* q = amqp_queue_declare(c->get(), ch, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
        c->check(amqp_get_rpc_reply(c->get()), ch, what + ": declaring its queue");
        std::string queue = to_string(q->queue);
        amqp_queue_bind(c->get(), ch, as_bytes(queue), as_bytes(exchange_), amqp_empty_bytes,
                        amqp_empty_table);
        c->check(amqp_get_rpc_reply(c->get()), ch, what + ": binding " + quoted(queue));
        // no_ack: an event is worth nothing once it is late, and the queue is ours alone.
        amqp_basic_consume(c->get(), ch, as_bytes(queue), amqp_empty_bytes, 0, 1, 1, amqp_empty_table);
        c->check(amqp_get_rpc_reply(c->get()), ch, what + ": consuming " + quoted(queue));
        amqp_maybe_release_buffers(c->get());
        conn_ = std::move(c);
    }

    std::optional<std::string> dispatch(amqp_frame_t& frame) {
        std::optional<std::string> event;
        if (frame.frame_type == AMQP_FRAME_METHOD) {
            switch (frame.payload.method.id) {
                case AMQP_BASIC_DELIVER_METHOD:
                    event = read_content(*conn_, frame.channel, "reading an event from " + quoted(exchange_))
                                .body;
                    break;
                case AMQP_CHANNEL_CLOSE_METHOD: {
                    auto c = conn_->on_channel_close(frame.channel, frame.payload.method);
                    conn_->lost("subscription to " + quoted(exchange_),
                                "channel closed: " + std::to_string(c.code) + " " + c.text);
                }
                case AMQP_CONNECTION_CLOSE_METHOD:
                    conn_->on_connection_close(frame.payload.method, "subscription to " + quoted(exchange_));
                default:
                    break;
            }
        }
        amqp_maybe_release_buffers_on_channel(conn_->get(), frame.channel);
        return event;
    }

    AmqpParams p_;
    std::string exchange_;
    std::unique_ptr<AmqpConnection> conn_;
};

// ---------------------------------------------------------------------------

// Host, process and a random part: unique among the consumers of a broker.
std::string make_consumer_id() {
    char host[64] = {};
    ::gethostname(host, sizeof host - 1);
    std::string id;
    for (const char* c = host; *c; ++c)
        id += (std::isalnum(static_cast<unsigned char>(*c)) || *c == '-') ? *c : '_';
    unsigned char rnd[4] = {};
    if (FILE* f = std::fopen("/dev/urandom", "rb")) {
        if (std::fread(rnd, 1, sizeof rnd, f) != sizeof rnd) rnd[0] = 0;
        std::fclose(f);
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, ".%d.%02x%02x%02x%02x", static_cast<int>(::getpid()), rnd[0], rnd[1],
                  rnd[2], rnd[3]);
    return id + buf;
}

class AmqpBroker final : public Broker {
public:
    explicit AmqpBroker(AmqpParams p) : p_(std::move(p)) {
        conn_ = connect_with_backoff(p_);
        last_io_ = Clock::now();
        if (p_.heartbeat_s > 0) keepalive_ = std::thread([this] { keepalive_loop(); });
    }

    ~AmqpBroker() override {
        {
            std::lock_guard<std::mutex> lock(mu_);
            stop_ = true;
            // A leased delivery given up without a verdict goes back to its queue
            // now, as an unacked one would when its channel closes.
            for (auto& [tag, h] : held_) {
                if (h.lease_queue.empty() || !conn_ || !conn_->alive()) continue;
                try {
                    publish_with_attempt(h.queue, h, nullptr,
                                         "returning a leased message to " + quoted(h.queue));
                    end_lease(h);
                } catch (const std::exception&) {
                    // The lease expires and returns it anyway.
                }
            }
        }
        cv_.notify_all();
        if (keepalive_.joinable()) keepalive_.join();
    }

    void declare_queue(const std::string& queue) override {
        check_name(queue, "queue");
        std::lock_guard<std::mutex> lock(mu_);
        retrying("declaring queue " + quoted(queue), [&] { declare_queue_locked(queue); });
    }

    void publish(const std::string& queue, const std::string& body) override {
        check_name(queue, "queue");
        std::lock_guard<std::mutex> lock(mu_);
        // A publish whose confirm did not arrive before the connection was lost
        // is sent again on the new connection: the message may then be queued
        // twice, but it is never lost.
        retrying("publishing to queue " + quoted(queue), [&] {
            publish_locked("", queue, body, true, 2, nullptr, "publishing to queue " + quoted(queue));
        });
    }

    // A pull, as the interface means it: first basic.get on each queue (in
    // the caller's order, so earlier queues have priority when several hold
    // messages), and only when all are empty a consumer per queue
    // for the wait, cancelled as soon as a message arrives or the time is
    // up. A consumer kept between calls would have RabbitMQ push the next
    // message to this process the moment the previous one is acked, where it
    // sits unprocessed (hidden from queue_depth and from idle workers) until
    // the caller asks again.
    std::optional<Delivery> consume(const std::vector<std::string>& queues, milliseconds timeout) override {
        std::vector<std::string> wanted;
        for (const auto& q : queues) {
            check_name(q, "queue");
            if (std::find(wanted.begin(), wanted.end(), q) == wanted.end()) wanted.push_back(q);
        }
        std::lock_guard<std::mutex> lock(mu_);
        check_not_holding();
        auto deadline = Clock::now() + timeout;
        for (int losses = 0;;) {
            try {
                ensure_connected();
                auto touch = finally_touch();
                auto d = consume_locked(wanted, deadline);
                if (d && p_.lease.count() > 0) take_lease(*d);
                return d;
            } catch (const ConnectionLost& e) {
                drop(e.what());
                if (++losses > kMaxConnectionLosses) throw BrokerError(e.what());
            }
        }
    }

    void ack(const Delivery& delivery) override {
        std::lock_guard<std::mutex> lock(mu_);
        if (leased(delivery)) {
            Held h = held_.at(delivery.tag);
            retrying("acking delivery " + std::to_string(delivery.tag) + " of queue " + quoted(h.queue),
                     [&] { end_lease(h); });
            held_.erase(delivery.tag);
            return;
        }
        Held h = take_held(delivery, "ack");
        settle(h, delivery, "acking", [&] { return amqp_basic_ack(conn_->get(), con_ch_, h.amqp_tag, 0); });
    }

    void requeue(const Delivery& delivery) override {
        std::lock_guard<std::mutex> lock(mu_);
        if (leased(delivery)) {
            Held h = held_.at(delivery.tag);
            const std::string what =
                "requeueing delivery " + std::to_string(delivery.tag) + " of queue " + quoted(h.queue);
            // Back on its queue first (confirmed), then the lease ends: a crash
            // in between can only duplicate the request, never lose it.
            retrying(what, [&] { publish_with_attempt(h.queue, h, nullptr, what); });
            retrying(what, [&] { end_lease(h); });
            held_.erase(delivery.tag);
            return;
        }
        Held h = take_held(delivery, "requeue");
        settle(h, delivery, "requeueing",
               [&] { return amqp_basic_reject(conn_->get(), con_ch_, h.amqp_tag, 1); });
    }

    // RabbitMQ's own dead-lettering needs x-dead-letter-exchange among the
    // queue's arguments, fixed when the queue is declared and not changeable
    // on an existing durable queue; the debci-* queues are declared by others
    // (britney, the web) as plain durable queues. So we copy the message to
    // `<queue>.dead` ourselves, with a publisher confirm, and only THEN ack
    // the original: a crash in between leaves the original unacked, so it is
    // delivered again (at worst a second copy lands in the dead queue), and
    // nothing is ever lost.
    void dead_letter(const Delivery& delivery, const std::string& reason) override {
        std::lock_guard<std::mutex> lock(mu_);
        if (leased(delivery)) {
            Held h = held_.at(delivery.tag);
            const std::string dead = h.queue + ".dead";
            const std::string what =
                "dead-lettering a message of queue " + quoted(h.queue) + " to " + quoted(dead);
            retrying(what, [&] { copy_to_dead(h.queue, h.body, reason, what); });
            retrying(what, [&] { end_lease(h); });
            held_.erase(delivery.tag);
            return;
        }
        Held h = peek_held(delivery, "dead-letter");
        std::string dead = h.queue + ".dead";
        check_name(dead, "dead-letter queue");
        std::string what = "dead-lettering a message of queue " + quoted(h.queue) + " to " + quoted(dead);
        try {
            copy_to_dead(h.queue, delivery.body, reason, what);
        } catch (const ConnectionLost& e) {
            // Not retried: the original became unackable with the connection.
            drop(e.what());
            throw BrokerError(std::string(e.what()) +
                              "; the original message stays on its queue and will be delivered again");
        }
        held_.erase(delivery.tag);
        settle(h, delivery, "acking (after copying it to " + quoted(dead) + ")",
               [&] { return amqp_basic_ack(conn_->get(), con_ch_, h.amqp_tag, 0); });
    }

    void renew(const Delivery& delivery) override {
        std::lock_guard<std::mutex> lock(mu_);
        if (!leased(delivery)) return;  // without leases RabbitMQ holds it (heartbeats keep the connection)
        Held h = held_.at(delivery.tag);
        const std::string what =
            "renewing the lease of delivery " + std::to_string(delivery.tag) + " of queue " + quoted(h.queue);
        // A fresh copy first (confirmed), then the older ones go: at every
        // moment at least one unexpired copy exists.
        retrying(what, [&] { publish_lease_copy(h, what); });
        retrying(what, [&] { trim_lease(h, 1, what); });
    }

    std::uint64_t queue_depth(const std::string& queue) override {
        check_name(queue, "queue");
        std::lock_guard<std::mutex> lock(mu_);
        return retrying("reading the depth of queue " + quoted(queue),
                        [&] { return queue_depth_locked(queue); });
    }

    void publish_event(const std::string& exchange, const std::string& body) override {
        check_name(exchange, "exchange");
        std::lock_guard<std::mutex> lock(mu_);
        std::string what = "publishing to exchange " + quoted(exchange);
        retrying(what, [&] {
            if (!declared_.count(exchange)) {
                declare_fanout(*conn_, ensure_channel(Role::admin), exchange);
                declared_.insert(exchange);
            }
            // Not mandatory: a fanout event nobody listens to is dropped by design.
            publish_locked(exchange, "", body, false, exchange_is_durable(exchange) ? 2 : 1, nullptr, what);
        });
    }

    std::unique_ptr<Subscription> subscribe(const std::string& exchange) override {
        return std::make_unique<AmqpSubscription>(p_, exchange);
    }

private:
    // A delivery handed to the caller and not yet settled.
    struct Held {
        std::uint64_t epoch = 0;  // of the consume channel it arrived on
        std::uint64_t amqp_tag = 0;
        std::string queue;
        std::string lease_queue;  // non-empty once the delivery lives in a lease
        std::uint32_t attempt = 1;
        std::string body;  // kept for lease copies and requeues
    };
    // A delivery read from the socket and not yet handed out.
    struct Buffered {
        std::uint64_t epoch = 0;
        std::uint64_t amqp_tag = 0;
        Delivery delivery;
    };

    // Copies a message to `<queue>.dead` (persistent, confirmed) with the
    // reason and its queue in headers.
    void copy_to_dead(const std::string& queue, const std::string& body, const std::string& reason,
                      const std::string& what) {
        const std::string dead = queue + ".dead";
        if (!declared_.count(dead)) {
            declare_queue_locked(dead);
            declared_.insert(dead);
        }
        amqp_table_entry_t entries[2];
        entries[0].key = amqp_cstring_bytes(kReasonHeader);
        entries[0].value.kind = AMQP_FIELD_KIND_UTF8;
        entries[0].value.value.bytes = as_bytes(reason);
        entries[1].key = amqp_cstring_bytes(kQueueHeader);
        entries[1].value.kind = AMQP_FIELD_KIND_UTF8;
        entries[1].value.value.bytes = as_bytes(queue);
        amqp_table_t headers{2, entries};
        publish_locked("", dead, body, true, 2, &headers, what);
    }

    bool leased(const Delivery& d) const {
        auto it = held_.find(d.tag);
        return it != held_.end() && !it->second.lease_queue.empty();
    }

    // This consumer's lease queue for `queue`: durable, its messages go back
    // to `queue` when they expire, and it disappears a day after last use.
    std::string lease_queue_for(const std::string& queue) {
        std::string name = "apcloud.lease." + queue + "." + consumer_id_;
        if (!declared_.count(name)) {
            const amqp_channel_t ch = ensure_channel(Role::admin);
            amqp_table_entry_t entries[3];
            entries[0].key = amqp_cstring_bytes("x-dead-letter-exchange");
            entries[0].value.kind = AMQP_FIELD_KIND_UTF8;
            entries[0].value.value.bytes = amqp_cstring_bytes("");
            entries[1].key = amqp_cstring_bytes("x-dead-letter-routing-key");
            entries[1].value.kind = AMQP_FIELD_KIND_UTF8;
            entries[1].value.value.bytes = as_bytes(queue);
            entries[2].key = amqp_cstring_bytes("x-expires");
            entries[2].value.kind = AMQP_FIELD_KIND_I32;
            entries[2].value.value.i32 = static_cast<std::int32_t>(
                std::min<std::int64_t>(std::max<std::int64_t>(p_.lease.count() * 10, 86400000), 2000000000));
            amqp_table_t args{3, entries};
            amqp_queue_declare(conn_->get(), ch, as_bytes(name), 0, 1, 0, 0, args);
            conn_->check(amqp_get_rpc_reply(conn_->get()), ch, "declaring lease queue " + quoted(name));
            amqp_maybe_release_buffers_on_channel(conn_->get(), ch);
            declared_.insert(name);
        }
        return name;
    }

    // Publishes the held body to `queue` (persistent, confirmed) carrying its
    // attempt count; `expiration` makes it a lease copy.
    void publish_with_attempt(const std::string& queue, const Held& h, const std::string* expiration,
                              const std::string& what) {
        amqp_table_entry_t entry;
        entry.key = amqp_cstring_bytes(kAttemptHeader);
        entry.value.kind = AMQP_FIELD_KIND_I64;
        entry.value.value.i64 = h.attempt;
        amqp_table_t headers{1, &entry};
        publish_locked("", queue, h.body, true, 2, &headers, what, expiration);
    }

    void publish_lease_copy(const Held& h, const std::string& what) {
        const std::string ttl = std::to_string(p_.lease.count());
        publish_with_attempt(h.lease_queue, h, &ttl, what);
    }

    // Removes the oldest copies of a lease until `keep` remain. Throws when
    // none was left: the lease expired and the request went back to its queue.
    void trim_lease(const Held& h, std::uint64_t keep, const std::string& what) {
        for (;;) {
            std::uint64_t n = queue_depth_locked(h.lease_queue);
            if (n == 0 && keep > 0)
                throw BrokerError(what + ": the lease expired (no renewal within " + seconds_text(p_.lease) +
                                  "); the request went back to " + quoted(h.queue) + " and may run again");
            if (n <= keep) return;
            const amqp_channel_t ch = ensure_channel(Role::admin);
            amqp_rpc_reply_t r = amqp_basic_get(conn_->get(), ch, as_bytes(h.lease_queue), 0);
            conn_->check(r, ch, what);
            if (r.reply.id != AMQP_BASIC_GET_OK_METHOD) {
                amqp_maybe_release_buffers_on_channel(conn_->get(), ch);
                continue;
            }
            std::uint64_t tag = static_cast<amqp_basic_get_ok_t*>(r.reply.decoded)->delivery_tag;
            read_content(*conn_, ch, what);
            conn_->check_status(amqp_basic_ack(conn_->get(), ch, tag, 0), what);
            amqp_maybe_release_buffers_on_channel(conn_->get(), ch);
        }
    }

    // Ends a lease: every copy goes (the next depth query makes the acks
    // round-trip), then the empty lease queue.
    void end_lease(const Held& h) {
        const std::string what = "ending the lease of a message of queue " + quoted(h.queue);
        trim_lease(h, 0, what);
        queue_depth_locked(h.lease_queue);
    }

    // Moves a fresh delivery into a lease: copy confirmed, then the original
    // acked (see AmqpParams::lease).
    void take_lease(Delivery& d) {
        Held& h = held_.at(d.tag);
        const std::string what = "taking a lease on a message of queue " + quoted(h.queue);
        h.lease_queue = lease_queue_for(h.queue);
        try {
            publish_lease_copy(h, what);
        } catch (...) {
            h.lease_queue.clear();
            throw;
        }
        Held original = h;
        settle(original, d, "acking (now leased)",
               [&] { return amqp_basic_ack(conn_->get(), con_ch_, original.amqp_tag, 0); });
    }

    template <class F>
    auto retrying(const std::string& what, F&& f) -> decltype(f()) {
        for (int losses = 0;;) {
            ensure_connected();
            try {
                auto guard = finally_touch();
                return f();
            } catch (const ConnectionLost& e) {
                drop(e.what());
                if (++losses > kMaxConnectionLosses)
                    throw BrokerError(what + ": gave up after losing the connection " +
                                      std::to_string(losses) + " times: " + e.what());
            }
        }
    }

    // Records the time of the last exchange with the broker (for the keepalive).
    struct Touch {
        Clock::time_point* t;
        ~Touch() { *t = Clock::now(); }
    };
    Touch finally_touch() { return Touch{&last_io_}; }

    void ensure_connected() {
        if (conn_ && conn_->alive()) return;
        conn_.reset();
        conn_ = connect_with_backoff(p_);
        last_io_ = Clock::now();
    }

    // Forgets a broken connection and everything tied to it. Deliveries held
    // by the caller become unackable; RabbitMQ requeues them.
    void drop(const std::string& why) {
        if (conn_) conn_->kill();
        conn_.reset();
        last_loss_ = why;
        // Leased deliveries live in their lease queue, not on this connection.
        for (auto it = held_.begin(); it != held_.end();)
            it = it->second.lease_queue.empty() ? held_.erase(it) : std::next(it);
        buffered_.clear();
        consumer_tags_.clear();
        consumer_epoch_ = 0;
        declared_.clear();
        pub_ch_ = con_ch_ = adm_ch_ = 0;
        consume_close_.clear();
    }

    // Handles the frames rabbitmq-c queued while it waited for the reply to
    // an RPC on another channel. A channel.close among them must be seen
    // before anything more is sent on that channel: the broker ignores every
    // method on a closing channel, so an RPC there would wait for nothing.
    void drain_queued() {
        amqp_frame_t frame;
        while (conn_ && conn_->alive() && amqp_frames_enqueued(conn_->get()) &&
               conn_->wait_frame(frame, Clock::now()))
            dispatch(frame);
    }

    // The channel of a role, opened (again) when needed. One channel per
    // role, so that a channel-level error in one role cannot tear down
    // another: a passive declare of a missing queue closes its channel, and
    // closing the consumer's channel would requeue the delivery a worker runs.
    enum class Role { publish, consume, admin };

    amqp_channel_t ensure_channel(Role role) {
        drain_queued();
        amqp_channel_t& ch = role == Role::publish ? pub_ch_ : role == Role::consume ? con_ch_ : adm_ch_;
        if (ch && conn_->channel_open(ch)) return ch;
        if (ch && role == Role::consume) {
            if (auto why = conn_->close_reason(ch))
                consume_close_ = "the broker closed the consumer's channel (" + std::to_string(why->code) +
                                 " " + why->text + ")";
        }
        ch = 0;
        amqp_channel_t fresh = conn_->open_new_channel();
        if (role == Role::publish) {
            amqp_confirm_select(conn_->get(), fresh);
            conn_->check(amqp_get_rpc_reply(conn_->get()), fresh, "enabling publisher confirms");
            pub_seq_ = pub_acked_ = pub_nacked_ = 0;
        } else if (role == Role::consume) {
            // global=1: RabbitMQ applies the limit to the whole channel, so a
            // consumer of several queues holds at most one message in total.
            amqp_basic_qos(conn_->get(), fresh, 0, 1, 1);
            conn_->check(amqp_get_rpc_reply(conn_->get()), fresh, "setting prefetch 1");
            consumer_tags_.clear();
        }
        ch = fresh;
        return ch;
    }

    void declare_queue_locked(const std::string& queue) {
        const amqp_channel_t ch = ensure_channel(Role::admin);
        amqp_queue_declare(conn_->get(), ch, as_bytes(queue), 0, 1, 0, 0, amqp_empty_table);
        conn_->check(amqp_get_rpc_reply(conn_->get()), ch, "declaring queue " + quoted(queue));
        amqp_maybe_release_buffers_on_channel(conn_->get(), ch);
    }

    std::uint64_t queue_depth_locked(const std::string& queue) {
        const amqp_channel_t ch = ensure_channel(Role::admin);
        auto* ok = amqp_queue_declare(conn_->get(), ch, as_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
        conn_->check(amqp_get_rpc_reply(conn_->get()), ch, "looking up queue " + quoted(queue));
        std::uint64_t n = ok->message_count;
        amqp_maybe_release_buffers_on_channel(conn_->get(), ch);
        return n;
    }

    // Publishes one message and waits for its confirm (one in flight, as on
    // the worker path: the caller learns the fate of each message).
    void publish_locked(const std::string& exchange, const std::string& routing_key, const std::string& body,
                        bool mandatory, std::uint8_t delivery_mode, const amqp_table_t* headers,
                        const std::string& what, const std::string* expiration = nullptr) {
        const amqp_channel_t ch = ensure_channel(Role::publish);
        amqp_basic_properties_t props;
        std::memset(&props, 0, sizeof props);
        props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
        props.delivery_mode = delivery_mode;
        if (headers) {
            props._flags |= AMQP_BASIC_HEADERS_FLAG;
            props.headers = *headers;
        }
        if (expiration) {
            props._flags |= AMQP_BASIC_EXPIRATION_FLAG;
            props.expiration = as_bytes(*expiration);
        }
        returned_.reset();
        conn_->check_status(amqp_basic_publish(conn_->get(), ch, as_bytes(exchange), as_bytes(routing_key),
                                               mandatory ? 1 : 0, 0, &props, as_bytes(body)),
                            what);
        std::uint64_t seq = ++pub_seq_;
        std::uint64_t epoch = conn_->epoch(ch);
        auto deadline = Clock::now() + p_.confirm_timeout;
        while (pub_acked_ < seq && pub_nacked_ < seq) {
            if (!conn_->channel_open(ch) || conn_->epoch(ch) != epoch) {
                auto why = conn_->close_reason(ch);
                throw_channel_error(what, why ? *why : ChannelClose{0, "closed"});
            }
            if (!pump(deadline))
                conn_->lost(
                    what,
                    "no publisher confirm within " + seconds_text(p_.confirm_timeout) +
                        (blocked_ ? " (the broker blocks publishers: it is low on memory or disk)" : ""));
        }
        if (pub_acked_ < seq)
            throw BrokerError(what + ": the broker refused the message (basic.nack): it is not queued");
        if (returned_) {
            // RabbitMQ sends basic.return before the confirm of an unroutable
            // mandatory message: without mandatory it would be dropped silently.
            std::string msg =
                what + ": returned by the broker: " + std::to_string(returned_->code) + " " + returned_->text;
            if (returned_->code == AMQP_NO_ROUTE) throw NotFound(msg + " (no such queue)");
            throw BrokerError(msg);
        }
    }

    std::optional<Delivery> consume_locked(const std::vector<std::string>& wanted,
                                           Clock::time_point deadline) {
        ensure_channel(Role::consume);
        for (const auto& q : wanted)
            if (auto d = get_one(q)) return d;
        if (wanted.empty()) {
            // Nothing to wait for, but the caller asked to wait (and may loop).
            while (pump(deadline)) {
            }
            return std::nullopt;
        }
        if (Clock::now() >= deadline) return std::nullopt;
        std::optional<Delivery> got;
        try {
            start_consumers(wanted);
            while (!(got = pop_buffered(wanted))) {
                if (!pump(deadline)) break;
                // The broker closed the channel (it should not) or cancelled
                // a consumer (its queue was deleted): set them up again.
                if (!conn_->channel_open(con_ch_) || conn_->epoch(con_ch_) != consumer_epoch_ ||
                    consumer_tags_.size() != wanted.size()) {
                    ensure_channel(Role::consume);
                    start_consumers(wanted);
                }
            }
            stop_consumers();
            drain_queued();  // a delivery that raced with the cancel
        } catch (const ConnectionLost&) {
            throw;
        } catch (...) {
            // Leave no consumer behind: it would take messages nobody asked for.
            try {
                stop_consumers();
            } catch (const ConnectionLost& e) {
                drop(e.what());
            } catch (const Error&) {
            }
            throw;
        }
        // A delivery that raced with the cancel is as good as one before it.
        if (!got) got = pop_buffered(wanted);
        // With classic queues the channel-wide prefetch 1 allows no second
        // one; quorum queues ignore it: give any extra back.
        return_buffered();
        return got;
    }

    // basic.get: one message from `queue` if it has one ready.
    std::optional<Delivery> get_one(const std::string& queue) {
        amqp_rpc_reply_t r = amqp_basic_get(conn_->get(), con_ch_, as_bytes(queue), 0);
        conn_->check(r, con_ch_, "getting a message from queue " + quoted(queue));
        if (r.reply.id != AMQP_BASIC_GET_OK_METHOD) {
            amqp_maybe_release_buffers_on_channel(conn_->get(), con_ch_);
            return std::nullopt;
        }
        auto* ok = static_cast<amqp_basic_get_ok_t*>(r.reply.decoded);
        std::uint64_t amqp_tag = ok->delivery_tag;
        bool redelivered = ok->redelivered != 0;
        Content c = read_content(*conn_, con_ch_, "reading a message from queue " + quoted(queue));
        amqp_maybe_release_buffers_on_channel(conn_->get(), con_ch_);
        return hold(conn_->epoch(con_ch_), amqp_tag, make_delivery(queue, redelivered, std::move(c)));
    }

    static Delivery make_delivery(const std::string& queue, bool redelivered, Content c) {
        Delivery d;
        d.queue = queue;
        d.redelivered = redelivered;
        d.body = std::move(c.body);
        d.reason = std::move(c.reason);
        // Classic queues do not count deliveries; quorum queues do.
        d.attempt =
            c.delivery_count ? static_cast<std::uint32_t>(*c.delivery_count + 1) : (redelivered ? 2 : 1);
        if (c.attempt) {
            d.attempt = static_cast<std::uint32_t>(std::max<std::int64_t>(*c.attempt, 0) + 1);
            d.redelivered = true;
        }
        return d;
    }

    Delivery hold(std::uint64_t epoch, std::uint64_t amqp_tag, Delivery d) {
        d.tag = next_tag_++;
        held_[d.tag] = Held{epoch, amqp_tag, d.queue, "", d.attempt, d.body};
        return d;
    }

    void start_consumers(const std::vector<std::string>& wanted) {
        consumer_tags_.clear();
        for (const auto& q : wanted) {
            auto* ok = amqp_basic_consume(conn_->get(), con_ch_, as_bytes(q), amqp_empty_bytes, 0, 0, 0,
                                          amqp_empty_table);
            conn_->check(amqp_get_rpc_reply(conn_->get()), con_ch_, "consuming from queue " + quoted(q));
            consumer_tags_[to_string(ok->consumer_tag)] = q;
        }
        amqp_maybe_release_buffers_on_channel(conn_->get(), con_ch_);
        consumer_epoch_ = conn_->epoch(con_ch_);
    }

    void stop_consumers() {
        if (!conn_ || !conn_->alive() || !conn_->channel_open(con_ch_) ||
            conn_->epoch(con_ch_) != consumer_epoch_) {
            consumer_tags_.clear();
            return;
        }
        while (!consumer_tags_.empty()) {
            auto it = consumer_tags_.begin();
            std::string tag = it->first, queue = it->second;
            amqp_basic_cancel(conn_->get(), con_ch_, as_bytes(tag));
            // Erased only now: a delivery racing with the cancel still maps to its queue.
            conn_->check(amqp_get_rpc_reply(conn_->get()), con_ch_,
                         "cancelling the consumer of queue " + quoted(queue));
            consumer_tags_.erase(tag);
        }
        amqp_maybe_release_buffers_on_channel(conn_->get(), con_ch_);
    }

    bool held_valid(std::uint64_t epoch) const {
        return conn_ && conn_->alive() && con_ch_ && conn_->channel_open(con_ch_) &&
               conn_->epoch(con_ch_) == epoch;
    }

    // The next buffered delivery from one of `wanted`; deliveries of an old
    // channel are dropped (the broker requeued them), those of queues no
    // longer wanted go back to their queue.
    std::optional<Delivery> pop_buffered(const std::vector<std::string>& wanted) {
        while (!buffered_.empty()) {
            Buffered b = std::move(buffered_.front());
            buffered_.pop_front();
            if (!held_valid(b.epoch)) continue;
            if (std::find(wanted.begin(), wanted.end(), b.delivery.queue) == wanted.end()) {
                give_back(b);
                continue;
            }
            return hold(b.epoch, b.amqp_tag, std::move(b.delivery));
        }
        return std::nullopt;
    }

    void give_back(const Buffered& b) {
        conn_->check_status(amqp_basic_reject(conn_->get(), con_ch_, b.amqp_tag, 1),
                            "returning a message to queue " + quoted(b.delivery.queue));
    }

    // Returns every buffered delivery to its queue.
    void return_buffered() {
        while (!buffered_.empty()) {
            Buffered b = std::move(buffered_.front());
            buffered_.pop_front();
            if (held_valid(b.epoch)) give_back(b);
        }
    }

    // Prefetch 1 is part of the contract: a second consume while a delivery
    // is held would only wait for nothing (RabbitMQ sends no more), so it is
    // a caller error. Deliveries of a closed channel are no longer held.
    void check_not_holding() {
        refresh();
        for (auto it = held_.begin(); it != held_.end();) {
            if (it->second.lease_queue.empty() && !held_valid(it->second.epoch)) {
                it = held_.erase(it);
                continue;
            }
            throw BrokerError("cannot consume while holding delivery " + std::to_string(it->first) +
                              " of queue " + quoted(it->second.queue) +
                              " (prefetch 1): ack, requeue or dead_letter it first");
        }
    }

    [[noreturn]] void throw_not_held(const Delivery& d, const char* action, const std::string& why) {
        throw BrokerError(
            "cannot " + std::string(action) + " delivery " + std::to_string(d.tag) + " of queue " +
            quoted(d.queue) + ": " + why +
            "; RabbitMQ requeues an unacknowledged message when its channel closes, so it will be "
            "delivered again");
    }

    std::string stale_reason() const {
        if (conn_ && conn_->alive()) {
            if (auto c = conn_->close_reason(con_ch_))
                return "the broker closed the consumer's channel (" + std::to_string(c->code) + " " +
                       c->text + ")";
            if (!consume_close_.empty()) return consume_close_;
        }
        if (!last_loss_.empty()) return "the connection was lost (" + last_loss_ + ")";
        return "the channel it arrived on has closed";
    }

    // Takes note of what the broker said meanwhile (it may have closed the
    // consumer's channel, or the connection) before judging a held delivery.
    void refresh() {
        try {
            drain_queued();
        } catch (const ConnectionLost& e) {
            drop(e.what());
        }
    }

    Held peek_held(const Delivery& d, const char* action) {
        refresh();
        auto it = held_.find(d.tag);
        if (it == held_.end())
            throw_not_held(
                d, action,
                "it is not held by this consumer (already settled, or received before the connection "
                "or channel was lost" +
                    (last_loss_.empty() ? std::string() : ": " + last_loss_) + ")");
        if (!held_valid(it->second.epoch)) {
            held_.erase(it);
            throw_not_held(d, action, "it is stale: " + stale_reason());
        }
        return it->second;
    }

    Held take_held(const Delivery& d, const char* action) {
        Held h = peek_held(d, action);
        held_.erase(d.tag);
        return h;
    }

    // Sends an ack or reject, then makes one round trip on the same channel:
    // basic.ack has no reply, and the broker handles a channel's methods in
    // order, so the qos-ok proves the settlement was processed before we
    // return (a connection lost right after cannot resurrect an acked message).
    template <class Send>
    void settle(const Held& h, const Delivery& d, const std::string& action, Send&& send) {
        std::string what = action + " delivery " + std::to_string(d.tag) + " of queue " + quoted(h.queue);
        try {
            auto touch = finally_touch();
            conn_->check_status(send(), what);
            amqp_basic_qos(conn_->get(), con_ch_, 0, 1, 1);
            conn_->check(amqp_get_rpc_reply(conn_->get()), con_ch_, what);
        } catch (const ConnectionLost& e) {
            drop(e.what());
            throw BrokerError(
                std::string(e.what()) +
                "; it is unknown whether the broker got it: an unsettled message is delivered again");
        }
    }

    // Reads one frame (waiting until `deadline`) and handles it.
    bool pump(Clock::time_point deadline) {
        amqp_frame_t frame;
        bool got = conn_->wait_frame(frame, deadline);
        last_io_ = Clock::now();
        if (got) dispatch(frame);
        return got;
    }

    void dispatch(amqp_frame_t& frame) {
        amqp_channel_t ch = frame.channel;
        if (frame.frame_type == AMQP_FRAME_METHOD) {
            void* decoded = frame.payload.method.decoded;
            switch (frame.payload.method.id) {
                case AMQP_BASIC_DELIVER_METHOD: {
                    auto* m = static_cast<amqp_basic_deliver_t*>(decoded);
                    Buffered b;
                    b.amqp_tag = m->delivery_tag;
                    b.epoch = conn_->epoch(ch);
                    bool redelivered = m->redelivered != 0;
                    auto it = consumer_tags_.find(to_string(m->consumer_tag));
                    std::string queue = it != consumer_tags_.end() ? it->second : to_string(m->routing_key);
                    Content c = read_content(*conn_, ch, "reading a delivery from queue " + quoted(queue));
                    b.delivery = make_delivery(queue, redelivered, std::move(c));
                    if (ch == con_ch_) buffered_.push_back(std::move(b));  // else: of a closed channel
                    break;
                }
                case AMQP_BASIC_RETURN_METHOD: {
                    auto* m = static_cast<amqp_basic_return_t*>(decoded);
                    ChannelClose r{m->reply_code, to_string(m->reply_text)};
                    read_content(*conn_, ch, "reading a returned message");
                    if (ch == pub_ch_) returned_ = r;
                    break;
                }
                case AMQP_BASIC_ACK_METHOD:
                    if (ch == pub_ch_)
                        pub_acked_ =
                            std::max(pub_acked_, static_cast<amqp_basic_ack_t*>(decoded)->delivery_tag);
                    break;
                case AMQP_BASIC_NACK_METHOD:
                    if (ch == pub_ch_)
                        pub_nacked_ =
                            std::max(pub_nacked_, static_cast<amqp_basic_nack_t*>(decoded)->delivery_tag);
                    break;
                case AMQP_BASIC_CANCEL_METHOD: {
                    // The broker cancelled a consumer (its queue was deleted):
                    // the waiting consume sets them up again, which then
                    // reports the missing queue.
                    consumer_tags_.erase(to_string(static_cast<amqp_basic_cancel_t*>(decoded)->consumer_tag));
                    break;
                }
                case AMQP_CHANNEL_CLOSE_METHOD:
                    conn_->on_channel_close(ch, frame.payload.method);
                    break;
                case AMQP_CONNECTION_CLOSE_METHOD:
                    conn_->on_connection_close(frame.payload.method, "waiting for the broker");
                case AMQP_CONNECTION_BLOCKED_METHOD:
                    blocked_ = true;
                    break;
                case AMQP_CONNECTION_UNBLOCKED_METHOD:
                    blocked_ = false;
                    break;
                default:
                    break;
            }
        }
        amqp_maybe_release_buffers_on_channel(conn_->get(), ch);
    }

    // Keeps the connection alive while the caller does something else for a
    // long time (a worker runs a test for hours holding its delivery): without
    // heartbeats RabbitMQ would close the connection and requeue the message.
    // rabbitmq-c only sends heartbeats from inside its calls, hence a thread
    // that makes such a call (under the same lock) when the caller has not.
    void keepalive_loop() {
        const auto period = std::chrono::milliseconds(std::max(1000, p_.heartbeat_s * 1000 / 3));
        std::unique_lock<std::mutex> lock(mu_);
        while (!stop_) {
            cv_.wait_for(lock, period, [this] { return stop_; });
            if (stop_ || !conn_ || !conn_->alive() || Clock::now() - last_io_ < period) continue;
            try {
                while (pump(Clock::now())) {
                }
            } catch (const ConnectionLost& e) {
                drop(e.what());
            } catch (const Error&) {
                // A channel error: seen again by the next operation on it.
            }
        }
    }

    const AmqpParams p_;
    std::mutex mu_;
    std::unique_ptr<AmqpConnection> conn_;
    std::string last_loss_;

    // publish channel (confirm mode): sequence numbers of this channel incarnation
    std::uint64_t pub_seq_ = 0;
    std::uint64_t pub_acked_ = 0;
    std::uint64_t pub_nacked_ = 0;
    std::optional<ChannelClose> returned_;
    bool blocked_ = false;

    // consume channel
    std::map<std::string, std::string> consumer_tags_;  // consumer tag -> queue, only inside consume()
    amqp_channel_t pub_ch_ = 0;                         // the channel of each role on conn_ (0: none yet)
    amqp_channel_t con_ch_ = 0;
    amqp_channel_t adm_ch_ = 0;
    std::string consume_close_;  // why the previous consumer channel closed
    std::uint64_t consumer_epoch_ = 0;
    std::deque<Buffered> buffered_;
    std::map<std::uint64_t, Held> held_;  // our tag -> delivery
    std::uint64_t next_tag_ = 1;

    std::set<std::string> declared_;  // exchanges and dead-letter queues declared on this connection
    const std::string consumer_id_ = make_consumer_id();  // names this consumer's lease queues

    std::thread keepalive_;
    std::condition_variable cv_;
    bool stop_ = false;
    Clock::time_point last_io_;
};

// Seconds in a query parameter (decimals allowed), checked against a range.
milliseconds parse_seconds(const Url& url, const std::string& key, const std::string& value, double min,
                           double max) {
    char* end = nullptr;
    errno = 0;
    double v = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || errno != 0 || !(v >= min && v <= max))
        throw ConfigError("invalid " + key + "=" + quote_for_message(value) + " in " + url.redacted() +
                          ": expected seconds between " + std::to_string(static_cast<long>(min)) + " and " +
                          std::to_string(static_cast<long>(max)));
    return milliseconds(static_cast<long long>(v * 1000));
}

}  // namespace

AmqpParams amqp_params(const Url& url, const BrokerCredentials& credentials) {
    AmqpParams p;
    if (url.scheme != "amqp" && url.scheme != "amqps")
        throw ConfigError("not an AMQP URL: " + url.redacted() + " (expected amqp:// or amqps://)");
    p.redacted = url.redacted();
    p.tls = url.scheme == "amqps";
    if (url.host.empty()) throw ConfigError("AMQP URL without a host: " + p.redacted);
    p.host = url.host;
    p.port = url.port.value_or(p.tls ? 5671 : 5672);
    p.user = credentials.user;
    p.password = credentials.password;
    if (!credentials.has_password) p.user.clear();
    if (p.user.empty())
        throw ConfigError(
            "no AMQP credentials for " + p.redacted +
            ": put user:password in the URL or set APCLOUD_AMQP_USER and APCLOUD_AMQP_PASSWORD");
    // The vhost is the single path segment, percent-decoded ("%2F" is the
    // default vhost "/"); an empty path also means "/".
    std::string raw = url.raw_path.empty() ? std::string() : url.raw_path.substr(1);
    if (raw.find('/') != std::string::npos)
        throw ConfigError("AMQP URL path must be one vhost segment (write a '/' in it as %2F): " +
                          p.redacted);
    p.vhost = raw.empty() ? "/" : percent_decode(raw);
    p.cacert = credentials.cacert;
    for (const auto& [key, value] : url.query) {
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
            if (value == "1" || value == "true" || value == "yes") {
                p.verify = true;
            } else if (value == "0" || value == "false" || value == "no") {
                p.verify = false;
            } else {
                throw ConfigError("invalid verify=" + quote_for_message(value) + " in " + p.redacted +
                                  ": expected 1 or 0");
            }
        } else {
            throw ConfigError("unknown AMQP URL parameter " + quote_for_message(key) + " in " + p.redacted +
                              " (known: heartbeat, connect_timeout, reconnect_wait, confirm_timeout, lease, "
                              "cacert, cert, key, verify)");
        }
    }
    if (p.cert.empty() != p.key.empty())
        throw ConfigError("AMQP URL " + p.redacted + ": cert and key go together");
    if (p.tls && p.cacert.empty() && access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0)
        p.cacert = "/etc/ssl/certs/ca-certificates.crt";
    return p;
}

std::unique_ptr<Broker> make_amqp_broker(const Url& url, const BrokerCredentials& credentials) {
    return std::make_unique<AmqpBroker>(amqp_params(url, credentials));
}

}  // namespace apcloud
