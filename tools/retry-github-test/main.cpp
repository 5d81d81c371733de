// retry-github-test (SPEC.md 10): replays a pull request's webhook, signed with the project's secret,
// so its tests run again; the library does the work, this parses the command line.
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/retries.hpp>
#include <autopkgtest_cloud/tool.hpp>

#include <CLI/CLI.hpp>
#include <iostream>

int main(int argc, char** argv) {
    CLI::App app{"retry-github-test: run a GitHub pull request's tests again, as its webhook would"};
    app.set_version_flag("--version", std::string("retry-github-test ") + APCLOUD_VERSION);
    std::string pr_url, request_url, secret_file;
    app.add_option("pr_api_url", pr_url, "the pull request in GitHub's API: https://api.github.com/repos/OWNER/REPO/pulls/N")
        ->required();
    app.add_option("request_url", request_url,
                   "the webhook's payload URL: https://SERVICE/request.cgi?release=R&arch=A&package=P...")
        ->required();
    app.add_option("secret_file", secret_file, "file whose first line is the project's webhook secret")->required();
    app.footer(
        "Example:\n"
        "  retry-github-test https://api.github.com/repos/systemd/systemd/pulls/123 \\\n"
        "    'https://autopkgtest.example.org/request.cgi?release=noble&arch=amd64&package=systemd-upstream' \\\n"
        "    ~/.config/autopkgtest-cloud/systemd.secret\n"
        "Prints the service's answer. Exit codes: 0 queued (or already queued), 1 error, 2 usage, "
        "4 no such pull request.");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? apcloud::exit_ok : apcloud::exit_usage;
    }
    return apcloud::run_main("retry-github-test", [&] {
        const auto answer =
            apcloud::retry_github_test(pr_url, request_url, apcloud::read_secret(secret_file, "secret_file"));
        std::cout << answer.body << std::endl;
        if (answer.status < 200 || answer.status > 299) {
            std::cerr << "retry-github-test: the service answered HTTP " << answer.status << std::endl;
            return static_cast<int>(apcloud::exit_error);
        }
        return static_cast<int>(apcloud::exit_ok);
    });
}
