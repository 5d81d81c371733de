// The OpenStack Swift store (private header).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "autopkgtest_cloud/store.hpp"
#include "autopkgtest_cloud/url.hpp"

namespace apcloud {

/// Tuning of a Swift store, read from the store URL's query parameters
/// (`?retries=4&backoff=0.5&timeout=30&concurrency=16&list_page=10000`).
struct SwiftOptions {
    /// Retries after a first failed try (connection error, 5xx, 408, 429):
    /// the default 4 makes 5 tries, like the reference's uploads.
    int retries = 4;
    /// Seconds before the first retry; doubled for each further one. The
    /// reference waits 10 s; 0.5 s suits loopback tests and short outages.
    double backoff = 0.5;
    /// Upper bound of one wait (also caps a server's Retry-After).
    double backoff_max = 30;
    /// Seconds to wait for connecting, sending or receiving.
    double timeout = 30;
    /// Requests in flight at once in get_many.
    std::size_t concurrency = 16;
    /// Verify TLS certificates (`?insecure=1` turns it off).
    bool verify_tls = true;
    /// Containers per page of list_containers (`?list_page=`, 1..10000):
    /// Swift's default maximum, or less for a cluster whose swift.conf sets a
    /// smaller `account_listing_limit` (it refuses larger pages with 412);
    /// tests page with small ones.
    std::size_t list_page = 10000;
};

/// Opens a Swift store from its URL and credentials:
/// - `swift+http(s)://[user:key@]host:port/auth/v1.0`: v1 (tempauth) auth;
/// - `swift+http(s)://host:port/v3` (path ending in /v3): Keystone v3
///   password auth, storage URL from the catalog's object-store endpoint;
/// - `http(s)://host/v1/AUTH_x`: a public storage URL, anonymous reads only;
/// - `http(s)://host/auth/v1.0` and `http(s)://host/v3` are taken as auth
///   URLs too (swift-start and OpenStack rc files print them that way).
/// `credentials` are the resolved ones (resolve_store_credentials: this
/// adapter never reads the environment). Query parameters: those of
/// SwiftOptions, and for Keystone v3 `project`, `user_domain`,
/// `project_domain`, `region` (already taken into `credentials`), `interface`.
/// Throws ConfigError for an unknown parameter or missing credentials; never
/// authenticates here.
std::unique_ptr<Store> make_swift_store(const Url& url, const StoreCredentials& credentials);

/// How many times `store` (a Swift store) has obtained a token, for tests
/// that check tokens are fetched lazily and renewed; 0 for other stores.
std::uint64_t swift_auth_count(const Store& store);

}  // namespace apcloud
