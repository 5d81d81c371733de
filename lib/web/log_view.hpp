// An autopkgtest log split into its sections (setup, each test, summary) for the
// run page (private header; pure).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace apcloud::web {

/// One section of a log: consecutive lines, numbered from 1 over the whole log.
struct LogSection {
    std::string kind;   ///< "setup", "test", "summary"
    std::string name;   ///< the test's name for kind "test"
    std::size_t first_line = 1;
    std::vector<std::string> lines;
};

/// Splits a log at autopkgtest's markers: a test starts at its
/// `test NAME: preparing testbed` line (or `test NAME: [---` when that is
/// missing), the summary at `@@@@@@@@@@@@@@@@@@@@ summary`; what comes
/// before the first test is the setup. A log without markers is one setup
/// section. Lines are kept as they are (the page escapes them).
std::vector<LogSection> split_log(std::string_view log);

}  // namespace apcloud::web
