// Helpers shared by the Swift integration tests: env, unique names, running helper programs by argv.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <autopkgtest_cloud/credentials.hpp>
#include <autopkgtest_cloud/store.hpp>

#include "subprocess.hpp"

/// open_store with credentials from this process's environment (APCLOUD_SWIFT_*), as the tools do.
inline std::unique_ptr<apcloud::Store> open_test_store(const std::string& url,
                                                       const apcloud::StoreCredentials& credentials = {}) {
    return apcloud::open_store(url, credentials, apcloud::process_environment());
}

namespace swift_test {

inline std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

/// The store URL of the test Swift (v1 auth); `query` is appended as is.
inline std::string store_url(const std::string& query = "") {
    std::string url = "swift+" + env("APCLOUD_SWIFT_AUTH_URL");
    return query.empty() ? url : url + "?" + query;
}

/// A container name no other test (or earlier run) uses.
inline std::string unique_name(const std::string& stem) {
    static std::mt19937_64 rng(
        std::random_device{}() ^
        static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
    static const char hex[] = "0123456789abcdef";
    std::string out = stem + "-";
    auto v = rng();
    for (int i = 0; i < 12; ++i, v >>= 4) out += hex[v & 0xf];
    return out;
}

using test_process::RunResult;

/// Runs argv[0] (a path) with argv, no shell; stdout is captured, stderr
/// passes through to the test's log.
inline RunResult run(const std::vector<std::string>& argv) {
    return test_process::run(argv);
}

/// A helper program running in the background (e.g. the Keystone stand-in),
/// whose first stdout line is read at start; stopped by the destructor.
class Background {
public:
    explicit Background(const std::vector<std::string>& argv)
        : child_(argv), first_line_(child_.read_line()) {}
    const std::string& first_line() const { return first_line_; }

private:
    test_process::Child child_;
    std::string first_line_;
};

/// KEY=VALUE lines of a file (DIR/etc/ports of swift-start).
inline std::string read_kv(const std::string& path, const std::string& key) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line))
        if (line.compare(0, key.size() + 1, key + "=") == 0) return line.substr(key.size() + 1);
    return "";
}

/// Sends one line of memcached's text protocol to 127.0.0.1:port and
/// returns the first line of the answer.
inline std::string memcached_command(int port, const std::string& command) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        if (fd >= 0) close(fd);
        throw std::runtime_error("cannot connect to memcached on port " + std::to_string(port));
    }
    std::string line = command + "\r\n";
    if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
        close(fd);
        throw std::runtime_error("write to memcached failed");
    }
    std::string answer;
    char c;
    while (read(fd, &c, 1) == 1 && c != '\n') answer += c;
    close(fd);
    if (!answer.empty() && answer.back() == '\r') answer.pop_back();
    return answer;
}

}  // namespace swift_test
