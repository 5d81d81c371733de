// The pure parts of the operator's commands: dead letters described, selected and printed; running.json read
// and printed.
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <tuple>

#include "autopkgtest_cloud/admin.hpp"
#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/request.hpp"
#include "autopkgtest_cloud/routing.hpp"
#include "core/json_reader.hpp"

namespace apcloud {

using nlohmann::json;

std::string dead_letter_queue_name(std::string_view name) {
    std::string q(name);
    const bool has_suffix =
        q.size() >= dead_letter_suffix.size() &&
        q.compare(q.size() - dead_letter_suffix.size(), dead_letter_suffix.size(), dead_letter_suffix) == 0;
    if (!has_suffix) q += dead_letter_suffix;
    if (q.size() == dead_letter_suffix.size())
        throw ValidationError("queue", std::string(name), "names no queue (expected QUEUE or QUEUE.dead)");
    return q;
}

std::string original_queue_name(std::string_view dead_queue) {
    const std::size_t n = dead_letter_suffix.size();
    if (dead_queue.size() <= n || dead_queue.substr(dead_queue.size() - n) != dead_letter_suffix)
        throw ValidationError(
            "queue", std::string(dead_queue),
            "is not a dead-letter queue (expected QUEUE.dead, e.g. debci-noble-amd64.dead)");
    return std::string(dead_queue.substr(0, dead_queue.size() - n));
}

namespace {

// The parameters an operator needs, read from a body the validator refused:
// the JSON object after the package, strictly (RFC 8259, nesting bounded),
// other keys skipped.
void read_leniently(std::string_view body, RequestSummary& s) {
    const std::size_t cut = body.find_first_of("\n ");
    s.package = std::string(body.substr(0, cut));
    if (cut == std::string_view::npos) return;
    try {
        detail::JsonReader r(body.substr(cut + 1));
        if (r.peek() != detail::JsonType::object) {
            s.unreadable = true;
            return;
        }
        r.begin_object();
        std::string key;
        while (r.next_key(key)) {
            if ((key == "uuid" || key == "requester") && r.peek() == detail::JsonType::string) {
                std::string v;
                r.read_string(v);
                (key == "uuid" ? s.uuid : s.requester) = v;
            } else if (key == "triggers" && r.peek() == detail::JsonType::array) {
                r.begin_array();
                while (r.next_item()) {
                    if (r.peek() != detail::JsonType::string) {
                        r.skip_value();
                        continue;
                    }
                    std::string t;
                    r.read_string(t);
                    s.triggers.push_back(t);
                }
            } else {
                r.skip_value();
            }
        }
    } catch (const ParseError&) {
        s.unreadable = true;
    }
}

}  // namespace

RequestSummary summarize_request(std::string_view body) {
    RequestSummary s;
    try {
        ValidationOptions widest;
        widest.allow_local_sources = true;
        widest.allow_webhook_env = true;
        widest.max_body_bytes = std::max(widest.max_body_bytes, body.size());
        TestRequest r = parse_request(body, widest);
        s.package = r.package;
        s.uuid = r.uuid;
        s.requester = r.requester;
        s.triggers = r.triggers;
        return s;
    } catch (const Error& e) {
        s.parse_error = e.what();
    }
    read_leniently(body, s);
    return s;
}

DeadLetter describe_dead_letter(const std::string& queue, std::size_t position,
                                const PeekedMessage& message) {
    DeadLetter d;
    d.queue = queue;
    d.position = position;
    d.body = message.body;
    d.reason = message.reason;
    d.deliveries = message.deliveries;
    d.request = summarize_request(message.body);
    try {
        const QueueName name = parse_queue_name(original_queue_name(queue));
        d.release = name.release;
        d.arch = name.arch;
    } catch (const Error&) {
        // Not a debci-* queue: no release or architecture to show.
    }
    return d;
}

void DeadLetterSelection::validate() const {
    if (!all && uuids.empty())
        throw ValidationError("--uuid", "", "select the messages: give --uuid UUID (repeatable) or --all");
}

bool DeadLetterSelection::selects(const DeadLetter& letter) const {
    if (all) return true;
    return letter.request.uuid && std::find(uuids.begin(), uuids.end(), *letter.request.uuid) != uuids.end();
}

std::string format_dead_letters(const std::vector<DeadLetter>& letters) {
    std::string out;
    for (const auto& d : letters) {
        out += fmt::format("{} #{}", d.queue, d.position);
        const RequestSummary& r = d.request;
        if (!r.package.empty() && !r.unreadable) out += " " + quote_for_message(r.package);
        if (!d.release.empty()) out += fmt::format(" {}/{}", d.release, d.arch);
        if (r.uuid) out += " uuid=" + quote_for_message(*r.uuid);
        if (r.requester) out += " requester=" + quote_for_message(*r.requester);
        out +=
            "\n    reason: " + (d.reason.empty() ? std::string("(none given)") : quote_for_message(d.reason));
        if (d.deliveries) out += fmt::format("\n    deliveries: {}", *d.deliveries);
        if (!r.parse_error.empty() || r.unreadable) {
            out += "\n    body: " + quote_for_message(d.body);
            if (!r.parse_error.empty()) out += "\n    invalid: " + r.parse_error;
        }
        out += "\n";
    }
    return out;
}

namespace {

json optional_text(const std::optional<std::string>& v) {
    return v ? json(*v) : json(nullptr);
}

// Bodies and reasons come from anyone who can publish: not always UTF-8,
// which JSON text must be.
std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

std::string dead_letters_json(const std::vector<DeadLetter>& letters) {
    json out = json::array();
    for (const auto& d : letters) {
        const RequestSummary& r = d.request;
        out.push_back({{"queue", d.queue},
                       {"position", d.position},
                       {"reason", d.reason},
                       {"deliveries", d.deliveries ? json(*d.deliveries) : json(nullptr)},
                       {"body", d.body},
                       {"valid", r.parse_error.empty()},
                       {"package", r.unreadable ? json(nullptr) : json(r.package)},
                       {"release", d.release.empty() ? json(nullptr) : json(d.release)},
                       {"arch", d.arch.empty() ? json(nullptr) : json(d.arch)},
                       {"uuid", optional_text(r.uuid)},
                       {"requester", optional_text(r.requester)},
                       {"triggers", r.triggers},
                       {"invalid", r.parse_error.empty() ? json(nullptr) : json(r.parse_error)}});
    }
    return dump(out) + "\n";
}

// ---- running tests ---------------------------------------------------------

namespace {

std::vector<std::string> triggers_of(const json& params) {
    std::vector<std::string> out;
    auto it = params.find("triggers");
    if (it != params.end() && it->is_array())
        for (const auto& t : *it)
            if (t.is_string()) out.push_back(t.get<std::string>());
    return out;
}

json parse_json(std::string_view text, const char* what) {
    try {
        return json::parse(text);
    } catch (const json::exception& e) {
        throw ParseError(fmt::format("{} is not valid JSON: {}", what, e.what()));
    }
}

}  // namespace

std::vector<RunningTestView> parse_running_json(std::string_view text) {
    const json j = parse_json(text, "running.json");
    if (!j.is_object()) throw ParseError("running.json is not a JSON object ({package: {runhash: ...}})");
    std::vector<RunningTestView> out;
    for (const auto& [package, hashes] : j.items()) {
        auto bad = [&, p = package](const std::string& where, const char* expected) {
            return ParseError(fmt::format("running.json: the entry of package {}{} is not {}",
                                          quote_for_message(p), where, expected));
        };
        if (!hashes.is_object()) throw bad("", "an object of runhashes");
        for (const auto& [hash, releases] : hashes.items()) {
            if (!releases.is_object())
                throw bad(" runhash " + quote_for_message(hash), "an object of releases");
            for (const auto& [release, arches] : releases.items()) {
                if (!arches.is_object())
                    throw bad(" release " + quote_for_message(release), "an object of arches");
                for (const auto& [arch, entry] : arches.items()) {
                    const std::string where =
                        fmt::format(" on {}/{}", quote_for_message(release), quote_for_message(arch));
                    if (!entry.is_array() || entry.size() != 3 || !entry[0].is_object() ||
                        !entry[1].is_number() || !entry[2].is_string())
                        throw bad(where, "[params, duration, logtail]");
                    RunningTestView t;
                    t.package = package;
                    t.release = release;
                    t.arch = arch;
                    t.runhash = hash;
                    t.params_json = dump(entry[0]);
                    t.triggers = triggers_of(entry[0]);
                    const double seconds = entry[1].get<double>();
                    t.duration = seconds > 0 ? static_cast<std::uint64_t>(seconds) : 0;
                    t.logtail = entry[2].get<std::string>();
                    out.push_back(std::move(t));
                }
            }
        }
    }
    std::sort(out.begin(), out.end(), [](const RunningTestView& a, const RunningTestView& b) {
        return std::tie(a.package, a.release, a.arch, a.runhash) <
               std::tie(b.package, b.release, b.arch, b.runhash);
    });
    return out;
}

void apply_running_api(std::vector<RunningTestView>& tests, std::string_view api_json) {
    const json j = parse_json(api_json, "the running tests of /api/v1/running");
    if (!j.is_array()) throw ParseError("/api/v1/running did not answer a JSON list");
    for (const auto& e : j) {
        if (!e.is_object() || !e.contains("stale") || !e["stale"].is_boolean()) continue;
        const std::string params = dump(e.value("params", json::object()));
        for (auto& t : tests)
            if (t.package == e.value("package", "") && t.release == e.value("release", "") &&
                t.arch == e.value("arch", "") && t.params_json == params)
                t.stale = e["stale"].get<bool>();
    }
}

std::string format_running_time(std::uint64_t seconds) {
    return fmt::format("{}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60);
}

std::string format_running_tests(const std::vector<RunningTestView>& tests) {
    if (tests.empty()) return "no tests running\n";
    struct Row {
        std::string cells[6];
    };
    std::vector<Row> rows{{{"PACKAGE", "RELEASE", "ARCH", "TIME", "TRIGGERS", "STALE"}}};
    for (const auto& t : tests) {
        std::string triggers;
        for (const auto& tr : t.triggers) triggers += (triggers.empty() ? "" : ",") + tr;
        rows.push_back({{t.package, t.release, t.arch, format_running_time(t.duration),
                         triggers.empty() ? "-" : triggers, t.stale ? (*t.stale ? "yes" : "no") : "?"}});
    }
    std::size_t width[5] = {};
    for (const auto& r : rows)
        for (int i = 0; i < 5; ++i) width[i] = std::max(width[i], r.cells[i].size());
    std::string out;
    for (const auto& r : rows) {
        for (int i = 0; i < 5; ++i) out += fmt::format("{:<{}}  ", r.cells[i], width[i]);
        out += r.cells[5] + "\n";
    }
    return out;
}

std::string running_tests_json(const std::vector<RunningTestView>& tests) {
    json out = json::array();
    for (const auto& t : tests)
        out.push_back({{"package", t.package},
                       {"release", t.release},
                       {"arch", t.arch},
                       {"runhash", t.runhash},
                       {"params", json::parse(t.params_json)},
                       {"triggers", t.triggers},
                       {"duration", t.duration},
                       {"logtail", t.logtail},
                       {"stale", t.stale ? json(*t.stale) : json(nullptr)}});
    return dump(out) + "\n";
}

}  // namespace apcloud
