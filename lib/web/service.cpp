// The web service's moving parts: threads that ingest testcomplete events, backfill
// from the store, publish the database, read the queues and the running tests, and
// the HTTP server answering with WebApp. Also rebuild_index.
#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <ctime>
#include <filesystem>
#include <map>
#include <thread>

#include "autopkgtest_cloud/admin.hpp"
#include "autopkgtest_cloud/broker.hpp"
#include "autopkgtest_cloud/client.hpp"
#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/events.hpp"
#include "autopkgtest_cloud/file_io.hpp"
#include "autopkgtest_cloud/result.hpp"
#include "autopkgtest_cloud/results_index.hpp"
#include "autopkgtest_cloud/routing.hpp"
#include "autopkgtest_cloud/store.hpp"
#include "autopkgtest_cloud/web.hpp"
#include "core/logging.hpp"
#include "core/time_text.hpp"
#include "http/http_client.hpp"
#include "http/http_server.hpp"
#include "web/requests.hpp"
#include "web/web_app.hpp"
#include "web/webhooks.hpp"

namespace fs = std::filesystem;

namespace apcloud {

namespace {

const detail::Logger logger("web");

// Sleeps until `seconds` passed or `stop` is set; false when stopping.
bool wait_for(const std::atomic<bool>& stop, double seconds) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!stop.load()) {
        if (std::chrono::steady_clock::now() >= until) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
}

}  // namespace

std::uint64_t rebuild_index(const std::string& dir, const std::string& store_url,
                            const StoreCredentials& credentials, const Environment& env) {
    auto store = open_store(store_url, credentials, env);
    const std::string fresh = dir + ".rebuild";
    std::error_code ec;
    fs::remove_all(fresh, ec);
    std::uint64_t n = 0;
    {
        ResultsIndex index(fresh);
        backfill_index(*store, index);
        n = index.size();
    }
    fs::remove_all(dir + ".old", ec);
    if (fs::exists(dir)) fs::rename(dir, dir + ".old");
    fs::rename(fresh, dir);
    logger.info("rebuilt the index in {}: {} runs", dir, n);
    return n;
}

namespace {

// Every part of a running service.
class Service {
public:
    Service(const WebConfig& config, const std::atomic<bool>& stop)
        : config_(config),
          stop_(stop),
          store_(open_store(config.store_url, config.store_credentials)),
          index_(config.data_dir + "/index"),
          running_(std::chrono::seconds(config.status_interval)),
          hooks_(web::load_webhook_settings(config)) {
        fs::create_directories(config.data_dir + "/published");
        if (!hooks_.github.empty() || !hooks_.gitlab.empty())
            outbox_ = std::make_unique<web::StatusOutbox>(config.data_dir + "/statuses.db");
    }

    void run(const std::function<void(std::uint16_t)>& on_listening) {
        publish();
        threads_.emplace_back([this] { loop("ingest", [this] { ingest(); }); });
        threads_.emplace_back([this] { loop("status", [this] { watch_status(); }); });
        threads_.emplace_back([this] { loop("queues", [this] { watch_queues(); }); });
        threads_.emplace_back([this] { loop("backfill", [this] { backfill_periodically(); }); });
        threads_.emplace_back([this] { loop("publish", [this] { publish_periodically(); }); });
        web::WebSettings settings;
        settings.releases = config_.releases;
        settings.arches = config_.architectures;
        settings.status_interval = std::chrono::seconds(config_.status_interval);
        if (!config_.share_dir.empty()) settings.openapi_path = config_.share_dir + "/openapi.yaml";
        settings.share_dir = config_.share_dir;
        settings.banner_file = config_.banner_file;
        web::RequestSettings requests;
        requests.releases = config_.releases;
        requests.arches = config_.architectures;
        requests.keys_file = config_.keys_file.empty() ? config_.data_dir + "/api-keys" : config_.keys_file;
        requests.access_file = config_.access_file;
        requests.trusted_user_header = config_.user_header;
        requests.trusted_proxies = config_.trusted_proxies;
        requests.requests_per_minute = config_.requests_per_minute;
        requests.burst = config_.burst;
        requests.allow_local_sources = config_.allow_local_sources;
        requests.supersede = config_.supersede;
        web::RequestApi request_api(
            [this] { return open_broker(config_.broker_url, config_.broker_credentials); }, index_, running_,
            state_, requests, store_.get());
        std::unique_ptr<web::WebhookApi> webhooks;
        if (outbox_) {
            webhooks = std::make_unique<web::WebhookApi>(request_api, index_, *outbox_, hooks_,
                                                         [this] { nudge_statuses(); });
            threads_.emplace_back([this, &webhooks] { loop("statuses", [&] { send_statuses(*webhooks); }); });
            logger.info("webhooks of {} GitHub and {} GitLab projects; statuses sent with run pages under {}",
                        hooks_.github.size(), hooks_.gitlab.size(), hooks_.public_url);
        }
        web::WebApp app(index_, running_, state_, store_.get(), settings, &metrics_, &request_api,
                        webhooks.get());
        http::ServerOptions options;
        options.address = config_.address;
        options.port = config_.port;
        options.threads = config_.threads;
        http::Server server(options, [&app](const http::ServerRequest& r) { return app.handle(r); });
        logger.info("listening on http://{}:{}/", config_.address, server.port());
        if (on_listening) on_listening(server.port());
        while (!stop_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
        logger.info("stopping");
        server.stop();
        for (auto& t : threads_) t.join();
    }

private:
    // Runs a part until the service stops, restarting it after an error
    // (a broker or store outage) with a growing pause.
    void loop(const char* part, const std::function<void()>& body) {
        double pause = 1;
        while (!stop_.load()) {
            try {
                body();
                return;
            } catch (const std::exception& e) {
                logger.error("{}: {}; retrying in {:.0f} s", part, e.what(), pause);
                if (!wait_for(stop_, pause)) return;
                pause = std::min(pause * 2, 60.0);
            }
        }
    }

    // The commit statuses of webhooks' requests: finals as soon as the
    // ingest indexed their results (it nudges), errors for those not started
    // in time, each sent (and retried) from the outbox.
    void send_statuses(const web::WebhookApi& hooks) {
        http::HttpClient client;
        do {
            std::map<std::string, std::string> dead;
            {
                std::lock_guard<std::mutex> lock(dead_mutex_);
                dead = dead_lettered_;
            }
            hooks.sweep(index_, running_, detail::unix_now(), dead);
            hooks.deliver(client, detail::unix_now());
            std::unique_lock<std::mutex> lock(nudge_mutex_);
            nudge_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return nudged_ || stop_.load(); });
            nudged_ = false;
        } while (!stop_.load());
    }

    void nudge_statuses() {
        {
            std::lock_guard<std::mutex> lock(nudge_mutex_);
            nudged_ = true;
        }
        nudge_cv_.notify_all();
    }

    std::string event_queue() const { return fmt::format("apcloud.web.{}.testcomplete", config_.name); }

    // testcomplete events from this replica's own durable queue: each run is
    // read from the store and indexed, then the event acked.
    void ingest() {
        auto broker = open_broker(config_.broker_url, config_.broker_credentials);
        broker->bind_queue(event_queue(), testcomplete_exchange);
        while (!stop_.load()) {
            auto d = broker->consume({event_queue()}, std::chrono::milliseconds(500));
            if (!d) continue;
            if (ingest_event(d->body))
                broker->ack(*d);
            else
                broker->requeue(*d);
        }
    }

    // False when the event must be tried again (store unreachable).
    bool ingest_event(const std::string& body) {
        TestComplete ev;
        try {
            ev = parse_testcomplete(body);
        } catch (const ParseError& e) {
            logger.warn("ignoring a malformed testcomplete event: {}", e.what());
            return true;
        }
        const auto container = parse_container_name(ev.container);
        const auto where = parse_run_dir(ev.swift_dir);
        if (!container || !where) {
            logger.warn("ignoring a testcomplete event for {}/{}: not a result of ours", ev.container,
                        ev.swift_dir);
            return true;
        }
        try {
            // The store may not list an object at once (Swift is eventually consistent).
            std::optional<IndexedRun> run;
            for (int attempt = 0; attempt < 5 && !run; ++attempt) {
                run = read_indexed_run(*store_, *container, *where);
                if (!run && !wait_for(stop_, 0.2 * (1 << attempt))) return false;
            }
            if (!run) {
                logger.warn("{}/{} announced but not in the store; the backfill will add it", ev.container,
                            ev.swift_dir);
                return true;
            }
            const std::size_t added = index_.add({*run});
            if (outbox_) nudge_statuses();
            const double lag = static_cast<double>(detail::unix_now() - run->started() -
                                                   static_cast<std::int64_t>(ev.duration));
            metrics_.observe_ingest(added, std::max(0.0, lag));
            return true;
        } catch (const ParseError& e) {
            logger.warn("skipping {}/{}: {}", ev.container, ev.swift_dir, e.what());
            return true;
        } catch (const Error& e) {
            logger.warn("cannot index {}/{} yet: {}", ev.container, ev.swift_dir, e.what());
            wait_for(stop_, 2);
            return false;
        }
    }

    void watch_status() {
        auto broker = open_broker(config_.broker_url, config_.broker_credentials);
        auto sub = broker->subscribe(teststatus_exchange);
        while (!stop_.load()) {
            if (auto e = sub->next(std::chrono::milliseconds(500))) running_.apply(*e, detail::unix_now());
            running_.expire(detail::unix_now());
        }
    }

    void watch_queues() {
        auto broker = open_broker(config_.broker_url, config_.broker_credentials);
        const auto queues = queue_names(config_.releases, config_.architectures);
        do {
            std::map<std::string, std::uint64_t> sizes;
            std::map<std::string, std::vector<std::string>> bodies;
            for (const auto& q : queues) {
                try {
                    sizes[q] = broker->queue_depth(q);
                    if (sizes[q] > 0) bodies[q] = broker->peek(q, 100);
                } catch (const NotFound&) {
                    sizes[q] = 0;  // not declared yet: no worker ever ran
                }
            }
            if (outbox_) watch_dead_letters(*broker, queues);
            // Cancelled requests wait for a worker to drop them: not shown.
            std::set<std::string> cancelled;
            try {
                cancelled = cancelled_requests(*store_);
            } catch (const Error& e) {
                logger.warn("cannot read the cancelled requests: {}", e.what());
            }
            state_.set_queues(std::make_shared<web::QueueSnapshot>(web::QueueSnapshot::make(
                config_.releases, config_.architectures, sizes, bodies, detail::unix_now(), cancelled)));
            state_.set_statistics(std::make_shared<std::vector<ReleaseArchStats>>(statistics()));
        } while (wait_for(stop_, config_.queue_interval));
    }

    // The requests of the upstream queues' dead-letter queues (the ones
    // webhooks queue), for their statuses to end at once in an error.
    void watch_dead_letters(Broker& broker, const std::vector<std::string>& queues) {
        std::map<std::string, std::string> dead;
        for (const auto& q : queues) {
            if (parse_queue_name(q).context != QueueContext::upstream) continue;
            try {
                const std::string dq = dead_letter_queue_name(q);
                const auto depth = broker.queue_depth(dq);
                if (depth == 0) continue;
                for (const auto& m : broker.peek_messages(dq, std::min<std::uint64_t>(depth, 1000)))
                    if (auto uuid = summarize_request(m.body).uuid) dead[*uuid] = m.reason;
            } catch (const NotFound&) {
                // no dead letter yet
            }
        }
        std::lock_guard<std::mutex> lock(dead_mutex_);
        dead_lettered_ = std::move(dead);
    }

    // Statistics are read from the index's aggregates when runs were added
    // since the last read (a new run shows within a queue interval), and at
    // least every statistics_interval.
    std::vector<ReleaseArchStats> statistics() {
        const std::uint64_t runs = index_.size();
        if (!stats_ || runs != stats_runs_ || detail::unix_now() - stats_at_ >= config_.statistics_interval) {
            stats_ = index_.statistics();
            stats_at_ = detail::unix_now();
            stats_runs_ = runs;
        }
        return *stats_;
    }

    void backfill_periodically() {
        do {
            const auto t0 = std::chrono::steady_clock::now();
            const std::size_t added = backfill_index(*store_, index_, &stop_);
            logger.info("backfill added {} runs in {:.1f} s", added,
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
            metrics_.observe_ingest(added, 0);
        } while (config_.backfill_interval > 0 && wait_for(stop_, config_.backfill_interval));
    }

    void publish_periodically() {
        while (wait_for(stop_, config_.publish_interval)) publish();
    }

    // A new snapshot when the index changed: written beside the previous one,
    // then switched to in one step, so a download never mixes two.
    void publish() {
        const std::uint64_t size = index_.size();
        if (published_size_ == size && state_.publication()) return;
        const std::string dir = config_.data_dir + "/published";
        const std::string path = fmt::format("{}/autopkgtest-{}-{}.db", dir, detail::unix_now(), size);
        auto p = std::make_shared<web::Publication>();
        p->sha256 = index_.snapshot(path);
        p->path = path;
        p->published_at = detail::unix_now();
        p->bytes = fs::file_size(path);
        auto previous = state_.publication();
        state_.set_publication(p);
        published_size_ = size;
        // Older snapshots go; the previous one stays for downloads in progress.
        for (const auto& e : fs::directory_iterator(dir)) {
            const std::string f = e.path().string();
            if (f != path && (!previous || f != previous->path)) fs::remove(e.path());
        }
    }

    const WebConfig& config_;
    const std::atomic<bool>& stop_;
    std::unique_ptr<Store> store_;
    ResultsIndex index_;
    web::RunningTests running_;
    web::WebState state_;
    web::Metrics metrics_;
    std::vector<std::thread> threads_;
    std::optional<std::vector<ReleaseArchStats>> stats_;
    std::int64_t stats_at_ = 0;
    std::uint64_t stats_runs_ = 0;
    std::uint64_t published_size_ = static_cast<std::uint64_t>(-1);
    web::WebhookSettings hooks_;
    std::unique_ptr<web::StatusOutbox> outbox_;  ///< when webhooks are configured
    std::mutex dead_mutex_;
    std::map<std::string, std::string> dead_lettered_;  ///< under dead_mutex_: uuid to reason
    std::mutex nudge_mutex_;
    std::condition_variable nudge_cv_;
    bool nudged_ = false;
};

}  // namespace

void run_web_service(const WebConfig& config, const std::atomic<bool>& stop,
                     const std::function<void(std::uint16_t)>& on_listening) {
    Service service(config, stop);
    service.run(on_listening);
}

}  // namespace apcloud
