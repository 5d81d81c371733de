// GitHub and GitLab webhooks (SPEC.md section 10): a signed event queues a
// pull/merge request's tests through the request API, and their commit
// statuses go back through a durable outbox: pending when queued, the final
// state when the result is indexed, error when refused, superseded, closed
// or not started in time (private header).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "autopkgtest_cloud/web.hpp"
#include "autopkgtest_cloud/webhooks.hpp"
#include "http/http_server.hpp"
#include "index/status_outbox.hpp"
#include "web/requests.hpp"

namespace apcloud::http {
class HttpClient;
}

namespace apcloud::web {

class RunningTests;

/// The projects and the forges' APIs.
struct WebhookSettings {
    std::map<std::string, ForgeProject> github, gitlab;  ///< by package
    std::string github_api, gitlab_api;                  ///< statuses URLs must be under these
    std::string public_url;                              ///< the run pages' base, for target_url
    int start_timeout = 21600;
    bool cancel_running = false;
    int status_attempts = 200;  ///< tries before a status is dropped
};

/// The settings of web.conf's [webhooks]: the projects file and the
/// reference's github-secrets.json and github-status-credentials.txt, each
/// refused (ConfigError) when others than its owner may read it.
WebhookSettings load_webhook_settings(const WebConfig& config);

class WebhookApi {
public:
    /// `wake` is called when a status was queued (the sender sends it at once).
    WebhookApi(const RequestApi& requests, const ResultsIndex& index, StatusOutbox& outbox,
               WebhookSettings settings, std::function<void()> wake = {});

    /// A webhook: a POST with an X-GitHub-Event or X-Gitlab-Event header.
    static bool is_webhook(const http::ServerRequest& request);

    /// `POST /request.cgi?release=..&arch=..&package=..` from GitHub or
    /// GitLab: 403 for a bad or missing signature (nothing queued), 200 for
    /// ping and irrelevant events, and for pull requests what was queued,
    /// cancelled or refused (each refusal an error status on the PR).
    RequestAnswer handle(const http::ServerRequest& request) const;

    /// `GET /api/v1/retry/RUN_ID` for a run a webhook queued: the same
    /// request again, for a user (API key) the access file allows the package,
    /// with its statuses tracked to the statuses URL recorded when the webhook
    /// was accepted (not the one in the run's env): the self-service retry of
    /// a pull request's test, without the project's secret. nullopt when the
    /// run is not a webhook's (RequestApi::retry answers then).
    std::optional<RequestAnswer> retry_run(const http::ServerRequest& request,
                                           const std::string& run_id) const;

    /// Final statuses for the tracked requests whose result is indexed,
    /// errors for those not started within start_timeout; marks the running
    /// ones started. Returns how many were finished.
    /// `dead_lettered`: the requests of the upstream queues' dead-letter
    /// queues (uuid to reason), which end at once in an error with the reason.
    std::size_t sweep(const ResultsIndex& index, const RunningTests& running, std::int64_t now,
                      const std::map<std::string, std::string>& dead_lettered = {}) const;

    /// Sends the statuses due at `now` (retrying later on network errors,
    /// 5xx and 429, as Retry-After and the rate-limit headers say; dropping
    /// those refused with another 4xx). Returns how many were sent.
    std::size_t deliver(http::HttpClient& client, std::int64_t now) const;

    const WebhookSettings& settings() const noexcept { return settings_; }

private:
    /// A failed try: again at `at`, or dropped (logged) after status_attempts tries.
    void retry_or_give_up(const StatusDelivery& delivery, std::int64_t at, const std::string& why) const;
    RequestAnswer pull_request(const http::ServerRequest& request, const PullRequestEvent& event,
                               const ForgeProject& project) const;
    void close(const PullRequestEvent& event, const ForgeProject& project, const std::string& why,
               bool running_too) const;
    std::string run_url(const std::string& uuid) const;

    /// Queues `wanted` for `requester` and tracks its statuses as `like` (its
    /// PR, commit and statuses URL); the answer of submit_webhook.
    RequestAnswer queue_tracked(const std::string& requester, RequestApi::Wanted wanted,
                                const TrackedRequest& like, const std::string& why) const;

    const RequestApi& requests_;
    const ResultsIndex& index_;
    StatusOutbox& outbox_;
    WebhookSettings settings_;
    std::function<void()> wake_;
};

}  // namespace apcloud::web
