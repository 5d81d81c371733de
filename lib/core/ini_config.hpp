// INI configuration files (worker.conf, web.conf): sections read with inih,
// typed getters whose errors name file, section, key and value, and the
// [amqp]/[swift] sections both files share (private header).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "autopkgtest_cloud/credentials.hpp"

namespace apcloud::detail {

/// Keys each section may hold; anything else is a typo and refused. A
/// section named `KIND *` stands for every `[KIND NAME]`.
using KnownKeys = std::map<std::string, std::set<std::string>>;

/// The keys of the [amqp] and [swift] sections (ours and the reference's).
const KnownKeys& backend_keys();

/// A parsed INI file.
class IniConfig {
public:
    /// Parses `text`; `label` names the file in messages ("worker.conf").
    /// Throws ConfigError for a syntax error, an unknown section or key.
    IniConfig(std::string_view text, std::string label, const KnownKeys& known);

    /// Throws ConfigError "<label> [section] key = 'value': why".
    [[noreturn]] void bad(const std::string& section, const std::string& key, const std::string& value,
                          const std::string& why) const;
    /// The value, "" when absent.
    std::string get(const std::string& section, const std::string& key) const;
    bool has(const std::string& section, const std::string& key) const;
    /// The sections present, sorted.
    std::vector<std::string> sections() const;
    /// A whole number >= min, `fallback` when absent.
    int positive_int(const std::string& section, const std::string& key, int fallback, int min) const;
    /// true/false/yes/no/on/off/1/0, false when absent.
    bool boolean(const std::string& section, const std::string& key) const;
    /// The value split on whitespace.
    std::vector<std::string> words(const std::string& section, const std::string& key) const;
    const std::string& label() const noexcept { return label_; }

private:
    std::map<std::string, std::map<std::string, std::string>> sections_;
    std::string label_;
};

/// The broker and store of a service, from [amqp] and [swift].
struct BackendSettings {
    std::string broker_url;
    BrokerCredentials broker_credentials;
    std::string store_url;
    StoreCredentials store_credentials;
};

/// Reads [amqp] (`url`, or the reference's host/user/password/vhost) and
/// [swift] (`url`, or auth_url/username/password and the Keystone keys);
/// `env` fills the gaps (APCLOUD_AMQP_URL, APCLOUD_STORE_URL and the
/// credentials' variables). `swift_schemes`: the store URL schemes allowed.
BackendSettings parse_backends(const IniConfig& ini, const Environment& env,
                               const std::vector<std::string>& swift_schemes);

/// The value, or the environment variable `name` when the value is empty.
std::string value_or_env(const Environment& env, const char* name, const std::string& value);

}  // namespace apcloud::detail
