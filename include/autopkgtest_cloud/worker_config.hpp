/// @file worker_config.hpp
/// Worker configuration (`worker.conf`, SPEC.md section 5) and per-package
/// lists. All pure: the caller reads files and the environment and hands
/// their contents in.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "autopkgtest_cloud/credentials.hpp"
#include "autopkgtest_cloud/request.hpp"

namespace apcloud {

/// autopkgtest timeouts in seconds.
struct Timeouts {
    int short_ = 300;
    int install = 3000;
    int test = 10000;
    int copy = 900;
    int build = 20000;
};

/// A parsed `worker.conf`.
struct WorkerConfig {
    // [amqp]
    std::string broker_url;                ///< `url`, or amqp:// built from host and vhost
    BrokerCredentials broker_credentials;  ///< resolved: URL, `user`/`password`, environment
    // [swift]
    std::string store_url;               ///< `url` (file:// or swift+http(s)://...)
    StoreCredentials store_credentials;  ///< resolved: URL, `username`/`password`/Keystone keys, environment
    // [autopkgtest]
    std::string checkout_dir;            ///< autopkgtest checkout; empty: `autopkgtest` from PATH
    std::string per_package_config_dir;  ///< holds big_packages, long_tests, never_run
    std::vector<std::string> releases;
    std::vector<std::string> architectures;
    std::string setup_command;
    std::string setup_command2;
    std::vector<std::string> extra_args;  ///< whitespace-separated words
    bool allow_local_sources = false;     ///< accept file:// and paths in test-git/build-git
    int testbed_failure_retries = 2;      ///< extra attempts after exit 16 before storing tmpfail
    int status_interval = 10;             ///< seconds between teststatus events
    int testbed_failure_backoff = 30;     ///< seconds before the first retry after exit 16 (doubles)
    int upload_retries = 5;               ///< upload attempts before giving the request back
    int upload_backoff = 10;              ///< seconds before the first upload retry (doubles: 10/20/40/80)
    int max_attempts = 5;                 ///< deliveries of one request before it is dead-lettered
    /// The stored log's size limit in MiB (debci's is 20): a longer log keeps
    /// its first and last halves around a line saying what was left out; 0: none.
    int log_limit_mb = 20;
    std::string work_dir = "/tmp";        ///< where run directories are made
    Timeouts timeouts;                    ///< for ordinary tests
    Timeouts long_timeouts{300, 3000, 40000, 900, 40000};  ///< long_tests and big packages
    // [virt]
    std::vector<std::string> virt_args;  ///< words, before substitution
    std::string package_size_default;
    std::string package_size_big;

    /// The autopkgtest program: `checkout_dir/runner/autopkgtest` or `autopkgtest`.
    std::string autopkgtest_program() const;
    /// True when the virt server is `null` (no apt pinning or upgrade).
    bool virt_is_null() const { return !virt_args.empty() && virt_args.front() == "null"; }
};

/// Parses worker.conf text. `env` supplies what the file leaves out
/// (APCLOUD_AMQP_URL, APCLOUD_STORE_URL, and the credentials of
/// resolve_broker_credentials and resolve_store_credentials) and
/// `extra_vars` the `-v K=V` variables. Throws ConfigError naming section, key and value for anything
/// invalid, including a `$VARIABLE` that is neither built in nor given.
WorkerConfig parse_worker_config(std::string_view ini_text,
                                 const std::map<std::string, std::string>& env = {},
                                 const std::map<std::string, std::string>& extra_vars = {});

/// worker.conf text that parse_worker_config reads back as `config` (with
/// `extra_vars` naming the variables it refers to). Credentials are written
/// too: give the file mode 0600 when they are set.
std::string render_worker_config(const WorkerConfig& config);

/// `NAME=VALUE` words (the worker's `-v` options) as a map; throws
/// ValidationError("variable", word) for a word without a name or '='.
std::map<std::string, std::string> parse_variables(const std::vector<std::string>& assignments);

/// One line of a per-package list: `pkg[/arch[/release]]` with shell wildcards.
struct PackagePattern {
    std::string package;
    std::string arch = "*";
    std::string release = "*";
};

/// A per-package list (`big_packages`, `long_tests`, `never_run`).
class PackageList {
public:
    PackageList() = default;
    /// Parses list text: one pattern a line, `#` starts a comment.
    static PackageList parse(std::string_view text);
    /// True when some line matches (missing parts match everything).
    bool matches(std::string_view package, std::string_view arch, std::string_view release) const;
    const std::vector<PackagePattern>& patterns() const { return patterns_; }

private:
    std::vector<PackagePattern> patterns_;
};

/// The per-package lists of one request, read fresh for every request.
struct PackageLists {
    PackageList big_packages;
    PackageList long_tests;
    PackageList never_run;
};

/// Replaces `$NAME` / `${NAME}` in `text` with `vars`; throws ConfigError
/// naming `where` for an unknown variable.
std::string substitute(std::string_view text, const std::map<std::string, std::string>& vars,
                       std::string_view where);

}  // namespace apcloud
