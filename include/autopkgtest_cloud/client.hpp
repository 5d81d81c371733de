/// @file client.hpp
/// Submitting test requests and waiting for their results (what
/// `apcloud submit` and gating scripts do).
#pragma once

#include <chrono>
#include <optional>
#include <string>

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
std::optional<TestComplete> submit_and_wait(Broker& broker, const TestRequest& request, const std::string& release,
                                            const std::string& arch, bool huge, std::chrono::seconds timeout,
                                            const ValidationOptions& options = {});

}  // namespace apcloud
