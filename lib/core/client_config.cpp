// The command line tools' configuration file (client.conf): its [client]
// keys as the APCLOUD_* variables they stand for, under the environment.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/tool.hpp"
#include "autopkgtest_cloud/url.hpp"
#include "core/ini_config.hpp"

namespace apcloud {

namespace {

// The keys of [client]; true for the secrets, which a file others may read
// must not hold.
const std::map<std::string, bool>& client_keys() {
    static const std::map<std::string, bool> keys = {
        {"amqp_url", false},   {"amqp_user", false},     {"amqp_password", true}, {"amqp_cacert", false},
        {"store_url", false},  {"swift_user", false},    {"swift_key", true},     {"swift_project", false},
        {"web_url", false},    {"api_key", true},        {"api_key_file", false}, {"architectures", false},
        {"series", false},     {"excuses_url", false},
    };
    return keys;
}

std::string variable_of(const std::string& key) {
    std::string name = "APCLOUD_" + key;
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::toupper(c); });
    return name;
}

}  // namespace

std::vector<std::string> client_config_keys() {
    std::vector<std::string> out;
    for (const auto& [key, secret] : client_keys()) out.push_back(key);
    return out;
}

Environment with_client_config(Environment env, std::string_view text, const std::string& label,
                               bool private_file) {
    std::set<std::string> known;
    for (const auto& [key, secret] : client_keys()) known.insert(key);
    const detail::IniConfig ini(text, label, {{"client", known}});
    for (const auto& [key, secret_key] : client_keys()) {
        if (!ini.has("client", key)) continue;
        // A URL with a password in it is a secret too (a malformed one is
        // refused where it is used, naming it).
        bool secret = secret_key;
        if (!secret && key.size() > 4 && key.compare(key.size() - 4, 4, "_url") == 0) {
            try {
                secret = parse_url(ini.get("client", key)).has_password;
            } catch (const ConfigError&) {
            }
        }
        if (secret && !private_file)
            throw ConfigError(fmt::format(
                "{} [client] {}: a secret in a file others may read (chmod 600 it, or use {})", label, key,
                key == "api_key" ? "api_key_file" : "the environment's APCLOUD_" + variable_of(key).substr(8)));
        env.emplace(variable_of(key), ini.get("client", key));  // a variable already set wins
    }
    return env;
}

std::string client_config_path(const Environment& env) {
    auto get = [&](const char* name) {
        auto it = env.find(name);
        return it == env.end() ? std::string() : it->second;
    };
    if (auto explicit_path = get("APCLOUD_CONFIG"); !explicit_path.empty()) return explicit_path;
    if (auto xdg = get("XDG_CONFIG_HOME"); !xdg.empty()) return xdg + "/autopkgtest-cloud/client.conf";
    if (auto home = get("HOME"); !home.empty()) return home + "/.config/autopkgtest-cloud/client.conf";
    return {};
}

std::string option_or_setting(const std::string& given, const Environment& settings, const char* variable,
                              const char* option, bool required) {
    if (!given.empty()) return given;
    if (auto it = settings.find(variable); it != settings.end() && !it->second.empty()) return it->second;
    if (!required) return {};
    std::string key = std::string(variable).substr(std::string_view("APCLOUD_").size());
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
    throw ValidationError(option, "",
                          fmt::format("give {} or set {} (or {} in client.conf)", option, variable, key));
}

}  // namespace apcloud
