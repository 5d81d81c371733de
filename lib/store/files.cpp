// Files the stores read and write: block reads with pread, and opening a file to store.
#include "store/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "autopkgtest_cloud/error.hpp"

namespace apcloud::detail {

void Fd::reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

int Fd::close_checked() noexcept {
    const int rc = ::close(std::exchange(fd_, -1));
    return rc == 0 ? 0 : errno;
}

std::size_t read_at(int fd, std::uint64_t offset, char* buf, std::size_t size, const std::string& path) {
    for (;;) {
        const ssize_t n = ::pread(fd, buf, size, static_cast<off_t>(offset));
        if (n >= 0) return static_cast<std::size_t>(n);
        if (errno != EINTR) throw SystemError(errno, "read", path);
    }
}

std::uint64_t read_blocks(int fd, const std::string& path, const BlockSink& sink) {
    // Not value-initialised: zeroing 256 KiB cost more than reading a small object.
    const std::unique_ptr<char[]> buf(new char[file_block_size]);
    std::uint64_t off = 0;
    for (;;) {
        const std::size_t n = read_at(fd, off, buf.get(), file_block_size, path);
        if (n == 0) return off;
        sink(buf.get(), n);
        off += n;
    }
}

std::string read_whole(int fd, const std::string& path, std::size_t expected) {
    std::string out(expected, '\0');
    std::size_t got = 0;
    for (;;) {
        if (got == out.size()) {
            // As expected, or grown since: a small read tells, without growing the string first.
            char probe[4096];
            const std::size_t n = read_at(fd, got, probe, sizeof probe, path);
            if (n == 0) break;
            out.append(probe, n);
            got += n;
            continue;
        }
        const std::size_t n = read_at(fd, got, out.data() + got, out.size() - got, path);
        if (n == 0) break;
        got += n;
    }
    out.resize(got);
    return out;
}

SourceFile::SourceFile(std::string path)
    : path_(std::move(path)), fd_(::open(path_.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (!fd_) throw SystemError(errno, "open the file to store", path_);
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) throw SystemError(errno, "stat the file to store", path_);
    // A directory, FIFO or device has no size to announce, or no end.
    if (!S_ISREG(st.st_mode))
        throw SystemError(S_ISDIR(st.st_mode) ? EISDIR : EINVAL, "store (not a regular file)", path_);
    size_ = static_cast<std::uint64_t>(st.st_size);
}

}  // namespace apcloud::detail
