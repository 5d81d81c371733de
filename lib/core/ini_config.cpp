// INI files read with inih: typed getters naming file, section, key and value,
// and the [amqp]/[swift] sections shared by worker.conf and web.conf.
#include "core/ini_config.hpp"

#include <fmt/format.h>
#include <ini.h>

#include <algorithm>
#include <sstream>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/url.hpp"

namespace apcloud::detail {

const KnownKeys& backend_keys() {
    static const KnownKeys keys = {
        {"amqp", {"url", "host", "user", "password", "vhost"}},
        {"swift",
         {"url", "auth_url", "username", "password", "region_name", "project_name", "tenant",
          "user_domain_name", "project_domain_name", "auth_version"}},
    };
    return keys;
}

IniConfig::IniConfig(std::string_view text, std::string label, const KnownKeys& known)
    : label_(std::move(label)) {
    std::string buffer(text);
    int line = ini_parse_string(
        buffer.c_str(),
        [](void* user, const char* section, const char* name, const char* value) -> int {
            auto& slot = (*static_cast<decltype(sections_)*>(user))[section][name];
            slot = slot.empty() ? value : slot + "\n" + value;  // continuation lines
            return 1;
        },
        &sections_);
    if (line != 0) throw ConfigError(fmt::format("{}: syntax error on line {}", label_, line));
    std::vector<std::string> names;
    for (const auto& [section, keys] : known) names.push_back(section);
    for (const auto& [section, keys] : sections_) {
        auto k = known.find(section);
        const auto space = section.find(' ');
        if (k == known.end() && space != std::string::npos && space + 1 < section.size())
            k = known.find(section.substr(0, space) + " *");  // a named section: [team NAME]
        if (k == known.end())
            throw ConfigError(fmt::format("{}: unknown section [{}] (expected {})", label_, section,
                                          fmt::join(names, ", ")));
        for (const auto& [key, value] : keys)
            if (!k->second.count(key))  // without the value: a misspelt password's would be shown
                throw ConfigError(fmt::format("{} [{}] {}: unknown key (expected {})", label_, section, key,
                                              fmt::join(k->second, ", ")));
    }
}

void IniConfig::bad(const std::string& section, const std::string& key, const std::string& value,
                    const std::string& why) const {
    throw ConfigError(
        fmt::format("{} [{}] {} = {}: {}", label_, section, key, quote_for_message(value), why));
}

std::string IniConfig::get(const std::string& section, const std::string& key) const {
    auto s = sections_.find(section);
    if (s == sections_.end()) return {};
    auto k = s->second.find(key);
    return k == s->second.end() ? std::string() : k->second;
}

std::vector<std::string> IniConfig::sections() const {
    std::vector<std::string> out;
    for (const auto& [section, keys] : sections_) out.push_back(section);
    return out;
}

bool IniConfig::has(const std::string& section, const std::string& key) const {
    auto s = sections_.find(section);
    return s != sections_.end() && s->second.count(key) > 0;
}

int IniConfig::positive_int(const std::string& section, const std::string& key, int fallback, int min) const {
    if (!has(section, key)) return fallback;
    const std::string v = get(section, key);
    if (v.empty() || v.size() > 9 ||
        !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
        bad(section, key, v, "must be a whole number");
    int n = std::stoi(v);
    if (n < min) bad(section, key, v, fmt::format("must be at least {}", min));
    return n;
}

bool IniConfig::boolean(const std::string& section, const std::string& key) const {
    if (!has(section, key)) return false;
    const std::string v = get(section, key);
    if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
    if (v == "0" || v == "false" || v == "no" || v == "off" || v.empty()) return false;
    bad(section, key, v, "must be true or false");
}

std::vector<std::string> IniConfig::words(const std::string& section, const std::string& key) const {
    std::vector<std::string> out;
    std::istringstream in{get(section, key)};
    std::string w;
    while (in >> w) out.push_back(w);
    return out;
}

std::string value_or_env(const Environment& env, const char* name, const std::string& value) {
    if (!value.empty()) return value;
    auto it = env.find(name);
    return it == env.end() ? std::string() : it->second;
}

namespace {

// [amqp]: a URL (amqp:// or sqlite://), or the reference's host/user/password.
void parse_amqp(const IniConfig& ini, const Environment& env, BackendSettings& b) {
    b.broker_url = value_or_env(env, "APCLOUD_AMQP_URL", ini.get("amqp", "url"));
    BrokerCredentials given;
    given.user = ini.get("amqp", "user");
    if (ini.has("amqp", "password")) {
        given.password = ini.get("amqp", "password");
        given.has_password = true;
    }
    if (b.broker_url.empty() && !ini.get("amqp", "host").empty()) {
        std::string vhost = ini.get("amqp", "vhost");
        b.broker_url =
            fmt::format("amqp://{}/{}", ini.get("amqp", "host"), percent_encode(vhost.empty() ? "/" : vhost));
    }
    if (b.broker_url.empty())
        ini.bad("amqp", "url", "", "no broker configured (url, host, or APCLOUD_AMQP_URL)");
    const Url broker = parse_url(b.broker_url);
    if (broker.scheme != "amqp" && broker.scheme != "amqps" && broker.scheme != "sqlite")
        ini.bad("amqp", "url", broker.redacted(), "must be amqp://, amqps:// or sqlite://");
    b.broker_credentials = resolve_broker_credentials(broker, given, env);
}

// [swift]: a store URL, or the reference's auth_url + username/password and Keystone keys.
void parse_swift(const IniConfig& ini, const Environment& env, const std::vector<std::string>& schemes,
                 BackendSettings& b) {
    b.store_url = value_or_env(env, "APCLOUD_STORE_URL", ini.get("swift", "url"));
    if (b.store_url.empty() && !ini.get("swift", "auth_url").empty())
        b.store_url = "swift+" + ini.get("swift", "auth_url");
    if (b.store_url.empty())
        ini.bad("swift", "url", "", "no result store configured (url, auth_url, or APCLOUD_STORE_URL)");
    const Url store = parse_url(b.store_url);
    if (std::find(schemes.begin(), schemes.end(), store.scheme) == schemes.end())
        ini.bad("swift", "url", store.redacted(),
                fmt::format("must be {}://", fmt::join(schemes, ":// or ")));
    StoreCredentials given;
    given.user = ini.get("swift", "username");
    given.key = ini.get("swift", "password");
    given.project = ini.get("swift", "project_name").empty() ? ini.get("swift", "tenant")
                                                             : ini.get("swift", "project_name");
    given.user_domain = ini.get("swift", "user_domain_name");
    given.project_domain = ini.get("swift", "project_domain_name");
    given.region = ini.get("swift", "region_name");
    if (auto v = ini.get("swift", "auth_version"); !v.empty() && v != "1" && v != "1.0" && v != "3")
        ini.bad("swift", "auth_version", v, "must be 1 or 3 (Keystone v3); the URL's path decides which");
    b.store_credentials = resolve_store_credentials(store, given, env);
}

}  // namespace

BackendSettings parse_backends(const IniConfig& ini, const Environment& env,
                               const std::vector<std::string>& swift_schemes) {
    BackendSettings b;
    parse_amqp(ini, env, b);
    parse_swift(ini, env, swift_schemes, b);
    return b;
}

}  // namespace apcloud::detail
