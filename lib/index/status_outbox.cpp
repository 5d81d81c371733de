// The statuses outbox and the tracked requests of webhooks, in SQLite (WAL, fsynced commits: a status
// accepted is never lost).
#include "index/status_outbox.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <fmt/format.h>

#include <mutex>

#include "autopkgtest_cloud/error.hpp"

namespace apcloud::web {

namespace {

Forge forge_of(const std::string& name) {
    return name == "gitlab" ? Forge::gitlab : Forge::github;
}

TrackedRequest tracked_row(SQLite::Statement& q) {
    TrackedRequest t;
    t.uuid = q.getColumn(0).getString();
    t.forge = forge_of(q.getColumn(1).getString());
    t.project = q.getColumn(2).getString();
    t.number = static_cast<std::uint64_t>(q.getColumn(3).getInt64());
    t.sha = q.getColumn(4).getString();
    t.statuses_url = q.getColumn(5).getString();
    t.context = q.getColumn(6).getString();
    t.queued_at = q.getColumn(7).getInt64();
    t.started = q.getColumn(8).getInt() != 0;
    return t;
}

constexpr const char* tracked_columns =
    "uuid, forge, project, number, sha, statuses_url, context, queued_at, started";

}  // namespace

struct StatusOutbox::Impl {
    mutable std::mutex mutex;
    SQLite::Database db;

    explicit Impl(const std::string& path)
        : db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_FULLMUTEX, 10000) {
        db.exec("PRAGMA journal_mode=WAL");
        db.exec("PRAGMA synchronous=FULL");
        db.exec(
            "CREATE TABLE IF NOT EXISTS tracked (uuid TEXT PRIMARY KEY, forge TEXT NOT NULL, project TEXT "
            "NOT "
            "NULL, number INTEGER NOT NULL, sha TEXT NOT NULL, statuses_url TEXT NOT NULL, context TEXT NOT "
            "NULL, queued_at INTEGER NOT NULL, started INTEGER NOT NULL DEFAULT 0)");
        db.exec("CREATE INDEX IF NOT EXISTS tracked_pr ON tracked (forge, project, number)");
        db.exec(
            "CREATE TABLE IF NOT EXISTS accepted (uuid TEXT PRIMARY KEY, forge TEXT NOT NULL, project TEXT "
            "NOT "
            "NULL, number INTEGER NOT NULL, sha TEXT NOT NULL, statuses_url TEXT NOT NULL, context TEXT NOT "
            "NULL, queued_at INTEGER NOT NULL, started INTEGER NOT NULL DEFAULT 0)");
        db.exec(
            "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT NOT NULL, "
            "forge TEXT NOT NULL, project TEXT NOT NULL, url TEXT NOT NULL, body TEXT NOT NULL, attempts "
            "INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL DEFAULT 0, last_error TEXT)");
        db.exec("CREATE INDEX IF NOT EXISTS outbox_due ON outbox (next_at)");
        db.exec(
            "CREATE TABLE IF NOT EXISTS pr_events (forge TEXT NOT NULL, project TEXT NOT NULL, number "
            "INTEGER NOT "
            "NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (forge, project, number)) WITHOUT ROWID");
    }

    void queue(const std::string& uuid, Forge forge, const std::string& project, const std::string& url,
               const std::string& body) {
        SQLite::Statement ins(db,
                              "INSERT INTO outbox (uuid, forge, project, url, body) VALUES (?, ?, ?, ?, ?)");
        ins.bind(1, uuid);
        ins.bind(2, std::string(forge_name(forge)));
        ins.bind(3, project);
        ins.bind(4, url);
        ins.bind(5, body);
        ins.exec();
    }
};

StatusOutbox::StatusOutbox(const std::string& path) {
    try {
        impl_ = std::make_unique<Impl>(path);
    } catch (const SQLite::Exception& e) {
        throw Error(fmt::format("cannot open the statuses outbox {}: {}", quote_for_message(path), e.what()));
    }
}

StatusOutbox::~StatusOutbox() = default;

void StatusOutbox::track(const TrackedRequest& t, const std::string& body) {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    SQLite::Transaction tx(impl_->db);
    for (const char* table : {"tracked", "accepted"}) {
        SQLite::Statement ins(
            impl_->db, fmt::format("INSERT OR REPLACE INTO {} ({}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", table,
                                   tracked_columns));
        ins.bind(1, t.uuid);
        ins.bind(2, std::string(forge_name(t.forge)));
        ins.bind(3, t.project);
        ins.bind(4, static_cast<std::int64_t>(t.number));
        ins.bind(5, t.sha);
        ins.bind(6, t.statuses_url);
        ins.bind(7, t.context);
        ins.bind(8, t.queued_at);
        ins.bind(9, t.started ? 1 : 0);
        ins.exec();
    }
    impl_->queue(t.uuid, t.forge, t.project, t.statuses_url, body);
    tx.commit();
}

void StatusOutbox::send_once(Forge forge, const std::string& project, const std::string& url,
                             const std::string& body) {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->queue("", forge, project, url, body);
}

bool StatusOutbox::finish(const std::string& uuid, const std::string& body) {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    SQLite::Transaction tx(impl_->db);
    SQLite::Statement q(impl_->db, fmt::format("SELECT {} FROM tracked WHERE uuid = ?", tracked_columns));
    q.bind(1, uuid);
    if (!q.executeStep()) return false;
    const TrackedRequest t = tracked_row(q);
    q.reset();
    SQLite::Statement drop(impl_->db, "DELETE FROM outbox WHERE uuid = ?");
    drop.bind(1, uuid);
    drop.exec();
    SQLite::Statement done(impl_->db, "DELETE FROM tracked WHERE uuid = ?");
    done.bind(1, uuid);
    done.exec();
    impl_->queue(uuid, t.forge, t.project, t.statuses_url, body);
    tx.commit();
    return true;
}

bool StatusOutbox::note_event(Forge forge, const std::string& project, std::uint64_t number,
                              std::int64_t updated_at) {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    SQLite::Statement q(impl_->db,
                        "INSERT INTO pr_events (forge, project, number, updated_at) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT DO UPDATE SET updated_at = excluded.updated_at "
                        "WHERE excluded.updated_at >= pr_events.updated_at");
    q.bind(1, std::string(forge_name(forge)));
    q.bind(2, project);
    q.bind(3, static_cast<std::int64_t>(number));
    q.bind(4, updated_at);
    return q.exec() > 0;
}

void StatusOutbox::mark_started(const std::string& uuid) {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    SQLite::Statement q(impl_->db, "UPDATE tracked SET started = 1 WHERE uuid = ? AND started = 0");
    q.bind(1, uuid);
    q.exec();
}

std::optional<TrackedRequest> StatusOutbox::accepted(const std::string& uuid) const {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    SQLite::Statement q(impl_->db, fmt::format("SELECT {} FROM accepted WHERE uuid = ?", tracked_columns));
    q.bind(1, uuid);
    if (!q.executeStep()) return std::nullopt;
    return tracked_row(q);
}

std::vector<TrackedRequest> StatusOutbox::tracked() const {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    SQLite::Statement q(impl_->db,
                        fmt::format("SELECT {} FROM tracked ORDER BY queued_at, uuid", tracked_columns));
    std::vector<TrackedRequest> out;
    while (q.executeStep()) out.push_back(tracked_row(q));
    return out;
}

std::vector<TrackedRequest> StatusOutbox::tracked_of(Forge forge, const std::string& project,
                                                     std::uint64_t number) const {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    SQLite::Statement q(
        impl_->db, fmt::format("SELECT {} FROM tracked WHERE forge = ? AND project = ? AND number = ? ORDER "
                               "BY queued_at, uuid",
                               tracked_columns));
    q.bind(1, std::string(forge_name(forge)));
    q.bind(2, project);
    q.bind(3, static_cast<std::int64_t>(number));
    std::vector<TrackedRequest> out;
    while (q.executeStep()) out.push_back(tracked_row(q));
    return out;
}

std::vector<StatusDelivery> StatusOutbox::due(std::int64_t now, std::size_t limit) const {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    // The oldest waiting status of each request (refused ones, uuid "", each on its own).
    SQLite::Statement q(
        impl_->db,
        "SELECT id, uuid, forge, project, url, body, attempts FROM outbox o WHERE next_at <= ? AND "
        "(uuid = '' OR id = (SELECT MIN(id) FROM outbox p WHERE p.uuid = o.uuid)) ORDER BY id "
        "LIMIT ?");
    q.bind(1, now);
    q.bind(2, static_cast<std::int64_t>(limit));
    std::vector<StatusDelivery> out;
    while (q.executeStep()) {
        StatusDelivery d;
        d.id = q.getColumn(0).getInt64();
        d.uuid = q.getColumn(1).getString();
        d.forge = forge_of(q.getColumn(2).getString());
        d.project = q.getColumn(3).getString();
        d.url = q.getColumn(4).getString();
        d.body = q.getColumn(5).getString();
        d.attempts = q.getColumn(6).getInt();
        out.push_back(std::move(d));
    }
    return out;
}

std::optional<std::int64_t> StatusOutbox::next_due() const {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    SQLite::Statement q(impl_->db, "SELECT MIN(next_at) FROM outbox");
    if (!q.executeStep() || q.getColumn(0).isNull()) return std::nullopt;
    return q.getColumn(0).getInt64();
}

void StatusOutbox::delivered(std::int64_t id) {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    SQLite::Statement q(impl_->db, "DELETE FROM outbox WHERE id = ?");
    q.bind(1, id);
    q.exec();
}

void StatusOutbox::retry_at(std::int64_t id, std::int64_t next_at, const std::string& error) {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    SQLite::Statement q(
        impl_->db, "UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE id = ?");
    q.bind(1, next_at);
    q.bind(2, error);
    q.bind(3, id);
    q.exec();
}

void StatusOutbox::drop(std::int64_t id) {
    delivered(id);
}

std::size_t StatusOutbox::waiting() const {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    SQLite::Statement q(impl_->db, "SELECT COUNT(*) FROM outbox");
    q.executeStep();
    return static_cast<std::size_t>(q.getColumn(0).getInt64());
}

}  // namespace apcloud::web
