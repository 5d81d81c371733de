// Unit tests of retry-autopkgtest-regressions' library: excuses.yaml read
// (the YAML adapter included), every filter on the fixture, request.cgi URLs,
// and the log search on file:// logs.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/excuses.hpp>
#include <autopkgtest_cloud/file_io.hpp>
#include <autopkgtest_cloud/result.hpp>
#include <autopkgtest_cloud/retries.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/yaml_json.hpp"
#include "temp_dir.hpp"

using namespace apcloud;

namespace {

std::string data_file(const std::string& name) {
    const char* dir = std::getenv("APCLOUD_TEST_DATA");
    REQUIRE(dir != nullptr);
    return read_file(std::string(dir) + "/excuses/" + name);
}

const Excuses& fixture() {
    static const Excuses excuses = parse_excuses(data_file("excuses.yaml"));
    return excuses;
}

const std::string web = "https://autopkgtest.example.org";

std::vector<std::string> urls(const std::vector<RetryRequest>& requests) {
    std::vector<std::string> out;
    for (const auto& r : requests) out.push_back(request_cgi_url(web, r));
    return out;
}

// The URL of a retry of `package` on `arch` for `trigger` (already encoded), and any more parameters.
std::string url(const std::string& arch, const std::string& package, const std::string& trigger,
                const std::string& more = "") {
    return web + "/request.cgi?release=noble&arch=" + arch + "&package=" + package + "&trigger=" + trigger +
           more;
}

const std::string glib = "glib2.0%2F2.80.0-1";
const std::string gtk = "gtk%2B3.0%2F3.24.41-4ubuntu1~24.04.1";
const std::string systemd = "systemd%2F255.4-1ubuntu8";
const std::string firefox = "firefox%2F1%3A126.0%2Bbuild2-0ubuntu1";

// Every regression of the fixture, in the order they are printed.
const std::vector<std::string> all_regressions = {
    url("amd64", "gedit", glib),      url("arm64", "nautilus", glib),  url("amd64", "gedit", gtk),
    url("s390x", "gedit", gtk),       url("s390x", "gtk%2B3.0", gtk),  url("riscv64", "systemd", systemd),
    url("amd64", "firefox", firefox), url("armhf", "firefox", firefox)};

}  // namespace

TEST_CASE("parse_excuses reads the fields the tool needs, and nothing else") {
    const Excuses& x = fixture();
    CHECK(x.generated_date == "2026-11-30 10:00:00.000000");
    REQUIRE(x.excuses.size() == 6);
    const Excuse& g = x.excuses[0];
    CHECK(g.item_name == "glib2.0");
    CHECK(g.source == "glib2.0");
    CHECK(g.new_version == "2.80.0-1");
    CHECK(g.old_version == "2.78.0-2");
    CHECK(g.age == 3.0);
    REQUIRE(g.tests.size() == 8);
    CHECK(g.tests[0].package == "gedit");
    CHECK(g.tests[0].version == "46.0-1");
    CHECK(g.tests[0].arch == "amd64");
    CHECK(g.tests[0].state == "REGRESSION");
    CHECK(g.tests[0].has_log());
    CHECK(g.tests[0].history_url == "https://autopkgtest.ubuntu.com/packages/g/gedit/noble/amd64");
    CHECK_FALSE(g.tests[0].artifacts_url);
    CHECK(g.tests[0].retry_url.value_or("").find("request.cgi?release=noble") != std::string::npos);
    // A test still running everywhere has no version; its log link is the running page.
    CHECK(g.tests[4].package == "gnome-shell");
    CHECK_FALSE(g.tests[4].version);
    CHECK(g.tests[4].log_url == "https://autopkgtest.ubuntu.com/running");
    CHECK_FALSE(g.tests[4].has_log());
    // An epoch in a tested version: split at the first '/', not at ':'.
    CHECK(g.tests[6].package == "nautilus");
    CHECK(g.tests[6].version == "1:46.1-1");

    CHECK(x.excuses[1].new_version == "3.24.41-4ubuntu1~24.04.1");
    CHECK_FALSE(x.excuses[1].tests[4].log_url);  // libreoffice on amd64: a lost request, no log
    CHECK(x.excuses[2].is_removal());
    CHECK(x.excuses[2].item_name == "-python-oldlib");
    CHECK(x.excuses[2].new_version == "-");
    CHECK(x.excuses[3].item_name == "systemd/riscv64");
    CHECK_FALSE(x.excuses[3].is_removal());
    CHECK_FALSE(x.excuses[3].age);
    CHECK(x.excuses[5].tests.empty());  // autopkgtest: {verdict: ...} only
    CHECK(excuses_series(x) == "noble");
}

TEST_CASE("compressed excuses (xz as Ubuntu publishes them, gzip) read as the plain file") {
    const Excuses xz = parse_excuses(data_file("excuses.yaml.xz"));
    const Excuses gz = parse_excuses(gzip_compress(data_file("excuses.yaml")));
    RetryOptions o;
    o.release = "noble";
    CHECK(urls(select_retries(xz, o)) == all_regressions);
    CHECK(urls(select_retries(gz, o)) == all_regressions);
    // xz's magic, then garbage; and gzip's.
    std::string bad_xz = data_file("excuses.yaml.xz").substr(0, 6) + "garbage";
    CHECK_THROWS_WITH_AS(parse_excuses(bad_xz), doctest::Contains("excuses.yaml: cannot decompress"),
                         ParseError);
    CHECK_THROWS_AS(parse_excuses("\x1f\x8b garbage"), ParseError);
}

TEST_CASE("every filter and addition on the fixture") {
    struct Row {
        const char* name;
        void (*set)(RetryOptions&);
        std::vector<std::string> expected;
    };
    const std::vector<Row> rows = {
        {"default: the regressions, removals skipped", [](RetryOptions&) {}, all_regressions},
        {"--state RUNNING: the pending tests (and lost requests)",
         [](RetryOptions& o) { o.states = {"RUNNING"}; },
         {url("amd64", "gnome-shell", glib), url("amd64", "libreoffice", gtk)}},
        {"--state RUNNING --state RUNNING-ALWAYSFAIL",
         [](RetryOptions& o) {
             o.states = {"RUNNING", "RUNNING-ALWAYSFAIL"};
         },
         {url("amd64", "gnome-shell", glib), url("arm64", "gnome-shell", glib),
          url("amd64", "libreoffice", gtk)}},
        {"--state ALWAYSFAIL",
         [](RetryOptions& o) { o.states = {"ALWAYSFAIL"}; },
         {url("amd64", "nautilus", glib), url("s390x", "libreoffice", gtk)}},
        {"--only-unknown: regressions have logs, pending tests have none",
         [](RetryOptions& o) {
             o.states = {"REGRESSION", "RUNNING"};
             o.only_unknown = true;
         },
         {url("amd64", "gnome-shell", glib), url("amd64", "libreoffice", gtk)}},
        {"--only-unknown alone", [](RetryOptions& o) { o.only_unknown = true; }, {}},
        {"--min-age 5 (an item without an age passes)",
         [](RetryOptions& o) { o.min_age = 5; },
         {all_regressions[2], all_regressions[3], all_regressions[4], all_regressions[5], all_regressions[6],
          all_regressions[7]}},
        {"--max-age 5",
         [](RetryOptions& o) { o.max_age = 5; },
         {all_regressions[0], all_regressions[1], all_regressions[5]}},
        {"--min-age 3 --max-age 3: both bounds included",
         [](RetryOptions& o) { o.min_age = o.max_age = 3; },
         {all_regressions[0], all_regressions[1], all_regressions[5]}},
        {"--min-age 5 --max-age 20",
         [](RetryOptions& o) {
             o.min_age = 5;
             o.max_age = 20;
         },
         {all_regressions[2], all_regressions[3], all_regressions[4], all_regressions[5]}},
        {"--blocks glib2.0",
         [](RetryOptions& o) { o.blocks = "glib2.0"; },
         {all_regressions[0], all_regressions[1]}},
        {"--blocks with a source whose item is binaries only",
         [](RetryOptions& o) { o.blocks = "systemd"; },
         {all_regressions[5]}},
        {"--blocks with an item name",
         [](RetryOptions& o) { o.blocks = "systemd/riscv64"; },
         {all_regressions[5]}},
        {"--blocks a removal: nothing", [](RetryOptions& o) { o.blocks = "python-oldlib"; }, {}},
        {"--blocks a source with no excuse", [](RetryOptions& o) { o.blocks = "hello"; }, {}},
        {"--blocked-by gedit: its regressions in every excuse",
         [](RetryOptions& o) { o.blocked_by = "gedit"; },
         {all_regressions[0], all_regressions[2], all_regressions[3]}},
        {"--blocked-by gedit --blocks gtk+3.0",
         [](RetryOptions& o) {
             o.blocked_by = "gedit";
             o.blocks = "gtk+3.0";
         },
         {all_regressions[2], all_regressions[3]}},
        {"--add-trigger (+ and ~ encoded), after the excuse's own",
         [](RetryOptions& o) {
             o.blocks = "glib2.0";
             o.add_triggers = {"gtk+3.0/3.24.41-4ubuntu1~24.04.1"};
         },
         {url("amd64", "gedit", glib, "&trigger=" + gtk), url("arm64", "nautilus", glib, "&trigger=" + gtk)}},
        {"--add-trigger of the excuse's own item is not repeated",
         [](RetryOptions& o) {
             o.blocks = "systemd";
             o.add_triggers = {"systemd/255.4-1ubuntu8"};
         },
         {all_regressions[5]}},
        {"--ppa, --all-proposed and several --add-trigger",
         [](RetryOptions& o) {
             o.blocks = "systemd";
             o.add_triggers = {"linux/6.8.0-31.31", "linux-meta/6.8.0-31.31"};
             o.ppas = {"alice/fixes", "bob/more"};
             o.all_proposed = true;
         },
         {url("riscv64", "systemd", systemd,
              "&trigger=linux%2F6.8.0-31.31&trigger=linux-meta%2F6.8.0-31.31&ppa=alice%2Ffixes&ppa=bob%2Fmore"
              "&all-proposed=1")}},
    };
    for (const auto& row : rows) {
        CAPTURE(row.name);
        RetryOptions o;
        o.release = "noble";
        row.set(o);
        CHECK(urls(select_retries(fixture(), o)) == row.expected);
    }
}

TEST_CASE("the triggers and PPAs of a retry") {
    RetryOptions o;
    o.release = "noble";
    o.blocks = "gtk+3.0";
    const auto retries = select_retries(fixture(), o);
    REQUIRE(retries.size() == 3);
    CHECK(retries[0].triggers == std::vector<std::string>{"gtk+3.0/3.24.41-4ubuntu1~24.04.1"});
    CHECK(retries[0].item == "gtk+3.0");
    CHECK(retries[0].log_url.value_or("").find("/g/gedit/20261128_091502_3e1aa@/log.gz") !=
          std::string::npos);
    const TestRequest t = retries[2].test_request();
    CHECK(t.package == "gtk+3.0");
    CHECK(t.triggers == retries[2].triggers);
    CHECK_NOTHROW(validate(t));

    // A britney testing a PPA names it in its retry links: retries keep it, unless --ppa says otherwise.
    const Excuses ppa = parse_excuses(data_file("excuses-ppa.yaml"));
    CHECK(excuses_series(ppa) == "noble");
    const std::string gnote =
        web +
        "/request.cgi?release=noble&arch=amd64&package=gnote&trigger=libxml%2B%2B2.6%2F2.42.2-"
        "1ubuntu1~ppa1";
    RetryOptions p;
    p.release = "noble";
    CHECK(urls(select_retries(ppa, p)) ==
          std::vector<std::string>{
              gnote + "&ppa=ci-train-ppa-service%2Fstable-phone-overlay&ppa=ci-train-ppa-service%2F5123"});
    p.ppas = {"alice/fixes"};
    CHECK(urls(select_retries(ppa, p)) == std::vector<std::string>{gnote + "&ppa=alice%2Ffixes"});
}

TEST_CASE("identical retries are given once") {
    const std::string yaml =
        "sources:\n"
        "- {item-name: aa, source: aa, new-version: '1', policy_info: {autopkgtest: {bb/2: {amd64: "
        "[REGRESSION]}}}}\n"
        "- {item-name: aa, source: aa, new-version: '1', policy_info: {autopkgtest: {bb/2: {amd64: "
        "[REGRESSION]}}}}\n";
    RetryOptions o;
    o.release = "sid";
    CHECK(select_retries(parse_excuses(yaml), o).size() == 1);
}

TEST_CASE("request_cgi_url encodes every value") {
    RetryRequest r;
    r.release = "noble";
    r.arch = "amd64";
    r.package = "libxml++2.6";
    r.triggers = {"libxml++2.6/2.42.2-1ubuntu1~ppa1", "glibc/2.39-0ubuntu8+b1"};
    r.ppas = {"ci-train-ppa-service/5123"};
    CHECK(request_cgi_url("http://127.0.0.1:8080//", r) ==
          "http://127.0.0.1:8080/request.cgi?release=noble&arch=amd64&package=libxml%2B%2B2.6"
          "&trigger=libxml%2B%2B2.6%2F2.42.2-1ubuntu1~ppa1&trigger=glibc%2F2.39-0ubuntu8%2Bb1"
          "&ppa=ci-train-ppa-service%2F5123");
    r.ppas.clear();
    r.all_proposed = true;
    CHECK(request_cgi_url("", r).substr(0, 13) == "/request.cgi?");
    CHECK(request_cgi_url("", r).find("&all-proposed=1") == request_cgi_url("", r).size() - 15);
}

TEST_CASE("the options are validated, naming the option and value") {
    auto check = [](void (*set)(RetryOptions&), const char* field, const char* value) {
        RetryOptions o;
        o.release = "noble";
        set(o);
        try {
            select_retries(fixture(), o);
            FAIL("accepted");
        } catch (const ValidationError& e) {
            CHECK(e.field() == field);
            CHECK(e.value() == value);
        }
    };
    check([](RetryOptions& o) { o.states = {"REGRESSIONS"}; }, "--state", "REGRESSIONS");
    check([](RetryOptions& o) { o.states.clear(); }, "--state", "");
    check([](RetryOptions& o) { o.release.clear(); }, "--series", "");
    check([](RetryOptions& o) { o.release = "No Such"; }, "--series", "No Such");
    check([](RetryOptions& o) { o.min_age = -1; }, "--min-age", "-1");
    check(
        [](RetryOptions& o) {
            o.min_age = 4;
            o.max_age = 2;
        },
        "--min-age", "4");
    check([](RetryOptions& o) { o.add_triggers = {"gtk+3.0"}; }, "triggers", "gtk+3.0");
    check([](RetryOptions& o) { o.add_triggers = {"x/1;rm -rf"}; }, "triggers", "x/1;rm -rf");
    check([](RetryOptions& o) { o.ppas = {"alice"}; }, "ppas", "alice");
    check([](RetryOptions& o) { o.blocked_by = "Gedit"; }, "package", "Gedit");
    try {
        RetryOptions o;
        o.states = {"NOPE"};
        o.release = "noble";
        validate(o);
    } catch (const ValidationError& e) {
        CHECK(std::string(e.what()).find("known: PASS, OLD_PASS") != std::string::npos);
    }
}

TEST_CASE("bad YAML and the wrong shapes are ParseErrors with the position or the field") {
    auto message = [](const std::string& text) {
        try {
            parse_excuses(text);
        } catch (const ParseError& e) {
            return std::string(e.what());
        }
        FAIL("accepted: " << text);
        return std::string();
    };
    CHECK(message("sources:\n- item-name: x\n  source: [unclosed\n") ==
          "excuses.yaml: line 4, column 1: did not find expected ',' or ']' (while parsing a flow sequence)");
    CHECK(message("a: 1\n  b: 2\n") ==
          "excuses.yaml: line 2, column 4: mapping values are not allowed in this context");
    CHECK(
        message("\tsources: []\n") ==
        "excuses.yaml: line 1, column 1: found character that cannot start any token (while scanning for the "
        "next token)");
    CHECK(message("").find("is not a mapping with a 'sources' list") != std::string::npos);
    CHECK(message("- just\n- a list\n").find("is not a mapping") != std::string::npos);
    CHECK(message("generated-date: x\n").find("has no 'sources' list") != std::string::npos);
    CHECK(message("sources: {a: 1}\n").find("has no 'sources' list") != std::string::npos);
    CHECK(message("sources:\n- just text\n") == "excuses.yaml: sources[0] is not a mapping");
    CHECK(message("sources:\n- item-name: x\n") == "excuses.yaml: sources[0]: source is missing");
    CHECK(
        message("sources:\n- {source: x, policy_info: {autopkgtest: {y/1: {amd64: REGRESSION}}}}\n") ==
        "excuses.yaml: sources[0] (x): policy_info.autopkgtest.y/1.amd64 is not a list [state, log, history, "
        "artifacts, retry]");
    CHECK(message("sources:\n- {source: x, policy_info: {autopkgtest: {y/1: [PASS]}}}\n") ==
          "excuses.yaml: sources[0] (x): policy_info.autopkgtest.y/1 is not a mapping of architectures");
    CHECK(message("sources:\n- {source: x, policy_info: {age: {current-age: soon}}}\n") ==
          "excuses.yaml: sources[0] (x): policy_info.age.current-age is not a number of days: 'soon'");
    CHECK(message("sources: []\n---\nsources: []\n").find("more than one YAML document") !=
          std::string::npos);
    // A bad value in the file is named with its excuse.
    const std::string bad =
        "sources:\n- {source: x, new-version: '1', policy_info: {autopkgtest: {Bad_Name/1: "
        "{amd64: [REGRESSION]}}}}\n";
    RetryOptions o;
    o.release = "sid";
    try {
        select_retries(parse_excuses(bad), o);
        FAIL("accepted");
    } catch (const ParseError& e) {
        CHECK(std::string(e.what()).find(
                  "the excuse of 'x', result 'Bad_Name' on 'amd64': invalid package") != std::string::npos);
    }
}

TEST_CASE("the YAML adapter: text stays text, nulls, anchors, limits") {
    using detail::parse_yaml;
    const auto j = parse_yaml(
        "a: 1.10\nb: '007'\nc: ~\nd:\ne: 'null'\nf: true\ng: &x [1, {k: v}]\nh: *x\n&y i: *y\n? j\n: |\n  "
        "text\n");
    CHECK(j["a"] == "1.10");
    CHECK(j["b"] == "007");
    CHECK(j["c"].is_null());
    CHECK(j["d"].is_null());
    CHECK(j["e"] == "null");
    CHECK(j["f"] == "true");
    CHECK(j["g"] == j["h"]);
    CHECK(j["h"][1]["k"] == "v");
    CHECK(j["i"] == "i");
    CHECK(j["j"] == "text\n");
    CHECK_THROWS_AS(parse_yaml("a: *nope\n"), ParseError);
    CHECK_THROWS_AS(parse_yaml("? [a]\n: b\n"), ParseError);
    std::string deep;
    for (int i = 0; i < 40; ++i) deep += "[";
    CHECK_THROWS_WITH_AS(parse_yaml(deep), "line 1, column 33: nested deeper than 32 levels", ParseError);
    // Aliases that would expand into far more nodes than the text has bytes.
    std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
    for (char c = 'b'; c <= 'h'; ++c)
        bomb += fmt::format("{}: &{} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n", c, c,
                            fmt::arg("p", static_cast<char>(c - 1)));
    CHECK_THROWS_AS(parse_yaml(bomb), ParseError);
    // The streamed sequence: elements go to the sink, one by one, and are not kept.
    std::vector<nlohmann::json> seen;
    const auto top = parse_yaml("x: 1\nitems:\n- a\n- [b]\ny: 2\n", "items",
                                [&](nlohmann::json&& e) { seen.push_back(std::move(e)); });
    CHECK(seen == std::vector<nlohmann::json>{"a", nlohmann::json::array({"b"})});
    CHECK(top["items"].empty());
    CHECK(top["y"] == "2");
}

TEST_CASE("resolve_web_url and resolve_series: option, then the file or the environment, then the default") {
    CHECK(resolve_web_url("", {}) == "http://127.0.0.1:8080");
    CHECK(resolve_excuses_source("x.yaml", {{"APCLOUD_EXCUSES_URL", "https://b.example/e.yaml"}}) ==
          "x.yaml");
    CHECK(resolve_excuses_source("", {{"APCLOUD_EXCUSES_URL", "https://b.example/e.yaml"}}) ==
          "https://b.example/e.yaml");
    CHECK(resolve_excuses_source("", {}).empty());
    CHECK(resolve_web_url("", {{"APCLOUD_WEB_URL", "https://tests.example/"}}) == "https://tests.example");
    CHECK(resolve_web_url("http://x:1", {{"APCLOUD_WEB_URL", "https://tests.example"}}) == "http://x:1");
    CHECK_THROWS_AS(resolve_web_url("ftp://x", {}), ValidationError);
    CHECK(resolve_series("jammy", fixture(), {}) == "jammy");
    CHECK(resolve_series("", fixture(), {{"APCLOUD_SERIES", "jammy"}}) == "noble");
    const Excuses bare = parse_excuses("sources: []\n");
    CHECK_FALSE(excuses_series(bare));
    CHECK(resolve_series("", bare, {{"APCLOUD_SERIES", "jammy"}}) == "jammy");
    CHECK_THROWS_AS(resolve_series("", bare, {}), ValidationError);
    // Links naming two series are no answer.
    const Excuses mixed = parse_excuses(
        "sources:\n- {source: x, policy_info: {autopkgtest: {y/1: {amd64: [PASS, null, "
        "'https://a/packages/y/noble/amd64'], arm64: [PASS, null, 'https://a/packages/y/jammy/arm64']}}}}\n");
    CHECK_FALSE(excuses_series(mixed));
}

TEST_CASE("--log-regex: logs fetched through their links (file:// here), gzip or not, searched by line") {
    test::TempDir d;
    d.write("a/log.gz",
            gzip_compress("setup\nE: Failed to fetch http://ports/x  Temporary failure resolving\n"));
    d.write("b/log.gz", "plain text log: a proxy decompressed it\nSegmentation fault (core dumped)\n");
    d.write("c/log.gz", gzip_compress("all good\n"));
    d.write("d/log.gz", "\x1f\x8b not really gzip");
    auto retry = [&](const std::string& package, const std::string& log) {
        RetryRequest r;
        r.release = "noble";
        r.arch = "amd64";
        r.package = package;
        r.triggers = {"x/1"};
        if (!log.empty()) r.log_url = log;
        return r;
    };
    const std::string base = "file://" + d.path.string();
    const std::vector<RetryRequest> all = {retry("a", base + "/a/log.gz"),
                                           retry("b", d.path.string() + "/b/log.gz"),
                                           retry("c", base + "/c/log.gz"),
                                           retry("d", base + "/d/log.gz"),
                                           retry("missing", base + "/nope/log.gz"),
                                           retry("running", "https://x/running"),
                                           retry("nolog", "")};
    auto packages = [](const std::vector<RetryRequest>& rs) {
        std::vector<std::string> out;
        for (const auto& r : rs) out.push_back(r.package);
        return out;
    };
    CHECK(packages(filter_by_log(all, LogRegex("Temporary failure|Segmentation fault"))) ==
          std::vector<std::string>{"a", "b"});
    CHECK(packages(filter_by_log(all, LogRegex("^all good$"))) == std::vector<std::string>{"c"});
    CHECK(packages(filter_by_log(all, LogRegex("setup.E:"))).empty());  // lines are searched one by one
    CHECK_THROWS_AS(LogRegex("(unclosed"), ValidationError);

    const LogRegex tail("needle$");
    CHECK(tail.matches(std::string(20000, 'x') + "needle\r\nnext"));
    CHECK_FALSE(LogRegex("a{3}").matches("aa\naa"));
}

TEST_CASE("resolve_api_key: a file's first line, else APCLOUD_API_KEY; never empty") {
    test::TempDir d;
    d.write("key", "  apc_0123_secret \n# comment\n");
    d.write("empty", "\n");
    CHECK(resolve_api_key((d.path / "key").string(), {{"APCLOUD_API_KEY", "other"}}) == "apc_0123_secret");
    CHECK(resolve_api_key("", {{"APCLOUD_API_KEY", "apc_env\n"}}) == "apc_env");
    CHECK_THROWS_AS(resolve_api_key("", {}), ValidationError);
    CHECK_THROWS_AS(resolve_api_key((d.path / "empty").string(), {}), ValidationError);
    CHECK_THROWS_AS(resolve_api_key((d.path / "none").string(), {}), NotFound);
}
