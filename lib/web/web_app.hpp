// The web service's request handling: routes to pure handlers over the index, the
// running and queued views and the store (private header). Tests call handle() directly.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "autopkgtest_cloud/results_index.hpp"
#include "autopkgtest_cloud/store.hpp"
#include "http/http_server.hpp"
#include "web/queues.hpp"
#include "web/running.hpp"

namespace apcloud::web {

/// The published results database of the moment.
struct Publication {
    std::string path;    ///< the snapshot file
    std::string sha256;  ///< lowercase hex of it
    std::int64_t published_at = 0;
    std::uint64_t bytes = 0;
};

/// Request counts and timings per route, and ingest counters, for /metrics.
class Metrics {
public:
    void observe_request(const std::string& route, int status, double seconds);
    void observe_ingest(std::size_t added, double lag_seconds);
    /// Prometheus text format (version 0.0.4) of the counters plus `gauges` given by the caller.
    std::string render(const std::vector<std::pair<std::string, double>>& gauges) const;

private:
    struct RouteStats {
        std::map<int, std::uint64_t> by_status;
        std::vector<std::uint64_t> buckets = std::vector<std::uint64_t>(buckets_le.size(), 0);
        double sum = 0;
        std::uint64_t count = 0;
    };
    static inline const std::vector<double> buckets_le = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};
    mutable std::mutex mutex_;
    std::map<std::string, RouteStats> routes_;
    std::uint64_t ingested_ = 0;
    double last_lag_ = 0;
};

/// What the background parts of the service publish for the handlers, swapped atomically.
class WebState {
public:
    void set_queues(std::shared_ptr<const QueueSnapshot> q);
    std::shared_ptr<const QueueSnapshot> queues() const;
    void set_publication(std::shared_ptr<const Publication> p);
    std::shared_ptr<const Publication> publication() const;
    void set_statistics(std::shared_ptr<const std::vector<ReleaseArchStats>> s);
    std::shared_ptr<const std::vector<ReleaseArchStats>> statistics() const;

private:
    mutable std::mutex mutex_;
    std::shared_ptr<const QueueSnapshot> queues_;
    std::shared_ptr<const Publication> publication_;
    std::shared_ptr<const std::vector<ReleaseArchStats>> statistics_;
};

/// Fixed settings of the handlers.
struct WebSettings {
    std::vector<std::string> releases, arches;
    std::size_t max_page = 1000;  ///< largest page any listing returns
    std::string openapi_path;     ///< the OpenAPI document served at /api/v1/openapi.yaml
    /// The pages' files: `templates/*.mustache` and `static/` (served at
    /// /static/apcloud/); empty: no pages, only the data side.
    std::string share_dir;
    std::string banner_file;                         ///< an operator message shown on every page, if set
    std::string vendor_dir = "/usr/share/javascript";  ///< Debian's libjs-bootstrap5 and libjs-chart.js
    std::chrono::seconds status_interval{10};
};

/// Routes a request to its handler. Thread-safe; never throws (errors are answers).
class Pages;
class RequestApi;
class WebhookApi;
struct RequestAnswer;

class WebApp {
public:
    WebApp(const ResultsIndex& index, const RunningTests& running, const WebState& state, Store* store,
           WebSettings settings, Metrics* metrics = nullptr, const RequestApi* requests = nullptr,
           const WebhookApi* webhooks = nullptr);
    ~WebApp();

    /// Answers one request.
    http::ServerResponse handle(const http::ServerRequest& request) const;

private:
    http::ServerResponse route(const http::ServerRequest& request, std::string& route_name) const;
    /// An error as a page for page routes, as JSON for the rest.
    http::ServerResponse error_answer(const std::string& route_name, int status, const std::string& message) const;
    http::ServerResponse api(const http::ServerRequest& request, const std::vector<std::string>& segments,
                             std::string& route_name) const;
    http::ServerResponse package_api(const http::ServerRequest& request,
                                     const std::vector<std::string>& segments) const;
    http::ServerResponse results(const http::ServerRequest& request,
                                 const std::vector<std::string>& segments) const;
    http::ServerResponse published(const std::string& what) const;
    http::ServerResponse queues_view(const std::string& which) const;
    http::ServerResponse user_api(const std::string& user) const;
    http::ServerResponse queued_api() const;
    http::ServerResponse feed_api(const http::ServerRequest& request) const;
    http::ServerResponse recent_api(const http::ServerRequest& request, bool reference_shape) const;
    http::ServerResponse metrics() const;
    http::ServerResponse request_route(const http::ServerRequest& request, const std::vector<std::string>& segments,
                                       std::string& route_name) const;
    http::ServerResponse answer(const RequestAnswer& a, bool page) const;

    const ResultsIndex& index_;
    const RunningTests& running_;
    const WebState& state_;
    Store* store_;
    WebSettings settings_;
    Metrics* metrics_;
    std::unique_ptr<const Pages> pages_;
    const RequestApi* requests_;
    const WebhookApi* webhooks_;
};

/// A JSON answer (`application/json`), pretty-printed when `pretty`.
http::ServerResponse json_response(int status, const nlohmann::json& body, bool pretty = false);

/// An error answer in JSON: {"error": message, "status": status}.
http::ServerResponse error_response(int status, const std::string& message);

/// Applies conditional GET: sets a strong ETag (MD5 of the body) when the
/// response has none, and turns a 200 into 304 when If-None-Match matches.
void apply_conditional(const http::ServerRequest& request, http::ServerResponse& response);

/// Query parameter `name` as a whole number in [min, max]; nullopt when
/// absent. Throws ValidationError naming it otherwise.
std::optional<std::int64_t> number_param(const http::ServerRequest& request, const char* name, std::int64_t min,
                                         std::int64_t max);

/// The filters of recent results from the request (the reference's
/// recent.json parameters: limit, offset, release, arch, user, result,
/// package); throws ValidationError naming a bad one.
RecentQuery recent_query(const http::ServerRequest& request, std::size_t max_page);

/// The outcomes a filter may name, in the order pages list them.
const std::vector<std::string>& outcome_names();

/// Who is asking (the viewer private results are filtered for).
Viewer viewer_of(const http::ServerRequest& request);

/// The package routes' segments after `packages` taken apart: [PREFIX/]PACKAGE[/RELEASE/ARCH[/RUN_ID]].
struct PackagePath {
    std::string package;
    std::optional<std::string> release, arch, run_id;
};

/// Parses them; throws NotFound for another shape, ValidationError for an invalid name.
PackagePath parse_package_path(std::vector<std::string> rest);

/// When a queued request may start: the runs ahead of it at the recent mean
/// duration of its release/arch, shared by the workers seen running there.
std::optional<std::int64_t> estimated_start(const ResultsIndex& index, const RunningTests& running,
                                            const QueuedRequest& request);

/// The path split into decoded segments ("/a/b%2Fc/" -> {"a", "b/c"}).
std::vector<std::string> path_segments(const std::string& raw_path);

}  // namespace apcloud::web
