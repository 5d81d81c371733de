// apcloud: command line front end of libautopkgtest-cloud. Parses arguments,
// calls the library, maps errors to exit codes; no logic of its own.
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/exit_codes.hpp>
#include <autopkgtest_cloud/layout.hpp>
#include <autopkgtest_cloud/request.hpp>
#include <autopkgtest_cloud/result.hpp>
#include <autopkgtest_cloud/routing.hpp>

#include <CLI/CLI.hpp>
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
