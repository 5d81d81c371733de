// Python bindings of gating.hpp (what britney-style gating code uses).
#include <pybind11/stl.h>
#include <autopkgtest_cloud/feed.hpp>
#include <autopkgtest_cloud/gating.hpp>
#include <autopkgtest_cloud/store.hpp>

#include "bindings.hpp"

namespace py = pybind11;
using namespace pybind11::literals;

namespace apcloud::python {

namespace {

py::list entry_to_list(const CacheEntry& e) {
    return py::cast(
        std::vector<py::object>{py::str(e.status), py::str(e.version), py::str(e.run_id), py::int_(e.seen)});
}

// A GatingResult (nullopt when damaged), or a [STATUS, version, run_id, seen] sequence.
std::optional<CacheEntry> entry_from(const py::handle& result) {
    if (py::isinstance<GatingResult>(result)) return cache_entry(result.cast<const GatingResult&>());
    std::tuple<std::string, std::string, std::string, std::int64_t> v;
    try {
        v = result.cast<decltype(v)>();
    } catch (const py::cast_error&) {
        throw py::type_error("result must be a GatingResult or [STATUS, version, run_id, seen], got " +
                             std::string(py::str(py::repr(result))));
    }
    return CacheEntry{std::get<0>(v), std::get<1>(v), std::get<2>(v), std::get<3>(v)};
}

CollectedResults collect(Store& store, const std::string& container, const std::string& release,
                         const std::string& arch, const std::string& package,
                         const std::optional<std::string>& after, std::optional<std::int64_t> now) {
    py::gil_scoped_release release_gil;
    return collect_results(store, container, release, arch, package, after, now);
}

// britney's state: versions, results, the cache, record_results, decide, pending.
void register_state(py::module_& m) {
    m.def(
        "version_compare", [](const std::string& a, const std::string& b) { return version_compare(a, b); },
        "a"_a, "b"_a, "Compares Debian versions like dpkg --compare-versions: -1, 0 or 1.");

    py::class_<GatingResult>(m, "GatingResult", "One run's result as gating code sees it.")
        .def_readonly("run_id", &GatingResult::run_id, "The run id (directory name, ending with '@').")
        .def_readonly("exitcode", &GatingResult::exitcode, "autopkgtest's exit code.")
        .def_readonly("outcome", &GatingResult::outcome, "'pass', 'fail', 'neutral', 'tmpfail', ...")
        .def_readonly("version", &GatingResult::version, "Tested version, or None.")
        .def_readonly("triggers", &GatingResult::triggers,
                      "Triggers from ADT_TEST_TRIGGERS, or None when absent (ignore such runs).")
        .def_readonly("duration", &GatingResult::duration, "Seconds, or None.")
        .def("__repr__", [](const GatingResult& r) {
            return "<GatingResult " + r.run_id + " exitcode=" + std::to_string(r.exitcode) + ">";
        });

    py::class_<ResultsCache>(
        m, "ResultsCache",
        "britney's results cache: {trigger: {src: {arch: [STATUS, version, run_id, seen]}}}.")
        .def(py::init<>(), "An empty cache.")
        .def_static("load", &ResultsCache::load, "path"_a,
                    "Reads a cache file; a missing file gives an empty cache. ParseError when malformed.")
        .def("save", &ResultsCache::save, "path"_a, "Writes the cache atomically (path.new, fsync, rename).")
        .def(
            "add",
            [](ResultsCache& c, const std::string& trigger, const std::string& package,
               const std::string& arch, const py::object& result, bool reference) {
                auto entry = entry_from(result);
                return entry && c.add(trigger, package, arch, *entry, reference);
            },
            "trigger"_a, "package"_a, "arch"_a, "result"_a, "reference"_a = false,
            "Records a GatingResult (seen: the time in its run id; a damaged one, without a version and\n"
            "not exit 4/12/20, is not recorded) or a [STATUS, version, run_id, seen] sequence. A PASS is\n"
            "never replaced by a non-PASS (with reference=True, except for migration-reference/0); a PASS\n"
            "replaces a non-PASS and an older PASS; a non-PASS replaces a non-PASS only with a newer run "
            "id.\n"
            "True when stored.")
        .def(
            "get",
            [](const ResultsCache& c, const std::string& trigger, const std::string& package,
               const std::string& arch) -> py::object {
                auto e = c.get(trigger, package, arch);
                if (!e) return py::none();
                return entry_to_list(*e);
            },
            "trigger"_a, "package"_a, "arch"_a, "[STATUS, version, run_id, seen], or None.")
        .def("latest_run_id", &ResultsCache::latest_run_id, "package"_a, "arch"_a,
             "The newest run id cached for package/arch over all triggers, or None.");

    m.def(
        "record_results", &record_results, "cache"_a, "package"_a, "arch"_a, "results"_a,
        "pending"_a = py::none(), "reference"_a = false,
        "Feeds results of package/arch (from iter_results or iter_db_results) into the cache by\n"
        "britney's rules: a damaged result (no version, exit code not 4/12/20: e.g. a tmpfail) is\n"
        "ignored and stays pending; each other result counts for each of its triggers (none without\n"
        "triggers); a result for a trigger naming the package itself at a newer version than tested is\n"
        "ignored for it; a PASS is never overwritten. Every trigger of a counted result is removed from\n"
        "pending (when given). seen is the time in the run id. Returns the number of cache entries stored.");
    m.def(
        "decide",
        [](const ResultsCache& cache, const std::string& trigger, const std::string& package,
           const std::string& arch, bool pending, bool reference, std::optional<std::string> version,
           bool test_in_target) {
            return std::string(verdict_name(
                decide(cache, trigger, package, arch, pending, reference, version, test_in_target)));
        },
        "cache"_a, "trigger"_a, "package"_a, "arch"_a, "pending"_a = false, "reference"_a = false,
        "version"_a = py::none(), "test_in_target"_a = true,
        "britney's verdict for package/arch triggered by trigger, exactly as britney's pkg_test_result:\n"
        "'PASS', 'NEUTRAL', 'REGRESSION', 'ALWAYSFAIL', 'RUNNING', 'RUNNING-ALWAYSFAIL' or\n"
        "'RUNNING-REFERENCE'. A failure is a REGRESSION only when some result of package/arch (any trigger)\n"
        "PASSed at a version <= version (the version under test; default: the failed result's) and the\n"
        "baseline is not FAIL; else ALWAYSFAIL. The baseline is the best result over all triggers, or with\n"
        "reference=True the 'migration-reference/0' entry (none: RUNNING-REFERENCE when test_in_target).\n"
        "Without a result: RUNNING, or RUNNING-ALWAYSFAIL when pending and the baseline is FAIL.");

    py::class_<PendingTests>(m, "PendingTests", "britney's pending tests: {trigger: {src: [arches]}}.")
        .def(py::init<>(), "No pending tests.")
        .def_static("load", &PendingTests::load, "path"_a,
                    "Reads a pending file; a missing file gives none. ParseError when malformed.")
        .def("save", &PendingTests::save, "path"_a, "Writes the file atomically (path.new, fsync, rename).")
        .def("add", &PendingTests::add, "trigger"_a, "src"_a, "arch"_a, "Marks trigger/src/arch as pending.")
        .def("remove", &PendingTests::remove, "trigger"_a, "src"_a, "arch"_a,
             "Removes trigger/src/arch, pruning emptied entries; False when it was not pending.")
        .def("contains", &PendingTests::contains, "trigger"_a, "src"_a, "arch"_a,
             "True when trigger/src/arch is pending.")
        .def(
            "__contains__",
            [](const PendingTests& p, const std::tuple<std::string, std::string, std::string>& k) {
                return p.contains(std::get<0>(k), std::get<1>(k), std::get<2>(k));
            },
            "(trigger, src, arch) in pending.");
}

// Collecting results from a store or a results database.
void register_collect(py::module_& m) {
    py::class_<CollectedResults>(m, "CollectedResults", "What collect_results found.")
        .def_readonly("results", &CollectedResults::results, "GatingResult list, in run-id order.")
        .def_readonly("missing", &CollectedResults::missing,
                      "Runs without result.tar (upload in progress, or abandoned).")
        .def_readonly("corrupt", &CollectedResults::corrupt,
                      "Runs whose result.tar could not be parsed or names another package.")
        .def_readonly("held_back", &CollectedResults::held_back,
                      "Complete runs not returned because an earlier one is still being stored.")
        .def("__repr__", [](const CollectedResults& c) {
            return "<CollectedResults " + std::to_string(c.results.size()) + " results, " +
                   std::to_string(c.missing) + " missing, " + std::to_string(c.corrupt) + " corrupt, " +
                   std::to_string(c.held_back) + " held back>";
        });

    const char* collect_doc =
        "The runs of package in a store (a Store, or its URL: then the store is opened for this call\n"
        "only), in run-id order, only those after the run id `after` when given. Runs with a corrupt\n"
        "result.tar, or abandoned without one, are skipped and counted. The results stop before a run\n"
        "whose result.tar is still being stored (judged by when its objects were written, see\n"
        "upload_grace_seconds), so the newest result is always a safe next `after` marker. `now` (unix\n"
        "seconds) defaults to the current time.";
    m.def("collect_results", &collect, "store"_a, "container"_a, "release"_a, "arch"_a, "package"_a,
          "after"_a = py::none(), "now"_a = py::none(), collect_doc);
    m.def(
        "collect_results",
        [](const std::string& store_url, const std::string& container, const std::string& release,
           const std::string& arch, const std::string& package, std::optional<std::string> after,
           std::optional<std::int64_t> now) {
            auto store = open_store(store_url, {}, process_environment());
            return collect(*store, container, release, arch, package, after, now);
        },
        "store_url"_a, "container"_a, "release"_a, "arch"_a, "package"_a, "after"_a = py::none(),
        "now"_a = py::none(), collect_doc);
    // iter_results: the results alone (collect_results(...).results), the name gating scripts use.
    m.def(
        "iter_results",
        [](Store& store, const std::string& container, const std::string& release, const std::string& arch,
           const std::string& package, std::optional<std::string> after) {
            return collect(store, container, release, arch, package, after, std::nullopt).results;
        },
        "store"_a, "container"_a, "release"_a, "arch"_a, "package"_a, "after"_a = py::none());
    m.def(
        "iter_results",
        [](const std::string& store_url, const std::string& container, const std::string& release,
           const std::string& arch, const std::string& package, std::optional<std::string> after) {
            auto store = open_store(store_url, {}, process_environment());
            return collect(*store, container, release, arch, package, after, std::nullopt).results;
        },
        "store_url"_a, "container"_a, "release"_a, "arch"_a, "package"_a, "after"_a = py::none(),
        "collect_results(...).results: the GatingResult list alone.");
    m.attr("upload_grace_seconds") = upload_grace_seconds;

    const char* db_doc =
        "The results of package's runs in a downloaded results database (autopkgtest.db), in run-id order;\n"
        "only runs with run_id > after when given (britney's query). With sha256 (the path of the .sha256\n"
        "file) the database is verified first: IntegrityError when it does not match. NotFound when the "
        "file\n"
        "is missing, ParseError when it is not such a database.";
    m.def(
        "collect_db_results",
        [](const std::string& db_path, const std::string& release, const std::string& arch,
           const std::string& package, std::optional<std::string> after, std::optional<std::string> sha256) {
            py::gil_scoped_release release_gil;
            return collect_db_results(db_path, release, arch, package, after, sha256);
        },
        "db_path"_a, "release"_a, "arch"_a, "package"_a, "after"_a = py::none(), "sha256"_a = py::none(),
        db_doc);
    m.def(
        "iter_db_results",
        [](const std::string& db_path, const std::string& release, const std::string& arch,
           const std::string& package, std::optional<std::string> after, std::optional<std::string> sha256) {
            py::gil_scoped_release release_gil;
            return collect_db_results(db_path, release, arch, package, after, sha256).results;
        },
        "db_path"_a, "release"_a, "arch"_a, "package"_a, "after"_a = py::none(), "sha256"_a = py::none(),
        "collect_db_results(...).results: the GatingResult list alone.");
    m.def(
        "verify_results_db",
        [](const std::string& db_path, const std::string& sha256) {
            py::gil_scoped_release release_gil;
            verify_results_db(db_path, sha256);
        },
        "db_path"_a, "sha256"_a,
        "Checks a results database against its .sha256 file (64 hex digits, optionally '  name');\n"
        "IntegrityError when they differ, ParseError when the checksum file is malformed.");
    m.def(
        "download_results_db",
        [](const std::string& url, const std::string& path, int retries, double backoff) {
            py::gil_scoped_release release_gil;
            download_results_db(url, path, retries, backoff);
        },
        "url"_a, "path"_a, "retries"_a = 4, "backoff"_a = 1.0,
        "Downloads url and url + '.sha256' (http(s):// or file://) to path and path + '.sha256',\n"
        "verified and renamed into place atomically: path is always a whole, verified database.\n"
        "Timeouts, connection errors and 5xx answers are retried with exponential backoff.\n"
        "IntegrityError on a checksum mismatch (path is left as it was), NotFound for a 404.");
}

// The web service's feed of new results.
void register_feed(py::module_& m) {
    py::class_<FeedResult>(m, "FeedResult", "One new result of the feed: where it is, and what gating reads.")
        .def_readonly("container", &FeedResult::container, "The result container.")
        .def_readonly("release", &FeedResult::release, "Release.")
        .def_readonly("arch", &FeedResult::arch, "Architecture.")
        .def_readonly("package", &FeedResult::package, "Source package.")
        .def_readonly("result", &FeedResult::result, "The GatingResult (for record_results).")
        .def("__repr__", [](const FeedResult& f) {
            return "<FeedResult " + f.container + " " + f.package + "/" + f.arch + " " + f.result.run_id + ">";
        });
    py::class_<ResultsFeed>(m, "ResultsFeed",
                            "A gating client's incremental sync from the web service's /api/v1/results feed; the\n"
                            "cursor is kept in a file and saved by commit().")
        .def(py::init<std::string, std::string>(), "web_url"_a, "cursor_path"_a,
             "Resumes from the cursor in cursor_path (from the start when the file is absent).")
        .def(
            "fetch",
            [](ResultsFeed& f, std::size_t max, int retries) {
                py::gil_scoped_release r;
                return f.fetch(max, retries);
            },
            "max"_a = 100000, "retries"_a = 4,
            "The results indexed since the cursor (list of FeedResult), following pages; retries timeouts and 5xx.")
        .def("commit", &ResultsFeed::commit, "Saves the cursor of the last fetch atomically (call once processed).")
        .def_property_readonly("cursor", &ResultsFeed::cursor, "Where the next fetch starts.")
        .def_property_readonly("bytes_received", &ResultsFeed::bytes_received, "Bytes fetched by this object.");
}

// Links shown with a result, and the request sinks.
void register_links_and_sinks(py::module_& m) {
    py::class_<ResultLinks>(m, "ResultLinks", "Where people look at and act on one result.")
        .def_readonly("log", &ResultLinks::log, "The run's log.gz in the store ('' without a run id).")
        .def_readonly("artifacts", &ResultLinks::artifacts,
                      "The run's artifacts.tar.gz ('' without a run id).")
        .def_readonly("history", &ResultLinks::history, "The package's results page on the web service.")
        .def_readonly("retry", &ResultLinks::retry, "The request URL that runs the test again.")
        .def("__repr__", [](const ResultLinks& l) {
            return "<ResultLinks log=" + l.log + " history=" + l.history + " retry=" + l.retry + ">";
        });
    m.def("result_links", &result_links, "store_url"_a, "web_url"_a, "container"_a, "release"_a, "arch"_a,
          "package"_a, "run_id"_a, "triggers"_a, "ppas"_a = std::vector<std::string>{},
          "The links britney shows for a result: log and artifacts in the store (store_url is the public\n"
          "storage URL, e.g. https://host/v1/AUTH_x), the package's history page\n"
          "(<web_url>/packages/<pkg>/<release>/<arch>) and the retry request URL\n"
          "(<web_url>/request.cgi?release=..&arch=..&package=..&trigger=..&ppa=..), percent-encoded.");

    py::class_<RequestSink>(m, "RequestSink", "Where gating code sends test requests.")
        .def(
            "send",
            [](RequestSink& s, const TestRequest& request, const std::string& release,
               const std::string& arch, bool huge) {
                py::gil_scoped_release r;
                return s.send(request, release, arch, huge);
            },
            "request"_a, "release"_a, "arch"_a, "huge"_a = false,
            "Validates and sends the request to the queue routing chooses; returns the queue name.");
    m.def(
        "open_sink",
        [](const std::string& url, bool declare_queues, bool allow_local_sources) {
            ValidationOptions options;
            options.allow_local_sources = allow_local_sources;
            return open_sink(url, declare_queues, options, process_environment());
        },
        "url"_a, "declare_queues"_a = false, "allow_local_sources"_a = false,
        "Opens a request sink: amqp(s):// or sqlite:// publish to the broker (NotFound for a missing\n"
        "queue unless declare_queues); file:///path appends one line per request, '<queue>:<src> <json>'.\n"
        "allow_local_sources accepts local paths in build-git/test-git (one-machine sites only).");
    m.def("sink_line", &sink_line, "queue"_a, "request"_a,
          "A file-sink line (no newline): '<queue>:<src> <json>', or '<queue>:<src>' without parameters.");
}

}  // namespace

void register_gating(py::module_& m) {
    register_state(m);
    register_collect(m);
    register_feed(m);
    register_links_and_sinks(m);
}

}  // namespace apcloud::python
