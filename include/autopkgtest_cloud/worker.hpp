/// @file worker.hpp
/// The worker service (SPEC.md section 5): consume a request, run
/// autopkgtest, store the results, announce them, and only then acknowledge.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "autopkgtest_cloud/broker.hpp"
#include "autopkgtest_cloud/log.hpp"
#include "autopkgtest_cloud/runner.hpp"
#include "autopkgtest_cloud/store.hpp"
#include "autopkgtest_cloud/worker_config.hpp"

namespace apcloud {

/// What the worker needs besides its configuration.
struct WorkerEnvironment {
    std::map<std::string, std::string> extra_vars;  ///< `-v K=V`
    std::string hostname;
    std::string host_arch;
    /// The clock (unix seconds); replaceable for tests.
    std::function<std::int64_t()> now;
    /// Sleeps between retries; replaceable for tests.
    std::function<void(std::chrono::seconds)> sleep;
    /// Log lines (one event each); default: the library's log (log.hpp).
    std::function<void(const std::string&)> log;
};

/// What happened to one delivery.
enum class WorkerStep {
    idle,           ///< nothing arrived
    stored,         ///< results stored, announced, request acked
    dead_lettered,  ///< invalid or failing too often: moved to the dead-letter queue
    requeued,       ///< given back for another try (crash, upload failure, stop)
    /// A run of this request already holds its results (SPEC.md 5: stored at
    /// most once): acked without running or storing it again.
    already_stored,
    /// Cancelled (cancel_request) before or while it ran: acked, nothing stored.
    cancelled,
};

/// The worker: one test at a time, from the queues of its releases and
/// architectures (plain, huge, ppa and upstream).
class Worker {
public:
    Worker(WorkerConfig config, WorkerEnvironment env, Store& store, Broker& broker, Runner& runner);

    /// The queues this worker consumes.
    const std::vector<std::string>& queues() const { return queues_; }

    /// Waits up to `wait` for a request and processes it completely.
    WorkerStep process_one(std::chrono::milliseconds wait);

    /// Processes requests until `stop` becomes true; an idle worker notices
    /// within a second, a busy one finishes its test first.
    void run(const std::atomic<bool>& stop);

private:
    struct Job;  // one delivery on its way through the steps below (worker.cpp)

    // consume -> accept -> run -> pack + store -> announce -> ack
    WorkerStep handle(const Delivery& delivery);     // the error policy around run_steps
    WorkerStep run_steps(const Delivery& delivery);  // the steps below, in order
    void give_back(const Delivery& delivery, const std::string& why);
    /// Removes the scratch directories in work_dir that workers killed
    /// mid-run left behind (never those of live slots sharing work_dir).
    void sweep_scratch_dirs() const;
    bool accept(Job& job);  // false: dead-lettered
    bool already_stored(const Job& job, std::int64_t since, const char* instead_of);  // true: acked
    std::optional<std::string> cancellation(const Job& job) const;  // who cancelled it, if anyone did
    bool cancelled(const Job& job, const char* instead_of);         // true: acked
    void choose_run_id(Job& job);
    void run_autopkgtest(Job& job);  // throws when the runner itself failed
    void store_results(Job& job);    // throws when the store stayed unreachable
    void announce(const Job& job);
    void publish_status(const Job& job, bool running, std::uint64_t elapsed);
    void upload(const std::string& container, const std::string& dir, const std::string& files_dir,
                const std::function<void()>& keepalive);
    void renew(const Delivery& delivery);
    void store_retrying(const std::string& what, const std::function<void()>& keepalive,
                        const std::function<void()>& action);
    void log(LogLevel level, const std::string& line) const;

    WorkerConfig config_;
    WorkerEnvironment env_;
    Store& store_;
    Broker& broker_;
    Runner& runner_;
    std::vector<std::string> queues_;
};

/// How a worker process runs (autopkgtest-cloud-worker).
struct WorkerServiceOptions {
    std::string config_path = "/etc/autopkgtest-cloud/worker.conf";
    std::map<std::string, std::string> extra_vars;  ///< `-v K=V`
    int count = 0;                                  ///< stop after this many requests (0: until `stop`)
};

/// Reads worker.conf (secrets may come from this process's environment),
/// opens its store, broker and the autopkgtest runner, and runs a Worker until
/// `stop` becomes true or `count` requests are done. Throws ConfigError for a
/// bad configuration, naming section, key and value.
void run_worker_service(const WorkerServiceOptions& options, const std::atomic<bool>& stop);

}  // namespace apcloud
