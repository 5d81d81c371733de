/// @file indexed_run.hpp
/// What the results index records of one stored run (SPEC.md section 6), and
/// how that is read off the store: container and object names taken apart,
/// result.tar's members turned into a row. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "autopkgtest_cloud/request.hpp"
#include "autopkgtest_cloud/result.hpp"

namespace apcloud {

/// A result container's name taken apart (SPEC.md section 3).
struct ContainerInfo {
    std::string name;         ///< as given
    std::string release;      ///< the release it holds results of
    std::string ppa;          ///< "LPUSER-PPANAME" of a PPA container, empty for a release container
    bool is_private = false;  ///< `private-` in front
    /// True for the release's own container (`autopkgtest-RELEASE`): the
    /// results gating uses and the published database holds.
    bool is_release() const noexcept { return ppa.empty() && !is_private; }
};

/// Parses `[private-]autopkgtest-RELEASE[-LPUSER-PPANAME]`; nullopt for any
/// other name (containers of other programs in the same account).
std::optional<ContainerInfo> parse_container_name(std::string_view name);

/// A run's place in a container.
struct RunLocation {
    std::string release, arch, package, run_id;
    /// `RELEASE/ARCH/PREFIX/PACKAGE/RUN_ID` (no trailing slash).
    std::string dir() const;
};

/// Parses a run directory `RELEASE/ARCH/PREFIX/PACKAGE/RUN_ID` (a trailing
/// slash or file name after it is not part of it); nullopt when it is not one
/// (wrong prefix, invalid names, not a run id).
std::optional<RunLocation> parse_run_dir(std::string_view dir);

/// One outcome line of autopkgtest's `summary`: `name RESULT [detail]`.
struct TestSummaryLine {
    std::string name;    ///< the test's name
    std::string result;  ///< "PASS", "FAIL", "SKIP", "FLAKY", ...
    std::string detail;  ///< e.g. "non-zero exit status 1"
};

/// Parses autopkgtest's summary file; lines that do not look like
/// `name RESULT ...` are skipped.
std::vector<TestSummaryLine> parse_summary(std::string_view summary);

/// One run as the index records it.
struct IndexedRun {
    std::string container;
    std::string release, arch, package, run_id;
    bool is_private = false;
    int exitcode = 0;
    std::optional<std::string> version;     ///< tested version ("unknown" when repaired)
    std::vector<std::string> triggers;      ///< the LAST ADT_TEST_TRIGGERS of testinfo.json
    bool has_triggers = false;              ///< the run carried ADT_TEST_TRIGGERS at all
    std::optional<std::uint64_t> duration;  ///< seconds
    std::optional<std::string> requester;
    std::vector<std::string> env;  ///< the request's env entries (no ADT_TEST_TRIGGERS)
    bool all_proposed = false;
    std::optional<std::string> uuid;  ///< the request's uuid
    std::vector<std::string> ppas;    ///< without credentials
    std::optional<std::string> testname, build_git, test_git;
    std::vector<std::string> readable_by;  ///< who else may read a private result
    std::optional<std::string> swiftuser;  ///< the private container's owner
    std::optional<std::string> summary;    ///< autopkgtest's summary file

    /// The `triggers` column: space-separated.
    std::string triggers_column() const;
    /// The `env` column: env entries and flags (`all-proposed=1`) comma-separated, as the reference writes
    /// them.
    std::string env_column() const;
    /// The request that runs this test again: package, triggers, PPAs (as
    /// indexed: without credentials), env, flags, sources, testname, readers.
    TestRequest request() const;

    /// The start of the run (the time in its run id).
    std::int64_t started() const noexcept;
};

/// The index row of a stored run from its parsed result.tar. The request
/// (member `request`) gives uuid, flags, PPAs and readers; without it (older
/// workers) the env comes from testinfo.json's custom_environment.
IndexedRun index_run(const ContainerInfo& container, const RunLocation& where, const Result& result);

}  // namespace apcloud
