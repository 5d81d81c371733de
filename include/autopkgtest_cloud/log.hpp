/// @file log.hpp
/// The library's one log path: services (worker, web, brokers' reconnects and
/// leases) log records with a level and a component; a process chooses where
/// they go. By default they go to standard error, one line each, with a UTC
/// timestamp and the level (through spdlog).
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace apcloud {

/// How important a log record is.
enum class LogLevel { debug, info, warning, error };

/// One log record.
struct LogRecord {
    LogLevel level = LogLevel::info;
    std::string_view component;  ///< e.g. "worker", "amqp", "web"
    std::string_view message;
};

/// Receives log records; called from any thread, one record at a time.
using LogSink = std::function<void(const LogRecord&)>;

/// Sends every record at or above the log level to `sink` instead of standard
/// error; an empty sink restores the default.
void set_log_sink(LogSink sink);

/// Sends the default log lines to the file `path` (appended) instead of
/// standard error; throws SystemError naming it when it cannot be opened.
void log_to_file(const std::string& path);

/// Records below `level` are dropped (default: info).
void set_log_level(LogLevel level);

/// The current log level.
LogLevel log_level() noexcept;

/// "debug", "info", "warning" or "error".
std::string_view log_level_name(LogLevel level) noexcept;

/// Parses a level name (also "warn"); throws ConfigError naming the value.
LogLevel parse_log_level(std::string_view name);

/// Logs one record (dropped below the log level).
void log_message(LogLevel level, std::string_view component, std::string_view message);

}  // namespace apcloud
