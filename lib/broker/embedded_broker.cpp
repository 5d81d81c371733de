// The embedded broker: Broker semantics over one SQLite file shared by processes.
//
// Design. All state lives in one SQLite database in WAL mode, so any number of
// processes (workers, the web app, request tools) share it without a server:
// - queues(name): a row per declared queue; publishing to a missing row is
//   NotFound, so nothing is ever dropped silently.
// - messages: one row per message, in publish order (AUTOINCREMENT ids are
//   never reused, so an id is also a delivery tag that can never match a
//   later message). A message is ready when lease_until <= now; consume takes
//   the oldest ready one of the given queues and, in one IMMEDIATE (write-
//   locked) transaction, stamps it with this consumer's owner id, a lease
//   expiry and attempt+1. ack/requeue/dead_letter only touch the row if it
//   still carries our owner id and attempt: if our lease ran out and another
//   consumer got the message, we get a BrokerError instead of acking twice.
// - Leases and liveness: a process that dies cannot release its lease, so a
//   lease must expire; but a test may run for hours, longer than any fixed
//   lease. Each Broker therefore has a background thread (started on the
//   first delivery or subscription) that renews the held lease and the
//   subscriptions' heartbeats every lease/3. Only a dead (or stopped) process
//   stops renewing, and its message is delivered again lease seconds later.
//   Destroying a Broker that holds a delivery releases it at once, as closing
//   an AMQP channel requeues its unacked messages.
// - Fanout: events are stored once, with per-subscriber cursors rather than a
//   copy per subscriber: a publish is one insert however many subscribers
//   there are, and a subscriber that never reads costs nothing to the others.
//   subscribe records the newest event id as its cursor in the same
//   transaction that registers it, so it sees exactly the events published
//   after it. Events at or below every live subscriber's persisted cursor are
//   deleted on publish; subscribers whose expiry (renewed like a lease, by
//   their own process with its own lease option) has passed are deleted then
//   too: their process died, and they must not pin events.
// - Bound queues (bind_queue): a subscriber that must see every event, even
//   those published while its process is down, needs a queue, not a cursor
//   kept alive by a heartbeat. bindings(exchange, queue) names them, and
//   publish_event inserts a message per bound queue in the same IMMEDIATE
//   transaction as the event: a reader sees both or neither, a binding made
//   after the event (itself a transaction) cannot get it, and a binding made
//   before cannot miss it. From there they are ordinary messages (ids in
//   publish order, leases, acks, requeues, dead letters) in a durable queue,
//   so they survive restarts and a crashed consumer's event comes back.
//   Such a publish_event takes responsibility for messages, so it is synced
//   as publish is. Schema version 2 added the table; a version 1 file is
//   upgraded in place when opened. Every process sharing the file must run
//   a library that knows bindings: an older one refuses a version 2 file
//   when it opens it (one that opened it before the upgrade would publish
//   events without copies: restart it).
// - Peeking (peek_messages) is one read-only SELECT of the ready messages in
//   id order: no lease, no attempt count, no write lock.
// - Waiting: consume and Subscription::next poll `PRAGMA data_version`, which
//   changes when another connection commits and costs no table read, with a
//   1..25 ms backoff, and re-check at least once a second and when the
//   earliest foreign lease expires.
// - Durability. In WAL mode SQLite's synchronous=NORMAL is already safe
//   against process crashes (a commit is in the WAL, in the kernel, before the
//   call returns); only a power cut or kernel crash can lose the last commits.
//   FULL syncs the WAL at every commit, about 4 ms here, which would cap a
//   worker pool at ~100 round trips/s. The default (`synchronous=publish`)
//   syncs only the commits that take responsibility for a message: publish,
//   dead_letter, publish_dead_letter, declare_queue, bind_queue and events copied into bound
//   queues (a publisher confirm means "on disk", as with RabbitMQ's
//   persistent messages); leases, acks, requeues and other events commit
//   with NORMAL. Losing those in a power cut only delivers a message
//   again (at-least-once, as when a worker dies), never loses one. A synced
//   commit also makes every earlier WAL frame durable. `full` syncs every
//   commit; `normal` none (thousands of round trips/s, process-crash safe).
// Times compared across processes (leases, heartbeats) are wall-clock
// milliseconds; deadlines within a call use the steady clock.
#include "broker/embedded_broker.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "autopkgtest_cloud/error.hpp"
#include "core/logging.hpp"

namespace apcloud {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

const detail::Logger logger("embedded-broker");

constexpr int schema_version = 2;

// Schema version 1: queues, messages, transient subscriptions and their events.
constexpr const char* schema_v1 = R"sql(
    CREATE TABLE queues (name TEXT PRIMARY KEY) WITHOUT ROWID;
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        body BLOB NOT NULL,
        lease_until INTEGER NOT NULL DEFAULT 0,
        owner TEXT,
        attempt INTEGER NOT NULL DEFAULT 0,
        reason TEXT NOT NULL DEFAULT '');
    CREATE INDEX messages_by_queue ON messages (queue, id);
    CREATE TABLE subscribers (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        exchange TEXT NOT NULL,
        cursor INTEGER NOT NULL,
        expires INTEGER NOT NULL);
    CREATE INDEX subscribers_by_exchange ON subscribers (exchange);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        exchange TEXT NOT NULL,
        body BLOB NOT NULL);
    CREATE INDEX events_by_exchange ON events (exchange, id);
)sql";

// Version 2 adds the durable queues bound to fanout exchanges.
constexpr const char* schema_v2 = R"sql(
    CREATE TABLE bindings (
        exchange TEXT NOT NULL,
        queue TEXT NOT NULL,
        PRIMARY KEY (exchange, queue)) WITHOUT ROWID;
)sql";
constexpr std::size_t max_name_bytes = 255;  // AMQP's limit for queue names
constexpr std::int64_t max_lease_ms = 7LL * 24 * 3600 * 1000;
constexpr milliseconds max_poll_pause{25};
constexpr milliseconds recheck_interval{1000};
constexpr int event_batch = 256;

std::int64_t wall_ms() {
    return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

struct Options {
    std::string path;
    std::string url;  // redacted, for messages
    std::int64_t lease_ms = 300'000;
    enum class Sync { full, publish, normal } sync = Sync::publish;
    int busy_timeout_ms = 30'000;
};

Options parse_options(const Url& url) {
    Options o;
    o.path = url.path;
    o.url = url.redacted();
    auto bad = [&](const std::string& key, const std::string& value, const char* why) {
        return ConfigError(
            fmt::format("invalid broker option {}={} in {}: {}", key, quote_for_message(value), o.url, why));
    };
    for (const auto& [key, value] : url.query) {
        if (key == "lease") {
            errno = 0;
            char* end = nullptr;
            double seconds = std::strtod(value.c_str(), &end);
            if (value.empty() || *end != '\0' || errno != 0 || !std::isfinite(seconds))
                throw bad(key, value, "expected a number of seconds");
            if (seconds < 0.1 || seconds * 1000 > static_cast<double>(max_lease_ms))
                throw bad(key, value, "expected between 0.1 and 604800 seconds");
            o.lease_ms = std::llround(seconds * 1000);
        } else if (key == "synchronous") {
            if (value == "full")
                o.sync = Options::Sync::full;
            else if (value == "publish")
                o.sync = Options::Sync::publish;
            else if (value == "normal")
                o.sync = Options::Sync::normal;
            else
                throw bad(key, value, "expected full, publish or normal");
        } else if (key == "busy_timeout") {
            errno = 0;
            char* end = nullptr;
            long long ms = std::strtoll(value.c_str(), &end, 10);
            if (value.empty() || *end != '\0' || errno != 0 || ms < 0 || ms > INT_MAX)
                throw bad(key, value, "expected a number of milliseconds");
            o.busy_timeout_ms = static_cast<int>(ms);
        } else {
            throw ConfigError(
                fmt::format("unknown broker option {} in {} (known: lease, synchronous, busy_timeout)",
                            quote_for_message(key), o.url));
        }
    }
    return o;
}

void check_name(const char* field, const std::string& name) {
    if (name.empty()) throw ValidationError(field, name, "must not be empty");
    if (name.size() > max_name_bytes) throw ValidationError(field, name, "longer than 255 bytes");
}

std::string column_bytes(const SQLite::Column& c) {
    int n = c.getBytes();
    if (n <= 0) return {};
    return std::string(static_cast<const char*>(c.getBlob()), static_cast<std::size_t>(n));
}

void bind_bytes(SQLite::Statement& s, int index, const std::string& bytes) {
    if (bytes.size() > static_cast<std::size_t>(INT_MAX))
        throw ValidationError("body", bytes.substr(0, 64), "larger than 2 GiB");
    s.bind(index, bytes.data(), static_cast<int>(bytes.size()));
}

/// A prepared statement in use: reset when the scope ends, so that no
/// half-stepped SELECT keeps a read transaction (and a WAL snapshot) open.
class Query {
public:
    explicit Query(SQLite::Statement& s) : s_(s) {}
    Query(const Query&) = delete;
    Query& operator=(const Query&) = delete;
    ~Query() { s_.tryReset(); }
    SQLite::Statement* operator->() { return &s_; }
    SQLite::Statement& operator*() { return s_; }

private:
    SQLite::Statement& s_;
};

/// `path`, after creating the broker file when it does not exist, readable
/// by its owner only (it holds every request, private ones too); SQLite
/// gives its -wal and -shm files the same mode. An operator may widen it.
const std::string& created_private(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) ::close(fd);  // else it exists (or cannot be made: SQLite will say why)
    return path;
}

/// One SQLite connection to the broker file, configured for multi-process
/// use, with its prepared statements cached (preparing costs more than
/// running most of ours).
class Connection {
public:
    explicit Connection(const Options& o)
        : sync_(o.sync),
          db_(created_private(o.path), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE, o.busy_timeout_ms) {
        set_wal(o);
        db_.exec("PRAGMA synchronous=FULL");
        ensure_schema(o);
        synced(false);
    }

    SQLite::Database& db() { return db_; }

    /// Chooses whether the next commits are synced to disk: `responsible`
    /// for commits that take responsibility for a message (see the notes).
    void synced(bool responsible) {
        bool full = sync_ == Options::Sync::full || (sync_ == Options::Sync::publish && responsible);
        if (full == full_) return;
        db_.exec(full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
        full_ = full;
    }

    /// The cached statement for `sql` (a string literal: cached by address).
    Query query(const char* sql) {
        auto& slot = stmts_[sql];
        if (!slot)
            slot = std::make_unique<SQLite::Statement>(db_, sql);
        else
            slot->clearBindings();
        return Query(*slot);
    }

    /// Changes whenever another connection commits.
    std::int64_t data_version() {
        Query q = query("PRAGMA data_version");
        q->executeStep();
        return q->getColumn(0).getInt64();
    }

private:
    void set_wal(const Options& o) {
        // Switching to WAL needs a moment alone with the file; a process
        // opening it at the same time makes it fail with SQLITE_BUSY before
        // the busy handler applies, so retry for the busy timeout.
        auto give_up = SteadyClock::now() + milliseconds(o.busy_timeout_ms);
        for (milliseconds pause{1};; pause = std::min(pause * 2, max_poll_pause)) {
            try {
                SQLite::Statement s(db_, "PRAGMA journal_mode=WAL");
                s.executeStep();
                std::string mode = s.getColumn(0).getString();
                if (mode != "wal")
                    throw BrokerError(
                        fmt::format("cannot use WAL mode on broker database {} (journal mode stays {})",
                                    o.path, quote_for_message(mode)));
                return;
            } catch (const SQLite::Exception& e) {
                if ((e.getErrorCode() != SQLITE_BUSY && e.getErrorCode() != SQLITE_LOCKED) ||
                    SteadyClock::now() >= give_up)
                    throw;
            }
            std::this_thread::sleep_for(pause);
        }
    }

    void ensure_schema(const Options& o) {
        if (user_version() == schema_version) return;
        SQLite::Transaction txn(db_, SQLite::TransactionBehavior::IMMEDIATE);
        int v = user_version();
        if (v == schema_version) return;
        if (v != 0 && v != 1)
            throw BrokerError(
                fmt::format("broker database {} has schema version {}, this library knows versions 1 to {}",
                            o.path, v, schema_version));
        if (v == 0) db_.exec(schema_v1);
        db_.exec(schema_v2);
        db_.exec(fmt::format("PRAGMA user_version={}", schema_version));
        txn.commit();
        if (v == 1)
            logger.info("{}: upgraded the broker database from schema version 1 to {} (bound queues)", o.path,
                        schema_version);
    }

    int user_version() {
        SQLite::Statement s(db_, "PRAGMA user_version");
        s.executeStep();
        return s.getColumn(0).getInt();
    }

    Options::Sync sync_;
    bool full_ = true;
    SQLite::Database db_;
    std::unordered_map<const char*, std::unique_ptr<SQLite::Statement>> stmts_;
};

/// Runs `f`, turning SQLite's exceptions into BrokerError naming the
/// operation, its subject and the database.
template <class F>
auto guarded(const Options& o, const std::string& what, const std::string& subject, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const SQLite::Exception& e) {
        throw BrokerError(fmt::format("embedded broker {}: {} {} failed: {}", o.path, what,
                                      quote_for_message(subject), e.what()));
    }
}

/// Sleeps until another connection commits (data_version moves from
/// `version`) or `until` passes.
void wait_for_change(Connection& c, std::int64_t version, SteadyClock::time_point until) {
    for (milliseconds pause{1};; pause = std::min(pause * 2, max_poll_pause)) {
        auto now = SteadyClock::now();
        if (now >= until) return;
        std::this_thread::sleep_for(std::min<SteadyClock::duration>(pause, until - now));
        if (c.data_version() != version) return;
    }
}

/// Renews, from a background thread, the lease of the delivery a Broker holds
/// and the heartbeats of its subscriptions (see the design notes above).
/// Shared by a Broker and its Subscriptions, which may outlive it.
class Heartbeat {
public:
    explicit Heartbeat(Options o) : opts_(std::move(o)) {}
    Heartbeat(const Heartbeat&) = delete;
    Heartbeat& operator=(const Heartbeat&) = delete;

    ~Heartbeat() {
        {
            std::lock_guard<std::mutex> lock(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable()) thread_.join();
    }

    void hold(std::int64_t id, std::int64_t attempt, const std::string& owner) {
        std::lock_guard<std::mutex> lock(mu_);
        held_ = Held{id, attempt, owner};
        start_locked();
    }

    void release() {
        std::lock_guard<std::mutex> lock(mu_);
        held_.reset();
    }

    void add_subscriber(std::int64_t id) {
        std::lock_guard<std::mutex> lock(mu_);
        subscribers_.insert(id);
        start_locked();
    }

    void remove_subscriber(std::int64_t id) {
        std::lock_guard<std::mutex> lock(mu_);
        subscribers_.erase(id);
        lost_.erase(id);
    }

    /// True once a renewal found the subscriber deleted (it was presumed dead).
    bool subscriber_lost(std::int64_t id) {
        std::lock_guard<std::mutex> lock(mu_);
        return lost_.count(id) != 0;
    }

private:
    struct Held {
        std::int64_t id;
        std::int64_t attempt;
        std::string owner;
    };

    void start_locked() {
        if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    }

    void run() {
        std::unique_ptr<Connection> conn;
        const milliseconds interval{std::max<std::int64_t>(opts_.lease_ms / 3, 10)};
        std::unique_lock<std::mutex> lock(mu_);
        while (!cv_.wait_for(lock, interval, [this] { return stop_; })) {
            std::optional<Held> held = held_;
            std::set<std::int64_t> subscribers = subscribers_;
            lock.unlock();
            std::set<std::int64_t> lost;
            try {
                if (!conn) conn = std::make_unique<Connection>(opts_);
                renew(*conn, held, subscribers, lost);
            } catch (const std::exception&) {
                // The database is busy or unreachable: the next tick retries
                // with a fresh connection, well before the lease runs out.
                conn.reset();
            }
            lock.lock();
            // A subscription that ended meanwhile deleted its row itself.
            for (std::int64_t id : lost)
                if (subscribers_.count(id) && lost_.insert(id).second)
                    logger.warn(
                        "{}: subscription {} expired (its heartbeat stopped for longer than the lease)",
                        opts_.path, id);
        }
    }

    void renew(Connection& c, const std::optional<Held>& held, const std::set<std::int64_t>& subscribers,
               std::set<std::int64_t>& lost) {
        std::int64_t now = wall_ms();
        if (held) {
            // No row changed means the lease was already lost; ack will say so.
            Query q = c.query("UPDATE messages SET lease_until=?1 WHERE id=?2 AND owner=?3 AND attempt=?4");
            q->bind(1, now + opts_.lease_ms);
            q->bind(2, held->id);
            q->bind(3, held->owner);
            q->bind(4, held->attempt);
            q->exec();
        }
        for (std::int64_t id : subscribers) {
            Query q = c.query("UPDATE subscribers SET expires=?1 WHERE id=?2");
            q->bind(1, now + opts_.lease_ms);
            q->bind(2, id);
            if (q->exec() == 0) lost.insert(id);
        }
    }

    const Options opts_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::optional<Held> held_;
    std::set<std::int64_t> subscribers_;
    std::set<std::int64_t> lost_;
    std::thread thread_;
};

class EmbeddedSubscription final : public Subscription {
public:
    EmbeddedSubscription(const Options& o, std::shared_ptr<Heartbeat> heartbeat, std::string exchange,
                         std::int64_t id, std::int64_t cursor)
        : opts_(o),
          heartbeat_(std::move(heartbeat)),
          exchange_(std::move(exchange)),
          id_(id),
          cursor_(cursor),
          fetched_(cursor),
          persisted_(cursor) {
        try {
            conn_ = std::make_unique<Connection>(opts_);
        } catch (...) {
            drop();
            throw;
        }
    }

    ~EmbeddedSubscription() override { drop(); }

    std::optional<std::string> next(milliseconds timeout) override {
        return guarded(opts_, "reading events of exchange", exchange_, [&]() -> std::optional<std::string> {
            if (heartbeat_->subscriber_lost(id_))
                throw BrokerError(
                    fmt::format("subscription to exchange {} in {} expired (its heartbeat stopped for longer "
                                "than the lease); "
                                "events may have been missed",
                                quote_for_message(exchange_), opts_.path));
            auto deadline = SteadyClock::now() + timeout;
            while (buffer_.empty()) {
                std::int64_t version = conn_->data_version();
                fetch();
                if (!buffer_.empty()) break;
                auto now = SteadyClock::now();
                if (now >= deadline) return std::nullopt;
                wait_for_change(*conn_, version, std::min(deadline, now + recheck_interval));
            }
            auto [id, body] = std::move(buffer_.front());
            buffer_.pop_front();
            cursor_ = id;
            return std::move(body);
        });
    }

private:
    void fetch() {
        if (cursor_ > persisted_) {
            // Lets publishers delete what this subscriber has read.
            Query q = conn_->query("UPDATE subscribers SET cursor=?1, expires=?2 WHERE id=?3");
            q->bind(1, cursor_);
            q->bind(2, wall_ms() + opts_.lease_ms);
            q->bind(3, id_);
            q->exec();
            persisted_ = cursor_;
        }
        Query q =
            conn_->query("SELECT id, body FROM events WHERE exchange=?1 AND id>?2 ORDER BY id LIMIT ?3");
        q->bind(1, exchange_);
        q->bind(2, fetched_);
        q->bind(3, event_batch);
        while (q->executeStep()) {
            fetched_ = q->getColumn(0).getInt64();
            buffer_.emplace_back(fetched_, column_bytes(q->getColumn(1)));
        }
    }

    void drop() noexcept {
        heartbeat_->remove_subscriber(id_);
        try {
            if (!conn_) conn_ = std::make_unique<Connection>(opts_);
            Query q = conn_->query("DELETE FROM subscribers WHERE id=?1");
            q->bind(1, id_);
            q->exec();
        } catch (const std::exception&) {
            // Left behind, the row is deleted as dead after the lease.
        }
    }

    Options opts_;
    std::shared_ptr<Heartbeat> heartbeat_;
    std::unique_ptr<Connection> conn_;
    std::string exchange_;
    std::int64_t id_;
    std::int64_t cursor_;     // the last event returned
    std::int64_t fetched_;    // the last event read into buffer_
    std::int64_t persisted_;  // the cursor as stored in the database
    std::deque<std::pair<std::int64_t, std::string>> buffer_;
};

std::unique_ptr<Connection> open_connection(const Options& o) {
    try {
        return std::make_unique<Connection>(o);
    } catch (const SQLite::Exception& e) {
        throw BrokerError(fmt::format("embedded broker: cannot open database {}: {}", o.path, e.what()));
    }
}

std::string make_owner_id() {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    std::random_device rd;
    std::uint64_t r = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    return fmt::format("{}:{}:{:016x}", host, getpid(), r);
}

class EmbeddedBroker final : public Broker {
public:
    explicit EmbeddedBroker(Options o)
        : opts_(std::move(o)),
          owner_(make_owner_id()),
          conn_(open_connection(opts_)),
          heartbeat_(std::make_shared<Heartbeat>(opts_)) {}

    ~EmbeddedBroker() override {
        if (!held_) return;
        // Closing without ack hands the message back at once (as an AMQP
        // channel close does) instead of leaving it until the lease expires.
        heartbeat_->release();
        try {
            Query q = conn_->query(
                "UPDATE messages SET owner=NULL, lease_until=0 WHERE id=?1 AND owner=?2 AND attempt=?3");
            bind_held(q);
            q->exec();
        } catch (const std::exception&) {
            // The lease expires on its own.
        }
    }

    void declare_queue(const std::string& queue) override {
        check_name("queue", queue);
        guarded(opts_, "declaring queue", queue, [&] {
            conn_->synced(true);
            add_queue(queue);
        });
    }

    void publish(const std::string& queue, const std::string& body) override {
        check_name("queue", queue);
        int added = guarded(opts_, "publishing to queue", queue, [&] {
            conn_->synced(true);
            // One statement, so the existence check and the insert are atomic.
            Query q = conn_->query(
                "INSERT INTO messages (queue, body) SELECT ?1, ?2 WHERE EXISTS "
                "(SELECT 1 FROM queues WHERE name=?1)");
            q->bind(1, queue);
            bind_bytes(*q, 2, body);
            return q->exec();
        });
        if (added == 0) throw not_found(queue);
    }

    std::optional<Delivery> consume(const std::vector<std::string>& queues, milliseconds timeout) override {
        if (queues.empty()) throw ValidationError("queues", "", "consume needs at least one queue");
        for (const auto& queue : queues) check_name("queue", queue);
        if (held_)
            throw BrokerError(
                fmt::format("cannot consume from {}: this consumer still holds message {} of queue {} "
                            "(prefetch 1: ack, requeue "
                            "or dead_letter it first)",
                            quote_for_message(queues.front()), held_->id, quote_for_message(held_->queue)));
        return guarded(opts_, "consuming from queue", queues.front(), [&]() -> std::optional<Delivery> {
            for (const auto& queue : queues)
                if (!queue_exists(queue)) throw not_found(queue);
            conn_->synced(false);
            auto deadline = SteadyClock::now() + timeout;
            for (;;) {
                std::int64_t version = conn_->data_version();
                if (auto d = try_take(queues)) return d;
                auto now = SteadyClock::now();
                if (now >= deadline) return std::nullopt;
                auto until = std::min(deadline, now + recheck_interval);
                if (auto expiry = next_expiry(queues)) {
                    auto left = milliseconds(std::max<std::int64_t>(*expiry - wall_ms(), 0) + 1);
                    until = std::min(until, now + left);
                }
                wait_for_change(*conn_, version, until);
            }
        });
    }

    void ack(const Delivery& delivery) override {
        check_held(delivery, "ack");
        int changed = guarded(opts_, "acking a message of queue", delivery.queue, [&] {
            conn_->synced(false);
            Query q = conn_->query("DELETE FROM messages WHERE id=?1 AND owner=?2 AND attempt=?3");
            bind_held(q);
            return q->exec();
        });
        finish(changed, "ack");
    }

    void requeue(const Delivery& delivery) override {
        check_held(delivery, "requeue");
        int changed = guarded(opts_, "requeueing a message of queue", delivery.queue, [&] {
            conn_->synced(false);
            Query q = conn_->query(
                "UPDATE messages SET owner=NULL, lease_until=0 WHERE id=?1 AND owner=?2 AND attempt=?3");
            bind_held(q);
            return q->exec();
        });
        finish(changed, "requeue");
    }

    void dead_letter(const Delivery& delivery, const std::string& reason) override {
        check_held(delivery, "dead-letter");
        const std::string dead = held_->queue + ".dead";
        int moved = guarded(opts_, "dead-lettering a message of queue", delivery.queue, [&] {
            conn_->synced(true);
            SQLite::Transaction txn(conn_->db(), SQLite::TransactionBehavior::IMMEDIATE);
            add_queue(dead);
            {
                Query q = conn_->query(
                    "INSERT INTO messages (queue, body, reason) SELECT ?4, body, ?5 FROM messages "
                    "WHERE id=?1 AND owner=?2 AND attempt=?3");
                bind_held(q);
                q->bind(4, dead);
                q->bind(5, reason);
                if (q->exec() == 0) return 0;
            }
            {
                Query q = conn_->query("DELETE FROM messages WHERE id=?1");
                q->bind(1, held_->id);
                q->exec();
            }
            txn.commit();
            return 1;
        });
        const std::string queue = held_->queue;
        finish(moved, "dead-letter");
        logger.info("{}: dead-lettered a message of queue {} to {}: {}", opts_.path, quote_for_message(queue),
                    quote_for_message(dead), quote_for_message(reason));
    }

    std::uint64_t queue_depth(const std::string& queue) override {
        check_name("queue", queue);
        return guarded(opts_, "counting queue", queue, [&] {
            if (!queue_exists(queue)) throw not_found(queue);
            Query q = conn_->query("SELECT count(*) FROM messages WHERE queue=?1 AND lease_until<=?2");
            q->bind(1, queue);
            q->bind(2, wall_ms());
            q->executeStep();
            return static_cast<std::uint64_t>(q->getColumn(0).getInt64());
        });
    }

    std::vector<PeekedMessage> peek_messages(const std::string& queue, std::size_t limit) override {
        check_name("queue", queue);
        try {
            return guarded(opts_, "peeking at queue", queue, [&] {
                if (!queue_exists(queue)) throw not_found(queue);
                std::vector<PeekedMessage> messages;
                if (limit == 0) return messages;
                // The ready messages as oldest_ready would take them, one after the other.
                Query q = conn_->query(
                    "SELECT body, reason, attempt FROM messages WHERE queue=?1 AND lease_until<=?2 ORDER BY "
                    "id "
                    "LIMIT ?3");
                q->bind(1, queue);
                q->bind(2, wall_ms());
                q->bind(3, static_cast<std::int64_t>(
                               std::min<std::size_t>(limit, static_cast<std::size_t>(INT64_MAX))));
                while (q->executeStep()) {
                    PeekedMessage m;
                    m.body = column_bytes(q->getColumn(0));
                    m.reason = q->getColumn(1).getString();
                    m.deliveries = static_cast<std::uint32_t>(
                        std::clamp<std::int64_t>(q->getColumn(2).getInt64(), 0, UINT32_MAX));
                    messages.push_back(std::move(m));
                }
                return messages;
            });
        } catch (const BrokerError& e) {
            logger.warn("{}", e.what());
            throw;
        }
    }

    void publish_dead_letter(const std::string& queue, const std::string& body,
                             const std::string& reason) override {
        check_name("queue", queue);
        const std::string dead = queue + ".dead";
        check_name("dead-letter queue", dead);
        guarded(opts_, "publishing a dead letter to queue", dead, [&] {
            conn_->synced(true);
            SQLite::Transaction txn(conn_->db(), SQLite::TransactionBehavior::IMMEDIATE);
            add_queue(dead);
            Query q = conn_->query("INSERT INTO messages (queue, body, reason) VALUES (?1, ?2, ?3)");
            q->bind(1, dead);
            bind_bytes(*q, 2, body);
            q->bind(3, reason);
            q->exec();
            txn.commit();
        });
    }

    void publish_event(const std::string& exchange, const std::string& body) override {
        check_name("exchange", exchange);
        guarded(opts_, "publishing to exchange", exchange, [&] {
            // Copies into bound queues are messages we take responsibility
            // for (see the notes); the setting cannot change inside the
            // transaction, hence the look before it.
            conn_->synced(has_bindings(exchange));
            std::int64_t now = wall_ms();
            SQLite::Transaction txn(conn_->db(), SQLite::TransactionBehavior::IMMEDIATE);
            drop_dead_subscribers(now);
            store_for_subscribers(exchange, body);
            Query q = conn_->query(
                "INSERT INTO messages (queue, body) SELECT queue, ?2 FROM bindings WHERE exchange=?1 "
                "ORDER BY queue");
            q->bind(1, exchange);
            bind_bytes(*q, 2, body);
            q->exec();
            txn.commit();
        });
    }

    void bind_queue(const std::string& queue, const std::string& exchange) override {
        check_name("queue", queue);
        check_name("exchange", exchange);
        const std::string what = fmt::format("binding to exchange {} the queue", quote_for_message(exchange));
        bool created = guarded(opts_, what, queue, [&] {
            conn_->synced(true);
            SQLite::Transaction txn(conn_->db(), SQLite::TransactionBehavior::IMMEDIATE);
            add_queue(queue);
            Query q = conn_->query("INSERT OR IGNORE INTO bindings (exchange, queue) VALUES (?1, ?2)");
            q->bind(1, exchange);
            q->bind(2, queue);
            bool added = q->exec() > 0;
            txn.commit();
            return added;
        });
        if (created)
            logger.info("{}: bound queue {} to exchange {}: it gets every event published there from now on",
                        opts_.path, quote_for_message(queue), quote_for_message(exchange));
        else
            logger.debug("{}: queue {} was already bound to exchange {}", opts_.path,
                         quote_for_message(queue), quote_for_message(exchange));
    }

    std::unique_ptr<Subscription> subscribe(const std::string& exchange) override {
        check_name("exchange", exchange);
        auto [id, cursor] = guarded(opts_, "subscribing to exchange", exchange, [&] {
            conn_->synced(false);
            std::int64_t now = wall_ms();
            SQLite::Transaction txn(conn_->db(), SQLite::TransactionBehavior::IMMEDIATE);
            drop_dead_subscribers(now);
            std::int64_t last = 0;
            {
                Query q = conn_->query("SELECT coalesce(max(id), 0) FROM events");
                q->executeStep();
                last = q->getColumn(0).getInt64();
            }
            {
                Query q =
                    conn_->query("INSERT INTO subscribers (exchange, cursor, expires) VALUES (?1, ?2, ?3)");
                q->bind(1, exchange);
                q->bind(2, last);
                q->bind(3, now + opts_.lease_ms);
                q->exec();
            }
            std::int64_t sub = conn_->db().getLastInsertRowid();
            txn.commit();
            return std::make_pair(sub, last);
        });
        heartbeat_->add_subscriber(id);
        return guarded(opts_, "subscribing to exchange", exchange, [&, id = id, cursor = cursor] {
            return std::make_unique<EmbeddedSubscription>(opts_, heartbeat_, exchange, id, cursor);
        });
    }

private:
    struct Held {
        std::int64_t id;
        std::int64_t attempt;
        std::string queue;
    };

    NotFound not_found(const std::string& queue) const {
        return NotFound(fmt::format("queue {} does not exist in embedded broker {} (declare it first)",
                                    quote_for_message(queue), opts_.path));
    }

    bool queue_exists(const std::string& queue) {
        Query q = conn_->query("SELECT 1 FROM queues WHERE name=?1");
        q->bind(1, queue);
        return q->executeStep();
    }

    void add_queue(const std::string& queue) {
        Query q = conn_->query("INSERT OR IGNORE INTO queues (name) VALUES (?1)");
        q->bind(1, queue);
        q->exec();
    }

    bool has_bindings(const std::string& exchange) {
        Query q = conn_->query("SELECT 1 FROM bindings WHERE exchange=?1 LIMIT 1");
        q->bind(1, exchange);
        return q->executeStep();
    }

    // The event for the transient subscribers (inside publish_event's
    // transaction): stored once if anyone listens, and what every subscriber
    // has read is deleted.
    void store_for_subscribers(const std::string& exchange, const std::string& body) {
        std::int64_t subscribers = 0;
        {
            Query q = conn_->query("SELECT count(*) FROM subscribers WHERE exchange=?1");
            q->bind(1, exchange);
            q->executeStep();
            subscribers = q->getColumn(0).getInt64();
        }
        {
            // Whatever every subscriber has read (all of it when there is
            // no subscriber left) is garbage.
            Query q = conn_->query(
                "DELETE FROM events WHERE exchange=?1 AND id <= coalesce("
                "(SELECT min(cursor) FROM subscribers WHERE exchange=?1), 9223372036854775807)");
            q->bind(1, exchange);
            q->exec();
        }
        if (subscribers > 0) {
            // As a fanout exchange does, drop events no subscriber listens
            // to (bound queues have their own copies).
            Query q = conn_->query("INSERT INTO events (exchange, body) VALUES (?1, ?2)");
            q->bind(1, exchange);
            bind_bytes(*q, 2, body);
            q->exec();
        }
    }

    void bind_held(Query& q) {
        q->bind(1, held_->id);
        q->bind(2, owner_);
        q->bind(3, held_->attempt);
    }

    void check_held(const Delivery& d, const char* op) const {
        if (!held_ || held_->id < 0 || static_cast<std::uint64_t>(held_->id) != d.tag)
            throw BrokerError(
                fmt::format("cannot {} delivery {} of queue {} in {}: this consumer does not hold it "
                            "(already acked, requeued or "
                            "dead-lettered, or consumed by another Broker)",
                            op, d.tag, quote_for_message(d.queue), opts_.path));
    }

    // Ends the ownership of the held delivery; `changed` == 0 means our lease
    // had expired and the message went to another consumer.
    void finish(int changed, const char* op) {
        Held held = std::move(*held_);
        held_.reset();
        heartbeat_->release();
        if (changed == 0) {
            std::string msg = fmt::format(
                "cannot {} message {} of queue {} in {}: its lease expired and it was delivered again; this "
                "consumer "
                "no longer owns it",
                op, held.id, quote_for_message(held.queue), opts_.path);
            logger.warn("{}", msg);
            throw BrokerError(msg);
        }
    }

    // A ready message; `expired`: it still has an owner, whose lease ran out
    // (acks delete a message, requeues and new messages have no owner).
    struct Ready {
        std::int64_t id;
        bool expired;
    };

    // The oldest ready message of `queues` (one indexed lookup per queue, as
    // a single ORDER BY over several queues would sort them whole).
    std::optional<Ready> oldest_ready(const std::vector<std::string>& queues, std::int64_t now) {
        std::optional<Ready> best;
        for (const auto& queue : queues) {
            Query q = conn_->query(
                "SELECT id, owner IS NOT NULL FROM messages WHERE queue=?1 AND lease_until<=?2 ORDER BY id "
                "LIMIT 1");
            q->bind(1, queue);
            q->bind(2, now);
            if (q->executeStep()) {
                std::int64_t id = q->getColumn(0).getInt64();
                if (!best || id < best->id) best = Ready{id, q->getColumn(1).getInt() != 0};
            }
        }
        return best;
    }

    std::optional<Delivery> try_take(const std::vector<std::string>& queues) {
        // A read-only look first: idle consumers woken by unrelated commits
        // must not queue up for the write lock.
        if (!oldest_ready(queues, wall_ms())) return std::nullopt;
        SQLite::Transaction txn(conn_->db(), SQLite::TransactionBehavior::IMMEDIATE);
        std::int64_t now = wall_ms();
        auto ready = oldest_ready(queues, now);
        if (!ready) return std::nullopt;
        Delivery d;
        {
            Query q = conn_->query(
                "UPDATE messages SET owner=?1, lease_until=?2, attempt=attempt+1 WHERE id=?3 "
                "RETURNING queue, body, attempt, reason");
            q->bind(1, owner_);
            q->bind(2, now + opts_.lease_ms);
            q->bind(3, ready->id);
            if (!q->executeStep()) return std::nullopt;
            d.queue = q->getColumn(0).getString();
            d.body = column_bytes(q->getColumn(1));
            std::int64_t attempt = q->getColumn(2).getInt64();
            d.attempt = static_cast<std::uint32_t>(std::min<std::int64_t>(attempt, UINT32_MAX));
            d.redelivered = attempt > 1;
            d.reason = q->getColumn(3).getString();
            d.tag = static_cast<std::uint64_t>(ready->id);
            while (q->executeStep()) {
            }
            held_ = Held{ready->id, attempt, d.queue};
        }
        try {
            txn.commit();
        } catch (...) {
            held_.reset();
            throw;
        }
        heartbeat_->hold(held_->id, held_->attempt, owner_);
        if (ready->expired)
            logger.warn(
                "{}: message {} of queue {} is delivered again (attempt {}): its consumer's lease expired",
                opts_.path, d.tag, quote_for_message(d.queue), d.attempt);
        return d;
    }

    // When the first lease held by someone else on `queues` runs out.
    std::optional<std::int64_t> next_expiry(const std::vector<std::string>& queues) {
        std::optional<std::int64_t> first;
        std::int64_t now = wall_ms();
        for (const auto& queue : queues) {
            Query q = conn_->query("SELECT min(lease_until) FROM messages WHERE queue=?1 AND lease_until>?2");
            q->bind(1, queue);
            q->bind(2, now);
            if (q->executeStep() && !q->getColumn(0).isNull()) {
                std::int64_t t = q->getColumn(0).getInt64();
                if (!first || t < *first) first = t;
            }
        }
        return first;
    }

    void drop_dead_subscribers(std::int64_t now) {
        Query q = conn_->query("DELETE FROM subscribers WHERE expires < ?1");
        q->bind(1, now);
        if (int n = q->exec())
            logger.info("{}: removing {} subscriber(s) whose heartbeat stopped for longer than the lease",
                        opts_.path, n);
    }

    Options opts_;
    std::string owner_;
    std::unique_ptr<Connection> conn_;
    std::shared_ptr<Heartbeat> heartbeat_;
    std::optional<Held> held_;
};

}  // namespace

std::unique_ptr<Broker> make_embedded_broker(const Url& url) {
    return std::make_unique<EmbeddedBroker>(parse_options(url));
}

}  // namespace apcloud
