// Files the stores read and write (private header): an owned descriptor, block reads, a file to store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

namespace apcloud::detail {

/// Owns a file descriptor (closed on destruction).
class Fd {
public:
    explicit Fd(int fd = -1) noexcept : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    void reset() noexcept;
    /// Closes and returns the errno close() reported, 0 when none (for files
    /// just written, whose last write errors may only show here).
    int close_checked() noexcept;

private:
    int fd_;
};

/// The size of the blocks the stores read files in: large enough that a read
/// costs far less than what is done with the block (md5, a write, a send),
/// small enough never to matter for memory.
inline constexpr std::size_t file_block_size = 256 * 1024;

/// Reads up to `size` bytes at `offset` of the file open as `fd` into `buf`
/// (pread, retried on EINTR); returns how many, 0 at the end. Throws
/// SystemError naming `path` (the file behind `fd`) on a read error.
std::size_t read_at(int fd, std::uint64_t offset, char* buf, std::size_t size, const std::string& path);

/// Receives a file's content one block at a time.
using BlockSink = std::function<void(const char* data, std::size_t size)>;

/// Reads the file open as `fd` from its start to its end in blocks of
/// file_block_size (a buffer of that size, never the whole file), passing each to
/// `sink`; returns the number of bytes read. Uses pread, so the descriptor's
/// offset does not matter and is not moved. Throws SystemError naming `path`
/// (the file behind `fd`, for the message) on a read error.
std::uint64_t read_blocks(int fd, const std::string& path, const BlockSink& sink);

/// The whole content of the file open as `fd`, read straight into the string
/// (`expected`, its size from fstat, sizes the string; a file that grew since
/// is read to its end). Throws SystemError naming `path` on a read error.
std::string read_whole(int fd, const std::string& path, std::size_t expected);

/// A regular file opened for reading, to be stored as an object.
class SourceFile {
public:
    /// Opens `path`. Throws SystemError naming it when it cannot be opened or
    /// is not a regular file.
    explicit SourceFile(std::string path);

    const std::string& path() const noexcept { return path_; }
    /// Its size when it was opened.
    std::uint64_t size() const noexcept { return size_; }
    /// read_blocks() over the whole file; may be called again (each call
    /// starts at the beginning).
    std::uint64_t read(const BlockSink& sink) const { return read_blocks(fd_.get(), path_, sink); }

private:
    std::string path_;
    Fd fd_;
    std::uint64_t size_ = 0;
};

}  // namespace apcloud::detail
