// The worker service: consume -> validate -> run autopkgtest -> pack ->
// upload (retrying) -> announce -> ack. A request is acked only after its
// results are stored; anything that goes wrong before gives it back.
#include "autopkgtest_cloud/worker.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "autopkgtest_cloud/autopkgtest_argv.hpp"
#include "autopkgtest_cloud/client.hpp"
#include "autopkgtest_cloud/credentials.hpp"
#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/events.hpp"
#include "autopkgtest_cloud/exit_codes.hpp"
#include "autopkgtest_cloud/file_io.hpp"
#include "autopkgtest_cloud/layout.hpp"
#include "autopkgtest_cloud/request.hpp"
#include "autopkgtest_cloud/result.hpp"
#include "autopkgtest_cloud/routing.hpp"
#include "core/logging.hpp"

namespace fs = std::filesystem;

namespace apcloud {

namespace {

// How far back a redelivered request without a first-taken time may have
// run already: longer than any run with its uploads takes.
constexpr std::int64_t kRedeliveryWindow = 2 * 86400;

// For a redelivery, the earliest start of an earlier run of it (SPEC.md 5):
// when it was first taken where the broker says, else two days back;
// nullopt for a first delivery.
std::optional<std::int64_t> earliest_run(const Delivery& d, std::int64_t now) {
    if (!d.redelivered && d.attempt <= 1) return std::nullopt;
    if (d.first_taken) return *d.first_taken;
    return now - kRedeliveryWindow;
}

// The last `max` bytes of a file, or all of it.
std::string read_tail(const fs::path& p, std::size_t max, std::string& head) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return {};
    in.seekg(0, std::ios::end);
    auto size = static_cast<std::size_t>(in.tellg());
    in.seekg(0);
    head.assign(std::min<std::size_t>(size, 4096), '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    if (size <= 4096) return head;
    std::string tail(std::min(size, max), '\0');
    in.seekg(static_cast<std::streamoff>(size - tail.size()));
    in.read(tail.data(), static_cast<std::streamsize>(tail.size()));
    return tail;
}

const detail::Logger logger("worker");

// A step that cannot complete this time (runner crash, store unreachable):
// the request is given back for another try.
struct GiveBack : Error {
    using Error::Error;
};

constexpr const char* kScratchPrefix = "apcloud-run-";
constexpr const char* kScratchOwner = ".owner";

// A scratch directory removed when the run is over, whatever happens. Its
// owner holds an flock on DIR/.owner while it lives, so that a worker killed
// with -9 (which removes nothing) leaves a directory the next worker start
// can tell from those of live slots sharing work_dir (sweep_scratch_dirs).
struct ScratchDir {
    fs::path path;
    int owner = -1;
    explicit ScratchDir(const std::string& base) {
        std::string tmpl = base + "/" + kScratchPrefix + "XXXXXX";
        if (!::mkdtemp(tmpl.data())) throw SystemError(errno, "create a run directory in", base);
        path = tmpl;
        const std::string lock = (path / kScratchOwner).string();
        owner = ::open(lock.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);  // not inherited by autopkgtest
        if (owner < 0 || ::flock(owner, LOCK_EX) != 0) {
            const int err = errno;
            remove();
            throw SystemError(err, "lock the run directory", lock);
        }
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    ~ScratchDir() { remove(); }
    void remove() {
        std::error_code ec;
        fs::remove_all(path, ec);
        if (owner >= 0) ::close(owner);
        owner = -1;
    }
};

// The scratch directories in `base` whose owner is gone: its .owner lock is
// free (or it has none and is older than a minute: a directory made an
// instant ago by a live worker has not taken its lock yet).
std::vector<fs::path> orphaned_scratch_dirs(const std::string& base) {
    std::vector<fs::path> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(base, ec)) {
        if (e.path().filename().string().rfind(kScratchPrefix, 0) != 0 || !e.is_directory(ec)) continue;
        const std::string lock = (e.path() / kScratchOwner).string();
        const int fd = ::open(lock.c_str(), O_RDWR | O_CLOEXEC);
        bool orphan = false;
        if (fd >= 0) {
            orphan = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
            ::close(fd);
        } else {
            const auto age = fs::file_time_type::clock::now() - fs::last_write_time(e.path(), ec);
            orphan = !ec && age > std::chrono::minutes(1);
        }
        if (orphan) out.push_back(e.path());
    }
    return out;
}

}  // namespace

Worker::Worker(WorkerConfig config, WorkerEnvironment env, Store& store, Broker& broker, Runner& runner)
    : config_(std::move(config)), env_(std::move(env)), store_(store), broker_(broker), runner_(runner) {
    if (!env_.now) env_.now = [] { return static_cast<std::int64_t>(std::time(nullptr)); };
    if (!env_.sleep) env_.sleep = [](std::chrono::seconds s) { std::this_thread::sleep_for(s); };
    if (env_.hostname.empty()) {
        char host[256] = {};
        ::gethostname(host, sizeof host - 1);
        env_.hostname = host;
    }
    if (env_.host_arch.empty()) env_.host_arch = config_.architectures.front();
    queues_ = queue_names(config_.releases, config_.architectures);
    for (const auto& q : queues_) broker_.declare_queue(q);
    sweep_scratch_dirs();
}

void Worker::sweep_scratch_dirs() const {
    for (const auto& dir : orphaned_scratch_dirs(config_.work_dir)) {
        std::error_code ec;
        fs::remove_all(dir, ec);
        if (ec)
            log(LogLevel::warning, fmt::format("cannot remove {}, left by a worker that is gone: {}",
                                               dir.string(), ec.message()));
        else
            log(LogLevel::info, fmt::format("removed {}, left by a worker that is gone", dir.string()));
    }
}

void Worker::log(LogLevel level, const std::string& line) const {
    if (env_.log)
        env_.log(line);
    else
        log_message(level, logger.component(), line);
}

WorkerStep Worker::process_one(std::chrono::milliseconds wait) {
    auto d = broker_.consume(queues_, wait);
    if (!d) return WorkerStep::idle;
    return handle(*d);
}

void Worker::run(const std::atomic<bool>& stop) {
    while (!stop.load()) process_one(std::chrono::milliseconds(1000));
}

void run_worker_service(const WorkerServiceOptions& options, const std::atomic<bool>& stop) {
    std::optional<std::string> text;
    try {
        text = read_file_if_exists(options.config_path);
    } catch (const SystemError& e) {
        throw ConfigError(e.what());
    }
    if (!text)
        throw ConfigError(
            fmt::format("cannot read {}: it does not exist", quote_for_message(options.config_path)));
    const WorkerConfig config = parse_worker_config(*text, process_environment(), options.extra_vars);
    auto store = open_store(config.store_url, config.store_credentials);
    auto broker = open_broker(config.broker_url, config.broker_credentials);
    auto runner = make_process_runner();
    WorkerEnvironment env;
    env.extra_vars = options.extra_vars;
    Worker worker(config, env, *store, *broker, *runner);
    if (options.count <= 0) return worker.run(stop);
    for (int done = 0; done < options.count && !stop.load();)
        if (worker.process_one(std::chrono::milliseconds(1000)) != WorkerStep::idle) ++done;
}

// One delivery on its way through the worker's steps.
struct Worker::Job {
    const Delivery& delivery;
    QueueName queue;
    TestRequest request;
    PackageLists lists;
    std::int64_t start = 0;
    std::string run_id, container, dir;  // where the results go
    std::optional<ScratchDir> work;
    fs::path out, runlog;  // autopkgtest's output directory and log
    int exitcode = 0;
    std::uint64_t duration = 0;
    std::optional<std::string> cancelled_by;  // set when the run was stopped for it

    explicit Job(const Delivery& d) : delivery(d), queue(parse_queue_name(d.queue)) {}
};

// The worker's error policy, in one place: whatever goes wrong with one
// request (a step giving up, a filesystem error, memory) gives that request
// back and is logged; the worker goes on with the next one.
WorkerStep Worker::handle(const Delivery& d) {
    try {
        return run_steps(d);
    } catch (const std::exception& e) {
        give_back(d, e.what());
    } catch (...) {
        give_back(d, "unknown error");
    }
    return WorkerStep::requeued;
}

void Worker::give_back(const Delivery& d, const std::string& why) {
    log(LogLevel::error, fmt::format("request from {} given back: {}", d.queue, why));
    try {
        broker_.requeue(d);
    } catch (const std::exception& e) {
        // The broker returns an unsettled delivery by itself (closed channel, expired lease).
        log(LogLevel::error,
            fmt::format("could not give the request back ({}); the broker will redeliver it", e.what()));
    }
}

WorkerStep Worker::run_steps(const Delivery& d) {
    Job job(d);
    if (!accept(job)) return WorkerStep::dead_lettered;

    job.container = container_name(job.queue.release, job.request.ppas, job.request.is_private());
    if (cancelled(job, "running it")) return WorkerStep::cancelled;
    // A redelivery: an earlier copy may have run (a second of clock skew
    // between the workers allowed for). A first delivery cannot have.
    if (auto since = earliest_run(d, env_.now()); since && already_stored(job, *since - 1, "running it"))
        return WorkerStep::already_stored;
    choose_run_id(job);
    job.work.emplace(config_.work_dir);
    job.out = job.work->path / "out";
    job.runlog = job.work->path / "runner.log";

    run_autopkgtest(job);
    job.duration = static_cast<std::uint64_t>(std::max<std::int64_t>(0, env_.now() - job.start));
    publish_status(job, false, job.duration);
    if (job.cancelled_by) {
        broker_.ack(d);
        log(LogLevel::warning,
            fmt::format("{}: request {} was cancelled by {} while it ran: stopped after {} s, nothing stored, acked",
                        job.request.package, job.request.uuid.value_or(""), *job.cancelled_by, job.duration));
        return WorkerStep::cancelled;
    }
    // Another worker may have run a copy of it meanwhile (our lease lost in a
    // broker outage), starting after this run did.
    if (already_stored(job, job.start + 1, "storing its results")) return WorkerStep::already_stored;
    store_results(job);
    announce(job);
    broker_.ack(d);
    log(LogLevel::info,
        fmt::format("{} on {}/{}: exit {}, stored in {}/{}; request acked", job.request.package,
                    job.queue.release, job.queue.arch, job.exitcode, job.container, job.dir));
    return WorkerStep::stored;
}

// SPEC.md 5, stored at most once: whether a run of this request (the same
// body, so the same hash in its run id; the uuid is part of the body) that
// started at or after `since` holds a result.tar; if one does, the request
// is acked. A store that cannot answer is no reason to skip a run (nor to
// store twice: the upload retries anyway).
std::optional<std::string> Worker::cancellation(const Job& job) const {
    if (!job.request.uuid) return std::nullopt;  // only requests with a uuid can be cancelled
    try {
        return cancelled_by(store_, *job.request.uuid);
    } catch (const Error& e) {
        log(LogLevel::warning, fmt::format("{}: cannot tell whether request {} was cancelled: {}",
                                           job.request.package, *job.request.uuid, e.what()));
        return std::nullopt;  // run it: a result nobody wants beats a lost request
    }
}

bool Worker::cancelled(const Job& job, const char* instead_of) {
    const auto by = cancellation(job);
    if (!by) return false;
    broker_.ack(job.delivery);
    log(LogLevel::info, fmt::format("{}: request {} on {}/{} was cancelled by {}; acked instead of {}",
                                    job.request.package, *job.request.uuid, job.queue.release, job.queue.arch,
                                    *by, instead_of));
    return true;
}

bool Worker::already_stored(const Job& job, std::int64_t since, const char* instead_of) {
    std::vector<std::string> dirs;
    try {
        ListOptions o;
        o.prefix = package_prefix(job.queue.release, job.queue.arch, job.request.package);
        o.delimiter = '@';
        o.marker = runs_since_marker(o.prefix, since);
        for (const auto& e : store_.list_all(job.container, o)) dirs.push_back(e.name);
        for (const auto& dir : runs_of_request(dirs, job.delivery.body, since)) {
            if (dir == job.dir || !store_.head(job.container, dir + "/result.tar")) continue;
            broker_.ack(job.delivery);
            log(LogLevel::warning,
                fmt::format("{} on {}/{}: a run of this request (attempt {}) already holds its results in "
                            "{}/{}; acked instead of {}",
                            job.request.package, job.queue.release, job.queue.arch, job.delivery.attempt,
                            job.container, dir, instead_of));
            return true;
        }
    } catch (const NotFound&) {
        // No container: nothing stored yet.
    } catch (const StoreError& e) {
        log(LogLevel::warning, fmt::format("could not check for an earlier run of {} before {}: {}",
                                           job.request.package, instead_of, e.what()));
    }
    return false;
}

// Sets the start time, run id and result directory. A run id is the start
// second plus a hash of the body, so an identical request started in the same
// second as one already stored would overwrite its results: then wait for the
// next second (a few times at most; a store that cannot answer is no reason
// to delay the run).
void Worker::choose_run_id(Job& job) {
    for (int tries = 0;; ++tries) {
        job.start = env_.now();
        job.run_id = make_run_id(job.start, job.delivery.body);
        job.dir = result_dir(job.queue.release, job.queue.arch, job.request.package, job.run_id);
        bool taken = false;
        try {
            taken = tries < 3 && store_.head(job.container, job.dir + "/result.tar").has_value();
        } catch (const Error&) {
        }
        if (!taken) return;
        log(LogLevel::info, fmt::format("{}: run id {} is taken by an identical request; waiting a second",
                                        job.request.package, job.run_id));
        env_.sleep(std::chrono::seconds(1));
    }
}

// Parses and validates the request and reads the per-package lists; an
// invalid request, or one delivered too often, goes to the dead-letter queue.
bool Worker::accept(Job& job) {
    const Delivery& d = job.delivery;
    if (d.attempt > static_cast<std::uint32_t>(config_.max_attempts)) {
        broker_.dead_letter(d, fmt::format("delivered {} times without completing", d.attempt));
        log(LogLevel::warning,
            fmt::format("dead-lettered a request from {} after {} deliveries", d.queue, d.attempt));
        return false;
    }
    try {
        ValidationOptions opts;
        opts.allow_local_sources = config_.allow_local_sources;
        // Only the webhook path publishes to the upstream queues with the env it sets itself.
        opts.allow_webhook_env = job.queue.context == QueueContext::upstream;
        job.request = parse_request(d.body, opts);
    } catch (const Error& e) {
        // Invalid requests never become valid: dead-letter, never requeue.
        broker_.dead_letter(d, e.what());
        log(LogLevel::warning, fmt::format("rejected a request from {}: {}", d.queue, e.what()));
        return false;
    }
    // Per-package lists are read for every request, so edits apply at once.
    if (!config_.per_package_config_dir.empty()) {
        const fs::path dir = config_.per_package_config_dir;
        job.lists.big_packages = PackageList::parse(read_file_if_exists(dir / "big_packages").value_or(""));
        job.lists.long_tests = PackageList::parse(read_file_if_exists(dir / "long_tests").value_or(""));
        job.lists.never_run = PackageList::parse(read_file_if_exists(dir / "never_run").value_or(""));
    }
    return true;
}

void Worker::publish_status(const Job& job, bool running, std::uint64_t elapsed) {
    std::string head;
    std::string tail = read_tail(job.runlog, 2000, head);
    std::string text = head.size() < 4096 ? head : head + tail;
    try {
        broker_.publish_event(teststatus_exchange,
                              teststatus_json(job.request, job.queue.release, job.queue.arch, running,
                                              elapsed, make_logtail(text)));
    } catch (const Error& e) {
        log(LogLevel::warning, fmt::format("could not publish status: {}", e.what()));
    }
}

// Runs autopkgtest (retrying testbed failures) and sets job.exitcode; a
// package on the never_run list gets exit 99 without a run. Throws GiveBack
// when the runner itself failed.
void Worker::run_autopkgtest(Job& job) {
    const TestRequest& req = job.request;
    const QueueName& q = job.queue;
    if (job.lists.never_run.matches(req.package, q.arch, q.release)) {
        fs::create_directories(job.out);
        write_atomically(job.out / "testpkg-version", req.package + " blacklisted");
        job.exitcode = exit_denylisted;
        log(LogLevel::info, fmt::format("{} is on the never_run list: exit {} without running", req.package,
                                        exit_denylisted));
        return;
    }
    RunContext rc;
    rc.release = q.release;
    rc.arch = q.arch;
    rc.host_arch = env_.host_arch;
    rc.hostname = env_.hostname;
    rc.uuid = req.uuid.value_or(job.run_id.substr(0, job.run_id.size() - 1));
    rc.timestamp = job.start;
    rc.output_dir = job.out.string();
    const Timeouts& t = timeouts_for(config_, job.lists, req.package, q.arch, q.release);
    // autopkgtest enforces its own timeouts; this one only catches a hung runner.
    const auto overall = std::chrono::seconds(t.short_ + t.install + t.test + t.copy + t.build + 600);
    for (int attempt = 0;; ++attempt) {
        std::error_code ec;
        fs::remove_all(job.out, ec);
        RunSpec spec;
        spec.argv = autopkgtest_argv(config_, req, rc, job.lists, env_.extra_vars);
        spec.log_path = job.runlog.string();
        spec.timeout = overall;
        spec.tick = std::chrono::seconds(config_.status_interval);
        spec.on_tick = [&](std::chrono::seconds elapsed) {
            publish_status(job, true, static_cast<std::uint64_t>(elapsed.count()));
            renew(job.delivery);
        };
        spec.cancelled = [&] { return (job.cancelled_by = cancellation(job)).has_value(); };
        log(LogLevel::info,
            fmt::format("running {} on {}/{} from {}", req.package, q.release, q.arch, job.delivery.queue));
        publish_status(job, true, 0);
        RunResult r = runner_.run(spec);
        if (r.cancelled) return;  // job.cancelled_by says by whom
        if (r.timed_out) {
            job.exitcode = exit_unexpected;
            log(LogLevel::warning, fmt::format("{}: autopkgtest did not finish within {} s; storing an error",
                                               req.package, overall.count()));
            return;
        }
        if (!r.exited()) {
            // autopkgtest itself crashed or could not start: not a result. Give the
            // request back; max_attempts bounds the loop.
            publish_status(job, false, static_cast<std::uint64_t>(r.duration.count() / 1000));
            throw GiveBack(
                r.exec_failed ? fmt::format("autopkgtest for {} could not be started", req.package)
                              : fmt::format("autopkgtest for {} crashed (signal {})", req.package, r.signal));
        }
        job.exitcode = r.exit_code;
        if (job.exitcode != exit_testbed_failure || attempt >= config_.testbed_failure_retries) return;
        auto wait = std::chrono::seconds(static_cast<long>(config_.testbed_failure_backoff) << attempt);
        log(LogLevel::warning,
            fmt::format("{}: testbed failure (exit {}), retry {} of {} in {} s", req.package,
                        exit_testbed_failure, attempt + 1, config_.testbed_failure_retries, wait.count()));
        env_.sleep(wait);
    }
}

// Packs the run's files and uploads them (retrying); throws GiveBack when the
// store stayed unreachable.
void Worker::store_results(Job& job) {
    const fs::path files = job.work->path / "files";
    fs::create_directories(files);
    fs::create_directories(job.out);
    PackOptions po;
    po.exitcode = job.exitcode;
    po.duration = job.duration;
    po.requester = job.request.requester;
    po.package = job.request.package;
    po.request = job.request.to_stored_message();
    po.log_limit = static_cast<std::uint64_t>(config_.log_limit_mb) * 1024 * 1024;
    pack_results_to(job.out.string(), po, files.string());
    try {
        const ContainerAcl acl = job.request.is_private()
                                     ? ContainerAcl::private_to(job.request.swiftuser.value_or(""))
                                     : ContainerAcl::public_container();
        auto keepalive = [&] { renew(job.delivery); };
        store_retrying("creating container " + job.container, keepalive,
                       [&] { store_.ensure_container(job.container, acl); });
        upload(job.container, job.dir, files.string(), keepalive);
    } catch (const Error& e) {
        throw GiveBack(fmt::format("could not store the results of {} in {}/{}: {}", job.request.package,
                                   job.container, job.dir, e.what()));
    }
}

// Publishes the testcomplete event; its loss is logged, not fatal (the web
// indexer backfills from the store).
void Worker::announce(const Job& job) {
    TestComplete done;
    done.architecture = job.queue.arch;
    done.container = job.container;
    done.duration = job.duration;
    done.exitcode = job.exitcode;
    done.package = job.request.package;
    // What result.tar says, as packed (the one place that decides testpkg-version).
    const Result packed = parse_result_tar(read_file(job.work->path / "files" / "result.tar"));
    if (packed.package && packed.version) done.testpkg_version = *packed.package + " " + *packed.version;
    done.release = job.queue.release;
    done.requester = job.request.requester;
    done.swift_dir = job.dir;
    done.triggers = job.request.triggers;
    done.env = job.request.env;
    try {
        broker_.publish_event(testcomplete_exchange, testcomplete_json(done));
    } catch (const Error& e) {
        log(LogLevel::warning, fmt::format("could not publish testcomplete: {}", e.what()));
    }
}

void Worker::renew(const Delivery& d) {
    try {
        broker_.renew(d);
    } catch (const Error& e) {
        log(LogLevel::warning, fmt::format("could not renew the request's lease: {}", e.what()));
    }
}

void Worker::store_retrying(const std::string& what, const std::function<void()>& keepalive,
                            const std::function<void()>& action) {
    for (int attempt = 1;; ++attempt) {
        keepalive();  // an outage may outlast a lease
        try {
            action();
            return;
        } catch (const Error& e) {
            if (attempt >= config_.upload_retries) throw;
            auto wait = std::chrono::seconds(static_cast<long>(config_.upload_backoff) << (attempt - 1));
            log(LogLevel::warning, fmt::format("{} failed ({}); retry {} of {} in {} s", what, e.what(),
                                               attempt, config_.upload_retries - 1, wait.count()));
            env_.sleep(wait);
        }
    }
}

void Worker::upload(const std::string& container, const std::string& dir, const std::string& files_dir,
                    const std::function<void()>& keepalive) {
    // result.tar last: a client that sees it finds the others.
    for (const RunFile& file : run_file_table) {
        const std::string name(file.name);
        // Streamed from the file: artifacts can be far larger than memory.
        const std::string path = (fs::path(files_dir) / name).string();
        if (!fs::exists(path)) throw StoreError(fmt::format("packed file missing: {}", name));
        PutOptions po;
        po.content_type = file.content_type;
        if (!file.content_encoding.empty()) po.content_encoding = std::string(file.content_encoding);
        store_retrying("upload of " + name, keepalive,
                       [&] { store_.put_file(container, dir + "/" + name, path, po); });
    }
}

}  // namespace apcloud
