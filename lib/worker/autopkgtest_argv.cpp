// The autopkgtest command line of a request (SPEC.md section 5), as an argv
// vector: never through a shell.
#include "autopkgtest_cloud/autopkgtest_argv.hpp"

namespace apcloud {

const Timeouts& timeouts_for(const WorkerConfig& config, const PackageLists& lists, std::string_view package,
                             std::string_view arch, std::string_view release) {
    const bool long_run = lists.long_tests.matches(package, arch, release) ||
                          lists.big_packages.matches(package, arch, release);
    return long_run ? config.long_timeouts : config.timeouts;
}

std::map<std::string, std::string> run_variables(const WorkerConfig& c, const TestRequest& r,
                                                 const RunContext& run, const PackageLists& lists,
                                                 const std::map<std::string, std::string>& extra_vars) {
    std::map<std::string, std::string> vars = extra_vars;
    const bool big = lists.big_packages.matches(r.package, run.arch, run.release);
    vars["RELEASE"] = run.release;
    vars["ARCHITECTURE"] = run.arch;
    vars["HOSTARCH"] = run.host_arch;
    vars["PACKAGENAME"] = r.package;
    vars["PACKAGESIZE"] = big ? c.package_size_big : c.package_size_default;
    vars["TIMESTAMP"] = std::to_string(run.timestamp);
    vars["HOSTNAME"] = run.hostname;
    vars["UUID"] = run.uuid;
    return vars;
}

std::vector<std::string> autopkgtest_argv(const WorkerConfig& c, const TestRequest& r, const RunContext& run,
                                          const PackageLists& lists,
                                          const std::map<std::string, std::string>& extra_vars) {
    const auto vars = run_variables(c, r, run, lists, extra_vars);
    const Timeouts& t = timeouts_for(c, lists, r.package, run.arch, run.release);

    std::vector<std::string> argv = {c.autopkgtest_program(), "--output-dir", run.output_dir,
                                     "--timeout-copy=" + std::to_string(t.copy)};
    argv.insert(argv.end(), c.extra_args.begin(), c.extra_args.end());
    for (const auto* cmd : {&c.setup_command, &c.setup_command2})
        if (!cmd->empty()) {
            argv.push_back("--setup-commands");
            argv.push_back(substitute(*cmd, vars, "setup_command"));
        }
    for (const auto& p : r.ppas) {
        // Only public PPAs go to autopkgtest as ppa:; private ones carry credentials
        // and are added as an authenticated apt source.
        auto spec = parse_ppa(p);
        if (spec.is_private()) {
            argv.push_back("--add-apt-source=deb https://" + spec.user + ":" + spec.token +
                           "@private-ppa.launchpadcontent.net/" + spec.lpuser + "/" + spec.name + "/ubuntu " +
                           run.release + " main");
        } else {
            argv.push_back("--add-apt-source=ppa:" + spec.lpuser + "/" + spec.name);
        }
    }
    if (!c.virt_is_null()) {
        if (r.all_proposed) {
            argv.push_back("--apt-pocket=proposed");
        } else if (!r.is_reference() && !r.triggers.empty()) {
            std::string pin = "--apt-pocket=proposed=";
            for (std::size_t i = 0; i < r.triggers.size(); ++i) {
                pin += i ? ",src:" : "src:";
                pin += parse_trigger(r.triggers[i]).source;
            }
            argv.push_back(pin);
        }
        argv.push_back("--apt-upgrade");
    }
    if (r.test_git) {
        // "URL branch" -> autopkgtest's "URL#branch".
        std::string target = *r.test_git;
        auto sp = target.find(' ');
        if (sp != std::string::npos) target[sp] = '#';
        argv.push_back("--no-built-binaries");
        argv.push_back(target);
    } else if (r.build_git) {
        argv.push_back(*r.build_git);
    } else {
        argv.push_back(r.package);
    }
    argv.push_back("--timeout-short=" + std::to_string(t.short_));
    argv.push_back("--timeout-install=" + std::to_string(t.install));
    argv.push_back("--timeout-test=" + std::to_string(t.test));
    argv.push_back("--timeout-build=" + std::to_string(t.build));
    for (const auto& e : r.env) argv.push_back("--env=" + e);
    if (!r.triggers.empty()) {
        std::string triggers = "--env=ADT_TEST_TRIGGERS=";
        for (std::size_t i = 0; i < r.triggers.size(); ++i) triggers += (i ? " " : "") + r.triggers[i];
        argv.push_back(triggers);
    }
    if (r.testname) argv.push_back("--testname=" + *r.testname);
    argv.push_back("--");
    for (const auto& w : c.virt_args) argv.push_back(substitute(w, vars, "[virt] args"));
    return argv;
}

}  // namespace apcloud
