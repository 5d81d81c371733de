/// @file file_io.hpp
/// Whole-file reads and atomic, durable writes: the one place where files and
/// errno become data and SystemError.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace apcloud {

/// The whole content of a file. NotFound when it does not exist, SystemError
/// for other failures (naming the path).
std::string read_file(const std::string& path);

/// The whole content of a file, or nullopt when it does not exist.
std::optional<std::string> read_file_if_exists(const std::string& path);

/// Writes all of `data` to `fd` (retrying short writes and EINTR); throws
/// SystemError naming `path` (the file behind fd, for the message).
void write_all(int fd, std::string_view data, const std::string& path);

/// Replaces `path` atomically and durably: the content goes to a temporary
/// file in the same directory (mode `mode`), which is fsynced, renamed over
/// `path`, and the directory fsynced. Readers (and a crash) see the old file
/// or the new one, never a part. Throws SystemError naming the path.
void write_atomically(const std::string& path, std::string_view data, mode_t mode = 0644);

/// Like write_atomically, with the temporary file's content written by
/// `fill(fd)` (which may also set attributes before the rename).
void write_atomically_with(const std::string& path, const std::function<void(int fd)>& fill,
                           mode_t mode = 0644);

/// fsyncs a directory (after a rename in it); SystemError on failure.
void fsync_directory(const std::string& path);

/// fsyncs a file by name; SystemError on failure.
void fsync_file(const std::string& path);

}  // namespace apcloud
