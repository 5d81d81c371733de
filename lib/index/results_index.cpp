// The results index on SQLite (SQLiteCpp): our `run` table in index.db, the
// reference's `test`/`result` tables in compat.db, written together by one
// writer connection; readers use a pool of their own read-only connections.
//
// Two files, so that the published autopkgtest.db is a plain backup of
// compat.db: it holds only what gating clients read (public runs of the
// release containers) and never a private run, without copying or filtering
// the whole index at every publish. A transaction over two WAL databases is
// atomic per file, not across them: compat.db records the feed position
// (`run.seq`) it has caught up with, and opening the index replays what a
// crash between the two commits left out.
#include "autopkgtest_cloud/results_index.hpp"

#include <SQLiteCpp/Backup.h>
#include <SQLiteCpp/SQLiteCpp.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/exit_codes.hpp"
#include "autopkgtest_cloud/file_io.hpp"
#include "core/digest.hpp"
#include "core/logging.hpp"

namespace apcloud {

namespace {

using nlohmann::json;

const detail::Logger logger("index");

// SPEC.md section 6, verbatim: britney's query must work on the published copy.
constexpr const char* compat_schema = R"SQL(
CREATE TABLE IF NOT EXISTS test(id INTEGER PRIMARY KEY, release CHAR[20], arch CHAR[20], package CHAR[120]);
CREATE TABLE IF NOT EXISTS result(test_id INTEGER, run_id CHAR[30], version VARCHAR[200], triggers TEXT,
       duration INTEGER, exitcode INTEGER, requester TEXT, env TEXT, uuid TEXT UNIQUE,
       PRIMARY KEY(test_id, run_id), FOREIGN KEY(test_id) REFERENCES test(id));
CREATE UNIQUE INDEX IF NOT EXISTS test_package_uix ON test(package, release, arch);
CREATE INDEX IF NOT EXISTS result_run_ix ON result(run_id DESC);
CREATE INDEX IF NOT EXISTS result_requester_idx ON result(requester);
CREATE INDEX IF NOT EXISTS result_test_id_ix ON result(test_id);
CREATE TABLE IF NOT EXISTS apcloud_meta(key TEXT PRIMARY KEY, value INTEGER);
)SQL";

constexpr const char* index_schema = R"SQL(
CREATE TABLE IF NOT EXISTS run(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    container TEXT NOT NULL, release TEXT NOT NULL, arch TEXT NOT NULL, package TEXT NOT NULL,
    run_id TEXT NOT NULL,
    is_release INTEGER NOT NULL, private INTEGER NOT NULL,
    exitcode INTEGER NOT NULL, outcome TEXT NOT NULL,
    version TEXT, triggers TEXT NOT NULL, has_triggers INTEGER NOT NULL, duration INTEGER,
    requester TEXT, env TEXT NOT NULL, env_list TEXT NOT NULL, all_proposed INTEGER NOT NULL,
    uuid TEXT, ppas TEXT NOT NULL, testname TEXT, build_git TEXT, test_git TEXT,
    readable_by TEXT NOT NULL, swiftuser TEXT, summary TEXT,
    UNIQUE(container, release, arch, package, run_id));
CREATE INDEX IF NOT EXISTS run_package_ix ON run(package, release, arch, container, run_id);
CREATE INDEX IF NOT EXISTS run_recent_ix ON run(run_id);
CREATE INDEX IF NOT EXISTS run_requester_ix ON run(requester, run_id);
CREATE INDEX IF NOT EXISTS run_uuid_ix ON run(uuid);
CREATE TABLE IF NOT EXISTS day_stats(
    release TEXT NOT NULL, arch TEXT NOT NULL, day TEXT NOT NULL, outcome TEXT NOT NULL, runs INTEGER NOT NULL,
    PRIMARY KEY(release, arch, day, outcome)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS latest(
    release TEXT NOT NULL, arch TEXT NOT NULL, package TEXT NOT NULL, run_id TEXT NOT NULL, outcome TEXT NOT NULL,
    PRIMARY KEY(release, arch, package)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS index_state(key TEXT PRIMARY KEY, value INTEGER) WITHOUT ROWID;
)SQL";

// The indexes a bulk load drops (the schemas above make them again): not the
// unique ones, which decide what a run already indexed is.
constexpr const char* drop_secondary_indexes = R"SQL(
DROP INDEX IF EXISTS run_package_ix;
DROP INDEX IF EXISTS run_recent_ix;
DROP INDEX IF EXISTS run_requester_ix;
DROP INDEX IF EXISTS run_uuid_ix;
DROP INDEX IF EXISTS compat.result_run_ix;
DROP INDEX IF EXISTS compat.result_requester_idx;
DROP INDEX IF EXISTS compat.result_test_id_ix;
INSERT OR REPLACE INTO index_state(key, value) VALUES('bulk_load', 1);
)SQL";

// The statistics' aggregates (day_stats, latest) of the runs of an index made
// before they existed, in one pass; later runs keep them current as they are added.
constexpr const char* fill_aggregates = R"SQL(
INSERT INTO day_stats(release, arch, day, outcome, runs)
    SELECT release, arch, substr(run_id, 1, 8), outcome, count(*) FROM run WHERE is_release GROUP BY 1, 2, 3, 4;
INSERT INTO latest(release, arch, package, run_id, outcome)
    SELECT release, arch, package, max(run_id), outcome FROM run WHERE is_release GROUP BY 1, 2, 3;
)SQL";

constexpr const char* run_columns =
    "seq, container, release, arch, package, run_id, private, exitcode, version, triggers, has_triggers, "
    "duration, requester, env_list, all_proposed, uuid, ppas, testname, build_git, test_git, readable_by, "
    "swiftuser, summary";

// Who may read: public rows, or private ones for admins, owners and readers.
constexpr const char* viewer_filter =
    "(private = 0 OR :admin OR (:user != '' AND (swiftuser = :user OR "
    "instr(' ' || readable_by || ' ', ' ' || :user || ' ') > 0)))";

std::optional<std::string> text_or_null(const SQLite::Column& c) {
    if (c.isNull()) return std::nullopt;
    return c.getString();
}

// A JSON array of strings, as json_list reads it.
std::string json_list_text(const std::vector<std::string>& items) {
    return items.empty() ? std::string("[]") : json(items).dump();
}

std::vector<std::string> json_list(const std::string& text) {
    std::vector<std::string> out;
    if (text == "[]") return out;  // most runs: no env, no PPAs
    json j = json::parse(text, nullptr, false);
    if (j.is_array())
        for (const auto& v : j)
            if (v.is_string()) out.push_back(v.get<std::string>());
    return out;
}

IndexedRecord read_record(SQLite::Statement& q) {
    IndexedRecord rec;
    IndexedRun& r = rec.run;
    rec.seq = q.getColumn(0).getInt64();
    r.container = q.getColumn(1).getString();
    r.release = q.getColumn(2).getString();
    r.arch = q.getColumn(3).getString();
    r.package = q.getColumn(4).getString();
    r.run_id = q.getColumn(5).getString();
    r.is_private = q.getColumn(6).getInt() != 0;
    r.exitcode = q.getColumn(7).getInt();
    r.version = text_or_null(q.getColumn(8));
    r.triggers = split_triggers(q.getColumn(9).getString());
    r.has_triggers = q.getColumn(10).getInt() != 0;
    if (!q.getColumn(11).isNull()) r.duration = static_cast<std::uint64_t>(q.getColumn(11).getInt64());
    r.requester = text_or_null(q.getColumn(12));
    r.env = json_list(q.getColumn(13).getString());
    r.all_proposed = q.getColumn(14).getInt() != 0;
    r.uuid = text_or_null(q.getColumn(15));
    r.ppas = json_list(q.getColumn(16).getString());
    r.testname = text_or_null(q.getColumn(17));
    r.build_git = text_or_null(q.getColumn(18));
    r.test_git = text_or_null(q.getColumn(19));
    r.readable_by = split_triggers(q.getColumn(20).getString());
    r.swiftuser = text_or_null(q.getColumn(21));
    r.summary = text_or_null(q.getColumn(22));
    return rec;
}

void bind_viewer(SQLite::Statement& s, const Viewer& viewer) {
    s.bind(":admin", viewer.admin ? 1 : 0);
    s.bind(":user", viewer.user);
}

[[noreturn]] void fail(const std::string& what, const std::exception& e) {
    throw StoreError(fmt::format("results index: {}: {}", what, e.what()));
}

// Read-only connections to index.db, one per concurrent reader, each with
// the statements prepared on it (preparing the history query took 7% of a
// history page: bench-web-history).
class ReaderPool {
    struct Reader {
        std::unique_ptr<SQLite::Database> db;
        std::map<std::string, std::unique_ptr<SQLite::Statement>> statements;  // after db: destroyed first
    };

public:
    explicit ReaderPool(std::string path) : path_(std::move(path)) {}

    class Lease {
    public:
        Lease(ReaderPool& pool, Reader reader) : pool_(pool), reader_(std::move(reader)) {}
        ~Lease() { pool_.give_back(std::move(reader_)); }
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        SQLite::Database& operator*() { return *reader_.db; }
        /// `sql` prepared on this connection once, reset and without bindings.
        SQLite::Statement& prepared(const std::string& sql) {
            auto& s = reader_.statements[sql];
            if (!s) s = std::make_unique<SQLite::Statement>(*reader_.db, sql);
            s->reset();
            s->clearBindings();
            return *s;
        }

    private:
        ReaderPool& pool_;
        Reader reader_;
    };

    Lease take() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!free_.empty()) {
                Reader r = std::move(free_.back());
                free_.pop_back();
                return Lease(*this, std::move(r));
            }
        }
        Reader r;
        r.db = std::make_unique<SQLite::Database>(path_, SQLite::OPEN_READONLY, 5000);
        return Lease(*this, std::move(r));
    }

private:
    void give_back(Reader r) {
        // A statement left mid-way would hold its read transaction (and the WAL) open while idle.
        for (auto& [sql, s] : r.statements) s->reset();
        std::lock_guard<std::mutex> lock(mutex_);
        if (free_.size() < 16) free_.push_back(std::move(r));
    }

    std::string path_;
    std::mutex mutex_;
    std::vector<Reader> free_;
};

}  // namespace

bool Viewer::may_read(const IndexedRun& run) const {
    if (!run.is_private || admin) return true;
    if (user.empty()) return false;
    if (run.swiftuser && *run.swiftuser == user) return true;
    return std::find(run.readable_by.begin(), run.readable_by.end(), user) != run.readable_by.end();
}

namespace {

// The writer's statements, prepared once: preparing them per row was half
// the cost of an insert (bench-index-ingest).
struct WriterStatements {
    explicit WriterStatements(SQLite::Database& db)
        : insert_run(
              db,
              "INSERT OR IGNORE INTO run(container, release, arch, package, run_id, is_release, private, "
              "exitcode, outcome, version, triggers, has_triggers, duration, requester, env, env_list, "
              "all_proposed, uuid, ppas, testname, build_git, test_git, readable_by, swiftuser, summary) "
              "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
          insert_test(db, "INSERT OR IGNORE INTO compat.test(release, arch, package) VALUES(?, ?, ?)"),
          test_id(db, "SELECT id FROM compat.test WHERE package = ? AND release = ? AND arch = ?"),
          uuid_taken(db, "SELECT 1 FROM compat.result WHERE uuid = ? AND NOT (test_id = ? AND run_id = ?)"),
          insert_result(db,
                        "INSERT OR IGNORE INTO compat.result(test_id, run_id, version, triggers, duration, "
                        "exitcode, requester, env, uuid) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)"),
          mark(db, "INSERT OR REPLACE INTO compat.apcloud_meta(key, value) VALUES('seq', ?)"),
          count_runs(db, "UPDATE index_state SET value = value + ? WHERE key = 'runs'"),
          count_day(db,
                    "INSERT INTO day_stats(release, arch, day, outcome, runs) VALUES(?, ?, ?, ?, 1) "
                    "ON CONFLICT DO UPDATE SET runs = runs + 1"),
          set_latest(db,
                     "INSERT INTO latest(release, arch, package, run_id, outcome) VALUES(?, ?, ?, ?, ?) "
                     "ON CONFLICT DO UPDATE SET run_id = excluded.run_id, outcome = excluded.outcome "
                     "WHERE excluded.run_id > latest.run_id") {}
    SQLite::Statement insert_run, insert_test, test_id, uuid_taken, insert_result, mark, count_runs,
        count_day, set_latest;
};

// A prepared statement ready for its next use, however the last one ended.
SQLite::Statement& fresh(SQLite::Statement& s) {
    s.reset();
    s.clearBindings();
    return s;
}

void bind_optional(SQLite::Statement& s, int index, const std::optional<std::string>& v) {
    if (v)
        s.bind(index, *v);
    else
        s.bind(index);
}

void bind_optional(SQLite::Statement& s, int index, const std::optional<std::uint64_t>& v) {
    if (v)
        s.bind(index, static_cast<std::int64_t>(*v));
    else
        s.bind(index);
}

}  // namespace

struct ResultsIndex::Impl {
    std::string dir, index_path, compat_path;
    std::mutex write_mutex;
    std::unique_ptr<SQLite::Database> writer;
    std::unique_ptr<WriterStatements> statements;  // after `writer`: destroyed before it
    std::unique_ptr<ReaderPool> readers;

    bool bulk = false;  ///< a bulk load is in progress: no aggregates run by run
    /// compat.test ids by release, arch and package, as committed (cleared when a write fails).
    std::unordered_map<std::string, std::int64_t> test_ids;

    void open();
    void make_schemas();
    void finish_bulk_load();
    void catch_up_compat();
    /// The new run's feed position; nullopt when it was indexed already.
    std::optional<std::int64_t> insert(const IndexedRun& r);
    void insert_compat(const IndexedRun& r);
    void count_for_statistics(const IndexedRun& r, const std::string& outcome_text);
    void set_mark(std::int64_t seq);
    template <class F>
    auto read(F&& f) const -> decltype(f(std::declval<SQLite::Database&>())) {
        auto lease = readers->take();
        return f(*lease);
    }
    /// `f` with `sql` prepared on a reader connection (kept for its next use).
    template <class F>
    auto read_prepared(const std::string& sql, F&& f) const
        -> decltype(f(std::declval<SQLite::Statement&>())) {
        auto lease = readers->take();
        return f(lease.prepared(sql));
    }
};

void ResultsIndex::Impl::open() {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw SystemError(ec.value(), "create the index directory", dir);
    writer =
        std::make_unique<SQLite::Database>(index_path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE, 10000);
    writer->exec("PRAGMA journal_mode=WAL");
    writer->exec("PRAGMA synchronous=NORMAL");  // a crash loses at most what the backfill adds again
    // Inserts land at random places of nine indexes: past SQLite's default
    // 2 MiB cache every insert re-read pages (bench-index-ingest at 100k runs).
    writer->exec("PRAGMA cache_size=-65536");
    const bool had_runs = writer->tableExists("run");
    const bool had_aggregates = writer->tableExists("day_stats");
    SQLite::Statement attach(*writer, "ATTACH DATABASE ? AS compat");
    attach.bind(1, compat_path);
    attach.exec();
    writer->exec("PRAGMA compat.journal_mode=WAL");
    writer->exec("PRAGMA compat.synchronous=NORMAL");
    writer->exec("PRAGMA compat.cache_size=-32768");
    make_schemas();
    if (had_runs && !had_aggregates) writer->exec(fill_aggregates);
    statements = std::make_unique<WriterStatements>(*writer);
    readers = std::make_unique<ReaderPool>(index_path);
    // The run count size() reads: feed positions have gaps (an ignored insert uses one up).
    if (writer->execAndGet("SELECT count(*) FROM index_state WHERE key = 'runs'").getInt() == 0)
        writer->exec("INSERT INTO index_state(key, value) SELECT 'runs', count(*) FROM run");
    if (writer->execAndGet("SELECT count(*) FROM index_state WHERE key = 'bulk_load'").getInt() > 0) {
        logger.warn("{}: a bulk load was cut short; completing it", dir);
        finish_bulk_load();
    }
    catch_up_compat();
}

// Both files' tables and indexes, each made when missing.
void ResultsIndex::Impl::make_schemas() {
    writer->exec(index_schema);
    // The same schema in the attached file: object names get its prefix, tables in ON clauses not.
    std::string schema = compat_schema;
    for (std::size_t p = 0; (p = schema.find("EXISTS ", p)) != std::string::npos;) {
        p += 7;
        schema.insert(p, "compat.");
    }
    writer->exec(schema);
}

// The dropped indexes made again and the aggregates counted from every run, in one transaction.
void ResultsIndex::Impl::finish_bulk_load() {
    SQLite::Transaction txn(*writer, SQLite::TransactionBehavior::IMMEDIATE);
    make_schemas();
    writer->exec("DELETE FROM day_stats; DELETE FROM latest;");
    writer->exec(fill_aggregates);
    writer->exec("DELETE FROM index_state WHERE key = 'bulk_load'");
    txn.commit();
    bulk = false;
}

// compat.db lags behind index.db after a crash between their commits: replay
// the runs it misses; when it is ahead, lower its mark (the runs it has are
// indexed again by the backfill, and added to compat.db idempotently).
void ResultsIndex::Impl::catch_up_compat() {
    SQLite::Transaction txn(*writer);
    std::int64_t done = 0;
    {
        SQLite::Statement q(*writer, "SELECT value FROM compat.apcloud_meta WHERE key = 'seq'");
        if (q.executeStep()) done = q.getColumn(0).getInt64();
    }
    std::int64_t newest = writer->execAndGet("SELECT coalesce(max(seq), 0) FROM run").getInt64();
    std::size_t replayed = 0;
    if (done < newest) {
        SQLite::Statement q(
            *writer,
            fmt::format("SELECT {} FROM run WHERE seq > ? AND is_release ORDER BY seq", run_columns));
        q.bind(1, done);
        while (q.executeStep()) {
            auto rec = read_record(q);
            insert_compat(rec.run);
            ++replayed;
        }
    }
    set_mark(newest);
    txn.commit();
    if (replayed > 0 || done > newest)
        logger.warn("compat.db was at feed position {}, index.db at {}: {} runs replayed", done, newest,
                    replayed);
}

std::optional<std::int64_t> ResultsIndex::Impl::insert(const IndexedRun& r) {
    const auto info = parse_container_name(r.container);
    const bool is_release = info && info->is_release() && info->release == r.release && !r.is_private;
    auto& s = fresh(statements->insert_run);
    s.bind(1, r.container);
    s.bind(2, r.release);
    s.bind(3, r.arch);
    s.bind(4, r.package);
    s.bind(5, r.run_id);
    s.bind(6, is_release ? 1 : 0);
    s.bind(7, r.is_private ? 1 : 0);
    s.bind(8, r.exitcode);
    const std::string outcome_text(outcome_name(outcome(r.exitcode)));
    s.bind(9, outcome_text);
    bind_optional(s, 10, r.version);
    s.bind(11, r.triggers_column());
    s.bind(12, r.has_triggers ? 1 : 0);
    bind_optional(s, 13, r.duration);
    bind_optional(s, 14, r.requester);
    s.bind(15, r.env_column());
    s.bind(16, json_list_text(r.env));
    s.bind(17, r.all_proposed ? 1 : 0);
    bind_optional(s, 18, r.uuid);
    s.bind(19, json_list_text(r.ppas));
    bind_optional(s, 20, r.testname);
    bind_optional(s, 21, r.build_git);
    bind_optional(s, 22, r.test_git);
    s.bind(23, fmt::format("{}", fmt::join(r.readable_by, " ")));
    bind_optional(s, 24, r.swiftuser);
    bind_optional(s, 25, r.summary);
    if (s.exec() == 0) return std::nullopt;
    const std::int64_t seq = writer->getLastInsertRowid();
    if (is_release) {
        insert_compat(r);
        if (!bulk) count_for_statistics(r, outcome_text);
    }
    return seq;
}

// The aggregates ResultsIndex::statistics reads, so that it never scans the runs.
void ResultsIndex::Impl::count_for_statistics(const IndexedRun& r, const std::string& outcome_text) {
    auto& day = fresh(statements->count_day);
    day.bind(1, r.release);
    day.bind(2, r.arch);
    day.bind(3, r.run_id.substr(0, 8));
    day.bind(4, outcome_text);
    day.exec();
    auto& latest = fresh(statements->set_latest);
    latest.bind(1, r.release);
    latest.bind(2, r.arch);
    latest.bind(3, r.package);
    latest.bind(4, r.run_id);
    latest.bind(5, outcome_text);
    latest.exec();
}

// The reference's rows for one run. A uuid another run holds already (a
// request that ran twice) is left out of the later row rather than the row.
void ResultsIndex::Impl::insert_compat(const IndexedRun& r) {
    const std::string test_key = fmt::format("{}\n{}\n{}", r.release, r.arch, r.package);
    auto known = test_ids.find(test_key);
    if (known == test_ids.end()) {
        auto& t = fresh(statements->insert_test);
        t.bind(1, r.release);
        t.bind(2, r.arch);
        t.bind(3, r.package);
        t.exec();
        auto& id = fresh(statements->test_id);
        id.bind(1, r.package);
        id.bind(2, r.release);
        id.bind(3, r.arch);
        if (!id.executeStep()) throw Error("results index: compat.test lost the row just inserted");
        known = test_ids.emplace(test_key, id.getColumn(0).getInt64()).first;
    }
    const std::int64_t test_id = known->second;
    std::optional<std::string> uuid = r.uuid;
    if (uuid) {
        auto& taken = fresh(statements->uuid_taken);
        taken.bind(1, *uuid);
        taken.bind(2, test_id);
        taken.bind(3, r.run_id);
        if (taken.executeStep()) uuid.reset();
    }
    auto& s = fresh(statements->insert_result);
    s.bind(1, test_id);
    s.bind(2, r.run_id);
    bind_optional(s, 3, r.version);
    s.bind(4, r.triggers_column());
    bind_optional(s, 5, r.duration);
    s.bind(6, r.exitcode);
    bind_optional(s, 7, r.requester);
    s.bind(8, r.env_column());
    bind_optional(s, 9, uuid);
    s.exec();
}

// compat.db's feed position: how far it has caught up with index.db.
void ResultsIndex::Impl::set_mark(std::int64_t seq) {
    auto& mark = fresh(statements->mark);
    mark.bind(1, seq);
    mark.exec();
}

ResultsIndex::ResultsIndex(const std::string& dir) : impl_(std::make_unique<Impl>()) {
    impl_->dir = dir;
    impl_->index_path = dir + "/index.db";
    impl_->compat_path = dir + "/compat.db";
    try {
        impl_->open();
    } catch (const SQLite::Exception& e) {
        fail(fmt::format("cannot open {}", quote_for_message(dir)), e);
    }
}

ResultsIndex::~ResultsIndex() = default;

std::size_t ResultsIndex::add(const std::vector<IndexedRun>& runs) {
    if (runs.empty()) return 0;
    std::lock_guard<std::mutex> lock(impl_->write_mutex);
    try {
        SQLite::Transaction txn(*impl_->writer, SQLite::TransactionBehavior::IMMEDIATE);
        std::size_t added = 0;
        std::optional<std::int64_t> newest;
        for (const auto& r : runs)
            if (auto seq = impl_->insert(r)) {
                ++added;
                newest = seq;
            }
        if (newest) impl_->set_mark(*newest);
        if (added > 0) {
            auto& count = fresh(impl_->statements->count_runs);
            count.bind(1, static_cast<std::int64_t>(added));
            count.exec();
        }
        txn.commit();
        return added;
    } catch (const SQLite::Exception& e) {
        impl_->test_ids.clear();  // may name test rows rolled back
        fail(fmt::format("cannot add {} runs", runs.size()), e);
    } catch (...) {
        impl_->test_ids.clear();
        throw;
    }
}

bool ResultsIndex::begin_bulk_load() {
    std::lock_guard<std::mutex> lock(impl_->write_mutex);
    try {
        if (impl_->bulk) return true;
        SQLite::Transaction txn(*impl_->writer, SQLite::TransactionBehavior::IMMEDIATE);
        if (impl_->writer->execAndGet("SELECT EXISTS(SELECT 1 FROM run)").getInt() != 0) return false;
        impl_->writer->exec(drop_secondary_indexes);
        txn.commit();
        impl_->bulk = true;
        return true;
    } catch (const SQLite::Exception& e) {
        fail("cannot start a bulk load", e);
    }
}

void ResultsIndex::end_bulk_load() {
    std::lock_guard<std::mutex> lock(impl_->write_mutex);
    if (!impl_->bulk) return;
    try {
        impl_->finish_bulk_load();
    } catch (const SQLite::Exception& e) {
        fail("cannot end a bulk load", e);
    }
}

bool ResultsIndex::contains(const std::string& container, const RunLocation& w) const {
    return impl_->read([&](SQLite::Database& db) {
        SQLite::Statement q(
            db,
            "SELECT 1 FROM run WHERE container = ? AND release = ? AND arch = ? AND package = ? "
            "AND run_id = ?");
        q.bind(1, container);
        q.bind(2, w.release);
        q.bind(3, w.arch);
        q.bind(4, w.package);
        q.bind(5, w.run_id);
        return q.executeStep();
    });
}

std::vector<std::string> ResultsIndex::run_dirs(const std::string& container) const {
    return impl_->read([&](SQLite::Database& db) {
        std::vector<std::string> out;
        SQLite::Statement q(db, "SELECT release, arch, package, run_id FROM run WHERE container = ?");
        q.bind(1, container);
        while (q.executeStep())
            out.push_back(RunLocation{q.getColumn(0).getString(), q.getColumn(1).getString(),
                                      q.getColumn(2).getString(), q.getColumn(3).getString()}
                              .dir());
        std::sort(out.begin(), out.end());
        return out;
    });
}

namespace {

std::vector<IndexedRecord> all_records(SQLite::Statement& q, std::size_t expected = 0) {
    std::vector<IndexedRecord> out;
    out.reserve(expected);  // a page's records are not moved as the vector grows
    while (q.executeStep()) out.push_back(read_record(q));
    return out;
}

}  // namespace

std::vector<IndexedRecord> ResultsIndex::latest(const std::string& package, const Viewer& viewer) const {
    return impl_->read([&](SQLite::Database& db) {
        // SQLite takes the bare columns from the row of max(run_id).
        SQLite::Statement q(
            db, fmt::format("SELECT {}, max(run_id) FROM run WHERE package = :package AND is_release "
                            "AND {} GROUP BY release, arch ORDER BY release, arch",
                            run_columns, viewer_filter));
        q.bind(":package", package);
        bind_viewer(q, viewer);
        return all_records(q);
    });
}

HistoryPage ResultsIndex::history(const std::string& package, const std::string& release,
                                  const std::string& arch, const std::string& container,
                                  const std::optional<std::string>& before, std::size_t limit,
                                  const Viewer& viewer) const {
    static const std::string sql = fmt::format(
        "SELECT {} FROM run WHERE package = :package AND release = :release AND "
        "arch = :arch AND container = :container AND run_id < :before AND {} "
        "ORDER BY run_id DESC LIMIT :limit",
        run_columns, viewer_filter);
    return impl_->read_prepared(sql, [&](SQLite::Statement& q) {
        q.bind(":package", package);
        q.bind(":release", release);
        q.bind(":arch", arch);
        q.bind(":container", container.empty() ? "autopkgtest-" + release : container);
        q.bind(":before", before.value_or("\x7f"));
        q.bind(":limit", static_cast<std::int64_t>(limit + 1));
        bind_viewer(q, viewer);
        HistoryPage page;
        page.runs = all_records(q, std::min<std::size_t>(limit + 1, 1000));
        if (page.runs.size() > limit) {
            page.runs.resize(limit);
            page.next_before = page.runs.back().run.run_id;
        }
        return page;
    });
}

std::optional<IndexedRecord> ResultsIndex::run(const std::string& container, const RunLocation& w,
                                               const Viewer& viewer) const {
    return impl_->read([&](SQLite::Database& db) -> std::optional<IndexedRecord> {
        SQLite::Statement q(
            db, fmt::format("SELECT {} FROM run WHERE container = :container AND release = :release "
                            "AND arch = :arch AND package = :package AND run_id = :run_id AND {}",
                            run_columns, viewer_filter));
        q.bind(":container", container.empty() ? "autopkgtest-" + w.release : container);
        q.bind(":release", w.release);
        q.bind(":arch", w.arch);
        q.bind(":package", w.package);
        q.bind(":run_id", w.run_id);
        bind_viewer(q, viewer);
        if (!q.executeStep()) return std::nullopt;
        return read_record(q);
    });
}

std::optional<IndexedRecord> ResultsIndex::run_by_uuid(const std::string& uuid, const Viewer& viewer) const {
    return impl_->read([&](SQLite::Database& db) -> std::optional<IndexedRecord> {
        SQLite::Statement q(
            db, fmt::format("SELECT {} FROM run WHERE uuid = :uuid AND {} ORDER BY run_id DESC LIMIT 1",
                            run_columns, viewer_filter));
        q.bind(":uuid", uuid);
        bind_viewer(q, viewer);
        if (!q.executeStep()) return std::nullopt;
        return read_record(q);
    });
}

std::optional<IndexedRecord> ResultsIndex::run_by_id(const std::string& run_id, const Viewer& viewer) const {
    return impl_->read([&](SQLite::Database& db) -> std::optional<IndexedRecord> {
        SQLite::Statement q(
            db, fmt::format("SELECT {} FROM run WHERE run_id = :run_id AND {} ORDER BY seq LIMIT 1",
                            run_columns, viewer_filter));
        q.bind(":run_id", run_id);
        bind_viewer(q, viewer);
        if (!q.executeStep()) return std::nullopt;
        return read_record(q);
    });
}

std::vector<IndexedRecord> ResultsIndex::recent(const RecentQuery& query, const Viewer& viewer) const {
    return impl_->read([&](SQLite::Database& db) {
        std::string where = viewer_filter;
        if (!query.release.empty()) where += " AND release = :release";
        if (!query.arch.empty()) where += " AND arch = :arch";
        if (!query.user.empty()) where += " AND requester = :requester";
        if (!query.outcome.empty()) where += " AND outcome = :outcome";
        if (!query.package.empty()) where += " AND package = :package";
        SQLite::Statement q(
            db, fmt::format("SELECT {} FROM run WHERE {} ORDER BY run_id DESC LIMIT :limit OFFSET :offset",
                            run_columns, where));
        bind_viewer(q, viewer);
        if (!query.release.empty()) q.bind(":release", query.release);
        if (!query.arch.empty()) q.bind(":arch", query.arch);
        if (!query.user.empty()) q.bind(":requester", query.user);
        if (!query.outcome.empty()) q.bind(":outcome", query.outcome);
        if (!query.package.empty()) q.bind(":package", query.package);
        q.bind(":limit", static_cast<std::int64_t>(query.limit));
        q.bind(":offset", static_cast<std::int64_t>(query.offset));
        return all_records(q);
    });
}

FeedPage ResultsIndex::feed(std::int64_t since, std::size_t limit) const {
    return impl_->read([&](SQLite::Database& db) {
        SQLite::Statement q(
            db, fmt::format("SELECT {} FROM run WHERE seq > ? AND private = 0 ORDER BY seq LIMIT ?",
                            run_columns));
        q.bind(1, since);
        q.bind(2, static_cast<std::int64_t>(limit + 1));
        FeedPage page;
        page.runs = all_records(q);
        page.more = page.runs.size() > limit;
        if (page.more) page.runs.resize(limit);
        page.next = page.runs.empty() ? since : page.runs.back().seq;
        return page;
    });
}

namespace {

void count_outcome(const std::string& outcome, std::size_t n, std::size_t& pass, std::size_t& fail,
                   std::size_t& neutral, std::size_t& tmpfail, std::size_t& error) {
    if (outcome == "pass")
        pass += n;
    else if (outcome == "fail")
        fail += n;
    else if (outcome == "neutral")
        neutral += n;
    else if (outcome == "tmpfail")
        tmpfail += n;
    else
        error += n;
}

}  // namespace

std::vector<ReleaseArchStats> ResultsIndex::statistics() const {
    return impl_->read([&](SQLite::Database& db) {
        std::map<std::pair<std::string, std::string>, ReleaseArchStats> by;
        auto slot = [&](const std::string& release, const std::string& arch) -> ReleaseArchStats& {
            auto& s = by[{release, arch}];
            s.release = release;
            s.arch = arch;
            return s;
        };
        SQLite::Statement latest(
            db, "SELECT release, arch, count(*), sum(outcome = 'pass') FROM latest GROUP BY release, arch");
        while (latest.executeStep()) {
            auto& s = slot(latest.getColumn(0).getString(), latest.getColumn(1).getString());
            s.packages = static_cast<std::size_t>(latest.getColumn(2).getInt64());
            s.passing = static_cast<std::size_t>(latest.getColumn(3).getInt64());
        }
        SQLite::Statement days(db,
                               "SELECT release, arch, day, outcome, runs FROM day_stats ORDER BY 1, 2, 3");
        while (days.executeStep()) {
            auto& s = slot(days.getColumn(0).getString(), days.getColumn(1).getString());
            const std::string d = days.getColumn(2).getString();
            const std::string day =
                d.size() == 8 ? d.substr(0, 4) + "-" + d.substr(4, 2) + "-" + d.substr(6, 2) : d;
            if (s.days.empty() || s.days.back().day != day) s.days.push_back({day});
            auto& dd = s.days.back();
            const auto n = static_cast<std::size_t>(days.getColumn(4).getInt64());
            const std::string outcome = days.getColumn(3).getString();
            count_outcome(outcome, n, dd.pass, dd.fail, dd.neutral, dd.tmpfail, dd.error);
            count_outcome(outcome, n, s.runs_passed, s.runs_failed, s.runs_neutral, s.runs_tmpfail,
                          s.runs_error);
            s.runs += n;
        }
        std::vector<ReleaseArchStats> out;
        for (auto& [k, v] : by) out.push_back(std::move(v));
        return out;
    });
}

std::vector<std::string> ResultsIndex::packages() const {
    return impl_->read([&](SQLite::Database& db) {
        std::vector<std::string> out;
        SQLite::Statement q(db, "SELECT DISTINCT package FROM latest ORDER BY package");
        while (q.executeStep()) out.push_back(q.getColumn(0).getString());
        return out;
    });
}

std::uint64_t ResultsIndex::size() const {
    return impl_->read([&](SQLite::Database& db) {
        // Kept by add(): count(*) read all of a large index (70 ms at 1M runs), and the
        // newest feed position counts the inserts ignored as duplicates too.
        return static_cast<std::uint64_t>(
            db.execAndGet("SELECT coalesce(max(value), 0) FROM index_state WHERE key = 'runs'").getInt64());
    });
}

std::string ResultsIndex::snapshot(const std::string& path) const {
    const std::string temp = path + ".new";
    ::unlink(temp.c_str());
    try {
        SQLite::Database source(impl_->compat_path, SQLite::OPEN_READONLY, 10000);
        {
            SQLite::Database dest(temp, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
            // One step copies everything inside one read transaction of the
            // source: a consistent snapshot, and the writer is never blocked (WAL).
            SQLite::Backup backup(dest, "main", source, "main");
            backup.executeStep(-1);
            // Readers of the published copy may have no write access: no WAL.
            dest.exec("PRAGMA journal_mode=DELETE");
        }
        ::chmod(temp.c_str(), 0644);
        fsync_file(temp);
    } catch (const SQLite::Exception& e) {
        ::unlink(temp.c_str());
        fail(fmt::format("cannot snapshot {} to {}", quote_for_message(impl_->compat_path),
                         quote_for_message(temp)),
             e);
    }
    auto digest = detail::file_hex_digest("sha256", temp);
    if (std::rename(temp.c_str(), path.c_str()) != 0)
        throw SystemError(errno, "rename the snapshot to", path);
    return digest.value_or("");
}

}  // namespace apcloud
