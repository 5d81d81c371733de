// retry-autopkgtest-regressions (SPEC.md 8): reads britney's excuses.yaml and
// prints one request.cgi URL per test to run again, or sends them to the
// request API (--submit); the library chooses them (excuses.hpp, retries.hpp).
#include <autopkgtest_cloud/credentials.hpp>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/excuses.hpp>
#include <autopkgtest_cloud/retries.hpp>
#include <autopkgtest_cloud/tool.hpp>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <iterator>

namespace {

constexpr const char* program = "retry-autopkgtest-regressions";

struct Args {
    std::string source, series, url, key_file, log_regex, blocks, blocked_by;
    double min_age = -1, max_age = -1;
    bool submit = false;
    apcloud::RetryOptions options;
};

// A number of days, 0 or more (CLI11's NonNegativeNumber prints the largest double in its message).
const CLI::Validator days(
    [](std::string& s) -> std::string {
        char* end = nullptr;
        const double d = std::strtod(s.c_str(), &end);
        return !s.empty() && *end == '\0' && d >= 0 ? "" : "must be a number of days, 0 or more: " + s;
    },
    "DAYS");

void declare(CLI::App& app, Args& a) {
    app.set_version_flag("--version", std::string(program) + " " + APCLOUD_VERSION);
    app.add_option(
           "excuses", a.source,
           "britney's excuses.yaml (also .gz or .xz): a file, an http(s):// URL, or - for standard input "
           "(default: $APCLOUD_EXCUSES_URL)")
        ->type_name("EXCUSES");
    app.add_option("-s,--series", a.series,
                   "series to request the tests in (default: the one the excuses' links name, else "
                   "$APCLOUD_SERIES)")
        ->type_name("SERIES");
    app.add_option("--state", a.options.states,
                   "retry results in this state (repeatable; default REGRESSION; RUNNING for lost requests, "
                   "ALWAYSFAIL, RUNNING-ALWAYSFAIL, ...)")
        ->type_name("STATE");
    app.add_option("--min-age", a.min_age, "only items at least this many days old (britney's current-age)")
        ->check(days);
    app.add_option("--max-age", a.max_age, "only items at most this many days old")->check(days);
    app.add_option("--blocks", a.blocks, "only the regressions that block the migration of this source")
        ->type_name("SRC");
    app.add_option("--blocked-by", a.blocked_by,
                   "only the results of this tested source package, in any excuse")
        ->type_name("SRC");
    app.add_flag("--only-unknown", a.options.only_unknown,
                 "only results without a stored log (pending or lost tests: RUNNING and the like)");
    app.add_option("--log-regex", a.log_regex,
                   "only results whose log has a line matching this regular expression (ECMAScript; each log "
                   "fetched through the link britney wrote)")
        ->type_name("RE");
    app.add_flag("--all-proposed", a.options.all_proposed,
                 "test with all of -proposed, not only the triggers");
    app.add_option("--add-trigger", a.options.add_triggers,
                   "SRC/VERSION added to every request's triggers (repeatable)")
        ->type_name("SRC/VERSION");
    app.add_option("--ppa", a.options.ppas,
                   "LPUSER/PPA for every request (repeatable; default: the PPAs britney used)")
        ->type_name("LPUSER/PPA");
    app.add_option(
           "-u,--url", a.url,
           "the web service (default: $APCLOUD_WEB_URL, else " + std::string(apcloud::default_web_url) + ")")
        ->type_name("URL");
    app.add_flag("--submit", a.submit, "send the requests to the request API instead of printing their URLs");
    app.add_option(
           "--api-key-file", a.key_file,
           "file holding the API key for --submit (default: $APCLOUD_API_KEY; never on the command line)")
        ->type_name("FILE");
    app.footer(
        "Examples:\n"
        "  retry-autopkgtest-regressions update_excuses.yaml.xz --series noble\n"
        "  retry-autopkgtest-regressions https://britney.example/noble/excuses.yaml --blocks glib2.0 |\n"
        "      xargs -rn1 curl -fsS -H \"Authorization: Bearer $KEY\" -o /dev/null\n"
        "  retry-autopkgtest-regressions excuses.yaml --state RUNNING --only-unknown --min-age 1\n"
        "  retry-autopkgtest-regressions excuses.yaml --log-regex 'Temporary failure resolving' --submit\n"
        "The triggers of a retry are the excuse's SOURCE/NEW-VERSION and every --add-trigger; removals are "
        "skipped.\n"
        "Exit codes: 0 done, 1 error (or a request --submit could not queue), 2 usage, 3 invalid input (bad "
        "YAML with its line, a bad option value), 4 excuses not found.");
}

// The excuses' bytes: standard input for "-", else a path or a URL.
std::string read_excuses(const std::string& source) {
    if (source == "-") return {std::istreambuf_iterator<char>(std::cin), {}};
    return apcloud::fetch_document(source, apcloud::max_excuses_bytes);
}

// Sends the retries, printing what became of each; exit_error when any was not queued.
int submit(const std::string& web, const std::string& key,
           const std::vector<apcloud::RetryRequest>& retries) {
    using Status = apcloud::SubmitOutcome::Status;
    std::size_t failed = 0;
    apcloud::submit_retries(
        web, key, retries, [&](const apcloud::RetryRequest& r, const apcloud::SubmitOutcome& s) {
            const std::string what =
                r.package + " on " + r.release + "/" + r.arch + " for " + r.triggers.front();
            if (s.status == Status::queued) {
                std::cout << "queued " << what << ": " << s.uuid << " in " << s.queue << std::endl;
            } else if (s.status == Status::duplicate) {
                std::cout << "already queued or running " << what << (s.uuid.empty() ? "" : ": " + s.uuid)
                          << std::endl;
            } else {
                std::cerr << program << ": not queued " << what << ": " << s.message << std::endl;
                ++failed;
            }
        });
    if (failed)
        std::cerr << program << ": " << failed << " of " << retries.size() << " not queued" << std::endl;
    return failed ? apcloud::exit_error : apcloud::exit_ok;
}

int run(Args& a) {
    const auto environment = apcloud::tool_environment();
    a.source = apcloud::resolve_excuses_source(a.source, environment);
    if (a.source.empty()) {
        std::cerr << program << ": which excuses? Give a file, a URL or - (or set APCLOUD_EXCUSES_URL)\n"
                  << "Run with --help for more information.\n";
        return apcloud::exit_usage;
    }
    apcloud::RetryOptions& o = a.options;
    if (a.min_age >= 0) o.min_age = a.min_age;
    if (a.max_age >= 0) o.max_age = a.max_age;
    if (!a.blocks.empty()) o.blocks = a.blocks;
    if (!a.blocked_by.empty()) o.blocked_by = a.blocked_by;
    const std::string web = apcloud::resolve_web_url(a.url, environment);
    const std::string key = a.submit ? apcloud::resolve_api_key(a.key_file, environment) : std::string();
    std::optional<apcloud::LogRegex> regex;
    if (!a.log_regex.empty()) regex.emplace(a.log_regex);
    const auto excuses = apcloud::parse_excuses(read_excuses(a.source));
    o.release = apcloud::resolve_series(a.series, excuses, environment);
    auto retries = apcloud::select_retries(excuses, o);
    if (regex) retries = apcloud::filter_by_log(retries, *regex);
    if (a.submit) return submit(web, key, retries);
    for (const auto& r : retries) std::cout << apcloud::request_cgi_url(web, r) << "\n";
    return apcloud::exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "retry-autopkgtest-regressions: request.cgi URLs that run britney's autopkgtest regressions again"};
    Args args;
    declare(app, args);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? apcloud::exit_ok : apcloud::exit_usage;
    }
    return apcloud::run_main(program, [&] { return run(args); });
}
