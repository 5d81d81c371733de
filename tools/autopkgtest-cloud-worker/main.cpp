// autopkgtest-cloud-worker: runs test requests from the queues, one at a
// time. Reads worker.conf, opens the store and broker, runs the library's
// Worker; SIGTERM finishes the current test then exits 0, SIGHUP the same
// but exits 75 so the service manager restarts it with new configuration.
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/worker.hpp>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <fstream>
#include <iostream>
#include <iterator>

extern char** environ;

namespace {

std::atomic<bool> stop{false};
std::atomic<int> stop_signal{0};

void on_signal(int sig) {
    stop_signal = sig;
    stop = true;
}

// Exit codes (README.md): 0 stopped by SIGTERM/SIGINT or done; 75 stopped by
// SIGHUP (restart me); 78 bad configuration; 1 other errors; 2 bad usage.
enum Exit { ok = 0, error = 1, usage = 2, restart = 75, bad_config = 78 };

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"autopkgtest-cloud-worker: run autopkgtest for queued test requests"};
    std::string config_path = "/etc/autopkgtest-cloud/worker.conf";
    std::vector<std::string> vars;
    int count = 0;
    app.add_option("-c,--config", config_path, "worker.conf");
    app.add_option("-v,--variable", vars, "K=V, substituted for $K in setup_command* and [virt] args");
    app.add_option("--count", count, "exit after this many requests (0: run until signalled)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? ok : usage;
    }

    std::map<std::string, std::string> env;
    for (char** e = environ; *e; ++e) {
        std::string kv = *e;
        auto eq = kv.find('=');
        if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    std::map<std::string, std::string> extra;
    for (const auto& v : vars) {
        auto eq = v.find('=');
        if (eq == std::string::npos || eq == 0) {
            std::cerr << "autopkgtest-cloud-worker: -v needs K=V, got '" << v << "'\n";
            return usage;
        }
        extra[v.substr(0, eq)] = v.substr(eq + 1);
    }

    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGHUP, &sa, nullptr);

    try {
        std::ifstream in(config_path);
        if (!in) throw apcloud::ConfigError("cannot read " + config_path);
        auto config = apcloud::parse_worker_config(std::string(std::istreambuf_iterator<char>(in), {}), env, extra);
        apcloud::StoreCredentials creds;
        creds.user = config.store_user;
        creds.key = config.store_key;
        auto store = apcloud::open_store(config.store_url, creds);
        auto broker = apcloud::open_broker(config.broker_url);
        auto runner = apcloud::make_process_runner();
        apcloud::WorkerEnvironment wenv;
        wenv.extra_vars = extra;
        apcloud::Worker worker(config, wenv, *store, *broker, *runner);
        if (count > 0) {
            for (int done = 0; done < count && !stop;)
                if (worker.process_one(std::chrono::milliseconds(1000)) != apcloud::WorkerStep::idle) ++done;
        } else {
            worker.run(stop);
        }
    } catch (const apcloud::ConfigError& e) {
        std::cerr << "autopkgtest-cloud-worker: " << e.what() << "\n";
        return bad_config;
    } catch (const apcloud::Error& e) {
        std::cerr << "autopkgtest-cloud-worker: " << e.what() << "\n";
        return error;
    }
    return stop_signal == SIGHUP ? restart : ok;
}
