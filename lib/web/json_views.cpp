// JSON views of runs, running tests, queued requests and statistics.
#include "web/json_views.hpp"

#include <fmt/format.h>

#include "autopkgtest_cloud/exit_codes.hpp"
#include "autopkgtest_cloud/layout.hpp"
#include "autopkgtest_cloud/request.hpp"
#include "autopkgtest_cloud/url.hpp"
#include "core/json_text.hpp"
#include "core/time_text.hpp"

namespace apcloud::web {

using nlohmann::json;

namespace {

// An object path in a URL: segments encoded, '/' kept, and the '@' of run ids shown as is.
std::string encode_path(const std::string& path) {
    std::string out = percent_encode(path, true);
    for (std::size_t p = 0; (p = out.find("%40", p)) != std::string::npos;) out.replace(p, 3, "@");
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
    for (const auto& e : r.env)
        if (reserved_env_reason(std::string_view(e).substr(0, e.find('='))))
            return "/api/v1/retry/" + percent_encode(r.run_id);
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

namespace {

// Builds a JSON DOM (for the pages, which add fields before rendering).
class DomOut {
public:
    explicit DomOut(json& target) : j_(target) { j_ = json::object(); }
    void str(const char* key, const std::string& v) { j_[key] = v; }
    void opt(const char* key, const std::optional<std::string>& v) { j_[key] = optional_json(v); }
    void num(const char* key, std::int64_t v) { j_[key] = v; }
    void unum(const char* key, std::optional<std::uint64_t> v) { j_[key] = v ? json(*v) : json(nullptr); }
    void boolean(const char* key, bool v) { j_[key] = v; }
    void list(const char* key, const std::vector<std::string>& v) { j_[key] = v; }
    template <class F>
    void object(const char* key, F&& fill) {
        json inner;
        DomOut o(inner);
        fill(o);
        j_[key] = std::move(inner);
    }
    template <class Items, class F>
    void objects(const char* key, const Items& items, F&& fill) {
        json arr = json::array();
        for (const auto& item : items) {
            json inner;
            DomOut o(inner);
            fill(o, item);
            arr.push_back(std::move(inner));
        }
        j_[key] = std::move(arr);
    }

private:
    json& j_;
};

// Writes compact JSON text straight into a string, byte for byte what
// nlohmann's dump() of the DomOut object gives (keys come sorted, as the
// DOM's std::map sorts them), without the DOM: a history page of 100 runs
// spent most of its time building and freeing it (bench-web-history).
class TextOut {
public:
    explicit TextOut(std::string& out) : out_(out) { out_ += '{'; }
    ~TextOut() { out_ += '}'; }
    TextOut(const TextOut&) = delete;
    TextOut& operator=(const TextOut&) = delete;
    void str(const char* key, const std::string& v) {
        name(key);
        append_json_text(out_, v);
    }
    void opt(const char* key, const std::optional<std::string>& v) {
        name(key);
        if (v)
            append_json_text(out_, *v);
        else
            out_ += "null";
    }
    void num(const char* key, std::int64_t v) {
        name(key);
        out_ += std::to_string(v);
    }
    void unum(const char* key, std::optional<std::uint64_t> v) {
        name(key);
        out_ += v ? std::to_string(*v) : std::string("null");
    }
    void boolean(const char* key, bool v) {
        name(key);
        out_ += v ? "true" : "false";
    }
    void list(const char* key, const std::vector<std::string>& v) {
        name(key);
        out_ += '[';
        for (std::size_t i = 0; i < v.size(); ++i) {
            if (i) out_ += ',';
            append_json_text(out_, v[i]);
        }
        out_ += ']';
    }
    template <class F>
    void object(const char* key, F&& fill) {
        name(key);
        TextOut o(out_);
        fill(o);
    }
    template <class Items, class F>
    void objects(const char* key, const Items& items, F&& fill) {
        name(key);
        out_ += '[';
        bool first = true;
        for (const auto& item : items) {
            if (!first) out_ += ',';
            first = false;
            TextOut o(out_);
            fill(o, item);
        }
        out_ += ']';
    }

private:
    void name(const char* key) {
        if (!first_) out_ += ',';
        first_ = false;
        out_ += '"';
        out_ += key;  // our own keys: plain ASCII
        out_ += "\":";
    }
    std::string& out_;
    bool first_ = true;
};

// The one description of a run in API v1, for both builders. Keys in sorted
// order, so that the text builder writes what the DOM's dump() writes.
template <class Out>
void describe_run(Out& o, const IndexedRecord& rec, bool with_summary) {
    const IndexedRun& r = rec.run;
    const RunUrls urls = run_urls(r);
    o.boolean("all_proposed", r.all_proposed);
    o.str("arch", r.arch);
    o.opt("build_git", r.build_git);
    o.str("container", r.container);
    o.unum("duration", r.duration);
    o.list("env", r.env);
    o.num("exitcode", r.exitcode);
    o.str("outcome", std::string(outcome_name(outcome(r.exitcode))));
    o.str("package", r.package);
    o.list("ppas", r.ppas);
    o.boolean("private", r.is_private);
    o.str("release", r.release);
    o.opt("requester", r.requester);
    o.opt("retry", retry_allowed(r) ? std::optional<std::string>(retry_url(r)) : std::nullopt);
    o.str("run_id", r.run_id);
    o.num("seq", rec.seq);
    o.str("started", detail::format_iso_time(r.started()).substr(0, 19) + "Z");
    o.opt("test_git", r.test_git);
    o.opt("testname", r.testname);
    if (with_summary)
        o.objects("tests", parse_summary(r.summary.value_or("")), [](auto& t, const auto& test) {
            t.str("detail", test.detail);
            t.str("name", test.name);
            t.str("result", test.result);
        });
    o.list("triggers", r.triggers);
    o.object("urls", [&](auto& u) {
        u.str("artifacts", urls.artifacts);
        u.str("log", urls.log);
        u.str("page", urls.page);
        u.str("result", urls.result);
    });
    o.opt("uuid", r.uuid);
    o.opt("version", r.version);
}

}  // namespace

void append_json_text(std::string& out, const std::string& value) {
    if (!is_valid_utf8(value)) {
        // Invalid UTF-8 as nlohmann replaces it (U+FFFD), from nlohmann itself.
        out += json(value).dump(-1, ' ', false, json::error_handler_t::replace);
        return;
    }
    detail::append_json_string(out, value, false);
}

json run_json(const IndexedRecord& rec, bool with_summary) {
    json j;
    DomOut o(j);
    describe_run(o, rec, with_summary);
    return j;
}

void append_run_json(std::string& out, const IndexedRecord& rec, bool with_summary) {
    TextOut o(out);
    describe_run(o, rec, with_summary);
}

std::string history_json(const std::string& package, const std::string& release, const std::string& arch,
                         const std::string& container, const HistoryPage& page) {
    std::string out;
    out.reserve(page.runs.size() * 1024 + 256);
    {
        TextOut o(out);
        o.str("arch", arch);
        o.str("container", container);
        o.opt("next_before", page.next_before);
        o.str("package", package);
        o.str("release", release);
        o.objects("runs", page.runs,
                  [](TextOut& run, const IndexedRecord& rec) { describe_run(run, rec, false); });
    }
    out += '\n';
    return out;
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
