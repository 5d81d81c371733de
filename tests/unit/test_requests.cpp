// Unit tests of the request API through the web app, over the embedded (SQLite)
// broker: each answer AND what reached, or did not reach, the queue.
#include <doctest/doctest.h>
#include <autopkgtest_cloud/access.hpp>
#include <autopkgtest_cloud/broker.hpp>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/file_io.hpp>
#include <autopkgtest_cloud/layout.hpp>
#include <autopkgtest_cloud/request.hpp>
#include <autopkgtest_cloud/results_index.hpp>
#include <autopkgtest_cloud/routing.hpp>
#include <autopkgtest_cloud/url.hpp>

#include <ctime>
#include <nlohmann/json.hpp>

#include "temp_dir.hpp"
#include "web/requests.hpp"
#include "web/web_app.hpp"

using namespace apcloud;
using nlohmann::json;
using test::TempDir;

namespace {

const char* const access_text =
    "[admins]\nusers = root\n"
    "[team desktop]\nusers = carol\npackages = gedit\n";

struct Fixture {
    TempDir dir;
    ResultsIndex index{(dir.path / "idx").string()};
    web::RunningTests running;
    web::WebState state;
    std::string broker_url = "sqlite://" + (dir.path / "queue.db").string();
    std::unique_ptr<Broker> broker = open_broker(broker_url);
    std::unique_ptr<web::RequestApi> api;
    std::unique_ptr<web::WebApp> app;
    std::string root_key, carol_key, mallory_key;
    const std::string queue = "debci-noble-amd64";

    explicit Fixture(int per_minute = 600, int burst = 100) {
        for (const auto& q : queue_names({"noble"}, {"amd64", "arm64"})) broker->declare_queue(q);
        const auto now = static_cast<std::int64_t>(std::time(nullptr));
        auto root = make_api_key("root", now), carol = make_api_key("carol", now),
             mallory = make_api_key("mallory", now);
        root_key = root.key;
        carol_key = carol.key;
        mallory_key = mallory.key;
        dir.write("api-keys", format_api_keys({root.record, carol.record, mallory.record}));
        dir.write("access.conf", access_text);
        web::RequestSettings s;
        s.releases = {"noble"};
        s.arches = {"amd64", "arm64"};
        s.keys_file = (dir.path / "api-keys").string();
        s.access_file = (dir.path / "access.conf").string();
        s.trusted_user_header = "X-Remote-User";
        s.trusted_proxies = {"127.0.0.1"};
        s.requests_per_minute = per_minute;
        s.burst = burst;
        api = std::make_unique<web::RequestApi>([this] { return open_broker(broker_url); }, index, running,
                                                state, s);
        web::WebSettings ws;
        ws.releases = {"noble"};
        ws.arches = {"amd64", "arm64"};
        app = std::make_unique<web::WebApp>(index, running, state, nullptr, ws, nullptr, api.get());
    }

    http::ServerResponse call(const std::string& method, const std::string& target,
                              http::Headers headers = {}, std::string body = "",
                              std::string remote = "192.0.2.1") const {
        http::ServerRequest r;
        r.method = method;
        r.target = target;
        auto q = target.find('?');
        r.raw_path = target.substr(0, q);
        r.path = percent_decode(r.raw_path);
        if (q != std::string::npos) r.query = http::parse_query(target.substr(q + 1));
        r.headers = std::move(headers);
        r.body = std::move(body);
        r.remote = std::move(remote);
        return app->handle(r);
    }
    json get(const std::string& target, const std::string& key, int status) const {
        auto r = call("GET", target, {{"Authorization", "Bearer " + key}, {"Accept", "application/json"}});
        CHECK_MESSAGE(r.status == status, target << ": " << r.body);
        return json::parse(r.body);
    }
    std::vector<std::string> queued(const std::string& q = "debci-noble-amd64") const {
        return broker->peek(q, 100);
    }
};

const std::string gedit = "/request.cgi?release=noble&arch=amd64&package=gedit&trigger=gedit%2F1.0-1";

// A failed run of gedit on noble, triggered by `triggers`.
IndexedRun failed_run(const std::string& arch, std::int64_t started, std::vector<std::string> triggers) {
    IndexedRun run;
    run.container = "autopkgtest-noble";
    run.release = "noble";
    run.arch = arch;
    run.package = "gedit";
    run.run_id = make_run_id(started, "gedit");
    run.exitcode = 4;
    run.triggers = std::move(triggers);
    run.has_triggers = true;
    return run;
}

}  // namespace

TEST_CASE("a valid request is queued with the requester and a uuid, and the answer says where") {
    Fixture f;
    auto a = f.get(gedit, f.carol_key, 200);
    REQUIRE(a["requests"].size() == 1);
    const auto& r = a["requests"][0];
    CHECK(r["queue"] == f.queue);
    CHECK(r["requester"] == "carol");
    CHECK(r["allowed_by"] == "team desktop");
    CHECK(r["position"] == 1);
    CHECK(r["links"]["result"] == "/run/" + r["uuid"].get<std::string>());
    const auto q = f.queued();
    REQUIRE(q.size() == 1);
    const TestRequest sent = parse_request(q[0]);
    CHECK(sent.package == "gedit");
    CHECK(sent.triggers == std::vector<std::string>{"gedit/1.0-1"});
    CHECK(sent.requester == std::optional<std::string>("carol"));
    CHECK(sent.uuid == std::optional<std::string>(r["uuid"].get<std::string>()));
    CHECK(sent.submit_time.has_value());
}

TEST_CASE("one request per arch, and batches through POST /api/v1/test") {
    Fixture f;
    auto a = f.get("/request.cgi?release=noble&arch=amd64&arch=arm64&package=gedit&env=A%3D1%3BB%3D2",
                   f.root_key, 200);
    CHECK(a["requests"].size() == 2);
    CHECK(f.queued().size() == 1);
    CHECK(f.queued("debci-noble-arm64").size() == 1);
    CHECK(parse_request(f.queued()[0]).env == std::vector<std::string>{"A=1", "B=2"});
    auto r = f.call(
        "POST", "/api/v1/test", {{"Authorization", "Bearer " + f.root_key}},
        R"([{"package": "nautilus", "release": "noble", "arch": ["amd64"], "triggers": ["glib2.0/2.80-1"]},
                        {"package": "gtk+3.0", "release": "noble", "arch": "arm64", "all-proposed": true}])");
    CHECK_MESSAGE(r.status == 200, r.body);
    CHECK(json::parse(r.body)["requests"].size() == 2);
    CHECK(f.queued().size() == 2);
    CHECK(parse_request(f.queued("debci-noble-arm64")[1]).all_proposed);
    CHECK(f.call("GET", "/api/v1/test", {{"Authorization", "Bearer " + f.root_key}}).status == 405);
}

TEST_CASE("invalid and unknown parameters are 400s naming them; nothing is queued") {
    Fixture f;
    auto bad = f.get("/request.cgi?release=noble&arch=amd64&package=gedit&trigger=nover", f.root_key, 400);
    CHECK(bad["error"].get<std::string>().find("trigger") != std::string::npos);
    auto unknown = f.get(gedit + "&colour=blue", f.root_key, 400);
    CHECK(unknown["error"].get<std::string>().find("colour") != std::string::npos);
    auto forged = f.get(gedit + "&env=ADT_TEST_TRIGGERS%3Dglib2.0%2F1", f.root_key, 400);
    CHECK(forged["error"].get<std::string>().find("ADT_TEST_TRIGGERS") != std::string::npos);
    f.get("/request.cgi?release=noble&arch=amd64&package=gedit&trigger=migration-reference%2F0&trigger=a%2F1",
          f.root_key, 400);
    auto release = f.get("/request.cgi?release=jammy&arch=amd64&package=gedit", f.root_key, 404);
    CHECK(release["error"].get<std::string>().find("jammy") != std::string::npos);
    f.get("/request.cgi?release=noble&arch=s390x&package=gedit", f.root_key, 404);
    f.get("/request.cgi?release=noble&package=gedit", f.root_key, 400);
    auto post = f.call("POST", "/api/v1/test", {{"Authorization", "Bearer " + f.root_key}},
                       R"({"package": "gedit"})");
    CHECK(post.status == 400);
    post = f.call("POST", "/api/v1/test", {{"Authorization", "Bearer " + f.root_key}},
                  R"({"package": "gedit", "release": "noble", "arch": "amd64", "colour": 1})");
    CHECK(post.status == 400);
    CHECK(post.body.find("colour") != std::string::npos);
    CHECK(f.call("POST", "/api/v1/test", {{"Authorization", "Bearer " + f.root_key}}, "not json").status ==
          400);
    CHECK(f.queued().empty());
}

TEST_CASE("authentication: keys, the reference's user:key cookie and header, a trusted proxy") {
    Fixture f;
    CHECK(f.call("GET", gedit).status == 401);
    CHECK(f.call("GET", gedit).headers["WWW-Authenticate"].rfind("Bearer", 0) == 0);
    CHECK(f.call("GET", gedit, {{"Authorization", "Bearer apc_nope"}}).status == 401);
    CHECK(f.call("GET", gedit, {{"Cookie", "other=1; X-Api-Key=carol:" + f.carol_key}}).status == 200);
    CHECK(f.call("GET", gedit + "&trigger=gedit%2F2", {{"X-Api-Key", "root:" + f.root_key}}).status == 200);
    CHECK(f.call("GET", gedit + "&trigger=gedit%2F3", {{"X-Api-Key", "carol:" + f.root_key}}).status == 401);
    // The proxy's header only from the proxy.
    CHECK(f.call("GET", gedit + "&trigger=gedit%2F4", {{"X-Remote-User", "root"}}).status == 401);
    CHECK(f.call("GET", gedit + "&trigger=gedit%2F4", {{"X-Remote-User", "root"}}, "", "127.0.0.1").status ==
          200);
    CHECK(f.queued().size() == 3);
    // A revoked key stops working at once (the keys file is re-read when it changes).
    auto records = parse_api_keys(read_file((f.dir.path / "api-keys").string()));
    for (auto& r : records) r.revoked = r.user == "carol";
    f.dir.write("api-keys", format_api_keys(records));
    CHECK(f.call("GET", gedit + "&trigger=gedit%2F5", {{"Authorization", "Bearer " + f.carol_key}}).status ==
          401);
}

TEST_CASE("authorization: a refusal names the missing rule and queues nothing") {
    Fixture f;
    auto no =
        f.get("/request.cgi?release=noble&arch=amd64&package=nautilus&trigger=glib2.0%2F1", f.carol_key, 403);
    CHECK(no["error"].get<std::string>().find("carol may not request tests of nautilus") !=
          std::string::npos);
    f.get(gedit, f.mallory_key, 403);
    // mallory's own PPA is fine.
    f.get("/request.cgi?release=noble&arch=amd64&package=gedit&ppa=mallory%2Ftools", f.mallory_key, 200);
    CHECK(f.queued().empty());
    CHECK(f.queued("debci-ppa-noble-amd64").size() == 1);
}

TEST_CASE("identical requests: refused while just sent, queued or running (409 with a link)") {
    Fixture f;
    auto first = f.get(gedit, f.carol_key, 200);
    auto again = f.get(gedit, f.root_key, 409);  // identical whoever asks
    CHECK(again["existing"]["uuid"] == first["requests"][0]["uuid"]);
    CHECK(again["existing"]["link"] == "/queued");
    CHECK(f.queued().size() == 1);
    // Different triggers are a different request.
    f.get(gedit + "&trigger=glib2.0%2F2", f.carol_key, 200);
    // Queued (as the queue snapshot shows it, once newer than the sending).
    auto q = f.queued();
    f.state.set_queues(std::make_shared<web::QueueSnapshot>(
        web::QueueSnapshot::make({"noble"}, {"amd64"}, {{f.queue, q.size()}}, {{f.queue, q}},
                                 static_cast<std::int64_t>(std::time(nullptr)) + 5)));
    auto queued = f.get(gedit, f.root_key, 409);
    CHECK(queued["existing"]["state"] == "queued");
    CHECK(queued["existing"]["position"] == 1);
    // Running.
    f.state.set_queues(std::make_shared<web::QueueSnapshot>(web::QueueSnapshot::make(
        {"noble"}, {"amd64"}, {}, {}, static_cast<std::int64_t>(std::time(nullptr)) + 5)));
    f.get(gedit, f.root_key, 200);  // gone from the queue, not running: may be asked again
    f.running.apply(json({{"running", true},
                          {"package", "nautilus"},
                          {"release", "noble"},
                          {"architecture", "amd64"},
                          {"params", {{"triggers", {"gtk+3.0/1"}}, {"requester", "x"}, {"uuid", "u-run"}}}})
                        .dump(),
                    static_cast<std::int64_t>(std::time(nullptr)));
    auto running = f.get("/request.cgi?release=noble&arch=amd64&package=nautilus&trigger=gtk%2B3.0%2F1",
                         f.root_key, 409);
    CHECK(running["existing"]["state"] == "running");
    CHECK(running["existing"]["uuid"] == "u-run");
}

TEST_CASE("rate limits per user: 429 with Retry-After, nothing queued") {
    Fixture f(1, 2);
    f.get(gedit, f.root_key, 200);
    f.get(gedit + "&trigger=aa%2F1", f.root_key, 200);
    auto r = f.call("GET", gedit + "&trigger=bb%2F1", {{"Authorization", "Bearer " + f.root_key}});
    CHECK(r.status == 429);
    CHECK(std::stoi(r.headers["Retry-After"]) >= 1);
    CHECK(f.queued().size() == 2);
    f.get(gedit + "&trigger=gedit%2F9", f.carol_key, 200);  // another user has their own budget
}

TEST_CASE("retry by run id: the same request as that run's") {
    Fixture f;
    IndexedRun run = failed_run("arm64", 1700000000, {"glib2.0/2.80-1", "gedit/1.0-1"});
    run.env = {"X=1"};
    run.all_proposed = true;
    f.index.add({run});
    auto a = f.get("/api/v1/retry/" + run.run_id, f.carol_key, 200);
    CHECK(a["requests"][0]["arch"] == "arm64");
    const auto q = f.queued("debci-noble-arm64");
    REQUIRE(q.size() == 1);
    const TestRequest sent = parse_request(q[0]);
    CHECK(sent.triggers == run.triggers);
    CHECK(sent.env == run.env);
    CHECK(sent.all_proposed);
    f.get("/api/v1/retry/" + run.run_id, f.carol_key, 409);
    f.get("/api/v1/retry/" + make_run_id(1700000001, "none"), f.carol_key, 404);
    f.get("/api/v1/retry/junk", f.carol_key, 400);
}

TEST_CASE(
    "a browser's request.cgi is confirmed first: a page with a token, then a POST; forged POSTs queue "
    "nothing") {
    Fixture f;
    const http::Headers browser = {{"Cookie", "X-Api-Key=root:" + f.root_key},
                                   {"Accept", "text/html,application/xhtml+xml"},
                                   {"Sec-Fetch-Mode", "navigate"}};
    auto page = f.call("GET", gedit, browser);
    REQUIRE_MESSAGE(page.status == 200, page.body);
    const json confirm = json::parse(page.body).at("confirm");
    CHECK(confirm["requests"].size() == 1);
    CHECK(confirm["requests"][0]["package"] == "gedit");
    CHECK(!confirm.contains("existing"));
    CHECK(f.queued().empty());  // a link another site sends the browser to queues nothing
    const std::string query = confirm["query"];
    const std::string token = confirm["csrf"];
    auto form = [&](const std::string& q, const std::string& t) {
        return "query=" + percent_encode(q) + "&csrf=" + percent_encode(t);
    };

    // Forgeries: no token, a wrong one, another user's, another query's.
    CHECK(f.call("POST", "/request.cgi", browser, "query=" + percent_encode(query)).status == 400);
    CHECK(f.call("POST", "/request.cgi", browser, form(query, std::string(64, '0'))).status == 403);
    http::Headers carol = browser;
    carol["Cookie"] = "X-Api-Key=carol:" + f.carol_key;
    CHECK(f.call("POST", "/request.cgi", carol, form(query, token)).status == 403);
    CHECK(f.call("POST", "/request.cgi", browser, form(query + "&arch=arm64", token)).status == 403);
    CHECK(f.call("POST", "/request.cgi", {}, form(query, token)).status == 401);
    CHECK(f.queued().empty());
    CHECK(f.queued("debci-noble-arm64").empty());

    auto done = f.call("POST", "/request.cgi", browser, form(query, token));
    REQUIRE_MESSAGE(done.status == 200, done.body);
    CHECK(json::parse(done.body)["requests"][0]["requester"] == "root");
    CHECK(f.queued().size() == 1);

    // Confirming again shows the identical request pending, and the POST is a 409.
    auto again = f.call("GET", gedit, browser);
    REQUIRE(again.status == 200);
    CHECK(json::parse(again.body)["confirm"]["existing"]["state"] == "queued");
    CHECK(f.call("POST", "/request.cgi", browser, form(query, token)).status == 409);
    CHECK(f.queued().size() == 1);

    // Programs (curl with the cookie, as the reference documents it) keep the direct GET.
    auto curl = f.call("GET", "/request.cgi?release=noble&arch=arm64&package=gedit&trigger=gedit%2F1.0-1",
                       {{"Cookie", "X-Api-Key=root:" + f.root_key}, {"Accept", "*/*"}});
    CHECK_MESSAGE(curl.status == 200, curl.body);
    CHECK(f.queued("debci-noble-arm64").size() == 1);
    CHECK(f.call("PUT", gedit, browser).status == 405);
}

TEST_CASE("a browser's retry by run id is confirmed first, as request.cgi is; forged POSTs retry nothing") {
    Fixture f;
    const IndexedRun run = failed_run("amd64", 1700000000, {"gedit/1.0-1"});
    const IndexedRun other = failed_run("arm64", 1700000060, {"gedit/1.0-1"});
    f.index.add({run, other});
    const std::string url = "/api/v1/retry/" + run.run_id;
    const http::Headers browser = {{"Cookie", "X-Api-Key=carol:" + f.carol_key},
                                   {"Accept", "text/html,application/xhtml+xml"},
                                   {"Sec-Fetch-Mode", "navigate"}};
    auto page = f.call("GET", url, browser);
    REQUIRE_MESSAGE(page.status == 200, page.body);
    const json confirm = json::parse(page.body).at("confirm");
    CHECK(confirm["action"] == web::RequestApi::retry_action(run.run_id));
    CHECK(confirm["requests"][0]["arch"] == "amd64");
    CHECK(confirm["requests"][0]["triggers"] == json::array({"gedit/1.0-1"}));
    CHECK(f.queued().empty());  // a link another site sends the browser to retries nothing
    const std::string token = confirm["csrf"];
    const auto form = [](const std::string& t) { return "query=&csrf=" + percent_encode(t); };

    // Unauthenticated, unauthorized: refused before any confirmation.
    auto anonymous = browser;
    anonymous.erase("Cookie");
    CHECK(f.call("GET", url, anonymous).status == 401);
    auto mallory = browser;
    mallory["Cookie"] = "X-Api-Key=mallory:" + f.mallory_key;
    CHECK(f.call("GET", url, mallory).status == 403);
    // Forgeries: no fields, a wrong token, another user's, another run's.
    CHECK(f.call("POST", url, browser, "").status == 400);
    CHECK(f.call("POST", url, browser, form(std::string(64, '0'))).status == 403);
    auto root = browser;
    root["Cookie"] = "X-Api-Key=root:" + f.root_key;
    CHECK(f.call("POST", url, root, form(token)).status == 403);
    CHECK(f.call("POST", "/api/v1/retry/" + other.run_id, browser, form(token)).status == 403);
    CHECK(f.call("POST", url, anonymous, form(token)).status == 401);
    CHECK(f.queued().empty());
    CHECK(f.queued("debci-noble-arm64").empty());

    auto done = f.call("POST", url, browser, form(token));
    REQUIRE_MESSAGE(done.status == 200, done.body);
    CHECK(json::parse(done.body)["requests"][0]["requester"] == "carol");
    REQUIRE(f.queued().size() == 1);
    CHECK(parse_request(f.queued()[0]).triggers == run.triggers);
    // Shown again: the identical request is pending, and confirming it is a 409.
    CHECK(json::parse(f.call("GET", url, browser).body)["confirm"]["existing"]["state"] == "queued");
    CHECK(f.call("POST", url, browser, form(token)).status == 409);
    CHECK(f.queued().size() == 1);
    // Programs keep the direct GET.
    f.get("/api/v1/retry/" + other.run_id, f.carol_key, 200);
    CHECK(f.queued("debci-noble-arm64").size() == 1);
    CHECK(f.call("PUT", url, browser).status == 405);
}
