/// @file client.hpp
/// Submitting test requests and waiting for their results (what
/// `apcloud submit` and gating scripts do).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "autopkgtest_cloud/broker.hpp"
#include "autopkgtest_cloud/events.hpp"
#include "autopkgtest_cloud/request.hpp"

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

/// The number of ready requests in each of `queues` (nullopt for a queue
/// that does not exist), in the given order.
std::vector<std::pair<std::string, std::optional<std::uint64_t>>> queue_depths(
    Broker& broker, const std::vector<std::string>& queues);

}  // namespace apcloud
