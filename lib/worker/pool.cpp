// apcloud up: the one-machine site layout and the supervised worker pool.
#include "autopkgtest_cloud/pool.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <thread>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/file_io.hpp"
#include "autopkgtest_cloud/routing.hpp"
#include "autopkgtest_cloud/tool.hpp"
#include "autopkgtest_cloud/web.hpp"
#include "autopkgtest_cloud/worker_config.hpp"

namespace fs = std::filesystem;

namespace apcloud {

std::string LocalSite::store_url() const {
    return "file://" + data_dir + "/results";
}
std::string LocalSite::broker_url() const {
    return "sqlite://" + data_dir + "/queue.db";
}
std::string LocalSite::config_path() const {
    return data_dir + "/worker.conf";
}
std::string LocalSite::web_config_path() const { return data_dir + "/web.conf"; }
std::string LocalSite::log_dir() const {
    return data_dir + "/log";
}

LocalSite prepare_local_site(const std::string& data_dir, const std::vector<std::string>& releases,
                             const std::vector<std::string>& architectures, std::uint16_t web_port,
                             const std::string& share_dir, const std::string& admin) {
    LocalSite site;
    site.data_dir = fs::absolute(data_dir).lexically_normal().string();
    if (site.data_dir.size() > 1 && site.data_dir.back() == '/') site.data_dir.pop_back();
    for (const auto& r : releases) check_release(r);
    for (const auto& a : architectures) check_arch(a);
    std::error_code ec;
    for (const auto& d : {site.data_dir, site.data_dir + "/results", site.log_dir(), site.data_dir + "/lists",
                          site.data_dir + "/work"}) {
        fs::create_directories(d, ec);
        if (ec) throw SystemError(ec.value(), "create directory", d);
    }
    if (!fs::exists(site.config_path())) {
        WorkerConfig c;
        c.broker_url = site.broker_url();
        c.store_url = site.store_url();
        c.releases = releases;
        c.architectures = architectures;
        c.per_package_config_dir = site.data_dir + "/lists";
        c.work_dir = site.data_dir + "/work";
        // The null runner tests on this machine: only local sources make sense.
        c.allow_local_sources = true;
        c.virt_args = {"null"};
        write_atomically(site.config_path(),
                         "# worker.conf for one machine: embedded broker, directory store, null runner.\n" +
                             render_worker_config(c));
    }
    if (!fs::exists(site.web_config_path())) {
        WebConfig w;
        w.port = web_port;
        w.data_dir = site.data_dir + "/web";
        w.releases = releases;
        w.architectures = architectures;
        w.share_dir = share_dir;
        w.broker_url = site.broker_url();
        w.store_url = site.store_url();
        w.backfill_interval = 600;
        w.publish_interval = 10;
        w.status_interval = 10;
        w.access_file = site.data_dir + "/access.conf";
        w.allow_local_sources = true;  // as the workers of this site
        write_atomically(site.web_config_path(),
                         "# web.conf for one machine: the embedded broker and the directory store.\n" +
                             render_web_config(w));
    }
    const std::string access = site.data_dir + "/access.conf";
    if (!fs::exists(access) && !admin.empty())
        write_atomically(access, "# Who may request tests here (see README: Requesting tests).\n[admins]\nusers = " +
                                     admin + "\n");
    return site;
}

namespace {

pid_t start_worker(const PoolOptions& o, int index) {
    std::vector<std::string> args = {o.worker_program};
    args.insert(args.end(), o.worker_args.begin(), o.worker_args.end());
    const std::string log = o.log_dir + "/worker-" + std::to_string(index) + ".log";
    pid_t pid = ::fork();
    if (pid < 0) throw Error("cannot fork a worker");
    if (pid == 0) {
        int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
        }
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    return pid;
}

}  // namespace

void run_worker_pool(const PoolOptions& o, const std::atomic<bool>& stop) {
    using clock = std::chrono::steady_clock;
    struct Slot {
        pid_t pid = -1;
        int failures = 0;
        clock::time_point restart_at{};
        bool done = false;
    };
    std::vector<Slot> slots(static_cast<std::size_t>(std::max(1, o.workers)));
    for (std::size_t i = 0; i < slots.size(); ++i) slots[i].pid = start_worker(o, static_cast<int>(i));

    while (!stop.load()) {
        for (std::size_t i = 0; i < slots.size(); ++i) {
            auto& s = slots[i];
            if (s.pid > 0) {
                int status = 0;
                if (::waitpid(s.pid, &status, WNOHANG) != s.pid) continue;
                s.pid = -1;
                int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                std::cerr << "apcloud up: worker " << i << " exited with " << code << "\n";
                if (code == 0) {
                    s.done = true;
                } else if (code == exit_restart) {
                    s.restart_at = clock::now();
                } else {
                    s.failures++;
                    s.restart_at =
                        clock::now() + std::chrono::seconds(std::min(60, 1 << std::min(s.failures, 6)));
                }
            } else if (!s.done && clock::now() >= s.restart_at) {
                s.pid = start_worker(o, static_cast<int>(i));
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    for (auto& s : slots)
        if (s.pid > 0) ::kill(s.pid, SIGTERM);
    for (auto& s : slots)
        if (s.pid > 0) ::waitpid(s.pid, nullptr, 0);
}

}  // namespace apcloud
