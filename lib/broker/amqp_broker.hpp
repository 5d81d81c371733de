// The AMQP 0-9-1 (RabbitMQ) broker via rabbitmq-c (private header; no rabbitmq-c header comes with it).
#pragma once

#include <memory>

#include "autopkgtest_cloud/broker.hpp"
#include "autopkgtest_cloud/credentials.hpp"
#include "autopkgtest_cloud/url.hpp"
#include "broker/amqp_params.hpp"  // AmqpParams, amqp_params()

namespace apcloud {

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
/// - publish_dead_letter: the same confirmed copy to `<queue>.dead`, without
///   an original to ack;
/// - peek_messages: on a channel opened for it, a passive declare (NotFound),
///   then basic.get without ack up to the limit (the reason and counts read
///   from the headers), then channel.close, which makes RabbitMQ requeue
///   them at their places, marked redelivered; messages unacked by consumers
///   are never handed to basic.get;
/// - bind_queue: the fanout exchange (durable but for teststatus) and a
///   durable queue without arguments, as the reference's web service
///   declares its own, bound to it; events are published persistent to
///   durable exchanges, so the queue keeps them across restarts;
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
///   reconnect. The attempt count travels in the header x-apcloud-attempt,
///   the lease a copy belongs to in x-apcloud-lease: a consumer that did not
///   renew within a lease (the broker was away longer) and settled the
///   request afterwards acks the expired copy when it is delivered back to
///   it, without handing it out; another consumer may still run it again;
/// - a background thread answers heartbeats while the caller is busy
///   elsewhere (a worker running a test while it holds its delivery).
std::unique_ptr<Broker> make_amqp_broker(const Url& url, const BrokerCredentials& credentials);

}  // namespace apcloud
