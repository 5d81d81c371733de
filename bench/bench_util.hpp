// Helpers shared by the benchmark programs: running helpers, options, percentiles, a loopback HTTP client.
#pragma once

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "subprocess.hpp"

namespace bench {

using Clock = std::chrono::steady_clock;

/// Runs argv (never through a shell) and returns its standard output, or
/// nullopt when it could not run or exited non-zero.
inline std::optional<std::string> capture_output(const std::vector<std::string>& argv) {
    try {
        auto r = test_process::run(argv);
        if (r.status != 0) return std::nullopt;
        return std::move(r.out);
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

/// Seconds from `t` to now.
inline double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

/// The p-th percentile (0..100, nearest rank) of `samples`; 0 when there are none.
inline double percentile(std::vector<double> samples, double p) {
    if (samples.empty()) return 0;
    std::sort(samples.begin(), samples.end());
    const auto rank = static_cast<std::size_t>(p / 100.0 * static_cast<double>(samples.size()) + 0.5);
    return samples[std::min(samples.size() - 1, rank == 0 ? 0 : rank - 1)];
}

/// A number in a JSON text printed by a Python peer: the value after `"key": `; `fallback` when absent.
inline double json_number(const std::string& text, const std::string& key, double fallback = -1) {
    const auto at = text.find("\"" + key + "\":");
    return at == std::string::npos ? fallback : std::atof(text.c_str() + at + key.size() + 3);
}

/// `--name value` options and `--flag`s of a benchmark: each getter takes its
/// option off the command line; finish() rejects what is left (and --help)
/// with the usage line, exit status 2.
class Options {
public:
    Options(int argc, char** argv, std::string usage) : usage_(std::move(usage)) {
        for (int i = 1; i < argc; ++i) args_.emplace_back(argv[i]);
    }

    std::string text(const std::string& name, const std::string& fallback) {
        for (std::size_t i = 0; i < args_.size(); ++i)
            if (args_[i] == name) {
                if (i + 1 >= args_.size()) fail(fmt::format("{} needs a value", name));
                std::string v = args_[i + 1];
                args_.erase(args_.begin() + static_cast<long>(i), args_.begin() + static_cast<long>(i) + 2);
                return v;
            }
        return fallback;
    }

    long number(const std::string& name, long fallback, long min = 1) {
        const std::string v = text(name, "");
        if (v.empty()) return fallback;
        char* end = nullptr;
        const long n = std::strtol(v.c_str(), &end, 10);
        if (*end != '\0' || n < min)
            fail(fmt::format("{} must be a whole number >= {}, not {}", name, min, v));
        return n;
    }

    bool flag(const std::string& name) {
        auto it = std::find(args_.begin(), args_.end(), name);
        if (it == args_.end()) return false;
        args_.erase(it);
        return true;
    }

    void finish() {
        if (!args_.empty()) fail(args_[0] == "--help" ? "" : fmt::format("unknown argument {}", args_[0]));
    }

    [[noreturn]] void fail(const std::string& why) const {
        if (!why.empty()) fmt::print(stderr, "{}\n", why);
        fmt::print(stderr, "usage: {}\n", usage_);
        std::exit(2);
    }

private:
    std::string usage_;
    std::vector<std::string> args_;
};

/// A keep-alive HTTP/1.1 client of one server on 127.0.0.1, for GETs whose
/// answers have a Content-Length or are chunked. Reconnects when the server
/// closed the connection. Enough for polling a benchmarked server; not a
/// general client.
class LoopbackHttp {
public:
    explicit LoopbackHttp(std::uint16_t port) : port_(port) {}
    ~LoopbackHttp() { disconnect(); }
    LoopbackHttp(const LoopbackHttp&) = delete;
    LoopbackHttp& operator=(const LoopbackHttp&) = delete;

    struct Answer {
        int status = 0;
        std::string body;
    };

    /// GETs `target` (a path with its query); throws std::runtime_error when the server cannot be reached.
    Answer get(const std::string& target) {
        for (int attempt = 0;; ++attempt) {
            try {
                if (fd_ < 0) connect_once();
                send_all(fmt::format("GET {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", target, port_));
                return read_answer();
            } catch (const std::runtime_error&) {
                disconnect();
                if (attempt > 0) throw;
            }
        }
    }

private:
    void connect_once() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) throw std::runtime_error("socket failed");
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port_);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            throw std::runtime_error(fmt::format("cannot connect to 127.0.0.1:{}", port_));
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        buf_.clear();
    }

    void disconnect() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

    void send_all(const std::string& s) {
        for (std::size_t off = 0; off < s.size();) {
            const ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
            if (n <= 0) throw std::runtime_error("send failed");
            off += static_cast<std::size_t>(n);
        }
    }

    void fill() {
        char chunk[65536];
        const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n <= 0) throw std::runtime_error("connection closed");
        buf_.append(chunk, static_cast<std::size_t>(n));
    }

    std::string take_line() {
        std::size_t end;
        while ((end = buf_.find("\r\n")) == std::string::npos) fill();
        std::string line = buf_.substr(0, end);
        buf_.erase(0, end + 2);
        return line;
    }

    std::string take(std::size_t n) {
        while (buf_.size() < n) fill();
        std::string out = buf_.substr(0, n);
        buf_.erase(0, n);
        return out;
    }

    Answer read_answer() {
        Answer a;
        const std::string status = take_line();
        if (status.size() < 12 || status.compare(0, 5, "HTTP/") != 0)
            throw std::runtime_error("not an HTTP answer");
        a.status = std::atoi(status.c_str() + 9);
        std::optional<std::size_t> length;
        bool chunked = false, close = false;
        for (std::string h; !(h = take_line()).empty();) {
            std::string lower = h;
            std::transform(lower.begin(), lower.end(), lower.begin(),
                           [](unsigned char c) { return std::tolower(c); });
            if (lower.rfind("content-length:", 0) == 0) length = std::strtoull(h.c_str() + 15, nullptr, 10);
            if (lower.rfind("transfer-encoding:", 0) == 0 && lower.find("chunked") != std::string::npos)
                chunked = true;
            if (lower.rfind("connection:", 0) == 0 && lower.find("close") != std::string::npos) close = true;
        }
        if (chunked) {
            for (;;) {
                const std::size_t n = std::strtoull(take_line().c_str(), nullptr, 16);
                if (n == 0) {
                    while (!take_line().empty()) {
                    }
                    break;
                }
                a.body += take(n);
                take_line();
            }
        } else if (length) {
            a.body = take(*length);
        }
        if (close) disconnect();
        return a;
    }

    std::uint16_t port_;
    int fd_ = -1;
    std::string buf_;
};

}  // namespace bench
