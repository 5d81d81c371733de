// bench-web-latency: from a worker's upload to the result visible in the JSON API, on
// the embedded stack. The web service (run_web_service) runs in a thread on a
// directory store and the SQLite broker; for each of N results, one after the
// other, the benchmark does what the worker does after a run (put log.gz,
// artifacts.tar.gz and result.tar, publish testcomplete) and polls
// /api/v1/run/<uuid> on a keep-alive connection until it answers 200.
//
// Usage: bench-web-latency [--results N] [--poll-us U] [--scratch DIR]
// N defaults to 1000, the poll interval to 1000 us; store, broker and index
// live in a scratch directory under --scratch (default /tmp, a disk: the
// store's puts are synced as in real use).
#include <fmt/format.h>
#include <autopkgtest_cloud/broker.hpp>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/events.hpp>
#include <autopkgtest_cloud/store.hpp>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench_fixtures.hpp"
#include "bench_util.hpp"

namespace fs = std::filesystem;

namespace {

const char* const usage = "bench-web-latency [--results N] [--poll-us U] [--scratch DIR]";

// The event the worker publishes once a run's files are stored (Worker::announce).
std::string testcomplete_for(const bench::RunSpec& spec) {
    apcloud::TestComplete done;
    done.architecture = spec.arch;
    done.container = spec.container();
    done.duration = spec.duration;
    done.exitcode = spec.exitcode;
    done.package = spec.package;
    done.testpkg_version = spec.package + " " + spec.version;
    done.release = spec.release;
    done.requester = spec.requester;
    done.swift_dir = spec.dir();
    done.triggers = spec.triggers;
    done.env = spec.env;
    return apcloud::testcomplete_json(done);
}

// Waits until the service has bound its event queue: events published before are not its own.
void wait_for_queue(apcloud::Broker& broker, const std::string& queue) {
    const auto t0 = bench::Clock::now();
    for (;;) {
        try {
            broker.queue_depth(queue);
            return;
        } catch (const apcloud::NotFound&) {
            if (bench::seconds_since(t0) > 30) throw apcloud::Error("the web service never bound " + queue);
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
}

void print_row(const char* what, const std::vector<double>& ms) {
    fmt::print("{:<36} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f}\n", what, bench::percentile(ms, 50),
               bench::percentile(ms, 90), bench::percentile(ms, 99), bench::percentile(ms, 100));
}

}  // namespace

int main(int argc, char** argv) {
    bench::Options opts(argc, argv, usage);
    const auto n = static_cast<std::size_t>(opts.number("--results", 1000));
    const auto poll_us = opts.number("--poll-us", 1000);
    const std::string scratch_parent = opts.text("--scratch", "/tmp");
    opts.finish();
    apcloud::set_log_level(apcloud::LogLevel::warning);

    try {
        bench::ScratchDir scratch(scratch_parent, "bench-web-latency");
        const std::string store_url = "file://" + scratch.path() + "/store";
        const std::string broker_url = "sqlite://" + scratch.path() + "/queue.db";
        fs::create_directories(scratch.path() + "/store");
        auto store = apcloud::open_store(store_url);
        store->ensure_container("autopkgtest-noble", apcloud::ContainerAcl::public_container());
        auto broker = apcloud::open_broker(broker_url);

        // Packed before the clock starts: the worker has them on disk when it uploads.
        const auto names = bench::package_names(50);
        std::vector<bench::RunSpec> specs;
        std::vector<apcloud::ResultFiles> files;
        for (std::size_t i = 0; i < n; ++i) {
            specs.push_back(bench::make_spec(names[i % names.size()], "amd64", 100000 + i, 17));
            files.push_back(bench::pack_run(specs.back(), scratch.path() + "/out"));
        }

        bench::WebServiceThread web(scratch.path() + "/web", store_url, broker_url);
        wait_for_queue(*broker, web.event_queue());
        bench::LoopbackHttp http(web.port());

        std::vector<double> total_ms, upload_ms, event_ms;
        std::size_t polls = 0;
        const auto t_all = bench::Clock::now();
        for (std::size_t i = 0; i < n; ++i) {
            const auto t0 = bench::Clock::now();
            bench::store_run(*store, specs[i], files[i]);
            const auto t1 = bench::Clock::now();
            broker->publish_event(apcloud::testcomplete_exchange, testcomplete_for(specs[i]));
            const auto t2 = bench::Clock::now();
            const std::string target = "/api/v1/run/" + specs[i].uuid;
            for (;;) {
                ++polls;
                const auto a = http.get(target);
                if (a.status == 200) break;
                if (a.status != 404) throw apcloud::Error(fmt::format("GET {}: HTTP {}", target, a.status));
                if (bench::seconds_since(t0) > 30)
                    throw apcloud::Error(fmt::format("{} not visible after 30 s", target));
                std::this_thread::sleep_for(std::chrono::microseconds(poll_us));
            }
            const auto t3 = bench::Clock::now();
            auto ms = [](bench::Clock::time_point a, bench::Clock::time_point b) {
                return std::chrono::duration<double, std::milli>(b - a).count();
            };
            total_ms.push_back(ms(t0, t3));
            upload_ms.push_back(ms(t0, t1));
            event_ms.push_back(ms(t2, t3));
        }
        const double seconds = bench::seconds_since(t_all);

        fmt::print(
            "bench-web-latency: {} results, one at a time, embedded stack (directory store on {}, SQLite "
            "broker), polled every {} us\n",
            n, scratch_parent, poll_us);
        fmt::print("{:<36} {:>9} {:>9} {:>9} {:>9}\n", "latency (ms)", "p50", "p90", "p99", "max");
        print_row("upload start -> visible in the API", total_ms);
        print_row("  of which the upload (3 puts)", upload_ms);
        print_row("  testcomplete published -> visible", event_ms);
        fmt::print("{} polls in all, {:.1f} s; goal p50 < 100 ms, p99 < 1000 ms: {}\n", polls, seconds,
                   bench::percentile(total_ms, 50) < 100 && bench::percentile(total_ms, 99) < 1000
                       ? "met"
                       : "NOT met");
        return 0;
    } catch (const std::exception& e) {
        fmt::print(stderr, "bench-web-latency: {}\n", e.what());
        return 1;
    }
}
