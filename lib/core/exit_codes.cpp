// autopkgtest exit codes mapped to outcomes (SPEC.md section 4).
#include "autopkgtest_cloud/exit_codes.hpp"

namespace apcloud {

Outcome outcome(int exitcode) noexcept {
    switch (exitcode) {
        case exit_pass:
        case exit_skipped:
            return Outcome::pass;
        case exit_no_tests:
        case 10:  // no tests ran, some skipped: still nothing ran
            return Outcome::neutral;
        case 4:
        case 6:
        case 12:
        case 14:
            return Outcome::fail;
        case exit_testbed_failure:
            return Outcome::tmpfail;
        case exit_denylisted:
            return Outcome::denylisted;
        default:
            break;
    }
    // Unknown combinations: bit 16 (testbed) or anything out of range is an
    // error; otherwise the "failed" bit (4) makes it a failure. Never a pass.
    if (exitcode < 0 || exitcode > 255 || (exitcode & 16) != 0) return Outcome::error;
    if ((exitcode & 4) != 0) return Outcome::fail;
    return Outcome::error;
}

std::string_view outcome_name(Outcome o) noexcept {
    switch (o) {
        case Outcome::pass:
            return "pass";
        case Outcome::fail:
            return "fail";
        case Outcome::neutral:
            return "neutral";
        case Outcome::tmpfail:
            return "tmpfail";
        case Outcome::error:
            return "error";
        case Outcome::denylisted:
            return "denylisted";
    }
    return "error";
}

std::string_view britney_status(int exitcode) noexcept {
    // britney: "allow some skipped tests, but nothing else" (10, no tests ran
    // and some skipped, is a FAIL to britney although browse shows neutral).
    switch (exitcode) {
        case exit_pass:
        case exit_skipped:
            return "PASS";
        case exit_no_tests:
            return "NEUTRAL";
        default:
            return "FAIL";
    }
}

bool reports_unknown_version(int exitcode) noexcept {
    return exitcode == exit_failed || exitcode == exit_erroneous || exitcode == exit_unexpected;
}

std::string_view github_state(int exitcode) noexcept {
    switch (exitcode) {
        case 0:
        case 2:
            return "success";
        case 4:
        case 6:
        case 12:
            return "failure";
        default:
            return "error";
    }
}

}  // namespace apcloud
