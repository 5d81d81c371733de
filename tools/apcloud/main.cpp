// apcloud: command line front end of libautopkgtest-cloud. One function per
// subcommand (the table at the end); each parses nothing itself and calls the
// library; run_main maps errors to exit statuses.
#include <signal.h>
#include <autopkgtest_cloud/access.hpp>
#include <autopkgtest_cloud/admin.hpp>
#include <autopkgtest_cloud/broker.hpp>
#include <autopkgtest_cloud/client.hpp>
#include <autopkgtest_cloud/credentials.hpp>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/excuses.hpp>
#include <autopkgtest_cloud/exit_codes.hpp>
#include <autopkgtest_cloud/file_io.hpp>
#include <autopkgtest_cloud/layout.hpp>
#include <autopkgtest_cloud/log.hpp>
#include <autopkgtest_cloud/pool.hpp>
#include <autopkgtest_cloud/request.hpp>
#include <autopkgtest_cloud/result.hpp>
#include <autopkgtest_cloud/routing.hpp>
#include <autopkgtest_cloud/sinks.hpp>
#include <autopkgtest_cloud/tool.hpp>
#include <autopkgtest_cloud/web.hpp>

#include <CLI/CLI.hpp>
#include <atomic>
#include <ctime>
#include <filesystem>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <thread>

namespace {

using Run = std::function<int()>;

// A file's content, or standard input for "-".
std::string read_input(const std::string& path) {
    if (path == "-") return {std::istreambuf_iterator<char>(std::cin), {}};
    return apcloud::read_file(path);
}

// --broker, which $APCLOUD_AMQP_URL or client.conf's amqp_url may give instead.
void broker_option(CLI::App& cmd, std::string& url) {
    cmd.add_option("--broker", url,
                   "broker URL: amqp://USER@HOST[/VHOST] or sqlite:///PATH (default: $APCLOUD_AMQP_URL, "
                   "client.conf's amqp_url; the password from $APCLOUD_AMQP_PASSWORD or client.conf)");
}

// The broker of --broker or of the tools' settings.
std::unique_ptr<apcloud::Broker> open_broker_of(const std::string& given) {
    const auto settings = apcloud::tool_environment();
    return apcloud::open_broker(apcloud::option_or_setting(given, settings, "APCLOUD_AMQP_URL", "--broker"), {},
                                settings);
}

std::atomic<bool> stop_requested{false};
void on_stop(int) {
    stop_requested = true;
}

// autopkgtest-cloud-worker beside this program (build tree or bin/).
std::string worker_program() {
    namespace fs = std::filesystem;
    fs::path self = fs::read_symlink("/proc/self/exe").parent_path();
    for (auto p :
         {self / "../autopkgtest-cloud-worker/autopkgtest-cloud-worker", self / "autopkgtest-cloud-worker"})
        if (fs::exists(p)) return fs::canonical(p).string();
    return "/usr/bin/autopkgtest-cloud-worker";
}

Run pack(CLI::App& cmd) {
    struct Args {
        std::string out_dir, dest, requester, package;
        apcloud::PackOptions options;
    };
    auto a = std::make_shared<Args>();
    cmd.add_option("output_dir", a->out_dir, "autopkgtest --output-dir")
        ->required()
        ->check(CLI::ExistingDirectory);
    cmd.add_option("--exitcode", a->options.exitcode, "autopkgtest's exit code")->required();
    cmd.add_option("--duration", a->options.duration, "seconds the run took")->required();
    cmd.add_option("--requester", a->requester, "who asked");
    cmd.add_option("--package", a->package, "tested source package (for 'PACKAGE unknown')");
    cmd.add_option("--dest", a->dest, "directory to write the three files to")
        ->required()
        ->check(CLI::ExistingDirectory);
    return [a] {
        if (!a->requester.empty()) a->options.requester = a->requester;
        if (!a->package.empty()) a->options.package = a->package;
        apcloud::pack_results_to(a->out_dir, a->options, a->dest);
        for (const auto& f : apcloud::run_file_table) std::cout << a->dest << "/" << f.name << "\n";
        return apcloud::exit_ok;
    };
}

Run show(CLI::App& cmd) {
    auto path = std::make_shared<std::string>();
    cmd.add_option("result_tar", *path, "path to result.tar, or - for stdin")->required();
    return [path] {
        auto r = apcloud::parse_result_tar(read_input(*path));
        std::cout << "exitcode: " << r.exitcode << "\n"
                  << "outcome: " << apcloud::outcome_name(apcloud::outcome(r.exitcode)) << "\n"
                  << "package: " << r.package.value_or("") << "\n"
                  << "version: " << r.version.value_or("") << "\n"
                  << "duration: " << (r.duration ? std::to_string(*r.duration) : "") << "\n"
                  << "requester: " << r.requester.value_or("") << "\n"
                  << "triggers:";
        if (r.triggers)
            for (const auto& t : *r.triggers) std::cout << ' ' << t;
        std::cout << "\n";
        if (r.summary) std::cout << "summary:\n" << *r.summary;
        return apcloud::exit_ok;
    };
}

Run check_request(CLI::App& cmd) {
    struct Args {
        std::string body = "-", release, arch;
        bool huge = false;
    };
    auto a = std::make_shared<Args>();
    cmd.add_option("message", a->body, "file holding the message, or - for stdin (default)");
    cmd.add_option("--release", a->release, "release, to print the queue name");
    cmd.add_option("--arch", a->arch, "architecture, to print the queue name");
    cmd.add_flag("--huge", a->huge, "a bulk request");
    return [a] {
        auto req = apcloud::parse_request(read_input(a->body));
        std::cout << req.to_message() << "\n";
        if (!a->release.empty() || !a->arch.empty())
            std::cout << "queue: " << apcloud::queue_for(req, a->release, a->arch, a->huge) << "\n";
        return apcloud::exit_ok;
    };
}

Run where(CLI::App& cmd) {
    struct Args {
        std::string release, arch, package, body;
        std::vector<std::string> ppas;
        std::int64_t time = 0;
    };
    auto a = std::make_shared<Args>();
    cmd.add_option("--release", a->release)->required();
    cmd.add_option("--arch", a->arch)->required();
    cmd.add_option("--package", a->package)->required();
    cmd.add_option("--time", a->time, "start of the run, unix seconds")->required();
    cmd.add_option("--body", a->body, "the request message (for the run id hash)");
    cmd.add_option("--ppa", a->ppas, "PPAs of the request");
    return [a] {
        auto run_id = apcloud::make_run_id(a->time, a->body);
        std::cout << apcloud::container_name(a->release, a->ppas) << "\n"
                  << apcloud::result_dir(a->release, a->arch, a->package, run_id) << "/\n";
        return apcloud::exit_ok;
    };
}

Run submit(CLI::App& cmd) {
    struct Args {
        std::string broker, release, arch, body = "-";
        bool huge = false, declare = false, allow_local = false;
        int wait = 0;
    };
    auto a = std::make_shared<Args>();
    broker_option(cmd, a->broker);
    cmd.add_option("--release", a->release, "release")->required();
    cmd.add_option("--arch", a->arch, "architecture")->required();
    cmd.add_option("message", a->body, "file holding the message, or - for stdin (default)");
    cmd.add_flag("--huge", a->huge, "a bulk request (debci-huge-*)");
    cmd.add_flag("--declare", a->declare, "declare the queue first (else a missing queue is an error)");
    cmd.add_flag("--allow-local-sources", a->allow_local,
                 "accept file:// URLs and paths in test-git/build-git");
    cmd.add_option("--wait", a->wait, "wait up to this many seconds for the result, print where it is");
    return [a] {
        apcloud::ValidationOptions options;
        options.allow_local_sources = a->allow_local;
        auto req = apcloud::parse_request(read_input(a->body), options);
        const auto settings = apcloud::tool_environment();
        auto sink = apcloud::open_sink(apcloud::option_or_setting(a->broker, settings, "APCLOUD_AMQP_URL", "--broker"),
                                       a->declare, options, settings);
        if (a->wait <= 0) {
            std::cout << sink->send(req, a->release, a->arch, a->huge) << "\n";
            return apcloud::exit_ok;
        }
        auto done = sink->send_and_wait(req, a->release, a->arch, a->huge, std::chrono::seconds(a->wait));
        if (!done)
            throw apcloud::NotFound("no result for " + req.package + " on " + a->release + "/" + a->arch +
                                    " within " + std::to_string(a->wait) + " s");
        std::cout << apcloud::queue_for(req, a->release, a->arch, a->huge) << "\nexitcode: " << done->exitcode
                  << "\ncontainer: " << done->container << "\ndirectory: " << done->swift_dir << "\n";
        return apcloud::exit_ok;
    };
}

// Where the web service's files (openapi.yaml, templates, static) are: the
// source tree's web/ for a build-tree program, else the installed share directory.
std::string share_dir() {
    if (const char* dir = std::getenv("APCLOUD_SHARE_DIR")) return dir;
    if (std::filesystem::exists(APCLOUD_SOURCE_SHARE_DIR)) return APCLOUD_SOURCE_SHARE_DIR;
    return APCLOUD_INSTALLED_SHARE_DIR;
}

// The web service of `apcloud up`, on a thread of its own; stops the pool when it fails.
std::thread start_web(const apcloud::LocalSite& site) {
    auto config =
        apcloud::parse_web_config(apcloud::read_file(site.web_config_path()), apcloud::process_environment());
    return std::thread([config] {
        const int status = apcloud::run_main("apcloud up: web", [&] {
#if APCLOUD_WITH_WEB
            apcloud::run_web_service(config, stop_requested, [&](std::uint16_t port) {
                std::cout << "web:    http://" << config.address << ":" << port << "/" << std::endl;
            });
#endif
            return static_cast<int>(apcloud::exit_ok);
        });
        if (status != apcloud::exit_ok) stop_requested = true;
    });
}

Run up(CLI::App& cmd) {
    struct Args {
        std::string data = "apcloud-data";
        int workers = 1;
        std::uint16_t port = 8080;
        bool no_web = false;
        std::vector<std::string> releases, arches;
    };
    auto a = std::make_shared<Args>();
    cmd.add_option("--data", a->data,
                   "data directory (results/, queue.db, worker.conf, web.conf, web/, log/)");
    cmd.add_option("--workers", a->workers,
                   "number of worker processes (the null runner shares this host: keep 1)");
    cmd.add_option("--release", a->releases, "releases to serve (default: unstable)");
    cmd.add_option("--arch", a->arches, "architectures to serve (default: this machine's)");
    cmd.add_option("--port", a->port,
                   "web service port on 127.0.0.1 for a new web.conf (default 8080; 0: any)");
    cmd.add_flag("--no-web", a->no_web, "run the workers only");
    return [a] {
        if (a->releases.empty()) a->releases = {"unstable"};
        if (a->arches.empty()) a->arches = {APCLOUD_HOST_ARCH};
        const auto env = apcloud::process_environment();
        const auto user = env.find("USER");
        auto site = apcloud::prepare_local_site(a->data, a->releases, a->arches, a->port, share_dir(),
                                                user == env.end() ? std::string() : user->second);
        std::cout << "store:  " << site.store_url() << "\nbroker: " << site.broker_url()
                  << "\nconfig: " << site.config_path() << "\nlogs:   " << site.log_dir() << std::endl;
        struct sigaction sa {};
        sa.sa_handler = on_stop;
        sigaction(SIGINT, &sa, nullptr);
        sigaction(SIGTERM, &sa, nullptr);
        std::thread web;
        if (!a->no_web && APCLOUD_WITH_WEB) {
            apcloud::log_to_file(site.log_dir() + "/web.log");
            std::cout << "web log: " << site.log_dir() << "/web.log" << std::endl;
            web = start_web(site);
        }
        std::cout << a->workers << " worker(s) running; Ctrl-C stops them after their current test"
                  << std::endl;
        apcloud::PoolOptions po;
        po.worker_program = worker_program();
        po.worker_args = {"-c", site.config_path()};
        po.workers = a->workers;
        po.log_dir = site.log_dir();
        apcloud::run_worker_pool(po, stop_requested);
        if (web.joinable()) web.join();
        return apcloud::exit_ok;
    };
}

Run index_rebuild(CLI::App& cmd) {
    struct Args {
        std::string index, store;
    };
    auto a = std::make_shared<Args>();
    cmd.add_option("--index", a->index, "the index directory (web.conf's data_dir + /index)")->required();
    cmd.add_option("--store", a->store,
                   "store URL: file:///..., swift+https://... (default: $APCLOUD_STORE_URL, client.conf's store_url)");
    return [a] {
#if APCLOUD_WITH_WEB
        const auto settings = apcloud::tool_environment();
        const auto n = apcloud::rebuild_index(
            a->index, apcloud::option_or_setting(a->store, settings, "APCLOUD_STORE_URL", "--store"), {}, settings);
        std::cout << n << " runs indexed in " << a->index << " (the previous index is in " << a->index
                  << ".old)\n";
        return static_cast<int>(apcloud::exit_ok);
#else
        throw apcloud::ConfigError("this build has no web service (meson option web)");
#endif
    };
}

Run listen(CLI::App& cmd) {
    struct Args {
        std::string broker, exchange = apcloud::testcomplete_exchange;
        int count = 0, timeout = 0;
    };
    auto a = std::make_shared<Args>();
    broker_option(cmd, a->broker);
    cmd.add_option("--exchange", a->exchange, "teststatus.fanout or testcomplete.fanout");
    cmd.add_option("--count", a->count, "stop after this many events");
    cmd.add_option("--timeout", a->timeout, "stop after this many seconds without an event");
    return [a] {
        auto broker = open_broker_of(a->broker);
        auto sub = broker->subscribe(a->exchange);
        for (int n = 0; a->count == 0 || n < a->count; ++n) {
            auto event = sub->next(std::chrono::seconds(a->timeout > 0 ? a->timeout : 1000000));
            if (!event) return static_cast<int>(apcloud::exit_not_found);
            std::cout << *event << std::endl;
        }
        return static_cast<int>(apcloud::exit_ok);
    };
}

Run queues(CLI::App& cmd) {
    struct Args {
        std::string broker;
        std::vector<std::string> releases, arches;
    };
    auto a = std::make_shared<Args>();
    broker_option(cmd, a->broker);
    cmd.add_option("--release", a->releases, "release")->required();
    cmd.add_option("--arch", a->arches, "architecture")->required();
    return [a] {
        auto broker = open_broker_of(a->broker);
        for (const auto& [queue, depth] :
             apcloud::queue_depths(*broker, apcloud::queue_names(a->releases, a->arches)))
            std::cout << queue << " " << (depth ? std::to_string(*depth) : std::string("-")) << "\n";
        return apcloud::exit_ok;
    };
}

struct DeadArgs {
    std::string broker, queue;
    apcloud::DeadLetterSelection selection;
    bool json = false;
};

// The options replay and drop share: the queue and what to take (one of --uuid / --all, else exit 2).
std::shared_ptr<DeadArgs> dead_options(CLI::App& cmd, const char* verb) {
    auto a = std::make_shared<DeadArgs>();
    broker_option(cmd, a->broker);
    cmd.add_option("queue", a->queue, "the dead-letter queue (QUEUE.dead; .dead is added when missing)")
        ->required();
    auto* uuid = cmd.add_option("--uuid", a->selection.uuids,
                                std::string("the request to ") + verb + " (its uuid parameter; repeatable)");
    cmd.add_flag("--all", a->selection.all, std::string("every message of the queue"))->excludes(uuid);
    cmd.add_flag("--json", a->json, "print what was taken as JSON (as dead list --json)");
    cmd.callback([a] {
        if (!a->selection.all && a->selection.uuids.empty())
            throw CLI::RequiredError("--uuid UUID or --all (select what to take)");
    });
    return a;
}

void print_dead_letters(const std::vector<apcloud::DeadLetter>& letters, bool json) {
    std::cout << (json ? apcloud::dead_letters_json(letters) : apcloud::format_dead_letters(letters));
}

Run dead_list(CLI::App& cmd) {
    struct Args {
        std::string broker;
        std::vector<std::string> queues, releases, arches;
        std::size_t limit = apcloud::default_dead_letter_limit;
        bool json = false;
    };
    auto a = std::make_shared<Args>();
    cmd.add_option("queue", a->queues, "dead-letter queues (QUEUE.dead; .dead is added when missing)");
    broker_option(cmd, a->broker);
    cmd.add_option("--release", a->releases, "without QUEUE: every queue of these releases (repeatable)");
    cmd.add_option("--arch", a->arches, "without QUEUE: every queue of these architectures (repeatable)");
    cmd.add_option("--limit", a->limit, "most messages listed per queue")->check(CLI::PositiveNumber);
    cmd.add_flag("--json", a->json, "print a JSON list for programs");
    cmd.footer(
        "Example: apcloud dead list --broker sqlite:///srv/apcloud/queue.db --release noble --arch amd64\n"
        "Lists each message with its position, the reason it was dead-lettered and the request's\n"
        "package, release/arch, uuid and requester. Nothing is consumed. Queues that never had a\n"
        "dead letter are skipped when listing every configured queue.");
    cmd.callback([a] {
        if (a->queues.empty() && (a->releases.empty() || a->arches.empty()))
            throw CLI::RequiredError("QUEUE..., or --release and --arch");
    });
    return [a] {
        auto broker = open_broker_of(a->broker);
        const bool all = a->queues.empty();
        auto queues = all ? apcloud::queue_names(a->releases, a->arches) : a->queues;
        print_dead_letters(apcloud::list_dead_letters(*broker, queues, all, a->limit), a->json);
        return apcloud::exit_ok;
    };
}

Run dead_replay(CLI::App& cmd) {
    auto a = dead_options(cmd, "move back");
    cmd.footer(
        "Example: apcloud dead replay --broker sqlite:///srv/apcloud/queue.db debci-noble-amd64.dead \\\n"
        "             --uuid 0b6bd1e4-5a39-4c0c-9b0a-3a1d1c7f6e52\n"
        "Moves the selected messages back to debci-noble-amd64 (published with a confirm, then\n"
        "acked in the dead-letter queue: a crash duplicates at worst), keeps the others in order,\n"
        "and prints what it moved.");
    return [a] {
        auto broker = open_broker_of(a->broker);
        const std::string dead = apcloud::dead_letter_queue_name(a->queue);
        auto done =
            apcloud::replay_dead_letters(*broker, dead, a->selection, [&](const apcloud::DeadLetter& d) {
                if (!a->json)
                    std::cout << "moved to " << apcloud::original_queue_name(dead) << ": "
                              << apcloud::format_dead_letters({d});
            });
        if (a->json) print_dead_letters(done.taken, true);
        std::cerr << done.taken.size() << " moved back to " << apcloud::original_queue_name(dead) << ", "
                  << done.kept << " kept in " << dead << "\n";
        return apcloud::exit_ok;
    };
}

Run dead_drop(CLI::App& cmd) {
    auto a = dead_options(cmd, "drop");
    cmd.footer(
        "Example: apcloud dead drop --broker sqlite:///srv/apcloud/queue.db debci-noble-amd64.dead --all\n"
        "Prints each selected message, then removes it for good; keeps the others in order.");
    return [a] {
        auto broker = open_broker_of(a->broker);
        const std::string dead = apcloud::dead_letter_queue_name(a->queue);
        auto done =
            apcloud::drop_dead_letters(*broker, dead, a->selection, [&](const apcloud::DeadLetter& d) {
                if (!a->json) std::cout << "dropped: " << apcloud::format_dead_letters({d});
            });
        if (a->json) print_dead_letters(done.taken, true);
        std::cerr << done.taken.size() << " dropped, " << done.kept << " kept in " << dead << "\n";
        return apcloud::exit_ok;
    };
}

Run running(CLI::App& cmd) {
    struct Args {
        std::string url;
        bool json = false;
    };
    auto a = std::make_shared<Args>();
    cmd.add_option(
        "--url", a->url,
        "the web service (default: $APCLOUD_WEB_URL, else " + std::string(apcloud::default_web_url) + ")");
    cmd.add_flag("--json", a->json, "print a JSON list for programs");
    cmd.footer(
        "Example: apcloud running --url https://autopkgtest.example.org\n"
        "Reads the service's /static/running.json (and, from our service, which tests are stale)\n"
        "and prints package, release, arch, running time, triggers and whether it is stale.");
    return [a] {
        const auto tests =
            apcloud::fetch_running_tests(apcloud::resolve_web_url(a->url, apcloud::tool_environment()));
        std::cout << (a->json ? apcloud::running_tests_json(tests) : apcloud::format_running_tests(tests));
        return apcloud::exit_ok;
    };
}

Run cancel(CLI::App& cmd) {
    struct Args {
        std::string store, uuid, by;
    };
    auto a = std::make_shared<Args>();
    cmd.add_option("--store", a->store,
                   "the store the workers use: file:///..., swift+https://... (default: $APCLOUD_STORE_URL, "
                   "client.conf's store_url; credentials from the environment or client.conf, as the worker's)");
    cmd.add_option("uuid", a->uuid, "the request's uuid (from run-autopkgtest, the request API or /queued)")
        ->required();
    cmd.add_option("--by", a->by, "who cancels it, recorded with it (default: $USER)");
    cmd.footer(
        "Example: apcloud cancel --store file:///srv/apcloud/results 3f2a9c1e-...\n"
        "A queued request is acked unrun by the worker that takes it; a running one stops at its next\n"
        "status tick, storing nothing. For operators; users cancel theirs through the web service.");
    return [a] {
        const auto env = apcloud::tool_environment();
        std::string by = a->by;
        if (by.empty()) by = env.count("USER") ? env.at("USER") : std::string("operator");
        auto store = apcloud::open_store(apcloud::option_or_setting(a->store, env, "APCLOUD_STORE_URL", "--store"), {}, env);
        apcloud::cancel_request(*store, a->uuid, by);
        std::cout << "cancelled " << a->uuid << "\n";
        return apcloud::exit_ok;
    };
}

// Where the API keys are: --keys, else the keys_file of --config (web.conf), else DATA_DIR/api-keys of it.
std::string keys_path(const std::string& keys, const std::string& config) {
    if (!keys.empty()) return keys;
    if (config.empty()) throw apcloud::ValidationError("--keys", "", "give --keys FILE or --config web.conf");
    auto c = apcloud::parse_web_config(apcloud::read_file(config), apcloud::process_environment());
    return c.keys_file.empty() ? c.data_dir + "/api-keys" : c.keys_file;
}

struct KeysArgs {
    std::string keys, config, user;
    int expires_days = 0;
};

std::shared_ptr<KeysArgs> keys_options(CLI::App& cmd) {
    auto a = std::make_shared<KeysArgs>();
    cmd.add_option("--keys", a->keys, "the keys file (default: the web service's, from --config)");
    cmd.add_option("-c,--config", a->config, "the web service's web.conf");
    return a;
}

Run keys_create(CLI::App& cmd) {
    auto a = keys_options(cmd);
    cmd.add_option("user", a->user, "whom the key authenticates")->required();
    cmd.add_option("--expires-days", a->expires_days, "the key stops working after this many days (0: never)")
        ->check(CLI::NonNegativeNumber);
    cmd.footer(
        "Example: apcloud keys create alice -c /etc/autopkgtest-cloud/web.conf --expires-days 365\n"
        "Prints the key once; only its SHA-256 is stored.");
    return [a] {
        const auto now = static_cast<std::int64_t>(std::time(nullptr));
        const auto k = apcloud::create_api_key(keys_path(a->keys, a->config), a->user, now,
                                               a->expires_days ? now + 86400LL * a->expires_days : 0);
        std::cout << k.key << "\n";
        std::cerr << "key " << k.record.id << " for " << k.record.user
                  << ": send it as 'Authorization: Bearer KEY'; it is not shown again\n";
        return apcloud::exit_ok;
    };
}

Run keys_revoke(CLI::App& cmd) {
    auto a = keys_options(cmd);
    cmd.add_option("id", a->user, "a key's id, or a user (every key of theirs)")->required();
    return [a] {
        std::cout << apcloud::revoke_api_keys(keys_path(a->keys, a->config), a->user) << " revoked\n";
        return apcloud::exit_ok;
    };
}

Run keys_list(CLI::App& cmd) {
    auto a = keys_options(cmd);
    return [a] {
        const auto now = static_cast<std::int64_t>(std::time(nullptr));
        for (const auto& r : apcloud::read_api_keys(keys_path(a->keys, a->config))) {
            const char* state = r.revoked ? "revoked" : r.expires && r.expires <= now ? "expired" : "active";
            std::cout << r.id << " " << r.user << " " << state << " created "
                      << apcloud::format_submit_time(r.created)
                      << (r.expires ? " expires " + apcloud::format_submit_time(r.expires) : std::string())
                      << "\n";
        }
        return apcloud::exit_ok;
    };
}

// Every subcommand: name ("group command" for nested ones), help, and the
// function that declares its options and returns what it runs.
const struct {
    const char* name;
    const char* help;
    Run (*setup)(CLI::App&);
} commands[] = {
    {"pack", "Pack an autopkgtest output directory into result.tar, log.gz, artifacts.tar.gz", pack},
    {"show", "Print what a result.tar says", show},
    {"check-request", "Validate a queue message; print it canonically and its queue", check_request},
    {"where", "Print the container and directory of a run", where},
    {"submit", "Validate a request and publish it to the queue chosen by the routing rules", submit},
    {"up", "Run a pool of workers on this machine (embedded broker, directory store)", up},
    {"listen", "Print events of a fanout exchange, one per line", listen},
    {"queues", "Print the number of requests waiting in each queue", queues},
    {"running", "Print the running tests as the web service shows them", running},
    {"cancel", "Cancel a queued or running request by its uuid", cancel},
    {"dead list", "List dead-lettered requests with the reason each was dead-lettered", dead_list},
    {"dead replay", "Move dead-lettered requests back to their queue", dead_replay},
    {"dead drop", "Remove dead-lettered requests for good", dead_drop},
    {"index rebuild", "Rebuild the web service's results index from every container of the store",
     index_rebuild},
    {"keys create", "Make an API key for the request API (printed once, stored as a digest)", keys_create},
    {"keys revoke", "Revoke an API key, or every key of a user", keys_revoke},
    {"keys list", "List the API keys: id, user, state, dates (never the keys)", keys_list},
};

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"apcloud: autopkgtest-cloud requests, layout and result files"};
    app.set_version_flag("--version", std::string("apcloud ") + APCLOUD_VERSION);
    app.require_subcommand(1);
    std::map<const CLI::App*, Run> runs;
    std::map<std::string, CLI::App*> groups;
    for (const auto& c : commands) {
        std::string name = c.name;
        CLI::App* parent = &app;
        if (auto space = name.find(' '); space != std::string::npos) {
            auto& group = groups[name.substr(0, space)];
            if (!group) {
                group = app.add_subcommand(name.substr(0, space), "");
                group->require_subcommand(1);
            }
            parent = group;
            name = name.substr(space + 1);
        }
        CLI::App* cmd = parent->add_subcommand(name, c.help);
        runs[cmd] = c.setup(*cmd);
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? apcloud::exit_ok : apcloud::exit_usage;
    }
    return apcloud::run_main("apcloud", [&] {
        for (const auto& [cmd, run] : runs)
            if (cmd->parsed()) return run();
        return static_cast<int>(apcloud::exit_usage);
    });
}
