// Whole-file reads and atomic writes over POSIX calls; errno becomes SystemError here.
#include "autopkgtest_cloud/file_io.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <random>

#include "autopkgtest_cloud/error.hpp"

namespace apcloud {

namespace {

// A file descriptor closed on scope exit.
struct Fd {
    int fd;
    explicit Fd(int f) : fd(f) {}
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int release() {
        int f = fd;
        fd = -1;
        return f;
    }
};

std::string parent_directory(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

std::string temporary_name(const std::string& path) {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    static const char hex[] = "0123456789abcdef";
    std::string suffix = ".tmp-";
    auto r = rng();
    for (int i = 0; i < 12; ++i, r >>= 4) suffix += hex[r & 15];
    return path + suffix;
}

std::optional<std::string> read_open(int fd, const std::string& path) {
    std::string out;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) out.reserve(static_cast<std::size_t>(st.st_size));
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw SystemError(errno, "read", path);
        if (n == 0) return out;
        out.append(buf, static_cast<std::size_t>(n));
    }
}

}  // namespace

std::optional<std::string> read_file_if_exists(const std::string& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.fd < 0) {
        if (errno == ENOENT) return std::nullopt;
        throw SystemError(errno, "open", path);
    }
    return read_open(fd.fd, path);
}

std::string read_file(const std::string& path) {
    auto content = read_file_if_exists(path);
    if (!content) throw NotFound(fmt::format("{} does not exist", quote_for_message(path)));
    return *content;
}

void write_all(int fd, std::string_view data, const std::string& path) {
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw SystemError(errno, "write", path);
        done += static_cast<std::size_t>(n);
    }
}

void fsync_directory(const std::string& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.fd < 0) throw SystemError(errno, "open directory", path);
    if (::fsync(fd.fd) != 0) throw SystemError(errno, "sync directory", path);
}

void fsync_file(const std::string& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.fd < 0) throw SystemError(errno, "open", path);
    if (::fsync(fd.fd) != 0) throw SystemError(errno, "sync", path);
}

void write_atomically_with(const std::string& path, const std::function<void(int fd)>& fill, mode_t mode) {
    const std::string temp = temporary_name(path);
    Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
    if (fd.fd < 0) throw SystemError(errno, "create", temp);
    try {
        // O_CREAT's mode is filtered by the umask; the caller asked for exactly `mode`.
        if (::fchmod(fd.fd, mode) != 0) throw SystemError(errno, "set the mode of", temp);
        fill(fd.fd);
        if (::fsync(fd.fd) != 0) throw SystemError(errno, "sync", temp);
        if (::close(fd.release()) != 0) throw SystemError(errno, "close", temp);
        if (::rename(temp.c_str(), path.c_str()) != 0) throw SystemError(errno, "rename a file to", path);
    } catch (...) {
        ::unlink(temp.c_str());
        throw;
    }
    fsync_directory(parent_directory(path));
}

void write_atomically(const std::string& path, std::string_view data, mode_t mode) {
    write_atomically_with(
        path, [&](int fd) { write_all(fd, data, path); }, mode);
}

}  // namespace apcloud
