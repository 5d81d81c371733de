// SPEC.md 10's pure parts: signatures and tokens, GitHub and GitLab events, the requests' env and
// build-git, statuses, and the reference's secrets and credentials files.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/webhooks.hpp"

using namespace apcloud;
using nlohmann::json;

namespace {

const std::string sha = "0123456789abcdef0123456789abcdef01234567";

std::string pull_request(const std::string& action) {
    return json{{"action", action},
                {"number", 42},
                {"sender", {{"login", "octocat"}}},
                {"pull_request",
                 {{"statuses_url", "https://api.github.com/repos/o/r/statuses/" + sha},
                  {"head", {{"sha", sha}}},
                  {"base", {{"repo", {{"clone_url", "https://github.com/o/r.git"}}}}}}}}
        .dump();
}

std::string parse_error(const std::string& event, const std::string& body) {
    try {
        parse_github_event(event, body);
    } catch (const ParseError& e) {
        return e.what();
    }
    return "no error";
}

}  // namespace

TEST_CASE("GitHub signatures: sha256 (GitHub's documented example), the legacy sha1, constant-time checks") {
    const std::string secret = "It's a Secret to Everybody", body = "Hello, World!";
    const std::string good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    CHECK(github_signature(body, secret) == good);
    CHECK(github_signature_valid(body, secret, good, std::nullopt));
    CHECK_FALSE(github_signature_valid(body + " ", secret, good, std::nullopt));
    CHECK_FALSE(github_signature_valid(body, "another secret", good, std::nullopt));
    CHECK_FALSE(github_signature_valid(body, secret, good.substr(0, good.size() - 1), std::nullopt));
    CHECK_FALSE(github_signature_valid(body, secret, "sha1=" + good.substr(7), std::nullopt));
    CHECK_FALSE(github_signature_valid(body, "", github_signature(body, ""), std::nullopt));  // no secret
    const std::string sha1 = "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59";
    CHECK(github_signature_valid(body, secret, std::nullopt, sha1));
    CHECK_FALSE(github_signature_valid(body, secret, std::nullopt, std::nullopt));
    // With both, the sha256 one decides: a good sha1 does not rescue a bad sha256.
    CHECK_FALSE(github_signature_valid(body, secret, "sha256=00", sha1));
    CHECK(gitlab_token_valid(std::string("tok"), "tok"));
    CHECK_FALSE(gitlab_token_valid(std::string("tok2"), "tok"));
    CHECK_FALSE(gitlab_token_valid(std::nullopt, "tok"));
    CHECK_FALSE(gitlab_token_valid(std::string(""), ""));
}

TEST_CASE("GitHub events: ping, pull_request actions, other events; fields used") {
    CHECK(parse_github_event("ping", "{}").action == HookAction::ping);
    CHECK(parse_github_event("push", "not even JSON").action == HookAction::irrelevant);
    for (const char* a : {"opened", "synchronize", "reopened"}) {
        const auto e = parse_github_event("pull_request", pull_request(a));
        CHECK(e.action == HookAction::test);
        CHECK(e.number == 42);
        CHECK(e.head_sha == sha);
        CHECK(e.sender == "octocat");
        CHECK(e.statuses_url == "https://api.github.com/repos/o/r/statuses/" + sha);
        CHECK(webhook_build_git(e) == "https://github.com/o/r.git#refs/pull/42/head");
        CHECK(webhook_env(e) ==
              std::vector<std::string>{"UPSTREAM_PULL_REQUEST=42", "GITHUB_STATUSES_URL=" + e.statuses_url});
    }
    CHECK(parse_github_event("pull_request", pull_request("closed")).action == HookAction::close);
    const auto labeled = parse_github_event("pull_request", pull_request("labeled"));
    CHECK(labeled.action == HookAction::irrelevant);
    CHECK(labeled.kind == "pull_request labeled");

    auto broken = json::parse(pull_request("opened"));
    broken["pull_request"]["head"]["sha"] = "../../etc";
    CHECK(parse_error("pull_request", broken.dump()).find("is not a commit id") != std::string::npos);
    broken = json::parse(pull_request("opened"));
    broken["pull_request"].erase("statuses_url");
    CHECK(parse_error("pull_request", broken.dump()) ==
          "GitHub pull_request payload: pull_request.statuses_url must be a non-empty string");
    broken = json::parse(pull_request("opened"));
    broken["number"] = "42";
    CHECK(parse_error("pull_request", broken.dump()).find("number must be a positive whole number") !=
          std::string::npos);
    CHECK(parse_error("pull_request", "[]") == "GitHub pull_request payload: not a JSON object");
}

TEST_CASE("GitLab merge request hooks: open, reopen and update with new commits; close and merge") {
    json hook = {{"object_kind", "merge_request"},
                 {"user", {{"username", "alice"}}},
                 {"project", {{"id", 7}}},
                 {"object_attributes",
                  {{"iid", 3},
                   {"action", "open"},
                   {"last_commit", {{"id", sha}}},
                   {"source", {{"git_http_url", "https://gitlab.example/alice/p.git"}}},
                   {"target", {{"git_http_url", "https://gitlab.example/team/p.git"}}}}}};
    auto e = parse_gitlab_event(hook.dump(), "https://gitlab.example/api/v4/");
    CHECK(e.action == HookAction::test);
    CHECK(e.number == 3);
    CHECK(e.statuses_url == "https://gitlab.example/api/v4/projects/7/statuses/" + sha);
    CHECK(webhook_build_git(e) == "https://gitlab.example/team/p.git#refs/merge-requests/3/head");
    CHECK(webhook_env(e) == std::vector<std::string>{"UPSTREAM_MERGE_REQUEST=3"});
    hook["object_attributes"]["action"] = "update";  // a title edit
    CHECK(parse_gitlab_event(hook.dump(), "x").action == HookAction::irrelevant);
    hook["object_attributes"]["oldrev"] = sha;  // new commits
    CHECK(parse_gitlab_event(hook.dump(), "x").action == HookAction::test);
    for (const char* a : {"close", "merge"}) {
        hook["object_attributes"]["action"] = a;
        CHECK(parse_gitlab_event(hook.dump(), "x").action == HookAction::close);
    }
    hook["object_kind"] = "push";
    CHECK(parse_gitlab_event(hook.dump(), "x").action == HookAction::irrelevant);
}

TEST_CASE("statuses: contexts, states from exit codes in each forge's words, bodies") {
    CHECK(status_context("noble", "amd64", std::nullopt) == "noble/amd64");
    CHECK(status_context("noble", "amd64", std::string("smoke")) == "noble/amd64 smoke");
    for (int code : {0, 2}) CHECK(final_state(Forge::github, code) == "success");
    for (int code : {4, 6, 12}) CHECK(final_state(Forge::github, code) == "failure");
    for (int code : {8, 14, 16, 20, 99}) CHECK(final_state(Forge::github, code) == "error");
    CHECK(final_state(Forge::gitlab, 2) == "success");
    CHECK(final_state(Forge::gitlab, 4) == "failed");
    CHECK(final_state(Forge::gitlab, 16) == "failed");
    CHECK(forge_state(Forge::gitlab, "error", true) == "canceled");
    CHECK(forge_state(Forge::github, "error", true) == "error");
    CHECK(json::parse(status_body(Forge::github, "pending", "noble/amd64", "queued", "https://x/run/u")) ==
          json{{"state", "pending"},
               {"context", "noble/amd64"},
               {"description", "queued"},
               {"target_url", "https://x/run/u"}});
    CHECK(json::parse(status_body(Forge::gitlab, "failed", "noble/amd64", "d", "")) ==
          json{{"state", "failed"}, {"name", "noble/amd64"}, {"description", "d"}});
    // At most 140 characters, cut between characters.
    std::string long_text;
    for (int i = 0; i < 200; ++i) long_text += "\xc3\xa9";  // é
    const auto cut = json::parse(status_body(Forge::github, "error", "c", long_text, ""))["description"];
    CHECK(cut.get<std::string>().size() == 280);
    TestRequest r;
    r.env = {"X=1", "UPSTREAM_PULL_REQUEST=42"};
    CHECK(pull_request_of(r) == std::optional<std::uint64_t>(42));
    r.env = {"UPSTREAM_PULL_REQUEST=4x2"};
    CHECK_FALSE(pull_request_of(r));
}

TEST_CASE("retry-github-test's event: the pull request opened again, as GitHub sends it") {
    const std::string pr =
        json{{"number", 9}, {"user", {{"login", "octocat"}}}, {"head", {{"sha", sha}}}}.dump();
    const auto event = json::parse(github_retry_payload(pr));
    CHECK(event["action"] == "opened");
    CHECK(event["number"] == 9);
    CHECK(event["sender"]["login"] == "octocat");
    CHECK(event["pull_request"] == json::parse(pr));
    CHECK_THROWS_AS(github_retry_payload(R"({"message": "Not Found"})"), ParseError);
}

TEST_CASE("the reference's github-secrets.json and github-status-credentials.txt; our projects file") {
    auto secrets = parse_github_secrets(R"({"gedit": "s1", "autopkgtest": "s2"})");
    CHECK(secrets.size() == 2);
    CHECK(secrets["gedit"] == "s1");
    CHECK_THROWS_AS(parse_github_secrets(R"({"gedit": 1})"), ParseError);
    CHECK_THROWS_AS(parse_github_secrets("[]"), ParseError);
    auto creds =
        parse_status_credentials("# comment\ngedit:bot:ghp_token:with:colons\n\nautopkgtest:u:t\r\n");
    CHECK(creds.size() == 2);
    CHECK(creds["gedit"] == std::make_pair(std::string("bot"), std::string("ghp_token:with:colons")));
    CHECK(creds["autopkgtest"].second == "t");
    try {
        parse_status_credentials("gedit:bot:\nok:u:t\n");
        FAIL("accepted");
    } catch (const ParseError& e) {
        CHECK(std::string(e.what()) == "github-status-credentials.txt line 1: expected project:user:token");
    }
    const auto projects = parse_forge_projects(
        "[github gedit]\nsecret = s\nstatus_user = bot\nstatus_token = t\n[gitlab nautilus]\nsecret = g\n"
        "status_token = p\n",
        "projects.conf");
    REQUIRE(projects.size() == 2);
    CHECK(projects[0].forge == Forge::github);
    CHECK(projects[0].name == "gedit");
    CHECK(projects[0].status_user == "bot");
    CHECK(projects[1].forge == Forge::gitlab);
    CHECK(projects[1].status_token == "p");
    CHECK_THROWS_AS(parse_forge_projects("[github gedit]\nstatus_token = t\n", "p"), ConfigError);
    CHECK_THROWS_AS(parse_forge_projects("[gitlab x]\nsecret = s\nstatus_user = u\n", "p"), ConfigError);
    CHECK_THROWS_AS(parse_forge_projects("[bitbucket x]\nsecret = s\n", "p"), ConfigError);
}

TEST_CASE("updated_at, to order redelivered events: GitHub's and GitLab's forms, nothing else") {
    CHECK(parse_forge_time("2011-01-26T19:01:12Z") == 1296068472);
    CHECK(parse_forge_time("2011-01-26T19:01:12.250Z") == 1296068472);
    CHECK(parse_forge_time("2011-01-26 19:01:12 UTC") == 1296068472);
    for (const char* bad : {"", "2011-01-26T19:01:12", "2011-01-26T19:01:12+02:00", "2011-01-26 19:01:12 CET",
                            "yesterday", "2011-13-26T19:01:12Z"})
        CHECK_MESSAGE(!parse_forge_time(bad), bad);
    auto payload = json::parse(pull_request("synchronize"));
    CHECK(!parse_github_event("pull_request", payload.dump()).updated_at);
    payload["pull_request"]["updated_at"] = "2011-01-26T19:01:12Z";
    CHECK(parse_github_event("pull_request", payload.dump()).updated_at == 1296068472);
    payload["action"] = "closed";
    CHECK(parse_github_event("pull_request", payload.dump()).updated_at == 1296068472);
    payload["pull_request"]["updated_at"] = nullptr;  // mistyped: no order, not an error
    CHECK(!parse_github_event("pull_request", payload.dump()).updated_at);
}
