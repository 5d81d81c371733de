/// @file runner.hpp
/// Running autopkgtest: the Runner interface and the subprocess adapter.
/// Programs are started from an argv vector, never through a shell.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace apcloud {

/// What to run and how.
struct RunSpec {
    std::vector<std::string> argv;    ///< argv[0] is looked up in PATH
    std::string log_path;             ///< stdout and stderr are appended here
    std::chrono::seconds timeout{0};  ///< kill after this long (0: never)
    std::chrono::seconds tick{10};    ///< how often `on_tick` is called
    /// Called every `tick` while the program runs, with the time elapsed.
    std::function<void(std::chrono::seconds)> on_tick;
    /// Asked after each on_tick: true stops the program as a timeout does
    /// (SIGTERM to its group, SIGKILL 10 s later); RunResult::cancelled says so.
    std::function<bool()> cancelled;
};

/// How a run ended.
struct RunResult {
    int exit_code = -1;        ///< the program's exit status; -1 when it did not exit normally
    int signal = 0;            ///< the signal that killed it, or 0
    bool timed_out = false;    ///< killed because `timeout` passed
    bool cancelled = false;    ///< killed because RunSpec::cancelled said so
    bool exec_failed = false;  ///< the program could not be started
    std::chrono::milliseconds duration{0};
    /// True when the program exited by itself with a status.
    bool exited() const { return exit_code >= 0; }
};

/// Runs a program to completion.
class Runner {
public:
    virtual ~Runner();
    virtual RunResult run(const RunSpec& spec) = 0;
};

/// Runs programs as child processes in their own process group (so a
/// terminal's or service manager's signals to the worker do not reach the
/// test, and a timeout kills the whole tree: SIGTERM, then SIGKILL after 10 s).
std::unique_ptr<Runner> make_process_runner();

}  // namespace apcloud
