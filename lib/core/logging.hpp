// A component's logger: messages formatted with fmt, sent down the library's
// one log path (log.hpp). Private to the library.
#pragma once

#include <fmt/format.h>

#include <string>
#include <utility>

#include "autopkgtest_cloud/log.hpp"

namespace apcloud::detail {

/// Logs for one component ("worker", "amqp", ...); cheap to copy.
class Logger {
public:
    explicit Logger(std::string component) : component_(std::move(component)) {}

    template <typename... Args>
    void debug(fmt::format_string<Args...> format, Args&&... args) const {
        emit(LogLevel::debug, format, std::forward<Args>(args)...);
    }
    template <typename... Args>
    void info(fmt::format_string<Args...> format, Args&&... args) const {
        emit(LogLevel::info, format, std::forward<Args>(args)...);
    }
    template <typename... Args>
    void warn(fmt::format_string<Args...> format, Args&&... args) const {
        emit(LogLevel::warning, format, std::forward<Args>(args)...);
    }
    template <typename... Args>
    void error(fmt::format_string<Args...> format, Args&&... args) const {
        emit(LogLevel::error, format, std::forward<Args>(args)...);
    }

    const std::string& component() const noexcept { return component_; }

private:
    template <typename... Args>
    void emit(LogLevel level, fmt::format_string<Args...> format, Args&&... args) const {
        if (level < log_level()) return;  // formatting costs nothing when dropped
        log_message(level, component_, fmt::format(format, std::forward<Args>(args)...));
    }

    std::string component_;
};

}  // namespace apcloud::detail
