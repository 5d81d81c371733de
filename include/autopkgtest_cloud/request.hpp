/// @file request.hpp
/// Test requests: the queue message codec and its validation (SPEC.md section 1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace apcloud {

/// One test request: a source package and its parameters. Field names follow
/// the JSON keys with `_` for `-`.
struct TestRequest {
    std::string package;                ///< source package to test
    std::vector<std::string> triggers;  ///< `src/version` of the uploads that caused the run
    std::vector<std::string>
        ppas;  ///< `[user:token@]lpuser/ppaname[:FINGERPRINT]`; the last names the container
    std::vector<std::string> env;            ///< `NAME=value`, passed as `--env=NAME=value`
    std::optional<std::string> test_git;     ///< `URL` or `URL branch`: run tests from that checkout
    std::optional<std::string> build_git;    ///< `URL` or `URL#ref`: build from that branch, then test
    std::optional<std::string> test_bzr;     ///< always refused by validation (not supported)
    bool all_proposed = false;               ///< use all of -proposed, not only the triggers
    std::optional<std::string> testname;     ///< run only this test
    std::optional<std::string> submit_time;  ///< `%Y-%m-%d %H:%M:%S` UTC, optional `%z` suffix
    std::optional<std::string> requester;    ///< who asked (metadata)
    std::optional<std::string> uuid;         ///< request id (metadata)
    std::vector<std::string> readable_by;    ///< users who may read a private result
    std::optional<std::string> swiftuser;    ///< owner of a private result container

    /// Encodes the request as a queue message: `package`, then `\n` and the
    /// parameters as JSON with sorted keys (byte-identical to Python's
    /// `json.dumps(params, sort_keys=True)`); just `package` when there are
    /// no parameters. No trailing newline.
    std::string to_message() const;

    /// to_message() with the PPAs' credentials (`user:token@`) removed: what
    /// may be stored beside a result and shown to its readers.
    std::string to_stored_message() const;

    /// True when any PPA carries credentials, i.e. the run is private.
    bool is_private() const;

    /// True when the request is a migration-reference run (baseline).
    bool is_reference() const;

    bool operator==(const TestRequest& other) const;
    bool operator!=(const TestRequest& other) const { return !(*this == other); }
};

/// Knobs of validation that depend on who is asking.
struct ValidationOptions {
    /// Accept `file://` URLs and plain paths in test-git / build-git (only for
    /// workers whose configuration allows local sources).
    bool allow_local_sources = false;
    /// Largest accepted message body in bytes.
    std::size_t max_body_bytes = 128 * 1024;
    /// Accept the env names the webhook path sets itself
    /// (`UPSTREAM_PULL_REQUEST`, `GITHUB_STATUSES_URL`): for requests made by
    /// the GitHub/GitLab integration and for workers reading the upstream
    /// queues. `ADT_TEST_TRIGGERS` and `AUTOPKGTEST_*` are refused whatever
    /// this says.
    bool allow_webhook_env = false;
};

/// The reason `name` may not be set in a request's env, or nullopt when it may:
/// `ADT_TEST_TRIGGERS` and every `AUTOPKGTEST_*` always (a requester could make
/// a result count for a trigger it never installed), `UPSTREAM_PULL_REQUEST` and
/// `GITHUB_STATUSES_URL` unless `options.allow_webhook_env` (SPEC.md section 1).
std::optional<std::string_view> reserved_env_reason(std::string_view name,
                                                    const ValidationOptions& options = {});

/// Parses a queue message (`src`, `src\n{json}` or `src {json}`), then
/// validates it. Throws ParseError for malformed input (not UTF-8, bad JSON,
/// wrong JSON types) and ValidationError naming the field and value for a
/// well-formed message that breaks a rule. Unknown keys are refused.
TestRequest parse_request(std::string_view body, const ValidationOptions& options = {});

/// A `submit-time` value for `unix_time`: `%Y-%m-%d %H:%M:%S` in UTC.
std::string format_submit_time(std::int64_t unix_time);

/// Checks every rule of SPEC.md section 1; throws ValidationError.
void validate(const TestRequest& request, const ValidationOptions& options = {});

/// A PPA reference split into its parts.
struct PpaSpec {
    std::string user;         ///< credentials user (empty when public)
    std::string token;        ///< credentials token (empty when public)
    std::string lpuser;       ///< Launchpad owner
    std::string name;         ///< PPA name
    std::string fingerprint;  ///< signing key fingerprint (may be empty)
    /// True when the PPA carries credentials (a private PPA).
    bool is_private() const { return !token.empty(); }
};

/// Parses and validates `[user:token@]lpuser/ppaname[:FINGERPRINT]`.
PpaSpec parse_ppa(std::string_view spec);

/// A trigger split into source and version.
struct Trigger {
    std::string source;
    std::string version;
};

/// Parses and validates `src/version`.
Trigger parse_trigger(std::string_view trigger);

/// The rule source package names follow, as error messages state it.
inline constexpr std::string_view package_name_rule =
    "must match ^[a-z0-9][a-z0-9.+-]+$ (at most 120 characters)";

/// Throws ValidationError("package", name, package_name_rule) for an invalid name.
void check_package_name(std::string_view name);

/// True when `name` is an account name as requester, swiftuser and
/// readable-by hold them (Launchpad / GitHub style: letters, digits, ._+@:-).
bool is_account_name(std::string_view name) noexcept;

/// True when `name` is a valid source package name (package_name_rule).
bool is_valid_package_name(std::string_view name) noexcept;

/// True when `version` is a valid version (`^[A-Za-z0-9.+:~-]+$`).
bool is_valid_version(std::string_view version) noexcept;

/// True when `data` is well-formed UTF-8 (no overlongs, no surrogates).
bool is_valid_utf8(std::string_view data) noexcept;

/// The trigger of a migration-reference (baseline) run.
inline constexpr std::string_view migration_reference_trigger = "migration-reference/0";

}  // namespace apcloud
