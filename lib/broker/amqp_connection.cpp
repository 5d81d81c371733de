// One rabbitmq-c connection: connect, TLS, login, reconnect with backoff, heartbeat thread, RPC checks.
#include "broker/amqp_connection.hpp"

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

#include "autopkgtest_cloud/broker.hpp"
#include "core/logging.hpp"

namespace apcloud::detail::amqp {

namespace {

using std::chrono::milliseconds;

const Logger logger("amqp");

// Closed channels remembered (for their close reason) per connection.
constexpr std::size_t kClosedChannelsKept = 16;

// The first and the longest pause between two connection attempts.
constexpr milliseconds kFirstBackoff{100};
constexpr milliseconds kMaxBackoff{5000};

// Unique across all connections of the process, so that a delivery tag
// remembered from a channel can never match a later incarnation of it.
std::atomic<std::uint64_t> g_channel_epoch{0};

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

bool is_fatal_login_code(std::uint16_t code) {
    // Wrong credentials, no such vhost, no permission on it: retrying cannot help.
    return code == AMQP_ACCESS_REFUSED || code == AMQP_NOT_ALLOWED || code == 402 /* INVALID_PATH */;
}

// Loads the CA bundle and the client certificate, and sets what is verified.
void configure_tls(amqp_socket_t* socket, const AmqpParams& p) {
    amqp_ssl_socket_set_verify_peer(socket, p.verify ? 1 : 0);
    amqp_ssl_socket_set_verify_hostname(socket, p.verify ? 1 : 0);
    if (!p.cacert.empty() && amqp_ssl_socket_set_cacert(socket, p.cacert.c_str()) != AMQP_STATUS_OK)
        throw ConfigError(fmt::format("cannot load the CA certificates {} for {}",
                                      quote_for_message(p.cacert), p.redacted));
    if (!p.cert.empty() && amqp_ssl_socket_set_key(socket, p.cert.c_str(), p.key.c_str()) != AMQP_STATUS_OK)
        throw ConfigError(fmt::format("cannot load the client certificate {} / key {} for {}",
                                      quote_for_message(p.cert), quote_for_message(p.key), p.redacted));
}

// An integer header value of any width; none for other kinds.
std::optional<std::int64_t> integer_field(const amqp_field_value_t& v) {
    switch (v.kind) {
        case AMQP_FIELD_KIND_I8:
            return v.value.i8;
        case AMQP_FIELD_KIND_U8:
            return v.value.u8;
        case AMQP_FIELD_KIND_I16:
            return v.value.i16;
        case AMQP_FIELD_KIND_U16:
            return v.value.u16;
        case AMQP_FIELD_KIND_I32:
            return v.value.i32;
        case AMQP_FIELD_KIND_U32:
            return v.value.u32;
        case AMQP_FIELD_KIND_I64:
            return v.value.i64;
        case AMQP_FIELD_KIND_U64:
            return static_cast<std::int64_t>(v.value.u64);
        default:
            return std::nullopt;
    }
}

// Takes the headers we read (reason, attempt, lease, x-delivery-count) into `out`.
void read_headers(const amqp_table_t& h, Content& out) {
    for (int i = 0; i < h.num_entries; ++i) {
        const std::string key = bytes_to_string(h.entries[i].key);
        const amqp_field_value_t& v = h.entries[i].value;
        if (key == kReasonHeader && (v.kind == AMQP_FIELD_KIND_UTF8 || v.kind == AMQP_FIELD_KIND_BYTES)) {
            out.reason = bytes_to_string(v.value.bytes);
            continue;
        }
        if (key == kLeaseHeader && (v.kind == AMQP_FIELD_KIND_UTF8 || v.kind == AMQP_FIELD_KIND_BYTES)) {
            out.lease = bytes_to_string(v.value.bytes);
            continue;
        }
        if (key == kTakenHeader) {
            if (auto n = integer_field(v)) out.taken = *n;
            continue;
        }
        if (key != "x-delivery-count" && key != kAttemptHeader) continue;
        std::optional<std::int64_t>& slot = key == kAttemptHeader ? out.attempt : out.delivery_count;
        if (auto n = integer_field(v)) slot = *n;
    }
}

}  // namespace

std::string bytes_to_string(amqp_bytes_t b) {
    return b.len ? std::string(static_cast<const char*>(b.bytes), b.len) : std::string();
}

amqp_bytes_t as_bytes(const std::string& s) {
    amqp_bytes_t b;
    b.len = s.size();
    b.bytes = const_cast<char*>(s.data());
    return b;
}

std::string seconds_text(milliseconds ms) {
    if (ms.count() % 1000) return fmt::format("{}.{} s", ms.count() / 1000, ms.count() % 1000 / 100);
    return fmt::format("{} s", ms.count() / 1000);
}

void check_name(const std::string& name, const char* kind) {
    if (name.empty()) throw BrokerError(fmt::format("empty {} name", kind));
    if (name.size() > 255)
        throw BrokerError(fmt::format("{} name longer than 255 bytes: {}", kind, quote_for_message(name)));
}

void throw_channel_error(const std::string& what, const ChannelClose& c) {
    std::string msg = fmt::format("{}: the broker closed the channel: {} {}", what, c.code, c.text);
    if (c.code == AMQP_NOT_FOUND) throw NotFound(msg);
    throw BrokerError(msg);
}

// --- AmqpConnection -----------------------------------------------------------

AmqpConnection::AmqpConnection(const AmqpParams& p) : redacted_(p.redacted) {
    conn_ = amqp_new_connection();
    if (!conn_)
        throw BrokerError(fmt::format("cannot create an AMQP connection to {}: out of memory", redacted_));
    try {
        open_socket(p);
        log_in(p);
    } catch (...) {
        amqp_destroy_connection(conn_);
        conn_ = nullptr;
        throw;
    }
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

void AmqpConnection::open_socket(const AmqpParams& p) {
    amqp_socket_t* socket = p.tls ? amqp_ssl_socket_new(conn_) : amqp_tcp_socket_new(conn_);
    if (!socket) throw BrokerError(fmt::format("cannot create a socket for {}", redacted_));
    if (p.tls) configure_tls(socket, p);
    timeval tv = to_timeval(p.connect_timeout);
    int status = amqp_socket_open_noblock(socket, p.host.c_str(), p.port, &tv);
    if (status != AMQP_STATUS_OK) {
        const int err = errno;
        const std::string why = status == AMQP_STATUS_SOCKET_ERROR && err
                                    ? fmt::format("{} ({})", amqp_error_string2(status), errno_message(err))
                                    : std::string(amqp_error_string2(status));
        std::string msg = fmt::format("cannot connect to {}: {}", redacted_, why);
        // A certificate that does not verify will not verify on a retry either.
        if (status == AMQP_STATUS_SSL_PEER_VERIFY_FAILED || status == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED)
            throw BrokerError(msg);
        throw ConnectionLost(msg);
    }
    amqp_set_handshake_timeout(conn_, &tv);
    timeval rpc_tv = to_timeval(p.confirm_timeout);
    amqp_set_rpc_timeout(conn_, &rpc_tv);
}

void AmqpConnection::log_in(const AmqpParams& p) {
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
    std::string name = fmt::format("apcloud {}[{}]", program_invocation_short_name, getpid());
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

    check_login(
        amqp_login_with_properties(conn_, p.vhost.c_str(), 0, AMQP_DEFAULT_FRAME_SIZE, p.heartbeat_s, &table,
                                   AMQP_SASL_METHOD_PLAIN, p.user.c_str(), p.password.c_str()),
        p);
}

void AmqpConnection::check_login(const amqp_rpc_reply_t& r, const AmqpParams& p) {
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return;
    std::string login = fmt::format("cannot log in to {} (user {}, vhost {})", redacted_,
                                    quote_for_message(p.user), quote_for_message(p.vhost));
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        throw ConnectionLost(fmt::format("{}: {}", login, amqp_error_string2(r.library_error)));
    if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION)
        throw ConnectionLost(fmt::format("{}: no reply", login));
    std::uint16_t code = 0;
    std::string text = "unexpected reply";
    if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        auto* m = static_cast<amqp_connection_close_t*>(r.reply.decoded);
        code = m->reply_code;
        text = bytes_to_string(m->reply_text);
        amqp_connection_close_ok_t ok{};
        amqp_send_method(conn_, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    }
    std::string msg = fmt::format("{}: {} {}", login, code, text);
    if (is_fatal_login_code(code)) throw BrokerError(msg);
    throw ConnectionLost(msg);
}

bool AmqpConnection::channel_open(amqp_channel_t ch) const {
    auto it = channels_.find(ch);
    return it != channels_.end() && it->second.open;
}

std::uint64_t AmqpConnection::epoch(amqp_channel_t ch) const {
    auto it = channels_.find(ch);
    return it != channels_.end() ? it->second.epoch : 0;
}

std::optional<ChannelClose> AmqpConnection::close_reason(amqp_channel_t ch) const {
    auto it = channels_.find(ch);
    return it != channels_.end() ? it->second.closed : std::nullopt;
}

amqp_channel_t AmqpConnection::open_new_channel() {
    int max = amqp_get_channel_max(conn_);
    if (max <= 0 || max > 65535) max = 65535;
    amqp_channel_t ch = last_channel_;
    for (int tries = 0;; ++tries) {
        if (tries > max) throw BrokerError(fmt::format("no free AMQP channel on {}", redacted_));
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
    check_reply(ch, fmt::format("opening channel {} on {}", ch, redacted_));
    return ch;
}

void AmqpConnection::lost(const std::string& what, const std::string& why) {
    alive_ = false;
    throw ConnectionLost(fmt::format("{}: connection to {} lost: {}", what, redacted_, why));
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
            lost(what, fmt::format("unexpected method {}", r.reply.id));
        default:
            lost(what, "no reply");
    }
}

void AmqpConnection::check_status(int status, const std::string& what) {
    if (status != AMQP_STATUS_OK) lost(what, amqp_error_string2(status));
}

ChannelClose AmqpConnection::on_channel_close(amqp_channel_t ch, const amqp_method_t& m) {
    auto* close = static_cast<amqp_channel_close_t*>(m.decoded);
    ChannelClose c{close->reply_code, bytes_to_string(close->reply_text)};
    // Answer once: RabbitMQ 3.10 sends the same channel.close several times
    // when a consumer ack timeout fires, and a second close-ok, on a channel
    // that is closed by then, is a connection error (504 CHANNEL_ERROR).
    auto it = channels_.find(ch);
    if (it == channels_.end() || !it->second.open)
        return it != channels_.end() ? it->second.closed.value_or(c) : c;
    mark_closed(ch, c);
    amqp_channel_close_ok_t ok{};
    check_status(amqp_send_method(conn_, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok),
                 fmt::format("answering the close of channel {}", ch));
    return c;
}

void AmqpConnection::close_channel(amqp_channel_t ch, const std::string& what) {
    if (!channel_open(ch)) return;
    // check() handles a channel.close from the broker that crossed ours.
    check(amqp_channel_close(conn_, ch, AMQP_REPLY_SUCCESS), ch, what);
    mark_closed(ch, ChannelClose{AMQP_REPLY_SUCCESS, "closed by this client"});
    amqp_maybe_release_buffers_on_channel(conn_, ch);
}

void AmqpConnection::mark_closed(amqp_channel_t ch, const ChannelClose& c) {
    ChannelState& st = channels_[ch];
    st.open = false;
    st.closed = c;
    closed_order_.push_back(ch);
    while (closed_order_.size() > kClosedChannelsKept) {
        auto old = channels_.find(closed_order_.front());
        if (old != channels_.end() && !old->second.open) channels_.erase(old);
        closed_order_.pop_front();
    }
}

void AmqpConnection::on_connection_close(const amqp_method_t& m, const std::string& what) {
    auto* close = static_cast<amqp_connection_close_t*>(m.decoded);
    std::string why =
        fmt::format("closed by the broker: {} {}", close->reply_code, bytes_to_string(close->reply_text));
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

// --- connecting, reading, declaring -----------------------------------------

std::unique_ptr<AmqpConnection> connect_with_backoff(const AmqpParams& p, bool reconnect) {
    auto start = Clock::now();
    milliseconds delay = kFirstBackoff;
    for (int attempt = 1;; ++attempt) {
        try {
            auto c = std::make_unique<AmqpConnection>(p);
            if (reconnect)
                logger.info("reconnected to {} after {} {}", p.redacted, attempt,
                            attempt == 1 ? "attempt" : "attempts");
            else
                logger.debug("connected to {}", p.redacted);
            return c;
        } catch (const ConnectionLost& e) {
            auto spent = Clock::now() - start;
            if (spent + delay > p.reconnect_wait)
                throw BrokerError(fmt::format("{} (gave up after {} {} in {})", e.what(), attempt,
                                              attempt == 1 ? "attempt" : "attempts",
                                              seconds_text(std::chrono::duration_cast<milliseconds>(spent))));
            logger.debug("{} (attempt {}; next in {})", e.what(), attempt, seconds_text(delay));
        }
        std::this_thread::sleep_for(delay);
        delay = std::min(delay * 2, kMaxBackoff);
    }
}

Content read_content(AmqpConnection& c, amqp_channel_t ch, const std::string& what) {
    amqp_message_t msg;
    std::memset(&msg, 0, sizeof msg);
    amqp_rpc_reply_t r = amqp_read_message(c.get(), ch, &msg, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        amqp_destroy_message(&msg);
        c.check(r, ch, what);
    }
    Content out;
    out.body = bytes_to_string(msg.body);
    if (msg.properties._flags & AMQP_BASIC_HEADERS_FLAG) read_headers(msg.properties.headers, out);
    amqp_destroy_message(&msg);
    return out;
}

bool exchange_is_durable(const std::string& exchange) {
    return exchange != teststatus_exchange;
}

void declare_fanout(AmqpConnection& c, amqp_channel_t ch, const std::string& exchange) {
    const bool durable = exchange_is_durable(exchange);
    amqp_exchange_declare(c.get(), ch, as_bytes(exchange), amqp_cstring_bytes("fanout"), 0, durable ? 1 : 0,
                          0, 0, amqp_empty_table);
    c.check_reply(ch, fmt::format("declaring fanout exchange {} ({})", quote_for_message(exchange),
                                  durable ? "durable" : "transient"));
}

void bind_to_fanout(AmqpConnection& c, amqp_channel_t ch, const std::string& queue,
                    const std::string& exchange) {
    amqp_queue_bind(c.get(), ch, as_bytes(queue), as_bytes(exchange), amqp_empty_bytes, amqp_empty_table);
    c.check_reply(ch, fmt::format("binding queue {} to exchange {}", quote_for_message(queue),
                                  quote_for_message(exchange)));
    amqp_maybe_release_buffers_on_channel(c.get(), ch);
}

std::vector<Content> peek_queue(AmqpConnection& c, const std::string& queue, std::size_t limit) {
    const std::string what = fmt::format("peeking at queue {}", quote_for_message(queue));
    std::vector<Content> messages;
    const amqp_channel_t ch = c.open_new_channel();
    try {
        // A passive declare: NotFound for a missing queue even with limit 0,
        // and no basic.get beyond the messages ready now.
        auto* ok = amqp_queue_declare(c.get(), ch, as_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
        c.check_reply(ch, what);
        const std::uint64_t ready = ok->message_count;
        amqp_maybe_release_buffers_on_channel(c.get(), ch);
        while (messages.size() < limit && messages.size() < ready) {
            amqp_rpc_reply_t r = amqp_basic_get(c.get(), ch, as_bytes(queue), 0);
            c.check(r, ch, what);
            if (r.reply.id != AMQP_BASIC_GET_OK_METHOD) break;  // taken by a consumer meanwhile
            messages.push_back(read_content(c, ch, what));
            amqp_maybe_release_buffers_on_channel(c.get(), ch);
        }
        c.close_channel(ch, what);
    } catch (const ConnectionLost&) {
        throw;  // the channel went with the connection, and its messages back to the queue
    } catch (...) {
        // A channel error has closed it already; anything else must not
        // leave messages hidden on an open channel.
        c.close_channel(ch, what);
        throw;
    }
    return messages;
}

// --- Keepalive ----------------------------------------------------------------

Keepalive::Keepalive(std::mutex& mu, int heartbeat_s)
    : mu_(mu), heartbeat_s_(heartbeat_s), period_(std::max(1000, heartbeat_s * 1000 / 3)) {}

void Keepalive::start(std::function<void()> poll) {
    if (heartbeat_s_ <= 0) return;
    poll_ = std::move(poll);
    thread_ = std::thread([this] { run(); });
}

void Keepalive::stop() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void Keepalive::run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
        cv_.wait_for(lock, period_, [this] { return stop_; });
        if (stop_ || Clock::now() - last_io_ < period_) continue;
        poll_();
    }
}

}  // namespace apcloud::detail::amqp
