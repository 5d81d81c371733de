// Unit tests of gating support: version comparison, results cache, pending tests, result collection, file
// sink, verdicts.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>
#include <autopkgtest_cloud/broker.hpp>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/gating.hpp>
#include <autopkgtest_cloud/layout.hpp>
#include <autopkgtest_cloud/result.hpp>
#include <autopkgtest_cloud/store.hpp>
#include "temp_dir.hpp"

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

using namespace apcloud;
namespace fs = std::filesystem;

namespace {

using test::TempDir;

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Exit status of `dpkg --compare-versions a op b` (0: true), run with argv.
int dpkg_compare(const std::string& a, const char* op, const std::string& b) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        execlp("dpkg", "dpkg", "--compare-versions", a.c_str(), op, b.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) != 127);
    return WEXITSTATUS(status);
}

}  // namespace

TEST_CASE("version_compare agrees with dpkg --compare-versions") {
    const std::vector<std::string> versions = {
        "1.0",    "1.0-1",           "1.0-1ubuntu1", "1.0~rc1", "1.0~rc1-1",  "1.0~~",
        "1.0~",   "1.0+b1",          "1.0-1+b1",     "1:0.9",   "0:1.0",      "2:0",
        "1.0a",   "1.0.1",           "1.00",         "1.0-0",   "1.0-1~bpo1", "10.0",
        "9.9",    "1.0+dfsg-1",      "1.0+dfsg1-1",  "1.0-1.1", "1.0-10",     "1.0-9",
        "2.20-1", "2.20-1ubuntu0.1", "1.0-1build1"};
    for (const auto& a : versions) {
        for (const auto& b : versions) {
            const int ours = version_compare(a, b);
            const int dpkg = dpkg_compare(a, "lt", b) == 0 ? -1 : (dpkg_compare(a, "eq", b) == 0 ? 0 : 1);
            INFO(a, " vs ", b);
            CHECK(ours == dpkg);
        }
    }
    CHECK(version_compare("1.0~rc1", "1.0") < 0);
    CHECK(version_compare("1:0.9", "2.0") > 0);
    CHECK(version_compare("1.0", "1.00") == 0);
}

TEST_CASE("results cache: a PASS is never replaced by a later non-PASS") {
    ResultsCache c;
    CHECK(c.add("glib2.0/2.20-1", "gedit", "amd64", {"PASS", "44.2-1", "20240101_000000_aaaaa@", 100}));
    CHECK_FALSE(c.add("glib2.0/2.20-1", "gedit", "amd64", {"FAIL", "44.2-2", "20240102_000000_bbbbb@", 200}));
    auto e = c.get("glib2.0/2.20-1", "gedit", "amd64");
    REQUIRE(e);
    CHECK(e->status == "PASS");
    CHECK(e->run_id == "20240101_000000_aaaaa@");
    // A newer PASS replaces the older one; an older PASS does not.
    CHECK(c.add("glib2.0/2.20-1", "gedit", "amd64", {"PASS", "44.2-3", "20240103_000000_ccccc@", 300}));
    CHECK_FALSE(c.add("glib2.0/2.20-1", "gedit", "amd64", {"PASS", "44.2-0", "20231231_000000_ddddd@", 50}));
    CHECK(c.get("glib2.0/2.20-1", "gedit", "amd64")->version == "44.2-3");
}

TEST_CASE("results cache: non-PASS entries follow the newest run, PASS replaces them") {
    ResultsCache c;
    CHECK(c.add("t/1", "p", "arm64", {"FAIL", "1", "20240102_000000_aaaaa@", 1}));
    CHECK_FALSE(c.add("t/1", "p", "arm64", {"NEUTRAL", "1", "20240101_000000_aaaaa@", 2}));
    CHECK(c.add("t/1", "p", "arm64", {"NEUTRAL", "2", "20240103_000000_aaaaa@", 3}));
    CHECK(c.get("t/1", "p", "arm64")->status == "NEUTRAL");
    CHECK(c.add("t/1", "p", "arm64", {"PASS", "0", "20230101_000000_aaaaa@", 4}));
    CHECK(c.get("t/1", "p", "arm64")->status == "PASS");
    CHECK_FALSE(c.get("t/1", "p", "amd64"));
    CHECK_FALSE(c.get("t/2", "p", "arm64"));
}

TEST_CASE("results cache: latest_run_id over all triggers") {
    ResultsCache c;
    CHECK_FALSE(c.latest_run_id("p", "amd64"));
    c.add("a/1", "p", "amd64", {"PASS", "1", "20240105_000000_aaaaa@", 1});
    c.add("b/1", "p", "amd64", {"FAIL", "1", "20240107_000000_aaaaa@", 1});
    c.add("c/1", "p", "arm64", {"FAIL", "1", "20240109_000000_aaaaa@", 1});
    c.add("c/1", "q", "amd64", {"FAIL", "1", "20240110_000000_aaaaa@", 1});
    CHECK(c.latest_run_id("p", "amd64") == "20240107_000000_aaaaa@");
}

TEST_CASE("results cache: save is atomic and load reads it back in britney's format") {
    TempDir d;
    const auto path = (d.path / "results.cache").string();
    CHECK_FALSE(ResultsCache::load(path).get("t/1", "p", "amd64"));  // missing file: empty
    ResultsCache c;
    c.add("t/1", "p", "amd64", {"PASS", "1.0-1", "20240105_000000_aaaaa@", 1700000000});
    c.save(path);
    CHECK_FALSE(fs::exists(path + ".new"));
    const auto text = slurp(path);
    CHECK(text.find(R"("PASS")") != std::string::npos);
    CHECK(text.find("1700000000") != std::string::npos);
    auto back = ResultsCache::load(path);
    auto e = back.get("t/1", "p", "amd64");
    REQUIRE(e);
    CHECK(e->status == "PASS");
    CHECK(e->version == "1.0-1");
    CHECK(e->run_id == "20240105_000000_aaaaa@");
    CHECK(e->seen == 1700000000);
    // britney's own file loads.
    d.write(
        "britney.cache",
        R"({"glib2.0/2.20-1": {"gedit": {"amd64": ["FAIL", "44.2-1", "20240321_130412_abcde@", 1711026252]}}})");
    CHECK(ResultsCache::load((d.path / "britney.cache").string())
              .get("glib2.0/2.20-1", "gedit", "amd64")
              ->status == "FAIL");
}

TEST_CASE("results cache: malformed files are ParseErrors naming the path") {
    TempDir d;
    for (const char* bad : {"{", "[]", R"({"t": []})", R"({"t": {"p": {"a": ["PASS", "1", "r"]}}})",
                            R"({"t": {"p": {"a": ["PASS", 1, "r", 2]}}})", R"({"t": {"p": []}})"}) {
        d.write("c.json", bad);
        INFO(bad);
        try {
            ResultsCache::load((d.path / "c.json").string());
            FAIL("no error for a malformed cache");
        } catch (const ParseError& e) {
            CHECK(std::string(e.what()).find("c.json") != std::string::npos);
        }
    }
}

TEST_CASE("pending tests: add, contains, remove with pruning, save and load") {
    TempDir d;
    const auto path = (d.path / "pending.json").string();
    PendingTests p = PendingTests::load(path);
    CHECK_FALSE(p.contains("t/1", "p", "amd64"));
    p.add("t/1", "p", "amd64");
    p.add("t/1", "p", "arm64");
    p.add("t/1", "p", "amd64");
    CHECK(p.contains("t/1", "p", "amd64"));
    CHECK_FALSE(p.contains("t/1", "q", "amd64"));
    p.save(path);
    CHECK_FALSE(fs::exists(path + ".new"));
    CHECK(slurp(path).find(R"("amd64")") != std::string::npos);
    auto q = PendingTests::load(path);
    CHECK(q.contains("t/1", "p", "arm64"));
    CHECK(q.remove("t/1", "p", "amd64"));
    CHECK_FALSE(q.remove("t/1", "p", "amd64"));
    CHECK(q.remove("t/1", "p", "arm64"));
    q.save(path);
    CHECK(slurp(path) == "{}\n");  // the emptied source and trigger were pruned
    d.write("bad.json", R"({"t": {"p": "amd64"}})");
    CHECK_THROWS_AS(PendingTests::load((d.path / "bad.json").string()), ParseError);
}

TEST_CASE("file sink: one line per request, queue, source and JSON parameters") {
    TempDir d;
    const auto path = (d.path / "requests.txt").string();
    auto sink = open_sink("file://" + path);
    TestRequest r;
    r.package = "gedit";
    r.triggers = {"glib2.0/2.20-1"};
    CHECK(sink->send(r, "noble", "amd64") == "debci-noble-amd64");
    r.submit_time = "2024-03-21 13:04:12";
    CHECK(sink->send(r, "noble", "amd64") == "debci-noble-amd64");
    TestRequest bare;
    bare.package = "hello";
    CHECK(sink->send(bare, "noble", "arm64", true) == "debci-huge-noble-arm64");
    std::istringstream lines(slurp(path));
    std::string first, second, third;
    std::getline(lines, first);
    std::getline(lines, second);
    std::getline(lines, third);
    // A request without a submit-time is stamped with the current UTC time.
    auto stamped = parse_request(first.substr(first.find(':') + 1));
    REQUIRE(stamped.submit_time);
    CHECK(std::regex_match(*stamped.submit_time, std::regex(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")));
    // And with a uuid (RFC 4122 version 4) naming the request.
    REQUIRE(stamped.uuid);
    CHECK(std::regex_match(
        *stamped.uuid, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));
    CHECK(first == "debci-noble-amd64:gedit {\"submit-time\": \"" + *stamped.submit_time +
                       "\", \"triggers\": [\"glib2.0/2.20-1\"], \"uuid\": \"" + *stamped.uuid + "\"}");
    auto given = parse_request(second.substr(second.find(':') + 1));
    CHECK(second ==
          "debci-noble-amd64:gedit {\"submit-time\": \"2024-03-21 13:04:12\", \"triggers\": "
          "[\"glib2.0/2.20-1\"], \"uuid\": \"" +
              given.uuid.value_or("") + "\"}");
    CHECK(given.uuid != stamped.uuid);
    CHECK(third.rfind("debci-huge-noble-arm64:hello {\"submit-time\": ", 0) == 0);
    TestRequest bad;
    bad.package = "Not A Package";
    CHECK_THROWS_AS(sink->send(bad, "noble", "amd64"), ValidationError);
    CHECK_THROWS_AS(open_sink("ftp://x/y"), ConfigError);
}

TEST_CASE("broker sink: publishes the request message to the routed queue") {
    TempDir d;
    const std::string url = "sqlite://" + (d.path / "broker.db").string();
    TestRequest r;
    r.package = "gedit";
    r.triggers = {"glib2.0/2.20-1"};
    CHECK_THROWS_AS(open_sink(url)->send(r, "noble", "amd64"), NotFound);  // never a silent loss
    CHECK(open_sink(url, true)->send(r, "noble", "amd64") == "debci-noble-amd64");
    auto broker = open_broker(url);
    auto got = broker->consume({"debci-noble-amd64"}, std::chrono::milliseconds(1000));
    REQUIRE(got);
    r.submit_time = parse_request(got->body).submit_time;
    r.uuid = parse_request(got->body).uuid;
    CHECK(r.submit_time);
    CHECK(r.uuid);
    CHECK(got->body == r.to_message());
    broker->ack(*got);
}

namespace {

// Stores a run as the worker does: log.gz, artifacts.tar.gz, then result.tar.
void store_run(Store& store, const std::string& container, const std::string& run_id, int exitcode,
               const std::optional<std::string>& triggers, const std::string& version) {
    TempDir out;
    out.write("log", "log of " + run_id + "\n");
    out.write("testpkg-version", "gedit " + version + "\n");
    if (triggers)
        out.write("testinfo.json", R"({"custom_environment": ["ADT_TEST_TRIGGERS=)" + *triggers + R"("]})");
    else
        out.write("testinfo.json", R"({"custom_environment": ["FOO=1"]})");
    PackOptions o;
    o.exitcode = exitcode;
    o.duration = 42;
    auto files = pack_results(out.path.string(), o);
    const auto dir = result_dir("noble", "amd64", "gedit", run_id);
    store.put(container, dir + "/log.gz", files.log_gz, {"text/plain", std::string("gzip")});
    store.put(container, dir + "/artifacts.tar.gz", files.artifacts_tar_gz,
              {"application/x-tar", std::nullopt});
    store.put(container, dir + "/result.tar", files.result_tar, {"application/x-tar", std::nullopt});
}

}  // namespace

TEST_CASE("collect_results reads the runs of a package from a store, in run-id order") {
    TempDir d;
    auto store = open_store("file://" + d.path.string());
    const std::string c = "autopkgtest-noble";
    store->ensure_container(c, ContainerAcl::public_container());
    std::vector<std::string> ids;
    for (int i = 0; i < 12; ++i) ids.push_back(make_run_id(1700000000 + i * 60, "body" + std::to_string(i)));
    // Stored out of order to show the order comes from the listing.
    for (int i = 11; i >= 0; --i) {
        if (i == 3) continue;  // no result.tar below
        if (i == 5) continue;  // corrupt below
        store_run(*store, c, ids[i], i % 3 == 0 ? 4 : 0,
                  i == 7 ? std::nullopt : std::optional<std::string>("glib2.0/2.20-1"),
                  "44.2-" + std::to_string(i));
    }
    const auto dir3 = result_dir("noble", "amd64", "gedit", ids[3]);
    store->put(c, dir3 + "/log.gz", gzip_compress("partial\n"), {});
    // Written long ago: an abandoned run (its request ran again), not one being stored.
    fs::last_write_time(d.path / c / dir3 / "log.gz",
                        fs::file_time_type::clock::now() - std::chrono::hours(5));
    store->put(c, result_dir("noble", "amd64", "gedit", ids[5]) + "/result.tar", "not a tar", {});
    // Objects under the prefix that are not run directories are not runs.
    const auto prefix = package_prefix("noble", "amd64", "gedit");
    store->put(c, prefix + "notes.txt", "x", {});
    store->put(c, prefix + "sub/dir@x/result.tar", "x", {});
    // Another package sharing the prefix letter must not be listed.
    store->put(c, result_dir("noble", "amd64", "gedit-plugins", ids[0]) + "/result.tar", "x", {});

    auto all = collect_results(*store, c, "noble", "amd64", "gedit");
    CHECK(all.missing == 1);
    CHECK(all.corrupt == 1);
    REQUIRE(all.results.size() == 10);
    std::vector<std::string> expect;
    for (int i = 0; i < 12; ++i)
        if (i != 3 && i != 5) expect.push_back(ids[i]);
    for (std::size_t i = 0; i < expect.size(); ++i) CHECK(all.results[i].run_id == expect[i]);
    const auto& first = all.results[0];
    CHECK(first.exitcode == 4);
    CHECK(first.outcome == "fail");
    CHECK(first.version == "44.2-0");
    CHECK(first.duration == 42u);
    REQUIRE(first.triggers);
    CHECK(*first.triggers == std::vector<std::string>{"glib2.0/2.20-1"});
    CHECK(all.results[1].outcome == "pass");
    // Run 7 carries no ADT_TEST_TRIGGERS: listed, but with no triggers.
    CHECK(all.results[5].run_id == ids[7]);
    CHECK_FALSE(all.results[5].triggers);

    // after: only runs strictly after the given run id.
    auto later = collect_results(*store, c, "noble", "amd64", "gedit", ids[8]);
    REQUIRE(later.results.size() == 3);
    CHECK(later.results[0].run_id == ids[9]);
    CHECK(later.results[2].run_id == ids[11]);
    CHECK(collect_results(*store, c, "noble", "amd64", "gedit", ids[11]).results.empty());
    CHECK(collect_results(*store, c, "noble", "amd64", "nothere").results.empty());
    CHECK_THROWS_AS(collect_results(*store, "autopkgtest-nothere", "noble", "amd64", "gedit"), NotFound);
}

TEST_CASE("verdict names") {
    CHECK(verdict_name(Verdict::pass) == "PASS");
    CHECK(verdict_name(Verdict::neutral) == "NEUTRAL");
    CHECK(verdict_name(Verdict::fail) == "FAIL");
    CHECK(verdict_name(Verdict::regression) == "REGRESSION");
    CHECK(verdict_name(Verdict::always_fail) == "ALWAYSFAIL");
    CHECK(verdict_name(Verdict::running) == "RUNNING");
    CHECK(verdict_name(Verdict::running_always_fail) == "RUNNING-ALWAYSFAIL");
    CHECK(verdict_name(Verdict::running_reference) == "RUNNING-REFERENCE");
}

namespace {

// One cached result of gedit: trigger, status, version (arch amd64 unless given).
struct Entry {
    const char* trigger;
    const char* status;
    const char* version;
    const char* arch = "amd64";
};

// One branch of britney's pkg_test_result / result_in_baseline / check_ever_passed_before.
struct VerdictRow {
    const char* what;
    std::vector<Entry> cache;
    const char* trigger;  // asked about
    bool pending;
    bool reference;
    std::optional<std::string> version;  // the version under test; default: the result's
    bool test_in_target;
    const char* britney;  // what britney answers
};

}  // namespace

TEST_CASE("decide: every branch of britney's verdict, row by row (SPEC.md 9)") {
    const std::vector<VerdictRow> rows = {
        // A result for the trigger that passed.
        {"pass", {{"t/1", "PASS", "1"}}, "t/1", false, false, {}, true, "PASS"},
        {"pass while still pending", {{"t/1", "PASS", "1"}}, "t/1", true, false, {}, true, "PASS"},
        {"neutral", {{"t/1", "NEUTRAL", "1"}}, "t/1", false, false, {}, true, "NEUTRAL"},
        {"neutral, failures elsewhere",
         {{"a/1", "FAIL", "1"}, {"t/1", "NEUTRAL", "1"}},
         "t/1",
         false,
         false,
         {},
         true,
         "NEUTRAL"},
        // Failures, baseline over all triggers.
        {"fail, passed before at the same version",
         {{"a/1", "PASS", "1"}, {"t/1", "FAIL", "1"}},
         "t/1",
         false,
         false,
         {},
         true,
         "REGRESSION"},
        {"fail, passed before at a lower version",
         {{"a/1", "PASS", "0.9"}, {"t/1", "FAIL", "1"}},
         "t/1",
         false,
         false,
         {},
         true,
         "REGRESSION"},
        {"fail, passed only at a higher version",
         {{"a/1", "PASS", "2"}, {"t/1", "FAIL", "1"}},
         "t/1",
         false,
         false,
         {},
         true,
         "ALWAYSFAIL"},
        {"fail, the version under test is higher than the pass",
         {{"a/1", "PASS", "2"}, {"t/1", "FAIL", "1"}},
         "t/1",
         false,
         false,
         std::string("3"),
         true,
         "REGRESSION"},
        {"fail, the version under test is lower than the pass",
         {{"a/1", "PASS", "1"}, {"t/1", "FAIL", "1"}},
         "t/1",
         false,
         false,
         std::string("0.5"),
         true,
         "ALWAYSFAIL"},
        {"fail, baseline NEUTRAL (neutral never counts as a pass)",
         {{"a/1", "NEUTRAL", "1"}, {"t/1", "FAIL", "1"}},
         "t/1",
         false,
         false,
         {},
         true,
         "ALWAYSFAIL"},
        {"fail, baseline NEUTRAL and a pass",
         {{"a/1", "NEUTRAL", "1"}, {"b/1", "PASS", "1"}, {"t/1", "FAIL", "1"}},
         "t/1",
         false,
         false,
         {},
         true,
         "REGRESSION"},
        {"fail, baseline FAIL (only failures)",
         {{"a/1", "FAIL", "1"}, {"t/1", "FAIL", "1"}},
         "t/1",
         false,
         false,
         {},
         true,
         "ALWAYSFAIL"},
        {"fail, no other result", {{"t/1", "FAIL", "1"}}, "t/1", false, false, {}, true, "ALWAYSFAIL"},
        {"fail, passes only on another architecture",
         {{"a/1", "PASS", "1", "arm64"}, {"t/1", "FAIL", "1"}},
         "t/1",
         false,
         false,
         {},
         true,
         "ALWAYSFAIL"},
        {"an unknown status is a failure and never a pass",
         {{"a/1", "BOGUS", "1"}, {"t/1", "BOGUS", "1"}},
         "t/1",
         false,
         false,
         {},
         true,
         "ALWAYSFAIL"},
        {"fail with version 'unknown' (exit 4 without testpkg-version), passed before at the version under "
         "test",
         {{"a/1", "PASS", "1"}, {"t/1", "FAIL", "unknown"}},
         "t/1",
         false,
         false,
         std::string("1"),
         true,
         "REGRESSION"},
        // Reference mode: the baseline is migration-reference/0 alone.
        {"reference PASS, fail",
         {{"migration-reference/0", "PASS", "1"}, {"t/1", "FAIL", "1"}},
         "t/1",
         false,
         true,
         {},
         true,
         "REGRESSION"},
        {"reference FAIL, passed for another trigger",
         {{"migration-reference/0", "FAIL", "1"}, {"a/1", "PASS", "1"}, {"t/1", "FAIL", "1"}},
         "t/1",
         false,
         true,
         {},
         true,
         "ALWAYSFAIL"},
        {"reference NEUTRAL, passed for another trigger",
         {{"migration-reference/0", "NEUTRAL", "1"}, {"a/1", "PASS", "1"}, {"t/1", "FAIL", "1"}},
         "t/1",
         false,
         true,
         {},
         true,
         "REGRESSION"},
        {"reference NEUTRAL, never passed",
         {{"migration-reference/0", "NEUTRAL", "1"}, {"t/1", "FAIL", "1"}},
         "t/1",
         false,
         true,
         {},
         true,
         "ALWAYSFAIL"},
        {"reference PASS at a higher version only",
         {{"migration-reference/0", "PASS", "2"}, {"t/1", "FAIL", "1"}},
         "t/1",
         false,
         true,
         {},
         true,
         "ALWAYSFAIL"},
        {"reference NONE, test in the target suite: reference requested",
         {{"a/1", "PASS", "1"}, {"t/1", "FAIL", "1"}},
         "t/1",
         false,
         true,
         {},
         true,
         "RUNNING-REFERENCE"},
        {"reference NONE, test not in the target suite, passed before",
         {{"a/1", "PASS", "1"}, {"t/1", "FAIL", "1"}},
         "t/1",
         false,
         true,
         {},
         false,
         "REGRESSION"},
        {"reference NONE, test not in the target suite, never passed",
         {{"t/1", "FAIL", "1"}},
         "t/1",
         false,
         true,
         {},
         false,
         "ALWAYSFAIL"},
        {"reference on another architecture is NONE here",
         {{"migration-reference/0", "PASS", "1", "arm64"}, {"t/1", "FAIL", "1"}},
         "t/1",
         false,
         true,
         {},
         false,
         "ALWAYSFAIL"},
        {"reference mode, the trigger passed",
         {{"migration-reference/0", "FAIL", "1"}, {"t/1", "PASS", "1"}},
         "t/1",
         false,
         true,
         {},
         true,
         "PASS"},
        // No result for the trigger.
        {"pending, no results at all (baseline FAIL)",
         {},
         "t/1",
         true,
         false,
         {},
         true,
         "RUNNING-ALWAYSFAIL"},
        {"pending, baseline FAIL",
         {{"a/1", "FAIL", "1"}},
         "t/1",
         true,
         false,
         {},
         true,
         "RUNNING-ALWAYSFAIL"},
        {"pending, baseline NEUTRAL", {{"a/1", "NEUTRAL", "1"}}, "t/1", true, false, {}, true, "RUNNING"},
        {"pending, baseline PASS",
         {{"a/1", "FAIL", "1"}, {"b/1", "PASS", "1"}},
         "t/1",
         true,
         false,
         {},
         true,
         "RUNNING"},
        {"not pending, not yet requested", {{"a/1", "FAIL", "1"}}, "t/1", false, false, {}, true, "RUNNING"},
        {"pending, reference NONE", {{"a/1", "FAIL", "1"}}, "t/1", true, true, {}, true, "RUNNING"},
        {"pending, reference FAIL",
         {{"migration-reference/0", "FAIL", "1"}, {"a/1", "PASS", "1"}},
         "t/1",
         true,
         true,
         {},
         true,
         "RUNNING-ALWAYSFAIL"},
        {"pending, reference PASS",
         {{"migration-reference/0", "PASS", "1"}},
         "t/1",
         true,
         true,
         {},
         true,
         "RUNNING"},
    };
    for (const auto& row : rows) {
        const std::string what = row.what;
        CAPTURE(what);
        ResultsCache c;
        int n = 0;
        for (const auto& e : row.cache) {
            ++n;
            REQUIRE(c.add(e.trigger, "gedit", e.arch,
                          {e.status, e.version, "20240101_00000" + std::to_string(n) + "_aaaaa@", n}));
        }
        const Verdict v = decide(c, row.trigger, "gedit", "amd64", row.pending, row.reference, row.version,
                                 row.test_in_target);
        CHECK(std::string(verdict_name(v)) == row.britney);
        CHECK(v != Verdict::fail);
    }
}

TEST_CASE("decide: a PASS not replaced by a later FAIL stays PASS") {
    ResultsCache c;
    CHECK(c.add("glib2.0/2.20-1", "gedit", "amd64", {"PASS", "44.2-1", "20240101_000000_aaaaa@", 1}));
    CHECK_FALSE(c.add("glib2.0/2.20-1", "gedit", "amd64", {"FAIL", "44.2-2", "20240102_000000_aaaaa@", 2}));
    CHECK(decide(c, "glib2.0/2.20-1", "gedit", "amd64", false) == Verdict::pass);
    CHECK(decide(c, "glib2.0/2.20-1", "gedit", "amd64", true, true) == Verdict::pass);
}

TEST_CASE("results cache: in reference mode the reference entry follows the newest reference run") {
    ResultsCache c;
    const CacheEntry pass{"PASS", "1", "20240101_000000_aaaaa@", 1},
        fail{"FAIL", "1", "20240102_000000_aaaaa@", 2};
    CHECK(c.add("migration-reference/0", "gedit", "amd64", pass, true));
    CHECK(c.add("migration-reference/0", "gedit", "amd64", fail, true));
    CHECK(c.get("migration-reference/0", "gedit", "amd64")->status == "FAIL");
    // Not in reference mode, and never for other triggers.
    ResultsCache d;
    d.add("migration-reference/0", "gedit", "amd64", pass);
    CHECK_FALSE(d.add("migration-reference/0", "gedit", "amd64", fail));
    d.add("t/1", "gedit", "amd64", pass, true);
    CHECK_FALSE(d.add("t/1", "gedit", "amd64", fail, true));
}

TEST_CASE("results cache: entries_for lists package/arch over all triggers") {
    ResultsCache c;
    CHECK(c.entries_for("gedit", "amd64").empty());
    c.add("b/1", "gedit", "amd64", {"FAIL", "1", "20240102_000000_aaaaa@", 2});
    c.add("a/1", "gedit", "amd64", {"PASS", "1", "20240101_000000_aaaaa@", 1});
    c.add("a/1", "gedit", "arm64", {"PASS", "1", "20240101_000000_aaaaa@", 1});
    c.add("a/1", "hello", "amd64", {"PASS", "1", "20240101_000000_aaaaa@", 1});
    auto e = c.entries_for("gedit", "amd64");
    REQUIRE(e.size() == 2);
    CHECK(e[0].first == "a/1");
    CHECK(e[0].second.status == "PASS");
    CHECK(e[1].first == "b/1");
    CHECK(e[1].second.status == "FAIL");
}

TEST_CASE("collect_results stops before a run that is still uploading, not before an abandoned one") {
    TempDir d;
    auto store = open_store("file://" + d.path.string());
    const std::string c = "autopkgtest-noble";
    store->ensure_container(c, ContainerAcl::public_container());
    const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    const auto a = make_run_id(now - 30, "a"), b = make_run_id(now - 20, "b"), e = make_run_id(now - 10, "e");
    store_run(*store, c, a, 0, std::string("t/1"), "1");
    store_run(*store, c, e, 0, std::string("t/1"), "1");
    // b: log.gz stored, result.tar not yet (the worker uploads it last).
    store->put(c, result_dir("noble", "amd64", "gedit", b) + "/log.gz", gzip_compress("partial\n"), {});

    auto got = collect_results(*store, c, "noble", "amd64", "gedit", std::nullopt, now);
    REQUIRE(got.results.size() == 1);
    CHECK(got.results[0].run_id == a);
    CHECK(got.missing == 1);
    CHECK(got.held_back == 1);
    // The caller's marker (its newest result) stays before b, so b is read once it is complete.
    store_run(*store, c, b, 4, std::string("t/1"), "1");
    auto next = collect_results(*store, c, "noble", "amd64", "gedit", a, now);
    REQUIRE(next.results.size() == 2);
    CHECK(next.results[0].run_id == b);
    CHECK(next.results[1].run_id == e);

    // A run whose objects were all written longer ago than the grace period was abandoned
    // (its request ran again): it no longer holds back the runs after it.
    const auto old = make_run_id(now - 3 * 3600, "old");
    store->put(c, result_dir("noble", "amd64", "gedit", old) + "/log.gz", gzip_compress("partial\n"), {});
    const std::int64_t later_now = static_cast<std::int64_t>(std::time(nullptr)) + upload_grace_seconds + 1;
    auto all = collect_results(*store, c, "noble", "amd64", "gedit", std::nullopt, later_now);
    CHECK(all.results.size() == 3);
    CHECK(all.missing == 1);
    CHECK(all.held_back == 0);
}

TEST_CASE("collect_results waits for a long test still uploading: judged by its objects, not its start") {
    TempDir d;
    auto store = open_store("file://" + d.path.string());
    const std::string c = "autopkgtest-noble";
    store->ensure_container(c, ContainerAcl::public_container());
    const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    // A 3-hour test: started long ago, its log.gz written just now, result.tar still to come.
    const auto long_run = make_run_id(now - 3 * 3600, "long");
    const auto later = make_run_id(now - 3600, "later");
    store_run(*store, c, later, 0, std::string("t/1"), "1");
    store->put(c, result_dir("noble", "amd64", "gedit", long_run) + "/log.gz", gzip_compress("hours\n"), {});
    auto got = collect_results(*store, c, "noble", "amd64", "gedit", std::nullopt, now);
    CHECK(got.results.empty());  // the marker must not move past the long run
    CHECK(got.missing == 1);
    CHECK(got.held_back == 1);
    // Once its result.tar is there, both are read in order.
    store_run(*store, c, long_run, 4, std::string("t/1"), "1");
    got = collect_results(*store, c, "noble", "amd64", "gedit", std::nullopt, now);
    REQUIRE(got.results.size() == 2);
    CHECK(got.results[0].run_id == long_run);
    CHECK(got.results[1].run_id == later);
    // A run id that is not one, with nothing in it, is never waited for.
    CHECK(collect_results(*store, c, "noble", "amd64", "gedit", later, now).results.empty());
}

TEST_CASE("collect_results skips a result.tar that names another package") {
    TempDir d;
    auto store = open_store("file://" + d.path.string());
    const std::string c = "autopkgtest-noble";
    store->ensure_container(c, ContainerAcl::public_container());
    TempDir out;
    out.write("testpkg-version", "evince 1\n");
    PackOptions o;
    const auto id = make_run_id(1700000000, "x");
    store->put(c, result_dir("noble", "amd64", "gedit", id) + "/result.tar",
               pack_results(out.path.string(), o).result_tar, {});
    auto got = collect_results(*store, c, "noble", "amd64", "gedit");
    CHECK(got.results.empty());
    CHECK(got.corrupt == 1);
}

namespace {

GatingResult run_result(const std::string& run_id, int exitcode, std::optional<std::string> version,
                        std::optional<std::vector<std::string>> triggers) {
    GatingResult r;
    r.run_id = run_id;
    r.exitcode = exitcode;
    r.version = std::move(version);
    r.triggers = std::move(triggers);
    return r;
}

}  // namespace

TEST_CASE("record_results: britney's rules for triggers, older versions and pending") {
    ResultsCache cache;
    PendingTests pending;
    for (const char* t : {"glib2.0/2.80-1", "gedit/2.0-1", "notrigger", "gtk/1"})
        pending.add(t, "gedit", "amd64");
    std::vector<GatingResult> results = {
        run_result("20240101_000000_aaaaa@", 0, "1.0-1",
                   std::vector<std::string>{"glib2.0/2.80-1", "gedit/2.0-1"}),
        run_result("20240101_000001_bbbbb@", 4, "2.0-1",
                   std::vector<std::string>{"glib2.0/2.80-1", "notrigger"}),
        run_result("20240101_000002_ccccc@", 0, "2.0-1", std::nullopt),
    };
    CHECK(record_results(cache, "gedit", "amd64", results, &pending) == 1);
    // The PASS for glib stays; the run of gedit 1.0-1 does not count for gedit/2.0-1.
    CHECK(cache.get("glib2.0/2.80-1", "gedit", "amd64")->run_id == "20240101_000000_aaaaa@");
    // seen is the time in the run id (britney's ADT_RETRY_OLDER_THAN and reference ages use it).
    CHECK(cache.get("glib2.0/2.80-1", "gedit", "amd64")->seen == 1704067200);
    CHECK_FALSE(cache.get("gedit/2.0-1", "gedit", "amd64"));
    CHECK_FALSE(cache.get("notrigger", "gedit", "amd64"));
    // Every valid trigger of a result leaves pending, counted or not; the result without triggers
    // clears nothing; a trigger without '/' is no trigger.
    CHECK_FALSE(pending.contains("glib2.0/2.80-1", "gedit", "amd64"));
    CHECK_FALSE(pending.contains("gedit/2.0-1", "gedit", "amd64"));
    CHECK(pending.contains("notrigger", "gedit", "amd64"));
    CHECK(pending.contains("gtk/1", "gedit", "amd64"));
    // A trigger naming another package at any version counts; an equal or newer tested version counts.
    CHECK(record_results(cache, "gedit", "amd64",
                         {run_result("20240102_000000_ddddd@", 0, "2.0-1",
                                     std::vector<std::string>{"gedit/2.0-1"})}) == 1);
    CHECK(cache.get("gedit/2.0-1", "gedit", "amd64")->status == "PASS");
    CHECK(cache.get("gedit/2.0-1", "gedit", "amd64")->seen == 1704153600);
}

TEST_CASE("record_results: a tmpfail without a version stays pending and never becomes a regression") {
    ResultsCache cache;
    PendingTests pending;
    pending.add("glib2.0/2.80-1", "gedit", "amd64");
    const std::vector<std::string> glib{"glib2.0/2.80-1"};
    CHECK(record_results(cache, "gedit", "amd64",
                         {run_result("20240101_000000_aaaaa@", 0, "1", std::vector<std::string>{"gtk/1"}),
                          run_result("20240102_000000_aaaaa@", 16, std::nullopt, glib)},
                         &pending) == 1);
    CHECK_FALSE(cache.get("glib2.0/2.80-1", "gedit", "amd64"));
    CHECK(pending.contains("glib2.0/2.80-1", "gedit", "amd64"));
    CHECK(decide(cache, "glib2.0/2.80-1", "gedit", "amd64", true) == Verdict::running);
    // Exit codes 4, 12 and 20 without a version are repaired to "unknown", as britney does.
    for (int code : {4, 12, 20}) {
        CAPTURE(code);
        ResultsCache c;
        CHECK(record_results(c, "gedit", "amd64",
                             {run_result("20240103_000000_aaaaa@", code, std::nullopt, glib)}) == 1);
        CHECK(c.get("glib2.0/2.80-1", "gedit", "amd64")->version == "unknown");
        CHECK(c.get("glib2.0/2.80-1", "gedit", "amd64")->status == "FAIL");
    }
    for (int code : {0, 2, 6, 8, 14, 16, 99}) {
        CAPTURE(code);
        CHECK_FALSE(cache_entry(run_result("20240103_000000_aaaaa@", code, std::nullopt, glib)));
    }
    // With a version, a tmpfail is a FAIL to britney (it never sees "unknown" for it).
    CHECK(cache_entry(run_result("20240103_000000_aaaaa@", 16, std::string("1"), glib))->status == "FAIL");
}

TEST_CASE("result_links: log, artifacts, history and retry URLs, encoded") {
    auto l = result_links("https://swift.example/v1/AUTH_x/", "https://autopkgtest.example/",
                          "autopkgtest-noble", "noble", "amd64", "libpng1.6", "20240321_130412_3fa9c@",
                          {"glib2.0/2.80-1", "a+b/1:2"}, {"lpuser/ppa"});
    CHECK(l.log ==
          "https://swift.example/v1/AUTH_x/autopkgtest-noble/noble/amd64/libp/libpng1.6/"
          "20240321_130412_3fa9c@/log.gz");
    CHECK(l.artifacts ==
          "https://swift.example/v1/AUTH_x/autopkgtest-noble/noble/amd64/libp/libpng1.6/"
          "20240321_130412_3fa9c@/artifacts.tar.gz");
    CHECK(l.history == "https://autopkgtest.example/packages/libpng1.6/noble/amd64");
    CHECK(l.retry ==
          "https://autopkgtest.example/request.cgi?release=noble&arch=amd64&package=libpng1.6"
          "&trigger=glib2.0%2F2.80-1&trigger=a%2Bb%2F1%3A2&ppa=lpuser%2Fppa");
    auto none = result_links("file:///srv/results", "http://w", "c", "noble", "amd64", "gedit", "", {});
    CHECK(none.log.empty());
    CHECK(none.artifacts.empty());
    CHECK(none.retry == "http://w/request.cgi?release=noble&arch=amd64&package=gedit");
}

TEST_CASE("split_triggers: spaces and tabs separate, blanks give none") {
    CHECK(split_triggers("a/1  b/2\tc/3 ") == std::vector<std::string>{"a/1", "b/2", "c/3"});
    CHECK(split_triggers("   ").empty());
    CHECK(split_triggers("").empty());
}
