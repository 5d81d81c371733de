/// @file web.hpp
/// The web service (autopkgtest-cloud-web): its configuration (`web.conf`)
/// and the service itself: the results index fed by testcomplete events and a
/// backfill from the store, the published database, the running and queued
/// views and the HTTP server answering the routes of SPEC.md section 7.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "autopkgtest_cloud/credentials.hpp"

namespace apcloud {

/// A parsed `web.conf`.
struct WebConfig {
    // [web]
    std::string address = "127.0.0.1";  ///< `listen` address
    std::uint16_t port = 8080;          ///< `port` (0: any free one)
    int threads = 4;                    ///< `threads` serving connections
    std::string data_dir;               ///< `data_dir`: the index and the published database
    std::string name = "web";  ///< `name`: this replica's own event queue, apcloud.web.NAME.testcomplete
    std::vector<std::string> releases;       ///< `releases` whose queues are shown
    std::vector<std::string> architectures;  ///< `architectures` whose queues are shown
    std::string share_dir;                   ///< `share_dir`: openapi.yaml, templates, static files
    std::string banner_file;                 ///< `banner`: operator message shown on the pages
    int backfill_interval = 3600;            ///< seconds between backfills from the store
    int publish_interval = 60;     ///< seconds between publications of autopkgtest.db (when changed)
    int queue_interval = 5;        ///< seconds between reads of the queues
    int statistics_interval = 60;  ///< longest time between statistics refreshes (new runs refresh them at the next queue read)
    int status_interval = 10;      ///< the workers' status interval (running tests go stale after three)
    // [requests]: the request API
    std::string keys_file;    ///< `keys_file`: API key digests (apcloud keys); empty: DATA_DIR/api-keys
    std::string access_file;  ///< `access_file`: who may request what (access.hpp); none: nobody
    std::string user_header;  ///< `user_header`: a proxy's authenticated user, e.g. X-Remote-User
    std::vector<std::string> trusted_proxies;  ///< `trusted_proxies`: addresses whose user_header is believed
    int requests_per_minute = 60;              ///< `requests_per_minute` per user (0: no limit)
    int burst = 100;                           ///< `burst`: requests a user may send at once
    bool allow_local_sources = false;  ///< `allow_local_sources`: build-git/test-git may be local paths (one machine)
    /// `supersede`: a new request cancels the queued ones of the same package, release, arch and PPAs
    /// whose triggers name the same sources at other versions (an older upload's tests).
    bool supersede = false;
    // [webhooks]: GitHub pull requests and GitLab merge requests (SPEC.md 10)
    std::string public_url;  ///< `[web] public_url`: the statuses' target_url base; empty: http://listen:port
    std::string projects_file;              ///< `projects_file`: [github NAME]/[gitlab NAME] secrets and tokens
    std::string github_secrets;             ///< `github_secrets`: the reference's github-secrets.json
    std::string github_status_credentials;  ///< `github_status_credentials`: the reference's project:user:token lines
    std::string github_api = "https://api.github.com";  ///< `github_api`: statuses URLs must be under it
    std::string gitlab_api = "https://gitlab.com/api/v4";  ///< `gitlab_api`: where GitLab statuses go
    int start_timeout = 21600;  ///< `start_timeout`: seconds a PR's request may wait to start before its status is error
    bool cancel_running = false;  ///< `cancel_running`: a newer push also cancels the PR's running tests
    /// `status_attempts`: tries to send one status (1, 2, 4 ... then 600 s apart: 200 is about a day and a
    /// half) before it is dropped, logged
    int status_attempts = 200;
    // [amqp], [swift]
    std::string broker_url;
    BrokerCredentials broker_credentials;
    std::string store_url;
    StoreCredentials store_credentials;
};

/// Parses web.conf text; `env` fills what the file leaves out (as for
/// worker.conf). Throws ConfigError naming section, key and value.
WebConfig parse_web_config(std::string_view ini_text, const Environment& env = {});

/// web.conf text that parse_web_config reads back as `config`.
std::string render_web_config(const WebConfig& config);

/// Runs the web service until `stop` becomes true; `on_listening` is called
/// with the port once the server listens. Throws ConfigError for a bad
/// configuration and Error when the index, store or broker cannot be opened.
void run_web_service(const WebConfig& config, const std::atomic<bool>& stop,
                     const std::function<void(std::uint16_t port)>& on_listening = {});

/// Rebuilds the results index in `dir` from every container of the store at
/// `store_url`: a new index is filled from the store, then replaces the old
/// one (kept as `dir.old`). Returns the number of runs indexed.
std::uint64_t rebuild_index(const std::string& dir, const std::string& store_url,
                            const StoreCredentials& credentials = {}, const Environment& env = {});

}  // namespace apcloud
