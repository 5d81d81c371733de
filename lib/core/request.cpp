// Test request codec and validation: every rule of SPEC.md section 1 lives here.
#include "autopkgtest_cloud/request.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cstring>

#include "autopkgtest_cloud/error.hpp"
#include "core/json_reader.hpp"
#include "core/json_text.hpp"
#include "core/time_text.hpp"

namespace apcloud {

namespace {

constexpr std::size_t max_name_len = 120;     // test.package is CHAR[120]
constexpr std::size_t max_version_len = 200;  // result.version is VARCHAR[200]
constexpr std::size_t max_field_len = 4096;   // any other single string

bool is_lower_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
bool is_alnum(char c) {
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

// Characters allowed in a remote URL: RFC 3986 unreserved and the reserved
// ones a git URL needs, but nothing a shell would interpret.
bool is_url_char(char c) {
    return is_alnum(c) || std::strchr("-._~:/?[]@%+=,", c) != nullptr;
}

bool is_ref_char(char c) {
    return is_alnum(c) || std::strchr("._/+-", c) != nullptr;
}

bool is_control(unsigned char c) {
    return c < 0x20 || c == 0x7f;
}

bool all_of(std::string_view s, bool (*pred)(char)) {
    return std::all_of(s.begin(), s.end(), pred);
}

bool is_identifier(std::string_view s) {
    if (s.empty() || !(is_alnum(s[0]) || s[0] == '_') || (s[0] >= '0' && s[0] <= '9')) return false;
    return all_of(s, [](char c) { return is_alnum(c) || c == '_'; });
}


bool is_hex(std::string_view s) {
    return all_of(
        s, [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); });
}

bool is_git_ref(std::string_view s) {
    return !s.empty() && s.size() <= 255 && s[0] != '-' && s[0] != '/' &&
           s.find("..") == std::string_view::npos && all_of(s, is_ref_char);
}

[[noreturn]] void invalid(const char* field, std::string_view value, std::string_view reason) {
    throw ValidationError(field, std::string(value), reason);
}

void check_url(const char* field, std::string_view url, const ValidationOptions& opts) {
    auto starts = [&](std::string_view p) { return url.substr(0, p.size()) == p; };
    std::string_view rest;
    if (starts("https://"))
        rest = url.substr(8);
    else if (starts("http://"))
        rest = url.substr(7);
    else if (opts.allow_local_sources && starts("file://"))
        rest = url.substr(7);
    else if (opts.allow_local_sources && starts("/"))
        rest = url;
    else
        invalid(field, url,
                opts.allow_local_sources ? "must be an https://, http:// or file:// URL or an absolute path"
                                         : "must be an https:// or http:// URL");
    const bool remote = starts("http");
    if (remote && (rest.empty() || rest[0] == '/')) invalid(field, url, "URL has no host");
    if (!remote && (rest.empty() || rest[0] != '/'))
        invalid(field, url, "local source must be an absolute path");
    if (rest.find("/../") != std::string_view::npos ||
        rest.substr(rest.size() >= 3 ? rest.size() - 3 : 0) == "/..")
        invalid(field, url, "path must not contain ..");
    if (url.size() > max_field_len) invalid(field, url, "URL is too long");
    if (!all_of(rest, is_url_char))
        invalid(field, url, "URL contains whitespace, shell metacharacters or other forbidden characters");
}

}  // namespace

bool is_valid_utf8(std::string_view s) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* end = p + s.size();
    while (p < end) {
        unsigned char c = *p;
        if (c < 0x80) {
            ++p;
            continue;
        }
        int n;
        std::uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (end - p <= n) return false;
        for (int k = 1; k <= n; ++k) {
            if ((p[k] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (p[k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += n + 1;
    }
    return true;
}

bool is_account_name(std::string_view s) noexcept {
    return !s.empty() && s.size() <= max_name_len && is_alnum(s[0]) &&
           all_of(s, [](char c) { return is_alnum(c) || std::strchr("._+@:-", c) != nullptr; });
}

bool is_valid_package_name(std::string_view name) noexcept {
    return name.size() >= 2 && name.size() <= max_name_len && is_lower_alnum(name[0]) &&
           all_of(name, [](char c) { return is_lower_alnum(c) || c == '.' || c == '+' || c == '-'; });
}

void check_package_name(std::string_view name) {
    if (!is_valid_package_name(name)) invalid("package", name, package_name_rule);
}

bool is_valid_version(std::string_view v) noexcept {
    return !v.empty() && v.size() <= max_version_len &&
           all_of(v, [](char c) { return is_alnum(c) || std::strchr(".+:~-", c) != nullptr; });
}

namespace {
// Checks `src/version` without allocating; returns the position of the '/'.
std::size_t check_trigger(std::string_view t) {
    auto slash = t.find('/');
    if (slash == std::string_view::npos) invalid("triggers", t, "must be source/version");
    if (!is_valid_package_name(t.substr(0, slash)))
        invalid("triggers", t, "source name must match ^[a-z0-9][a-z0-9.+-]+$");
    if (!is_valid_version(t.substr(slash + 1)))
        invalid("triggers", t, "version must match ^[A-Za-z0-9.+:~-]+$");
    return slash;
}
}  // namespace

Trigger parse_trigger(std::string_view t) {
    auto slash = check_trigger(t);
    return Trigger{std::string(t.substr(0, slash)), std::string(t.substr(slash + 1))};
}

PpaSpec parse_ppa(std::string_view spec) {
    PpaSpec out;
    std::string_view rest = spec;
    if (auto at = rest.find('@'); at != std::string_view::npos) {
        auto creds = rest.substr(0, at);
        auto colon = creds.find(':');
        if (colon == std::string_view::npos) invalid("ppas", spec, "credentials must be user:token@");
        out.user = creds.substr(0, colon);
        out.token = creds.substr(colon + 1);
        auto cred_ok = [](std::string_view s) {
            return !s.empty() && s.size() <= max_name_len &&
                   all_of(s, [](char c) { return is_alnum(c) || std::strchr("._+-", c) != nullptr; });
        };
        if (!cred_ok(out.user) || !cred_ok(out.token))
            invalid("ppas", spec, "credentials may contain only letters, digits and ._+-");
        rest = rest.substr(at + 1);
    }
    if (auto colon = rest.find(':'); colon != std::string_view::npos) {
        out.fingerprint = rest.substr(colon + 1);
        rest = rest.substr(0, colon);
        if (out.fingerprint.size() < 8 || out.fingerprint.size() > 40 || !is_hex(out.fingerprint))
            invalid("ppas", spec, "fingerprint must be 8 to 40 hex digits");
    }
    auto slash = rest.find('/');
    if (slash == std::string_view::npos) invalid("ppas", spec, "must be lpuser/ppaname");
    out.lpuser = rest.substr(0, slash);
    out.name = rest.substr(slash + 1);
    if (!is_valid_package_name(out.lpuser))
        invalid("ppas", spec, "Launchpad user must match ^[a-z0-9][a-z0-9.+-]+$");
    if (!is_valid_package_name(out.name)) invalid("ppas", spec, "PPA name must match ^[a-z0-9][a-z0-9.+-]+$");
    return out;
}

std::string format_submit_time(std::int64_t unix_time) {
    return detail::format_submit_stamp(unix_time);
}

std::optional<std::string_view> reserved_env_reason(std::string_view name, const ValidationOptions& opts) {
    if (name == "ADT_TEST_TRIGGERS")
        return "ADT_TEST_TRIGGERS is set by the worker from the request's triggers; give them as triggers";
    if (name.substr(0, 12) == "AUTOPKGTEST_") return "AUTOPKGTEST_* variables are reserved for autopkgtest";
    if (!opts.allow_webhook_env && (name == "UPSTREAM_PULL_REQUEST" || name == "GITHUB_STATUSES_URL"))
        return "set only by the GitHub/GitLab webhook integration";
    return std::nullopt;
}

namespace {

void validate_triggers(const TestRequest& r) {
    bool reference = false;
    for (const auto& t : r.triggers) {
        if (t == migration_reference_trigger) {
            reference = true;
            continue;
        }
        check_trigger(t);
    }
    if (!reference) return;
    const std::string ref(migration_reference_trigger);
    if (r.triggers.size() != 1) invalid("triggers", ref, "migration-reference/0 must be the only trigger");
    if (!r.ppas.empty()) invalid("triggers", ref, "migration-reference/0 cannot be combined with ppas");
    if (r.all_proposed)
        invalid("triggers", ref, "migration-reference/0 cannot be combined with all-proposed");
}

void validate_env(const TestRequest& r, const ValidationOptions& opts) {
    for (const auto& e : r.env) {
        auto eq = e.find('=');
        if (eq == std::string::npos) invalid("env", e, "must be NAME=value");
        const std::string_view name = std::string_view(e).substr(0, eq);
        if (!is_identifier(name)) invalid("env", e, "NAME must match ^[A-Za-z_][A-Za-z0-9_]*$");
        if (auto why = reserved_env_reason(name, opts)) invalid("env", e, *why);
        for (char c : e)
            if (is_control(static_cast<unsigned char>(c)))
                invalid("env", e, "value contains control characters");
        if (e.size() > max_field_len) invalid("env", e, "entry is too long");
    }
}

void validate_sources(const TestRequest& r, const ValidationOptions& opts) {
    if (r.test_git && r.build_git)
        invalid("build-git", *r.build_git, "test-git and build-git cannot be combined");
    if (r.test_git) {
        std::string_view v = *r.test_git;
        auto sp = v.find(' ');
        check_url("test-git", v.substr(0, sp), opts);
        if (sp != std::string_view::npos && !is_git_ref(v.substr(sp + 1)))
            invalid("test-git", v, "branch must be a git ref name (letters, digits, ._/+-)");
    }
    if (r.build_git) {
        std::string_view v = *r.build_git;
        auto hash = v.rfind('#');
        check_url("build-git", v.substr(0, hash), opts);
        if (hash != std::string_view::npos && !is_git_ref(v.substr(hash + 1)))
            invalid("build-git", v, "ref after # must be a git ref name (letters, digits, ._/+-)");
    }
    if (r.test_bzr) invalid("test-bzr", *r.test_bzr, "bzr checkouts are not supported; use test-git");
}

// %Y-%m-%d %H:%M:%S, optionally followed by %z (+HHMM / -HHMM).
bool is_submit_time(const std::string& s) {
    static const char shape[] = "dddd-dd-dd dd:dd:dd";
    bool ok = s.size() == 19 || (s.size() == 24 && (s[19] == '+' || s[19] == '-'));
    for (std::size_t i = 0; ok && i < s.size(); ++i) {
        char want = i < 19 ? shape[i] : (i == 19 ? s[i] : 'd');
        ok = want == 'd' ? (s[i] >= '0' && s[i] <= '9') : s[i] == want;
    }
    auto num = [&](std::size_t pos) { return (s[pos] - '0') * 10 + (s[pos + 1] - '0'); };
    return ok && num(5) >= 1 && num(5) <= 12 && num(8) >= 1 && num(8) <= 31 && num(11) <= 23 &&
           num(14) <= 59 && num(17) <= 60;
}

void validate_metadata(const TestRequest& r) {
    if (r.testname) {
        const auto& t = *r.testname;
        if (t.empty() || t.size() > 200 || !is_alnum(t[0]) ||
            !all_of(t, [](char c) { return is_alnum(c) || std::strchr("._+-", c) != nullptr; }))
            invalid("testname", t, "must match ^[A-Za-z0-9][A-Za-z0-9._+-]*$");
    }
    if (r.submit_time && !is_submit_time(*r.submit_time))
        invalid("submit-time", *r.submit_time, "must be \"%Y-%m-%d %H:%M:%S\" with an optional %z suffix");
    constexpr const char* account_rule = "must be an account name (letters, digits, ._+@:-)";
    if (r.requester && !is_account_name(*r.requester)) invalid("requester", *r.requester, account_rule);
    if (r.swiftuser && !is_account_name(*r.swiftuser)) invalid("swiftuser", *r.swiftuser, account_rule);
    for (const auto& u : r.readable_by)
        if (!is_account_name(u)) invalid("readable-by", u, account_rule);
    if (r.uuid) {
        const auto& u = *r.uuid;
        if (u.empty() || u.size() > 64 || !all_of(u, [](char c) { return is_alnum(c) || c == '-'; }))
            invalid("uuid", u, "must be letters, digits and - (at most 64)");
    }
}

}  // namespace

void validate(const TestRequest& r, const ValidationOptions& opts) {
    check_package_name(r.package);
    validate_triggers(r);
    bool private_ppa = false;
    for (const auto& p : r.ppas) private_ppa = parse_ppa(p).is_private() || private_ppa;
    if (private_ppa && !r.swiftuser)
        invalid("swiftuser", "", "private runs (PPA with credentials) need swiftuser");
    validate_env(r, opts);
    validate_sources(r, opts);
    validate_metadata(r);
}

namespace {

// Reads the value at the cursor as a list of strings, or refuses it naming
// the key and the raw JSON text.
void read_string_list(detail::JsonReader& in, const char* key, std::vector<std::string>& out) {
    if (in.peek() != detail::JsonType::array) invalid(key, in.skip_value(), "must be a list of strings");
    out.clear();
    in.begin_array();
    while (in.next_item()) {
        if (in.peek() != detail::JsonType::string) invalid(key, in.skip_value(), "must be a list of strings");
        in.read_string(out.emplace_back());
    }
}

void read_string_value(detail::JsonReader& in, const char* key, std::optional<std::string>& out) {
    if (in.peek() != detail::JsonType::string) invalid(key, in.skip_value(), "must be a string");
    in.read_string(out.emplace());
}

bool read_flag(detail::JsonReader& in, const char* key) {
    std::string s;
    switch (in.peek()) {
        case detail::JsonType::boolean:
            return in.read_bool();
        case detail::JsonType::number: {
            auto n = in.read_number();
            if (n == "1") return true;
            if (n == "0") return false;
            invalid(key, n, "must be \"1\", 1 or true (or false to disable)");
        }
        case detail::JsonType::string:
            in.read_string(s);
            if (s == "1" || s == "true") return true;
            if (s.empty() || s == "0" || s == "false") return false;
            invalid(key, fmt::format("\"{}\"", s), "must be \"1\", 1 or true (or false to disable)");
        default:
            invalid(key, in.skip_value(), "must be \"1\", 1 or true (or false to disable)");
    }
}

// Check before JSON is touched: a message must be UTF-8 and of bounded size.
void check_body(std::string_view body, const ValidationOptions& opts) {
    if (body.size() > opts.max_body_bytes)
        invalid(
            "body", body.substr(0, 64),
            fmt::format("message is {} bytes, more than the limit of {}", body.size(), opts.max_body_bytes));
    if (!is_valid_utf8(body))
        throw ParseError(fmt::format("request body is not valid UTF-8: {}", quote_for_message(body)));
}

}  // namespace

TestRequest parse_request(std::string_view body, const ValidationOptions& opts) {
    check_body(body, opts);
    TestRequest r;
    auto sep = body.find_first_of("\n ");
    r.package = std::string(body.substr(0, sep));
    check_package_name(r.package);
    if (sep != std::string_view::npos) {
        detail::JsonReader in(body.substr(sep + 1));
        if (in.peek() != detail::JsonType::object)
            throw ParseError(fmt::format("request parameters must be a JSON object, got {}",
                                         quote_for_message(in.skip_value())));
        in.begin_object();
        std::string key;
        while (in.next_key(key)) {
            const char* k = key.c_str();
            if (key == "triggers")
                read_string_list(in, k, r.triggers);
            else if (key == "ppas")
                read_string_list(in, k, r.ppas);
            else if (key == "env")
                read_string_list(in, k, r.env);
            else if (key == "test-git")
                read_string_value(in, k, r.test_git);
            else if (key == "build-git")
                read_string_value(in, k, r.build_git);
            else if (key == "test-bzr")
                read_string_value(in, k, r.test_bzr);
            else if (key == "all-proposed")
                r.all_proposed = read_flag(in, k);
            else if (key == "testname")
                read_string_value(in, k, r.testname);
            else if (key == "submit-time")
                read_string_value(in, k, r.submit_time);
            else if (key == "requester")
                read_string_value(in, k, r.requester);
            else if (key == "uuid")
                read_string_value(in, k, r.uuid);
            else if (key == "swiftuser")
                read_string_value(in, k, r.swiftuser);
            else if (key == "readable-by") {
                if (in.peek() == detail::JsonType::string)
                    in.read_string(r.readable_by.emplace_back());
                else
                    read_string_list(in, k, r.readable_by);
            } else
                invalid("parameter", key, "unknown request parameter");
        }
        in.finish();
    }
    validate(r, opts);
    return r;
}

std::string TestRequest::to_message() const {
    detail::JsonObjectWriter w;
    // Absent and empty parameters are left out.
    auto str = [&](std::string_view k, const std::optional<std::string>& v) {
        if (v) w.str(k, *v);
    };
    auto list = [&](std::string_view k, const std::vector<std::string>& v) {
        if (!v.empty()) w.list(k, v);
    };
    // Keys in sorted (byte) order, as json.dumps(sort_keys=True) writes them.
    if (all_proposed) w.str("all-proposed", "1");
    str("build-git", build_git);
    list("env", env);
    list("ppas", ppas);
    list("readable-by", readable_by);
    str("requester", requester);
    str("submit-time", submit_time);
    str("swiftuser", swiftuser);
    str("test-bzr", test_bzr);
    str("test-git", test_git);
    str("testname", testname);
    list("triggers", triggers);
    str("uuid", uuid);
    std::string out = package;
    if (!w.empty()) out += "\n" + w.object();
    return out;
}

std::string TestRequest::to_stored_message() const {
    TestRequest r = *this;
    for (auto& p : r.ppas)
        if (auto at = p.find('@'); at != std::string::npos) p.erase(0, at + 1);
    return r.to_message();
}

bool TestRequest::is_private() const {
    return std::any_of(ppas.begin(), ppas.end(), [](const std::string& p) {
        auto at = p.find('@');
        return at != std::string::npos && p.find(':') < at;
    });
}

bool TestRequest::is_reference() const {
    return triggers.size() == 1 && triggers[0] == migration_reference_trigger;
}

bool TestRequest::operator==(const TestRequest& o) const {
    return package == o.package && triggers == o.triggers && ppas == o.ppas && env == o.env &&
           test_git == o.test_git && build_git == o.build_git && test_bzr == o.test_bzr &&
           all_proposed == o.all_proposed && testname == o.testname && submit_time == o.submit_time &&
           requester == o.requester && uuid == o.uuid && readable_by == o.readable_by &&
           swiftuser == o.swiftuser;
}

}  // namespace apcloud
