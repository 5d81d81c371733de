// JSON views of runs, running tests, queued requests and statistics.
#include "web/json_views.hpp"

#include <fmt/format.h>

#include "autopkgtest_cloud/exit_codes.hpp"
#include "autopkgtest_cloud/layout.hpp"
#include "autopkgtest_cloud/url.hpp"
#include "core/time_text.hpp"

namespace apcloud::web {

using nlohmann::json;

namespace {

// An object path in a URL: segments encoded, '/' kept, and the '@' of run ids shown as is.
std::string encode_path(const std::string& path) {
    std::string out;
    for (char c : path) {
        if (c == '/' || c == '@')
            out += c;
        else
            out += percent_encode(std::string_view(&c, 1));
    }
    return out;
}

json optional_json(const std::optional<std::string>& v) {
    return v ? json(*v) : json(nullptr);
}

}  // namespace

namespace {

// `?container=NAME` for a container other than the release's own.
std::string container_query(const std::string& container) {
    if (container.empty()) return {};
    const auto info = parse_container_name(container);
    return info && info->is_release() ? std::string() : "?container=" + percent_encode(container);
}

}  // namespace

std::string human_time(std::int64_t unix_time) {
    return detail::format_submit_stamp(unix_time) + " UTC";
}

std::string history_url(const std::string& package, const std::string& release, const std::string& arch,
                        const std::string& container) {
    return fmt::format("/packages/{}/{}/{}{}", percent_encode(package), percent_encode(release),
                       percent_encode(arch), container_query(container));
}

RunUrls run_urls(const IndexedRun& r) {
    RunUrls u;
    const std::string dir = encode_path(result_dir(r.release, r.arch, r.package, r.run_id));
    const std::string base = "/results/" + percent_encode(r.container) + "/" + dir + "/";
    u.log = base + "log.gz";
    u.artifacts = base + "artifacts.tar.gz";
    u.result = base + "result.tar";
    u.page = fmt::format("/packages/{}/{}/{}/{}{}", percent_encode(r.package), percent_encode(r.release),
                         percent_encode(r.arch), encode_path(r.run_id), container_query(r.container));
    u.history = history_url(r.package, r.release, r.arch, r.container);
    return u;
}

bool retry_allowed(const IndexedRun& r) {
    switch (outcome(r.exitcode)) {
        case Outcome::pass:
        case Outcome::neutral:
        case Outcome::denylisted:
            return false;
        default:
            return true;
    }
}

std::string retry_url(const IndexedRun& r) {
    std::string url = fmt::format("/request.cgi?release={}&arch={}&package={}", percent_encode(r.release),
                                  percent_encode(r.arch), percent_encode(r.package));
    for (const auto& t : r.triggers) url += "&trigger=" + percent_encode(t);
    for (const auto& p : r.ppas) url += "&ppa=" + percent_encode(p);
    for (const auto& e : r.env) url += "&env=" + percent_encode(e);
    if (r.all_proposed) url += "&all-proposed=1";
    if (r.testname) url += "&testname=" + percent_encode(*r.testname);
    if (r.build_git) url += "&build-git=" + percent_encode(*r.build_git);
    return url;
}

json run_json(const IndexedRecord& rec, bool with_summary) {
    const IndexedRun& r = rec.run;
    const RunUrls urls = run_urls(r);
    json j = {
        {"seq", rec.seq},
        {"container", r.container},
        {"release", r.release},
        {"arch", r.arch},
        {"package", r.package},
        {"run_id", r.run_id},
        {"started", detail::format_iso_time(r.started()).substr(0, 19) + "Z"},
        {"version", optional_json(r.version)},
        {"triggers", r.triggers},
        {"env", r.env},
        {"all_proposed", r.all_proposed},
        {"exitcode", r.exitcode},
        {"outcome", std::string(outcome_name(outcome(r.exitcode)))},
        {"duration", r.duration ? json(*r.duration) : json(nullptr)},
        {"requester", optional_json(r.requester)},
        {"uuid", optional_json(r.uuid)},
        {"ppas", r.ppas},
        {"testname", optional_json(r.testname)},
        {"build_git", optional_json(r.build_git)},
        {"test_git", optional_json(r.test_git)},
        {"private", r.is_private},
        {"urls",
         {{"page", urls.page}, {"log", urls.log}, {"artifacts", urls.artifacts}, {"result", urls.result}}},
        {"retry", retry_allowed(r) ? json(retry_url(r)) : json(nullptr)},
    };
    if (with_summary) {
        json tests = json::array();
        for (const auto& t : parse_summary(r.summary.value_or("")))
            tests.push_back({{"name", t.name}, {"result", t.result}, {"detail", t.detail}});
        j["tests"] = std::move(tests);
    }
    return j;
}

std::string human_duration(std::uint64_t s) {
    if (s >= 3600) return fmt::format("{}h {:02}m {:02}s", s / 3600, s / 60 % 60, s % 60);
    if (s >= 60) return fmt::format("{}m {:02}s", s / 60, s % 60);
    return fmt::format("{}s", s);
}

json recent_reference_json(const IndexedRecord& rec) {
    const IndexedRun& r = rec.run;
    return {
        {"version", optional_json(r.version)},
        {"triggers", r.triggers_column()},
        {"additional_params", r.env_column()},
        {"human_date", human_time(r.started())},
        {"human_sec", human_duration(r.duration.value_or(0))},
        {"requester", r.requester.value_or("")},
        {"code", std::string(outcome_name(outcome(r.exitcode)))},
        {"url", run_urls(r).log},
        {"show_retry", retry_allowed(r)},
        {"all_proposed", r.all_proposed},
        {"run_id", r.run_id},
        {"package", r.package},
        {"release", r.release},
        {"arch", r.arch},
    };
}

json running_json(const RunningTest& t) {
    return {
        {"package", t.package},   {"release", t.release},
        {"arch", t.arch},         {"params", t.params},
        {"duration", t.duration}, {"logtail", t.logtail},
        {"stale", t.stale},       {"last_seen", detail::format_iso_time(t.last_seen).substr(0, 19) + "Z"}};
}

json queued_request_json(const QueuedRequest& q, std::optional<std::int64_t> estimated_start) {
    return {{"queue", q.queue},
            {"context", reference_context(q.name.context)},
            {"release", q.name.release},
            {"arch", q.name.arch},
            {"position", q.position},
            {"request", q.body},
            {"private", q.is_private},
            {"package", optional_json(q.package)},
            {"uuid", optional_json(q.uuid)},
            {"requester", optional_json(q.requester)},
            {"triggers", q.triggers},
            {"estimated_start", estimated_start
                                    ? json(detail::format_iso_time(*estimated_start).substr(0, 19) + "Z")
                                    : json(nullptr)}};
}

json statistics_json(const ReleaseArchStats& s) {
    json days = json::array();
    for (const auto& d : s.days)
        days.push_back({{"day", d.day},
                        {"pass", d.pass},
                        {"fail", d.fail},
                        {"neutral", d.neutral},
                        {"tmpfail", d.tmpfail},
                        {"error", d.error}});
    return {
        {"release", s.release},
        {"arch", s.arch},
        {"packages", s.packages},
        {"passing", s.passing},
        {"pass_rate", s.packages ? static_cast<double>(s.passing) / static_cast<double>(s.packages) : 0.0},
        {"runs", s.runs},
        {"runs_passed", s.runs_passed},
        {"runs_failed", s.runs_failed},
        {"runs_neutral", s.runs_neutral},
        {"runs_tmpfail", s.runs_tmpfail},
        {"runs_error", s.runs_error},
        {"days", days}};
}

}  // namespace apcloud::web
