// The embedded SQLite broker (private header).
#pragma once

#include <memory>

#include "autopkgtest_cloud/broker.hpp"
#include "autopkgtest_cloud/url.hpp"

namespace apcloud {

/// Opens the embedded broker whose state is the SQLite file `url.path`
/// (created if missing; its directory must exist). Any number of processes may
/// open the same file. Query options:
/// - `lease=<seconds>` (default 300, fractions allowed): how long a delivery
///   stays owned by a consumer that stopped renewing it, i.e. how soon the
///   message of a dead consumer is delivered again. A live Broker renews the
///   lease of the delivery it holds every lease/3 from a background thread,
///   so tests longer than the lease are fine. Subscribers of fanout exchanges
///   whose process died are dropped after the same time.
/// - `synchronous=publish|full|normal` (default publish): with `publish`,
///   publish, dead_letter, declare_queue, bind_queue and publish_event to an
///   exchange with bound queues return once synced to disk (a published
///   message survives a power cut), while leases, acks and other events are
///   not synced (a power cut may deliver a message again, never lose one);
///   `full` syncs every commit; `normal` none (safe against process crashes
///   only, and much faster: no fsync per message).
/// - `busy_timeout=<milliseconds>` (default 30000): how long an operation
///   waits for another process's write before failing with BrokerError.
/// A Broker object must not be used across fork(); open a new one in the child.
/// Throws ConfigError for an unknown or invalid option, BrokerError when the
/// file cannot be opened.
std::unique_ptr<Broker> make_embedded_broker(const Url& url);

}  // namespace apcloud
