// Running helper programs from tests and benchmarks: by argv, never through a shell.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace test_process {

/// What a finished program did.
struct RunResult {
    int status = -1;  ///< exit status, or 128 + signal; 127 when it could not be started
    std::string out;  ///< its stdout, unless RunOptions::stdout_path sent it to a file
};

/// How to run a program.
struct RunOptions {
    std::string input;         ///< written to its stdin (keep it below a pipe buffer, 64 kB)
    std::string stdout_path;   ///< append stdout to this file instead of capturing it
    std::string stderr_path;   ///< append stderr to this file (default: the caller's stderr, the test log)
    bool search_path = false;  ///< find argv[0] on PATH (default: argv[0] is a path)
};

namespace detail {

[[noreturn]] inline void exec(const std::vector<std::string>& argv, bool search_path) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (search_path)
        execvp(args[0], args.data());
    else
        execv(args[0], args.data());
    std::perror(args[0]);
    _exit(127);
}

inline void redirect(const std::string& path, int fd) {
    if (path.empty()) return;
    int f = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (f < 0) _exit(126);
    dup2(f, fd);
    close(f);
}

inline int wait_status(pid_t pid) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace detail

/// Runs argv to its end and returns its status and stdout.
inline RunResult run(const std::vector<std::string>& argv, const RunOptions& options = {}) {
    int in_pipe[2], out_pipe[2];
    if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0)
        throw std::runtime_error("pipe failed");
    std::fflush(nullptr);
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        dup2(in_pipe[0], 0);
        dup2(out_pipe[1], 1);
        detail::redirect(options.stdout_path, 1);
        detail::redirect(options.stderr_path, 2);
        detail::exec(argv, options.search_path);
    }
    close(in_pipe[0]);
    close(out_pipe[1]);
    std::size_t off = 0;
    while (off < options.input.size()) {
        ssize_t n = write(in_pipe[1], options.input.data() + off, options.input.size() - off);
        if (n <= 0) break;
        off += static_cast<std::size_t>(n);
    }
    close(in_pipe[1]);
    RunResult r;
    char buf[65536];
    ssize_t n;
    while ((n = read(out_pipe[0], buf, sizeof buf)) > 0) r.out.append(buf, static_cast<std::size_t>(n));
    close(out_pipe[0]);
    r.status = detail::wait_status(pid);
    return r;
}

/// A program running beside the test, with pipes to its stdin and stdout;
/// the destructor closes them, sends SIGTERM and waits for it.
class Child {
public:
    explicit Child(const std::vector<std::string>& argv) {
        int in_pipe[2], out_pipe[2];
        if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0)
            throw std::runtime_error("pipe failed");
        std::fflush(nullptr);
        pid_ = fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            dup2(in_pipe[0], 0);
            dup2(out_pipe[1], 1);
            detail::exec(argv, false);
        }
        close(in_pipe[0]);
        close(out_pipe[1]);
        in_fd_ = in_pipe[1];
        out_fd_ = out_pipe[0];
    }
    ~Child() {
        if (in_fd_ >= 0) close(in_fd_);
        if (out_fd_ >= 0) close(out_fd_);
        if (pid_ > 0) {
            kill(pid_, SIGTERM);
            detail::wait_status(pid_);
        }
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    /// One line of its stdout, without the newline ("" at the end).
    std::string read_line() {
        std::string line;
        char c;
        while (read(out_fd_, &c, 1) == 1 && c != '\n') line += c;
        return line;
    }
    pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
    int in_fd_ = -1;
    int out_fd_ = -1;
};

}  // namespace test_process
