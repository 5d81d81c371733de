// The log path: a replaceable sink, and the default one on spdlog (stderr, UTC timestamps, levels).
#include "autopkgtest_cloud/log.hpp"

#include <fmt/format.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <mutex>

#include "autopkgtest_cloud/error.hpp"

namespace apcloud {

namespace {

std::atomic<LogLevel> current_level{LogLevel::info};

struct State {
    std::mutex mutex;
    LogSink sink;
    std::shared_ptr<spdlog::logger> stderr_logger;
};

State& state() {
    static State s;
    return s;
}

spdlog::level::level_enum to_spdlog(LogLevel level) {
    switch (level) {
        case LogLevel::debug:
            return spdlog::level::debug;
        case LogLevel::info:
            return spdlog::level::info;
        case LogLevel::warning:
            return spdlog::level::warn;
        case LogLevel::error:
            return spdlog::level::err;
    }
    return spdlog::level::info;
}

// Not registered globally: a host program's own spdlog setup stays its own.
std::shared_ptr<spdlog::logger> make_logger(spdlog::sink_ptr sink) {
    auto logger = std::make_shared<spdlog::logger>("apcloud", std::move(sink));
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
    logger->set_level(spdlog::level::trace);
    logger->flush_on(spdlog::level::trace);
    return logger;
}

spdlog::logger& default_logger(State& s) {
    if (!s.stderr_logger) s.stderr_logger = make_logger(std::make_shared<spdlog::sinks::stderr_sink_mt>());
    return *s.stderr_logger;
}

}  // namespace

void set_log_sink(LogSink sink) {
    State& s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    s.sink = std::move(sink);
}

void log_to_file(const std::string& path) {
    std::shared_ptr<spdlog::logger> logger;
    try {
        logger = make_logger(std::make_shared<spdlog::sinks::basic_file_sink_mt>(path));
    } catch (const spdlog::spdlog_ex& e) {
        throw SystemError(errno ? errno : EIO, "open the log file", path);
    }
    State& s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    s.stderr_logger = std::move(logger);
}

void set_log_level(LogLevel level) {
    current_level = level;
}

LogLevel log_level() noexcept {
    return current_level.load();
}

std::string_view log_level_name(LogLevel level) noexcept {
    switch (level) {
        case LogLevel::debug:
            return "debug";
        case LogLevel::info:
            return "info";
        case LogLevel::warning:
            return "warning";
        case LogLevel::error:
            return "error";
    }
    return "info";
}

LogLevel parse_log_level(std::string_view name) {
    if (name == "debug") return LogLevel::debug;
    if (name == "info") return LogLevel::info;
    if (name == "warning" || name == "warn") return LogLevel::warning;
    if (name == "error") return LogLevel::error;
    throw ConfigError(fmt::format("unknown log level {} (expected debug, info, warning or error)",
                                  quote_for_message(name)));
}

void log_message(LogLevel level, std::string_view component, std::string_view message) {
    if (level < log_level()) return;
    State& s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.sink) {
        s.sink(LogRecord{level, component, message});
        return;
    }
    default_logger(s).log(to_spdlog(level), "{}: {}", component, message);
}

}  // namespace apcloud
