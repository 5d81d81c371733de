// run-autopkgtest (SPEC.md 8): one test request per package and architecture,
// validated and routed by the library, published through a request sink (the
// broker, with the requester's publish-only account) or printed (--dry-run).
#include <autopkgtest_cloud/credentials.hpp>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/request.hpp>
#include <autopkgtest_cloud/result.hpp>
#include <autopkgtest_cloud/retries.hpp>
#include <autopkgtest_cloud/routing.hpp>
#include <autopkgtest_cloud/sinks.hpp>
#include <autopkgtest_cloud/tool.hpp>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

int main(int argc, char** argv) {
    CLI::App app{"run-autopkgtest: request autopkgtest runs of source packages"};
    app.set_version_flag("--version", std::string("run-autopkgtest ") + APCLOUD_VERSION);
    std::string release, broker, requester, build_git, testname;
    std::vector<std::string> arches, triggers, ppas, env, test_git, readable_by, packages;
    bool all_proposed = false, bulk = false, dry_run = false;
    app.add_option("-s,--series", release, "release to test in")->required();
    app.add_option("-a,--architecture", arches,
                   "architecture (repeat for several; default: $APCLOUD_ARCHITECTURES, space-separated)")->allow_extra_args(false);
    app.add_option("--trigger", triggers, "SRC/VERSION of an upload the test is for (repeatable)")->allow_extra_args(false);
    app.add_option("--ppa", ppas, "LPUSER/PPANAME to install from (repeatable; the last names the container)")->allow_extra_args(false);
    app.add_option("--env", env, "NAME=VALUE for the test's environment (repeatable)")->allow_extra_args(false);
    app.add_flag("--all-proposed", all_proposed, "use all of -proposed, not only the triggers");
    app.add_option("--test-git", test_git, "URL [BRANCH]: run the tests of that checkout")->expected(1, 2);
    app.add_option("--build-git", build_git, "URL[#REF]: build that branch, then test it");
    app.add_option("--testname", testname, "run only this test");
    app.add_flag("--bulk", bulk, "send to the huge queue (many requests that must not delay others)");
    app.add_option("--requester", requester, "who asks (default: $USER)");
    app.add_option("--readable-by", readable_by, "users who may read a private result (repeatable)")->allow_extra_args(false);
    app.add_option("-U,--broker", broker,
                   "where to send: amqp://HOST[/VHOST], sqlite://PATH or file://PATH (default: $APCLOUD_AMQP_URL; "
                   "the password comes from $APCLOUD_AMQP_PASSWORD, never the command line)");
    std::string api, key_file;
    app.add_option("--api", api,
                   "send through the request API of this web service instead (POST /api/v1/test; the key from "
                   "--api-key-file, $APCLOUD_API_KEY_FILE or $APCLOUD_API_KEY, never the command line; you become the "
                   "requester)")
        ->excludes("--broker");
    app.add_option("--api-key-file", key_file, "file holding the API key for --api");
    app.add_flag("-n,--dry-run", dry_run, "print each queue and message instead of sending them");
    app.add_option("packages", packages, "source packages")->required();
    app.footer(
        "Examples:\n"
        "  run-autopkgtest -s noble -a amd64 --trigger glib2.0/2.80-1 gedit nautilus\n"
        "  run-autopkgtest -s noble --ppa alice/fixes --trigger gedit/46.0-1~ppa1 gedit --dry-run\n"
        "Settings: the environment, over ~/.config/autopkgtest-cloud/client.conf ($APCLOUD_CONFIG), whose [client]\n"
        "  keys amqp_url, architectures, api_key_file... stand for $APCLOUD_AMQP_URL, $APCLOUD_ARCHITECTURES...\n"
        "Exit codes: 0 sent, 1 error, 2 usage, 3 invalid request (the message names the field), "
        "4 queue not found.");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? apcloud::exit_ok : apcloud::exit_usage;
    }
    return apcloud::run_main("run-autopkgtest", [&] {
        const auto environment = apcloud::tool_environment();
        if (arches.empty())
            arches = apcloud::split_triggers(
                apcloud::option_or_setting("", environment, "APCLOUD_ARCHITECTURES", "--architecture"));
        if (!dry_run && api.empty()) broker = apcloud::option_or_setting(broker, environment, "APCLOUD_AMQP_URL", "--broker");
        if (requester.empty()) {
            auto it = environment.find("USER");
            if (it != environment.end()) requester = it->second;
        }
        std::vector<apcloud::TestRequest> requests;
        for (const auto& package : packages) {
            apcloud::TestRequest r;
            r.package = package;
            r.triggers = triggers;
            r.ppas = ppas;
            r.env = env;
            r.all_proposed = all_proposed;
            if (!test_git.empty()) r.test_git = test_git.size() == 2 ? test_git[0] + " " + test_git[1] : test_git[0];
            if (!build_git.empty()) r.build_git = build_git;
            if (!testname.empty()) r.testname = testname;
            if (!requester.empty()) r.requester = requester;
            r.readable_by = readable_by;
            apcloud::validate(r);
            requests.push_back(std::move(r));
        }
        // Stamped (submit-time, uuid) here, so --dry-run prints exactly the bytes a send publishes.
        std::vector<apcloud::SinkItem> items;
        for (const auto& r : requests)
            for (const auto& arch : arches) items.push_back({apcloud::stamped(r), release, arch, bulk});
        if (dry_run) {
            for (const auto& it : items)
                std::cout << apcloud::sink_line(apcloud::queue_for(it.request, release, it.arch, bulk), it.request)
                          << "\n";
            return static_cast<int>(apcloud::exit_ok);
        }
        if (!api.empty()) {
            const std::string key = apcloud::resolve_api_key(key_file, environment);
            return apcloud::report_submitted("run-autopkgtest", apcloud::submit_requests(api, key, items), items,
                                             std::cout, std::cerr);
        }
        // All at once with pipelined confirms; each line printed is a queued request.
        const auto results = apcloud::open_sink(broker, false, {}, environment)->send_many(items);
        return apcloud::report_sent("run-autopkgtest", results, std::cout, std::cerr);
    });
}
