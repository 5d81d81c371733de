// worker.conf parsing, per-package lists and the autopkgtest argv
// (SPEC.md section 5). Pure: file contents and environment are handed in.
#include "autopkgtest_cloud/worker_config.hpp"

#include <fmt/format.h>
#include <fnmatch.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "autopkgtest_cloud/credentials.hpp"
#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/routing.hpp"
#include "autopkgtest_cloud/url.hpp"
#include "core/ini_config.hpp"

namespace apcloud {

namespace {

using detail::IniConfig;

// Keys each section may hold: ours and those of the reference worker.conf
// (accepted so existing files keep working). Anything else is a typo.
const detail::KnownKeys& known_keys() {
    static const detail::KnownKeys keys = [] {
        detail::KnownKeys k = detail::backend_keys();
        k["amqp"].insert("lease");
        k["autopkgtest"] = {"checkout_dir",
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
                            "log_limit_mb",
                            "work_dir",
                            "retry_delay",
                            "debug"};
        k["virt"] = {"args", "package_size_default", "package_size_big"};
        return k;
    }();
    return keys;
}

std::vector<std::string> words(std::string_view s) {
    std::vector<std::string> out;
    std::istringstream in{std::string(s)};
    std::string w;
    while (in >> w) out.push_back(w);
    return out;
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

// The worker's lease on AMQP deliveries, appended to the broker URL (nullopt
// for the embedded broker, which renews its own). Workers hold a request for
// a whole test, which may outlast RabbitMQ's consumer ack timeout: they take
// leases ([amqp] lease seconds, default 600) unless the URL sets its own.
std::optional<double> apply_lease(const IniConfig& ini, WorkerConfig& c) {
    const Url broker = parse_url(c.broker_url);
    if (broker.scheme == "sqlite") return std::nullopt;
    if (auto in_url = broker.query.find("lease"); in_url != broker.query.end())
        return std::atof(in_url->second.c_str());
    int lease = ini.positive_int("amqp", "lease", 600, 30);
    c.broker_url += fmt::format("{}lease={}", c.broker_url.find('?') == std::string::npos ? "?" : "&", lease);
    return lease;
}

Timeouts parse_timeouts(const IniConfig& ini) {
    Timeouts t;
    t.short_ = ini.positive_int("autopkgtest", "timeout_short", 300, 1);
    t.install = ini.positive_int("autopkgtest", "timeout_install", 3000, 1);
    t.test = ini.positive_int("autopkgtest", "timeout_test", 10000, 1);
    t.copy = ini.positive_int("autopkgtest", "timeout_copy", 900, 1);
    t.build = ini.positive_int("autopkgtest", "timeout_build", 20000, 1);
    return t;
}

// [autopkgtest]
void parse_autopkgtest(const IniConfig& ini, std::optional<double> amqp_lease, WorkerConfig& c) {
    c.checkout_dir = ini.get("autopkgtest", "checkout_dir");
    c.per_package_config_dir = ini.get("autopkgtest", "per_package_config_dir");
    c.releases = ini.words("autopkgtest", "releases");
    c.architectures = ini.words("autopkgtest", "architectures");
    if (c.releases.empty()) ini.bad("autopkgtest", "releases", "", "list at least one release");
    if (c.architectures.empty())
        ini.bad("autopkgtest", "architectures", "", "list at least one architecture");
    for (const auto& r : c.releases)
        if (!is_valid_release(r))
            ini.bad("autopkgtest", "releases", r, fmt::format("release {}", release_rule));
    for (const auto& a : c.architectures)
        if (!is_valid_arch(a))
            ini.bad("autopkgtest", "architectures", a, fmt::format("architecture {}", arch_rule));
    c.setup_command = ini.get("autopkgtest", "setup_command");
    c.setup_command2 = ini.get("autopkgtest", "setup_command2");
    c.extra_args = ini.words("autopkgtest", "extra_args");
    c.allow_local_sources = ini.boolean("autopkgtest", "allow_local_sources");
    c.testbed_failure_retries = ini.positive_int("autopkgtest", "testbed_failure_retries", 2, 0);
    c.status_interval = ini.positive_int("autopkgtest", "status_interval", 10, 1);
    // AMQP leases are renewed on every status tick: three ticks must fit in
    // one (the embedded broker renews its own from a thread).
    if (amqp_lease && *amqp_lease < 3.0 * c.status_interval)
        ini.bad("autopkgtest", "status_interval", std::to_string(c.status_interval),
                fmt::format("must be at most a third of the broker lease ({} s)",
                            static_cast<long>(*amqp_lease)));
    c.testbed_failure_backoff = ini.positive_int("autopkgtest", "testbed_failure_backoff", 30, 0);
    c.upload_retries = ini.positive_int("autopkgtest", "upload_retries", 5, 1);
    c.upload_backoff = ini.positive_int("autopkgtest", "upload_backoff", 10, 0);
    c.max_attempts = ini.positive_int("autopkgtest", "max_attempts", 5, 1);
    c.log_limit_mb = ini.positive_int("autopkgtest", "log_limit_mb", 20, 0);
    if (auto w = ini.get("autopkgtest", "work_dir"); !w.empty()) {
        if (w.front() != '/') ini.bad("autopkgtest", "work_dir", w, "must be an absolute path");
        c.work_dir = w;
    }
    c.timeouts = parse_timeouts(ini);
    c.long_timeouts = c.timeouts;
    c.long_timeouts.test = ini.positive_int("autopkgtest", "long_timeout_test", 40000, 1);
    c.long_timeouts.build = ini.positive_int("autopkgtest", "long_timeout_build", 40000, 1);
}

// [virt]
void parse_virt(const IniConfig& ini, WorkerConfig& c) {
    c.virt_args = ini.words("virt", "args");
    if (c.virt_args.empty())
        ini.bad("virt", "args", "", "name the virtualization server, e.g. `null` or `lxd ...`");
    c.package_size_default = ini.get("virt", "package_size_default");
    c.package_size_big = ini.get("virt", "package_size_big");
}

// Every $VARIABLE must be known at start-up, not when the first request arrives.
void check_variables(const IniConfig& ini, const std::string& section, const std::string& key,
                     const std::string& value, const std::map<std::string, std::string>& extra_vars) {
    for (const auto& v : referenced_variables(value))
        if (!builtin_variables.count(v) && !extra_vars.count(v))
            ini.bad(
                section, key, value,
                fmt::format(
                    "unknown variable ${} (built in: RELEASE ARCHITECTURE HOSTARCH PACKAGENAME PACKAGESIZE "
                    "TIMESTAMP HOSTNAME UUID; others need -v {}=...)",
                    v, v));
}

}  // namespace

WorkerConfig parse_worker_config(std::string_view text, const std::map<std::string, std::string>& env,
                                 const std::map<std::string, std::string>& extra_vars) {
    const IniConfig ini(text, "worker.conf", known_keys());
    WorkerConfig c;
    auto backends = detail::parse_backends(ini, env, {"file", "swift+http", "swift+https"});
    c.broker_url = std::move(backends.broker_url);
    c.broker_credentials = std::move(backends.broker_credentials);
    c.store_url = std::move(backends.store_url);
    c.store_credentials = std::move(backends.store_credentials);
    const auto amqp_lease = apply_lease(ini, c);
    parse_autopkgtest(ini, amqp_lease, c);
    parse_virt(ini, c);
    check_variables(ini, "autopkgtest", "setup_command", c.setup_command, extra_vars);
    check_variables(ini, "autopkgtest", "setup_command2", c.setup_command2, extra_vars);
    check_variables(ini, "virt", "args", ini.get("virt", "args"), extra_vars);
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
        // inih takes a ';' after a blank for a comment, and " = " puts one before the value's first character.
        if (value.find(" ;") != std::string::npos || value.find("\t;") != std::string::npos ||
            value.front() == ';' || value.front() == ' ' || value.back() == ' ')
            throw ConfigError(
                fmt::format("cannot write {} = {} to worker.conf: an inline ';' comment or surrounding "
                            "blanks would change it",
                            key, quote_for_message(value)));
        std::string v = value;
        for (std::size_t p = 0; (p = v.find('\n', p)) != std::string::npos; p += 2) v.insert(p + 1, "\t");
        const std::string lines = std::string(key) + " = " + v;
        // inih (as Debian builds it) reads lines of fewer than 200 bytes: a margin.
        for (std::size_t start = 0; start < lines.size();) {
            const std::size_t end = std::min(lines.find('\n', start), lines.size());
            if (end - start >= max_line)
                throw ConfigError(fmt::format("cannot write {} = {} to worker.conf: a line would be longer than {} "
                                              "bytes",
                                              key, quote_for_message(value), max_line - 1));
            start = end + 1;
        }
        out_ += lines + "\n";
    }
    void put(const char* key, int value) { put(key, std::to_string(value)); }
    // Words (read back split at any blank) over continuation lines, none too long.
    void put(const char* key, const std::vector<std::string>& words) {
        std::string joined;
        std::size_t line = 0;
        for (const auto& w : words) {
            const bool wrap = line > 0 && line + 1 + w.size() > max_line / 2;
            joined += joined.empty() ? "" : wrap ? "\n" : " ";
            line = wrap ? 0 : line + (line > 0);
            joined += w;
            line += w.size();
        }
        put(key, joined);
    }
    std::string text() && { return std::move(out_); }

private:
    static constexpr std::size_t max_line = 190;
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
    w.put("log_limit_mb", c.log_limit_mb);
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
