// SPEC.md section 10, the pure parts: webhook signatures and tokens, events, the requests they make,
// commit statuses, and the reference's secrets and credentials files.
#include "autopkgtest_cloud/webhooks.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/exit_codes.hpp"
#include "core/digest.hpp"
#include "core/ini_config.hpp"
#include "core/time_text.hpp"

namespace apcloud {

using nlohmann::json;

std::string_view forge_name(Forge forge) noexcept {
    return forge == Forge::github ? "github" : "gitlab";
}

namespace {

// The hex after `prefix` in a signature header, "" when it is not there.
std::string signature_hex(const std::optional<std::string>& header, std::string_view prefix) {
    if (!header || header->compare(0, prefix.size(), prefix) != 0) return {};
    return header->substr(prefix.size());
}

}  // namespace

std::string github_signature(std::string_view body, std::string_view secret) {
    return "sha256=" + detail::hex_hmac("sha256", secret, body);
}

bool github_signature_valid(std::string_view body, std::string_view secret,
                            const std::optional<std::string>& sha256_header,
                            const std::optional<std::string>& sha1_header) {
    if (secret.empty()) return false;
    if (sha256_header) {
        const std::string got = signature_hex(sha256_header, "sha256=");
        return !got.empty() && detail::equal_constant_time(got, detail::hex_hmac("sha256", secret, body));
    }
    const std::string got = signature_hex(sha1_header, "sha1=");
    return !got.empty() && detail::equal_constant_time(got, detail::hex_hmac("sha1", secret, body));
}

bool gitlab_token_valid(const std::optional<std::string>& header, std::string_view secret) {
    return !secret.empty() && header && detail::equal_constant_time(*header, secret);
}

namespace {

// A parsed payload's fields, each error naming the path of the field.
class Fields {
public:
    Fields(std::string_view body, std::string_view what) : what_(what) {
        root_ = json::parse(body, nullptr, false);
        if (root_.is_discarded() || !root_.is_object())
            throw ParseError(fmt::format("{} payload: not a JSON object", what_));
    }

    const json* find(std::initializer_list<const char*> path) const {
        const json* j = &root_;
        for (const char* key : path) {
            if (!j->is_object()) return nullptr;
            auto it = j->find(key);
            if (it == j->end()) return nullptr;
            j = &*it;
        }
        return j;
    }

    std::string text(std::initializer_list<const char*> path) const {
        const json* j = find(path);
        if (!j || !j->is_string() || j->get_ref<const std::string&>().empty())
            throw ParseError(fmt::format("{} payload: {} must be a non-empty string", what_, dotted(path)));
        return j->get<std::string>();
    }

    std::string text_or(std::initializer_list<const char*> path, std::string fallback) const {
        const json* j = find(path);
        return j && j->is_string() ? j->get<std::string>() : fallback;
    }

    std::uint64_t number(std::initializer_list<const char*> path) const {
        const json* j = find(path);
        if (!j || !j->is_number_unsigned() || j->get<std::uint64_t>() == 0)
            throw ParseError(
                fmt::format("{} payload: {} must be a positive whole number", what_, dotted(path)));
        return j->get<std::uint64_t>();
    }

private:
    static std::string dotted(std::initializer_list<const char*> path) {
        std::string out;
        for (const char* key : path) out += (out.empty() ? "" : ".") + std::string(key);
        return out;
    }

    json root_;
    std::string what_;
};

// A commit id: 7 to 64 hex digits (SHA-1 or SHA-256), as it goes into URLs.
std::string checked_sha(std::string sha, std::string_view what) {
    const bool ok = sha.size() >= 7 && sha.size() <= 64 &&
                    sha.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
    if (!ok)
        throw ParseError(
            fmt::format("{} payload: the head commit {} is not a commit id", what, quote_for_message(sha)));
    return sha;
}

}  // namespace

std::optional<std::int64_t> parse_forge_time(std::string_view text) {
    static constexpr std::string_view utc = " UTC";
    if (text.size() == 19 + utc.size() && text.substr(19) == utc && text[10] == ' ') {
        std::string iso(text.substr(0, 19));
        iso[10] = 'T';
        return detail::parse_iso_time(iso);
    }
    if (text.empty() || text.back() != 'Z') return std::nullopt;  // other zones: not read
    return detail::parse_iso_time(text);
}

PullRequestEvent parse_github_event(std::string_view event, std::string_view body) {
    PullRequestEvent e;
    e.forge = Forge::github;
    if (event == "ping") {
        e.action = HookAction::ping;
        e.kind = "ping";
        return e;
    }
    if (event != "pull_request") {
        e.kind = std::string(event);
        return e;
    }
    const Fields f(body, "GitHub pull_request");
    const std::string action = f.text({"action"});
    e.kind = "pull_request " + action;
    if (action == "opened" || action == "synchronize" || action == "reopened")
        e.action = HookAction::test;
    else if (action == "closed")
        e.action = HookAction::close;
    else
        return e;
    e.number = f.number({"number"});
    e.sender = f.text_or({"sender", "login"}, "");
    e.updated_at = parse_forge_time(f.text_or({"pull_request", "updated_at"}, ""));
    if (e.action == HookAction::close) return e;
    e.head_sha = checked_sha(f.text({"pull_request", "head", "sha"}), "GitHub pull_request");
    e.statuses_url = f.text({"pull_request", "statuses_url"});
    e.clone_url = f.text({"pull_request", "base", "repo", "clone_url"});
    e.ref = fmt::format("refs/pull/{}/head", e.number);
    return e;
}

PullRequestEvent parse_gitlab_event(std::string_view body, std::string_view api_url) {
    const Fields f(body, "GitLab merge_request");
    PullRequestEvent e;
    e.forge = Forge::gitlab;
    const std::string kind = f.text({"object_kind"});
    if (kind != "merge_request") {
        e.kind = kind;
        return e;
    }
    const std::string action = f.text_or({"object_attributes", "action"}, "");
    e.kind = "merge_request " + action;
    // "update" is sent for edits of the title too: only new commits (oldrev) are tested.
    if (action == "open" || action == "reopen" ||
        (action == "update" && f.find({"object_attributes", "oldrev"})))
        e.action = HookAction::test;
    else if (action == "close" || action == "merge")
        e.action = HookAction::close;
    else
        return e;
    e.number = f.number({"object_attributes", "iid"});
    e.sender = f.text_or({"user", "username"}, "");
    e.updated_at = parse_forge_time(f.text_or({"object_attributes", "updated_at"}, ""));
    if (e.action == HookAction::close) return e;
    e.head_sha = checked_sha(f.text({"object_attributes", "last_commit", "id"}), "GitLab merge_request");
    // The merge request's ref lives in the target project (for forks too).
    e.clone_url = f.text_or({"object_attributes", "target", "git_http_url"}, "");
    if (e.clone_url.empty()) e.clone_url = f.text({"object_attributes", "source", "git_http_url"});
    e.ref = fmt::format("refs/merge-requests/{}/head", e.number);
    std::string api(api_url);
    while (!api.empty() && api.back() == '/') api.pop_back();
    e.statuses_url = fmt::format("{}/projects/{}/statuses/{}", api, f.number({"project", "id"}), e.head_sha);
    return e;
}

std::vector<std::string> webhook_env(const PullRequestEvent& e) {
    if (e.forge == Forge::gitlab) return {fmt::format("UPSTREAM_MERGE_REQUEST={}", e.number)};
    return {fmt::format("UPSTREAM_PULL_REQUEST={}", e.number), "GITHUB_STATUSES_URL=" + e.statuses_url};
}

std::optional<std::uint64_t> pull_request_of(const TestRequest& r) {
    for (const auto& kv : r.env)
        for (std::string_view name : {"UPSTREAM_PULL_REQUEST=", "UPSTREAM_MERGE_REQUEST="})
            if (kv.compare(0, name.size(), name) == 0) {
                try {
                    std::size_t used = 0;
                    const std::string digits = kv.substr(name.size());
                    const auto n = std::stoull(digits, &used);
                    if (used == digits.size() && n > 0) return n;
                } catch (const std::exception&) {
                }
            }
    return std::nullopt;
}

std::string webhook_build_git(const PullRequestEvent& e) {
    return e.clone_url + "#" + e.ref;
}

std::string status_context(std::string_view release, std::string_view arch,
                           const std::optional<std::string>& testname) {
    std::string out = fmt::format("{}/{}", release, arch);
    if (testname && !testname->empty()) out += " " + *testname;
    return out;
}

std::string final_state(Forge forge, int exitcode) {
    return forge_state(forge, github_state(exitcode));
}

std::string forge_state(Forge forge, std::string_view state, bool superseded) {
    if (forge == Forge::github) return std::string(state);
    if (superseded) return "canceled";
    if (state == "failure" || state == "error") return "failed";
    return std::string(state);
}

std::string status_body(Forge forge, std::string_view state, std::string_view context,
                        std::string_view description, std::string_view target_url) {
    // At most 140 characters (GitHub refuses longer), cut at a character boundary.
    std::string d(description);
    std::size_t chars = 0, i = 0;
    for (; i < d.size(); ++i) {
        if ((static_cast<unsigned char>(d[i]) & 0xC0) != 0x80 && ++chars > 140) break;
    }
    d.resize(i);
    json body = {
        {"state", state}, {forge == Forge::github ? "context" : "name", context}, {"description", d}};
    if (!target_url.empty()) body["target_url"] = target_url;
    return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::map<std::string, std::string> parse_github_secrets(std::string_view text) {
    const json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        throw ParseError("github-secrets.json: not a JSON object {package: secret}");
    std::map<std::string, std::string> out;
    for (const auto& [package, secret] : j.items()) {
        if (!secret.is_string() || secret.get_ref<const std::string&>().empty())
            throw ParseError(fmt::format("github-secrets.json: the secret of {} must be a non-empty string",
                                         quote_for_message(package)));
        out[package] = secret.get<std::string>();
    }
    return out;
}

std::map<std::string, std::pair<std::string, std::string>> parse_status_credentials(std::string_view text) {
    std::map<std::string, std::pair<std::string, std::string>> out;
    std::size_t line_no = 0;
    for (std::size_t start = 0; start <= text.size();) {
        std::size_t end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        std::string line(text.substr(start, end - start));
        start = end + 1;
        ++line_no;
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        if (line.empty() || line[0] == '#') {
            if (end == text.size()) break;
            continue;
        }
        const auto first = line.find(':');
        const auto second = first == std::string::npos ? std::string::npos : line.find(':', first + 1);
        if (first == 0 || second == std::string::npos || second == first + 1 || second + 1 == line.size())
            throw ParseError(
                fmt::format("github-status-credentials.txt line {}: expected project:user:token", line_no));
        out[line.substr(0, first)] = {line.substr(first + 1, second - first - 1), line.substr(second + 1)};
        if (end == text.size()) break;
    }
    return out;
}

std::string github_retry_payload(std::string_view pr_json) {
    const json pr = json::parse(pr_json, nullptr, false);
    if (pr.is_discarded() || !pr.is_object() || !pr.contains("number") || !pr["number"].is_number_unsigned())
        throw ParseError("the pull request's JSON has no number (is it GitHub's /repos/OWNER/REPO/pulls/N?)");
    json event = {{"action", "opened"}, {"number", pr["number"]}, {"pull_request", pr}};
    if (pr.contains("user")) event["sender"] = pr["user"];
    return event.dump();
}

std::vector<ForgeProject> parse_forge_projects(std::string_view text, const std::string& label) {
    const detail::IniConfig ini(
        text, label,
        {{"github *", {"secret", "status_user", "status_token"}}, {"gitlab *", {"secret", "status_token"}}});
    std::vector<ForgeProject> out;
    for (const auto& section : ini.sections()) {
        ForgeProject p;
        p.forge = section.rfind("gitlab ", 0) == 0 ? Forge::gitlab : Forge::github;
        p.name = section.substr(section.find(' ') + 1);
        p.secret = ini.get(section, "secret");
        p.status_user = ini.get(section, "status_user");
        p.status_token = ini.get(section, "status_token");
        if (p.secret.empty())
            throw ConfigError(fmt::format("{} [{}] secret: missing (the webhook's secret)", label, section));
        if (!is_valid_package_name(p.name))
            ini.bad(section, "", p.name, "the section must name a source package");
        out.push_back(std::move(p));
    }
    return out;
}

}  // namespace apcloud
