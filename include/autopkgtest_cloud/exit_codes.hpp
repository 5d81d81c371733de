/// @file exit_codes.hpp
/// autopkgtest exit codes and what they mean to each audience (SPEC.md section 4).
#pragma once

#include <string_view>

namespace apcloud {

/// What a run's exit code means, as the results browser names it.
enum class Outcome { pass, fail, neutral, tmpfail, error, denylisted };

/// Exit code for a package on the never-run list (no test was run).
inline constexpr int exit_denylisted = 99;
/// autopkgtest's exit code for a testbed failure (a temporary failure).
inline constexpr int exit_testbed_failure = 16;

/// Maps an exit code to its outcome. Unknown combinations of autopkgtest's
/// bit flags map defensively: anything with the "failed" bit is a failure,
/// anything else not in the table is an error (never a pass).
Outcome outcome(int exitcode) noexcept;

/// The browse name of an outcome: "pass", "fail", "neutral", "tmpfail",
/// "error", "denylisted".
std::string_view outcome_name(Outcome o) noexcept;

/// britney's status for an exit code: "PASS", "NEUTRAL" or "FAIL".
std::string_view britney_status(int exitcode) noexcept;

/// GitHub commit status state for an exit code: "success", "failure" or "error".
std::string_view github_state(int exitcode) noexcept;

}  // namespace apcloud
