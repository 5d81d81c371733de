/// @file result.hpp
/// Result files of a run: packing autopkgtest's output directory into
/// result.tar / log.gz / artifacts.tar.gz and parsing result.tar back
/// (SPEC.md section 3).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace apcloud {

/// The three objects stored for a run.
struct ResultFiles {
    std::string result_tar;        ///< `result.tar`: what clients need to decide
    std::string log_gz;            ///< `log.gz`: the log, gzip -9
    std::string artifacts_tar_gz;  ///< `artifacts.tar.gz`: every other output file
};

/// What goes into result.tar besides autopkgtest's own files.
struct PackOptions {
    int exitcode = 0;                      ///< autopkgtest's exit code
    std::uint64_t duration = 0;            ///< seconds the run took
    std::optional<std::string> requester;  ///< who asked, if known
    /// Tested source package; used for `testpkg-version` "PACKAGE unknown"
    /// when autopkgtest wrote none and reports_unknown_version(exitcode).
    std::optional<std::string> package;
    /// The request that was run, as a queue message without credentials
    /// (TestRequest::to_stored_message), stored as member `request` so the
    /// index can be rebuilt from the store with the request's uuid and flags.
    std::optional<std::string> request;
    /// Modification time of the archive members; default: the newest mtime
    /// found in the output directory.
    std::optional<std::int64_t> mtime;
    /// At most this many bytes of `log` go into log.gz (0: all): a longer log
    /// keeps its first and last halves (cut at line ends) around one line
    /// saying how much was left out. autopkgtest's own output is unbounded;
    /// a runaway test's gigabytes would otherwise fill the store.
    std::uint64_t log_limit = 0;
};

/// Packs an autopkgtest output directory. Files of result.tar come in the
/// order exitcode, duration, testpkg-version, testbed-packages,
/// testinfo.json, requester, summary, request (those that exist); `log` becomes
/// log.gz; everything else except `binaries/` goes to artifacts.tar.gz.
/// Symlinks and special files are not followed. Throws Error on I/O errors.
ResultFiles pack_results(const std::string& output_dir, const PackOptions& options);

/// Like pack_results, but writes `result.tar`, `log.gz` and
/// `artifacts.tar.gz` into the existing directory `dest_dir`, streaming, so
/// large artifacts never sit in memory.
void pack_results_to(const std::string& output_dir, const PackOptions& options, const std::string& dest_dir);

/// Compresses data as gzip -9 (the format of log.gz).
std::string gzip_compress(std::string_view data);

/// Decompresses gzip data (log.gz), keeping at most `max_bytes` of the
/// result; `truncated` (when given) tells whether there was more. Throws
/// ArchiveError for data that is not gzip or is corrupt.
std::string gzip_decompress(std::string_view data, std::size_t max_bytes, bool* truncated = nullptr);

/// Size limits for reading archives from the store.
struct ArchiveLimits {
    std::size_t max_archive_bytes = 32u << 20;  ///< whole archive
    std::size_t max_member_bytes = 16u << 20;   ///< one member
    std::size_t max_members = 256;              ///< member count
};

/// What a result.tar says about a run.
struct Result {
    int exitcode = 0;                             ///< autopkgtest's exit code (mandatory member)
    std::optional<std::string> package;           ///< tested source, from testpkg-version
    std::optional<std::string> version;           ///< tested version, from testpkg-version
    std::optional<std::uint64_t> duration;        ///< seconds
    std::optional<std::string> testinfo_json;     ///< testinfo.json as stored
    std::vector<std::string> custom_environment;  ///< testinfo.json's custom_environment
    /// Triggers from `ADT_TEST_TRIGGERS=` in custom_environment; absent when
    /// the run carries no such entry (gating code ignores such results).
    std::optional<std::vector<std::string>> triggers;
    std::optional<std::string> requester;         ///< who asked, trailing newline removed
    std::optional<std::string> summary;           ///< autopkgtest's per-test summary
    std::optional<std::string> testbed_packages;  ///< the testbed's package list
    std::optional<std::string> request;           ///< the request run, as stored (PackOptions::request)
};

/// Splits a trigger list (`ADT_TEST_TRIGGERS`' value, or the results
/// database's triggers column) on spaces and tabs: `"a/1 b/2"` -> {"a/1", "b/2"}.
std::vector<std::string> split_triggers(std::string_view text);

/// How much of a result.tar parse_result_tar keeps.
enum class ResultDetail {
    full,     ///< every member Result has a field for
    summary,  ///< all but `testbed_packages` (often most of the bytes), which is skipped unread
};

/// Parses a result.tar. Throws ArchiveError for a corrupt, truncated or
/// oversized archive, ParseError for a missing or malformed `exitcode`,
/// `duration`, `testpkg-version` or `testinfo.json`.
Result parse_result_tar(std::string_view data, const ArchiveLimits& limits = {},
                        ResultDetail detail = ResultDetail::full);

/// Chooses archive members by name.
using MemberFilter = std::function<bool(std::string_view name)>;

/// Reads the regular members of a tar (optionally gzip-compressed) archive
/// into (name, content) pairs, enforcing `limits` on the members read; only
/// the members `wanted` accepts when given (the others are skipped unread).
/// Throws ArchiveError.
std::vector<std::pair<std::string, std::string>> read_archive(std::string_view data,
                                                              const ArchiveLimits& limits = {},
                                                              const MemberFilter& wanted = nullptr);

}  // namespace apcloud
