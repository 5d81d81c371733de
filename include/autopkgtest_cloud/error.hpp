/// @file error.hpp
/// The exception hierarchy of libautopkgtest-cloud: every error the library
/// raises derives from apcloud::Error and names the input at fault.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace apcloud {

/// Base of every exception thrown by the library.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Input that is not well-formed (bad JSON, not UTF-8, corrupt archive ...).
class ParseError : public Error {
public:
    using Error::Error;
};

/// A well-formed input whose field has a value the contract forbids.
/// `field()` is the offending field (e.g. "triggers", "env", "package"),
/// `value()` the offending value exactly as received.
class ValidationError : public Error {
public:
    /// Builds the message "invalid <field> <quoted value>: <reason>".
    ValidationError(std::string field, std::string value, std::string_view reason);
    /// The name of the field at fault.
    const std::string& field() const noexcept { return field_; }
    /// The rejected value, as received.
    const std::string& value() const noexcept { return value_; }

private:
    std::string field_;
    std::string value_;
};

/// A result archive that is corrupt, truncated or exceeds the size limits.
class ArchiveError : public ParseError {
public:
    using ParseError::ParseError;
};

/// A requested object, container, queue or file does not exist.
class NotFound : public Error {
public:
    using Error::Error;
};

/// A configuration file or value is invalid.
class ConfigError : public Error {
public:
    using Error::Error;
};

/// A result store operation failed.
class StoreError : public Error {
public:
    using Error::Error;
};

/// A broker (queue) operation failed.
class BrokerError : public Error {
public:
    using Error::Error;
};

/// An HTTP exchange failed or answered with an unexpected status.
class HttpError : public Error {
public:
    using Error::Error;
};

/// Downloaded data does not match its published checksum.
class IntegrityError : public Error {
public:
    using Error::Error;
};

/// An operating system call failed: `error_code()` is the errno value,
/// `path()` the file or directory at fault (empty when none). The message is
/// "cannot <what> '<path>': <strerror text>".
class SystemError : public Error {
public:
    SystemError(int errno_value, std::string_view what, std::string path = {});
    /// The errno value.
    int error_code() const noexcept { return errno_; }
    /// The file or directory at fault.
    const std::string& path() const noexcept { return path_; }

private:
    int errno_;
    std::string path_;
};

/// The text of an errno value (strerror, thread-safe).
std::string errno_message(int errno_value);

/// Renders a value for an error message: quoted, with control characters and
/// invalid UTF-8 escaped, and cut after `max_len` bytes so a huge input cannot
/// flood a log.
std::string quote_for_message(std::string_view value, std::size_t max_len = 200);

}  // namespace apcloud
