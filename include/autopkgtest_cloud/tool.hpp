/// @file tool.hpp
/// What every command line program shares: exit statuses, the mapping of
/// errors to them, and log options. A tool's main parses its arguments, calls
/// the library inside run_main, and does nothing else.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "autopkgtest_cloud/credentials.hpp"

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

/// The settings every command line tool reads (README.md, "Configuring the
/// tools"): this process's environment over the client configuration file
/// at client_config_path(), when there is one. Throws ConfigError for a file
/// with a syntax error, an unknown key or a secret others may read, and
/// SystemError for an APCLOUD_CONFIG that names a file that cannot be read.
Environment tool_environment();

/// Where the tools' configuration file is: $APCLOUD_CONFIG, else
/// $XDG_CONFIG_HOME/autopkgtest-cloud/client.conf, else
/// $HOME/.config/autopkgtest-cloud/client.conf ("" with neither).
std::string client_config_path(const Environment& env);

/// `env` with the values of the file's [client] section added as the
/// variables they stand for (`amqp_url` is APCLOUD_AMQP_URL); a variable
/// already in `env` wins. `label` names the file in messages. Throws
/// ConfigError for a syntax error or an unknown key, and for a secret
/// (amqp_password, swift_key, api_key) when `private_file` is false (the file
/// may be read by others than its owner).
Environment with_client_config(Environment env, std::string_view text, const std::string& label,
                               bool private_file);

/// `given` (a command line option's value) when not empty, else the setting
/// `variable` of `settings` (tool_environment()); with neither, "" when
/// `required` is false, else ValidationError naming `option` and
/// `variable`.
std::string option_or_setting(const std::string& given, const Environment& settings, const char* variable,
                              const char* option, bool required = true);

/// The keys [client] may hold, sorted.
std::vector<std::string> client_config_keys();

}  // namespace apcloud
