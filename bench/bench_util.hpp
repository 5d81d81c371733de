// Helpers shared by the benchmark programs.
#pragma once

#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "subprocess.hpp"

namespace bench {

/// Runs argv (never through a shell) and returns its standard output, or
/// nullopt when it could not run or exited non-zero.
inline std::optional<std::string> capture_output(const std::vector<std::string>& argv) {
    try {
        auto r = test_process::run(argv);
        if (r.status != 0) return std::nullopt;
        return std::move(r.out);
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

}  // namespace bench
