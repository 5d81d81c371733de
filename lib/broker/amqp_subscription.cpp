// Subscriptions to the AMQP broker's fanout exchanges: a private queue each, set up again after a loss.
#include "broker/amqp_subscription.hpp"

#include <fmt/format.h>

#include <optional>
#include <utility>

#include "broker/amqp_connection.hpp"
#include "core/logging.hpp"

namespace apcloud::detail::amqp {

namespace {

using std::chrono::milliseconds;

const Logger logger("amqp");

class AmqpSubscription final : public Subscription {
public:
    AmqpSubscription(const AmqpParams& p, std::string exchange) : p_(p), exchange_(std::move(exchange)) {
        check_name(exchange_, "exchange");
        setup(false);
    }

    std::optional<std::string> next(milliseconds timeout) override {
        auto deadline = Clock::now() + timeout;
        for (int losses = 0;;) {
            try {
                if (!conn_) setup(true);
                while (true) {
                    amqp_frame_t frame;
                    if (!conn_->wait_frame(frame, deadline)) return std::nullopt;
                    if (auto event = dispatch(frame)) return event;
                }
            } catch (const ConnectionLost& e) {
                conn_.reset();
                const std::string why = e.what();
                logger.warn("{}", why.rfind(subscription(), 0) == 0
                                      ? why
                                      : fmt::format("{}: {}", subscription(), why));
                if (++losses > kMaxConnectionLosses)
                    throw BrokerError(fmt::format("{}: {}", subscription(), e.what()));
            }
        }
    }

private:
    // Connects, declares the exchange and a private queue bound to it, and
    // consumes from that queue.
    void setup(bool reconnect) {
        conn_.reset();
        auto c = connect_with_backoff(p_, reconnect);
        std::string what = fmt::format("subscribing to {}", quote_for_message(exchange_));
        const amqp_channel_t ch = c->open_new_channel();
        declare_fanout(*c, ch, exchange_);
        auto* q = amqp_queue_declare(c->get(), ch, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
        c->check_reply(ch, fmt::format("{}: declaring its queue", what));
        std::string queue = bytes_to_string(q->queue);
        amqp_queue_bind(c->get(), ch, as_bytes(queue), as_bytes(exchange_), amqp_empty_bytes,
                        amqp_empty_table);
        c->check_reply(ch, fmt::format("{}: binding {}", what, quote_for_message(queue)));
        // no_ack: an event is worth nothing once it is late, and the queue is ours alone.
        amqp_basic_consume(c->get(), ch, as_bytes(queue), amqp_empty_bytes, 0, 1, 1, amqp_empty_table);
        c->check_reply(ch, fmt::format("{}: consuming {}", what, quote_for_message(queue)));
        amqp_maybe_release_buffers(c->get());
        conn_ = std::move(c);
    }

    std::optional<std::string> dispatch(amqp_frame_t& frame) {
        std::optional<std::string> event;
        if (frame.frame_type == AMQP_FRAME_METHOD) {
            switch (frame.payload.method.id) {
                case AMQP_BASIC_DELIVER_METHOD:
                    event =
                        read_content(*conn_, frame.channel,
                                     fmt::format("reading an event from {}", quote_for_message(exchange_)))
                            .body;
                    break;
                case AMQP_CHANNEL_CLOSE_METHOD: {
                    auto c = conn_->on_channel_close(frame.channel, frame.payload.method);
                    conn_->lost(subscription(), fmt::format("channel closed: {} {}", c.code, c.text));
                }
                case AMQP_CONNECTION_CLOSE_METHOD:
                    conn_->on_connection_close(frame.payload.method, subscription());
                default:
                    break;
            }
        }
        amqp_maybe_release_buffers_on_channel(conn_->get(), frame.channel);
        return event;
    }

    std::string subscription() const {
        return fmt::format("subscription to {}", quote_for_message(exchange_));
    }

    AmqpParams p_;
    std::string exchange_;
    std::unique_ptr<AmqpConnection> conn_;
};

}  // namespace

std::unique_ptr<Subscription> make_amqp_subscription(const AmqpParams& p, const std::string& exchange) {
    return std::make_unique<AmqpSubscription>(p, exchange);
}

}  // namespace apcloud::detail::amqp
