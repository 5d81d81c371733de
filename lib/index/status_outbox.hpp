// The commit statuses of pull and merge requests (SPEC.md 10), kept in
// SQLite so that none is lost when the web service restarts: the requests a
// webhook queued (tracked until their final status) and the statuses still
// to send (an outbox, retried with backoff). Thread-safe (private header).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "autopkgtest_cloud/webhooks.hpp"

namespace apcloud::web {

/// A request a webhook queued, until its final status.
struct TrackedRequest {
    std::string uuid;
    Forge forge = Forge::github;
    std::string project;       ///< the package whose credentials send its statuses
    std::uint64_t number = 0;  ///< PR number / MR iid
    std::string sha;           ///< the commit its statuses are for
    std::string statuses_url;  ///< recorded when the webhook was accepted
    std::string context;       ///< RELEASE/ARCH[ TESTNAME]
    std::int64_t queued_at = 0;
    bool started = false;  ///< seen running
};

/// A status to send.
struct StatusDelivery {
    std::int64_t id = 0;
    std::string uuid;
    Forge forge = Forge::github;
    std::string project;
    std::string url;
    std::string body;  ///< the JSON of status_body
    int attempts = 0;
};

class StatusOutbox {
public:
    /// Opens (creating) the database at `path`.
    explicit StatusOutbox(const std::string& path);
    ~StatusOutbox();
    StatusOutbox(const StatusOutbox&) = delete;
    StatusOutbox& operator=(const StatusOutbox&) = delete;

    /// Records `request` (tracked, and accepted for good) and queues its
    /// pending status (`body`), in one transaction.
    void track(const TrackedRequest& request, const std::string& body);
    /// Queues a status for a request that is not tracked (a refused one: its
    /// only status, an error).
    void send_once(Forge forge, const std::string& project, const std::string& url, const std::string& body);
    /// The final status of a tracked request: its unsent statuses are dropped
    /// (an older pending must not arrive after it), `body` queued, the
    /// request no longer tracked. False (nothing done) when it is not tracked
    /// (already final, or never).
    bool finish(const std::string& uuid, const std::string& body);
    /// Marks a tracked request as started (so the start timeout no longer applies).
    void mark_started(const std::string& uuid);
    /// A request a webhook queued, as accepted (kept after its final status,
    /// so a retry of its run goes to the statuses URL recorded then), or nullopt.
    std::optional<TrackedRequest> accepted(const std::string& uuid) const;
    /// Records an event of a pull or merge request that changed at
    /// `updated_at` (unix time), unless one of a later change was recorded:
    /// false then (a redelivered older event, which must not supersede the
    /// tests of the newer commits), true otherwise.
    bool note_event(Forge forge, const std::string& project, std::uint64_t number, std::int64_t updated_at);
    /// Every tracked request.
    std::vector<TrackedRequest> tracked() const;
    /// The tracked requests of one pull or merge request.
    std::vector<TrackedRequest> tracked_of(Forge forge, const std::string& project,
                                           std::uint64_t number) const;

    /// The statuses due at `now`, oldest first, at most one per request (so
    /// a request's statuses arrive in order).
    std::vector<StatusDelivery> due(std::int64_t now, std::size_t limit = 50) const;
    /// The earliest time a status is due, or nullopt when none waits.
    std::optional<std::int64_t> next_due() const;
    /// Sent: removed.
    void delivered(std::int64_t id);
    /// Not sent: tried again at `next_at`; `error` kept for the operator.
    void retry_at(std::int64_t id, std::int64_t next_at, const std::string& error);
    /// Refused for good (4xx): removed, with the reason logged by the caller.
    void drop(std::int64_t id);
    /// Statuses waiting (for /metrics and tests).
    std::size_t waiting() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace apcloud::web
