// Unit tests of the HTML pages, called as functions through the web app on a
// fixture index and directory store: status, headers, key content, escaping
// of hostile data on every page, the log split into sections, static files.
#include <doctest/doctest.h>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/layout.hpp>
#include <autopkgtest_cloud/result.hpp>
#include <autopkgtest_cloud/results_index.hpp>
#include <autopkgtest_cloud/store.hpp>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "temp_dir.hpp"
#include "web/log_view.hpp"
#include "web/templates.hpp"
#include "web/web_app.hpp"

using namespace apcloud;
using nlohmann::json;
using test::TempDir;

namespace {

const std::string hostile = "<script>alert(1)</script>\"'{{x}}&";

std::string share_dir() {
    const char* dir = std::getenv("APCLOUD_TEST_WEB");
    REQUIRE(dir != nullptr);
    return dir;
}

IndexedRun make_run(const std::string& package, int minute, int exitcode) {
    IndexedRun r;
    r.container = "autopkgtest-noble";
    r.release = "noble";
    r.arch = "amd64";
    r.package = package;
    r.run_id = make_run_id(1700000000 + minute * 60, package + std::to_string(minute));
    r.exitcode = exitcode;
    r.version = "1.0";
    r.triggers = {"glib2.0/2.80-1"};
    r.has_triggers = true;
    r.duration = 90;
    r.requester = "alice";
    r.uuid = "uuid-" + std::to_string(minute);
    r.summary = "smoke PASS\nbuild FAIL non-zero exit status 1\n";
    return r;
}

const char* const fixture_log =
    "autopkgtest [10:00:00]: starting date and time: 2023-11-14 22:13:20+0000\n"
    "autopkgtest [10:00:01]: version 5.28\n"
    "autopkgtest [10:00:02]: test smoke: preparing testbed\n"
    "autopkgtest [10:00:03]: test smoke: [-----------------------\n"
    "smoke says hello <b>\n"
    "autopkgtest [10:00:04]: test smoke: -----------------------]\n"
    "autopkgtest [10:00:05]: test build: preparing testbed\n"
    "autopkgtest [10:00:06]: test build: [-----------------------\n"
    "error: <script>alert('log')</script>\n"
    "autopkgtest [10:00:07]: test build: -----------------------]\n"
    "autopkgtest [10:00:08]: @@@@@@@@@@@@@@@@@@@@ summary\n"
    "smoke                PASS\n"
    "build                FAIL non-zero exit status 1\n";

struct Fixture {
    TempDir dir;
    ResultsIndex index{(dir.path / "idx").string()};
    web::RunningTests running;
    web::WebState state;
    std::unique_ptr<Store> store;
    std::unique_ptr<web::WebApp> app;
    IndexedRun with_log;

    Fixture() {
        std::filesystem::create_directories(dir.path / "store");
        store = open_store("file://" + (dir.path / "store").string());
        std::vector<IndexedRun> runs;
        for (int i = 0; i < 5; ++i) runs.push_back(make_run("gedit", i, i >= 3 ? 4 : 0));
        IndexedRun evil = make_run("evil", 7, 4);
        evil.version = hostile;
        evil.triggers = {hostile};
        evil.env = {"X=" + hostile};
        evil.requester = hostile;
        evil.summary = hostile + " FAIL " + hostile + "\n";
        runs.push_back(evil);
        with_log = runs[4];
        index.add(runs);
        store_run_files();
        running.apply(json({{"running", true}, {"package", "evil"}, {"release", "noble"}, {"architecture", "amd64"},
                            {"params", {{"triggers", {hostile}}, {"requester", hostile}}}, {"duration", 12},
                            {"logtail", hostile}})
                          .dump(),
                      1700000000);
        web::WebSettings settings;
        settings.releases = {"noble"};
        settings.arches = {"amd64"};
        settings.max_page = 50;
        settings.share_dir = share_dir();
        settings.banner_file = (dir.path / "banner").string();
        dir.write("banner", "Maintenance <tonight> & \"soon\"\n");
        state.set_statistics(std::make_shared<std::vector<ReleaseArchStats>>(index.statistics()));
        app = std::make_unique<web::WebApp>(index, running, state, store.get(), settings);
    }

    // log.gz and artifacts.tar.gz of `with_log`, packed as the worker packs them.
    void store_run_files() {
        dir.write("out/log", fixture_log);
        dir.write("out/summary", "smoke PASS\nbuild FAIL non-zero exit status 1\n");
        dir.write("out/exitcode", "4\n");
        dir.write("out/smoke-stdout", "hello from smoke <i>\n");
        dir.write("out/build-stderr", "build broke: <script>x</script>\n");
        const ResultFiles files = pack_results((dir.path / "out").string(), PackOptions{});
        const std::string base =
            result_dir(with_log.release, with_log.arch, with_log.package, with_log.run_id) + "/";
        store->ensure_container(with_log.container, ContainerAcl{});
        store->put(with_log.container, base + "log.gz", files.log_gz, PutOptions{});
        store->put(with_log.container, base + "artifacts.tar.gz", files.artifacts_tar_gz, PutOptions{});
    }

    http::ServerResponse get(const std::string& target, http::Headers headers = {}) const {
        http::ServerRequest r;
        r.method = "GET";
        r.target = target;
        auto q = target.find('?');
        r.raw_path = target.substr(0, q);
        r.path = percent_decode(r.raw_path);
        if (q != std::string::npos) r.query = http::parse_query(target.substr(q + 1));
        r.headers = std::move(headers);
        return app->handle(r);
    }

    std::string page(const std::string& target, int status = 200) const {
        auto r = get(target);
        CHECK_MESSAGE(r.status == status, target << ": " << r.body.substr(0, 400));
        CHECK_MESSAGE(r.headers["Content-Type"] == "text/html; charset=utf-8", target);
        return r.body;
    }
};

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

const std::string escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&apos;{{x}}&amp;";

}  // namespace

TEST_CASE("templates escape every value and inline partials") {
    web::Templates t(std::map<std::string, std::string>{{"_p", "<b>{{v}}</b>"}, {"page", "{{> _p}}|{{#list}}{{.}},{{/list}}|{{n}}"}});
    CHECK(t.render("page", {{"v", "<&>\"'"}, {"list", {"a", "<"}}, {"n", 3}}) == "<b>&lt;&amp;&gt;&quot;&apos;</b>|a,&lt;,|3");
    CHECK(t.render("page", {{"v", nullptr}, {"list", json::array()}}) == "<b></b>||");
    CHECK_THROWS_AS(t.render("nope", json::object()), NotFound);
    web::Templates empty(std::map<std::string, std::string>{{"p", "[{{#e}}shown {{e}}{{/e}}]"}});
    CHECK(empty.render("p", {{"e", ""}}) == "[]");
    CHECK(empty.render("p", {{"e", "x"}}) == "[shown x]");
    CHECK_THROWS_AS(web::Templates(std::map<std::string, std::string>{{"a", "{{#x}}"}}), ConfigError);
    CHECK_THROWS_AS(web::Templates(std::map<std::string, std::string>{{"a", "{{> missing}}"}}), ConfigError);
    CHECK_NOTHROW(web::Templates(share_dir() + "/templates"));
}

TEST_CASE("the log is split at autopkgtest's markers") {
    auto s = web::split_log(fixture_log);
    REQUIRE(s.size() == 4);
    CHECK(s[0].kind == "setup");
    CHECK(s[0].lines.size() == 2);
    CHECK(s[1].kind == "test");
    CHECK(s[1].name == "smoke");
    CHECK(s[1].first_line == 3);
    CHECK(s[2].name == "build");
    CHECK(s[2].first_line == 7);
    CHECK(s[3].kind == "summary");
    CHECK(s[3].first_line == 11);
    auto plain = web::split_log("no markers\nat all\n");
    REQUIRE(plain.size() == 1);
    CHECK(plain[0].lines.size() == 2);
    CHECK(web::split_log("").size() == 1);
}

TEST_CASE("home, package matrix, history and run pages") {
    Fixture f;
    auto home = f.page("/");
    CHECK(contains(home, "id=\"recent\""));
    CHECK(contains(home, "Maintenance &lt;tonight&gt; &amp; &quot;soon&quot;"));
    CHECK(contains(home, "/static/autopkgtest.db"));
    CHECK(contains(home, "/packages/gedit/noble/amd64/"));

    auto pkg = f.page("/packages/gedit");
    CHECK(contains(pkg, "id=\"matrix\""));
    CHECK(contains(pkg, "href=\"/packages/gedit/noble/amd64\""));
    CHECK(contains(pkg, "result-fail"));  // the newest run failed
    CHECK(f.page("/packages/g/gedit") == pkg);
    f.page("/packages/nosuchpkg", 404);

    auto history = f.page("/packages/gedit/noble/amd64");
    CHECK(contains(history, "id=\"history\""));
    // Retry: the two failures share version and triggers: one link, on the newest.
    std::size_t links = 0;
    for (auto p = history.find("class=\"retry\""); p != std::string::npos; p = history.find("class=\"retry\"", p + 1))
        ++links;
    CHECK(links == 1);
    CHECK(contains(history, "/request.cgi?release=noble&amp;arch=amd64&amp;package=gedit"));

    auto paged = f.page("/packages/gedit/noble/amd64?limit=2");
    CHECK(contains(paged, "id=\"older\""));
    const auto at = paged.find("before=");
    REQUIRE(at != std::string::npos);
    const std::string cursor = paged.substr(at + 7, paged.find('"', at) - at - 7);
    auto second = f.page("/packages/gedit/noble/amd64?limit=2&before=" + cursor);
    CHECK(!contains(second, "class=\"retry\""));  // the newer failure has the link
    CHECK(contains(second, "Newest"));
    f.page("/packages/gedit/noble/amd64?before=junk", 400);

    const std::string run_url = "/packages/gedit/noble/amd64/" + f.with_log.run_id;
    auto run = f.page(run_url);
    CHECK(contains(run, "id=\"section-setup\""));
    CHECK(contains(run, "id=\"section-test-smoke\""));
    CHECK(contains(run, "id=\"section-test-build\""));
    CHECK(contains(run, "section-pass"));
    CHECK(contains(run, "section-fail"));
    CHECK(contains(run, "id=\"L9\""));
    CHECK(contains(run, "error: &lt;script&gt;alert(&apos;log&apos;)&lt;/script&gt;"));
    CHECK(contains(run, "hello from smoke &lt;i&gt;"));
    CHECK(contains(run, "build broke: &lt;script&gt;x&lt;/script&gt;"));
    CHECK(contains(run, "non-zero exit status 1"));
    CHECK(!contains(run, "<script>x"));

    auto redirect = f.get("/run/" + *f.with_log.uuid);
    CHECK(redirect.status == 302);
    CHECK(redirect.headers["Location"] == run_url);
    f.page("/run/no-such-uuid", 404);
    f.page("/packages/gedit/noble/amd64/20990101_000000_00000@", 404);
}

TEST_CASE("a run without files in the store still has its page") {
    Fixture f;
    auto runs = f.index.history("gedit", "noble", "amd64", "", std::nullopt, 50, Viewer{}).runs;
    auto run = f.page("/packages/gedit/noble/amd64/" + runs.back().run.run_id);
    CHECK(contains(run, "This run has no log.gz"));
    std::filesystem::remove(f.dir.path / "banner");
    CHECK(!contains(f.page("/"), "id=\"banner\""));
    CHECK(contains(run, "id=\"tests\""));
}

TEST_CASE("hostile data is shown as text on every page") {
    Fixture f;
    auto evil_id = f.index.history("evil", "noble", "amd64", "", std::nullopt, 5, Viewer{}).runs.at(0).run.run_id;
    for (const std::string& target :
         {std::string("/"), std::string("/packages/evil"), std::string("/packages/evil/noble/amd64"),
          "/packages/evil/noble/amd64/" + evil_id, std::string("/recent"), std::string("/running"),
          std::string("/user/") + percent_encode(hostile) + "/"}) {
        auto body = f.page(target);
        CHECK_MESSAGE(!contains(body, "<script>alert(1)"), target);
        CHECK_MESSAGE(contains(body, escaped), target);
    }
    CHECK(!contains(f.page("/statistics"), "<script>alert(1)"));
    // In the path and in query parameters, too: the error page escapes them.
    auto bad = f.page("/recent?result=" + percent_encode(hostile), 400);
    CHECK(!contains(bad, "<script>alert(1)"));
    CHECK(contains(bad, "&lt;script&gt;"));
    auto missing = f.page("/" + percent_encode(hostile), 404);
    CHECK(!contains(missing, "<script>alert(1)"));
    auto feed = f.get("/feeds/evil.atom");
    CHECK(feed.status == 200);
    CHECK(!contains(feed.body, "<script>alert(1)"));
}

TEST_CASE("lists: recent with filters, user, testlist, statistics, running, queued") {
    Fixture f;
    auto recent = f.page("/recent?result=fail&limit=2");
    CHECK(contains(recent, "result-fail"));
    CHECK(!contains(recent, "badge result-pass"));
    CHECK(contains(recent, "offset=2"));
    CHECK(contains(recent, "<option value=\"fail\" selected>"));
    auto user = f.page("/user/alice/");
    CHECK(contains(user, "Tests of alice"));
    CHECK(contains(user, "/packages/gedit/noble/amd64/"));
    auto list = f.page("/testlist");
    CHECK(contains(list, "href=\"/packages/gedit\""));
    CHECK(contains(list, "id=\"prefix-e\""));
    auto stats = f.page("/statistics");
    CHECK(contains(stats, "id=\"statistics\""));
    CHECK(contains(stats, "data-chart=\"[{&quot;day&quot;:"));
    CHECK(contains(stats, "/static/chart.js/"));
    auto running = f.page("/running");
    CHECK(contains(running, "id=\"running\""));
    CHECK(contains(running, "/packages/evil"));
    f.page("/queued");
    f.page("/recent?release=No+Such", 400);
    auto feed = f.get("/feeds/gedit.atom", {{"Host", "results.example:8080"}});
    CHECK(feed.status == 200);
    CHECK(feed.headers["Content-Type"] == "application/atom+xml; charset=utf-8");
    CHECK(contains(feed.body, "http://results.example:8080/packages/gedit"));
    CHECK(contains(feed.body, "gedit 1.0 fail on noble/amd64 (was pass)"));
    CHECK(f.get("/feeds/nosuch.atom").status == 404);
    auto search = f.get("/packages?name=gedit");
    CHECK(search.status == 302);
    CHECK(search.headers["Location"] == "/packages/gedit");
    f.page("/packages?name=" + percent_encode("../x"), 400);
    // The request form: GET to request.cgi (which confirms before queuing), values escaped.
    auto form = f.page("/request?package=" + percent_encode("<b>\"x") + "&release=noble");
    CHECK(contains(form, "action=\"/request.cgi\""));
    CHECK(contains(form, "<option value=\"noble\" selected>"));
    CHECK(contains(form, "value=\"&lt;b&gt;&quot;x\""));
    CHECK(!contains(form, "<b>\"x"));
}

TEST_CASE("pages and static files carry validators") {
    Fixture f;
    auto first = f.get("/packages/gedit");
    REQUIRE(first.headers.count("ETag"));
    CHECK(f.get("/packages/gedit", {{"If-None-Match", first.headers["ETag"]}}).status == 304);
    auto css = f.get("/static/apcloud/style.css");
    CHECK(css.status == 200);
    CHECK(css.headers["Content-Type"] == "text/css; charset=utf-8");
    CHECK(css.headers.count("Last-Modified"));
    CHECK(f.get("/static/apcloud/style.css", {{"If-None-Match", css.headers["ETag"]}}).status == 304);
    CHECK(f.get("/static/apcloud/style.css", {{"If-Modified-Since", css.headers["Last-Modified"]}}).status == 304);
    CHECK(f.get("/static/apcloud/..%2F..%2Fmeson.build").status == 404);
    CHECK(f.get("/static/apcloud/../templates/home.mustache").status == 404);
    auto bootstrap = f.get("/static/bootstrap/css/bootstrap.min.css");
    CHECK(bootstrap.status == 200);
    CHECK(!bootstrap.file.empty());
    CHECK(f.get("/static/chart.js/chart.min.js").status == 200);
    // What browsers fetch on their own is there (an Atom feed has no icon link).
    auto icon = f.get("/favicon.ico");
    CHECK(icon.status == 200);
    CHECK(icon.headers["Content-Type"] == "image/svg+xml");
    // The data side keeps JSON errors.
    auto api = f.get("/api/v1/packages/nosuchpkg");
    CHECK(api.status == 404);
    CHECK(api.headers["Content-Type"] == "application/json");
}
