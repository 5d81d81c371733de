// Prints the embedded broker's rates: publish, consume+ack, and publish->consume->ack round trips.
//
// Usage: bench-broker-embedded [round trips per mode] [directory for the database]
// Each mode (the URL's synchronous option) gets a fresh database, so the
// numbers include the WAL's growth and checkpoints as in real use.
#include <unistd.h>

#include <sys/wait.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "autopkgtest_cloud/broker.hpp"
#include "autopkgtest_cloud/error.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double rate(int n, Clock::time_point t0) {
    return n / std::chrono::duration<double>(Clock::now() - t0).count();
}

// A request-sized body, as britney sends.
const std::string body =
    R"({"triggers": ["glibc/2.36-9+deb12u4"], "requester": "britney", "submit-time": "2024-05-01 12:00:00", )"
    R"("env": ["AUTOPKGTEST_SETUP_VM=1"], "ppas": []})";

void run_mode(const std::string& dir, const std::string& mode, int n) {
    const std::string path = dir + "/bench-" + mode + ".db";
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
    const std::string url = "sqlite://" + path + "?synchronous=" + mode;
    auto b = apcloud::open_broker(url);
    const std::string q = "debci-bench-amd64";
    b->declare_queue(q);

    auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) b->publish(q, body);
    double publish = rate(n, t0);

    t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
        auto d = b->consume({q}, 1s);
        if (!d) throw apcloud::BrokerError("bench: queue ran dry after " + std::to_string(i));
        b->ack(*d);
    }
    double consume = rate(n, t0);

    t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
        b->publish(q, body);
        auto d = b->consume({q}, 1s);
        if (!d) throw apcloud::BrokerError("bench: round trip lost a message");
        b->ack(*d);
    }
    double round_trip = rate(n, t0);

    // Two consumer processes draining a backlog, as a worker pool does.
    for (int i = 0; i < n; ++i) b->publish(q, body);
    std::fflush(nullptr);
    t0 = Clock::now();
    pid_t pids[2];
    for (pid_t& pid : pids) {
        pid = fork();
        if (pid == 0) {
            try {
                auto c = apcloud::open_broker(url);
                while (auto d = c->consume({q}, 200ms)) c->ack(*d);
                _exit(0);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "consumer: %s\n", e.what());
                _exit(1);
            }
        }
    }
    int ok = 0;
    for (pid_t pid : pids) {
        int status = 0;
        waitpid(pid, &status, 0);
        ok += WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    // The drain includes the consumers' final 200 ms wait for an empty queue.
    double pool = n / (std::chrono::duration<double>(Clock::now() - t0).count() - 0.2);
    std::printf(
        "synchronous=%-7s publish %8.0f/s  consume+ack %8.0f/s  round trip %8.0f/s  "
        "2 processes consume+ack %8.0f/s%s\n",
        mode.c_str(), publish, consume, round_trip, pool, ok == 2 ? "" : " (a consumer failed)");
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
}

}  // namespace

int main(int argc, char** argv) {
    int n = argc > 1 ? std::atoi(argv[1]) : 2000;
    std::string dir = argc > 2 ? argv[2] : std::filesystem::temp_directory_path().string();
    if (n <= 0) {
        std::fprintf(stderr, "usage: bench-broker-embedded [round trips] [directory]\n");
        return 2;
    }
    try {
        std::printf("embedded broker, %d messages of %zu bytes per measure, database in %s\n", n, body.size(),
                    dir.c_str());
        for (const char* mode : {"publish", "full", "normal"}) run_mode(dir, mode, n);
    } catch (const apcloud::Error& e) {
        std::fprintf(stderr, "bench-broker-embedded: %s\n", e.what());
        return 1;
    }
    return 0;
}
