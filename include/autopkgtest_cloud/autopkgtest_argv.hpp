/// @file autopkgtest_argv.hpp
/// The autopkgtest command line of a request (SPEC.md section 5): its
/// variables, timeouts and argv, built from a worker's configuration and the
/// per-package lists. Pure.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "autopkgtest_cloud/request.hpp"
#include "autopkgtest_cloud/worker_config.hpp"

namespace apcloud {

/// What a run is, beyond the request.
struct RunContext {
    std::string release;
    std::string arch;
    std::string host_arch;  ///< architecture of the worker host
    std::string hostname;
    std::string uuid;            ///< id of this run
    std::int64_t timestamp = 0;  ///< start of the run (unix seconds)
    std::string output_dir;      ///< autopkgtest --output-dir
};

/// The timeouts of a run: `long_timeouts` for packages on the long_tests or
/// big_packages list, else `timeouts`.
const Timeouts& timeouts_for(const WorkerConfig& config, const PackageLists& lists, std::string_view package,
                             std::string_view arch, std::string_view release);

/// The built-in variables of a run: RELEASE, ARCHITECTURE, HOSTARCH,
/// PACKAGENAME, PACKAGESIZE, TIMESTAMP, HOSTNAME, UUID, plus the extras.
std::map<std::string, std::string> run_variables(const WorkerConfig& config, const TestRequest& request,
                                                 const RunContext& run, const PackageLists& lists,
                                                 const std::map<std::string, std::string>& extra_vars = {});

/// The autopkgtest argv (argv[0] included) for a validated request, in the
/// order of SPEC.md section 5. Never passes anything through a shell.
std::vector<std::string> autopkgtest_argv(const WorkerConfig& config, const TestRequest& request,
                                          const RunContext& run, const PackageLists& lists,
                                          const std::map<std::string, std::string>& extra_vars = {});

}  // namespace apcloud
