// Backends' credentials resolved from URL, given values and one environment map.
#include "autopkgtest_cloud/credentials.hpp"

#include <initializer_list>

namespace apcloud {

namespace {

std::string first_nonempty(std::initializer_list<std::string> values) {
    for (const auto& v : values)
        if (!v.empty()) return v;
    return {};
}

std::string lookup(const std::map<std::string, std::string>& map, const char* key) {
    auto it = map.find(key);
    return it == map.end() ? std::string() : it->second;
}

bool is_keystone_v3(const Url& url) {
    std::string path = url.path;
    while (!path.empty() && path.back() == '/') path.pop_back();
    return path.size() >= 3 && path.compare(path.size() - 3, 3, "/v3") == 0;
}

}  // namespace

StoreCredentials resolve_store_credentials(const Url& url, const StoreCredentials& given,
                                           const Environment& env) {
    const bool v3 = is_keystone_v3(url);
    auto os = [&](const char* key) { return v3 ? lookup(env, key) : std::string(); };
    StoreCredentials c;
    c.user = first_nonempty({url.user, given.user, lookup(env, "APCLOUD_SWIFT_USER"), os("OS_USERNAME")});
    c.key = first_nonempty({url.has_password ? url.password : std::string(), given.key,
                            lookup(env, "APCLOUD_SWIFT_KEY"), os("OS_PASSWORD")});
    c.project = first_nonempty({lookup(url.query, "project"), given.project,
                                lookup(env, "APCLOUD_SWIFT_PROJECT"), os("OS_PROJECT_NAME")});
    c.user_domain = first_nonempty(
        {lookup(url.query, "user_domain"), given.user_domain, os("OS_USER_DOMAIN_NAME"), "Default"});
    c.project_domain = first_nonempty(
        {lookup(url.query, "project_domain"), given.project_domain, os("OS_PROJECT_DOMAIN_NAME"), "Default"});
    c.region = first_nonempty({lookup(url.query, "region"), given.region, os("OS_REGION_NAME")});
    return c;
}

BrokerCredentials resolve_broker_credentials(const Url& url, const BrokerCredentials& given,
                                             const Environment& env) {
    BrokerCredentials c;
    c.user = first_nonempty({url.user, given.user, lookup(env, "APCLOUD_AMQP_USER")});
    if (url.has_password) {
        c.password = url.password;
        c.has_password = true;
    } else if (given.has_password) {
        c.password = given.password;
        c.has_password = true;
    } else if (auto it = env.find("APCLOUD_AMQP_PASSWORD"); it != env.end()) {
        c.password = it->second;
        c.has_password = true;
    }
    c.cacert =
        first_nonempty({lookup(url.query, "cacert"), given.cacert, lookup(env, "APCLOUD_AMQP_CACERT")});
    return c;
}

}  // namespace apcloud
