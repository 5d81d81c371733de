/// @file webhooks.hpp
/// Pull and merge requests (SPEC.md section 10), the pure parts: the
/// signature and token checks of GitHub's and GitLab's webhooks, what an
/// event asks for, the test request it makes, the commit statuses sent back,
/// and the reference's configuration files.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "autopkgtest_cloud/request.hpp"

namespace apcloud {

/// Where a pull or merge request lives.
enum class Forge { github, gitlab };

/// "github" or "gitlab".
std::string_view forge_name(Forge forge) noexcept;

/// One project's webhook credentials; the webhook's `package` query
/// parameter picks the project.
struct ForgeProject {
    Forge forge = Forge::github;
    std::string name;          ///< the package
    std::string secret;        ///< GitHub: the HMAC secret; GitLab: the X-Gitlab-Token
    std::string status_user;   ///< GitHub: the user of HTTP Basic (the reference's); empty: a bearer token
    std::string status_token;  ///< GitHub: the token of that user; GitLab: the PRIVATE-TOKEN
};

/// Whether GitHub's signature headers sign `body` with `secret`:
/// `X-Hub-Signature-256: sha256=HEX` (checked when present) else the legacy
/// `X-Hub-Signature: sha1=HEX`; compared in constant time. False when both
/// are missing or malformed, or the secret is empty.
bool github_signature_valid(std::string_view body, std::string_view secret,
                            const std::optional<std::string>& sha256_header,
                            const std::optional<std::string>& sha1_header);

/// `X-Hub-Signature-256`'s value for `body` signed with `secret` (what
/// GitHub sends, and retry-github-test).
std::string github_signature(std::string_view body, std::string_view secret);

/// Whether GitLab's `X-Gitlab-Token` header is the project's secret
/// (constant time; false for an empty secret or a missing header).
bool gitlab_token_valid(const std::optional<std::string>& header, std::string_view secret);

/// What a webhook event asks of us.
enum class HookAction {
    ping,        ///< GitHub's ping: answered, nothing queued
    test,        ///< a pull/merge request opened, reopened or with new commits: queue its tests
    close,       ///< closed (or merged): cancel its queued tests
    irrelevant,  ///< anything else: 200 "not relevant"
};

/// The parts of a pull or merge request event that are used.
struct PullRequestEvent {
    Forge forge = Forge::github;
    HookAction action = HookAction::irrelevant;
    std::string kind;          ///< the event and action as sent, e.g. "pull_request opened"
    std::uint64_t number = 0;  ///< the PR number or the MR iid
    std::string head_sha;      ///< the commit tested and given statuses
    std::string clone_url;     ///< where build-git clones from
    std::string ref;           ///< refs/pull/N/head or refs/merge-requests/IID/head
    std::string statuses_url;  ///< where statuses are POSTed (GitHub: the payload's; GitLab: built)
    std::string sender;        ///< who acted (a login), for the requester; may be empty
    /// When the pull or merge request last changed (unix time; `updated_at`),
    /// to tell a redelivered older event from a newer one; nullopt when the
    /// payload has none or in a form not read here.
    std::optional<std::int64_t> updated_at;
};

/// A forge's `updated_at`: `2011-01-26T19:01:12Z` (GitHub, GitLab; a
/// fraction allowed) or `2013-12-03 17:23:34 UTC` (GitLab's older form);
/// nullopt for anything else.
std::optional<std::int64_t> parse_forge_time(std::string_view text);

/// Parses a GitHub event: `event` is the X-GitHub-Event header. `ping` and
/// `pull_request` (opened, synchronize, reopened: test; closed: close) are
/// used; other events and actions are irrelevant. Throws ParseError naming
/// the field when a used one is missing or mistyped.
PullRequestEvent parse_github_event(std::string_view event, std::string_view body);

/// Parses a GitLab merge request hook (`object_kind` merge_request; actions
/// open, reopen and update with new commits (`oldrev`): test; close, merge:
/// close). `api_url` is the GitLab API root (https://gitlab.example/api/v4)
/// the statuses URL is built on: API_URL/projects/ID/statuses/SHA. Throws
/// ParseError naming the field.
PullRequestEvent parse_gitlab_event(std::string_view body, std::string_view api_url);

/// The env a webhook's request gets (SPEC.md 10): UPSTREAM_PULL_REQUEST=N
/// and GITHUB_STATUSES_URL for GitHub, UPSTREAM_MERGE_REQUEST=IID for GitLab.
std::vector<std::string> webhook_env(const PullRequestEvent& event);

/// The PR's number as recorded in a request's env (UPSTREAM_PULL_REQUEST or
/// UPSTREAM_MERGE_REQUEST), or nullopt.
std::optional<std::uint64_t> pull_request_of(const TestRequest& request);

/// `clone_url#ref`: build-git of a webhook's request unless the payload URL
/// names one.
std::string webhook_build_git(const PullRequestEvent& event);

/// A commit status's context (SPEC.md 10): `RELEASE/ARCH[ TESTNAME]`.
std::string status_context(std::string_view release, std::string_view arch,
                           const std::optional<std::string>& testname);

/// The final state of a result with autopkgtest exit code `exitcode`:
/// github_state (SPEC.md 10 and 4) in `forge`'s words (forge_state).
std::string final_state(Forge forge, int exitcode);

/// The words of a state for `forge`: GitHub's pending, success, failure,
/// error; GitLab's pending, success, failed, failed (GitLab has no error),
/// and canceled for a superseded request (GitHub: error).
std::string forge_state(Forge forge, std::string_view state, bool superseded = false);

/// The JSON body of a status POST: GitHub {"state", "context",
/// "description", "target_url"}; GitLab {"state", "name", "description",
/// "target_url"}. The description is cut to GitHub's 140 characters (at a
/// UTF-8 boundary); an empty target_url is left out.
std::string status_body(Forge forge, std::string_view state, std::string_view context,
                        std::string_view description, std::string_view target_url);

/// The reference's `github-secrets.json`: {package: secret}. Throws
/// ParseError naming the entry.
std::map<std::string, std::string> parse_github_secrets(std::string_view json_text);

/// The reference's `github-status-credentials.txt`: lines
/// `project:user:token` (blank lines and # comments skipped); the value is
/// {user, token}. Throws ParseError naming the line (never the token).
std::map<std::string, std::pair<std::string, std::string>> parse_status_credentials(std::string_view text);

/// The event retry-github-test replays for a pull request `pr_json` (the
/// object of GitHub's GET /repos/OWNER/REPO/pulls/N): {"action": "opened",
/// "number", "pull_request"}, as GitHub sends it. Throws ParseError when
/// the object has no number.
std::string github_retry_payload(std::string_view pr_json);

/// Our own projects file (INI, readable by the service only): sections
/// `[github NAME]` and `[gitlab NAME]` with `secret`, `status_user`
/// (GitHub) and `status_token`. `label` names the file in messages. Throws
/// ConfigError naming section and key (never a secret's value).
std::vector<ForgeProject> parse_forge_projects(std::string_view ini_text, const std::string& label);

}  // namespace apcloud
