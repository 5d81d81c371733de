// The subprocess Runner: fork + execvp with an argv vector, own process
// group, output appended to a log file, periodic ticks, timeout kill.
#include "autopkgtest_cloud/runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "autopkgtest_cloud/error.hpp"

namespace apcloud {

Runner::~Runner() = default;

namespace {

using Clock = std::chrono::steady_clock;

// In the child: its own process group, killed with the worker, stdin from
// /dev/null, stdout and stderr to the log; reports a failed exec on `status_fd`.
[[noreturn]] void exec_child(const std::vector<std::string>& args, int log_fd, int status_fd) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::setpgid(0, 0);
    // If the worker dies (kill -9), autopkgtest must not run on without an
    // owner: it gets SIGTERM and cleans up its testbed.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() == 1) ::_exit(127);
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGHUP, SIG_DFL);
    ::signal(SIGINT, SIG_DFL);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::execvp(argv[0], argv.data());
    int err = errno;
    (void)!::write(status_fd, &err, sizeof err);
    ::_exit(127);
}

// Starts the program; sets `exec_failed` when execvp did not work.
pid_t spawn(const RunSpec& spec, bool& exec_failed) {
    int log_fd = ::open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) throw SystemError(errno, "open the run log", spec.log_path);
    // A pipe closed on exec tells the parent whether execvp worked.
    int status_pipe[2];
    if (::pipe2(status_pipe, O_CLOEXEC) != 0) {
        int err = errno;
        ::close(log_fd);
        throw SystemError(err, "create a pipe for the runner");
    }
    pid_t pid = ::fork();
    if (pid < 0) {
        int err = errno;
        ::close(log_fd);
        ::close(status_pipe[0]);
        ::close(status_pipe[1]);
        throw SystemError(err, "fork the runner");
    }
    if (pid == 0) exec_child(spec.argv, log_fd, status_pipe[1]);
    ::setpgid(pid, pid);  // also from the parent: no race with kill(-pid)
    ::close(log_fd);
    ::close(status_pipe[1]);
    int err = 0;
    exec_failed = ::read(status_pipe[0], &err, sizeof err) == static_cast<ssize_t>(sizeof err);
    ::close(status_pipe[0]);
    return pid;
}

// Waits for the program's end, calling on_tick and enforcing the timeout and
// cancellation (SIGTERM to the group, SIGKILL 10 s later). Returns its wait status.
int wait_for(pid_t pid, const RunSpec& spec, Clock::time_point start, RunResult& result) {
    // Wait on a pidfd so the run's end is seen at once; poll where the
    // kernel has none.
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    auto next_tick = start + spec.tick;
    Clock::time_point kill_at{};
    int status = 0;
    for (;;) {
        pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) throw SystemError(errno, "wait for the runner");
        const auto now = Clock::now();
        if (spec.timeout.count() > 0 && !result.timed_out && now - start >= spec.timeout) {
            result.timed_out = true;
            ::kill(-pid, SIGTERM);
            kill_at = now + std::chrono::seconds(10);
        }
        if ((result.timed_out || result.cancelled) && now >= kill_at) ::kill(-pid, SIGKILL);
        if (spec.tick.count() > 0 && now >= next_tick) {
            if (spec.on_tick) spec.on_tick(std::chrono::duration_cast<std::chrono::seconds>(now - start));
            next_tick += spec.tick;
            if (spec.cancelled && !result.timed_out && !result.cancelled && spec.cancelled()) {
                result.cancelled = true;
                ::kill(-pid, SIGTERM);
                kill_at = now + std::chrono::seconds(10);
            }
        }
        if (pidfd >= 0) {
            pollfd pfd{pidfd, POLLIN, 0};
            ::poll(&pfd, 1, 250);
        } else {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    if (pidfd >= 0) ::close(pidfd);
    return status;
}

class ProcessRunner : public Runner {
public:
    RunResult run(const RunSpec& spec) override {
        if (spec.argv.empty()) throw Error("runner: empty argv");
        const auto start = Clock::now();
        RunResult result;
        const pid_t pid = spawn(spec, result.exec_failed);
        const int status = wait_for(pid, spec, start, result);
        // Leftover processes of the group (daemons a test started) must not outlive the run.
        ::kill(-pid, SIGKILL);
        result.duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
        if (WIFEXITED(status) && !result.exec_failed && !result.timed_out && !result.cancelled)
            result.exit_code = WEXITSTATUS(status);
        if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
        return result;
    }
};

}  // namespace

std::unique_ptr<Runner> make_process_runner() {
    return std::make_unique<ProcessRunner>();
}

}  // namespace apcloud
