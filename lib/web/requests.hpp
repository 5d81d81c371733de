// The request API (SPEC.md section 7): /request.cgi, POST /api/v1/test and
// GET /api/v1/retry/RUN_ID. Authenticates (API keys, a trusted proxy's user
// header), authorizes (the access file), refuses identical requests already
// queued, running or just sent (409), limits each user's rate (429), and
// publishes what passes (private header).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "autopkgtest_cloud/access.hpp"
#include "autopkgtest_cloud/broker.hpp"
#include "autopkgtest_cloud/results_index.hpp"
#include "autopkgtest_cloud/store.hpp"
#include "http/http_server.hpp"

namespace apcloud::web {

class RunningTests;
class WebState;

/// Settings of the request API.
struct RequestSettings {
    std::vector<std::string> releases, arches;  ///< what may be requested
    std::string keys_file;                      ///< API key digests (apcloud keys)
    std::string access_file;                    ///< authorization rules; none: nobody may request
    std::string trusted_user_header;            ///< e.g. X-Remote-User, set by an authenticating proxy
    std::vector<std::string> trusted_proxies;   ///< peers whose user header is believed
    int requests_per_minute = 60;               ///< per user; 0: no limit
    int burst = 100;                            ///< requests a user may send at once
    bool allow_local_sources = false;           ///< local build-git/test-git (a one-machine site)
    bool supersede = false;                     ///< a newer upload's request cancels the older queued ones
};

/// The outcome of one call: the HTTP status and what to show.
struct RequestAnswer {
    int status = 200;
    nlohmann::json body;                         ///< {"requests": [...]} or {"error": ..., ...}
    std::map<std::string, std::string> headers;  ///< e.g. Retry-After, WWW-Authenticate
};

/// The request API over a broker and the service's views.
class RequestApi {
public:
    /// `open_broker` connects to the broker requests are published to; it is
    /// called again after the connection failed.
    /// `store` (where cancellations are written) may be null: cancel is then 503.
    RequestApi(std::function<std::unique_ptr<Broker>()> open_broker, const ResultsIndex& index,
               const RunningTests& running, const WebState& state, RequestSettings settings,
               Store* store = nullptr);

    /// `/request.cgi?release=..&arch=..&package=..&trigger=..`: one request per arch.
    RequestAnswer request_cgi(const http::ServerRequest& request) const;
    /// True for a browser's navigation (`Sec-Fetch-Mode: navigate`, or an
    /// Accept header asking for HTML): a GET request.cgi from a browser is
    /// never acted on directly, since another site can make the browser send
    /// it with the user's cookie (cross-site request forgery). Programs
    /// (curl, britney) are not browsers and keep the reference's direct GET.
    static bool is_browser_navigation(const http::ServerRequest& request);
    /// request.cgi from a browser: every check of request_cgi (authentication,
    /// validation, authorization, identical requests pending), nothing
    /// queued; the answer, {"confirm": {"requests", "existing", "action",
    /// "query", "csrf"}}, is shown as a page whose button POSTs the query
    /// back to the action.
    RequestAnswer confirm_cgi(const http::ServerRequest& request) const;
    /// `POST /request.cgi` from that page (form fields `query` and `csrf`):
    /// the token must be the one confirm_cgi gave this user for this query
    /// (an HMAC under a secret of this process), else 403 and nothing queued.
    RequestAnswer confirmed_cgi(const http::ServerRequest& request) const;
    /// `POST /api/v1/test`: a JSON object or a list of them, each
    /// {"package", "release", "arch" (string or list), "triggers", "ppas", "env",
    /// "all-proposed", "build-git", "test-git", "testname", "readable-by"}.
    RequestAnswer post_test(const http::ServerRequest& request) const;
    /// `GET /api/v1/retry/RUN_ID`: the same request as that run's, again.
    RequestAnswer retry(const http::ServerRequest& request, const std::string& run_id) const;
    /// `GET /api/v1/retry/RUN_ID` from a browser (is_browser_navigation):
    /// acted on only once confirmed, as request.cgi is. Authentication and
    /// authorization checked, the run's request and any identical one
    /// pending shown; the page's button POSTs to retry_action(run_id).
    RequestAnswer confirm_retry(const http::ServerRequest& request, const std::string& run_id) const;
    /// `POST /api/v1/retry/RUN_ID` from that page (form fields `query`, empty,
    /// and `csrf`): nullopt when the token is the one confirm_retry gave this
    /// user for this run (the retry is then done as the GET is); else the
    /// refusal (401, 403; ValidationError for a body without the fields).
    std::optional<RequestAnswer> refuse_retry_confirmation(const http::ServerRequest& request,
                                                           const std::string& run_id) const;
    /// Where a run's retry is confirmed: `/api/v1/retry/RUN_ID`.
    static std::string retry_action(const std::string& run_id);

    /// `POST /api/v1/cancel/UUID`: cancels that queued or running request
    /// (cancel_request) for its requester or an admin: 200
    /// {"cancelled": {"uuid", "state", "package", "release", "arch", "by"}};
    /// 401 unauthenticated, 403 someone else's, 404 when no queued or running
    /// request has that uuid.
    RequestAnswer cancel(const http::ServerRequest& request, const std::string& uuid) const;

    /// The authenticated user of a request, or nullopt.
    std::optional<std::string> authenticate(const http::ServerRequest& request) const;

    /// One request for one release and arch.
    struct Wanted {
        TestRequest request;
        std::string release, arch;
    };
    /// The requests of request.cgi's query parameters (SPEC.md 7), one per
    /// arch; ValidationError naming an unknown or missing parameter.
    std::vector<Wanted> cgi_wanted(const http::ServerRequest& request) const;
    /// Queues requests a webhook made (its signature is their authority):
    /// `requester` set, validated with the webhook env allowed, refused with
    /// 409 when identical ones are pending (a redelivered webhook), published
    /// as submit does. Unknown releases and arches are NotFound.
    RequestAnswer submit_webhook(const std::string& requester, std::vector<Wanted> wanted) const;
    /// Whether `user` may request `request` (the access file's rules).
    AccessDecision may_request(const std::string& user, const TestRequest& request) const;
    /// Cancels request `uuid` when it is queued (or running, with
    /// `running_too`), recording `by`; true when it was.
    bool cancel_pending(const std::string& uuid, const std::string& by, bool running_too) const;

private:
    /// `confirm_only`: stop before the rate limit and the queue (confirm_cgi).
    RequestAnswer submit(const http::ServerRequest& http_request, std::vector<Wanted> wanted,
                         bool confirm_only = false) const;
    /// The confirmation's token: an HMAC of user, action and query under a secret of this process.
    std::string csrf_token(const std::string& user, const std::string& action,
                           const std::string& query) const;
    /// {"confirm": {...}} of confirm_cgi and confirm_retry.
    nlohmann::json confirmation(const std::string& user, const std::vector<Wanted>& wanted,
                                const std::string& action, const std::string& query) const;
    /// A confirmation POSTed to `action`: nullopt when its token is right (`query` set to the
    /// confirmed query), else the refusal.
    std::optional<RequestAnswer> refuse_confirmation(const http::ServerRequest& request,
                                                     const std::string& action, std::string& query) const;
    /// The run a retry names: ValidationError for a malformed run id, NotFound.
    IndexedRecord run_to_retry(const std::string& run_id) const;
    std::optional<RequestAnswer> refuse_duplicates(const std::vector<Wanted>& wanted) const;
    /// Releases and arches configured, then validate(); throws.
    void check_wanted(std::vector<Wanted>& wanted, const std::string& requester,
                      const ValidationOptions& options) const;
    /// Publishes `wanted` (already checked): {"requests": [...]}, or 503 with what was queued.
    RequestAnswer publish(const std::string& requester, const std::string& rule,
                          const std::vector<Wanted>& wanted, const ValidationOptions& options) const;
    bool take_tokens(const std::string& user, std::size_t n, double& retry_after) const;
    void reload() const;
    ValidationOptions validation() const;

    std::function<std::unique_ptr<Broker>()> open_broker_;
    mutable std::unique_ptr<Broker> broker_;  ///< under mutex_
    const ResultsIndex& index_;
    const RunningTests& running_;
    const WebState& state_;
    RequestSettings settings_;
    Store* store_;
    const std::string csrf_secret_;  ///< random per process: a restart voids unanswered confirmations

    mutable std::mutex mutex_;
    mutable std::vector<ApiKeyRecord> keys_;
    mutable AccessPolicy policy_;
    mutable std::int64_t keys_mtime_ = -1, access_mtime_ = -1;
    struct Bucket {
        double tokens = 0;
        std::chrono::steady_clock::time_point at;
    };
    mutable std::map<std::string, Bucket> buckets_;
    struct Sent {
        std::string uuid, queue;
        std::int64_t at = 0;
        TestRequest request;  ///< as sent (stamped)
        std::string release, arch;
    };
    /// A request queued (or just sent) or running, as the views show it.
    struct Pending {
        TestRequest request;
        std::string state, release, arch;
        std::string queue;                      ///< queued ones
        std::optional<std::uint64_t> position;  ///< in the queue view
        bool hidden = false;                    ///< a private job in the queue view
        bool just_sent = false;                 ///< sent by this service, not in the queue view yet
    };
    /// Every queued, just sent and running request (private ones too); a
    /// just sent one is forgotten once the queue view shows it, its result
    /// is indexed, or after ten minutes.
    std::vector<Pending> pending_requests() const;
    /// Marks request `uuid` cancelled in the store by `by`, and forgets it
    /// as just sent (so it is neither a duplicate nor cancelled twice).
    void cancel_and_forget(const std::string& uuid, const std::string& by) const;
    /// Cancels the queued requests `sent` supersedes (RequestSettings::supersede); their uuids.
    std::vector<std::string> supersede(const TestRequest& sent, const std::string& release,
                                       const std::string& arch) const;
    mutable std::map<std::string, Sent> sent_;  ///< identity -> just sent, until the queues show it
};

}  // namespace apcloud::web
