// apcloud: command line front end of libautopkgtest-cloud. Parses arguments,
// calls the library, maps errors to exit codes; no logic of its own.
#include <autopkgtest_cloud/broker.hpp>
#include <autopkgtest_cloud/client.hpp>
#include <autopkgtest_cloud/pool.hpp>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/exit_codes.hpp>
#include <autopkgtest_cloud/layout.hpp>
#include <autopkgtest_cloud/request.hpp>
#include <autopkgtest_cloud/result.hpp>
#include <autopkgtest_cloud/routing.hpp>

#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

namespace {

// Exit codes of every apcloud command (documented in README.md).
enum Exit { ok = 0, error = 1, usage = 2, bad_input = 3, not_found = 4 };

std::string read_all(std::istream& in) { return {std::istreambuf_iterator<char>(in), {}}; }

std::string read_file(const std::string& path) {
    if (path == "-") return read_all(std::cin);
    std::ifstream in(path, std::ios::binary);
    if (!in) throw apcloud::NotFound("cannot open " + path);
    return read_all(in);
}

std::atomic<bool> stop_requested{false};
void on_stop(int) { stop_requested = true; }

// autopkgtest-cloud-worker beside this program (build tree or bin/).
std::string worker_program() {
    namespace fs = std::filesystem;
    fs::path self = fs::read_symlink("/proc/self/exe").parent_path();
    for (auto p : {self / "../autopkgtest-cloud-worker/autopkgtest-cloud-worker", self / "autopkgtest-cloud-worker"})
        if (fs::exists(p)) return fs::canonical(p).string();
    return "/usr/bin/autopkgtest-cloud-worker";
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"apcloud: autopkgtest-cloud requests, layout and result files"};
    app.require_subcommand(1);

    // pack
    auto* pack = app.add_subcommand("pack", "Pack an autopkgtest output directory into result.tar, log.gz, artifacts.tar.gz");
    std::string out_dir, dest;
    apcloud::PackOptions popt;
    std::string requester, package;
    pack->add_option("output_dir", out_dir, "autopkgtest --output-dir")->required()->check(CLI::ExistingDirectory);
    pack->add_option("--exitcode", popt.exitcode, "autopkgtest's exit code")->required();
    pack->add_option("--duration", popt.duration, "seconds the run took")->required();
    pack->add_option("--requester", requester, "who asked");
    pack->add_option("--package", package, "tested source package (for 'PACKAGE unknown')");
    pack->add_option("--dest", dest, "directory to write the three files to")->required()->check(CLI::ExistingDirectory);

    // show
    auto* show = app.add_subcommand("show", "Print what a result.tar says");
    std::string tar_path;
    show->add_option("result_tar", tar_path, "path to result.tar, or - for stdin")->required();

    // check-request
    auto* check = app.add_subcommand("check-request", "Validate a queue message; print it canonically and its queue");
    std::string body_path = "-", release, arch;
    bool huge = false;
    check->add_option("message", body_path, "file holding the message, or - for stdin (default)");
    check->add_option("--release", release, "release, to print the queue name");
    check->add_option("--arch", arch, "architecture, to print the queue name");
    check->add_flag("--huge", huge, "a bulk request");

    // layout
    auto* where = app.add_subcommand("where", "Print the container and directory of a run");
    std::string wpkg, wbody = "";
    std::vector<std::string> wppas;
    std::int64_t wtime = 0;
    where->add_option("--release", release)->required();
    where->add_option("--arch", arch)->required();
    where->add_option("--package", wpkg)->required();
    where->add_option("--time", wtime, "start of the run, unix seconds")->required();
    where->add_option("--body", wbody, "the request message (for the run id hash)");
    where->add_option("--ppa", wppas, "PPAs of the request");

    // submit
    auto* submit = app.add_subcommand("submit", "Validate a request and publish it to the queue chosen by the routing rules");
    std::string broker_url;
    bool declare = false;
    submit->add_option("--broker", broker_url, "broker URL (sqlite:///... or amqp://...)")->required();
    submit->add_option("--release", release, "release")->required();
    submit->add_option("--arch", arch, "architecture")->required();
    submit->add_option("message", body_path, "file holding the message, or - for stdin (default)");
    submit->add_flag("--huge", huge, "a bulk request (debci-huge-*)");
    submit->add_flag("--declare", declare, "declare the queue first (else a missing queue is an error)");
    bool allow_local = false;
    submit->add_flag("--allow-local-sources", allow_local, "accept file:// URLs and paths in test-git/build-git");

    int wait_seconds = 0;
    submit->add_option("--wait", wait_seconds, "wait up to this many seconds for the result, print where it is");

    // up
    auto* up = app.add_subcommand("up", "Run a pool of workers on this machine (embedded broker, directory store)");
    std::string data_dir = "apcloud-data";
    int workers = 1;
    std::vector<std::string> up_releases, up_arches;
    up->add_option("--data", data_dir, "data directory (results/, queue.db, worker.conf, log/)");
    up->add_option("--workers", workers, "number of worker processes (the null runner shares this host: keep 1)");
    up->add_option("--release", up_releases, "releases to serve (default: unstable)");
    up->add_option("--arch", up_arches, "architectures to serve (default: this machine's)");

    // listen
    auto* listen = app.add_subcommand("listen", "Print events of a fanout exchange, one per line");
    std::string exchange = apcloud::testcomplete_exchange;
    int listen_count = 0, listen_timeout = 0;
    listen->add_option("--broker", broker_url, "broker URL")->required();
    listen->add_option("--exchange", exchange, "teststatus.fanout or testcomplete.fanout");
    listen->add_option("--count", listen_count, "stop after this many events");
    listen->add_option("--timeout", listen_timeout, "stop after this many seconds without an event");

    // queues
    auto* queues = app.add_subcommand("queues", "Print the number of requests waiting in each queue");
    std::vector<std::string> q_releases, q_arches;
    queues->add_option("--broker", broker_url, "broker URL")->required();
    queues->add_option("--release", q_releases, "release")->required();
    queues->add_option("--arch", q_arches, "architecture")->required();

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? ok : usage;
    }

    try {
        if (*pack) {
            if (!requester.empty()) popt.requester = requester;
            if (!package.empty()) popt.package = package;
            apcloud::pack_results_to(out_dir, popt, dest);
            std::cout << dest << "/result.tar\n" << dest << "/log.gz\n" << dest << "/artifacts.tar.gz\n";
        } else if (*show) {
            auto r = apcloud::parse_result_tar(read_file(tar_path));
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
        } else if (*check) {
            auto req = apcloud::parse_request(read_file(body_path));
            std::cout << req.to_message() << "\n";
            if (!release.empty() || !arch.empty())
                std::cout << "queue: " << apcloud::queue_for(req, release, arch, huge) << "\n";
        } else if (*submit) {
            apcloud::ValidationOptions vopt;
            vopt.allow_local_sources = allow_local;
            auto req = apcloud::parse_request(read_file(body_path), vopt);
            auto queue = apcloud::queue_for(req, release, arch, huge);
            auto broker = apcloud::open_broker(broker_url);
            if (declare) broker->declare_queue(queue);
            if (wait_seconds > 0) {
                auto done = apcloud::submit_and_wait(*broker, req, release, arch, huge,
                                                     std::chrono::seconds(wait_seconds), vopt);
                if (!done) throw apcloud::NotFound("no result for " + req.package + " on " + release + "/" + arch +
                                                   " within " + std::to_string(wait_seconds) + " s");
                std::cout << queue << "\nexitcode: " << done->exitcode << "\ncontainer: " << done->container
                          << "\ndirectory: " << done->swift_dir << "\n";
            } else {
                std::cout << apcloud::submit_request(*broker, req, release, arch, huge, vopt) << "\n";
            }
        } else if (*up) {
            if (up_releases.empty()) up_releases = {"unstable"};
            if (up_arches.empty()) up_arches = {arch.empty() ? std::string(APCLOUD_HOST_ARCH) : arch};
            auto site = apcloud::prepare_local_site(data_dir, up_releases, up_arches);
            std::cout << "store:  " << site.store_url() << "\nbroker: " << site.broker_url()
                      << "\nconfig: " << site.config_path() << "\nlogs:   " << site.log_dir() << "\n"
                      << workers << " worker(s) running; Ctrl-C stops them after their current test" << std::endl;
            struct sigaction sa {};
            sa.sa_handler = on_stop;
            sigaction(SIGINT, &sa, nullptr);
            sigaction(SIGTERM, &sa, nullptr);
            apcloud::PoolOptions po;
            po.worker_program = worker_program();
            po.worker_args = {"-c", site.config_path()};
            po.workers = workers;
            po.log_dir = site.log_dir();
            apcloud::run_worker_pool(po, stop_requested);
        } else if (*listen) {
            auto broker = apcloud::open_broker(broker_url);
            auto sub = broker->subscribe(exchange);
            for (int n = 0; listen_count == 0 || n < listen_count; ++n) {
                auto event = sub->next(std::chrono::seconds(listen_timeout > 0 ? listen_timeout : 1000000));
                if (!event) return not_found;
                std::cout << *event << std::endl;
            }
        } else if (*queues) {
            auto broker = apcloud::open_broker(broker_url);
            for (const auto& [queue, depth] :
                 apcloud::queue_depths(*broker, apcloud::queue_names(q_releases, q_arches)))
                std::cout << queue << " " << (depth ? std::to_string(*depth) : std::string("-")) << "\n";
        } else if (*where) {
            auto run_id = apcloud::make_run_id(wtime, wbody);
            std::cout << apcloud::container_name(release, wppas) << "\n"
                      << apcloud::result_dir(release, arch, wpkg, run_id) << "/\n";
        }
    } catch (const apcloud::ValidationError& e) {
        std::cerr << "apcloud: " << e.what() << "\n";
        return bad_input;
    } catch (const apcloud::ParseError& e) {
        std::cerr << "apcloud: " << e.what() << "\n";
        return bad_input;
    } catch (const apcloud::NotFound& e) {
        std::cerr << "apcloud: " << e.what() << "\n";
        return not_found;
    } catch (const apcloud::Error& e) {
        std::cerr << "apcloud: " << e.what() << "\n";
        return error;
    }
    return ok;
}
