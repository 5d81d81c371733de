// Subscriptions to the AMQP broker's fanout exchanges (private header; no rabbitmq-c).
#pragma once

#include <memory>
#include <string>

#include "autopkgtest_cloud/broker.hpp"
#include "broker/amqp_params.hpp"

namespace apcloud::detail::amqp {

/// Subscribes to the fanout exchange `exchange`: an exclusive, auto-deleted,
/// server-named queue bound to it, on a connection of its own so that it can
/// be read from another thread than the broker's. After a lost connection it
/// subscribes again; events published in between are lost (fanout semantics:
/// they were for whoever listened at the time). Heartbeats are answered only
/// inside next(), so a reader that pauses longer than twice the heartbeat
/// interval loses its connection (and the events meanwhile) and resubscribes
/// on the next call.
std::unique_ptr<Subscription> make_amqp_subscription(const AmqpParams& p, const std::string& exchange);

}  // namespace apcloud::detail::amqp
