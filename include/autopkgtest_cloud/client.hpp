/// @file client.hpp
/// Submitting test requests and waiting for their results (what
/// `apcloud submit` and gating scripts do).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "autopkgtest_cloud/broker.hpp"
#include "autopkgtest_cloud/events.hpp"
#include "autopkgtest_cloud/request.hpp"
#include "autopkgtest_cloud/store.hpp"

namespace apcloud {

/// Validates `request` and publishes it to the queue the routing rules
/// choose; returns that queue's name.
std::string submit_request(Broker& broker, const TestRequest& request, const std::string& release,
                           const std::string& arch, bool huge = false, const ValidationOptions& options = {});

/// Like submit_request, then waits up to `timeout` for the testcomplete
/// event of this request (same package, release, architecture and triggers;
/// subscribed before publishing, so it cannot be missed). nullopt on timeout.
std::optional<TestComplete> submit_and_wait(Broker& broker, const TestRequest& request,
                                            const std::string& release, const std::string& arch, bool huge,
                                            std::chrono::seconds timeout,
                                            const ValidationOptions& options = {});

/// Cancels the request with uuid `uuid` (queued or running) by writing its
/// cancel_marker into the control container, with `by` (who asked) and the
/// time: a worker that takes it acks it without running it, and one running
/// it stops the test at its next status tick, stores nothing and acks.
/// Whether `by` may cancel it is the caller's to decide.
void cancel_request(Store& store, const std::string& uuid, const std::string& by);

/// The uuids of every cancelled request (one listing of the control
/// container's `cancelled/`, all pages); empty when nothing was ever cancelled.
std::set<std::string> cancelled_requests(Store& store);

/// Who cancelled the request with uuid `uuid`, or nullopt when nobody did.
std::optional<std::string> cancelled_by(Store& store, const std::string& uuid);

/// The number of ready requests in each of `queues` (nullopt for a queue
/// that does not exist), in the given order.
std::vector<std::pair<std::string, std::optional<std::uint64_t>>> queue_depths(
    Broker& broker, const std::vector<std::string>& queues);

}  // namespace apcloud
