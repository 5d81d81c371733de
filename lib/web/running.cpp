// The running tests view: teststatus events in, the reference's running.json out.
#include "web/running.hpp"

namespace apcloud::web {

using nlohmann::json;

namespace {

// A JSON value as Python's str() shows it (the reference builds runhash from str(value)).
std::string python_str(const json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
    if (v.is_null()) return "None";
    if (v.is_array()) {
        std::string out = "[";
        for (std::size_t i = 0; i < v.size(); ++i) {
            if (i) out += ", ";
            out += v[i].is_string() ? "'" + v[i].get<std::string>() + "'" : python_str(v[i]);
        }
        return out + "]";
    }
    return v.dump();
}

}  // namespace

std::string runhash(const json& params) {
    std::string out;
    if (!params.is_object()) return out;
    for (const auto& [k, v] : params.items())
        out += k + "_" + python_str(v) + ";";  // json objects iterate sorted
    return out;
}

bool RunningTests::apply(const std::string& event_json, std::int64_t now) {
    json e = json::parse(event_json, nullptr, false);
    if (!e.is_object() || !e.contains("package") || !e["package"].is_string() || !e.contains("release") ||
        !e["release"].is_string() || !e.contains("architecture") || !e["architecture"].is_string())
        return false;
    RunningTest t;
    t.package = e["package"].get<std::string>();
    t.release = e["release"].get<std::string>();
    t.arch = e["architecture"].get<std::string>();
    if (e.contains("params") && e["params"].is_object()) t.params = e["params"];
    t.runhash = runhash(t.params);
    if (e.contains("duration") && e["duration"].is_number_unsigned())
        t.duration = e["duration"].get<std::uint64_t>();
    if (e.contains("logtail") && e["logtail"].is_string()) t.logtail = e["logtail"].get<std::string>();
    t.last_seen = now;
    const bool running = e.value("running", true);
    Key key{t.package, t.runhash, t.release, t.arch};
    std::lock_guard<std::mutex> lock(mutex_);
    if (!running)
        tests_.erase(key);
    else
        tests_[key] = std::move(t);
    return true;
}

void RunningTests::expire(std::int64_t now) {
    const std::int64_t step = interval_.count();
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = tests_.begin(); it != tests_.end();) {
        const std::int64_t age = now - it->second.last_seen;
        if (age > 10 * step) {
            it = tests_.erase(it);
            continue;
        }
        it->second.stale = age > 3 * step;
        ++it;
    }
}

std::vector<RunningTest> RunningTests::list() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<RunningTest> out;
    for (const auto& [k, t] : tests_) out.push_back(t);
    return out;
}

json RunningTests::reference_json() const {
    json out = json::object();
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [k, t] : tests_)
        out[t.package][t.runhash][t.release][t.arch] = json::array({t.params, t.duration, t.logtail});
    return out;
}

}  // namespace apcloud::web
