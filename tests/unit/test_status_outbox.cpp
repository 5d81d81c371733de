// The statuses outbox: tracked requests and their statuses in order, a final status replacing unsent
// ones, retries at a later time, everything kept across a reopening (a restart of the web service).
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "index/status_outbox.hpp"

using namespace apcloud;
using namespace apcloud::web;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        std::string t = (fs::temp_directory_path() / "apcloud-outbox-XXXXXX").string();
        REQUIRE(mkdtemp(t.data()) != nullptr);
        path = t;
    }
    ~TempDir() { fs::remove_all(path); }
};

TrackedRequest request(const std::string& uuid, std::uint64_t number, const std::string& sha) {
    TrackedRequest t;
    t.uuid = uuid;
    t.project = "gedit";
    t.number = number;
    t.sha = sha;
    t.statuses_url = "https://api.github.com/repos/o/r/statuses/" + sha;
    t.context = "noble/amd64";
    t.queued_at = 1000;
    return t;
}

}  // namespace

TEST_CASE("statuses go out in order, one at a time per request; a final one replaces those not sent") {
    TempDir dir;
    const std::string db = (dir.path / "statuses.db").string();
    {
        StatusOutbox o(db);
        o.track(request("u1", 7, "aaaaaaa"), "pending-1");
        o.track(request("u2", 7, "bbbbbbb"), "pending-2");
        o.send_once(Forge::github, "gedit", "https://api.github.com/repos/o/r/statuses/ccccccc", "refused-a");
        o.send_once(Forge::github, "gedit", "https://api.github.com/repos/o/r/statuses/ccccccc", "refused-b");
        auto due = o.due(2000);
        REQUIRE(due.size() == 4);  // refused ones are independent of each other
        CHECK(due[0].body == "pending-1");
        CHECK(due[1].body == "pending-2");
        CHECK(due[0].url == "https://api.github.com/repos/o/r/statuses/aaaaaaa");
        o.delivered(due[2].id);
        o.delivered(due[3].id);
        // u1's pending fails; its final arrives meanwhile: the pending is dropped, never sent after it.
        o.retry_at(due[0].id, 5000, "HTTP 502");
        CHECK(o.due(2000).size() == 1);  // u1 waits until 5000
        CHECK(o.next_due() == std::optional<std::int64_t>(0));
        CHECK(o.finish("u1", "final-1"));
        CHECK_FALSE(o.finish("u1", "again"));  // no longer tracked
        CHECK_FALSE(o.finish("nobody", "x"));
        due = o.due(2000);
        REQUIRE(due.size() == 2);
        CHECK(due[0].body == "pending-2");
        CHECK(due[1].body == "final-1");
        CHECK(due[1].attempts == 0);
        // u2: pending then final, in that order: the final waits until the pending is sent.
        CHECK(o.finish("u2", "final-2"));
        due = o.due(2000);
        REQUIRE(due.size() == 2);
        CHECK(due[0].body == "final-1");
        CHECK(due[1].body == "final-2");  // u2's pending was not sent yet: replaced
        CHECK(o.tracked().empty());
        o.track(request("u3", 8, "ddddddd"), "pending-3");
        o.mark_started("u3");
    }
    // Reopened (the service restarted): what was waiting still waits.
    StatusOutbox o(db);
    CHECK(o.waiting() == 3);
    const auto tracked = o.tracked();
    REQUIRE(tracked.size() == 1);
    CHECK(tracked[0].uuid == "u3");
    CHECK(tracked[0].started);
    CHECK(tracked[0].statuses_url == "https://api.github.com/repos/o/r/statuses/ddddddd");
    CHECK(o.tracked_of(Forge::github, "gedit", 8).size() == 1);
    CHECK(o.tracked_of(Forge::github, "gedit", 7).empty());
    CHECK(o.tracked_of(Forge::gitlab, "gedit", 8).empty());
    for (const auto& d : o.due(9000)) o.drop(d.id);
    CHECK(o.waiting() == 0);
    CHECK_FALSE(o.next_due());
}

TEST_CASE("events of one pull request: an older change's, redelivered after a newer one's, is refused") {
    TempDir d;
    const std::string path = (d.path / "statuses.db").string();
    {
        StatusOutbox box(path);
        CHECK(box.note_event(Forge::github, "gedit", 7, 2000));
        CHECK(box.note_event(Forge::github, "gedit", 7, 2000));  // the same change again (several events)
        CHECK(box.note_event(Forge::github, "gedit", 7, 3000));
        CHECK_FALSE(box.note_event(Forge::github, "gedit", 7, 2500));
        // Other pull requests, projects and forges are their own.
        CHECK(box.note_event(Forge::github, "gedit", 8, 1000));
        CHECK(box.note_event(Forge::github, "evince", 7, 1000));
        CHECK(box.note_event(Forge::gitlab, "gedit", 7, 1000));
    }
    StatusOutbox reopened(path);  // kept across a restart
    CHECK_FALSE(reopened.note_event(Forge::github, "gedit", 7, 2999));
    CHECK(reopened.note_event(Forge::github, "gedit", 7, 3001));
}
