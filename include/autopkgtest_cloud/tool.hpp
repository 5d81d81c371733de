/// @file tool.hpp
/// What every command line program shares: exit statuses, the mapping of
/// errors to them, and log options. A tool's main parses its arguments, calls
/// the library inside run_main, and does nothing else.
#pragma once

#include <functional>
#include <string_view>

namespace apcloud {

/// Exit statuses of every program (README.md): sysexits' 75 and 78 for the
/// worker's restart and a bad configuration.
enum ToolExit : int {
    exit_ok = 0,          ///< done
    exit_error = 1,       ///< any other failure
    exit_usage = 2,       ///< bad command line
    exit_bad_input = 3,   ///< invalid input: the message names the field and value
    exit_not_found = 4,   ///< what was asked for does not exist
    exit_restart = 75,    ///< stopped to be restarted with new configuration (SIGHUP)
    exit_bad_config = 78  ///< the configuration is invalid
};

/// Runs a program's body and maps what it throws to an exit status, printing
/// "<program>: <message>" on standard error: ValidationError and ParseError
/// exit_bad_input, NotFound exit_not_found, ConfigError exit_bad_config, any
/// other exception exit_error. Returns the body's own status otherwise.
int run_main(std::string_view program, const std::function<int()>& body) noexcept;

}  // namespace apcloud
