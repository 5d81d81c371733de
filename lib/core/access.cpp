// API keys (digests only), the access file's rules, and request identity.
#include "autopkgtest_cloud/access.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <filesystem>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/file_io.hpp"
#include "core/digest.hpp"
#include "core/ini_config.hpp"

namespace apcloud {

namespace {

bool valid_user(std::string_view user) {
    if (user.empty() || user.size() > 64 || !std::isalnum(static_cast<unsigned char>(user[0]))) return false;
    return std::all_of(user.begin(), user.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '+' || c == '-';
    });
}

std::vector<std::string_view> fields(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        std::size_t j = i;
        while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
        if (j > i) out.push_back(line.substr(i, j - i));
        i = j;
    }
    return out;
}

bool to_int(std::string_view s, std::int64_t& out) {
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size() && out >= 0;
}

}  // namespace

NewApiKey make_api_key(const std::string& user, std::int64_t now, std::int64_t expires) {
    if (!valid_user(user))
        throw ValidationError("user", user, "must be [A-Za-z0-9][A-Za-z0-9._+-]*, at most 64 characters");
    NewApiKey k;
    k.record.id = detail::random_hex(8);
    k.key = "apc_" + k.record.id + "_" + detail::random_hex(32);
    k.record.user = user;
    k.record.sha256 = detail::hex_digest("sha256", k.key);
    k.record.created = now;
    k.record.expires = expires;
    return k;
}

std::vector<ApiKeyRecord> parse_api_keys(std::string_view text) {
    std::vector<ApiKeyRecord> out;
    std::size_t number = 0;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        ++number;
        const auto hash = line.find('#');
        if (hash != std::string_view::npos) line = line.substr(0, hash);
        const auto f = fields(line);
        if (f.empty()) continue;
        ApiKeyRecord r;
        const bool ok = f.size() == 6 && f[2].size() == 64 && to_int(f[3], r.created) &&
                        to_int(f[4], r.expires) && (f[5] == "active" || f[5] == "revoked") &&
                        valid_user(f[1]);
        if (!ok)
            throw ParseError(fmt::format(
                "keys file line {}: expected ID USER SHA256 CREATED EXPIRES active|revoked", number));
        r.id = std::string(f[0]);
        r.user = std::string(f[1]);
        r.sha256 = std::string(f[2]);
        r.revoked = f[5] == "revoked";
        out.push_back(std::move(r));
    }
    return out;
}

std::string format_api_keys(const std::vector<ApiKeyRecord>& records) {
    std::string out = "# API keys of the request API: ID USER SHA256(key) CREATED EXPIRES(0: never) STATE\n";
    for (const auto& r : records)
        out += fmt::format("{} {} {} {} {} {}\n", r.id, r.user, r.sha256, r.created, r.expires,
                           r.revoked ? "revoked" : "active");
    return out;
}

std::optional<std::string> authenticate_key(const std::vector<ApiKeyRecord>& records, std::string_view key,
                                            std::int64_t now,
                                            const std::optional<std::string>& claimed_user) {
    if (key.size() != 4 + 16 + 1 + 64 || key.substr(0, 4) != "apc_" || key[20] != '_') return std::nullopt;
    const std::string_view id = key.substr(4, 16);
    const std::string digest = detail::hex_digest("sha256", key);
    for (const auto& r : records) {
        if (r.id != id) continue;
        const bool same = r.sha256.size() == digest.size() &&
                          CRYPTO_memcmp(r.sha256.data(), digest.data(), digest.size()) == 0;
        if (!same || r.revoked || (r.expires != 0 && now >= r.expires)) return std::nullopt;
        if (claimed_user && *claimed_user != r.user) return std::nullopt;
        return r.user;
    }
    return std::nullopt;
}

namespace {

// Runs `change` on the keys file's records under an exclusive lock on PATH.lock, then writes them back.
template <typename F>
auto change_keys(const std::string& path, F change) {
    const auto dir = std::filesystem::path(path).parent_path();
    std::error_code ec;
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    if (ec) throw SystemError(ec.value(), "create the directory", dir.string());
    const std::string lock_path = path + ".lock";
    const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) throw SystemError(errno, "open the lock file", lock_path);
    struct Unlock {
        int fd;
        ~Unlock() { ::close(fd); }
    } unlock{fd};
    if (::flock(fd, LOCK_EX) != 0) throw SystemError(errno, "lock", lock_path);
    auto records = read_api_keys(path);
    auto result = change(records);
    write_atomically(path, format_api_keys(records), 0600);
    return result;
}

}  // namespace

std::vector<ApiKeyRecord> read_api_keys(const std::string& path) {
    const auto text = read_file_if_exists(path);
    return text ? parse_api_keys(*text) : std::vector<ApiKeyRecord>{};
}

NewApiKey create_api_key(const std::string& path, const std::string& user, std::int64_t now,
                         std::int64_t expires) {
    return change_keys(path, [&](std::vector<ApiKeyRecord>& records) {
        NewApiKey k = make_api_key(user, now, expires);
        records.push_back(k.record);
        return k;
    });
}

std::size_t revoke_api_keys(const std::string& path, const std::string& id) {
    const std::size_t n = change_keys(path, [&](std::vector<ApiKeyRecord>& records) {
        std::size_t count = 0;
        for (auto& r : records)
            if ((r.id == id || r.user == id) && !r.revoked) {
                r.revoked = true;
                ++count;
            }
        return count;
    });
    if (n == 0)
        throw NotFound(fmt::format("no active key with id or user {} in {}", quote_for_message(id), path));
    return n;
}

AccessPolicy parse_access_policy(std::string_view ini_text) {
    const detail::IniConfig ini(ini_text, "access file",
                                {{"admins", {"users"}},
                                 {"team *", {"users", "packages"}},
                                 {"package *", {"users"}},
                                 {"ppa", {"owners"}}});
    AccessPolicy p;
    for (const auto& u : ini.words("admins", "users")) p.admins.insert(u);
    for (const auto& section : ini.sections()) {
        const auto space = section.find(' ');
        if (space == std::string::npos) continue;
        const std::string kind = section.substr(0, space), name = section.substr(space + 1);
        auto words = ini.words(section, "users");
        if (kind == "team") {
            auto& team = p.teams[name];
            team.users = {words.begin(), words.end()};
            auto packages = ini.words(section, "packages");
            team.packages = {packages.begin(), packages.end()};
        } else {
            check_package_name(name);
            p.package_users[name].insert(words.begin(), words.end());
        }
    }
    if (ini.has("ppa", "owners")) p.ppa_owners = ini.boolean("ppa", "owners");
    return p;
}

AccessDecision authorize(const AccessPolicy& policy, const std::string& user, const TestRequest& request) {
    if (policy.admins.count(user)) return {true, "admin", ""};
    std::vector<std::string> sources = {request.package};
    for (const auto& t : request.triggers) {
        const std::string src = parse_trigger(t).source;
        if (std::find(sources.begin(), sources.end(), src) == sources.end()) sources.push_back(src);
    }
    for (const auto& src : sources) {
        for (const auto& [name, team] : policy.teams)
            if (team.users.count(user) && (team.packages.count("*") || team.packages.count(src)))
                return {true, "team " + name, ""};
        auto listed = policy.package_users.find(src);
        if (listed != policy.package_users.end() && listed->second.count(user))
            return {true, "package " + src, ""};
    }
    if (policy.ppa_owners && !request.ppas.empty() &&
        std::all_of(request.ppas.begin(), request.ppas.end(),
                    [&](const std::string& spec) { return parse_ppa(spec).lpuser == user; }))
        return {true, "ppa owner", ""};
    return {false, "",
            fmt::format("{} may not request tests of {}: not an admin, in no team allowed {}, not a user of "
                        "[package] {}{}",
                        user, request.package, fmt::join(sources, " or "), fmt::join(sources, " or "),
                        request.ppas.empty() ? "" : ", and not the owner of every PPA of the request")};
}

std::string request_identity(const TestRequest& request, const std::string& release,
                             const std::string& arch) {
    auto triggers = request.triggers;
    std::sort(triggers.begin(), triggers.end());
    std::vector<std::string> ppas;
    for (const auto& p : request.ppas) {
        const auto spec = parse_ppa(p);
        ppas.push_back(spec.lpuser + "/" + spec.name);
    }
    std::string out =
        fmt::format("{}\n{}\n{}\n{}\n{}\n{}\n{}\n", request.package, release, arch, fmt::join(triggers, " "),
                    fmt::join(ppas, " "), fmt::join(request.env, "\x1f"), request.all_proposed ? 1 : 0);
    out += fmt::format("{}\n{}\n{}", request.build_git.value_or(""), request.test_git.value_or(""),
                       request.testname.value_or(""));
    return out;
}

}  // namespace apcloud
