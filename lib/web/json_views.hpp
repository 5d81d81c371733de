// JSON views of the index's records for the API (private header).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "autopkgtest_cloud/results_index.hpp"
#include "web/queues.hpp"
#include "web/running.hpp"

namespace apcloud::web {

/// The URLs of one run, relative to the service's root.
struct RunUrls {
    std::string page, history, log, artifacts, result;
};

/// The history page of a package on release/arch, with `?container=` for a
/// container other than the release's own (empty: the release's).
std::string history_url(const std::string& package, const std::string& release, const std::string& arch,
                        const std::string& container = "");

/// A time as the pages and the reference show it: `YYYY-MM-DD HH:MM:SS UTC`.
std::string human_time(std::int64_t unix_time);

/// Where a run's page and files are (`/packages/...`, `/results/...`), percent-encoded.
RunUrls run_urls(const IndexedRun& run);

/// True when a retry link is shown for the run (SPEC.md 7: not for pass, neutral, denylisted).
bool retry_allowed(const IndexedRun& run);

/// The retry request URL of a run (`/request.cgi?...`), percent-encoded; for
/// a run whose env request.cgi refuses (a pull request's, SPEC.md 10) the
/// retry by run id, `/api/v1/retry/RUN_ID`, which re-queues it as its webhook did.
std::string retry_url(const IndexedRun& run);

/// A run in API v1: every field, its outcome, its start (ISO) and URLs.
nlohmann::json run_json(const IndexedRecord& record, bool with_summary = false);

/// Appends run_json(record, with_summary).dump() to `out`, byte for byte,
/// without building the DOM (for long lists of runs).
void append_run_json(std::string& out, const IndexedRecord& record, bool with_summary = false);

/// A page of a package's history in API v1 (`/api/v1/packages/PKG/RELEASE/ARCH`),
/// as the text of the response (newline-terminated, as json_response ends its bodies).
std::string history_json(const std::string& package, const std::string& release, const std::string& arch,
                         const std::string& container, const HistoryPage& page);

/// Appends `value` as a JSON string exactly as nlohmann's dump() writes it
/// (UTF-8 kept, control characters escaped, invalid UTF-8 replaced by U+FFFD).
void append_json_text(std::string& out, const std::string& value);

/// A run in the shape of the reference's /api/experimental/recent.json.
nlohmann::json recent_reference_json(const IndexedRecord& record);

/// A running test in API v1.
nlohmann::json running_json(const RunningTest& test);

/// A queued request in API v1 (with its estimated start when known).
nlohmann::json queued_request_json(const QueuedRequest& request, std::optional<std::int64_t> estimated_start);

/// Statistics of one release and architecture in API v1.
nlohmann::json statistics_json(const ReleaseArchStats& stats);

/// Seconds as "1h 02m 03s" (the reference's human durations).
std::string human_duration(std::uint64_t seconds);

}  // namespace apcloud::web
