/// @file exit_codes.hpp
/// autopkgtest exit codes and what they mean to each audience (SPEC.md section 4).
#pragma once

#include <string_view>

namespace apcloud {

/// What a run's exit code means, as the results browser names it.
enum class Outcome { pass, fail, neutral, tmpfail, error, denylisted };

/// autopkgtest's exit codes (bit flags) and our own for never-run packages.
inline constexpr int exit_pass = 0;              ///< all tests passed
inline constexpr int exit_skipped = 2;           ///< some tests skipped (or flaky ones failed)
inline constexpr int exit_failed = 4;            ///< some tests failed
inline constexpr int exit_no_tests = 8;          ///< no tests ran
inline constexpr int exit_erroneous = 12;        ///< erroneous package
inline constexpr int exit_testbed_failure = 16;  ///< testbed failure (a temporary failure)
inline constexpr int exit_unexpected = 20;       ///< other unexpected failure (also: the run timed out)
inline constexpr int exit_denylisted = 99;       ///< package on the never-run list (no test was run)

/// Maps an exit code to its outcome. Unknown combinations of autopkgtest's
/// bit flags map defensively: anything with the "failed" bit is a failure,
/// anything else not in the table is an error (never a pass).
Outcome outcome(int exitcode) noexcept;

/// The browse name of an outcome: "pass", "fail", "neutral", "tmpfail",
/// "error", "denylisted".
std::string_view outcome_name(Outcome o) noexcept;

/// britney's status for an exit code, exactly as britney maps it: "PASS" for
/// 0 and 2, "NEUTRAL" for 8, "FAIL" for everything else.
std::string_view britney_status(int exitcode) noexcept;

/// True for the exit codes whose result, when autopkgtest wrote no
/// testpkg-version, gets `"<srcpkg> unknown"` (4, 12 and 20: exactly those
/// britney repairs itself, SPEC.md section 3). A result of any other code
/// without a version is ignored by britney as damaged and its test stays
/// pending, which is right for a tmpfail (16).
bool reports_unknown_version(int exitcode) noexcept;

/// GitHub commit status state for an exit code: "success", "failure" or "error".
std::string_view github_state(int exitcode) noexcept;

}  // namespace apcloud
