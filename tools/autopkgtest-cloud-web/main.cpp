// autopkgtest-cloud-web: the web service (results index, published database, JSON API,
// pages) as the library's run_web_service. SIGTERM/SIGINT stop it gracefully; 78 is a
// bad configuration.
#include <signal.h>
#include <autopkgtest_cloud/credentials.hpp>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/file_io.hpp>
#include <autopkgtest_cloud/tool.hpp>
#include <autopkgtest_cloud/web.hpp>

#include <CLI/CLI.hpp>
#include <atomic>

namespace {

std::atomic<bool> stop{false};
void on_signal(int) {
    stop = true;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"autopkgtest-cloud-web: index, publish and show autopkgtest results"};
    std::string config_path = "/etc/autopkgtest-cloud/web.conf";
    app.add_option("-c,--config", config_path, "web.conf");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? apcloud::exit_ok : apcloud::exit_usage;
    }
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGTERM, SIGINT}) sigaction(sig, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
    return apcloud::run_main("autopkgtest-cloud-web", [&] {
        auto text = apcloud::read_file_if_exists(config_path);
        if (!text) throw apcloud::ConfigError("cannot read " + config_path + ": it does not exist");
        auto config = apcloud::parse_web_config(*text, apcloud::process_environment());
        apcloud::run_web_service(config, stop);
        return static_cast<int>(apcloud::exit_ok);
    });
}
