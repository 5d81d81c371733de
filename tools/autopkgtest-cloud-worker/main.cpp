// autopkgtest-cloud-worker: runs test requests from the queues, one at a time
// (the library's run_worker_service). SIGTERM finishes the current test then
// exits 0, SIGHUP the same but exits 75 so the service manager restarts it
// with new configuration; 78 is a bad configuration.
#include <signal.h>
#include <autopkgtest_cloud/tool.hpp>
#include <autopkgtest_cloud/worker.hpp>
#include <autopkgtest_cloud/worker_config.hpp>

#include <CLI/CLI.hpp>
#include <atomic>

namespace {

std::atomic<bool> stop{false};
std::atomic<int> stop_signal{0};

void on_signal(int sig) {
    stop_signal = sig;
    stop = true;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"autopkgtest-cloud-worker: run autopkgtest for queued test requests"};
    apcloud::WorkerServiceOptions options;
    std::vector<std::string> vars;
    app.add_option("-c,--config", options.config_path, "worker.conf");
    app.add_option("-v,--variable", vars, "K=V, substituted for $K in setup_command* and [virt] args");
    app.add_option("--count", options.count, "exit after this many requests (0: run until signalled)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? apcloud::exit_ok : apcloud::exit_usage;
    }
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaction(sig, &sa, nullptr);
    return apcloud::run_main("autopkgtest-cloud-worker", [&] {
        options.extra_vars = apcloud::parse_variables(vars);
        apcloud::run_worker_service(options, stop);
        return stop_signal == SIGHUP ? apcloud::exit_restart : apcloud::exit_ok;
    });
}
