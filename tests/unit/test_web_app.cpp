// Unit tests of the web app's handlers, called as functions on a fixture index:
// status codes, headers and the JSON each route answers.
#include <doctest/doctest.h>
#include <autopkgtest_cloud/layout.hpp>
#include <autopkgtest_cloud/results_index.hpp>
#include <autopkgtest_cloud/store.hpp>

#include <nlohmann/json.hpp>

#include "temp_dir.hpp"
#include "web/json_views.hpp"
#include "web/web_app.hpp"

using namespace apcloud;
using nlohmann::json;
using test::TempDir;

namespace {

IndexedRun make_run(const std::string& package, int minute, int exitcode, const std::string& container = "") {
    IndexedRun r;
    r.container = container.empty() ? "autopkgtest-noble" : container;
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
    r.is_private = r.container.rfind("private-", 0) == 0;
    return r;
}

// An app over a fresh index with a few runs, a directory store and some queued/running state.
struct Fixture {
    TempDir dir;
    ResultsIndex index{(dir.path / "idx").string()};
    web::RunningTests running;
    web::WebState state;
    web::Metrics metrics;
    std::unique_ptr<Store> store = open_store("file://" + (dir.path / "store").string());
    std::unique_ptr<web::WebApp> app;

    Fixture() {
        std::filesystem::create_directories(dir.path / "store");
        std::vector<IndexedRun> runs;
        for (int i = 0; i < 5; ++i) runs.push_back(make_run("gedit", i, i == 4 ? 4 : 0));
        runs.push_back(make_run("gedit", 10, 0, "private-autopkgtest-noble-bob-secret"));
        index.add(runs);
        web::WebSettings settings;
        settings.releases = {"noble"};
        settings.arches = {"amd64"};
        settings.max_page = 50;
        app = std::make_unique<web::WebApp>(index, running, state, store.get(), settings, &metrics);
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
    json get_json(const std::string& target, int status = 200) const {
        auto r = get(target);
        CHECK_MESSAGE(r.status == status, target << ": " << r.body);
        CHECK(r.headers["Content-Type"] == "application/json");
        return json::parse(r.body);
    }
};

}  // namespace

TEST_CASE("package overview, history pages and one run") {
    Fixture f;
    auto overview = f.get_json("/api/v1/packages/gedit");
    REQUIRE(overview["latest"].size() == 1);
    CHECK(overview["latest"][0]["outcome"] == "fail");
    CHECK(f.get_json("/api/v1/packages/g/gedit")["package"] == "gedit");  // the reference's prefix form

    auto history = f.get_json("/api/v1/packages/gedit/noble/amd64?limit=2");
    REQUIRE(history["runs"].size() == 2);
    const std::string before = history["next_before"];
    auto older = f.get_json("/api/v1/packages/g/gedit/noble/amd64?limit=10&before=" + before);
    CHECK(older["runs"].size() == 3);
    CHECK(older["next_before"].is_null());
    CHECK(older["runs"][0]["run_id"] < before);

    const std::string run_id = older["runs"][0]["run_id"];
    auto run = f.get_json("/api/v1/packages/gedit/noble/amd64/" + run_id);
    CHECK(run["run_id"] == run_id);
    REQUIRE(run["tests"].size() == 2);
    CHECK(run["tests"][1]["name"] == "build");
    CHECK(run["tests"][1]["result"] == "FAIL");
    CHECK(run["tests"][1]["detail"] == "non-zero exit status 1");
    CHECK(run["urls"]["log"] == "/results/autopkgtest-noble/noble/amd64/g/gedit/" + run_id + "/log.gz");
    CHECK(run["retry"].is_null());  // a pass gets no retry link
    auto failed =
        f.get_json("/api/v1/packages/gedit/noble/amd64/" + history["runs"][0]["run_id"].get<std::string>());
    CHECK(failed["retry"] == "/request.cgi?release=noble&arch=amd64&package=gedit&trigger=glib2.0%2F2.80-1");
    CHECK(f.get_json("/api/v1/run/uuid-1")["run_id"].is_string());
}

TEST_CASE("bad input is a 400 naming the parameter, unknown things a 404, never a 500") {
    Fixture f;
    auto bad = f.get_json("/api/v1/packages/gedit/noble/amd64?limit=0", 400);
    CHECK(bad["error"].get<std::string>().find("limit") != std::string::npos);
    CHECK(f.get_json("/api/v1/packages/gedit/noble/amd64?limit=x", 400)["error"].get<std::string>().find(
              "'x'") != std::string::npos);
    CHECK(f.get_json("/api/v1/packages/Bad_Name", 400)["error"].get<std::string>().find("package") !=
          std::string::npos);
    f.get_json("/api/v1/packages/gedit/NOBLE/amd64", 400);
    f.get_json("/api/v1/packages/nothere", 404);
    f.get_json("/api/v1/packages/gedit/noble/amd64/20240101_000000_aaaaa@", 404);
    f.get_json("/api/v1/run/no-such-uuid", 404);
    f.get_json("/api/v1/recent?result=great", 400);
    f.get_json("/nothing/here", 404);
    f.get_json("/api/v1/packages/gedit/noble/amd64?before=yesterday", 400);
    http::ServerRequest post;
    post.method = "POST";
    post.target = post.path = post.raw_path = "/api/v1/recent";
    auto r = f.app->handle(post);
    CHECK(r.status == 405);
    CHECK(r.headers["Allow"] == "GET, HEAD");
}

TEST_CASE("private runs stay hidden from anonymous readers, everywhere") {
    Fixture f;
    CHECK(f.get_json("/api/v1/recent").size() == 5);
    f.get_json("/api/v1/packages/gedit/noble/amd64?container=private-autopkgtest-noble-bob-secret", 200);
    CHECK(f.get_json(
               "/api/v1/packages/gedit/noble/amd64?container=private-autopkgtest-noble-bob-secret")["runs"]
              .empty());
    CHECK(f.get_json("/api/v1/results")["results"].size() == 5);
    CHECK(f.get("/results/private-autopkgtest-noble-bob-secret").status == 404);
}

TEST_CASE("recent.json in the reference's shape, and the feed") {
    Fixture f;
    auto recent = f.get_json("/api/experimental/recent.json?limit=2");
    REQUIRE(recent.size() == 2);
    for (const char* key :
         {"version", "triggers", "additional_params", "human_date", "human_sec", "requester", "code", "url",
          "show_retry", "all_proposed", "run_id", "package", "release", "arch"})
        CHECK_MESSAGE(recent[0].contains(key), key);
    CHECK(recent[0]["code"] == "fail");
    CHECK(recent[0]["show_retry"] == true);
    CHECK(recent[0]["human_sec"] == "1m 30s");
    auto feed = f.get_json("/api/v1/results?since=0&limit=3");
    CHECK(feed["results"].size() == 3);
    CHECK(feed["more"] == true);
    auto rest = f.get_json("/api/v1/results?since=" + std::to_string(feed["next"].get<std::int64_t>()));
    CHECK(rest["results"].size() == 2);
    CHECK(rest["more"] == false);
}

TEST_CASE("queues, running tests and the reference's JSON files") {
    Fixture f;
    CHECK(f.get("/queues.json").status == 503);  // not read yet
    std::map<std::string, std::uint64_t> sizes = {{"debci-noble-amd64", 2}};
    std::map<std::string, std::vector<std::string>> bodies = {
        {"debci-noble-amd64",
         {"gedit\n{\"requester\": \"alice\", \"triggers\": [\"glib2.0/2.80-1\"]}",
          "secret\n{\"ppas\": [\"bob:tok@bob/secret\"], \"swiftuser\": \"bob\"}"}}};
    f.state.set_queues(std::make_shared<web::QueueSnapshot>(
        web::QueueSnapshot::make({"noble"}, {"amd64"}, sizes, bodies, 1700000000)));
    auto queues = f.get_json("/queues.json");
    REQUIRE(queues["ubuntu"]["noble"]["amd64"].size() == 2);
    CHECK(queues["ubuntu"]["noble"]["amd64"][1] == "private job");
    CHECK(queues["huge"]["noble"]["amd64"].empty());
    auto queued = f.get_json("/queued.json");
    CHECK(queued["queues"]["ubuntu"]["noble"]["amd64"]["size"] == 2);
    CHECK(f.get_json("/queue_size.json")["ppa"]["noble"]["amd64"] == 0);
    auto positions = f.get_json("/api/v1/queued");
    REQUIRE(positions.size() == 2);
    CHECK(positions[0]["position"] == 1);
    CHECK(positions[0]["estimated_start"].is_string());  // from the recent runs' durations
    CHECK(positions[1]["package"].is_null());            // private: nothing shown

    // Cancelled requests (public or private) are left out of every view, sizes and positions too.
    sizes["debci-noble-amd64"] = 3;
    bodies["debci-noble-amd64"] = {
        "gedit\n{\"uuid\": \"11111111-1111-4111-8111-111111111111\"}",
        "secret\n{\"ppas\": [\"bob:tok@bob/secret\"], \"swiftuser\": \"bob\", \"uuid\": "
        "\"22222222-2222-4222-8222-222222222222\"}",
        "hello\n{\"uuid\": \"33333333-3333-4333-8333-333333333333\"}"};
    f.state.set_queues(std::make_shared<web::QueueSnapshot>(web::QueueSnapshot::make(
        {"noble"}, {"amd64"}, sizes, bodies, 1700000000,
        {"11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"})));
    CHECK(f.get_json("/queues.json")["ubuntu"]["noble"]["amd64"] ==
          nlohmann::json::array({"hello\n{\"uuid\": \"33333333-3333-4333-8333-333333333333\"}"}));
    CHECK(f.get_json("/queue_size.json")["ubuntu"]["noble"]["amd64"] == 1);
    positions = f.get_json("/api/v1/queued");
    REQUIRE(positions.size() == 1);
    CHECK(positions[0]["package"] == "hello");
    CHECK(positions[0]["position"] == 1);
    f.state.set_queues(std::make_shared<web::QueueSnapshot>(
        web::QueueSnapshot::make({"noble"}, {"amd64"}, {{"debci-noble-amd64", 2}}, {
            {"debci-noble-amd64", {"gedit\n{\"requester\": \"alice\", \"triggers\": [\"glib2.0/2.80-1\"]}",
                                   "secret\n{\"ppas\": [\"bob:tok@bob/secret\"], \"swiftuser\": \"bob\"}"}}},
            1700000000)));

    f.running.apply(R"({"architecture": "amd64", "duration": 42, "logtail": "hello", "package": "gedit",
                        "params": {"triggers": ["glib2.0/2.80-1"], "requester": "alice"}, "release": "noble",
                        "running": true})",
                    1700000000);
    auto running = f.get_json("/static/running.json");
    const std::string hash = "requester_alice;triggers_['glib2.0/2.80-1'];";
    REQUIRE(running["gedit"].contains(hash));
    CHECK(running["gedit"][hash]["noble"]["amd64"][1] == 42);
    CHECK(f.get_json("/api/v1/packages/gedit")["running"].size() == 1);
    CHECK(f.get_json("/api/v1/packages/gedit")["queued"].size() == 1);
    auto user = f.get_json("/api/v1/user/alice");
    CHECK(user["results"].size() == 5);
    CHECK(user["running"].size() == 1);
    CHECK(user["queued"].size() == 1);
    f.running.expire(1700000000 + 31);
    CHECK(f.get_json("/api/v1/running")[0]["stale"] == true);
    f.running.expire(1700000000 + 101);
    CHECK(f.get_json("/api/v1/running").empty());
}

TEST_CASE("conditional GET, the published database and /metrics") {
    Fixture f;
    auto first = f.get("/api/v1/recent");
    REQUIRE(first.headers.count("ETag"));
    auto again = f.get("/api/v1/recent", {{"If-None-Match", first.headers["ETag"]}});
    CHECK(again.status == 304);
    CHECK(again.body.empty());
    CHECK(f.get("/static/autopkgtest.db").status == 503);
    auto pub = std::make_shared<web::Publication>();
    pub->path = (f.dir.path / "pub.db").string();
    pub->sha256 = f.index.snapshot(pub->path);
    pub->published_at = 1700000000;
    f.state.set_publication(pub);
    auto db = f.get("/static/autopkgtest.db");
    CHECK(db.status == 200);
    CHECK(db.file == pub->path);
    CHECK(db.headers["ETag"] == "\"" + pub->sha256 + "\"");
    CHECK(db.headers["Content-Digest"].rfind("sha-256=:", 0) == 0);
    CHECK(f.get("/static/autopkgtest.db", {{"If-None-Match", "\"" + pub->sha256 + "\""}}).status == 304);
    CHECK(f.get("/static/autopkgtest.db.sha256").body == pub->sha256);
    auto metrics = f.get("/metrics");
    CHECK(metrics.body.find("apcloud_http_requests_total{route=\"api.recent\",status=\"200\"}") !=
          std::string::npos);
    CHECK(metrics.body.find("apcloud_index_runs 6") != std::string::npos);
}

TEST_CASE("/results serves the store with Swift's listing semantics") {
    Fixture f;
    f.store->ensure_container("autopkgtest-noble", ContainerAcl::public_container());
    const std::string dir = result_dir("noble", "amd64", "gedit", make_run_id(1700000000, "x"));
    f.store->put("autopkgtest-noble", dir + "/log.gz", "gz",
                 {"text/plain; charset=UTF-8", std::string("gzip")});
    f.store->put("autopkgtest-noble", dir + "/result.tar", "tar", {"application/x-tar", std::nullopt});
    auto plain = f.get("/results/autopkgtest-noble?prefix=noble/&delimiter=@");
    CHECK(plain.status == 200);
    CHECK(plain.body == dir + "\n");
    auto listing = json::parse(f.get("/results/autopkgtest-noble?format=json").body);
    REQUIRE(listing.size() == 2);
    CHECK(listing[0]["name"] == dir + "/log.gz");
    CHECK(listing[0]["bytes"] == 2);
    CHECK(f.get("/results/autopkgtest-noble?prefix=jammy/").status == 204);
    CHECK(f.get("/results/autopkgtest-nothere").status == 404);
    auto log = f.get("/results/autopkgtest-noble/" + dir + "/log.gz");
    CHECK(log.status == 200);
    REQUIRE(log.producer);  // streamed from the store, never read whole
    std::string body, chunk;
    while (log.producer(chunk)) body += chunk;
    CHECK(body == "gz");
    CHECK(log.headers["Content-Encoding"] == "gzip");
    CHECK(log.headers["Content-Type"] == "text/plain; charset=UTF-8");
    CHECK(f.get("/results/autopkgtest-noble/" + dir + "/missing").status == 404);
    CHECK(f.get("/results/autopkgtest-noble/../etc/passwd").status == 400);
}

TEST_CASE("the text writer of runs writes what the DOM's dump() writes, hostile values included") {
    IndexedRecord rec;
    rec.seq = 42;
    rec.run = make_run("gedit", 1, 4);
    rec.run.version = "1.0\"<script>\\ \x01\x1f\x7f \n\t\b\f\r é 日本 😀";
    rec.run.triggers = {"a\"b/1", "{{x}}/2"};
    rec.run.env = {"X=\u00e9", "Y=\x02"};
    rec.run.ppas = {"bob/ppa"};
    rec.run.testname = "t\"n";
    rec.run.requester = std::string("bad \xff\xfe utf-8");  // replaced by U+FFFD, as nlohmann does
    rec.run.all_proposed = true;
    rec.run.duration.reset();
    rec.run.summary = "smoke PASS\nx\"y FAIL <b>bad</b>\n";
    for (bool summary : {false, true}) {
        std::string text;
        web::append_run_json(text, rec, summary);
        CHECK(text == web::run_json(rec, summary).dump(-1, ' ', false, json::error_handler_t::replace));
    }
    HistoryPage page;
    page.runs = {rec, rec};
    page.next_before = rec.run.run_id;
    const json dom = {{"package", "gedit"},
                      {"release", "noble"},
                      {"arch", "amd64"},
                      {"container", "autopkgtest-noble"},
                      {"runs", {web::run_json(rec), web::run_json(rec)}},
                      {"next_before", rec.run.run_id}};
    CHECK(web::history_json("gedit", "noble", "amd64", "autopkgtest-noble", page) ==
          dom.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
    page.next_before.reset();
    page.runs.clear();
    CHECK(json::parse(web::history_json("gedit", "noble", "amd64", "autopkgtest-noble", page))["next_before"]
              .is_null());
}
