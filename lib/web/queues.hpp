// Queued requests as read from the broker (SPEC.md sections 2 and 7): a snapshot per
// poll, and the reference's queues.json, queued.json and queue_size.json (private header).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "autopkgtest_cloud/routing.hpp"

namespace apcloud::web {

/// One waiting request.
struct QueuedRequest {
    std::string queue;
    QueueName name;
    std::size_t position = 0;  ///< 1 = next to run
    std::string body;          ///< the message, or "private job"
    bool is_private = false;
    std::optional<std::string> package, uuid, requester;
    std::vector<std::string> triggers;
};

/// What the queues held at one moment.
struct QueueSnapshot {
    std::vector<std::string> releases, arches;
    std::vector<std::string> queues;             ///< every queue looked at, in queue_names order
    std::map<std::string, std::uint64_t> sizes;  ///< ready messages per queue
    std::vector<QueuedRequest> requests;         ///< the ones read (each queue's first N)
    std::int64_t taken_at = 0;                   ///< unix seconds

    /// Builds a snapshot from each queue's size and first bodies. Requests
    /// whose uuid is in `cancelled` are left out, and out of the sizes: the
    /// workers drop them unrun, so they neither wait nor delay the others.
    static QueueSnapshot make(const std::vector<std::string>& releases,
                              const std::vector<std::string>& arches,
                              const std::map<std::string, std::uint64_t>& sizes,
                              const std::map<std::string, std::vector<std::string>>& bodies,
                              std::int64_t now, const std::set<std::string>& cancelled = {});
};

/// The reference's context names: "ubuntu" for plain queues, else huge, ppa, upstream.
std::string reference_context(QueueContext context);

/// `/queues.json`: {context: {release: {arch: [request strings]}}}.
nlohmann::json queues_json(const QueueSnapshot& snapshot);
/// `/queued.json`: {"releases", "arches", "queues": {context: {release: {arch: {"size", "requests"}}}}}.
nlohmann::json queued_json(const QueueSnapshot& snapshot);
/// `/queue_size.json`: {context: {release: {arch: N}}}.
nlohmann::json queue_size_json(const QueueSnapshot& snapshot);

}  // namespace apcloud::web
