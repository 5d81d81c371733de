/// @file retries.hpp
/// The network side of retry-autopkgtest-regressions (SPEC.md section 8):
/// excuses.yaml and logs fetched over HTTP, and retries sent to the web
/// service's request API (SPEC.md section 7) with an API key.
#pragma once

#include <cstddef>
#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "autopkgtest_cloud/credentials.hpp"
#include "autopkgtest_cloud/excuses.hpp"
#include "autopkgtest_cloud/sinks.hpp"

namespace apcloud {

/// Largest log.gz downloaded for `--log-regex` (64 MiB).
inline constexpr std::size_t max_log_gz_bytes = std::size_t(64) << 20;
/// Most text of one log searched (256 MiB); the rest is not.
inline constexpr std::size_t max_log_bytes = std::size_t(256) << 20;

/// The bytes at `source`: an `http(s)://` URL (GET; transport errors and
/// 5xx answers are tried twice more), a `file://` URL or a path. Throws
/// NotFound for a missing file or an HTTP 404, ParseError when there are
/// more than `max_bytes`, HttpError for other HTTP failures and
/// SystemError for a file that cannot be read.
std::string fetch_document(const std::string& source, std::size_t max_bytes);

/// The requests whose result's log matches `regex`, in their order: each
/// log fetched through the URL britney wrote (fetch_document, at most
/// max_log_gz_bytes), decompressed when it is gzip (at most max_log_bytes
/// searched) and searched with LogRegex::matches. A request whose result has
/// no stored log (`log_url` not ending in `/log.gz`) never matches; a log
/// that cannot be fetched or decompressed is logged as a warning and does
/// not match.
std::vector<RetryRequest> filter_by_log(const std::vector<RetryRequest>& requests, const LogRegex& regex);

/// A key or secret kept in a file: its first line, surrounding blanks
/// removed. ValidationError naming `field` and the path when that line is
/// empty; NotFound/SystemError for a file that cannot be read.
std::string read_secret(const std::string& path, const std::string& field);

/// The key for the request API: the first line of `key_file` when one is
/// given, else of `$APCLOUD_API_KEY_FILE` (surrounding blanks removed), else
/// `$APCLOUD_API_KEY` (the variable scripts/lib/request_example.py reads);
/// `environment` is tool_environment()'s, so client.conf counts; never a command line
/// argument. Throws ValidationError("--api-key-file") when there is none,
/// NotFound/SystemError for a file that cannot be read.
std::string resolve_api_key(const std::string& key_file, const Environment& environment);

/// What the request API answered to one retry.
struct SubmitOutcome {
    /// queued: sent; duplicate: an identical request is already queued or
    /// running (409), nothing sent; failed: refused or not answered.
    enum class Status { queued, duplicate, failed };
    Status status = Status::failed;
    int http_status = 0;  ///< the answer's status; 0 without an answer
    std::string uuid;     ///< the queued request's, or the identical one's (when the API names it)
    std::string queue;    ///< the queue it went to (queued)
    std::string message;  ///< the API's message (duplicate, failed)
};

/// Sends each request to the request API of `web_url` (`POST
/// /api/v1/test`, one request per call, so one refusal does not stop the
/// others) with `Authorization: Bearer <api_key>`, calling `report` with
/// each outcome as it comes, and returns them in order. 409 is a duplicate;
/// 429 waits for Retry-After (at most 60 s, five times) and tries again;
/// transport errors and 5xx answers are tried twice more after 1 and 2 s.
/// Throws HttpError at once for 401: the key is refused, and would be for
/// every other request too.
/// Sends each request to the request API of `web_url` as submit_retries
/// does (one `POST /api/v1/test` each, the same retries and outcomes), with
/// every field the API takes (package, release, arch, triggers, ppas, env,
/// all-proposed, build-git, test-git, testname, readable-by); the service
/// stamps requester (the key's user), uuid and submit time. A `huge` item is
/// a ValidationError("--bulk"): the API has no huge queue.
std::vector<SubmitOutcome> submit_requests(
    const std::string& web_url, const std::string& api_key, const std::vector<SinkItem>& items,
    const std::function<void(const SinkItem&, const SubmitOutcome&)>& report = {});

/// What a sending tool prints of submit_requests' outcomes: "queued PKG on
/// RELEASE/ARCH: UUID in QUEUE" or "already queued or running ..." on `out`,
/// "<program>: not queued ...: <why>" on `err`. Returns exit_ok unless one
/// was not queued (exit_error).
int report_submitted(std::string_view program, const std::vector<SubmitOutcome>& outcomes,
                     const std::vector<SinkItem>& items, std::ostream& out, std::ostream& err);

std::vector<SubmitOutcome> submit_retries(
    const std::string& web_url, const std::string& api_key, const std::vector<RetryRequest>& requests,
    const std::function<void(const RetryRequest&, const SubmitOutcome&)>& report = {});

/// What the web service answered retry_github_test.
struct ReplayAnswer {
    int status = 0;
    std::string body;
};

/// retry-github-test (SPEC.md 10): fetches the pull request at
/// `pr_api_url` (GitHub's /repos/OWNER/REPO/pulls/N), signs the event that
/// opens it with `secret` (X-Hub-Signature-256 and the legacy sha1) and
/// POSTs it to `request_url` (the webhook's payload URL) as GitHub would.
/// Throws HttpError when either cannot be reached, NotFound when the PR is
/// not there.
ReplayAnswer retry_github_test(const std::string& pr_api_url, const std::string& request_url,
                               const std::string& secret);

}  // namespace apcloud
