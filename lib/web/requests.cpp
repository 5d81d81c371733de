// The request API: who asks (keys, proxy header), may they (access file), is
// it new (queued, running, just sent), not too many (token bucket), then
// publish and answer with the uuid, the queue and where the result will be.
#include "web/requests.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <set>

#include "autopkgtest_cloud/client.hpp"
#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/file_io.hpp"
#include "autopkgtest_cloud/layout.hpp"
#include "autopkgtest_cloud/routing.hpp"
#include "autopkgtest_cloud/sinks.hpp"
#include "autopkgtest_cloud/url.hpp"
#include "core/digest.hpp"
#include "core/logging.hpp"
#include "core/time_text.hpp"
#include "http/http_server.hpp"
#include "web/json_views.hpp"
#include "web/running.hpp"
#include "web/web_app.hpp"

namespace apcloud::web {

using http::ServerRequest;
using nlohmann::json;

namespace {

const detail::Logger logger("requests");

// A file's modification time in nanoseconds, -1 when it is missing.
std::int64_t mtime_of(const std::string& path) {
    struct stat st {};
    if (path.empty() || ::stat(path.c_str(), &st) != 0) return -1;
    return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

RequestAnswer error_answer(int status, const std::string& message, json extra = json::object()) {
    extra["error"] = message;
    extra["status"] = status;
    return {status, std::move(extra), {}};
}

// 401, with the challenge that says how to authenticate.
RequestAnswer unauthenticated() {
    RequestAnswer a = error_answer(401, "not authenticated: send an API key (Authorization: Bearer KEY)");
    a.headers["WWW-Authenticate"] = "Bearer realm=\"autopkgtest\"";
    return a;
}

std::string cookie(const ServerRequest& r, const std::string& name) {
    const std::string header = r.header("Cookie").value_or("");
    std::size_t pos = 0;
    while (pos < header.size()) {
        auto end = header.find(';', pos);
        if (end == std::string::npos) end = header.size();
        std::string part = header.substr(pos, end - pos);
        part.erase(0, part.find_first_not_of(' '));
        if (part.compare(0, name.size() + 1, name + "=") == 0)
            return percent_decode(part.substr(name.size() + 1));
        pos = end + 1;
    }
    return {};
}

// The reference's `user:key`.
std::pair<std::optional<std::string>, std::string> split_user_key(const std::string& value) {
    const auto colon = value.find(':');
    if (colon == std::string::npos) return {std::nullopt, value};
    return {value.substr(0, colon), value.substr(colon + 1)};
}

std::vector<std::string> string_list(const json& v, const char* field) {
    if (v.is_string()) return {v.get<std::string>()};
    if (!v.is_array()) throw ValidationError(field, v.dump(), "must be a string or a list of strings");
    std::vector<std::string> out;
    for (const auto& e : v) {
        if (!e.is_string()) throw ValidationError(field, v.dump(), "must be a list of strings");
        out.push_back(e.get<std::string>());
    }
    return out;
}

std::optional<std::string> optional_string(const json& o, const char* field) {
    if (!o.contains(field)) return std::nullopt;
    if (!o[field].is_string()) throw ValidationError(field, o[field].dump(), "must be a string");
    return o[field].get<std::string>();
}

}  // namespace

RequestApi::RequestApi(std::function<std::unique_ptr<Broker>()> open_broker, const ResultsIndex& index,
                       const RunningTests& running, const WebState& state, RequestSettings settings,
                       Store* store)
    : open_broker_(std::move(open_broker)),
      index_(index),
      running_(running),
      state_(state),
      settings_(std::move(settings)),
      store_(store),
      csrf_secret_(detail::random_hex(32)) {}

ValidationOptions RequestApi::validation() const {
    ValidationOptions o;
    o.allow_local_sources = settings_.allow_local_sources;
    return o;
}

void RequestApi::reload() const {
    // Under mutex_. A file that does not parse keeps the last good rules (logged).
    const auto keys_mtime = mtime_of(settings_.keys_file);
    if (keys_mtime != keys_mtime_) {
        try {
            keys_ =
                keys_mtime < 0 ? std::vector<ApiKeyRecord>{} : parse_api_keys(read_file(settings_.keys_file));
            keys_mtime_ = keys_mtime;
        } catch (const Error& e) {
            logger.error("{}: {}; keeping the keys read before", settings_.keys_file, e.what());
        }
    }
    const auto access_mtime = mtime_of(settings_.access_file);
    if (access_mtime != access_mtime_) {
        try {
            policy_ =
                access_mtime < 0 ? AccessPolicy{} : parse_access_policy(read_file(settings_.access_file));
            access_mtime_ = access_mtime;
        } catch (const Error& e) {
            logger.error("{}: {}; keeping the rules read before", settings_.access_file, e.what());
        }
    }
}

std::optional<std::string> RequestApi::authenticate(const ServerRequest& r) const {
    std::lock_guard<std::mutex> lock(mutex_);
    reload();
    const std::string auth = r.header("Authorization").value_or("");
    if (auth.compare(0, 7, "Bearer ") == 0)
        return authenticate_key(keys_, auth.substr(7), detail::unix_now());
    std::string reference = r.header("X-Api-Key").value_or("");
    if (reference.empty()) reference = cookie(r, "X-Api-Key");
    if (!reference.empty()) {
        auto [user, key] = split_user_key(reference);
        return authenticate_key(keys_, key, detail::unix_now(), user);
    }
    if (!settings_.trusted_user_header.empty() &&
        std::find(settings_.trusted_proxies.begin(), settings_.trusted_proxies.end(), r.remote) !=
            settings_.trusted_proxies.end()) {
        auto user = r.header(settings_.trusted_user_header);
        if (user && !user->empty()) return user;
    }
    return std::nullopt;
}

RequestAnswer RequestApi::request_cgi(const ServerRequest& r) const {
    return submit(r, cgi_wanted(r));
}

bool RequestApi::is_browser_navigation(const ServerRequest& r) {
    if (r.header("Sec-Fetch-Mode").value_or("") == "navigate") return true;
    return r.header("Accept").value_or("").find("text/html") != std::string::npos;
}

std::string RequestApi::csrf_token(const std::string& user, const std::string& action,
                                   const std::string& query) const {
    return detail::hex_hmac("sha256", csrf_secret_, user + "\n" + action + "\n" + query);
}

std::string RequestApi::retry_action(const std::string& run_id) {
    return "/api/v1/retry/" + percent_encode(run_id);
}

json RequestApi::confirmation(const std::string& user, const std::vector<Wanted>& wanted,
                              const std::string& action, const std::string& query) const {
    json requests = json::array();
    for (const auto& w : wanted)
        requests.push_back({{"package", w.request.package},
                            {"release", w.release},
                            {"arch", w.arch},
                            {"triggers", w.request.triggers},
                            {"env", w.request.env},
                            {"ppas", w.request.ppas},
                            {"history", history_url(w.request.package, w.release, w.arch)}});
    json confirm = {{"requests", requests},
                    {"action", action},
                    {"query", query},
                    {"csrf", csrf_token(user, action, query)}};
    if (auto refused = refuse_duplicates(wanted)) confirm["existing"] = refused->body["existing"];
    return {{"confirm", confirm}};
}

std::optional<RequestAnswer> RequestApi::refuse_confirmation(const ServerRequest& r,
                                                             const std::string& action,
                                                             std::string& query) const {
    ServerRequest form;
    form.query = http::parse_query(r.body);
    const auto given_query = form.param("query");
    const auto token = form.param("csrf");
    if (!given_query || !token)
        throw ValidationError("body", r.body.substr(0, 100), "must carry the fields query and csrf");
    query = *given_query;
    const auto user = authenticate(r);
    if (!user) return unauthenticated();
    if (!detail::equal_constant_time(*token, csrf_token(*user, action, query)))
        return error_answer(403,
                            "this confirmation is not valid (expired, or not made for you): request again");
    return std::nullopt;
}

RequestAnswer RequestApi::confirm_cgi(const ServerRequest& r) const {
    return submit(r, cgi_wanted(r), true);
}

RequestAnswer RequestApi::confirmed_cgi(const ServerRequest& r) const {
    std::string query;
    if (auto refused = refuse_confirmation(r, "/request.cgi", query)) return *refused;
    ServerRequest cgi = r;  // the same credentials, the confirmed parameters
    cgi.method = "GET";
    cgi.query = http::parse_query(query);
    return submit(cgi, cgi_wanted(cgi));
}

std::optional<RequestAnswer> RequestApi::refuse_retry_confirmation(const ServerRequest& r,
                                                                   const std::string& run_id) const {
    std::string query;
    return refuse_confirmation(r, retry_action(run_id), query);
}

std::vector<RequestApi::Wanted> RequestApi::cgi_wanted(const ServerRequest& r) const {
    static const std::set<std::string> known = {"release",   "arch",    "package",      "trigger",
                                                "ppa",       "env",     "all-proposed", "readable-by",
                                                "build-git", "testname"};
    std::set<std::string> unknown;
    for (const auto& [k, v] : r.query)
        if (!known.count(k)) unknown.insert(k);
    // An HTML form sends its optional fields empty: empty means absent.
    const auto given = [&r](const char* name) {
        std::vector<std::string> out;
        for (auto& v : r.params(name))
            if (!v.empty()) out.push_back(std::move(v));
        return out;
    };
    if (!unknown.empty())
        throw ValidationError(*unknown.begin(), r.param(*unknown.begin()).value_or(""),
                              fmt::format("unknown parameter (known: {})", fmt::join(known, ", ")));
    const auto release = r.param("release");
    const auto package = r.param("package");
    const auto arches = r.params("arch");
    if (!release) throw ValidationError("release", "", "is required");
    if (!package) throw ValidationError("package", "", "is required");
    if (arches.empty()) throw ValidationError("arch", "", "is required (repeat it for several)");
    TestRequest t;
    t.package = *package;
    t.triggers = given("trigger");
    t.ppas = given("ppa");
    for (const auto& e : given("env"))
        for (std::size_t pos = 0; pos <= e.size();) {
            auto end = std::min(e.find(';', pos), e.size());
            if (end > pos) t.env.push_back(e.substr(pos, end - pos));
            pos = end + 1;
        }
    const auto all = r.param("all-proposed");
    if (all && *all != "1" && *all != "0") throw ValidationError("all-proposed", *all, "must be 1 or 0");
    t.all_proposed = all && *all == "1";
    for (const auto& who : r.params("readable-by"))
        for (const auto& w : split_triggers(who)) t.readable_by.push_back(w);
    t.build_git = r.param("build-git");
    t.testname = r.param("testname");
    std::vector<Wanted> wanted;
    for (const auto& a : arches) wanted.push_back({t, *release, a});
    return wanted;
}

RequestAnswer RequestApi::post_test(const ServerRequest& r) const {
    json body = json::parse(r.body, nullptr, false);
    if (body.is_discarded()) throw ValidationError("body", r.body.substr(0, 100), "is not JSON");
    if (body.is_object()) body = json::array({body});
    if (!body.is_array() || body.empty())
        throw ValidationError("body", r.body.substr(0, 100), "must be a request object or a list of them");
    static const std::set<std::string> known = {"package",  "release",  "arch",         "triggers",
                                                "ppas",     "env",      "all-proposed", "build-git",
                                                "test-git", "testname", "readable-by"};
    std::vector<Wanted> wanted;
    for (const auto& o : body) {
        if (!o.is_object()) throw ValidationError("body", o.dump(), "each request must be an object");
        for (const auto& [k, v] : o.items())
            if (!known.count(k))
                throw ValidationError(k, v.dump(),
                                      fmt::format("unknown field (known: {})", fmt::join(known, ", ")));
        TestRequest t;
        t.package = optional_string(o, "package").value_or("");
        const std::string release = optional_string(o, "release").value_or("");
        if (o.contains("triggers")) t.triggers = string_list(o["triggers"], "triggers");
        if (o.contains("ppas")) t.ppas = string_list(o["ppas"], "ppas");
        if (o.contains("env")) t.env = string_list(o["env"], "env");
        if (o.contains("readable-by")) t.readable_by = string_list(o["readable-by"], "readable-by");
        if (o.contains("all-proposed")) {
            if (!o["all-proposed"].is_boolean())
                throw ValidationError("all-proposed", o["all-proposed"].dump(), "must be true or false");
            t.all_proposed = o["all-proposed"].get<bool>();
        }
        t.build_git = optional_string(o, "build-git");
        t.test_git = optional_string(o, "test-git");
        t.testname = optional_string(o, "testname");
        if (t.package.empty()) throw ValidationError("package", "", "is required");
        if (release.empty()) throw ValidationError("release", "", "is required");
        if (!o.contains("arch")) throw ValidationError("arch", "", "is required");
        for (const auto& a : string_list(o["arch"], "arch")) wanted.push_back({t, release, a});
    }
    return submit(r, std::move(wanted));
}

IndexedRecord RequestApi::run_to_retry(const std::string& run_id) const {
    if (!run_id_time(run_id)) throw ValidationError("run_id", run_id, "is not a run id");
    auto rec = index_.run_by_id(run_id, Viewer{});
    if (!rec) throw NotFound(fmt::format("no run {}", quote_for_message(run_id)));
    return std::move(*rec);
}

RequestAnswer RequestApi::retry(const ServerRequest& r, const std::string& run_id) const {
    const IndexedRun run = run_to_retry(run_id).run;
    if (run.is_private)
        return error_answer(400, "a private run cannot be retried here: its PPA credentials are not stored");
    return submit(r, {{run.request(), run.release, run.arch}});
}

RequestAnswer RequestApi::confirm_retry(const ServerRequest& r, const std::string& run_id) const {
    const IndexedRun run = run_to_retry(run_id).run;
    if (run.is_private)
        return error_answer(400, "a private run cannot be retried here: its PPA credentials are not stored");
    const auto user = authenticate(r);
    if (!user) return unauthenticated();
    const std::vector<Wanted> wanted = {{run.request(), run.release, run.arch}};
    const auto decision = may_request(*user, wanted.front().request);
    if (!decision.allowed) return error_answer(403, decision.reason);
    return {200, confirmation(*user, wanted, retry_action(run_id), ""), {}};
}

std::vector<RequestApi::Pending> RequestApi::pending_requests() const {
    std::vector<Pending> out;
    std::set<std::string> seen;
    const ValidationOptions lenient{true, 1 << 20, true};
    // Running first: a request a worker has just taken may still be in the
    // queue view (or just sent) for a moment.
    for (const auto& rt : running_.list()) {
        try {
            out.push_back({parse_request(rt.package + "\n" + rt.params.dump(), lenient), "running",
                           rt.release, rt.arch, "", std::nullopt, false, false});
            if (out.back().request.uuid) seen.insert(*out.back().request.uuid);
        } catch (const Error&) {
        }
    }
    const auto queues = state_.queues();
    if (queues)
        for (const auto& q : queues->requests) {
            try {
                TestRequest t = parse_request(q.body, lenient);
                if (t.uuid && !seen.insert(*t.uuid).second) continue;
                Pending p{std::move(t), "queued",   q.name.release, q.name.arch,
                          q.queue,      q.position, q.is_private};
                out.push_back(std::move(p));
            } catch (const Error&) {
            }
        }
    {
        std::lock_guard<std::mutex> lock(mutex_);
        const std::int64_t seen_at = queues ? queues->taken_at : 0;
        Viewer admin;
        admin.admin = true;
        for (auto it = sent_.begin(); it != sent_.end();) {
            const Sent& sent = it->second;
            // Forgotten once the queues show it (a snapshot taken after the sending), its result is
            // indexed, or after ten minutes.
            if (sent.at + 1 < seen_at || sent.at + 600 < detail::unix_now() ||
                index_.run_by_uuid(sent.uuid, admin)) {
                it = sent_.erase(it);
                continue;
            }
            if (seen.insert(sent.uuid).second) {
                Pending p{sent.request, "queued",     sent.release, sent.arch,
                          sent.queue,   std::nullopt, false,        true};
                out.push_back(std::move(p));
            }
            ++it;
        }
    }
    return out;
}

namespace {

// The source names of triggers ("glib2.0/2.80-1" -> "glib2.0"), sorted.
std::set<std::string> trigger_sources(const TestRequest& r) {
    std::set<std::string> out;
    for (const auto& t : r.triggers) out.insert(t.substr(0, t.find('/')));
    return out;
}

}  // namespace

std::vector<std::string> RequestApi::supersede(const TestRequest& sent, const std::string& release,
                                               const std::string& arch) const {
    std::vector<std::string> cancelled;
    if (!settings_.supersede || !store_ || sent.triggers.empty() || sent.is_private()) return cancelled;
    const auto sources = trigger_sources(sent);
    for (const auto& p : pending_requests()) {
        const TestRequest& old = p.request;
        if (p.state != "queued" || !old.uuid || old.uuid == sent.uuid || old.is_private()) continue;
        if (old.package != sent.package || p.release != release || p.arch != arch || old.ppas != sent.ppas)
            continue;
        if (trigger_sources(old) != sources || old.triggers == sent.triggers) continue;
        try {
            cancel_and_forget(*old.uuid, "superseded by " + sent.uuid.value_or("a newer request"));
            cancelled.push_back(*old.uuid);
            logger.info("request {} ({} on {}/{}, {}) superseded by {}", *old.uuid, old.package, release,
                        arch, fmt::join(old.triggers, " "), sent.uuid.value_or(""));
        } catch (const Error& e) {
            logger.warn("could not supersede request {}: {}", *old.uuid, e.what());  // it runs: nothing lost
        }
    }
    return cancelled;
}

void RequestApi::cancel_and_forget(const std::string& uuid, const std::string& by) const {
    cancel_request(*store_, uuid, by);
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = sent_.begin(); it != sent_.end();)
        it = it->second.uuid == uuid ? sent_.erase(it) : std::next(it);
}

RequestAnswer RequestApi::cancel(const ServerRequest& r, const std::string& uuid) const {
    cancel_marker(uuid);  // a uuid the request rules accept, else 400 naming it
    const auto user = authenticate(r);
    if (!user) return unauthenticated();
    if (!store_) return error_answer(503, "cancelling needs the store, which this service does not have");
    std::optional<Pending> found;
    for (auto& p : pending_requests())
        if (p.request.uuid == uuid) {
            found = std::move(p);
            break;
        }
    if (!found)
        throw NotFound(fmt::format("no queued or running request has uuid {}", quote_for_message(uuid)));
    {
        std::lock_guard<std::mutex> lock(mutex_);
        const bool admin = policy_.admins.count(*user) > 0;
        if (!admin && found->request.requester != *user)
            return error_answer(403, fmt::format("{} may not cancel request {}: only its requester ({}) and "
                                                 "admins may",
                                                 *user, uuid, found->request.requester.value_or("unknown")));
    }
    cancel_and_forget(uuid, *user);
    logger.info("{} cancelled {} request {} ({} on {}/{})", *user, found->state, uuid, found->request.package,
                found->release, found->arch);
    RequestAnswer a;
    a.body = {{"cancelled",
               {{"uuid", uuid},
                {"state", found->state},
                {"package", found->request.package},
                {"release", found->release},
                {"arch", found->arch},
                {"by", *user}}}};
    return a;
}

bool RequestApi::take_tokens(const std::string& user, std::size_t n, double& retry_after) const {
    if (settings_.requests_per_minute <= 0) return true;
    std::lock_guard<std::mutex> lock(mutex_);
    const double rate = settings_.requests_per_minute / 60.0;
    const auto t = std::chrono::steady_clock::now();
    auto [it, fresh] = buckets_.try_emplace(user, Bucket{static_cast<double>(settings_.burst), t});
    Bucket& b = it->second;
    b.tokens =
        std::min<double>(settings_.burst, b.tokens + rate * std::chrono::duration<double>(t - b.at).count());
    b.at = t;
    if (b.tokens >= static_cast<double>(n)) {
        b.tokens -= static_cast<double>(n);
        return true;
    }
    retry_after = (static_cast<double>(n) - b.tokens) / rate;
    return false;
}

std::optional<RequestAnswer> RequestApi::refuse_duplicates(const std::vector<Wanted>& wanted) const {
    std::map<std::string, json> pending;  // identity -> where it is
    for (const auto& p : pending_requests()) {
        if (p.hidden) continue;
        json where = {{"state", p.state},
                      {"uuid", p.request.uuid ? json(*p.request.uuid) : json(nullptr)},
                      {"link", p.state == "running" ? "/running" : "/queued"}};
        if (!p.queue.empty()) where["queue"] = p.queue;
        if (p.position) where["position"] = *p.position;
        const std::string identity = request_identity(p.request, p.release, p.arch);
        if (p.just_sent)
            pending.emplace(identity,
                            std::move(where));  // the queue view's entry, when there is one, says more
        else
            pending[identity] = std::move(where);
    }
    for (const auto& w : wanted) {
        auto it = pending.find(request_identity(w.request, w.release, w.arch));
        if (it == pending.end()) continue;
        return error_answer(
            409,
            fmt::format("an identical request for {} on {}/{} is already {}", w.request.package, w.release,
                        w.arch, it->second["state"].get<std::string>()),
            {{"existing", it->second}});
    }
    return std::nullopt;
}

RequestAnswer RequestApi::submit(const ServerRequest& http_request, std::vector<Wanted> wanted,
                                 bool confirm_only) const {
    const auto user = authenticate(http_request);
    if (!user) return unauthenticated();
    check_wanted(wanted, *user, validation());
    AccessDecision decision;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        for (const auto& w : wanted) {
            decision = authorize(policy_, *user, w.request);
            if (!decision.allowed) return error_answer(403, decision.reason);
        }
    }
    if (confirm_only) {
        const auto mark = http_request.target.find('?');
        const std::string query =
            mark == std::string::npos ? std::string() : http_request.target.substr(mark + 1);
        return {200, confirmation(*user, wanted, "/request.cgi", query), {}};
    }
    double retry_after = 0;
    if (!take_tokens(*user, wanted.size(), retry_after)) {
        RequestAnswer a = error_answer(429, fmt::format("too many requests from {}: try again in {:.0f} s",
                                                        *user, std::ceil(retry_after)));
        a.headers["Retry-After"] = std::to_string(static_cast<long>(std::ceil(retry_after)));
        return a;
    }
    if (auto refused = refuse_duplicates(wanted)) return *refused;
    return publish(*user, decision.rule, wanted, validation());
}

void RequestApi::check_wanted(std::vector<Wanted>& wanted, const std::string& requester,
                              const ValidationOptions& options) const {
    for (auto& w : wanted) {
        if (std::find(settings_.releases.begin(), settings_.releases.end(), w.release) ==
            settings_.releases.end())
            throw NotFound(fmt::format("release {} is not tested here (known: {})",
                                       quote_for_message(w.release), fmt::join(settings_.releases, ", ")));
        if (std::find(settings_.arches.begin(), settings_.arches.end(), w.arch) == settings_.arches.end())
            throw NotFound(fmt::format("architecture {} is not tested here (known: {})",
                                       quote_for_message(w.arch), fmt::join(settings_.arches, ", ")));
        w.request.requester = requester;
        validate(w.request, options);
        if (w.request.is_reference() && w.request.triggers.size() != 1)
            throw ValidationError("trigger", w.request.triggers.front(),
                                  "migration-reference/0 must be alone");
    }
}

RequestAnswer RequestApi::submit_webhook(const std::string& requester, std::vector<Wanted> wanted) const {
    ValidationOptions options = validation();
    options.allow_webhook_env = true;
    check_wanted(wanted, requester, options);
    if (auto refused = refuse_duplicates(wanted)) return *refused;
    return publish(requester, "webhook signature", wanted, options);
}

AccessDecision RequestApi::may_request(const std::string& user, const TestRequest& request) const {
    std::lock_guard<std::mutex> lock(mutex_);
    reload();
    return authorize(policy_, user, request);
}

bool RequestApi::cancel_pending(const std::string& uuid, const std::string& by, bool running_too) const {
    if (!store_) return false;
    for (const auto& p : pending_requests())
        if (p.request.uuid == uuid && (p.state == "queued" || running_too)) {
            cancel_and_forget(uuid, by);
            return true;
        }
    return false;
}

RequestAnswer RequestApi::publish(const std::string& requester, const std::string& rule,
                                  const std::vector<Wanted>& wanted, const ValidationOptions& options) const {
    json done = json::array();
    for (const auto& w : wanted) {
        const TestRequest sent = stamped(w.request);
        std::string queue;
        std::uint64_t position = 0;
        try {
            std::lock_guard<std::mutex> lock(
                mutex_);  // one publisher: the broker is not shared across threads
            if (!broker_) broker_ = open_broker_();
            queue = submit_request(*broker_, sent, w.release, w.arch, false, options);
            sent_[request_identity(sent, w.release, w.arch)] = {*sent.uuid, queue,     detail::unix_now(),
                                                                sent,       w.release, w.arch};
            position = broker_->queue_depth(queue);
        } catch (const NotFound&) {
            throw;  // no such queue: not an outage
        } catch (const Error& e) {
            std::lock_guard<std::mutex> lock(mutex_);
            broker_.reset();  // reconnect next time
            logger.error("publishing {} on {}/{} failed: {}", sent.package, w.release, w.arch, e.what());
            return error_answer(503,
                                "the queue cannot be reached now; what is listed under requests was queued",
                                {{"requests", done}});
        }
        logger.info("{} requested {} on {}/{} ({}): {} -> {}", requester, sent.package, w.release, w.arch,
                    rule, *sent.uuid, queue);
        const auto superseded = supersede(sent, w.release, w.arch);
        done.push_back({{"uuid", *sent.uuid},
                        {"superseded", superseded},
                        {"package", sent.package},
                        {"release", w.release},
                        {"arch", w.arch},
                        {"triggers", sent.triggers},
                        {"queue", queue},
                        {"position", position},
                        {"requester", requester},
                        {"allowed_by", rule},
                        {"links",
                         {{"package", "/packages/" + percent_encode(sent.package)},
                          {"history", history_url(sent.package, w.release, w.arch)},
                          {"result", "/run/" + *sent.uuid},
                          {"queued", "/queued"}}}});
    }
    return {200, {{"requests", done}}, {}};
}

}  // namespace apcloud::web
