/// @file url.hpp
/// Backend URLs (`file:`, `sqlite:`, `swift+http:`, `amqp:` ...) taken apart.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace apcloud {

/// A URL split into its parts; user, password and path are percent-decoded.
struct Url {
    std::string scheme;    ///< lowercase, e.g. "amqp", "swift+https", "file"
    std::string user;      ///< decoded user info before ':'
    std::string password;  ///< decoded user info after ':'
    bool has_password = false;
    std::string host;  ///< host name or address ([] removed from IPv6)
    std::optional<std::uint16_t> port;
    std::string path;                          ///< decoded path, "" or starting with '/'
    std::string raw_path;                      ///< path as written (still percent-encoded)
    std::map<std::string, std::string> query;  ///< decoded query parameters

    /// The URL without user info (for messages and logs: never print secrets).
    std::string redacted() const;
};

/// Parses `scheme://[user[:password]@]host[:port][/path][?query]`; throws
/// ConfigError naming the URL (with the password hidden) when malformed.
Url parse_url(std::string_view url);

/// Decodes %XX escapes; throws ConfigError on a bad escape.
std::string percent_decode(std::string_view s);

/// Encodes everything but unreserved characters (and '/' when `keep_slash`).
std::string percent_encode(std::string_view s, bool keep_slash = false);

}  // namespace apcloud
