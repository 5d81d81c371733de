// GitHub and GitLab webhooks: signed events queue a PR's tests through the request API; their statuses
// go through the outbox (SPEC.md section 10).
#include "web/webhooks.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <nlohmann/json.hpp>
#include <set>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/exit_codes.hpp"
#include "autopkgtest_cloud/file_io.hpp"
#include "autopkgtest_cloud/url.hpp"
#include "core/digest.hpp"
#include "core/logging.hpp"
#include "core/time_text.hpp"
#include "http/http_client.hpp"
#include "web/running.hpp"

namespace apcloud::web {

using http::ServerRequest;
using nlohmann::json;

namespace {

const detail::Logger logger("webhooks");

// A file of secrets: refused when others than its owner may read it.
std::string read_secret_file(const std::string& path, const char* key) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        throw SystemError(errno, fmt::format("read [webhooks] {}", key), path);
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
        throw ConfigError(
            fmt::format("web.conf [webhooks] {} = {}: holds secrets, but others may read it (chmod 600)", key,
                        quote_for_message(path)));
    return read_file(path);
}

RequestAnswer error_of(int status, const std::string& message) {
    return {status, {{"error", message}}, {}};
}

}  // namespace

WebhookSettings load_webhook_settings(const WebConfig& c) {
    WebhookSettings s;
    s.github_api = c.github_api;
    s.gitlab_api = c.gitlab_api;
    s.public_url = c.public_url.empty() ? fmt::format("http://{}:{}", c.address, c.port) : c.public_url;
    s.start_timeout = c.start_timeout;
    s.cancel_running = c.cancel_running;
    s.status_attempts = c.status_attempts;
    if (!c.github_secrets.empty())
        for (const auto& [package, secret] :
             parse_github_secrets(read_secret_file(c.github_secrets, "github_secrets")))
            s.github[package] = {Forge::github, package, secret, "", ""};
    if (!c.github_status_credentials.empty())
        for (const auto& [project, cred] : parse_status_credentials(
                 read_secret_file(c.github_status_credentials, "github_status_credentials"))) {
            auto it = s.github.find(project);
            if (it == s.github.end())
                continue;  // statuses of a project without a webhook secret: never asked for
            it->second.status_user = cred.first;
            it->second.status_token = cred.second;
        }
    if (!c.projects_file.empty())
        for (auto& p :
             parse_forge_projects(read_secret_file(c.projects_file, "projects_file"), c.projects_file))
            (p.forge == Forge::github ? s.github : s.gitlab)[p.name] = p;
    return s;
}

WebhookApi::WebhookApi(const RequestApi& requests, const ResultsIndex& index, StatusOutbox& outbox,
                       WebhookSettings settings, std::function<void()> wake)
    : requests_(requests),
      index_(index),
      outbox_(outbox),
      settings_(std::move(settings)),
      wake_(wake ? std::move(wake) : [] {}) {}

bool WebhookApi::is_webhook(const ServerRequest& r) {
    return r.method == "POST" && (r.header("X-GitHub-Event") || r.header("X-Gitlab-Event"));
}

std::string WebhookApi::run_url(const std::string& uuid) const {
    return settings_.public_url + "/run/" + uuid;
}

RequestAnswer WebhookApi::handle(const ServerRequest& r) const {
    const bool gitlab = r.header("X-Gitlab-Event").has_value();
    const auto package = r.param("package");
    if (!package || package->empty())
        throw ValidationError("package", "", "is required: it names the project");
    const auto& projects = gitlab ? settings_.gitlab : settings_.github;
    const auto it = projects.find(*package);
    if (it == projects.end())
        return error_of(403, fmt::format("no {} webhook is configured for {}", gitlab ? "GitLab" : "GitHub",
                                         quote_for_message(*package)));
    const ForgeProject& project = it->second;
    const bool signed_ok =
        gitlab ? gitlab_token_valid(r.header("X-Gitlab-Token"), project.secret)
               : github_signature_valid(r.body, project.secret, r.header("X-Hub-Signature-256"),
                                        r.header("X-Hub-Signature"));
    if (!signed_ok) {
        logger.warn("webhook for {} from {}: bad or missing {}", *package, r.remote,
                    gitlab ? "X-Gitlab-Token" : "signature");
        return error_of(403, gitlab ? "bad or missing X-Gitlab-Token" : "bad or missing signature");
    }
    const PullRequestEvent event = gitlab
                                       ? parse_gitlab_event(r.body, settings_.gitlab_api)
                                       : parse_github_event(r.header("X-GitHub-Event").value_or(""), r.body);
    // GitHub and GitLab redeliver events, in no order: one of a change older
    // than an event handled already must not supersede the newer commit's tests.
    if ((event.action == HookAction::test || event.action == HookAction::close) && event.updated_at &&
        !outbox_.note_event(event.forge, project.name, event.number, *event.updated_at)) {
        logger.info("{} {} #{}: {} of {} is older than an event handled already: ignored",
                    forge_name(event.forge), project.name, event.number, event.kind,
                    detail::format_iso_time(*event.updated_at));
        return {
            200,
            {{"message", fmt::format("stale: {} of #{} changed at {}, before an event handled already",
                                     event.kind, event.number, detail::format_iso_time(*event.updated_at))}},
            {}};
    }
    switch (event.action) {
        case HookAction::ping:
            return {200, {{"message", "pong"}}, {}};
        case HookAction::irrelevant:
            return {200, {{"message", fmt::format("not relevant: {}", event.kind)}}, {}};
        case HookAction::close:
            close(event, project, fmt::format("#{} closed", event.number), false);
            wake_();
            return {200, {{"message", fmt::format("{}: its queued tests are cancelled", event.kind)}}, {}};
        case HookAction::test:
            break;
    }
    if (!gitlab && event.statuses_url.rfind(settings_.github_api + "/", 0) != 0)
        throw ValidationError(
            "pull_request.statuses_url", event.statuses_url,
            fmt::format("is not under {} (web.conf [webhooks] github_api)", settings_.github_api));
    RequestAnswer a = pull_request(r, event, project);
    wake_();
    return a;
}

void WebhookApi::close(const PullRequestEvent& event, const ForgeProject& project, const std::string& why,
                       bool running_too) const {
    for (const auto& t : outbox_.tracked_of(event.forge, project.name, event.number)) {
        if (!event.head_sha.empty() && t.sha == event.head_sha) continue;  // this push's own
        if (!requests_.cancel_pending(t.uuid, why, running_too)) continue;
        outbox_.finish(t.uuid, status_body(t.forge, forge_state(t.forge, "error", true), t.context, why, ""));
        logger.info("{} request {} of {} #{} cancelled: {}", forge_name(t.forge), t.uuid, project.name,
                    t.number, why);
    }
}

RequestAnswer WebhookApi::pull_request(const ServerRequest& r, const PullRequestEvent& event,
                                       const ForgeProject& project) const {
    auto wanted = requests_.cgi_wanted(r);
    // The sender's login when it makes an account name (SPEC.md 1's requester rule), else the project.
    std::string requester = fmt::format("{}:{}", forge_name(event.forge), event.sender);
    if (event.sender.empty() || !is_account_name(requester))
        requester = fmt::format("{}:{}", forge_name(event.forge), project.name);
    // A newer push supersedes the queued (and, when configured, running) tests of older commits.
    close(event, project, fmt::format("superseded by {}", event.head_sha.substr(0, 12)),
          settings_.cancel_running);
    json queued = json::array(), refused = json::array(), pending = json::array();
    for (auto& w : wanted) {
        for (auto& e : webhook_env(event)) w.request.env.push_back(std::move(e));
        if (!w.request.build_git) w.request.build_git = webhook_build_git(event);
        const std::string context = status_context(w.release, w.arch, w.request.testname);
        TrackedRequest like;
        like.forge = event.forge;
        like.project = project.name;
        like.number = event.number;
        like.sha = event.head_sha;
        like.statuses_url = event.statuses_url;
        like.context = context;
        const RequestAnswer a = queue_tracked(requester, std::move(w), like, "queued");
        if (a.status == 200) {
            const json& done = a.body["requests"][0];
            queued.push_back({{"uuid", done["uuid"]}, {"context", context}, {"queue", done["queue"]}});
        } else if (a.status == 409) {  // a redelivered webhook: its requests are queued already
            pending.push_back({{"context", context}, {"existing", a.body.value("existing", json())}});
        } else {
            const std::string why = a.body.value("error", std::string("refused"));
            outbox_.send_once(event.forge, project.name, event.statuses_url,
                              status_body(event.forge, forge_state(event.forge, "error"), context, why, ""));
            refused.push_back({{"context", context}, {"status", a.status}, {"error", why}});
            logger.warn("{} {} #{} {}: not queued: {}", forge_name(event.forge), project.name, event.number,
                        context, why);
        }
    }
    return {200,
            {{"event", event.kind}, {"queued", queued}, {"already_queued", pending}, {"refused", refused}},
            {}};
}

RequestAnswer WebhookApi::queue_tracked(const std::string& requester, RequestApi::Wanted wanted,
                                        const TrackedRequest& like, const std::string& why) const {
    RequestAnswer a;
    try {
        a = requests_.submit_webhook(requester, {std::move(wanted)});
    } catch (const NotFound& e) {  // a release or arch not tested here
        a = error_of(404, e.what());
    } catch (const ValidationError& e) {
        a = error_of(400, e.what());
    } catch (const Error& e) {
        a = error_of(503, e.what());
    }
    if (a.status != 200) return a;
    const json& done = a.body["requests"][0];
    TrackedRequest t = like;
    t.uuid = done["uuid"].get<std::string>();
    t.queued_at = detail::unix_now();
    t.started = false;
    outbox_.track(
        t, status_body(t.forge, "pending", t.context,
                       fmt::format("{} in {}", why, done["queue"].get<std::string>()), run_url(t.uuid)));
    return a;
}

std::optional<RequestAnswer> WebhookApi::retry_run(const ServerRequest& r, const std::string& run_id) const {
    Viewer admin;
    admin.admin = true;
    const auto rec = index_.run_by_id(run_id, admin);
    if (!rec || !rec->run.uuid) return std::nullopt;
    const auto accepted = outbox_.accepted(*rec->run.uuid);
    if (!accepted) return std::nullopt;  // not a webhook's run
    const auto user = requests_.authenticate(r);
    if (!user)
        return RequestAnswer{401,
                             {{"error", "not authenticated: send an API key (Authorization: Bearer KEY)"}},
                             {{"WWW-Authenticate", "Bearer"}}};
    RequestApi::Wanted w{rec->run.request(), rec->run.release, rec->run.arch};
    const auto decision = requests_.may_request(*user, w.request);
    if (!decision.allowed) return error_of(403, decision.reason);
    // The statuses URL is the one recorded when the webhook was accepted, never the run's own env.
    for (auto& kv : w.request.env)
        if (kv.rfind("GITHUB_STATUSES_URL=", 0) == 0) kv = "GITHUB_STATUSES_URL=" + accepted->statuses_url;
    w.request.uuid.reset();
    w.request.submit_time.reset();
    RequestAnswer a = queue_tracked(*user, std::move(w), *accepted, fmt::format("retried by {}", *user));
    wake_();
    logger.info("{} retried run {} of {} #{}: HTTP {}", *user, run_id, accepted->project, accepted->number,
                a.status);
    return a;
}

std::size_t WebhookApi::sweep(const ResultsIndex& index, const RunningTests& running, std::int64_t now,
                              const std::map<std::string, std::string>& dead_lettered) const {
    std::set<std::string> started;
    for (const auto& t : running.list())
        if (t.params.is_object() && t.params.contains("uuid") && t.params["uuid"].is_string())
            started.insert(t.params["uuid"].get<std::string>());
    Viewer admin;
    admin.admin = true;
    std::size_t finished = 0;
    for (const auto& t : outbox_.tracked()) {
        if (const auto rec = index.run_by_uuid(t.uuid, admin)) {
            const int code = rec->run.exitcode;
            const std::string description =
                fmt::format("{} (autopkgtest exit code {})", outcome_name(outcome(code)), code);
            if (outbox_.finish(t.uuid, status_body(t.forge, final_state(t.forge, code), t.context,
                                                   description, run_url(t.uuid))))
                ++finished;
        } else if (const auto dead = dead_lettered.find(t.uuid); dead != dead_lettered.end()) {
            const std::string why = fmt::format("not run: {}", dead->second);
            if (outbox_.finish(t.uuid, status_body(t.forge, forge_state(t.forge, "error"), t.context, why,
                                                   run_url(t.uuid))))
                ++finished;
            logger.warn("{} request {} of {} #{} was dead-lettered: {}", forge_name(t.forge), t.uuid,
                        t.project, t.number, dead->second);
        } else if (started.count(t.uuid)) {
            if (!t.started) outbox_.mark_started(t.uuid);
        } else if (!t.started && t.queued_at + settings_.start_timeout < now) {
            const std::string why = fmt::format(
                "not started within {} s (dead-lettered, or the queue is stuck)", settings_.start_timeout);
            if (outbox_.finish(t.uuid, status_body(t.forge, forge_state(t.forge, "error"), t.context, why,
                                                   run_url(t.uuid))))
                ++finished;
            logger.warn("{} request {} of {} #{}: {}", forge_name(t.forge), t.uuid, t.project, t.number, why);
        }
    }
    return finished;
}

namespace {

// Seconds to wait after `attempts` failures: 1, 2, 4 ... up to ten minutes.
std::int64_t backoff(int attempts) {
    return std::min<std::int64_t>(600, std::int64_t{1} << std::min(attempts, 10));
}

// When a refused or throttled status may be sent again, from Retry-After or GitHub's rate-limit headers.
std::optional<std::int64_t> retry_time(const http::Response& resp, std::int64_t now) {
    auto number = [](const std::optional<std::string>& v) -> std::optional<std::int64_t> {
        if (!v || v->empty() || v->find_first_not_of("0123456789") != std::string::npos || v->size() > 12)
            return std::nullopt;
        return std::stoll(*v);
    };
    if (auto after = number(resp.header("Retry-After"))) return now + std::min<std::int64_t>(*after, 3600);
    if (resp.header("X-RateLimit-Remaining") == std::optional<std::string>("0"))
        if (auto reset = number(resp.header("X-RateLimit-Reset")))
            return std::clamp<std::int64_t>(*reset, now + 1, now + 3600);
    return std::nullopt;
}

}  // namespace

std::size_t WebhookApi::deliver(http::HttpClient& client, std::int64_t now) const {
    std::size_t sent = 0;
    for (const auto& d : outbox_.due(now)) {
        const auto& projects = d.forge == Forge::github ? settings_.github : settings_.gitlab;
        const auto p = projects.find(d.project);
        if (p == projects.end() || p->second.status_token.empty()) {
            logger.warn("no status token for {} project {}: a status for {} dropped", forge_name(d.forge),
                        d.project, d.uuid.empty() ? "a refused request" : d.uuid);
            outbox_.drop(d.id);
            continue;
        }
        http::Request req;
        req.method = "POST";
        req.url = d.url;
        req.body = d.body;
        req.headers["Content-Type"] = "application/json";
        req.headers["User-Agent"] = "autopkgtest-cloud";
        if (d.forge == Forge::gitlab) {
            req.headers["PRIVATE-TOKEN"] = p->second.status_token;
        } else {
            req.headers["Accept"] = "application/vnd.github+json";
            req.headers["Authorization"] =
                p->second.status_user.empty()
                    ? "Bearer " + p->second.status_token
                    : "Basic " + detail::base64(p->second.status_user + ":" + p->second.status_token);
        }
        try {
            const auto resp = client.request(req);
            if (resp.status >= 200 && resp.status <= 299) {
                outbox_.delivered(d.id);
                ++sent;
                continue;
            }
            const auto later = retry_time(resp, now);
            if (http::retryable_status(resp.status) || later) {
                retry_or_give_up(d, later.value_or(now + backoff(d.attempts)),
                                 fmt::format("HTTP {}", resp.status));
                continue;
            }
            logger.warn("{} refused a status for {} ({}): HTTP {} {}", d.url, d.uuid, d.project, resp.status,
                        resp.body.substr(0, 200));
            outbox_.drop(d.id);
        } catch (const HttpError& e) {
            retry_or_give_up(d, now + backoff(d.attempts), e.what());
        }
    }
    return sent;
}

void WebhookApi::retry_or_give_up(const StatusDelivery& d, std::int64_t at, const std::string& why) const {
    if (d.attempts + 1 < settings_.status_attempts) {
        outbox_.retry_at(d.id, at, why);
        return;
    }
    logger.error("gave up sending a status to {} for {} ({}) after {} tries, the last: {}", d.url,
                 d.uuid.empty() ? "a refused request" : d.uuid, d.project, d.attempts + 1, why);
    outbox_.drop(d.id);
}

}  // namespace apcloud::web
