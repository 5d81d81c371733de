// Unit tests of the results index: idempotent adds, the queries behind the API and
// pages, private runs, the feed, the reference's schema and britney's query on a
// snapshot, and catching up after a crash between the index's two files.
#include <SQLiteCpp/SQLiteCpp.h>
#include <doctest/doctest.h>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/layout.hpp>
#include <autopkgtest_cloud/results_index.hpp>

#include <algorithm>
#include <filesystem>

#include "core/digest.hpp"
#include "temp_dir.hpp"

using namespace apcloud;
using test::TempDir;

namespace {

IndexedRun make_run(const std::string& package, const std::string& release, const std::string& arch,
                    int minute, int exitcode, const std::string& container = "") {
    IndexedRun r;
    r.container = container.empty() ? "autopkgtest-" + release : container;
    r.release = release;
    r.arch = arch;
    r.package = package;
    r.run_id = make_run_id(1700000000 + minute * 60, package + std::to_string(minute) + r.container);
    r.exitcode = exitcode;
    r.version = "1.0-" + std::to_string(minute);
    r.triggers = {"glib2.0/2.80-1", package + "/1.0-" + std::to_string(minute)};
    r.has_triggers = true;
    r.duration = 100 + static_cast<std::uint64_t>(minute);
    r.requester = "britney";
    r.env = {"A=1"};
    r.uuid = "uuid-" + r.run_id;
    r.summary = "smoke PASS\n";
    r.is_private = r.container.rfind("private-", 0) == 0;
    return r;
}

// The same statistics, day by day.
void same(const std::vector<ReleaseArchStats>& a, const std::vector<ReleaseArchStats>& b) {
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        CHECK(a[i].packages == b[i].packages);
        CHECK(a[i].passing == b[i].passing);
        CHECK(a[i].runs == b[i].runs);
        CHECK(a[i].runs_failed == b[i].runs_failed);
        REQUIRE(a[i].days.size() == b[i].days.size());
        for (std::size_t k = 0; k < a[i].days.size(); ++k) {
            CHECK(a[i].days[k].day == b[i].days[k].day);
            CHECK(a[i].days[k].pass == b[i].days[k].pass);
            CHECK(a[i].days[k].fail == b[i].days[k].fail);
        }
    }
}

}  // namespace

TEST_CASE("adding is idempotent; history pages with a stable cursor, newest first") {
    TempDir d;
    ResultsIndex index((d.path / "idx").string());
    std::vector<IndexedRun> runs;
    for (int i = 0; i < 25; ++i) runs.push_back(make_run("gedit", "noble", "amd64", i, i % 5 == 0 ? 4 : 0));
    CHECK(index.add(runs) == 25);
    CHECK(index.add(runs) == 0);  // an event seen twice, or announced and backfilled: one row
    CHECK(index.size() == 25);
    CHECK(index.contains("autopkgtest-noble", RunLocation{"noble", "amd64", "gedit", runs[3].run_id}));
    CHECK_FALSE(index.contains("autopkgtest-jammy", RunLocation{"noble", "amd64", "gedit", runs[3].run_id}));

    auto page = index.history("gedit", "noble", "amd64", "", std::nullopt, 10, Viewer{});
    REQUIRE(page.runs.size() == 10);
    CHECK(page.runs.front().run.run_id == runs[24].run_id);
    REQUIRE(page.next_before);
    // A new run arriving between two pages does not shift the next page.
    index.add({make_run("gedit", "noble", "amd64", 99, 0)});
    auto next = index.history("gedit", "noble", "amd64", "", page.next_before, 10, Viewer{});
    CHECK(next.runs.front().run.run_id == runs[14].run_id);
    auto last = index.history("gedit", "noble", "amd64", "", next.next_before, 10, Viewer{});
    CHECK(last.runs.size() == 5);
    CHECK_FALSE(last.next_before);
    // The fields come back as they went in.
    const IndexedRun& r = last.runs.back().run;
    CHECK(r.run_id == runs[0].run_id);
    CHECK(r.triggers == runs[0].triggers);
    CHECK(r.env == runs[0].env);
    CHECK(r.uuid == runs[0].uuid);
    CHECK(r.duration == runs[0].duration);
    CHECK(r.summary == runs[0].summary);
}

TEST_CASE("latest per release and architecture, recent with filters, run by uuid") {
    TempDir d;
    ResultsIndex index((d.path / "idx").string());
    index.add({make_run("gedit", "noble", "amd64", 1, 0), make_run("gedit", "noble", "amd64", 2, 4),
               make_run("gedit", "noble", "arm64", 3, 0), make_run("gedit", "jammy", "amd64", 4, 8),
               make_run("gedit", "noble", "amd64", 5, 0, "autopkgtest-noble-lpuser-ppa"),
               make_run("evince", "noble", "amd64", 6, 16)});
    auto latest = index.latest("gedit", Viewer{});
    REQUIRE(latest.size() == 3);  // the PPA run is not the release's
    CHECK(latest[0].run.release == "jammy");
    CHECK(latest[1].run.arch == "amd64");
    CHECK(latest[1].run.exitcode == 4);  // the newest of noble/amd64
    RecentQuery q;
    CHECK(index.recent(q, Viewer{}).size() == 6);
    q.outcome = "fail";
    CHECK(index.recent(q, Viewer{}).size() == 1);
    q = RecentQuery{};
    q.arch = "arm64";
    CHECK(index.recent(q, Viewer{}).size() == 1);
    q = RecentQuery{};
    q.limit = 2;
    q.offset = 1;
    auto two = index.recent(q, Viewer{});
    REQUIRE(two.size() == 2);
    CHECK(two[0].run.package == "gedit");  // newest is evince (minute 6), then the PPA run
    auto by_uuid = index.run_by_uuid(*latest[0].run.uuid, Viewer{});
    REQUIRE(by_uuid);
    CHECK(by_uuid->run.run_id == latest[0].run.run_id);
    CHECK(index.packages() == std::vector<std::string>{"evince", "gedit"});
}

TEST_CASE("private runs are shown only to their owner, readers and admins, never in the feed or published") {
    TempDir d;
    ResultsIndex index((d.path / "idx").string());
    auto secret = make_run("gedit", "noble", "amd64", 1, 0, "private-autopkgtest-noble-bob-secret");
    secret.swiftuser = "bob";
    secret.readable_by = {"alice"};
    index.add({secret, make_run("gedit", "noble", "amd64", 2, 0)});
    RecentQuery q;
    CHECK(index.recent(q, Viewer{}).size() == 1);
    CHECK(index.recent(q, Viewer{"carol", false}).size() == 1);
    CHECK(index.recent(q, Viewer{"bob", false}).size() == 2);
    CHECK(index.recent(q, Viewer{"alice", false}).size() == 2);
    CHECK(index.recent(q, Viewer{"", true}).size() == 2);
    RunLocation where{"noble", "amd64", "gedit", secret.run_id};
    CHECK_FALSE(index.run(secret.container, where, Viewer{}));
    CHECK(index.run(secret.container, where, Viewer{"alice", false}));
    CHECK(index.feed(0, 10).runs.size() == 1);
    // The published database holds the release container's public run only.
    const auto db = (d.path / "pub.db").string();
    index.snapshot(db);
    SQLite::Database pub(db, SQLite::OPEN_READONLY);
    CHECK(pub.execAndGet("SELECT count(*) FROM result").getInt() == 1);
}

TEST_CASE("the feed pages through public runs in the order they were indexed") {
    TempDir d;
    ResultsIndex index((d.path / "idx").string());
    for (int i = 0; i < 7; ++i)
        index.add({make_run("p" + std::to_string(i) + "x", "noble", "amd64", 10 - i, 0)});
    auto first = index.feed(0, 3);
    REQUIRE(first.runs.size() == 3);
    CHECK(first.more);
    CHECK(first.runs[0].run.package == "p0x");
    auto second = index.feed(first.next, 10);
    CHECK(second.runs.size() == 4);
    CHECK_FALSE(second.more);
    CHECK(index.feed(second.next, 10).runs.empty());
    CHECK(index.feed(second.next, 10).next == second.next);
}

TEST_CASE("the published snapshot answers britney's query, and its checksum is the file's") {
    TempDir d;
    ResultsIndex index((d.path / "idx").string());
    auto a = make_run("gedit", "noble", "amd64", 1, 0);
    auto b = make_run("gedit", "noble", "amd64", 2, 4);
    b.uuid = a.uuid;  // a request that ran twice: the second row keeps no uuid, but is there
    index.add({a, b, make_run("gedit", "noble", "amd64", 3, 0, "autopkgtest-noble-lpuser-ppa")});
    const auto db = (d.path / "autopkgtest.db").string();
    const std::string sha = index.snapshot(db);
    CHECK(sha == detail::file_hex_digest("sha256", db));
    SQLite::Database pub(db, SQLite::OPEN_READONLY);
    CHECK(pub.execAndGet("PRAGMA journal_mode").getString() == "delete");
    SQLite::Statement q(
        pub,
        "SELECT r.exitcode, r.version, r.triggers, r.run_id FROM test t LEFT JOIN result r ON t.id = "
        "r.test_id WHERE t.release=? AND t.arch=? AND t.package=? AND r.run_id > ?");
    q.bind(1, "noble");
    q.bind(2, "amd64");
    q.bind(3, "gedit");
    q.bind(4, "");
    std::vector<std::string> ids;
    while (q.executeStep()) {
        ids.push_back(q.getColumn(3).getString());
        CHECK(q.getColumn(2).getString() ==
              "glib2.0/2.80-1 gedit/1.0-" + std::string(ids.size() == 1 ? "1" : "2"));
    }
    std::sort(ids.begin(), ids.end());
    CHECK(ids == std::vector<std::string>{a.run_id, b.run_id});
    CHECK(pub.execAndGet("SELECT count(*) FROM result WHERE uuid IS NULL").getInt() == 1);
    CHECK(pub.execAndGet("SELECT env FROM result LIMIT 1").getString() == "A=1");
}

TEST_CASE("opening the index completes what a crash between its two files left out") {
    TempDir d;
    const auto dir = (d.path / "idx").string();
    {
        ResultsIndex index(dir);
        index.add({make_run("gedit", "noble", "amd64", 1, 0), make_run("gedit", "noble", "amd64", 2, 0)});
    }
    {
        // As if compat.db's last commit never reached the disk.
        SQLite::Database compat(dir + "/compat.db", SQLite::OPEN_READWRITE);
        compat.exec("DELETE FROM result WHERE run_id = (SELECT max(run_id) FROM result)");
        compat.exec("UPDATE apcloud_meta SET value = value - 1 WHERE key = 'seq'");
    }
    ResultsIndex reopened(dir);
    const auto db = (d.path / "pub.db").string();
    reopened.snapshot(db);
    SQLite::Database pub(db, SQLite::OPEN_READONLY);
    CHECK(pub.execAndGet("SELECT count(*) FROM result").getInt() == 2);
    // And the reverse: compat.db ahead of index.db lowers its mark.
    {
        SQLite::Database compat(dir + "/compat.db", SQLite::OPEN_READWRITE);
        compat.exec("UPDATE apcloud_meta SET value = 1000 WHERE key = 'seq'");
    }
    ResultsIndex again(dir);
    again.add({make_run("gedit", "noble", "amd64", 3, 0)});
    again.snapshot(db);
    SQLite::Database pub2(db, SQLite::OPEN_READONLY);
    CHECK(pub2.execAndGet("SELECT count(*) FROM result").getInt() == 3);
}

TEST_CASE("statistics per release and architecture") {
    TempDir d;
    ResultsIndex index((d.path / "idx").string());
    index.add({make_run("gedit", "noble", "amd64", 1, 4), make_run("gedit", "noble", "amd64", 2, 0),
               make_run("evince", "noble", "amd64", 3, 4),
               make_run("evince", "noble", "amd64", 24 * 60 + 3, 16),
               make_run("gedit", "noble", "amd64", 5, 0, "autopkgtest-noble-lpuser-ppa")});
    auto stats = index.statistics();
    REQUIRE(stats.size() == 1);
    const auto& s = stats[0];
    CHECK(s.packages == 2);
    CHECK(s.passing == 1);  // gedit's newest passed, evince's is a tmpfail
    CHECK(s.runs == 4);
    CHECK(s.runs_passed == 1);
    CHECK(s.runs_failed == 2);
    CHECK(s.runs_tmpfail == 1);
    REQUIRE(s.days.size() == 2);
    CHECK(s.days[0].day == "2023-11-14");
    CHECK(s.days[0].fail == 2);
    CHECK(s.days[1].tmpfail == 1);
}

TEST_CASE("statistics come from aggregates kept as runs arrive, and an older index gets them at open") {
    TempDir d;
    const std::string dir = (d.path / "idx").string();
    std::vector<ReleaseArchStats> before;
    {
        ResultsIndex index(dir);
        // The newer run first: a late backfill of an older run must not make it the latest.
        index.add({make_run("gedit", "noble", "amd64", 2, 0), make_run("gedit", "noble", "arm64", 2, 4)});
        index.add({make_run("gedit", "noble", "amd64", 1, 4)});
        index.add({make_run("gedit", "noble", "amd64", 1, 4)});  // seen twice: counted once
        before = index.statistics();
        REQUIRE(before.size() == 2);
        CHECK(before[0].arch == "amd64");
        CHECK(before[0].passing == 1);
        CHECK(before[0].runs == 2);
        CHECK(before[1].passing == 0);
    }
    {
        // An index from before the aggregates existed.
        SQLite::Database db(dir + "/index.db", SQLite::OPEN_READWRITE);
        db.exec("DROP TABLE day_stats; DROP TABLE latest");
    }
    ResultsIndex reopened(dir);
    same(reopened.statistics(), before);
    CHECK(reopened.packages() == std::vector<std::string>{"gedit"});
}

TEST_CASE("a bulk load of an empty index gives the rows, indexes and statistics of adding run by run") {
    TempDir d;
    std::vector<IndexedRun> runs;
    for (int m = 0; m < 30; ++m)
        runs.push_back(
            make_run(m % 3 ? "gedit" : "evince", "noble", m % 2 ? "arm64" : "amd64", m, m % 4 ? 0 : 4));
    runs.push_back(make_run("gedit", "noble", "amd64", 40, 0, "autopkgtest-noble-lpuser-ppa"));
    auto indexes = [](const std::string& file) {
        SQLite::Database db(file, SQLite::OPEN_READONLY);
        SQLite::Statement q(db, "SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name");
        std::vector<std::string> out;
        while (q.executeStep()) out.push_back(q.getColumn(0).getString());
        return out;
    };
    const std::string plain = (d.path / "plain").string(), bulk = (d.path / "bulk").string();
    {
        ResultsIndex index(plain);
        index.add(runs);
    }
    ResultsIndex loaded(bulk);
    REQUIRE(loaded.begin_bulk_load());
    // Indexes are gone while loading, queries still right.
    CHECK(indexes(bulk + "/index.db").size() < indexes(plain + "/index.db").size());
    CHECK(loaded.add({runs.begin(), runs.begin() + 10}) == 10);
    CHECK(loaded.add({runs.begin() + 5, runs.end()}) == runs.size() - 10);  // the overlap: once
    CHECK(
        loaded.history("gedit", "noble", "amd64", "", std::nullopt, 100, Viewer{}).runs.size() ==
        ResultsIndex(plain).history("gedit", "noble", "amd64", "", std::nullopt, 100, Viewer{}).runs.size());
    loaded.end_bulk_load();
    CHECK(indexes(bulk + "/index.db") == indexes(plain + "/index.db"));
    CHECK(indexes(bulk + "/compat.db") == indexes(plain + "/compat.db"));
    ResultsIndex reference(plain);
    const auto b = reference.statistics();
    same(loaded.statistics(), b);
    // Counted once although the overlap was added twice (an ignored insert uses up a feed position).
    CHECK(loaded.size() == runs.size());
    CHECK(reference.size() == runs.size());
    CHECK(loaded.feed(0, 1000).runs.size() == reference.feed(0, 1000).runs.size());
    // After it, adds keep the aggregates run by run again.
    loaded.add({make_run("evince", "noble", "amd64", 24 * 60, 4)});
    CHECK(loaded.statistics()[0].runs == b[0].runs + 1);
    // An index holding runs is never bulk loaded.
    CHECK_FALSE(loaded.begin_bulk_load());
    CHECK(indexes(bulk + "/index.db") == indexes(plain + "/index.db"));
}

TEST_CASE("a bulk load cut short (the process killed) is completed by the next open") {
    TempDir d;
    const std::string dir = (d.path / "idx").string();
    {
        ResultsIndex index(dir);
        REQUIRE(index.begin_bulk_load());
        index.add({make_run("gedit", "noble", "amd64", 1, 0), make_run("gedit", "noble", "amd64", 2, 4)});
        // destroyed without end_bulk_load, as by SIGKILL: the flag stays in the file
    }
    {
        SQLite::Database db(dir + "/index.db", SQLite::OPEN_READONLY);
        CHECK(db.execAndGet("SELECT count(*) FROM index_state WHERE key = 'bulk_load'").getInt() == 1);
        CHECK(db.execAndGet("SELECT count(*) FROM day_stats").getInt() == 0);
    }
    ResultsIndex reopened(dir);
    const auto stats = reopened.statistics();
    REQUIRE(stats.size() == 1);
    CHECK(stats[0].runs == 2);
    CHECK(stats[0].passing == 0);  // the newest failed
    SQLite::Database db(dir + "/index.db", SQLite::OPEN_READONLY);
    CHECK(db.execAndGet("SELECT count(*) FROM index_state WHERE key = 'bulk_load'").getInt() == 0);
    CHECK(db.execAndGet("SELECT count(*) FROM sqlite_master WHERE name = 'run_package_ix'").getInt() == 1);
}
