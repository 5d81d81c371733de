// Routing and the handlers of the data side: the JSON API, the reference's JSON files,
// the published database, the store's objects and /metrics.
#include "web/web_app.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <nlohmann/json.hpp>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/file_io.hpp"
#include "autopkgtest_cloud/layout.hpp"
#include "autopkgtest_cloud/request.hpp"
#include "autopkgtest_cloud/routing.hpp"
#include "core/digest.hpp"
#include "core/logging.hpp"
#include "core/time_text.hpp"
#include "web/json_views.hpp"
#include "web/pages.hpp"
#include "web/requests.hpp"
#include "web/webhooks.hpp"

namespace apcloud::web {

using http::ServerRequest;
using http::ServerResponse;
using nlohmann::json;

namespace {

const detail::Logger logger("web");

}  // namespace

std::optional<std::int64_t> number_param(const ServerRequest& r, const char* name, std::int64_t min,
                                         std::int64_t max) {
    auto v = r.param(name);
    if (!v) return std::nullopt;
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc() || end != v->data() + v->size() || n < min || n > max)
        throw ValidationError(name, *v, fmt::format("must be a whole number from {} to {}", min, max));
    return n;
}

// Authentication arrives with the request API; until then, everyone is anonymous.
Viewer viewer_of(const ServerRequest&) {
    return Viewer{};
}

// ---- Metrics ----

void Metrics::observe_request(const std::string& route, int status, double seconds) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& r = routes_[route];
    ++r.by_status[status];
    for (std::size_t i = 0; i < buckets_le.size(); ++i)
        if (seconds <= buckets_le[i]) ++r.buckets[i];
    r.sum += seconds;
    ++r.count;
}

void Metrics::observe_ingest(std::size_t added, double lag_seconds) {
    std::lock_guard<std::mutex> lock(mutex_);
    ingested_ += added;
    last_lag_ = lag_seconds;
}

std::string Metrics::render(const std::vector<std::pair<std::string, double>>& gauges) const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string out;
    out +=
        "# HELP apcloud_http_requests_total HTTP requests answered, by route and status.\n"
        "# TYPE apcloud_http_requests_total counter\n";
    for (const auto& [route, r] : routes_)
        for (const auto& [status, n] : r.by_status)
            out += fmt::format("apcloud_http_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", route,
                               status, n);
    out +=
        "# HELP apcloud_http_request_duration_seconds Time to answer, by route.\n"
        "# TYPE apcloud_http_request_duration_seconds histogram\n";
    for (const auto& [route, r] : routes_) {
        for (std::size_t i = 0; i < buckets_le.size(); ++i)
            out += fmt::format("apcloud_http_request_duration_seconds_bucket{{route=\"{}\",le=\"{}\"}} {}\n",
                               route, buckets_le[i], r.buckets[i]);
        out += fmt::format("apcloud_http_request_duration_seconds_bucket{{route=\"{}\",le=\"+Inf\"}} {}\n",
                           route, r.count);
        out += fmt::format("apcloud_http_request_duration_seconds_sum{{route=\"{}\"}} {}\n", route, r.sum);
        out +=
            fmt::format("apcloud_http_request_duration_seconds_count{{route=\"{}\"}} {}\n", route, r.count);
    }
    out +=
        "# HELP apcloud_results_ingested_total Results added to the index by this process.\n"
        "# TYPE apcloud_results_ingested_total counter\n";
    out += fmt::format("apcloud_results_ingested_total {}\n", ingested_);
    out +=
        "# HELP apcloud_ingest_lag_seconds From a run's end to its result in the index, for the last one.\n"
        "# TYPE apcloud_ingest_lag_seconds gauge\n";
    out += fmt::format("apcloud_ingest_lag_seconds {}\n", last_lag_);
    for (const auto& [name, value] : gauges) out += fmt::format("{} {}\n", name, value);
    return out;
}

// ---- WebState ----

void WebState::set_queues(std::shared_ptr<const QueueSnapshot> q) {
    std::lock_guard<std::mutex> lock(mutex_);
    queues_ = std::move(q);
}
std::shared_ptr<const QueueSnapshot> WebState::queues() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return queues_;
}
void WebState::set_publication(std::shared_ptr<const Publication> p) {
    std::lock_guard<std::mutex> lock(mutex_);
    publication_ = std::move(p);
}
std::shared_ptr<const Publication> WebState::publication() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return publication_;
}
void WebState::set_statistics(std::shared_ptr<const std::vector<ReleaseArchStats>> s) {
    std::lock_guard<std::mutex> lock(mutex_);
    statistics_ = std::move(s);
}
std::shared_ptr<const std::vector<ReleaseArchStats>> WebState::statistics() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return statistics_;
}

// ---- helpers ----

ServerResponse json_response(int status, const json& body, bool pretty) {
    return ServerResponse::text(status,
                                body.dump(pretty ? 2 : -1, ' ', false, json::error_handler_t::replace) + "\n",
                                "application/json");
}

ServerResponse error_response(int status, const std::string& message) {
    return json_response(status, {{"error", message}, {"status", status}});
}

void apply_conditional(const ServerRequest& request, ServerResponse& response) {
    if (response.status != 200) return;
    if (!response.headers.count("ETag") && response.file.empty() && !response.producer)
        // SHA-1, not MD5: with the CPU's SHA instructions it hashes a 100 kB page 2.6 times
        // faster (openssl speed), and a validator needs no more.
        response.headers["ETag"] = "\"" + detail::hex_digest("sha1", response.body) + "\"";
    auto tag = response.headers.find("ETag");
    auto match = request.header("If-None-Match");
    if (tag == response.headers.end() || !match) return;
    if (*match == "*" || match->find(tag->second) != std::string::npos) {
        response.status = 304;
        response.body.clear();
        response.file.clear();
        response.producer = nullptr;
        response.headers.erase("Content-Type");
    }
}

std::vector<std::string> path_segments(const std::string& raw_path) {
    std::vector<std::string> out;
    std::string_view p = raw_path;
    while (!p.empty()) {
        auto slash = p.find('/');
        auto seg = p.substr(0, slash);
        if (!seg.empty()) out.push_back(percent_decode(seg));
        p = slash == std::string_view::npos ? std::string_view() : p.substr(slash + 1);
    }
    return out;
}

// ---- WebApp ----

WebApp::WebApp(const ResultsIndex& index, const RunningTests& running, const WebState& state, Store* store,
               WebSettings settings, Metrics* metrics, const RequestApi* requests, const WebhookApi* webhooks)
    : index_(index),
      running_(running),
      state_(state),
      store_(store),
      settings_(std::move(settings)),
      metrics_(metrics),
      requests_(requests),
      webhooks_(webhooks) {
    if (!settings_.share_dir.empty())
        pages_ = std::make_unique<const Pages>(index_, running_, state_, store_, settings_);
}

WebApp::~WebApp() = default;

namespace {

// Routes whose errors are JSON: everything for programs. The rest are pages, with HTML errors.
bool is_data_route(const std::string& route_name) {
    return route_name.rfind("page", 0) != 0;
}

}  // namespace

ServerResponse WebApp::handle(const ServerRequest& request) const {
    const auto started = std::chrono::steady_clock::now();
    std::string route_name = "other";
    ServerResponse response;
    try {
        response = route(request, route_name);
    } catch (const ValidationError& e) {
        response = error_answer(route_name, 400, e.what());
    } catch (const ParseError& e) {
        response = error_answer(route_name, 400, e.what());
    } catch (const ConfigError& e) {  // a malformed escape in the path
        response = error_answer(route_name, 400, e.what());
    } catch (const NotFound& e) {
        response = error_answer(route_name, 404, e.what());
    } catch (const std::exception& e) {
        logger.error("{} {}: {}", request.method, request.target, e.what());
        response = error_answer(route_name, 500, "internal error");  // never a traceback
    }
    if (request.method == "GET" || request.method == "HEAD") apply_conditional(request, response);
    if (metrics_)
        metrics_->observe_request(
            route_name, response.status,
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    return response;
}

ServerResponse WebApp::error_answer(const std::string& route_name, int status,
                                    const std::string& message) const {
    if (pages_ && !is_data_route(route_name)) {
        try {
            return pages_->error_page(status, message);
        } catch (const std::exception& e) {
            logger.error("the error page failed: {}", e.what());
        }
    }
    return error_response(status, message);
}

// The request API's routes: /request.cgi (a page), POST /api/v1/test, GET /api/v1/retry/RUN_ID
// (POST from its confirmation page), POST /api/v1/cancel/UUID.
ServerResponse WebApp::request_route(const ServerRequest& request, const std::vector<std::string>& segs,
                                     std::string& route_name) const {
    const bool cgi = segs.size() == 1;
    // request.cgi answers a page, or JSON to programs that ask for it (errors too).
    const bool json = request.header("Accept").value_or("").find("application/json") != std::string::npos;
    const bool cancel = !cgi && segs[2] == "cancel";
    const bool retry = !cgi && segs[2] == "retry";
    // A browser's retry (a link on a page) is answered with pages, as request.cgi is.
    const bool retry_page =
        retry && pages_ && !json && (request.method == "POST" || RequestApi::is_browser_navigation(request));
    route_name = cgi                 ? (json || !pages_ ? "api.request_cgi" : "page.request")
                 : segs[2] == "test" ? "api.test"
                 : cancel            ? "api.cancel"
                 : retry_page        ? "page.retry"
                                     : "api.retry";
    // request.cgi and retry: GET as programs use them; POST from their confirmation page.
    const std::string allowed = cgi || retry ? "GET, POST" : "POST";
    const bool method_ok =
        cgi || retry ? (request.method == "GET" || request.method == "POST") : request.method == allowed;
    if (!method_ok) {
        ServerResponse r = error_answer(
            route_name, 405, fmt::format("method {} is not allowed here: use {}", request.method, allowed));
        r.headers["Allow"] = allowed;
        return r;
    }
    if (cgi && WebhookApi::is_webhook(request)) {  // GitHub's and GitLab's POSTs (SPEC.md 10)
        route_name = "api.webhook";
        if (!webhooks_) return error_answer(route_name, 404, "no webhooks are configured here");
        return answer(webhooks_->handle(request), false);
    }
    if (!requests_) return error_answer(route_name, 503, "the request API is not configured here");
    if (cgi && request.method == "POST")
        return answer(requests_->confirmed_cgi(request), route_name == "page.request");
    if (cgi && RequestApi::is_browser_navigation(request))
        return answer(requests_->confirm_cgi(request), pages_ != nullptr);
    if (cgi) return answer(requests_->request_cgi(request), route_name == "page.request");
    if (segs.size() == 3) return answer(requests_->post_test(request), false);
    if (cancel) return answer(requests_->cancel(request, segs[3]), false);
    const std::string& run_id = segs[3];
    // As request.cgi: a browser's GET only shows what would be retried, its POST back does it.
    if (request.method == "GET" && RequestApi::is_browser_navigation(request))
        return answer(requests_->confirm_retry(request, run_id), retry_page);
    if (request.method == "POST")
        if (auto refused = requests_->refuse_retry_confirmation(request, run_id))
            return answer(*refused, retry_page);
    if (webhooks_)  // a pull request's run: retried with its statuses (SPEC.md 10)
        if (auto a = webhooks_->retry_run(request, run_id)) return answer(*a, retry_page);
    return answer(requests_->retry(request, run_id), retry_page);
}

ServerResponse WebApp::answer(const RequestAnswer& a, bool page) const {
    ServerResponse r = page ? pages_->request_page(a.status, a.body) : json_response(a.status, a.body, true);
    for (const auto& [k, v] : a.headers) r.headers[k] = v;
    r.headers["Cache-Control"] = "no-store";
    return r;
}

ServerResponse WebApp::route(const ServerRequest& request, std::string& route_name) const {
    {
        const auto segs = path_segments(request.raw_path);
        if ((segs.size() == 1 && segs[0] == "request.cgi") ||
            (segs.size() == 3 && segs[0] == "api" && segs[1] == "v1" && segs[2] == "test") ||
            (segs.size() == 4 && segs[0] == "api" && segs[1] == "v1" &&
             (segs[2] == "retry" || segs[2] == "cancel")))
            return request_route(request, segs, route_name);
    }
    if (request.method != "GET" && request.method != "HEAD") {
        ServerResponse r = error_response(405, fmt::format("method {} is not allowed here", request.method));
        r.headers["Allow"] = "GET, HEAD";
        return r;
    }
    const auto segs = path_segments(request.raw_path);
    if (segs.size() >= 2 && segs[0] == "api" && segs[1] == "v1") return api(request, segs, route_name);
    if (segs.size() == 3 && segs[0] == "api" && segs[1] == "experimental" && segs[2] == "recent.json") {
        route_name = "api.experimental.recent";
        return recent_api(request, true);
    }
    if (!segs.empty() && segs[0] == "results") {
        route_name = "results";
        return results(request, segs);
    }
    if (segs.size() == 2 && segs[0] == "static") {
        route_name = "static." + segs[1];
        if (segs[1] == "running.json") return json_response(200, running_.reference_json());
        return published(segs[1]);
    }
    if (segs.size() == 1 &&
        (segs[0] == "queues.json" || segs[0] == "queued.json" || segs[0] == "queue_size.json")) {
        route_name = segs[0];
        return queues_view(segs[0]);
    }
    if (segs.size() == 1 && segs[0] == "metrics") {
        route_name = "metrics";
        return metrics();
    }
    if (pages_) {
        route_name = "page." + (segs.empty() ? std::string("home") : segs[0]);
        if (auto page = pages_->handle(request, segs)) return std::move(*page);
        route_name = "page.none";
        if (segs.empty() || segs[0] != "static")
            throw NotFound(fmt::format("no such page: {}", quote_for_message(request.path)));
    }
    return error_response(404, fmt::format("no such page: {}", quote_for_message(request.path)));
}

ServerResponse WebApp::api(const ServerRequest& request, const std::vector<std::string>& segs,
                           std::string& route_name) const {
    const std::string what = segs.size() > 2 ? segs[2] : "";
    route_name = "api." + (what.empty() ? std::string("root") : what);
    if (what == "packages" && segs.size() >= 4) return package_api(request, segs);
    if (what == "run" && segs.size() == 4) {
        auto rec = index_.run_by_uuid(segs[3], viewer_of(request));
        if (!rec) throw NotFound(fmt::format("no run of a request with uuid {}", quote_for_message(segs[3])));
        return json_response(200, run_json(*rec, true));
    }
    if (what == "recent" && segs.size() == 3) return recent_api(request, false);
    if (what == "results" && segs.size() == 3) return feed_api(request);
    if (what == "user" && segs.size() == 4) return user_api(segs[3]);
    if (what == "running" && segs.size() == 3) {
        json out = json::array();
        for (const auto& t : running_.list()) out.push_back(running_json(t));
        return json_response(200, out);
    }
    if (what == "queued" && segs.size() == 3) return queued_api();
    if (what == "statistics" && segs.size() == 3) {
        auto stats = state_.statistics();
        json out = json::array();
        if (stats)
            for (const auto& s : *stats) out.push_back(statistics_json(s));
        return json_response(200, out);
    }
    if (what == "packages" && segs.size() == 3) return json_response(200, index_.packages());
    if (what == "openapi.yaml" && segs.size() == 3 && !settings_.openapi_path.empty())
        return ServerResponse::text(200, read_file(settings_.openapi_path), "application/yaml");
    return error_response(404, fmt::format("no such API: {}", quote_for_message(request.path)));
}

PackagePath parse_package_path(std::vector<std::string> rest) {
    PackagePath p;
    auto is_run_id = [](const std::string& s) { return run_id_time(s).has_value(); };
    // A leading archive prefix ("libp", "g") is dropped when it is the package's.
    if (rest.size() >= 2 && is_valid_package_name(rest[1]) && srcpkg_prefix(rest[1]) == rest[0] &&
        !(rest.size() == 4 && is_run_id(rest[3])) && rest.size() != 3)
        rest.erase(rest.begin());
    if (rest.empty() || rest.size() == 2 || rest.size() > 4)
        throw NotFound("expected /packages/[PREFIX/]PACKAGE[/RELEASE/ARCH[/RUN_ID]]");
    check_package_name(rest[0]);
    p.package = rest[0];
    if (rest.size() >= 3) {
        check_release(rest[1]);
        check_arch(rest[2]);
        p.release = rest[1];
        p.arch = rest[2];
    }
    if (rest.size() == 4) {
        if (!is_run_id(rest[3])) throw NotFound(fmt::format("not a run id: {}", quote_for_message(rest[3])));
        p.run_id = rest[3];
    }
    return p;
}

ServerResponse WebApp::package_api(const ServerRequest& request, const std::vector<std::string>& segs) const {
    const PackagePath p = parse_package_path({segs.begin() + 3, segs.end()});
    const Viewer viewer = viewer_of(request);
    const std::string container = request.param("container").value_or("");
    if (!container.empty() && !parse_container_name(container))
        throw ValidationError("container", container, "must be [private-]autopkgtest-RELEASE[-LPUSER-PPA]");
    if (p.run_id) {
        auto rec = index_.run(container, RunLocation{*p.release, *p.arch, p.package, *p.run_id}, viewer);
        if (!rec)
            throw NotFound(
                fmt::format("no run {} of {} on {}/{}", *p.run_id, p.package, *p.release, *p.arch));
        return json_response(200, run_json(*rec, true));
    }
    if (p.release) {
        const auto limit =
            number_param(request, "limit", 1, static_cast<std::int64_t>(settings_.max_page)).value_or(100);
        auto before = request.param("before");
        if (before && !run_id_time(*before)) throw ValidationError("before", *before, "must be a run id");
        auto page = index_.history(p.package, *p.release, *p.arch, container, before,
                                   static_cast<std::size_t>(limit), viewer);
        return ServerResponse::text(
            200,
            history_json(p.package, *p.release, *p.arch,
                         container.empty() ? "autopkgtest-" + *p.release : container, page),
            "application/json");
    }
    json latest = json::array();
    for (const auto& r : index_.latest(p.package, viewer)) latest.push_back(run_json(r));
    json running = json::array();
    for (const auto& t : running_.list())
        if (t.package == p.package) running.push_back(running_json(t));
    json queued = json::array();
    if (auto q = state_.queues())
        for (const auto& r : q->requests)
            if (r.package && *r.package == p.package)
                queued.push_back(queued_request_json(r, estimated_start(index_, running_, r)));
    if (latest.empty() && running.empty() && queued.empty())
        throw NotFound(fmt::format("no results for package {}", quote_for_message(p.package)));
    return json_response(
        200, {{"package", p.package}, {"latest", latest}, {"running", running}, {"queued", queued}});
}

RecentQuery recent_query(const ServerRequest& request, std::size_t max_page) {
    RecentQuery q;
    q.limit = static_cast<std::size_t>(
        number_param(request, "limit", 1, static_cast<std::int64_t>(max_page)).value_or(100));
    q.offset = static_cast<std::size_t>(number_param(request, "offset", 0, 1000000000).value_or(0));
    q.release = request.param("release").value_or("");
    q.arch = request.param("arch").value_or("");
    q.user = request.param("user").value_or("");
    q.outcome = request.param("result").value_or("");
    q.package = request.param("package").value_or("");
    if (!q.release.empty()) check_release(q.release);
    if (!q.arch.empty()) check_arch(q.arch);
    if (!q.package.empty()) check_package_name(q.package);
    const auto& names = outcome_names();
    if (!q.outcome.empty() && std::find(names.begin(), names.end(), q.outcome) == names.end())
        throw ValidationError("result", q.outcome,
                              "must be pass, fail, neutral, tmpfail, error or denylisted");
    return q;
}

const std::vector<std::string>& outcome_names() {
    static const std::vector<std::string> names = {"pass",    "fail",  "neutral",
                                                   "tmpfail", "error", "denylisted"};
    return names;
}

ServerResponse WebApp::recent_api(const ServerRequest& request, bool reference_shape) const {
    const RecentQuery q = recent_query(request, settings_.max_page);
    json out = json::array();
    for (const auto& r : index_.recent(q, viewer_of(request)))
        out.push_back(reference_shape ? recent_reference_json(r) : run_json(r));
    return json_response(200, out);
}

ServerResponse WebApp::feed_api(const ServerRequest& request) const {
    const auto since = number_param(request, "since", 0, INT64_MAX).value_or(0);
    const auto limit = number_param(request, "limit", 1, 10000).value_or(1000);
    auto page = index_.feed(since, static_cast<std::size_t>(limit));
    json runs = json::array();
    for (const auto& r : page.runs) runs.push_back(run_json(r));
    return json_response(200, {{"results", std::move(runs)}, {"next", page.next}, {"more", page.more}});
}

ServerResponse WebApp::user_api(const std::string& user) const {
    RecentQuery q;
    q.user = user;
    q.limit = settings_.max_page;
    json results = json::array();
    for (const auto& r : index_.recent(q, Viewer{})) results.push_back(run_json(r));
    json running = json::array();
    for (const auto& t : running_.list())
        if (t.params.value("requester", std::string()) == user) running.push_back(running_json(t));
    json queued = json::array();
    if (auto s = state_.queues())
        for (const auto& r : s->requests)
            if (r.requester && *r.requester == user)
                queued.push_back(queued_request_json(r, estimated_start(index_, running_, r)));
    return json_response(200,
                         {{"user", user}, {"results", results}, {"running", running}, {"queued", queued}});
}

ServerResponse WebApp::queued_api() const {
    json out = json::array();
    if (auto s = state_.queues())
        for (const auto& r : s->requests)
            out.push_back(queued_request_json(r, estimated_start(index_, running_, r)));
    return json_response(200, out);
}

// When a queued request may start: the runs ahead of it, at the recent mean
// duration of its release/arch, shared by the workers seen running there.
std::optional<std::int64_t> estimated_start(const ResultsIndex& index, const RunningTests& running,
                                            const QueuedRequest& request) {
    RecentQuery q;
    q.release = request.name.release;
    q.arch = request.name.arch;
    q.limit = 50;
    std::uint64_t total = 0, n = 0;
    for (const auto& r : index.recent(q, Viewer{}))
        if (r.run.duration) {
            total += *r.run.duration;
            ++n;
        }
    if (n == 0) return std::nullopt;
    std::size_t workers = 0;
    for (const auto& t : running.list()) workers += t.release == q.release && t.arch == q.arch ? 1 : 0;
    const double mean = static_cast<double>(total) / static_cast<double>(n);
    const double ahead =
        static_cast<double>(request.position - 1) + (workers > 0 ? 0.5 * static_cast<double>(workers) : 0);
    return detail::unix_now() +
           static_cast<std::int64_t>(ahead * mean / static_cast<double>(std::max<std::size_t>(1, workers)));
}

ServerResponse WebApp::queues_view(const std::string& which) const {
    auto s = state_.queues();
    if (!s) return error_response(503, "the queues have not been read yet");
    if (which == "queues.json") return json_response(200, queues_json(*s));
    if (which == "queued.json") return json_response(200, queued_json(*s));
    return json_response(200, queue_size_json(*s));
}

ServerResponse WebApp::published(const std::string& what) const {
    auto p = state_.publication();
    if (what != "autopkgtest.db" && what != "autopkgtest.db.sha256") throw NotFound("no such static file");
    if (!p) return error_response(503, "the results database has not been published yet");
    ServerResponse r;
    r.headers["Cache-Control"] = "no-cache";
    r.headers["ETag"] = "\"" + p->sha256 + "\"";
    r.headers["Last-Modified"] = detail::format_http_date(p->published_at);
    if (what == "autopkgtest.db.sha256") {
        r.headers["Content-Type"] = "text/plain; charset=utf-8";
        r.body = p->sha256;
        return r;
    }
    // The checksum travels with the database: one request can verify it (RFC 9530).
    r.headers["Content-Type"] = "application/vnd.sqlite3";
    r.headers["Content-Digest"] = "sha-256=:" + detail::hex_to_base64(p->sha256) + ":";
    r.headers["X-Checksum-Sha256"] = p->sha256;
    r.file = p->path;
    return r;
}

ServerResponse WebApp::metrics() const {
    std::vector<std::pair<std::string, double>> gauges;
    gauges.emplace_back("apcloud_index_runs", static_cast<double>(index_.size()));
    gauges.emplace_back("apcloud_running_tests", static_cast<double>(running_.list().size()));
    if (auto s = state_.queues())
        for (const auto& [queue, size] : s->sizes)
            gauges.emplace_back(fmt::format("apcloud_queue_depth{{queue=\"{}\"}}", queue),
                                static_cast<double>(size));
    std::string text = metrics_ ? metrics_->render(gauges) : Metrics().render(gauges);
    return ServerResponse::text(200, std::move(text), "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace apcloud::web
