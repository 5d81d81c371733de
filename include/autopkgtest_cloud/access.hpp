/// @file access.hpp
/// Who may request tests (SPEC.md section 7): API keys stored only as
/// digests, the authorization rules of an access file (admins, teams,
/// per-package user lists, PPA owners), and what makes two requests
/// identical. Pure: the files are read and written by the callers.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "autopkgtest_cloud/request.hpp"

namespace apcloud {

/// One API key as stored: never the key itself, only its SHA-256.
struct ApiKeyRecord {
    std::string id;               ///< public part of the key, unique
    std::string user;             ///< whom the key authenticates
    std::string sha256;           ///< lowercase hex digest of the whole key
    std::int64_t created = 0;     ///< unix seconds
    std::int64_t expires = 0;     ///< unix seconds; 0: never
    bool revoked = false;
};

/// A key just made: the key to hand to its user once, and its record.
struct NewApiKey {
    std::string key;  ///< `apc_ID_SECRET`
    ApiKeyRecord record;
};

/// Makes a key for `user` (random: 8 bytes of id, 32 of secret, from the
/// system's CSPRNG); `expires` 0 for a key that does not expire. Throws
/// ValidationError for a user name that is not `[A-Za-z0-9][A-Za-z0-9._+-]*`
/// (at most 64).
NewApiKey make_api_key(const std::string& user, std::int64_t now, std::int64_t expires = 0);

/// The keys file: one record per line, `ID USER SHA256 CREATED EXPIRES
/// active|revoked`; `#` comments. Throws ParseError naming the line.
std::vector<ApiKeyRecord> parse_api_keys(std::string_view text);

/// The keys file's text for `records` (parse_api_keys reads it back).
std::string format_api_keys(const std::vector<ApiKeyRecord>& records);

/// The user `key` authenticates at `now`, or nullopt: unknown, revoked,
/// expired, or not of the form `apc_ID_SECRET` (digests compared in
/// constant time). When `claimed_user` is given (the reference's
/// `user:key`), it must be the key's user.
std::optional<std::string> authenticate_key(const std::vector<ApiKeyRecord>& records, std::string_view key,
                                            std::int64_t now,
                                            const std::optional<std::string>& claimed_user = std::nullopt);

/// The keys file at `path` (empty when it does not exist); throws ParseError, SystemError.
std::vector<ApiKeyRecord> read_api_keys(const std::string& path);

/// Adds a new key for `user` to the keys file at `path` (created or
/// replaced atomically, mode 0600, under an exclusive lock so concurrent
/// changes are not lost) and returns it: the only time the key is seen.
NewApiKey create_api_key(const std::string& path, const std::string& user, std::int64_t now,
                         std::int64_t expires = 0);

/// Revokes the key with id `id` (or every key of user `id`); returns how many
/// were revoked. Throws NotFound when none matches.
std::size_t revoke_api_keys(const std::string& path, const std::string& id);

/// The authorization rules of the access file (INI):
///
///     [admins]
///     users = alice bob
///     [team desktop]
///     users = carol dave
///     packages = gedit gtk+3.0     ; or * for every package
///     [package gedit]
///     users = erin
///     [ppa]
///     owners = true                 ; users may request tests with their own PPAs
struct AccessPolicy {
    std::set<std::string> admins;
    struct Team {
        std::set<std::string> users;
        std::set<std::string> packages;  ///< "*": all
    };
    std::map<std::string, Team> teams;
    std::map<std::string, std::set<std::string>> package_users;  ///< package -> users
    bool ppa_owners = true;
};

/// Parses the access file; throws ConfigError naming section, key and value.
AccessPolicy parse_access_policy(std::string_view ini_text);

/// An authorization decision, with the rule that decided it.
struct AccessDecision {
    bool allowed = false;
    std::string rule;    ///< the rule that allowed it ("admin", "team desktop", "package gedit", "ppa owner")
    std::string reason;  ///< for a refusal: what rule was missing, in words
};

/// May `user` request `request`? Yes when the user is an admin, or may
/// request the package or any trigger's source (a team's packages, a
/// package's users), or when every PPA of the request is the user's own
/// (`ppa_owners`).
AccessDecision authorize(const AccessPolicy& policy, const std::string& user, const TestRequest& request);

/// What makes two requests identical (SPEC.md 7): package, release, arch,
/// sorted triggers, PPAs (without credentials), env, all-proposed,
/// build-git, test-git and testname.
std::string request_identity(const TestRequest& request, const std::string& release, const std::string& arch);

}  // namespace apcloud
