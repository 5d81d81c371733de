/// @file results_index.hpp
/// The results index (SPEC.md section 6): every stored run of every container
/// in SQLite, kept in the reference's schema for gating clients (published as
/// autopkgtest.db) and in our own table for the web pages and the JSON API.
/// One writer, any number of readers, never blocked by it (WAL).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "autopkgtest_cloud/indexed_run.hpp"

#include <atomic>

namespace apcloud {

/// Who is looking: private results are shown only to their owner, their
/// readers and admins.
struct Viewer {
    std::string user;  ///< empty: anonymous
    bool admin = false;
    /// True when this viewer may see `run`.
    bool may_read(const IndexedRun& run) const;
};

/// An indexed run with the index's own bookkeeping.
struct IndexedRecord {
    std::int64_t seq = 0;  ///< position in the feed (grows with every new run)
    IndexedRun run;
};

/// One page of a package's history, newest first.
struct HistoryPage {
    std::vector<IndexedRecord> runs;
    /// Pass as `before` for the next (older) page; absent on the last page.
    std::optional<std::string> next_before;
};

/// Filters of the recent results (the reference's recent.json parameters).
struct RecentQuery {
    std::size_t limit = 100;
    std::size_t offset = 0;
    std::string release, arch, user;  ///< empty: any
    std::string outcome;  ///< "pass", "fail", "neutral", "tmpfail", "error", "denylisted"; empty: any
    std::string package;  ///< empty: any
};

/// One page of the feed of new results.
struct FeedPage {
    std::vector<IndexedRecord> runs;  ///< in feed order
    std::int64_t next = 0;            ///< the cursor to continue from
    bool more = false;                ///< more runs follow at once
};

/// Counts of one release and architecture.
struct ReleaseArchStats {
    std::string release, arch;
    std::size_t packages = 0;  ///< packages with results
    std::size_t passing = 0;   ///< packages whose newest result passed
    std::size_t runs = 0;      ///< runs in all
    std::size_t runs_passed = 0, runs_failed = 0, runs_neutral = 0, runs_tmpfail = 0, runs_error = 0;
    /// Runs per day (`YYYY-MM-DD`) and outcome, oldest first.
    struct Day {
        std::string day;
        std::size_t pass = 0, fail = 0, neutral = 0, tmpfail = 0, error = 0;
    };
    std::vector<Day> days;
};

/// The index in a directory: `index.db` (every run) and `autopkgtest.db`'s
/// tables in `compat.db` (public runs of the release containers, the
/// reference's schema). Safe to use from several threads: writes are
/// serialised, reads run on their own connections.
class ResultsIndex {
public:
    /// Opens (creating when needed) the index in `dir`, and completes what a
    /// crash between its two files left half done. Throws StoreError naming
    /// the file on failure.
    explicit ResultsIndex(const std::string& dir);
    ~ResultsIndex();
    ResultsIndex(const ResultsIndex&) = delete;
    ResultsIndex& operator=(const ResultsIndex&) = delete;

    /// Adds runs in one transaction; a run already indexed (same container,
    /// release, arch, package and run id) is left as it is. Returns how many
    /// were new.
    std::size_t add(const std::vector<IndexedRun>& runs);
    /// Starts loading many runs into an empty index (a new index's backfill,
    /// `apcloud index rebuild`): until end_bulk_load(), the secondary indexes
    /// and the statistics' aggregates are not kept up to date run by run but
    /// made again in one pass each at the end, several times faster
    /// (bench-index-ingest). Reads stay correct meanwhile, only slower; the
    /// statistics count the runs added so far only at the end. Returns false,
    /// changing nothing, when the index holds runs already. A process killed
    /// before end_bulk_load() leaves a consistent index whose next open
    /// completes the load.
    bool begin_bulk_load();
    /// Ends a bulk load: makes the indexes and aggregates again (nothing when none is in progress).
    void end_bulk_load();
    /// True when the run is indexed.
    bool contains(const std::string& container, const RunLocation& where) const;
    /// The run directories indexed in `container`, sorted.
    std::vector<std::string> run_dirs(const std::string& container) const;

    /// The newest run of `package` per release and architecture, in its release containers.
    std::vector<IndexedRecord> latest(const std::string& package, const Viewer& viewer) const;
    /// A page of a package's runs in one container (default: the release's), newest first,
    /// only runs older than `before` (a run id) when given.
    HistoryPage history(const std::string& package, const std::string& release, const std::string& arch,
                        const std::string& container, const std::optional<std::string>& before,
                        std::size_t limit, const Viewer& viewer) const;
    /// One run (container empty: the release's own).
    std::optional<IndexedRecord> run(const std::string& container, const RunLocation& where,
                                     const Viewer& viewer) const;
    /// The run of a request, by its uuid (newest when several).
    std::optional<IndexedRecord> run_by_uuid(const std::string& uuid, const Viewer& viewer) const;
    /// A run by its run id alone (what britney's retry URLs name); the first
    /// indexed when, rarely, two containers hold the same id.
    std::optional<IndexedRecord> run_by_id(const std::string& run_id, const Viewer& viewer) const;

    /// Recent runs, newest first.
    std::vector<IndexedRecord> recent(const RecentQuery& query, const Viewer& viewer) const;
    /// Public runs indexed after cursor `since` (0: from the start), at most `limit`.
    FeedPage feed(std::int64_t since, std::size_t limit) const;
    /// Per release and architecture counts over the release containers.
    std::vector<ReleaseArchStats> statistics() const;
    /// Packages with results in the release containers, sorted.
    std::vector<std::string> packages() const;
    /// Runs indexed in all (runs are never removed from an index; a rebuild makes a new one).
    std::uint64_t size() const;

    /// Writes a consistent snapshot of the reference-schema database to
    /// `path` (through a temporary file renamed into place); returns its
    /// SHA-256 (lowercase hex).
    std::string snapshot(const std::string& path) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

class Store;

/// The index row of a stored run, from its result.tar; nullopt while there is
/// none (the worker uploads it last). Throws ParseError for a corrupt
/// result.tar or one naming another package, StoreError when the store fails.
std::optional<IndexedRun> read_indexed_run(Store& store, const ContainerInfo& container,
                                           const RunLocation& where);

/// Adds to `index` every run of every container of `store` it misses: each
/// container is listed to the end with delimiter '@' (one entry per run), the
/// missing runs' result.tar fetched concurrently. Runs without result.tar yet
/// are left for next time; corrupt ones are logged and skipped. Stops early
/// when `stop` becomes true. Returns how many runs were added.
std::size_t backfill_index(Store& store, ResultsIndex& index, const std::atomic<bool>* stop = nullptr);

}  // namespace apcloud
