// teststatus / testcomplete events (SPEC.md section 2): encoders and parser.
#include "autopkgtest_cloud/events.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "autopkgtest_cloud/error.hpp"
#include "core/json_text.hpp"

namespace apcloud {

namespace {

constexpr std::size_t head_lines = 5;
constexpr std::size_t tail_bytes = 2000;
constexpr std::string_view tail_marker = "\n[...]\n";

// Makes arbitrary bytes valid UTF-8 by replacing bad bytes with U+FFFD.
std::string to_utf8(std::string_view s) {
    if (is_valid_utf8(s)) return std::string(s);
    std::string out;
    std::size_t i = 0;
    while (i < s.size()) {
        std::size_t len = 1;
        auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0xf0)
            len = 4;
        else if (c >= 0xe0)
            len = 3;
        else if (c >= 0xc0)
            len = 2;
        if (i + len <= s.size() && is_valid_utf8(s.substr(i, len))) {
            out.append(s.substr(i, len));
            i += len;
        } else {
            out += "\xef\xbf\xbd";
            ++i;
        }
    }
    return out;
}

}  // namespace

std::string make_logtail(std::string_view log) {
    std::size_t pos = 0;
    for (std::size_t n = 0; n < head_lines && pos < log.size(); ++n) {
        auto nl = log.find('\n', pos);
        pos = nl == std::string_view::npos ? log.size() : nl + 1;
    }
    if (log.size() <= pos + tail_bytes) return to_utf8(log);
    std::string out = to_utf8(log.substr(0, pos));
    if (!out.empty() && out.back() == '\n') out.pop_back();
    out += tail_marker;
    auto tail = log.substr(log.size() - tail_bytes);
    // Start the tail on a character boundary.
    while (!tail.empty() && (static_cast<unsigned char>(tail.front()) & 0xc0) == 0x80) tail.remove_prefix(1);
    out += to_utf8(tail);
    return out;
}

std::string teststatus_json(const TestRequest& r, std::string_view release, std::string_view arch,
                            bool running, std::uint64_t duration, std::string_view logtail) {
    const bool priv = r.is_private();
    detail::JsonObjectWriter o;
    o.str("architecture", arch);
    o.raw("duration", std::to_string(duration));
    o.str("logtail", priv ? std::string_view() : logtail);
    o.str("package", priv ? private_package_name : std::string_view(r.package));
    std::string params = "{}";
    if (!priv) {
        auto msg = r.to_message();
        auto nl = msg.find('\n');
        if (nl != std::string::npos) params = msg.substr(nl + 1);
    }
    o.raw("params", params);
    o.str("release", release);
    o.raw("running", running ? "true" : "false");
    return o.object();
}

std::string testcomplete_json(const TestComplete& e) {
    detail::JsonObjectWriter o;
    o.str("architecture", e.architecture);
    o.str("container", e.container);
    o.raw("duration", std::to_string(e.duration));
    o.list("env", e.env);
    o.raw("exitcode", std::to_string(e.exitcode));
    o.str("package", e.package);
    o.str("release", e.release);
    if (e.requester)
        o.str("requester", *e.requester);
    else
        o.raw("requester", "null");
    o.str("swift_dir", e.swift_dir);
    if (e.testpkg_version)
        o.str("testpkg_version", *e.testpkg_version);
    else
        o.raw("testpkg_version", "null");
    o.list("triggers", e.triggers);
    return o.object();
}

TestComplete parse_testcomplete(std::string_view text) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw ParseError(std::string("testcomplete event is not valid JSON: ") + e.what());
    }
    if (!j.is_object()) throw ParseError("testcomplete event is not a JSON object");
    auto need = [&](const char* key, auto check, const char* type) -> const nlohmann::json& {
        auto it = j.find(key);
        if (it == j.end() || !check(*it))
            throw ParseError(fmt::format("testcomplete event: {} is missing or not {}", key, type));
        return *it;
    };
    auto is_str = [](const nlohmann::json& v) { return v.is_string(); };
    auto is_int = [](const nlohmann::json& v) { return v.is_number_integer(); };
    auto is_list = [](const nlohmann::json& v) {
        return v.is_array() &&
               std::all_of(v.begin(), v.end(), [](const nlohmann::json& x) { return x.is_string(); });
    };
    TestComplete e;
    e.architecture = need("architecture", is_str, "a string").get<std::string>();
    e.container = need("container", is_str, "a string").get<std::string>();
    e.duration = need("duration", is_int, "an integer").get<std::uint64_t>();
    e.exitcode = need("exitcode", is_int, "an integer").get<int>();
    e.package = need("package", is_str, "a string").get<std::string>();
    e.release = need("release", is_str, "a string").get<std::string>();
    e.swift_dir = need("swift_dir", is_str, "a string").get<std::string>();
    e.triggers = need("triggers", is_list, "a list of strings").get<std::vector<std::string>>();
    if (j.contains("env")) e.env = need("env", is_list, "a list of strings").get<std::vector<std::string>>();
    if (j.contains("requester") && j["requester"].is_string())
        e.requester = j["requester"].get<std::string>();
    if (j.contains("testpkg_version") && j["testpkg_version"].is_string())
        e.testpkg_version = j["testpkg_version"].get<std::string>();
    return e;
}

}  // namespace apcloud
