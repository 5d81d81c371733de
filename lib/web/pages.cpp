// The pages: each takes the JSON API's view of what it shows and adds what a
// person reads (dates and durations in words, retry links, the log in
// sections), then renders its template. Values reach the HTML only through
// the templates, which escape every one of them.
#include "web/pages.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <set>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/exit_codes.hpp"
#include "autopkgtest_cloud/file_io.hpp"
#include "autopkgtest_cloud/layout.hpp"
#include "autopkgtest_cloud/request.hpp"
#include "autopkgtest_cloud/url.hpp"
#include "core/time_text.hpp"
#include "web/json_views.hpp"
#include "web/web_app.hpp"

namespace apcloud::web {

using http::ServerRequest;
using http::ServerResponse;
using nlohmann::json;

namespace {

// A run as the pages show it: the API's view plus words for people.
json run_view(const IndexedRecord& rec, bool with_summary = false) {
    json j = run_json(rec, with_summary);
    j["started_human"] = human_time(rec.run.started());
    j["duration_human"] = rec.run.duration ? human_duration(*rec.run.duration) : std::string();
    j["retry_link"] = j["retry"];
    return j;
}

// A run as a row of the run tables shows it (_run_row.mustache): only those
// fields, where the API's whole view took a third of a history page's time.
// Every key is present (null when empty), so that no name falls through to
// the page's own data.
json run_row(const IndexedRecord& rec) {
    const IndexedRun& r = rec.run;
    const RunUrls u = run_urls(r);
    json j = json::object();
    j["all_proposed"] = r.all_proposed;
    j["arch"] = r.arch;
    j["duration_human"] = r.duration ? human_duration(*r.duration) : std::string();
    j["env"] = r.env;
    j["outcome"] = std::string(outcome_name(outcome(r.exitcode)));
    j["package"] = r.package;
    j["release"] = r.release;
    j["requester"] = r.requester ? json(*r.requester) : json(nullptr);
    j["retry_link"] = retry_allowed(r) ? json(retry_url(r)) : json(nullptr);
    j["started_human"] = human_time(r.started());
    j["triggers"] = r.triggers;
    j["urls"] = {{"artifacts", u.artifacts}, {"log", u.log}, {"page", u.page}, {"result", u.result}};
    j["version"] = r.version ? json(*r.version) : json(nullptr);
    return j;
}

json run_rows(const std::vector<IndexedRecord>& runs) {
    json out = json::array();
    for (const auto& r : runs) out.push_back(run_row(r));
    return out;
}

json running_view(const RunningTest& t) {
    json j = running_json(t);
    j["duration_human"] = human_duration(t.duration);
    json params = json::array();
    for (const auto& [k, v] : t.params.items())
        params.push_back({{"key", k}, {"value", v.is_string() ? v.get<std::string>() : v.dump()}});
    j["params_list"] = params;
    return j;
}

ServerResponse redirect(const std::string& location) {
    ServerResponse r = ServerResponse::text(302, "", "text/plain; charset=utf-8");
    r.headers["Location"] = location;
    return r;
}

const char* reason_phrase(int status) {
    switch (status) {
        case 400:
            return "Bad request";
        case 401:
            return "Not authenticated";
        case 409:
            return "Already requested";
        case 429:
            return "Too many requests";
        case 403:
            return "Forbidden";
        case 404:
            return "Not found";
        case 405:
            return "Method not allowed";
        case 503:
            return "Not ready";
        default:
            return status >= 500 ? "Internal error" : "Error";
    }
}

// The key a retry link is shown once for on a history page.
std::string version_triggers(const IndexedRun& r) {
    return r.version.value_or("") + "\n" + r.triggers_column();
}

// The Host header when it looks like one ("name[:port]", "[v6]:port"), else localhost.
std::string base_url(const ServerRequest& request) {
    std::string host = request.header("Host").value_or("localhost");
    const bool plain =
        !host.empty() && host.size() < 256 && std::all_of(host.begin(), host.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
                   c == '[' || c == ']';
        });
    return "http://" + (plain ? host : std::string("localhost"));
}

}  // namespace

Pages::Pages(const ResultsIndex& index, const RunningTests& running, const WebState& state, Store* store,
             const WebSettings& settings)
    : index_(index),
      running_(running),
      state_(state),
      store_(store),
      settings_(settings),
      templates_(settings.share_dir + "/templates") {}

std::string Pages::banner() const {
    if (settings_.banner_file.empty()) return {};
    try {
        std::string text = read_file(settings_.banner_file);
        while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
        return text;
    } catch (const Error&) {
        return {};  // no banner file: no banner
    }
}

ServerResponse Pages::render(const std::string& name, json data, int status) const {
    if (!data.contains("banner")) data["banner"] = banner();
    ServerResponse r =
        ServerResponse::text(status, templates_.render(name, data), "text/html; charset=utf-8");
    r.headers["Cache-Control"] = "no-cache";
    r.headers["X-Content-Type-Options"] = "nosniff";
    r.headers["Content-Security-Policy"] =
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors "
        "'none'";
    return r;
}

ServerResponse Pages::request_page(int status, const json& answer) const {
    json data = answer;
    const bool confirm = status == 200 && answer.contains("confirm");
    data["title"] = confirm         ? "Confirm the request"
                    : status == 200 ? "Test requested"
                                    : fmt::format("{} {}", status, reason_phrase(status));
    data["ok"] = status == 200 && !confirm;
    data["status_text"] = fmt::format("{} {}", status, reason_phrase(status));
    // Positions as text (the template shows 0 too); the pending request is in
    // the refusal (409) or in the confirmation.
    json& holder = confirm ? data["confirm"] : data;
    if (holder.contains("existing"))
        holder["existing"]["position"] = holder["existing"].value("position", json()).dump();
    if (data.contains("requests"))
        for (auto& r : data["requests"]) r["position"] = r["position"].dump();
    return render("request", std::move(data), status);
}

ServerResponse Pages::error_page(int status, const std::string& message) const {
    return render("error",
                  {{"title", fmt::format("{} {}", status, reason_phrase(status))},
                   {"status", std::to_string(status)},
                   {"reason", reason_phrase(status)},
                   {"message", message}},
                  status);
}

std::optional<ServerResponse> Pages::handle(const ServerRequest& request,
                                            const std::vector<std::string>& segs) const {
    if (segs.empty()) return home();
    const std::string& first = segs[0];
    if (first == "static" && segs.size() >= 3) {
        const std::vector<std::string> rest(segs.begin() + 2, segs.end());
        if (segs[1] == "bootstrap") return static_file(settings_.vendor_dir + "/bootstrap5", rest, request);
        if (segs[1] == "chart.js") return static_file(settings_.vendor_dir + "/chart.js", rest, request);
        if (segs[1] == "apcloud") return static_file(settings_.share_dir + "/static", rest, request);
        return std::nullopt;
    }
    if (first == "packages") return package_pages(request, {segs.begin() + 1, segs.end()});
    if (first == "run" && segs.size() == 2) {
        auto rec = index_.run_by_uuid(segs[1], viewer_of(request));
        if (!rec) throw NotFound(fmt::format("no run of a request with uuid {}", quote_for_message(segs[1])));
        return redirect(run_urls(rec->run).page);
    }
    if (segs.size() == 1) {
        // Browsers ask for it on their own (an Atom feed, a log.gz shown inline).
        if (first == "favicon.ico")
            return static_file(settings_.share_dir + "/static", {"favicon.svg"}, request);
        if (first == "running") return running_page();
        if (first == "queued") return queued_page();
        if (first == "recent") return recent_page(request);
        if (first == "testlist") return testlist_page();
        if (first == "request") return request_form(request);
        if (first == "statistics") return statistics_page();
    }
    if (first == "user" && segs.size() == 2) return user_page(segs[1]);
    if (first == "feeds" && segs.size() == 2 && segs[1].size() > 5 &&
        segs[1].compare(segs[1].size() - 5, 5, ".atom") == 0)
        return atom_feed(request, segs[1].substr(0, segs[1].size() - 5));
    return std::nullopt;
}

ServerResponse Pages::home() const {
    RecentQuery q;
    q.limit = 20;
    std::map<std::pair<std::string, std::string>, std::pair<std::size_t, std::size_t>> counts;
    for (const auto& r : settings_.releases)
        for (const auto& a : settings_.arches) counts[{r, a}] = {0, 0};
    if (auto s = state_.queues())
        for (const auto& [queue, size] : s->sizes) {
            const QueueName name = parse_queue_name(queue);
            counts[{name.release, name.arch}].first += size;
        }
    for (const auto& t : running_.list()) ++counts[{t.release, t.arch}].second;
    json rows = json::array();
    for (const auto& [where, n] : counts)
        rows.push_back({{"release", where.first},
                        {"arch", where.second},
                        {"queued", std::to_string(n.first)},
                        {"running", std::to_string(n.second)}});
    return render("home", {{"title", "Home"},
                           {"recent", run_rows(index_.recent(q, Viewer{}))},
                           {"show_package", true},
                           {"counts", rows}});
}

ServerResponse Pages::package_pages(const ServerRequest& request,
                                    const std::vector<std::string>& rest) const {
    if (rest.empty()) {  // the search box
        const std::string name = request.param("name").value_or("");
        if (name.empty()) return redirect("/testlist");
        check_package_name(name);
        return redirect("/packages/" + percent_encode(name));
    }
    const PackagePath p = parse_package_path(rest);
    if (!p.release) return package_page(p.package);
    if (!p.run_id) return history_page(request, p.package, *p.release, *p.arch);
    const std::string container = request.param("container").value_or("");
    if (!container.empty() && !parse_container_name(container))
        throw ValidationError("container", container, "must be [private-]autopkgtest-RELEASE[-LPUSER-PPA]");
    auto rec =
        index_.run(container, RunLocation{*p.release, *p.arch, p.package, *p.run_id}, viewer_of(request));
    if (!rec)
        throw NotFound(fmt::format("no run {} of {} on {}/{}", *p.run_id, p.package, *p.release, *p.arch));
    return run_page(*rec);
}

ServerResponse Pages::package_page(const std::string& package) const {
    const auto latest = index_.latest(package, Viewer{});
    std::vector<std::string> releases = settings_.releases, arches = settings_.arches;
    std::map<std::pair<std::string, std::string>, const IndexedRecord*> cell;
    for (const auto& r : latest) {
        cell[{r.run.release, r.run.arch}] = &r;
        if (std::find(releases.begin(), releases.end(), r.run.release) == releases.end())
            releases.push_back(r.run.release);
        if (std::find(arches.begin(), arches.end(), r.run.arch) == arches.end()) arches.push_back(r.run.arch);
    }
    json rows = json::array();
    for (const auto& rel : releases) {
        json cells = json::array();
        for (const auto& arch : arches) {
            auto it = cell.find({rel, arch});
            json run = nullptr;
            if (it != cell.end()) {
                run = run_view(*it->second);
                run["history"] = history_url(package, rel, arch);
            }
            cells.push_back({{"run", run}});
        }
        rows.push_back({{"release", rel}, {"cells", cells}});
    }
    json running = json::array();
    for (const auto& t : running_.list())
        if (t.package == package) running.push_back(running_view(t));
    json queued = queued_views([&](const QueuedRequest& r) { return r.package && *r.package == package; });
    if (latest.empty() && running.empty() && queued.empty())
        throw NotFound(fmt::format("no results for package {}", quote_for_message(package)));
    return render("package", {{"title", package},
                              {"package", package},
                              {"atom", "/feeds/" + percent_encode(package) + ".atom"},
                              {"arches", arches},
                              {"rows", rows},
                              {"running", running},
                              {"has_running", !running.empty()},
                              {"queued", queued},
                              {"has_queued", !queued.empty()}});
}

ServerResponse Pages::history_page(const ServerRequest& request, const std::string& package,
                                   const std::string& release, const std::string& arch) const {
    const auto limit =
        number_param(request, "limit", 1, static_cast<std::int64_t>(settings_.max_page)).value_or(100);
    const auto before = request.param("before");
    if (before && !run_id_time(*before)) throw ValidationError("before", *before, "must be a run id");
    const std::string container = request.param("container").value_or("");
    if (!container.empty() && !parse_container_name(container))
        throw ValidationError("container", container, "must be [private-]autopkgtest-RELEASE[-LPUSER-PPA]");
    const Viewer viewer = viewer_of(request);
    auto page =
        index_.history(package, release, arch, container, before, static_cast<std::size_t>(limit), viewer);
    if (page.runs.empty() && !before)
        throw NotFound(fmt::format("no results for {} on {}/{}", quote_for_message(package), release, arch));
    // A retry link only on the newest run of each (version, triggers): newer pages count too.
    // Deep in a long history, newer runs are not all looked at: no retry links there then.
    std::set<std::string> seen;
    bool known = true;
    std::optional<std::string> cursor;
    for (int pages = 0; before && (!cursor || *cursor > *before); ++pages) {
        if (pages == 20) {
            known = false;
            break;
        }
        auto newer = index_.history(package, release, arch, container, cursor, settings_.max_page, viewer);
        for (const auto& r : newer.runs)
            if (r.run.run_id > *before) seen.insert(version_triggers(r.run));
        if (!newer.next_before) break;
        cursor = newer.next_before;
    }
    json runs = json::array();
    for (const auto& r : page.runs) {
        json v = run_row(r);
        if (!seen.insert(version_triggers(r.run)).second || !known) v["retry_link"] = nullptr;
        runs.push_back(std::move(v));
    }
    const std::string self = history_url(package, release, arch);
    const std::string keep = (container.empty() ? "" : "container=" + percent_encode(container) + "&") +
                             (limit != 100 ? fmt::format("limit={}&", limit) : std::string());
    json data = {{"title", fmt::format("{} {}/{}", package, release, arch)},
                 {"package", package},
                 {"release", release},
                 {"arch", arch},
                 {"container", container},
                 {"is_ppa", !container.empty()}};
    data["runs"] = std::move(runs);  // not in the list above: that would copy every row
    if (page.next_before) data["older"] = self + "?" + keep + "before=" + percent_encode(*page.next_before);
    if (before) data["newest"] = self + (keep.empty() ? "" : "?" + keep.substr(0, keep.size() - 1));
    return render("history", std::move(data));
}

json Pages::queued_views(const std::function<bool(const QueuedRequest&)>& keep) const {
    json out = json::array();
    if (auto s = state_.queues())
        for (const auto& r : s->requests) {
            if (!keep(r)) continue;
            const auto start = estimated_start(index_, running_, r);
            json j = queued_request_json(r, start);
            j["estimated_start"] =
                start ? (*start <= detail::unix_now() ? std::string("soon") : human_time(*start)) : "";
            j["position"] = std::to_string(r.position);
            out.push_back(std::move(j));
        }
    return out;
}

ServerResponse Pages::running_page() const {
    json queues = json::array();
    if (auto s = state_.queues())
        for (const auto& q : s->queues) {
            const QueueName name = parse_queue_name(q);
            auto size = s->sizes.find(q);
            queues.push_back({{"queue", q},
                              {"context", reference_context(name.context)},
                              {"release", name.release},
                              {"arch", name.arch},
                              {"size", std::to_string(size == s->sizes.end() ? 0 : size->second)}});
        }
    json running = json::array();
    for (const auto& t : running_.list()) running.push_back(running_view(t));
    return render("running", {{"title", "Running"},
                              {"queues", queues},
                              {"running_count", std::to_string(running.size())},
                              {"running", running},
                              {"queued", queued_views([](const QueuedRequest&) { return true; })}});
}

ServerResponse Pages::queued_page() const {
    return render("queued",
                  {{"title", "Queued"}, {"queued", queued_views([](const QueuedRequest&) { return true; })}});
}

ServerResponse Pages::recent_page(const ServerRequest& request) const {
    const RecentQuery q = recent_query(request, settings_.max_page);
    const auto& outcomes = outcome_names();
    json options = json::array({{{"value", ""}, {"label", "any result"}, {"selected", q.outcome.empty()}}});
    for (const auto& o : outcomes)
        options.push_back({{"value", o}, {"label", o}, {"selected", o == q.outcome}});
    const auto runs = index_.recent(q, viewer_of(request));
    std::string filter;
    for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
             {"release", q.release}, {"arch", q.arch}, {"user", q.user}, {"result", q.outcome}})
        if (!v.empty()) filter += k + "=" + percent_encode(v) + "&";
    if (q.limit != 100) filter += fmt::format("limit={}&", q.limit);
    json data = {{"title", "Recent results"},
                 {"runs", run_rows(runs)},
                 {"show_package", true},
                 {"filter", {{"release", q.release}, {"arch", q.arch}, {"user", q.user}}},
                 {"outcomes", options}};
    if (runs.size() == q.limit)
        data["older"] = fmt::format("/recent?{}offset={}", filter, q.offset + q.limit);
    if (q.offset > 0)
        data["newer"] =
            fmt::format("/recent?{}offset={}", filter, q.offset > q.limit ? q.offset - q.limit : 0);
    return render("recent", std::move(data));
}

ServerResponse Pages::user_page(const std::string& user) const {
    RecentQuery q;
    q.user = user;
    q.limit = settings_.max_page;
    json running = json::array();
    for (const auto& t : running_.list())
        if (t.params.value("requester", std::string()) == user) running.push_back(running_view(t));
    return render("user", {{"title", "Tests of " + user},
                           {"user", user},
                           {"runs", run_rows(index_.recent(q, Viewer{}))},
                           {"show_package", true},
                           {"running", running},
                           {"queued", queued_views([&](const QueuedRequest& r) {
                                return r.requester && *r.requester == user;
                            })}});
}

// A form for request.cgi (GET, so that what it sends is the link a program
// would use); request.cgi then shows its confirmation page.
ServerResponse Pages::request_form(const ServerRequest& request) const {
    json releases = json::array(), arches = json::array();
    const std::string release = request.param("release").value_or("");
    for (const auto& r : settings_.releases) releases.push_back({{"name", r}, {"selected", r == release}});
    for (const auto& a : settings_.arches) arches.push_back({{"name", a}});
    return render("request_form", {{"title", "Request a test"},
                                   {"releases", releases},
                                   {"arches", arches},
                                   {"package", request.param("package").value_or("")},
                                   {"trigger", request.param("trigger").value_or("")}});
}

ServerResponse Pages::testlist_page() const {
    json groups = json::array();
    std::string prefix;
    for (const auto& p : index_.packages()) {
        const std::string pre = srcpkg_prefix(p);
        if (groups.empty() || pre != prefix) {
            groups.push_back({{"prefix", pre}, {"packages", json::array()}});
            prefix = pre;
        }
        groups.back()["packages"].push_back(p);
    }
    return render("testlist", {{"title", "Packages"}, {"groups", groups}});
}

namespace {

// debci's tmpfail alert: more than a tenth of the last week's runs were tmpfails.
std::string tmpfail_alert(const ReleaseArchStats& s) {
    std::size_t runs = 0, tmpfail = 0;
    const std::size_t from = s.days.size() > 7 ? s.days.size() - 7 : 0;
    for (std::size_t i = from; i < s.days.size(); ++i) {
        const auto& d = s.days[i];
        runs += d.pass + d.fail + d.neutral + d.tmpfail + d.error;
        tmpfail += d.tmpfail;
    }
    if (runs == 0 || tmpfail * 10 <= runs) return {};
    return fmt::format(
        "{} of the {} runs of the last {} days on {}/{} were tmpfails: the testbeds may be broken.", tmpfail,
        runs, s.days.size() - from, s.release, s.arch);
}

}  // namespace

ServerResponse Pages::statistics_page() const {
    json stats = json::array();
    if (auto all = state_.statistics())
        for (const auto& s : *all) {
            json j = statistics_json(s);
            j["pass_rate_pct"] = fmt::format("{:.1f}%", 100.0 * j["pass_rate"].get<double>());
            for (const char* k : {"packages", "passing", "runs", "runs_passed", "runs_failed", "runs_neutral",
                                  "runs_tmpfail", "runs_error"})
                j[k] = std::to_string(j[k].get<std::size_t>());
            j["chart_json"] = j["days"].dump();
            for (auto& d : j["days"])
                for (const char* k : {"pass", "fail", "neutral", "tmpfail", "error"})
                    d[k] = std::to_string(d[k].get<std::size_t>());
            const std::string alert = tmpfail_alert(s);
            j["tmpfail_alert"] = alert;
            j["has_tmpfail_alert"] = !alert.empty();
            stats.push_back(std::move(j));
        }
    RecentQuery q;
    q.limit = 1000;
    auto recent = index_.recent(q, Viewer{});
    std::stable_sort(recent.begin(), recent.end(), [](const IndexedRecord& a, const IndexedRecord& b) {
        return a.run.duration.value_or(0) > b.run.duration.value_or(0);
    });
    if (recent.size() > 20) recent.resize(20);
    json slow = run_rows(recent);
    return render("statistics", {{"title", "Statistics"},
                                 {"stats", stats},
                                 {"charts", !stats.empty()},
                                 {"slow", slow},
                                 {"has_slow", !slow.empty()}});
}

ServerResponse Pages::atom_feed(const ServerRequest& request, const std::string& package) const {
    check_package_name(package);
    const auto latest = index_.latest(package, Viewer{});
    if (latest.empty()) throw NotFound(fmt::format("no results for package {}", quote_for_message(package)));
    // Transitions between pass, fail and neutral, per release and arch, newest first.
    std::vector<std::pair<IndexedRecord, std::string>> changes;
    for (const auto& l : latest) {
        auto page = index_.history(package, l.run.release, l.run.arch, "", std::nullopt, 500, Viewer{});
        std::optional<IndexedRecord> newer;
        for (const auto& r : page.runs) {
            const Outcome o = outcome(r.run.exitcode);
            if (o != Outcome::pass && o != Outcome::fail && o != Outcome::neutral) continue;
            if (newer && outcome(newer->run.exitcode) != o)
                changes.emplace_back(*newer, std::string(outcome_name(o)));
            newer = r;
        }
        if (newer) changes.emplace_back(*newer, "nothing");  // the first result there
    }
    std::sort(changes.begin(), changes.end(),
              [](const auto& a, const auto& b) { return a.first.run.run_id > b.first.run.run_id; });
    if (changes.size() > 50) changes.resize(50);
    json entries = json::array();
    for (const auto& [rec, previous] : changes) {
        json j = run_json(rec);
        j["previous"] = previous;
        j["triggers_text"] = rec.run.triggers_column();
        entries.push_back(std::move(j));
    }
    const std::string updated = entries.empty()
                                    ? detail::format_iso_time(detail::unix_now()).substr(0, 19) + "Z"
                                    : entries.front()["started"].get<std::string>();
    ServerResponse r = ServerResponse::text(
        200,
        templates_.render(
            "atom",
            {{"package", package}, {"base", base_url(request)}, {"updated", updated}, {"entries", entries}}),
        "application/atom+xml; charset=utf-8");
    r.headers["Cache-Control"] = "no-cache";
    return r;
}

}  // namespace apcloud::web
