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

namespace {

struct Options {
    std::string release, broker, requester, build_git, testname, api, key_file;
    std::vector<std::string> arches, triggers, ppas, env, test_git, readable_by, packages;
    bool all_proposed = false, bulk = false, dry_run = false;
};

void add_options(CLI::App& app, Options& o) {
    app.add_option("-s,--series", o.release, "release to test in")->required();
    app.add_option("-a,--architecture", o.arches,
                   "architecture (repeat for several; default: $APCLOUD_ARCHITECTURES, space-separated)")
        ->allow_extra_args(false);
    app.add_option("--trigger", o.triggers, "SRC/VERSION of an upload the test is for (repeatable)")
        ->allow_extra_args(false);
    app.add_option("--ppa", o.ppas,
                   "LPUSER/PPANAME to install from (repeatable; the last names the container)")
        ->allow_extra_args(false);
    app.add_option("--env", o.env, "NAME=VALUE for the test's environment (repeatable)")
        ->allow_extra_args(false);
    app.add_flag("--all-proposed", o.all_proposed, "use all of -proposed, not only the triggers");
    app.add_option("--test-git", o.test_git, "URL [BRANCH]: run the tests of that checkout")->expected(1, 2);
    app.add_option("--build-git", o.build_git, "URL[#REF]: build that branch, then test it");
    app.add_option("--testname", o.testname, "run only this test");
    app.add_flag("--bulk", o.bulk, "send to the huge queue (many requests that must not delay others)");
    app.add_option("--requester", o.requester, "who asks (default: $USER)");
    app.add_option("--readable-by", o.readable_by, "users who may read a private result (repeatable)")
        ->allow_extra_args(false);
    app.add_option(
        "-U,--broker", o.broker,
        "where to send: amqp://HOST[/VHOST], sqlite://PATH or file://PATH (default: $APCLOUD_AMQP_URL; "
        "the password comes from $APCLOUD_AMQP_PASSWORD, never the command line)");
    app.add_option(
           "--api", o.api,
           "send through the request API of this web service instead (POST /api/v1/test; the key from "
           "--api-key-file, $APCLOUD_API_KEY_FILE or $APCLOUD_API_KEY, never the command line; you become "
           "the "
           "requester)")
        ->excludes("--broker");
    app.add_option("--api-key-file", o.key_file, "file holding the API key for --api");
    app.add_flag("-n,--dry-run", o.dry_run, "print each queue and message instead of sending them");
    app.add_option("packages", o.packages, "source packages")->required();
    app.footer(
        "Examples:\n"
        "  run-autopkgtest -s noble -a amd64 --trigger glib2.0/2.80-1 gedit nautilus\n"
        "  run-autopkgtest -s noble --ppa alice/fixes --trigger gedit/46.0-1~ppa1 gedit --dry-run\n"
        "Settings: the environment, over ~/.config/autopkgtest-cloud/client.conf ($APCLOUD_CONFIG), whose "
        "[client]\n"
        "  keys amqp_url, architectures, api_key_file... stand for $APCLOUD_AMQP_URL, "
        "$APCLOUD_ARCHITECTURES...\n"
        "Exit codes: 0 sent, 1 error, 2 usage, 3 invalid request (the message names the field), "
        "4 queue not found.");
}

// One validated request per package, as the options say.
std::vector<apcloud::TestRequest> requests_of(const Options& o) {
    std::vector<apcloud::TestRequest> requests;
    for (const auto& package : o.packages) {
        apcloud::TestRequest r;
        r.package = package;
        r.triggers = o.triggers;
        r.ppas = o.ppas;
        r.env = o.env;
        r.all_proposed = o.all_proposed;
        if (!o.test_git.empty())
            r.test_git = o.test_git.size() == 2 ? o.test_git[0] + " " + o.test_git[1] : o.test_git[0];
        if (!o.build_git.empty()) r.build_git = o.build_git;
        if (!o.testname.empty()) r.testname = o.testname;
        if (!o.requester.empty()) r.requester = o.requester;
        r.readable_by = o.readable_by;
        apcloud::validate(r);
        requests.push_back(std::move(r));
    }
    return requests;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"run-autopkgtest: request autopkgtest runs of source packages"};
    app.set_version_flag("--version", std::string("run-autopkgtest ") + APCLOUD_VERSION);
    Options o;
    add_options(app, o);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? apcloud::exit_ok : apcloud::exit_usage;
    }
    return apcloud::run_main("run-autopkgtest", [&] {
        const auto environment = apcloud::tool_environment();
        if (o.arches.empty())
            o.arches = apcloud::split_triggers(
                apcloud::option_or_setting("", environment, "APCLOUD_ARCHITECTURES", "--architecture"));
        if (!o.dry_run && o.api.empty())
            o.broker = apcloud::option_or_setting(o.broker, environment, "APCLOUD_AMQP_URL", "--broker");
        if (o.requester.empty()) {
            auto it = environment.find("USER");
            if (it != environment.end()) o.requester = it->second;
        }
        const auto requests = requests_of(o);
        // Stamped (submit-time, uuid) here, so --dry-run prints exactly the bytes a send publishes.
        std::vector<apcloud::SinkItem> items;
        for (const auto& r : requests)
            for (const auto& arch : o.arches) items.push_back({apcloud::stamped(r), o.release, arch, o.bulk});
        if (o.dry_run) {
            for (const auto& it : items)
                std::cout << apcloud::sink_line(apcloud::queue_for(it.request, o.release, it.arch, o.bulk),
                                                it.request)
                          << "\n";
            return static_cast<int>(apcloud::exit_ok);
        }
        if (!o.api.empty()) {
            const std::string key = apcloud::resolve_api_key(o.key_file, environment);
            return apcloud::report_submitted("run-autopkgtest", apcloud::submit_requests(o.api, key, items),
                                             items, std::cout, std::cerr);
        }
        // All at once with pipelined confirms; each line printed is a queued request.
        const auto results = apcloud::open_sink(o.broker, false, {}, environment)->send_many(items);
        return apcloud::report_sent("run-autopkgtest", results, std::cout, std::cerr);
    });
}
