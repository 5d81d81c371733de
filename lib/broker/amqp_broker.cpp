// The AMQP 0-9-1 (RabbitMQ) broker: the Broker contract over a connection, with confirms and reconnects.
#include "broker/amqp_broker.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "autopkgtest_cloud/error.hpp"
#include "broker/amqp_connection.hpp"
#include "broker/amqp_lease.hpp"
#include "broker/amqp_subscription.hpp"
#include "core/logging.hpp"

namespace apcloud {

namespace {

using namespace detail::amqp;
using std::chrono::milliseconds;

const detail::Logger logger("amqp");

// A delivery handed to the caller and not yet settled.
struct Held : LeasedMessage {
    std::uint64_t epoch = 0;  // of the consume channel it arrived on
    std::uint64_t amqp_tag = 0;
};

// A delivery read from the socket and not yet handed out.
struct Buffered {
    std::uint64_t epoch = 0;
    std::uint64_t amqp_tag = 0;
    Delivery delivery;
    std::string lease;  // x-apcloud-lease of an expired lease copy
};

Delivery make_delivery(const std::string& queue, bool redelivered, Content c) {
    Delivery d;
    d.queue = queue;
    d.redelivered = redelivered;
    d.body = std::move(c.body);
    d.reason = std::move(c.reason);
    d.first_taken = c.taken;
    // Classic queues do not count deliveries; quorum queues do.
    d.attempt = c.delivery_count ? static_cast<std::uint32_t>(*c.delivery_count + 1) : (redelivered ? 2 : 1);
    if (c.attempt) {
        d.attempt = static_cast<std::uint32_t>(std::max<std::int64_t>(*c.attempt, 0) + 1);
        d.redelivered = true;
    }
    return d;
}

class AmqpBroker final : public Broker, private LeaseHost {
public:
    explicit AmqpBroker(AmqpParams p) : p_(std::move(p)) {
        conn_ = connect_with_backoff(p_, false);
        keepalive_.touch();
        keepalive_.start([this] { keep_alive(); });
    }

    ~AmqpBroker() override {
        keepalive_.stop();
        std::lock_guard<std::mutex> lock(mu_);
        return_leased();
    }

    void declare_queue(const std::string& queue) override {
        check_name(queue, "queue");
        std::lock_guard<std::mutex> lock(mu_);
        retrying(fmt::format("declaring queue {}", quote_for_message(queue)),
                 [&] { declare_queue_locked(queue); });
    }

    void publish(const std::string& queue, const std::string& body) override {
        check_name(queue, "queue");
        std::lock_guard<std::mutex> lock(mu_);
        const std::string what = fmt::format("publishing to queue {}", quote_for_message(queue));
        publishing(what, [&] { publish_locked("", queue, body, true, 2, nullptr, what); });
    }

    std::vector<PublishResult> publish_many(const std::vector<Publication>& messages) override {
        std::vector<PublishResult> results(messages.size());
        std::vector<std::size_t> todo;
        for (std::size_t i = 0; i < messages.size(); ++i) {
            try {
                check_name(messages[i].queue, "queue");
                todo.push_back(i);
            } catch (const Error& e) {
                results[i].error = e.what();
            }
        }
        std::lock_guard<std::mutex> lock(mu_);
        for (int losses = 0; !todo.empty();) {
            try {
                ensure_connected();
                publish_pipelined(messages, todo, results);
            } catch (const ConnectionLost& e) {
                drop(e.what());
                if (++losses > kMaxConnectionLosses) {
                    for (auto i : todo) results[i].error = e.what();
                    break;
                }
                logger.warn("{} message(s) had no confirm when the connection was lost; publishing them again "
                            "(they may be queued twice)",
                            todo.size());
            }
        }
        return results;
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
                auto touch = keepalive_.touch_on_exit();
                auto d = consume_locked(wanted, deadline);
                if (d && drop_settled_copy(*d)) continue;
                if (d && leases_.enabled()) take_lease(*d);
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
            bool had_copies = true;
            retrying(fmt::format("acking delivery {} of queue {}", delivery.tag, quote_for_message(h.queue)),
                     [&] { had_copies = leases_.end(*this, h); });
            held_.erase(delivery.tag);
            if (!had_copies)
                logger.warn(
                    "delivery {} of queue {} was acked after its lease had expired (no renewal within the "
                    "lease, e.g. the broker was away longer): its copy went back to the queue; this consumer "
                    "drops it when it comes back, another would run it again",
                    delivery.tag, quote_for_message(h.queue));
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
                fmt::format("requeueing delivery {} of queue {}", delivery.tag, quote_for_message(h.queue));
            // Back on its queue first (confirmed), then the lease ends: a crash
            // in between can only duplicate the request, never lose it.
            retrying(what, [&] { publish_with_attempt(h.queue, h, nullptr, what); });
            retrying(what, [&] { leases_.end(*this, h); });
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
        const std::string queue =
            leased(delivery) ? dead_letter_leased(delivery, reason) : dead_letter_unleased(delivery, reason);
        logger.info("dead-lettered a message of queue {} to {}: {}", quote_for_message(queue),
                    quote_for_message(queue + ".dead"), quote_for_message(reason));
    }

    void renew(const Delivery& delivery) override {
        std::lock_guard<std::mutex> lock(mu_);
        if (!leased(delivery)) return;  // without leases RabbitMQ holds it (heartbeats keep the connection)
        Held h = held_.at(delivery.tag);
        leases_.renew(*this, h, delivery.tag);
    }

    std::uint64_t queue_depth(const std::string& queue) override {
        check_name(queue, "queue");
        std::lock_guard<std::mutex> lock(mu_);
        return retrying(fmt::format("reading the depth of queue {}", quote_for_message(queue)),
                        [&] { return queue_depth_locked(queue); });
    }

    std::vector<PeekedMessage> peek_messages(const std::string& queue, std::size_t limit) override {
        check_name(queue, "queue");
        std::lock_guard<std::mutex> lock(mu_);
        try {
            auto contents = retrying(fmt::format("peeking at queue {}", quote_for_message(queue)), [&] {
                drain_queued();  // what came for the other channels first (see ensure_channel)
                return peek_queue(*conn_, queue, limit);
            });
            std::vector<PeekedMessage> out;
            for (auto& c : contents) {
                PeekedMessage m;
                m.body = std::move(c.body);
                m.reason = std::move(c.reason);
                // As make_delivery counts: our header first, then the quorum queue's count.
                if (auto n = c.attempt ? c.attempt : c.delivery_count)
                    m.deliveries = static_cast<std::uint32_t>(std::clamp<std::int64_t>(*n, 0, UINT32_MAX));
                out.push_back(std::move(m));
            }
            return out;
        } catch (const BrokerError& e) {
            logger.warn("{}", e.what());
            throw;
        }
    }

    void publish_dead_letter(const std::string& queue, const std::string& body,
                             const std::string& reason) override {
        check_name(queue, "queue");
        check_name(queue + ".dead", "dead-letter queue");
        std::lock_guard<std::mutex> lock(mu_);
        const std::string what =
            fmt::format("publishing a dead letter to queue {}", quote_for_message(queue + ".dead"));
        publishing(what, [&] { copy_to_dead(queue, body, reason, what); });
    }

    void publish_event(const std::string& exchange, const std::string& body) override {
        check_name(exchange, "exchange");
        std::lock_guard<std::mutex> lock(mu_);
        const std::string what = fmt::format("publishing to exchange {}", quote_for_message(exchange));
        publishing(what, [&] {
            if (!declared_.count(exchange)) {
                declare_fanout(*conn_, ensure_channel(Role::admin), exchange);
                declared_.insert(exchange);
            }
            // Not mandatory: a fanout event nobody listens to is dropped by design.
            publish_locked(exchange, "", body, false, exchange_is_durable(exchange) ? 2 : 1, nullptr, what);
        });
    }

    std::unique_ptr<Subscription> subscribe(const std::string& exchange) override {
        return make_amqp_subscription(p_, exchange);
    }

    void bind_queue(const std::string& queue, const std::string& exchange) override {
        check_name(queue, "queue");
        check_name(exchange, "exchange");
        std::lock_guard<std::mutex> lock(mu_);
        retrying(fmt::format("binding queue {} to exchange {}", quote_for_message(queue),
                             quote_for_message(exchange)),
                 [&] {
                     const amqp_channel_t ch = ensure_channel(Role::admin);
                     declare_fanout(*conn_, ch, exchange);
                     declared_.insert(exchange);
                     declare_queue_locked(queue);
                     bind_to_fanout(*conn_, ensure_channel(Role::admin), queue, exchange);
                 });
        logger.info("bound durable queue {} to {} fanout exchange {}", quote_for_message(queue),
                    exchange_is_durable(exchange) ? "durable" : "transient", quote_for_message(exchange));
    }

private:
    // --- LeaseHost ---------------------------------------------------------

    AmqpConnection& connection() override { return *conn_; }
    std::uint16_t admin_channel() override { return ensure_channel(Role::admin); }
    std::uint64_t message_count(const std::string& queue) override { return queue_depth_locked(queue); }
    std::set<std::string>& declared() override { return declared_; }
    void retry(const std::string& what, const std::function<void()>& step) override { retrying(what, step); }

    // Publishes the held body to `queue` (persistent, confirmed) carrying its
    // attempt count; `expiration` makes it a lease copy.
    void publish_with_attempt(const std::string& queue, const LeasedMessage& m, const std::string* expiration,
                              const std::string& what) override {
        amqp_table_entry_t entries[3];
        int n = 0;
        entries[n].key = amqp_cstring_bytes(kAttemptHeader);
        entries[n].value.kind = AMQP_FIELD_KIND_I64;
        entries[n++].value.value.i64 = m.attempt;
        if (m.taken) {
            entries[n].key = amqp_cstring_bytes(kTakenHeader);
            entries[n].value.kind = AMQP_FIELD_KIND_I64;
            entries[n++].value.value.i64 = *m.taken;
        }
        // Only lease copies name their lease; a message put back is a fresh delivery.
        if (expiration && !m.lease_id.empty()) {
            entries[n].key = amqp_cstring_bytes(kLeaseHeader);
            entries[n].value.kind = AMQP_FIELD_KIND_UTF8;
            entries[n++].value.value.bytes = as_bytes(m.lease_id);
        }
        amqp_table_t headers{n, entries};
        publish_locked("", queue, m.body, true, 2, &headers, what, expiration);
    }

    // --- leases and dead letters -------------------------------------------

    bool leased(const Delivery& d) const {
        auto it = held_.find(d.tag);
        return it != held_.end() && !it->second.lease_queue.empty();
    }

    // An expired copy of a lease this consumer has settled since (the
    // request ran, or went back or to the dead letters, another way): acked
    // and not handed out, so a broker outage longer than a lease does not
    // run a request twice here.
    bool drop_settled_copy(const Delivery& d) {
        Held& h = held_.at(d.tag);
        if (!leases_.is_settled_copy(h)) return false;
        Held copy = h;
        held_.erase(d.tag);
        settle(copy, d, "acking (a copy of a settled lease)",
               [&] { return amqp_basic_ack(conn_->get(), con_ch_, copy.amqp_tag, 0); });
        logger.info("dropped a message of queue {}: the expired copy of a lease this consumer settled since",
                    quote_for_message(copy.queue));
        return true;
    }

    // Moves a fresh delivery into a lease: copy confirmed, then the original
    // acked (see AmqpParams::lease).
    void take_lease(Delivery& d) {
        Held& h = held_.at(d.tag);
        if (!h.taken)
            h.taken = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
        d.first_taken = h.taken;
        leases_.take(*this, h);
        Held original = h;
        settle(original, d, "acking (now leased)",
               [&] { return amqp_basic_ack(conn_->get(), con_ch_, original.amqp_tag, 0); });
    }

    // A leased delivery given up without a verdict goes back to its queue
    // now, as an unacked one would when its channel closes.
    void return_leased() {
        for (auto& [tag, h] : held_) {
            if (h.lease_queue.empty() || !conn_ || !conn_->alive()) continue;
            try {
                publish_with_attempt(
                    h.queue, h, nullptr,
                    fmt::format("returning a leased message to {}", quote_for_message(h.queue)));
                leases_.end(*this, h);
                logger.debug("returned leased delivery {} to queue {}", tag, quote_for_message(h.queue));
            } catch (const std::exception&) {
                // The lease expires and returns it anyway.
            }
        }
    }

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

    static std::string dead_letter_what(const std::string& queue, const std::string& dead) {
        return fmt::format("dead-lettering a message of queue {} to {}", quote_for_message(queue),
                           quote_for_message(dead));
    }

    // Both return the queue the message came from.
    std::string dead_letter_leased(const Delivery& delivery, const std::string& reason) {
        Held h = held_.at(delivery.tag);
        const std::string what = dead_letter_what(h.queue, h.queue + ".dead");
        retrying(what, [&] { copy_to_dead(h.queue, h.body, reason, what); });
        retrying(what, [&] { leases_.end(*this, h); });
        held_.erase(delivery.tag);
        return h.queue;
    }

    std::string dead_letter_unleased(const Delivery& delivery, const std::string& reason) {
        Held h = peek_held(delivery, "dead-letter");
        std::string dead = h.queue + ".dead";
        check_name(dead, "dead-letter queue");
        const std::string what = dead_letter_what(h.queue, dead);
        try {
            copy_to_dead(h.queue, delivery.body, reason, what);
        } catch (const ConnectionLost& e) {
            // Not retried: the original became unackable with the connection.
            drop(e.what());
            throw BrokerError(fmt::format(
                "{}; the original message stays on its queue and will be delivered again", e.what()));
        }
        held_.erase(delivery.tag);
        settle(h, delivery, fmt::format("acking (after copying it to {})", quote_for_message(dead)),
               [&] { return amqp_basic_ack(conn_->get(), con_ch_, h.amqp_tag, 0); });
        return h.queue;
    }

    // --- the connection ----------------------------------------------------

    template <class F>
    auto retrying(const std::string& what, F&& f) -> decltype(f()) {
        for (int losses = 0;;) {
            ensure_connected();
            try {
                auto guard = keepalive_.touch_on_exit();
                return f();
            } catch (const ConnectionLost& e) {
                drop(e.what());
                if (++losses > kMaxConnectionLosses)
                    throw BrokerError(fmt::format("{}: gave up after losing the connection {} times: {}",
                                                  what, losses, e.what()));
            }
        }
    }

    // A publish whose confirm did not arrive before the connection was lost
    // is sent again on the new connection: the message may then be queued
    // twice, but it is never lost.
    template <class F>
    void publishing(const std::string& what, F&& send) {
        int tries = 0;
        retrying(what, [&] {
            if (tries++ > 0)
                logger.warn(
                    "{}: no confirm came before the connection was lost; publishing again (it may be "
                    "queued twice)",
                    what);
            send();
        });
    }

    void ensure_connected() {
        if (conn_ && conn_->alive()) return;
        conn_.reset();
        conn_ = connect_with_backoff(p_, true);
        keepalive_.touch();
    }

    // Forgets a broken connection and everything tied to it. Deliveries held
    // by the caller become unackable; RabbitMQ requeues them.
    void drop(const std::string& why) {
        if (conn_) {
            logger.warn("{}", why);  // names the (redacted) URL: "...: connection to <url> lost: <why>"
            conn_->kill();
        }
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

    // Called by the keepalive thread (with mu_ held) when the caller has been
    // quiet for a while: reads what arrived, which answers heartbeats.
    void keep_alive() {
        if (!conn_ || !conn_->alive()) return;
        try {
            while (pump(Clock::now())) {
            }
        } catch (const ConnectionLost& e) {
            drop(e.what());
        } catch (const Error&) {
            // A channel error: seen again by the next operation on it.
        }
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
                consume_close_ =
                    fmt::format("the broker closed the consumer's channel ({} {})", why->code, why->text);
        }
        ch = 0;
        amqp_channel_t fresh = conn_->open_new_channel();
        if (role == Role::publish) {
            amqp_confirm_select(conn_->get(), fresh);
            conn_->check_reply(fresh, "enabling publisher confirms");
            pub_seq_ = pub_acked_ = pub_nacked_ = 0;
        } else if (role == Role::consume) {
            // global=1: RabbitMQ applies the limit to the whole channel, so a
            // consumer of several queues holds at most one message in total.
            amqp_basic_qos(conn_->get(), fresh, 0, 1, 1);
            conn_->check_reply(fresh, "setting prefetch 1");
            consumer_tags_.clear();
        }
        ch = fresh;
        return ch;
    }

    // --- queues and publishing ---------------------------------------------

    void declare_queue_locked(const std::string& queue) {
        const amqp_channel_t ch = ensure_channel(Role::admin);
        amqp_queue_declare(conn_->get(), ch, as_bytes(queue), 0, 1, 0, 0, amqp_empty_table);
        conn_->check_reply(ch, fmt::format("declaring queue {}", quote_for_message(queue)));
        amqp_maybe_release_buffers_on_channel(conn_->get(), ch);
    }

    std::uint64_t queue_depth_locked(const std::string& queue) {
        const amqp_channel_t ch = ensure_channel(Role::admin);
        auto* ok = amqp_queue_declare(conn_->get(), ch, as_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
        conn_->check_reply(ch, fmt::format("looking up queue {}", quote_for_message(queue)));
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
        await_confirm(ch, ++pub_seq_, what);
    }

    // Publishes messages[todo...] with up to kPublishWindow unconfirmed at a
    // time, settling each as its confirm arrives; what is settled leaves
    // `todo`. A returned message (RabbitMQ sends basic.return before the
    // confirm) is known by its queue and body among those in flight.
    static constexpr std::size_t kPublishWindow = 512;

    void publish_pipelined(const std::vector<Publication>& messages, std::vector<std::size_t>& todo,
                           std::vector<PublishResult>& results) {
        const amqp_channel_t ch = ensure_channel(Role::publish);
        const std::uint64_t epoch = conn_->epoch(ch);
        std::map<std::uint64_t, std::size_t> in_flight;  // publish seq -> message index
        batch_confirms_.clear();
        batch_returns_.clear();
        batching_ = true;
        struct Done {
            bool& flag;
            ~Done() { flag = false; }
        } done{batching_};
        amqp_basic_properties_t props;
        std::memset(&props, 0, sizeof props);
        props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
        props.delivery_mode = 2;
        std::size_t next = 0;
        auto settle = [&](std::uint64_t seq, bool acked) {
            auto it = in_flight.find(seq);
            if (it == in_flight.end()) return;
            const std::size_t i = it->second;
            in_flight.erase(it);
            PublishResult& r = results[i];
            const std::string what = fmt::format("publishing to queue {}", quote_for_message(messages[i].queue));
            auto ret = std::find_if(batch_returns_.begin(), batch_returns_.end(), [&](const Returned& x) {
                return x.routing_key == messages[i].queue && x.body == messages[i].body;
            });
            if (!acked) {
                r.error = fmt::format("{}: the broker refused the message (basic.nack): it is not queued", what);
            } else if (ret != batch_returns_.end()) {
                r.no_queue = ret->code == AMQP_NO_ROUTE;
                r.error = fmt::format("{}: returned by the broker: {} {}{}", what, ret->code, ret->text,
                                      r.no_queue ? " (no such queue)" : "");
            } else {
                r.queued = true;
            }
            if (ret != batch_returns_.end()) batch_returns_.erase(ret);
        };
        auto deadline = Clock::now() + p_.confirm_timeout;
        while (next < todo.size() || !in_flight.empty()) {
            while (next < todo.size() && in_flight.size() < kPublishWindow) {
                const Publication& m = messages[todo[next]];
                conn_->check_status(amqp_basic_publish(conn_->get(), ch, amqp_cstring_bytes(""), as_bytes(m.queue),
                                                       1, 0, &props, as_bytes(m.body)),
                                    fmt::format("publishing to queue {}", quote_for_message(m.queue)));
                in_flight[++pub_seq_] = todo[next++];
            }
            if (!conn_->channel_open(ch) || conn_->epoch(ch) != epoch) {
                // Which of those in flight the broker took is unknown: all are
                // reported as not queued (a caller may send one twice, never lose one).
                auto why = conn_->close_reason(ch);
                const ChannelClose c = why ? *why : ChannelClose{0, "closed"};
                for (const auto& [seq, i] : in_flight)
                    results[i].error = fmt::format("publishing to queue {}: the broker closed the channel "
                                                   "before confirming it ({} {}); it may not be queued",
                                                   quote_for_message(messages[i].queue), c.code, c.text);
                for (std::size_t k = next; k < todo.size(); ++k) results[todo[k]].error = fmt::format(
                    "not published: the broker closed the channel ({} {})", c.code, c.text);
                todo.clear();
                return;
            }
            if (!pump(deadline)) {
                // Keep only what is still unsettled for the caller's retry.
                std::vector<std::size_t> left;
                for (const auto& [seq, i] : in_flight) left.push_back(i);
                for (std::size_t k = next; k < todo.size(); ++k) left.push_back(todo[k]);
                todo = std::move(left);
                conn_->lost("publishing a batch",
                            fmt::format("no publisher confirm within {}{}", seconds_text(p_.confirm_timeout),
                                        blocked_ ? " (the broker blocks publishers: it is low on memory or disk)"
                                                 : ""));
            }
            for (const auto& c : batch_confirms_) {
                if (c.multiple) {
                    while (!in_flight.empty() && in_flight.begin()->first <= c.tag)
                        settle(in_flight.begin()->first, c.ack);
                } else {
                    settle(c.tag, c.ack);
                }
                deadline = Clock::now() + p_.confirm_timeout;
            }
            batch_confirms_.clear();
        }
        todo.clear();
    }

    // Waits for the confirm of publish number `seq` on `ch` and judges it.
    void await_confirm(amqp_channel_t ch, std::uint64_t seq, const std::string& what) {
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
                    fmt::format(
                        "no publisher confirm within {}{}", seconds_text(p_.confirm_timeout),
                        blocked_ ? " (the broker blocks publishers: it is low on memory or disk)" : ""));
        }
        if (pub_acked_ < seq)
            throw BrokerError(
                fmt::format("{}: the broker refused the message (basic.nack): it is not queued", what));
        if (returned_) {
            // RabbitMQ sends basic.return before the confirm of an unroutable
            // mandatory message: without mandatory it would be dropped silently.
            std::string msg =
                fmt::format("{}: returned by the broker: {} {}", what, returned_->code, returned_->text);
            if (returned_->code == AMQP_NO_ROUTE) throw NotFound(fmt::format("{} (no such queue)", msg));
            throw BrokerError(msg);
        }
    }

    // --- consuming ---------------------------------------------------------

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
        std::optional<Delivery> got = wait_for_delivery(wanted, deadline);
        // A delivery that raced with the cancel is as good as one before it.
        if (!got) got = pop_buffered(wanted);
        // With classic queues the channel-wide prefetch 1 allows no second
        // one; quorum queues ignore it: give any extra back.
        return_buffered();
        return got;
    }

    // Consumes from every queue of `wanted` until a delivery arrives or the
    // deadline passes, then cancels the consumers.
    std::optional<Delivery> wait_for_delivery(const std::vector<std::string>& wanted,
                                              Clock::time_point deadline) {
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
        return got;
    }

    // basic.get: one message from `queue` if it has one ready.
    std::optional<Delivery> get_one(const std::string& queue) {
        amqp_rpc_reply_t r = amqp_basic_get(conn_->get(), con_ch_, as_bytes(queue), 0);
        conn_->check(r, con_ch_, fmt::format("getting a message from queue {}", quote_for_message(queue)));
        if (r.reply.id != AMQP_BASIC_GET_OK_METHOD) {
            amqp_maybe_release_buffers_on_channel(conn_->get(), con_ch_);
            return std::nullopt;
        }
        auto* ok = static_cast<amqp_basic_get_ok_t*>(r.reply.decoded);
        std::uint64_t amqp_tag = ok->delivery_tag;
        bool redelivered = ok->redelivered != 0;
        Content c = read_content(*conn_, con_ch_,
                                 fmt::format("reading a message from queue {}", quote_for_message(queue)));
        amqp_maybe_release_buffers_on_channel(conn_->get(), con_ch_);
        std::string lease = c.lease;
        return hold(conn_->epoch(con_ch_), amqp_tag, make_delivery(queue, redelivered, std::move(c)),
                    std::move(lease));
    }

    // `lease`: the lease the message is an expired copy of, if any.
    Delivery hold(std::uint64_t epoch, std::uint64_t amqp_tag, Delivery d, std::string lease) {
        d.tag = next_tag_++;
        Held h;
        h.expired_from = std::move(lease);
        h.taken = d.first_taken;
        h.epoch = epoch;
        h.amqp_tag = amqp_tag;
        h.queue = d.queue;
        h.attempt = d.attempt;
        h.body = d.body;
        held_[d.tag] = std::move(h);
        return d;
    }

    void start_consumers(const std::vector<std::string>& wanted) {
        consumer_tags_.clear();
        for (const auto& q : wanted) {
            auto* ok = amqp_basic_consume(conn_->get(), con_ch_, as_bytes(q), amqp_empty_bytes, 0, 0, 0,
                                          amqp_empty_table);
            conn_->check_reply(con_ch_, fmt::format("consuming from queue {}", quote_for_message(q)));
            consumer_tags_[bytes_to_string(ok->consumer_tag)] = q;
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
            conn_->check_reply(con_ch_,
                               fmt::format("cancelling the consumer of queue {}", quote_for_message(queue)));
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
            return hold(b.epoch, b.amqp_tag, std::move(b.delivery), std::move(b.lease));
        }
        return std::nullopt;
    }

    void give_back(const Buffered& b) {
        conn_->check_status(
            amqp_basic_reject(conn_->get(), con_ch_, b.amqp_tag, 1),
            fmt::format("returning a message to queue {}", quote_for_message(b.delivery.queue)));
    }

    // Returns every buffered delivery to its queue.
    void return_buffered() {
        while (!buffered_.empty()) {
            Buffered b = std::move(buffered_.front());
            buffered_.pop_front();
            if (held_valid(b.epoch)) give_back(b);
        }
    }

    // --- held deliveries ---------------------------------------------------

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
            throw BrokerError(
                fmt::format("cannot consume while holding delivery {} of queue {} (prefetch 1): ack, requeue "
                            "or dead_letter it "
                            "first",
                            it->first, quote_for_message(it->second.queue)));
        }
    }

    [[noreturn]] void throw_not_held(const Delivery& d, const char* action, const std::string& why) {
        throw BrokerError(
            fmt::format("cannot {} delivery {} of queue {}: {}; RabbitMQ requeues an unacknowledged message "
                        "when its channel "
                        "closes, so it will be delivered again",
                        action, d.tag, quote_for_message(d.queue), why));
    }

    std::string stale_reason() const {
        if (conn_ && conn_->alive()) {
            if (auto c = conn_->close_reason(con_ch_))
                return fmt::format("the broker closed the consumer's channel ({} {})", c->code, c->text);
            if (!consume_close_.empty()) return consume_close_;
        }
        if (!last_loss_.empty()) return fmt::format("the connection was lost ({})", last_loss_);
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
                fmt::format("it is not held by this consumer (already settled, or received before the "
                            "connection or channel was lost{})",
                            last_loss_.empty() ? std::string() : fmt::format(": {}", last_loss_)));
        if (!held_valid(it->second.epoch)) {
            held_.erase(it);
            throw_not_held(d, action, fmt::format("it is stale: {}", stale_reason()));
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
        std::string what =
            fmt::format("{} delivery {} of queue {}", action, d.tag, quote_for_message(h.queue));
        try {
            auto touch = keepalive_.touch_on_exit();
            conn_->check_status(send(), what);
            amqp_basic_qos(conn_->get(), con_ch_, 0, 1, 1);
            conn_->check_reply(con_ch_, what);
        } catch (const ConnectionLost& e) {
            drop(e.what());
            throw BrokerError(fmt::format(
                "{}; it is unknown whether the broker got it: an unsettled message is delivered again",
                e.what()));
        }
    }

    // --- incoming frames ---------------------------------------------------

    // Reads one frame (waiting until `deadline`) and handles it.
    bool pump(Clock::time_point deadline) {
        amqp_frame_t frame;
        bool got = conn_->wait_frame(frame, deadline);
        keepalive_.touch();
        if (got) dispatch(frame);
        return got;
    }

    void dispatch(amqp_frame_t& frame) {
        amqp_channel_t ch = frame.channel;
        if (frame.frame_type == AMQP_FRAME_METHOD) {
            void* decoded = frame.payload.method.decoded;
            switch (frame.payload.method.id) {
                case AMQP_BASIC_DELIVER_METHOD:
                    on_deliver(ch, *static_cast<amqp_basic_deliver_t*>(decoded));
                    break;
                case AMQP_BASIC_RETURN_METHOD: {
                    auto* m = static_cast<amqp_basic_return_t*>(decoded);
                    ChannelClose r{m->reply_code, bytes_to_string(m->reply_text)};
                    std::string key = bytes_to_string(m->routing_key);
                    Content c = read_content(*conn_, ch, "reading a returned message");
                    if (ch == pub_ch_) returned_ = r;
                    if (ch == pub_ch_ && batching_)
                        batch_returns_.push_back({std::move(key), std::move(c.body), r.code, r.text});
                    break;
                }
                case AMQP_BASIC_ACK_METHOD: {
                    auto* m = static_cast<amqp_basic_ack_t*>(decoded);
                    if (ch == pub_ch_) pub_acked_ = std::max(pub_acked_, m->delivery_tag);
                    if (ch == pub_ch_ && batching_) batch_confirms_.push_back({m->delivery_tag, m->multiple != 0, true});
                    break;
                }
                case AMQP_BASIC_NACK_METHOD: {
                    auto* m = static_cast<amqp_basic_nack_t*>(decoded);
                    if (ch == pub_ch_) pub_nacked_ = std::max(pub_nacked_, m->delivery_tag);
                    if (ch == pub_ch_ && batching_)
                        batch_confirms_.push_back({m->delivery_tag, m->multiple != 0, false});
                    break;
                }
                case AMQP_BASIC_CANCEL_METHOD: {
                    // The broker cancelled a consumer (its queue was deleted):
                    // the waiting consume sets them up again, which then
                    // reports the missing queue.
                    consumer_tags_.erase(
                        bytes_to_string(static_cast<amqp_basic_cancel_t*>(decoded)->consumer_tag));
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

    // A pushed delivery: buffered until the consume that waits for it takes it.
    void on_deliver(amqp_channel_t ch, const amqp_basic_deliver_t& m) {
        Buffered b;
        b.amqp_tag = m.delivery_tag;
        b.epoch = conn_->epoch(ch);
        bool redelivered = m.redelivered != 0;
        auto it = consumer_tags_.find(bytes_to_string(m.consumer_tag));
        std::string queue = it != consumer_tags_.end() ? it->second : bytes_to_string(m.routing_key);
        Content c = read_content(*conn_, ch,
                                 fmt::format("reading a delivery from queue {}", quote_for_message(queue)));
        b.lease = c.lease;
        b.delivery = make_delivery(queue, redelivered, std::move(c));
        if (ch == con_ch_) buffered_.push_back(std::move(b));  // else: of a closed channel
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
    // ... and while publish_many waits: each confirm and returned message
    struct Confirm {
        std::uint64_t tag;
        bool multiple, ack;
    };
    struct Returned {
        std::string routing_key, body;
        std::uint16_t code;
        std::string text;
    };
    bool batching_ = false;
    std::vector<Confirm> batch_confirms_;
    std::vector<Returned> batch_returns_;

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
    Leases leases_{p_.lease};
    Keepalive keepalive_{mu_, p_.heartbeat_s};
};

}  // namespace

std::unique_ptr<Broker> make_amqp_broker(const Url& url, const BrokerCredentials& credentials) {
    return std::make_unique<AmqpBroker>(amqp_params(url, credentials));
}

}  // namespace apcloud
