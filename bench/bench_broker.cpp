// bench-broker: publish -> consume -> ack round trips through a real RabbitMQ, ours next to pika and the
// embedded broker.
//
// Usage: bench-broker [ROUND_TRIPS [ROUNDS]]   (default 1000 x 5)
// Needs APCLOUD_AMQP_URL (scripts/rabbitmq-start DIR prints it; exits 77
// without). Every message is persistent and publisher-confirmed, one in flight
// at a time, as on the worker path; our ack also waits until the broker has
// processed it. The batched rows publish 100 messages, then consume+ack them.
// pika runs in its own process (bench_broker.py, /usr/bin/python3) and times
// itself, so its start-up is not counted. Rounds alternate between the
// contenders and the best and median round are shown: on a shared machine
// the wall-clock rates are bounded by RabbitMQ and by scheduling, so the CPU
// time each client spends per round trip is printed too (getrusage here,
// time.process_time() in pika). Last, the server's floor: the time one
// persistent publish takes until RabbitMQ confirms it (it has stored the
// message), which bounds the sequential round-trip rate of any client.
#include <sys/resource.h>
#include <sys/wait.h>

#include <unistd.h>
#include "bench_util.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "autopkgtest_cloud/broker.hpp"
#include "autopkgtest_cloud/error.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kBatch = 100;

// A request-sized body, as britney sends (the same bytes as bench_broker.py).
const std::string body =
    R"({"triggers": ["glibc/2.36-9+deb12u4"], "requester": "britney", "submit-time": "2024-05-01 12:00:00", )"
    R"("env": ["AUTOPKGTEST_SETUP_VM=1"], "ppas": []})";

double per_second(int n, Clock::time_point t0) {
    return n / std::chrono::duration<double>(Clock::now() - t0).count();
}

void round_trips(apcloud::Broker& b, const std::string& q, int n) {
    for (int i = 0; i < n; ++i) {
        b.publish(q, body);
        auto d = b.consume({q}, 10s);
        if (!d || d->body != body) throw apcloud::BrokerError("bench: round trip lost a message on " + q);
        b.ack(*d);
    }
}

// Returns the seconds spent publishing (each publish waits for its confirm).
double batches(apcloud::Broker& b, const std::string& q, int n) {
    double publishing = 0;
    for (int done = 0; done < n; done += kBatch) {
        auto t0 = Clock::now();
        for (int i = 0; i < kBatch; ++i) b.publish(q, body);
        publishing += std::chrono::duration<double>(Clock::now() - t0).count();
        for (int i = 0; i < kBatch; ++i) {
            auto d = b.consume({q}, 10s);
            if (!d) throw apcloud::BrokerError("bench: batch lost a message on " + q);
            b.ack(*d);
        }
    }
    return publishing;
}

struct Rates {
    double round_trip = 0;
    double batched = 0;
    double cpu_us = 0;      // this process's CPU time per round trip
    double publish_us = 0;  // one persistent publish until its confirm, nothing else in flight
};

double cpu_seconds() {
    rusage u;
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

Rates measure(apcloud::Broker& b, const std::string& q, int n) {
    b.declare_queue(q);
    round_trips(b, q, 50);  // warm-up: connection, channels, page cache
    Rates r;
    auto t0 = Clock::now();
    double c0 = cpu_seconds();
    round_trips(b, q, n);
    r.round_trip = per_second(n, t0);
    r.cpu_us = (cpu_seconds() - c0) / n * 1e6;
    int batched_n = (n + kBatch - 1) / kBatch * kBatch;
    t0 = Clock::now();
    r.publish_us = batches(b, q, batched_n) / batched_n * 1e6;
    r.batched = per_second(batched_n, t0);
    return r;
}

std::string run_python(const std::vector<std::string>& args) {
    return bench::capture_output(args).value_or("");
}

double json_number(const std::string& text, const std::string& key) {
    auto pos = text.find("\"" + key + "\": ");
    return pos == std::string::npos ? 0.0 : std::atof(text.c_str() + pos + key.size() + 4);
}

// The best and the median of several rounds: the machine is shared, and
// alternating the contenders round by round exposes them to the same noise.
struct Series {
    std::vector<double> v;
    void add(double x) {
        if (x > 0) v.push_back(x);
    }
    double best() const { return v.empty() ? 0 : *std::max_element(v.begin(), v.end()); }
    double least() const { return v.empty() ? 0 : *std::min_element(v.begin(), v.end()); }
    double median() const {
        if (v.empty()) return 0;
        auto s = v;
        std::sort(s.begin(), s.end());
        return s[s.size() / 2];
    }
};

void row(const char* name, const Series& s, const std::string& note = "") {
    if (s.v.empty())
        std::printf("%-34s %10s %10s   %s\n", name, "-", "-", note.c_str());
    else
        std::printf("%-34s %8.0f/s %8.0f/s   %s\n", name, s.best(), s.median(), note.c_str());
}

void cpu_row(const char* name, const Series& s) {
    if (!s.v.empty()) std::printf("%-34s %7.0f us %7.0f us\n", name, s.least(), s.median());
}

void ratio(const char* what, const Series& ours, const Series& theirs) {
    if (ours.v.empty() || theirs.v.empty()) return;
    std::printf("ratio ours/pika, %-22s best %.1fx, median %.1fx\n", what, ours.best() / theirs.best(),
                ours.median() / theirs.median());
}

}  // namespace

int main(int argc, char** argv) {
    const int n = argc > 1 ? std::atoi(argv[1]) : 1000;
    const int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
    const char* url = std::getenv("APCLOUD_AMQP_URL");
    if (!url || !*url) {
        std::fprintf(stderr,
                     "APCLOUD_AMQP_URL is not set: start a RabbitMQ with scripts/rabbitmq-start DIR "
                     "and export the variables it prints\n");
        return 77;
    }
    const auto dir =
        std::filesystem::temp_directory_path() / ("apcloud-bench-broker-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);

    Series ours_rt, ours_batch, pika_get, pika_consume, pika_batch, emb_rt, emb_batch;
    Series ours_cpu, pika_cpu_get, pika_cpu_consume, emb_cpu;  // microseconds per round trip
    Series publish_us;                                         // the server's persist + confirm
    std::string embedded_error, pika_error;
    try {
        auto amqp = apcloud::open_broker(url);
        std::unique_ptr<apcloud::Broker> embedded;
        try {
            embedded = apcloud::open_broker("sqlite://" + (dir / "queue.db").string());
        } catch (const std::exception& e) {
            embedded_error = std::string("embedded broker not available: ") + e.what();
        }
        for (int r = 0; r < rounds; ++r) {
            const std::string q =
                "debci-bench" + std::to_string(getpid()) + "x" + std::to_string(r) + "-amd64";
            Rates ours = measure(*amqp, q, n);
            ours_rt.add(ours.round_trip);
            ours_batch.add(ours.batched);
            ours_cpu.add(ours.cpu_us);
            publish_us.add(ours.publish_us);
            // pika on the same queue (it deletes the queue when done).
            std::string py = run_python(
                {APCLOUD_PYTHON, APCLOUD_BENCH_BROKER_PY, url, q, std::to_string(n), std::to_string(kBatch)});
            if (py.empty()) pika_error = "pika failed: see stderr";
            pika_get.add(json_number(py, "round_trip_get"));
            pika_consume.add(json_number(py, "round_trip_consume"));
            pika_batch.add(json_number(py, "batched"));
            pika_cpu_get.add(json_number(py, "cpu_us_get"));
            pika_cpu_consume.add(json_number(py, "cpu_us_consume"));
            if (embedded) {
                try {
                    Rates e = measure(*embedded, "debci-bench-amd64", n);
                    emb_rt.add(e.round_trip);
                    emb_batch.add(e.batched);
                    emb_cpu.add(e.cpu_us);
                } catch (const std::exception& e) {
                    embedded_error = e.what();
                    embedded.reset();
                }
            }
        }
    } catch (const apcloud::Error& e) {
        std::fprintf(stderr, "bench-broker: AMQP: %s\n", e.what());
        return 1;
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);

    Series pika_best_way = pika_get.median() >= pika_consume.median() ? pika_get : pika_consume;
    std::printf(
        "publish (persistent, confirmed) -> consume -> ack: %d round trips x %d rounds, one message in "
        "flight\n",
        n, rounds);
    std::printf("%-34s %10s %10s\n", "", "best", "median");
    row("ours, AMQP (rabbitmq-c)", ours_rt);
    row("pika, basic_get", pika_get, pika_error);
    row("pika, prefetch-1 consumer", pika_consume, pika_error);
    row("ours, embedded (SQLite)", emb_rt, embedded_error);
    std::printf("batches of %d (publish all, then consume+ack all), messages:\n", kBatch);
    row("ours, AMQP", ours_batch);
    row("pika, basic_get", pika_batch, pika_error);
    row("ours, embedded (SQLite)", emb_batch, embedded_error);
    std::printf("client CPU time per round trip (lower is better; best = least):\n");
    cpu_row("ours, AMQP", ours_cpu);
    cpu_row("pika, basic_get", pika_cpu_get);
    cpu_row("pika, prefetch-1 consumer", pika_cpu_consume);
    cpu_row("ours, embedded (SQLite)", emb_cpu);
    ratio("round trip (goal >= 3x):", ours_rt, pika_best_way);
    ratio("batched:", ours_batch, pika_batch);
    if (!ours_cpu.v.empty() && !pika_cpu_get.v.empty())
        std::printf("ratio pika/ours, CPU per round trip:    least %.1fx, median %.1fx\n",
                    pika_cpu_get.least() / ours_cpu.least(), pika_cpu_get.median() / ours_cpu.median());
    if (!publish_us.v.empty() && !pika_best_way.v.empty()) {
        // A round trip contains one persistent publish that RabbitMQ confirms only once the message
        // is safely stored: whatever the client, that wait bounds the sequential rate.
        const double ceiling = 1e6 / publish_us.least();
        std::printf(
            "server floor: a persistent publish until its confirm takes %.0f us (least; median %.0f us)\n"
            "  -> no client exceeds %.0f round trips/s here: at most %.1fx pika's best median way;\n"
            "  ours reaches %.0f%% of that ceiling (median), pika %.0f%%\n",
            publish_us.least(), publish_us.median(), ceiling, ceiling / pika_best_way.median(),
            100 * ours_rt.median() / ceiling, 100 * pika_best_way.median() / ceiling);
    }
    return pika_error.empty() ? 0 : 1;
}
