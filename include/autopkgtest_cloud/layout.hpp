/// @file layout.hpp
/// Where results live in the store: containers, run ids, object names
/// (SPEC.md section 3).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace apcloud {

/// The archive-style prefix of a source package: the first four letters for
/// names starting with "lib", else the first letter ("libpng" -> "libp",
/// "glibc" -> "g", "lib" -> "lib").
std::string srcpkg_prefix(std::string_view package);

/// The result container of a run: `autopkgtest-RELEASE`, or with PPAs
/// `autopkgtest-RELEASE-LPUSER-PPANAME` of the last PPA; `private-` in front
/// when `private_run` is set or any PPA carries credentials.
std::string container_name(std::string_view release, const std::vector<std::string>& ppas = {},
                           bool private_run = false);

/// A run id: `%Y%m%d_%H%M%S` (UTC) `_` first 5 hex digits of sha1(body) `@`.
/// `unix_time` is the start of the run.
std::string make_run_id(std::int64_t unix_time, std::string_view body);

/// A parsed run id.
struct RunId {
    std::int64_t unix_time = 0;       ///< start of the run, seconds since the epoch (UTC)
    std::optional<std::string> hash;  ///< the 5 hex digits; absent in the old form
};

/// Parses a run id, new form or the old `YYYYMMDD_HHMMSS@`; throws ParseError.
RunId parse_run_id(std::string_view run_id);

/// The start of a run (the time in its id), or nullopt when `run_id` is not one.
std::optional<std::int64_t> run_id_time(std::string_view run_id) noexcept;

/// The directory of one run: `RELEASE/ARCH/PREFIX/PACKAGE/RUN_ID` (no trailing slash).
std::string result_dir(std::string_view release, std::string_view arch, std::string_view package,
                       std::string_view run_id);

/// The listing prefix of all runs of one package: `RELEASE/ARCH/PREFIX/PACKAGE/`.
std::string package_prefix(std::string_view release, std::string_view arch, std::string_view package);

/// SPEC.md 5 (stored at most once): the listing marker that skips the runs
/// of a package's prefix (from package_prefix) started before `since`; with
/// delimiter '@', a listing from it gives the runs started since then.
std::string runs_since_marker(std::string_view prefix, std::int64_t since);

/// SPEC.md 5: of `run_dirs` (names listed under one package's prefix with
/// delimiter '@', e.g. `R/A/P/PKG/20240321_130412_3fa9c@`), those that can be
/// runs of the request with body `body` started at or after `since`: the
/// same hash of the body in the id (so the same request, uuid included).
/// Names that are not run dirs are skipped. Whether one holds a result.tar
/// is the caller's to check.
std::vector<std::string> runs_of_request(const std::vector<std::string>& run_dirs, std::string_view body,
                                         std::int64_t since);

/// The store's container of the site's own control objects (private; not a
/// result container, so the index and gating clients never list it).
inline constexpr std::string_view control_container = "apcloud-control";

/// The names of cancel_marker objects start with this.
inline constexpr std::string_view cancel_marker_prefix = "cancelled/";

/// The control object that cancels the request with uuid `uuid`:
/// `cancelled/UUID`, holding who cancelled it. Workers look for it before
/// running a request and at each status tick while it runs. Throws
/// ValidationError for a uuid the request rules refuse.
std::string cancel_marker(std::string_view uuid);

/// One file a run stores, and how it is stored (SPEC.md section 3).
struct RunFile {
    std::string_view name;
    std::string_view content_type;
    std::string_view content_encoding;  ///< empty: none
};

/// The files a run stores, in upload order (result.tar last so that a client
/// that sees it finds the others). log.gz is served as gzip-encoded text so
/// browsers show it inline.
inline constexpr RunFile run_file_table[] = {
    {"log.gz", "text/plain; charset=UTF-8", "gzip"},
    {"artifacts.tar.gz", "application/x-gzip", ""},
    {"result.tar", "application/x-tar", ""},
};

/// Formats unix time as `%Y%m%d_%H%M%S` UTC.
std::string format_timestamp(std::int64_t unix_time);

}  // namespace apcloud
