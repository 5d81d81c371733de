/// @file collect.hpp
/// Collecting results for gating: from a store (listing runs, reading
/// result.tar) and from a downloaded results database (SPEC.md section 6).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "autopkgtest_cloud/britney_state.hpp"
#include "autopkgtest_cloud/store.hpp"

namespace apcloud {
/// What collect_results found.
struct CollectedResults {
    std::vector<GatingResult> results;  ///< in run-id order
    std::size_t missing = 0;            ///< runs without result.tar (upload in progress, or abandoned)
    std::size_t corrupt = 0;            ///< runs whose result.tar could not be parsed
    std::size_t held_back = 0;          ///< complete runs not returned because an earlier one is in progress
};

/// How long after its newest object was written a run without result.tar
/// counts as an upload in progress (the worker uploads result.tar last)
/// rather than one abandoned by a worker that died (its request runs again
/// under a new run id).
inline constexpr std::int64_t upload_grace_seconds = 600;

/// Lists the runs of `package` in `container` (prefix package_prefix,
/// delimiter '@', runs strictly after `after_run_id` when given), fetches
/// their result.tar files and parses them. Runs with a corrupt result.tar or
/// one naming another package, and runs without one whose objects were all
/// written more than upload_grace_seconds before `now`, are skipped and
/// counted. A run without result.tar with a more recent object is still
/// being stored (however long ago the test started): results stop before it
/// (later ones are counted as held back), so a caller whose next marker is its
/// newest result never skips a run whose result has not arrived yet. `now`
/// defaults to the current time.
CollectedResults collect_results(Store& store, const std::string& container, const std::string& release,
                                 const std::string& arch, const std::string& package,
                                 const std::optional<std::string>& after_run_id = std::nullopt,
                                 std::optional<std::int64_t> now = std::nullopt);

/// Verifies a downloaded results database (SPEC.md section 6) against its
/// checksum file: `sha256_path` holds the SHA-256 of the database as 64 hex
/// digits, optionally followed by whitespace and a file name (`sha256sum`
/// output). Throws ParseError naming the file when the checksum file is
/// malformed, and IntegrityError naming both digests when they differ.
void verify_results_db(const std::string& db_path, const std::string& sha256_path);

/// The results of `package` on release/arch in a results database
/// (autopkgtest-web's `autopkgtest.db`, SPEC.md section 6), in run-id order,
/// only those with `run_id > after_run_id` when given: the query britney
/// runs. The triggers column is split on spaces; a NULL or blank one gives a
/// result without triggers (nullopt). Opens the file read-only and never modifies it. When
/// `sha256_path` is given the file is verified first (verify_results_db).
/// Throws NotFound when the file does not exist, ParseError naming the file
/// when it is not such a database.
CollectedResults collect_db_results(const std::string& db_path, const std::string& release,
                                    const std::string& arch, const std::string& package,
                                    const std::optional<std::string>& after_run_id = std::nullopt,
                                    const std::optional<std::string>& sha256_path = std::nullopt);

/// Downloads a results database and its checksum (`url` and `url + ".sha256"`,
/// http(s):// or file://) to `path` and `path.sha256`: both are fetched into
/// temporary files, verified, fsynced and renamed into place, so `path` is
/// always a whole, verified database. From the web service one request is
/// enough: its answer carries the checksum (X-Checksum-Sha256), and when
/// `path` already is the current database (If-None-Match with its checksum)
/// the answer is a 304 and nothing is downloaded. HTTP timeouts, connection
/// errors and 5xx answers are retried `retries` times with exponential
/// backoff from `backoff` seconds. Throws IntegrityError when the checksum
/// does not match (the old `path` stays), NotFound for a 404, HttpError for
/// other failures.
void download_results_db(const std::string& url, const std::string& path, int retries = 4,
                         double backoff = 1.0);

}  // namespace apcloud
