// Helpers of the AMQP integration tests: environment, child processes (argv only), names, base64.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "subprocess.hpp"

namespace amqp_test {

// The value of an environment variable the test cannot run without; exits 77
// (skipped, which our scripts count as a failure) when it is missing.
inline std::string require_env(const char* name) {
    const char* v = std::getenv(name);
    if (!v || !*v) {
        std::fprintf(stderr,
                     "%s is not set: start a RabbitMQ with scripts/rabbitmq-start DIR and export its env\n",
                     name);
        std::exit(77);
    }
    return v;
}

// True when `s` contains `part`.
inline bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

using test_process::Child;
using test_process::RunResult;

// Runs argv[0] with `input` on stdin; never through a shell.
inline RunResult run(const std::vector<std::string>& argv, const std::string& input = "") {
    test_process::RunOptions options;
    options.input = input;
    return test_process::run(argv, options);
}

// Deletes a queue through pika_peer.py (the Broker interface deletes
// nothing): for queues bound to shared exchanges, which would otherwise
// collect the events of every later test on the server.
inline void delete_queue(const std::string& url, const std::string& queue) {
    auto r =
        run({require_env("APCLOUD_PYTHON"), require_env("APCLOUD_PIKA_PEER"), "delete-queue", url, queue});
    if (r.status != 0) throw std::runtime_error("pika_peer delete-queue " + queue + " failed: " + r.out);
}

// A queue name no other test run uses.
inline std::string unique_name(const std::string& prefix) {
    auto now = std::chrono::system_clock::now().time_since_epoch();
    return prefix + "-" + std::to_string(getpid()) + "-" +
           std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(now).count());
}

inline std::string base64_encode(const std::string& in) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                     (static_cast<unsigned char>(in[i + 1]) << 8) | static_cast<unsigned char>(in[i + 2]);
        out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], t[v & 63]};
    }
    if (i + 1 == in.size()) {
        unsigned v = static_cast<unsigned char>(in[i]) << 16;
        out += {t[v >> 18], t[(v >> 12) & 63], '=', '='};
    } else if (i + 2 == in.size()) {
        unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
        out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], '='};
    }
    return out;
}

inline std::string base64_decode(const std::string& in) {
    auto val = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    std::string out;
    unsigned acc = 0;
    int bits = 0;
    for (char c : in) {
        int v = val(c);
        if (v < 0) continue;
        acc = (acc << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    return out;
}

}  // namespace amqp_test
