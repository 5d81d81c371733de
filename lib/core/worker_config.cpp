// worker.conf parsing, per-package lists and the autopkgtest argv
// (SPEC.md section 5). Pure: file contents and environment are handed in.
#include "autopkgtest_cloud/worker_config.hpp"

#include <fmt/format.h>
#include <fnmatch.h>
#include <ini.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "autopkgtest_cloud/credentials.hpp"
#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/routing.hpp"
#include "autopkgtest_cloud/url.hpp"

namespace apcloud {

namespace {

using Sections = std::map<std::string, std::map<std::string, std::string>>;

// Keys each section may hold: ours and those of the reference worker.conf
// (accepted so existing files keep working). Anything else is a typo.
const std::map<std::string, std::set<std::string>> known_keys = {
    {"amqp", {"url", "host", "user", "password", "vhost", "lease"}},
    {"swift",
     {"url", "auth_url", "username", "password", "region_name", "project_name", "tenant", "user_domain_name",
      "project_domain_name", "auth_version"}},
    {"autopkgtest",
     {"checkout_dir",
      "per_package_config_dir",
      "releases",
      "architectures",
      "setup_command",
      "setup_command2",
      "extra_args",
      "allow_local_sources",
      "testbed_failure_retries",
      "status_interval",
      "timeout_short",
      "timeout_install",
      "timeout_test",
      "timeout_copy",
      "timeout_build",
      "long_timeout_test",
      "long_timeout_build",
      "testbed_failure_backoff",
      "upload_retries",
      "upload_backoff",
      "max_attempts",
      "work_dir",
      "retry_delay",
      "debug"}},
    {"virt", {"args", "package_size_default", "package_size_big"}},
};

[[noreturn]] void bad(const std::string& section, const std::string& key, const std::string& value,
                      const std::string& why) {
    throw ConfigError(
        fmt::format("worker.conf [{}] {} = {}: {}", section, key, quote_for_message(value), why));
}

std::vector<std::string> words(std::string_view s) {
    std::vector<std::string> out;
    std::istringstream in{std::string(s)};
    std::string w;
    while (in >> w) out.push_back(w);
    return out;
}

int positive_int(const Sections& ini, const std::string& section, const std::string& key, int fallback,
                 int min) {
    auto sit = ini.find(section);
    if (sit == ini.end()) return fallback;
    auto kit = sit->second.find(key);
    if (kit == sit->second.end()) return fallback;
    const std::string& v = kit->second;
    if (v.empty() || v.size() > 9 ||
        !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
        bad(section, key, v, "must be a whole number");
    int n = std::stoi(v);
    if (n < min) bad(section, key, v, fmt::format("must be at least {}", min));
    return n;
}

bool boolean(const Sections& ini, const std::string& section, const std::string& key) {
    auto sit = ini.find(section);
    if (sit == ini.end() || !sit->second.count(key)) return false;
    const std::string& v = sit->second.at(key);
    if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
    if (v == "0" || v == "false" || v == "no" || v == "off" || v.empty()) return false;
    bad(section, key, v, "must be true or false");
}

std::string get(const Sections& ini, const std::string& section, const std::string& key) {
    auto sit = ini.find(section);
    if (sit == ini.end()) return {};
    auto kit = sit->second.find(key);
    return kit == sit->second.end() ? std::string() : kit->second;
}

std::string env_or(const std::map<std::string, std::string>& env, const char* name,
                   const std::string& value) {
    if (!value.empty()) return value;
    auto it = env.find(name);
    return it == env.end() ? std::string() : it->second;
}

bool is_var_start(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
bool is_var_char(char c) {
    return is_var_start(c) || (c >= '0' && c <= '9');
}

// Names of the variables `text` refers to.
std::vector<std::string> referenced_variables(std::string_view text) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '$' || i + 1 >= text.size()) continue;
        if (text[i + 1] == '{') {
            auto close = text.find('}', i + 2);
            if (close != std::string_view::npos) out.emplace_back(text.substr(i + 2, close - i - 2));
        } else if (is_var_start(text[i + 1])) {
            std::size_t j = i + 1;
            while (j < text.size() && is_var_char(text[j])) ++j;
            out.emplace_back(text.substr(i + 1, j - i - 1));
        }
    }
    return out;
}

const std::set<std::string> builtin_variables = {"RELEASE",     "ARCHITECTURE", "HOSTARCH", "PACKAGENAME",
                                                 "PACKAGESIZE", "TIMESTAMP",    "HOSTNAME", "UUID"};

}  // namespace

std::string WorkerConfig::autopkgtest_program() const {
    return checkout_dir.empty() ? std::string("autopkgtest") : checkout_dir + "/runner/autopkgtest";
}

namespace {

Sections read_ini(std::string_view text) {
    Sections ini;
    std::string buffer(text);
    int line = ini_parse_string(
        buffer.c_str(),
        [](void* user, const char* section, const char* name, const char* value) -> int {
            auto& slot = (*static_cast<Sections*>(user))[section][name];
            slot = slot.empty() ? value : slot + "\n" + value;  // continuation lines
            return 1;
        },
        &ini);
    if (line != 0) throw ConfigError(fmt::format("worker.conf: syntax error on line {}", line));
    for (const auto& [section, keys] : ini) {
        auto known = known_keys.find(section);
        if (known == known_keys.end())
            throw ConfigError(fmt::format(
                "worker.conf: unknown section [{}] (expected amqp, swift, autopkgtest, virt)", section));
        for (const auto& [key, value] : keys)
            if (!known->second.count(key)) bad(section, key, value, "unknown key");
    }
    return ini;
}

// [amqp]: a URL (amqp:// or sqlite://), or the reference's host/user/password.
// Returns the AMQP lease in seconds (nullopt for the embedded broker).
std::optional<double> parse_amqp(const Sections& ini, const Environment& env, WorkerConfig& c) {
    c.broker_url = env_or(env, "APCLOUD_AMQP_URL", get(ini, "amqp", "url"));
    BrokerCredentials given;
    given.user = get(ini, "amqp", "user");
    if (ini.count("amqp") && ini.at("amqp").count("password")) {
        given.password = ini.at("amqp").at("password");
        given.has_password = true;
    }
    if (c.broker_url.empty() && !get(ini, "amqp", "host").empty()) {
        std::string vhost = get(ini, "amqp", "vhost");
        c.broker_url = fmt::format("amqp://{}/{}", get(ini, "amqp", "host"),
                                   percent_encode(vhost.empty() ? "/" : vhost));
    }
    if (c.broker_url.empty()) bad("amqp", "url", "", "no broker configured (url, host, or APCLOUD_AMQP_URL)");
    const Url broker = parse_url(c.broker_url);
    if (broker.scheme != "amqp" && broker.scheme != "amqps" && broker.scheme != "sqlite")
        bad("amqp", "url", broker.redacted(), "must be amqp://, amqps:// or sqlite://");
    c.broker_credentials = resolve_broker_credentials(broker, given, env);
    if (broker.scheme == "sqlite") return std::nullopt;
    // Workers hold a request for a whole test, which may outlast RabbitMQ's
    // consumer ack timeout: they take leases ([amqp] lease seconds, default
    // 600) unless the URL sets its own.
    if (auto in_url = broker.query.find("lease"); in_url != broker.query.end())
        return std::atof(in_url->second.c_str());
    int lease = positive_int(ini, "amqp", "lease", 600, 30);
    c.broker_url += fmt::format("{}lease={}", c.broker_url.find('?') == std::string::npos ? "?" : "&", lease);
    return lease;
}

// [swift]: a store URL, or the reference's auth_url + username/password and Keystone keys.
void parse_swift(const Sections& ini, const Environment& env, WorkerConfig& c) {
    c.store_url = env_or(env, "APCLOUD_STORE_URL", get(ini, "swift", "url"));
    if (c.store_url.empty() && !get(ini, "swift", "auth_url").empty())
        c.store_url = "swift+" + get(ini, "swift", "auth_url");
    if (c.store_url.empty())
        bad("swift", "url", "", "no result store configured (url, auth_url, or APCLOUD_STORE_URL)");
    const Url store = parse_url(c.store_url);
    if (store.scheme != "file" && store.scheme != "swift+http" && store.scheme != "swift+https")
        bad("swift", "url", store.redacted(), "must be file://, swift+http:// or swift+https://");
    StoreCredentials given;
    given.user = get(ini, "swift", "username");
    given.key = get(ini, "swift", "password");
    given.project = get(ini, "swift", "project_name").empty() ? get(ini, "swift", "tenant")
                                                              : get(ini, "swift", "project_name");
    given.user_domain = get(ini, "swift", "user_domain_name");
    given.project_domain = get(ini, "swift", "project_domain_name");
    given.region = get(ini, "swift", "region_name");
    if (auto v = get(ini, "swift", "auth_version"); !v.empty() && v != "1" && v != "1.0" && v != "3")
        bad("swift", "auth_version", v, "must be 1 or 3 (Keystone v3); the URL's path decides which");
    c.store_credentials = resolve_store_credentials(store, given, env);
}

Timeouts parse_timeouts(const Sections& ini) {
    Timeouts t;
    t.short_ = positive_int(ini, "autopkgtest", "timeout_short", 300, 1);
    t.install = positive_int(ini, "autopkgtest", "timeout_install", 3000, 1);
    t.test = positive_int(ini, "autopkgtest", "timeout_test", 10000, 1);
    t.copy = positive_int(ini, "autopkgtest", "timeout_copy", 900, 1);
    t.build = positive_int(ini, "autopkgtest", "timeout_build", 20000, 1);
    return t;
}

// [autopkgtest]
void parse_autopkgtest(const Sections& ini, std::optional<double> amqp_lease, WorkerConfig& c) {
    c.checkout_dir = get(ini, "autopkgtest", "checkout_dir");
    c.per_package_config_dir = get(ini, "autopkgtest", "per_package_config_dir");
    c.releases = words(get(ini, "autopkgtest", "releases"));
    c.architectures = words(get(ini, "autopkgtest", "architectures"));
    if (c.releases.empty()) bad("autopkgtest", "releases", "", "list at least one release");
    if (c.architectures.empty()) bad("autopkgtest", "architectures", "", "list at least one architecture");
    for (const auto& r : c.releases)
        if (!is_valid_release(r)) bad("autopkgtest", "releases", r, fmt::format("release {}", release_rule));
    for (const auto& a : c.architectures)
        if (!is_valid_arch(a))
            bad("autopkgtest", "architectures", a, fmt::format("architecture {}", arch_rule));
    c.setup_command = get(ini, "autopkgtest", "setup_command");
    c.setup_command2 = get(ini, "autopkgtest", "setup_command2");
    c.extra_args = words(get(ini, "autopkgtest", "extra_args"));
    c.allow_local_sources = boolean(ini, "autopkgtest", "allow_local_sources");
    c.testbed_failure_retries = positive_int(ini, "autopkgtest", "testbed_failure_retries", 2, 0);
    c.status_interval = positive_int(ini, "autopkgtest", "status_interval", 10, 1);
    // AMQP leases are renewed on every status tick: three ticks must fit in
    // one (the embedded broker renews its own from a thread).
    if (amqp_lease && *amqp_lease < 3.0 * c.status_interval)
        bad("autopkgtest", "status_interval", std::to_string(c.status_interval),
            fmt::format("must be at most a third of the broker lease ({} s)",
                        static_cast<long>(*amqp_lease)));
    c.testbed_failure_backoff = positive_int(ini, "autopkgtest", "testbed_failure_backoff", 30, 0);
    c.upload_retries = positive_int(ini, "autopkgtest", "upload_retries", 5, 1);
    c.upload_backoff = positive_int(ini, "autopkgtest", "upload_backoff", 10, 0);
    c.max_attempts = positive_int(ini, "autopkgtest", "max_attempts", 5, 1);
    if (auto w = get(ini, "autopkgtest", "work_dir"); !w.empty()) {
        if (w.front() != '/') bad("autopkgtest", "work_dir", w, "must be an absolute path");
        c.work_dir = w;
    }
    c.timeouts = parse_timeouts(ini);
    c.long_timeouts = c.timeouts;
    c.long_timeouts.test = positive_int(ini, "autopkgtest", "long_timeout_test", 40000, 1);
    c.long_timeouts.build = positive_int(ini, "autopkgtest", "long_timeout_build", 40000, 1);
}

// [virt]
void parse_virt(const Sections& ini, WorkerConfig& c) {
    c.virt_args = words(get(ini, "virt", "args"));
    if (c.virt_args.empty())
        bad("virt", "args", "", "name the virtualization server, e.g. `null` or `lxd ...`");
    c.package_size_default = get(ini, "virt", "package_size_default");
    c.package_size_big = get(ini, "virt", "package_size_big");
}

// Every $VARIABLE must be known at start-up, not when the first request arrives.
void check_variables(const std::string& section, const std::string& key, const std::string& value,
                     const std::map<std::string, std::string>& extra_vars) {
    for (const auto& v : referenced_variables(value))
        if (!builtin_variables.count(v) && !extra_vars.count(v))
            bad(section, key, value,
                fmt::format(
                    "unknown variable ${} (built in: RELEASE ARCHITECTURE HOSTARCH PACKAGENAME PACKAGESIZE "
                    "TIMESTAMP HOSTNAME UUID; others need -v {}=...)",
                    v, v));
}

}  // namespace

WorkerConfig parse_worker_config(std::string_view text, const std::map<std::string, std::string>& env,
                                 const std::map<std::string, std::string>& extra_vars) {
    const Sections ini = read_ini(text);
    WorkerConfig c;
    const auto amqp_lease = parse_amqp(ini, env, c);
    parse_swift(ini, env, c);
    parse_autopkgtest(ini, amqp_lease, c);
    parse_virt(ini, c);
    check_variables("autopkgtest", "setup_command", c.setup_command, extra_vars);
    check_variables("autopkgtest", "setup_command2", c.setup_command2, extra_vars);
    check_variables("virt", "args", get(ini, "virt", "args"), extra_vars);
    return c;
}

namespace {

// Writes `key = value` lines of one section; continuation lines for values
// with newlines (as inih reads them back), nothing for empty values.
class IniWriter {
public:
    void section(const char* name) { out_ += (out_.empty() ? "[" : "\n[") + std::string(name) + "]\n"; }
    void put(const char* key, const std::string& value) {
        if (value.empty()) return;
        if (value.find(" ;") != std::string::npos || value.find("\t;") != std::string::npos ||
            value.front() == ' ' || value.back() == ' ')
            throw ConfigError(
                fmt::format("cannot write {} = {} to worker.conf: an inline ';' comment or surrounding "
                            "blanks would change it",
                            key, quote_for_message(value)));
        std::string v = value;
        for (std::size_t p = 0; (p = v.find('\n', p)) != std::string::npos; p += 2) v.insert(p + 1, "\t");
        out_ += std::string(key) + " = " + v + "\n";
    }
    void put(const char* key, int value) { put(key, std::to_string(value)); }
    void put(const char* key, const std::vector<std::string>& words) {
        std::string joined;
        for (const auto& w : words) joined += (joined.empty() ? "" : " ") + w;
        put(key, joined);
    }
    std::string text() && { return std::move(out_); }

private:
    std::string out_;
};

}  // namespace

std::string render_worker_config(const WorkerConfig& c) {
    IniWriter w;
    w.section("amqp");
    w.put("url", c.broker_url);
    w.put("user", c.broker_credentials.user);
    if (c.broker_credentials.has_password) w.put("password", c.broker_credentials.password);
    w.section("swift");
    w.put("url", c.store_url);
    w.put("username", c.store_credentials.user);
    w.put("password", c.store_credentials.key);
    w.put("project_name", c.store_credentials.project);
    w.put("user_domain_name", c.store_credentials.user_domain);
    w.put("project_domain_name", c.store_credentials.project_domain);
    w.put("region_name", c.store_credentials.region);
    w.section("autopkgtest");
    w.put("releases", c.releases);
    w.put("architectures", c.architectures);
    w.put("checkout_dir", c.checkout_dir);
    w.put("per_package_config_dir", c.per_package_config_dir);
    w.put("setup_command", c.setup_command);
    w.put("setup_command2", c.setup_command2);
    w.put("extra_args", c.extra_args);
    w.put("allow_local_sources", c.allow_local_sources ? "true" : "false");
    w.put("testbed_failure_retries", c.testbed_failure_retries);
    w.put("status_interval", c.status_interval);
    w.put("testbed_failure_backoff", c.testbed_failure_backoff);
    w.put("upload_retries", c.upload_retries);
    w.put("upload_backoff", c.upload_backoff);
    w.put("max_attempts", c.max_attempts);
    w.put("work_dir", c.work_dir);
    w.put("timeout_short", c.timeouts.short_);
    w.put("timeout_install", c.timeouts.install);
    w.put("timeout_test", c.timeouts.test);
    w.put("timeout_copy", c.timeouts.copy);
    w.put("timeout_build", c.timeouts.build);
    w.put("long_timeout_test", c.long_timeouts.test);
    w.put("long_timeout_build", c.long_timeouts.build);
    w.section("virt");
    w.put("args", c.virt_args);
    w.put("package_size_default", c.package_size_default);
    w.put("package_size_big", c.package_size_big);
    return std::move(w).text();
}

std::map<std::string, std::string> parse_variables(const std::vector<std::string>& assignments) {
    std::map<std::string, std::string> vars;
    for (const auto& a : assignments) {
        auto eq = a.find('=');
        if (eq == std::string::npos || eq == 0 || !is_var_start(a[0]) ||
            !std::all_of(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(eq), is_var_char))
            throw ValidationError("variable", a, "must be NAME=VALUE with NAME like a shell variable");
        vars[a.substr(0, eq)] = a.substr(eq + 1);
    }
    return vars;
}

PackageList PackageList::parse(std::string_view text) {
    PackageList out;
    std::istringstream in{std::string(text)};
    std::string line;
    while (std::getline(in, line)) {
        auto hash = line.find('#');
        if (hash != std::string::npos) line.erase(hash);
        auto w = words(line);
        if (w.empty()) continue;
        PackagePattern p;
        std::string_view item = w.front();
        auto s1 = item.find('/');
        p.package = std::string(item.substr(0, s1));
        if (s1 != std::string_view::npos) {
            auto rest = item.substr(s1 + 1);
            auto s2 = rest.find('/');
            p.arch = std::string(rest.substr(0, s2));
            if (s2 != std::string_view::npos) p.release = std::string(rest.substr(s2 + 1));
        }
        if (p.arch.empty()) p.arch = "*";
        if (p.release.empty()) p.release = "*";
        out.patterns_.push_back(std::move(p));
    }
    return out;
}

bool PackageList::matches(std::string_view package, std::string_view arch, std::string_view release) const {
    const std::string pkg(package), a(arch), r(release);
    return std::any_of(patterns_.begin(), patterns_.end(), [&](const PackagePattern& p) {
        return fnmatch(p.package.c_str(), pkg.c_str(), 0) == 0 &&
               fnmatch(p.arch.c_str(), a.c_str(), 0) == 0 && fnmatch(p.release.c_str(), r.c_str(), 0) == 0;
    });
}

std::string substitute(std::string_view text, const std::map<std::string, std::string>& vars,
                       std::string_view where) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '$' || i + 1 >= text.size()) {
            out += text[i];
            continue;
        }
        std::string name;
        std::size_t end;
        if (text[i + 1] == '{') {
            auto close = text.find('}', i + 2);
            if (close == std::string_view::npos) {
                out += text[i];
                continue;
            }
            name = std::string(text.substr(i + 2, close - i - 2));
            end = close + 1;
        } else if (is_var_start(text[i + 1])) {
            end = i + 1;
            while (end < text.size() && is_var_char(text[end])) ++end;
            name = std::string(text.substr(i + 1, end - i - 1));
        } else {
            out += text[i];
            continue;
        }
        auto it = vars.find(name);
        if (it == vars.end())
            throw ConfigError(
                fmt::format("{}: unknown variable ${} in {}", where, name, quote_for_message(text)));
        out += it->second;
        i = end - 1;
    }
    return out;
}

}  // namespace apcloud
