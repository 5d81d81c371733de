/// @file credentials.hpp
/// Where backends' credentials come from: the URL, then what the caller (or
/// worker.conf) gives, then one explicit environment map. The one place that
/// knows the environment variable names; adapters never read the environment.
#pragma once

#include <map>
#include <string>

#include "autopkgtest_cloud/url.hpp"

namespace apcloud {

/// Environment variables by name (a process's: process_environment()).
using Environment = std::map<std::string, std::string>;

/// This process's environment.
Environment process_environment();

/// Credentials of a Swift store.
struct StoreCredentials {
    std::string user;
    std::string key;
    std::string project;         ///< Keystone v3 project name
    std::string user_domain;     ///< Keystone v3 user domain
    std::string project_domain;  ///< Keystone v3 project domain
    std::string region;          ///< Keystone v3 region of the object-store endpoint (empty: any)
};

/// The credentials for the store at `url`, field by field: the URL (user
/// info; `?project=`, `?user_domain=`, `?project_domain=`, `?region=`), else
/// `given`, else `env` (APCLOUD_SWIFT_USER, APCLOUD_SWIFT_KEY,
/// APCLOUD_SWIFT_PROJECT; for Keystone v3 URLs, ending in `/v3`, also
/// OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, OS_USER_DOMAIN_NAME,
/// OS_PROJECT_DOMAIN_NAME, OS_REGION_NAME). Keystone domains default to
/// "Default". Stores that need no credentials (`file://`, public storage
/// URLs) get them resolved all the same and ignore them.
StoreCredentials resolve_store_credentials(const Url& url, const StoreCredentials& given,
                                           const Environment& env);

/// Credentials of a broker.
struct BrokerCredentials {
    std::string user;
    std::string password;
    bool has_password = false;  ///< a password was given (it may be empty)
    std::string cacert;         ///< CA bundle for amqps
};

/// The credentials for the broker at `url`: the URL's user info, else
/// `given`, else `env` (APCLOUD_AMQP_USER, APCLOUD_AMQP_PASSWORD,
/// APCLOUD_AMQP_CACERT; `?cacert=` in the URL wins over all).
BrokerCredentials resolve_broker_credentials(const Url& url, const BrokerCredentials& given,
                                             const Environment& env);

}  // namespace apcloud
