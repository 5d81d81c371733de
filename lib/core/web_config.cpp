// web.conf: the web service's settings, with the [amqp] and [swift] sections worker.conf has too.
#include <fmt/format.h>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/routing.hpp"
#include "autopkgtest_cloud/web.hpp"
#include "core/ini_config.hpp"

namespace apcloud {

namespace {

const detail::KnownKeys& known_keys() {
    static const detail::KnownKeys keys = [] {
        detail::KnownKeys k = detail::backend_keys();
        k["web"] = {"listen",
                    "port",
                    "threads",
                    "data_dir",
                    "name",
                    "releases",
                    "architectures",
                    "share_dir",
                    "banner",
                    "backfill_interval",
                    "publish_interval",
                    "queue_interval",
                    "statistics_interval",
                    "status_interval",
                    "public_url"};
        k["webhooks"] = {"projects_file",  "github_secrets", "github_status_credentials",
                         "github_api",     "gitlab_api",     "start_timeout",
                         "cancel_running", "status_attempts"};
        k["requests"] = {"keys_file",           "access_file", "user_header",         "trusted_proxies",
                         "requests_per_minute", "burst",       "allow_local_sources", "supersede"};
        return k;
    }();
    return keys;
}

void check_names(const detail::IniConfig& ini, const WebConfig& c) {
    for (const auto& r : c.releases)
        if (!is_valid_release(r)) ini.bad("web", "releases", r, fmt::format("release {}", release_rule));
    for (const auto& a : c.architectures)
        if (!is_valid_arch(a)) ini.bad("web", "architectures", a, fmt::format("architecture {}", arch_rule));
    const bool name_ok =
        !c.name.empty() && c.name.size() <= 64 &&
        c.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_") == std::string::npos;
    if (!name_ok) ini.bad("web", "name", c.name, "must be 1 to 64 of a-z 0-9 - _");
}

}  // namespace

WebConfig parse_web_config(std::string_view text, const Environment& env) {
    const detail::IniConfig ini(text, "web.conf", known_keys());
    WebConfig c;
    if (ini.has("web", "listen")) c.address = ini.get("web", "listen");
    c.port = static_cast<std::uint16_t>(ini.positive_int("web", "port", 8080, 0));
    if (ini.positive_int("web", "port", 8080, 0) > 65535)
        ini.bad("web", "port", ini.get("web", "port"), "must be at most 65535");
    c.threads = ini.positive_int("web", "threads", 4, 1);
    c.data_dir = ini.get("web", "data_dir");
    if (c.data_dir.empty() || c.data_dir.front() != '/')
        ini.bad("web", "data_dir", c.data_dir, "must be an absolute path");
    if (ini.has("web", "name")) c.name = ini.get("web", "name");
    c.releases = ini.words("web", "releases");
    c.architectures = ini.words("web", "architectures");
    check_names(ini, c);
    c.share_dir = ini.get("web", "share_dir");
    c.banner_file = ini.get("web", "banner");
    c.backfill_interval = ini.positive_int("web", "backfill_interval", 3600, 0);
    c.publish_interval = ini.positive_int("web", "publish_interval", 60, 1);
    c.queue_interval = ini.positive_int("web", "queue_interval", 5, 1);
    c.statistics_interval = ini.positive_int("web", "statistics_interval", 60, 1);
    c.status_interval = ini.positive_int("web", "status_interval", 10, 1);
    c.keys_file = ini.get("requests", "keys_file");
    c.access_file = ini.get("requests", "access_file");
    c.user_header = ini.get("requests", "user_header");
    c.trusted_proxies = ini.words("requests", "trusted_proxies");
    c.requests_per_minute = ini.positive_int("requests", "requests_per_minute", 60, 0);
    c.burst = ini.positive_int("requests", "burst", 100, 1);
    c.allow_local_sources = ini.boolean("requests", "allow_local_sources");
    c.supersede = ini.boolean("requests", "supersede");
    c.public_url = ini.get("web", "public_url");
    c.projects_file = ini.get("webhooks", "projects_file");
    c.github_secrets = ini.get("webhooks", "github_secrets");
    c.github_status_credentials = ini.get("webhooks", "github_status_credentials");
    for (auto [key, slot] : {std::pair<const char*, std::string*>{"github_api", &c.github_api},
                             {"gitlab_api", &c.gitlab_api},
                             {"public_url", &c.public_url}}) {
        const std::string section = std::string(key) == "public_url" ? "web" : "webhooks";
        if (!ini.has(section, key)) continue;
        *slot = ini.get(section, key);
        if (slot->rfind("http://", 0) != 0 && slot->rfind("https://", 0) != 0)
            ini.bad(section, key, *slot, "must be an http(s) URL");
        while (slot->size() > 8 && slot->back() == '/') slot->pop_back();
    }
    c.start_timeout = ini.positive_int("webhooks", "start_timeout", 21600, 1);
    c.cancel_running = ini.boolean("webhooks", "cancel_running");
    c.status_attempts = ini.positive_int("webhooks", "status_attempts", 200, 1);
    auto backends = detail::parse_backends(ini, env, {"file", "swift+http", "swift+https", "http", "https"});
    c.broker_url = std::move(backends.broker_url);
    c.broker_credentials = std::move(backends.broker_credentials);
    c.store_url = std::move(backends.store_url);
    c.store_credentials = std::move(backends.store_credentials);
    return c;
}

std::string render_web_config(const WebConfig& c) {
    std::string out = "[web]\n";
    auto put = [&](const char* key, const std::string& value) {
        if (!value.empty()) out += fmt::format("{} = {}\n", key, value);
    };
    put("listen", c.address);
    put("port", std::to_string(c.port));
    put("threads", std::to_string(c.threads));
    put("data_dir", c.data_dir);
    put("name", c.name);
    put("releases", fmt::format("{}", fmt::join(c.releases, " ")));
    put("architectures", fmt::format("{}", fmt::join(c.architectures, " ")));
    put("share_dir", c.share_dir);
    put("banner", c.banner_file);
    put("backfill_interval", std::to_string(c.backfill_interval));
    put("publish_interval", std::to_string(c.publish_interval));
    put("queue_interval", std::to_string(c.queue_interval));
    put("statistics_interval", std::to_string(c.statistics_interval));
    put("status_interval", std::to_string(c.status_interval));
    put("public_url", c.public_url);
    out += "\n[requests]\n";
    put("keys_file", c.keys_file);
    put("access_file", c.access_file);
    put("user_header", c.user_header);
    put("trusted_proxies", fmt::format("{}", fmt::join(c.trusted_proxies, " ")));
    put("requests_per_minute", std::to_string(c.requests_per_minute));
    put("burst", std::to_string(c.burst));
    if (c.allow_local_sources) put("allow_local_sources", "true");
    if (c.supersede) put("supersede", "true");
    out += "\n[webhooks]\n";
    put("projects_file", c.projects_file);
    put("github_secrets", c.github_secrets);
    put("github_status_credentials", c.github_status_credentials);
    put("github_api", c.github_api);
    put("gitlab_api", c.gitlab_api);
    put("start_timeout", std::to_string(c.start_timeout));
    if (c.cancel_running) put("cancel_running", "true");
    put("status_attempts", std::to_string(c.status_attempts));
    out += "\n[amqp]\n";
    put("url", c.broker_url);
    put("user", c.broker_credentials.user);
    if (c.broker_credentials.has_password) put("password", c.broker_credentials.password);
    out += "\n[swift]\n";
    put("url", c.store_url);
    put("username", c.store_credentials.user);
    put("password", c.store_credentials.key);
    return out;
}

}  // namespace apcloud
