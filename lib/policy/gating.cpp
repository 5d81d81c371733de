// Gating support (SPEC.md section 9): version comparison, britney's cache and pending files, result
// collection, request sinks, britney's verdicts.
#include "autopkgtest_cloud/gating.hpp"

#include <apt-pkg/debversion.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "autopkgtest_cloud/broker.hpp"
#include "autopkgtest_cloud/client.hpp"
#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/exit_codes.hpp"
#include "autopkgtest_cloud/layout.hpp"
#include "autopkgtest_cloud/result.hpp"
#include "autopkgtest_cloud/routing.hpp"
#include "autopkgtest_cloud/url.hpp"
#include "core/time_text.hpp"

namespace apcloud {

namespace {

using nlohmann::json;

std::string errno_text(int err) {
    return std::strerror(err);
}

// The file's content, or nullopt when it does not exist.
std::optional<std::string> read_file_if_exists(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        if (errno == ENOENT) return std::nullopt;
        throw Error("cannot read " + quote_for_message(path) + ": " + errno_text(errno));
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw Error("cannot read " + quote_for_message(path));
    return ss.str();
}

// Writes `data` to path.new, fsyncs it and renames it over `path`, so readers
// (and a crash) see the old file or the new one, never a part.
void write_atomically(const std::string& path, const std::string& data) {
    const std::string temp = path + ".new";
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw Error("cannot write " + quote_for_message(temp) + ": " + errno_text(errno));
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            int err = errno;
            ::close(fd);
            ::unlink(temp.c_str());
            throw Error("cannot write " + quote_for_message(temp) + ": " + errno_text(err));
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        int err = errno;
        ::unlink(temp.c_str());
        throw Error("cannot write " + quote_for_message(temp) + ": " + errno_text(err));
    }
    if (::rename(temp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(temp.c_str());
        throw Error("cannot rename " + quote_for_message(temp) + " to " + quote_for_message(path) + ": " +
                    errno_text(err));
    }
}

json parse_json_file(const std::string& path, const std::string& text) {
    try {
        return json::parse(text);
    } catch (const json::exception& e) {
        throw ParseError(quote_for_message(path) + " is not valid JSON: " + e.what());
    }
}

[[noreturn]] void bad_file(const std::string& path, const std::string& what) {
    throw ParseError(quote_for_message(path) + " is malformed: " + what);
}

bool is_pass(const CacheEntry& e) {
    return e.status == "PASS";
}

}  // namespace

int version_compare(std::string_view a, std::string_view b) {
    // debVS.CmpVersion needs no configuration (pkgInitConfig); it is pure.
    int r = debVS.CmpVersion(std::string(a), std::string(b));
    return r < 0 ? -1 : (r > 0 ? 1 : 0);
}

// ---- ResultsCache ----

ResultsCache ResultsCache::load(const std::string& path) {
    ResultsCache cache;
    auto text = read_file_if_exists(path);
    if (!text) return cache;
    json doc = parse_json_file(path, *text);
    if (!doc.is_object()) bad_file(path, "top level is not an object");
    for (auto& [trigger, pkgs] : doc.items()) {
        if (!pkgs.is_object()) bad_file(path, "trigger " + quote_for_message(trigger) + " is not an object");
        for (auto& [pkg, arches] : pkgs.items()) {
            if (!arches.is_object())
                bad_file(path, "package " + quote_for_message(pkg) + " of " + quote_for_message(trigger) +
                                   " is not an object");
            for (auto& [arch, v] : arches.items()) {
                const std::string where =
                    quote_for_message(trigger) + "/" + quote_for_message(pkg) + "/" + quote_for_message(arch);
                if (!v.is_array() || v.size() != 4 || !v[0].is_string() || !v[1].is_string() ||
                    !v[2].is_string() || !v[3].is_number_integer())
                    bad_file(path, "entry " + where + " is not [STATUS, version, run_id, seen_epoch]");
                CacheEntry e{v[0].get<std::string>(), v[1].get<std::string>(), v[2].get<std::string>(),
                             v[3].get<std::int64_t>()};
                cache.entries_[trigger][pkg][arch] = std::move(e);
            }
        }
    }
    return cache;
}

void ResultsCache::save(const std::string& path) const {
    json doc = json::object();
    for (const auto& [trigger, pkgs] : entries_)
        for (const auto& [pkg, arches] : pkgs)
            for (const auto& [arch, e] : arches)
                doc[trigger][pkg][arch] = json::array({e.status, e.version, e.run_id, e.seen});
    write_atomically(path, doc.dump(1) + "\n");
}

bool ResultsCache::add(const std::string& trigger, const std::string& package, const std::string& arch,
                       const CacheEntry& entry, bool reference_mode) {
    auto& slot = entries_[trigger][package];
    auto it = slot.find(arch);
    if (it != slot.end()) {
        const CacheEntry& old = it->second;
        const bool newer = entry.run_id > old.run_id;
        // In reference mode a newer reference run replaces the baseline whatever it says.
        const bool reference_update = reference_mode && trigger == migration_reference_trigger;
        if (is_pass(entry)) {
            if (is_pass(old) && !newer) return false;
        } else {
            if ((is_pass(old) && !reference_update) || !newer) return false;
        }
    }
    slot[arch] = entry;
    return true;
}

std::optional<CacheEntry> ResultsCache::get(const std::string& trigger, const std::string& package,
                                            const std::string& arch) const {
    auto t = entries_.find(trigger);
    if (t == entries_.end()) return std::nullopt;
    auto p = t->second.find(package);
    if (p == t->second.end()) return std::nullopt;
    auto a = p->second.find(arch);
    if (a == p->second.end()) return std::nullopt;
    return a->second;
}

std::optional<std::string> ResultsCache::latest_run_id(const std::string& package,
                                                       const std::string& arch) const {
    std::optional<std::string> best;
    for (const auto& [trigger, pkgs] : entries_) {
        auto p = pkgs.find(package);
        if (p == pkgs.end()) continue;
        auto a = p->second.find(arch);
        if (a == p->second.end()) continue;
        if (!best || a->second.run_id > *best) best = a->second.run_id;
    }
    return best;
}

std::vector<std::pair<std::string, CacheEntry>> ResultsCache::entries_for(const std::string& package,
                                                                          const std::string& arch) const {
    std::vector<std::pair<std::string, CacheEntry>> out;
    for (const auto& [trigger, pkgs] : entries_) {
        auto p = pkgs.find(package);
        if (p == pkgs.end()) continue;
        auto a = p->second.find(arch);
        if (a == p->second.end()) continue;
        out.emplace_back(trigger, a->second);
    }
    return out;
}

// ---- PendingTests ----

PendingTests PendingTests::load(const std::string& path) {
    PendingTests p;
    auto text = read_file_if_exists(path);
    if (!text) return p;
    json doc = parse_json_file(path, *text);
    if (!doc.is_object()) bad_file(path, "top level is not an object");
    for (auto& [trigger, srcs] : doc.items()) {
        if (!srcs.is_object()) bad_file(path, "trigger " + quote_for_message(trigger) + " is not an object");
        for (auto& [src, arches] : srcs.items()) {
            if (!arches.is_array())
                bad_file(path, "source " + quote_for_message(src) + " of " + quote_for_message(trigger) +
                                   " is not a list");
            for (auto& a : arches) {
                if (!a.is_string())
                    bad_file(path, "architecture of " + quote_for_message(trigger) + "/" +
                                       quote_for_message(src) + " is not a string");
                p.pending_[trigger][src].insert(a.get<std::string>());
            }
        }
    }
    return p;
}

void PendingTests::save(const std::string& path) const {
    json doc = json::object();
    for (const auto& [trigger, srcs] : pending_)
        for (const auto& [src, arches] : srcs)
            doc[trigger][src] = json(std::vector<std::string>(arches.begin(), arches.end()));
    write_atomically(path, doc.dump(1) + "\n");
}

void PendingTests::add(const std::string& trigger, const std::string& src, const std::string& arch) {
    pending_[trigger][src].insert(arch);
}

bool PendingTests::remove(const std::string& trigger, const std::string& src, const std::string& arch) {
    auto t = pending_.find(trigger);
    if (t == pending_.end()) return false;
    auto s = t->second.find(src);
    if (s == t->second.end()) return false;
    if (s->second.erase(arch) == 0) return false;
    if (s->second.empty()) t->second.erase(s);
    if (t->second.empty()) pending_.erase(t);
    return true;
}

bool PendingTests::contains(const std::string& trigger, const std::string& src,
                            const std::string& arch) const {
    auto t = pending_.find(trigger);
    if (t == pending_.end()) return false;
    auto s = t->second.find(src);
    return s != t->second.end() && s->second.count(arch) > 0;
}

// ---- collect_results ----

namespace {

// The run's start (the time in its run id), or nullopt for a name that is not a run id.
std::optional<std::int64_t> run_start(const std::string& run_id) {
    try {
        return parse_run_id(run_id).unix_time;
    } catch (const ParseError&) {
        return std::nullopt;
    }
}

// True when a run without result.tar is still being stored: one of its
// objects was written less than upload_grace_seconds before `now` (a test may
// run for hours, so its start says nothing; the worker writes result.tar
// last, right after the others). A run whose objects cannot be listed or
// dated counts as in progress when it started within the grace period.
bool in_progress(Store& store, const std::string& container, const std::string& run_dir,
                 const std::string& run_id, std::int64_t now) {
    std::optional<std::int64_t> newest;
    ListOptions opts;
    opts.prefix = run_dir;
    for (const auto& e : store.list_all(container, opts))
        if (auto t = detail::parse_iso_time(e.last_modified)) newest = std::max(newest.value_or(*t), *t);
    if (!newest) newest = run_start(run_id);
    return newest && *newest > now - upload_grace_seconds;
}

}  // namespace

CollectedResults collect_results(Store& store, const std::string& container, const std::string& release,
                                 const std::string& arch, const std::string& package,
                                 const std::optional<std::string>& after_run_id,
                                 std::optional<std::int64_t> now) {
    const std::int64_t current = now ? *now : static_cast<std::int64_t>(std::time(nullptr));
    const std::string prefix = package_prefix(release, arch, package);
    ListOptions opts;
    opts.prefix = prefix;
    opts.delimiter = '@';
    if (after_run_id) opts.marker = prefix + *after_run_id;
    std::vector<std::string> run_ids;
    for (const auto& e : store.list_all(container, opts)) {
        // Runs roll up to subdirs `PREFIX RUN_ID` (ending with '@'); anything
        // else under the prefix is not a run.
        if (!e.subdir || e.name.size() <= prefix.size()) continue;
        std::string run_id = e.name.substr(prefix.size());
        if (run_id.find('/') != std::string::npos) continue;
        run_ids.push_back(std::move(run_id));
    }
    std::vector<std::string> names;
    names.reserve(run_ids.size());
    for (const auto& r : run_ids) names.push_back(prefix + r + "/result.tar");
    auto objects = store.get_many(container, names);

    CollectedResults out;
    for (std::size_t i = 0; i < run_ids.size(); ++i) {
        if (!objects[i]) {
            ++out.missing;
            if (in_progress(store, container, prefix + run_ids[i] + "/", run_ids[i], current)) {
                for (std::size_t j = i + 1; j < run_ids.size(); ++j) out.held_back += objects[j] ? 1 : 0;
                break;
            }
            continue;
        }
        Result r;
        try {
            r = parse_result_tar(objects[i]->data);
        } catch (const ParseError&) {
            ++out.corrupt;
            continue;
        }
        // britney ignores a result that names another package.
        if (r.package && *r.package != package) {
            ++out.corrupt;
            continue;
        }
        GatingResult g;
        g.run_id = run_ids[i];
        g.exitcode = r.exitcode;
        g.outcome = std::string(outcome_name(outcome(r.exitcode)));
        g.version = std::move(r.version);
        g.triggers = std::move(r.triggers);
        g.duration = r.duration;
        out.results.push_back(std::move(g));
    }
    return out;
}

std::optional<CacheEntry> cache_entry(const GatingResult& result) {
    std::string version;
    if (result.version)
        version = *result.version;
    else if (reports_unknown_version(result.exitcode))
        version = "unknown";  // britney repairs these itself
    else
        return std::nullopt;  // damaged: britney ignores it and keeps the test pending
    return CacheEntry{std::string(britney_status(result.exitcode)), std::move(version), result.run_id,
                      run_start(result.run_id).value_or(0)};
}

std::size_t record_results(ResultsCache& cache, PendingTests* pending, const std::string& package,
                           const std::string& arch, const std::vector<GatingResult>& results,
                           bool reference_mode) {
    std::size_t stored = 0;
    for (const auto& r : results) {
        if (!r.triggers) continue;
        const auto entry = cache_entry(r);
        if (!entry) continue;
        for (const auto& trigger : *r.triggers) {
            const auto slash = trigger.find('/');
            if (slash == std::string::npos) continue;
            if (pending) pending->remove(trigger, package, arch);
            if (trigger.compare(0, slash, package) == 0 && slash == package.size() &&
                version_compare(entry->version, std::string_view(trigger).substr(slash + 1)) < 0)
                continue;
            if (cache.add(trigger, package, arch, *entry, reference_mode)) ++stored;
        }
    }
    return stored;
}

// ---- links ----

namespace {

std::string without_trailing_slashes(std::string s) {
    while (!s.empty() && s.back() == '/') s.pop_back();
    return s;
}

// Percent-encodes an object path for a URL, keeping '/' and the '@' that ends
// run ids (a valid path character, shown literally in links people read).
std::string encode_object_path(const std::string& path) {
    std::string encoded = percent_encode(path, true), out;
    for (std::size_t i = 0; i < encoded.size(); ++i) {
        if (encoded.compare(i, 3, "%40") == 0) {
            out += '@';
            i += 2;
        } else {
            out += encoded[i];
        }
    }
    return out;
}

}  // namespace

ResultLinks result_links(const std::string& store_url, const std::string& web_url,
                         const std::string& container, const std::string& release, const std::string& arch,
                         const std::string& package, const std::string& run_id,
                         const std::vector<std::string>& triggers, const std::vector<std::string>& ppas) {
    ResultLinks links;
    const std::string web = without_trailing_slashes(web_url);
    if (!run_id.empty()) {
        const std::string dir = without_trailing_slashes(store_url) + "/" + percent_encode(container) + "/" +
                                encode_object_path(result_dir(release, arch, package, run_id)) + "/";
        links.log = dir + "log.gz";
        links.artifacts = dir + "artifacts.tar.gz";
    }
    links.history = web + "/packages/" + percent_encode(package) + "/" + percent_encode(release) + "/" +
                    percent_encode(arch);
    links.retry = web + "/request.cgi?release=" + percent_encode(release) + "&arch=" + percent_encode(arch) +
                  "&package=" + percent_encode(package);
    for (const auto& t : triggers) links.retry += "&trigger=" + percent_encode(t);
    for (const auto& p : ppas) links.retry += "&ppa=" + percent_encode(p);
    return links;
}

// ---- request sinks ----

RequestSink::~RequestSink() = default;

std::string sink_line(const std::string& queue, const TestRequest& request) {
    std::string msg = request.to_message();
    auto nl = msg.find('\n');
    if (nl == std::string::npos) return queue + ":" + msg;
    return queue + ":" + msg.substr(0, nl) + " " + msg.substr(nl + 1);
}

namespace {

// The request as sent: stamped with the current UTC time as `submit-time`
// unless the caller set one (SPEC.md section 1; britney records it).
TestRequest stamped(const TestRequest& request) {
    TestRequest r = request;
    if (!r.submit_time) r.submit_time = format_submit_time(std::time(nullptr));
    return r;
}

class BrokerSink : public RequestSink {
public:
    BrokerSink(std::unique_ptr<Broker> broker, bool declare, ValidationOptions options)
        : broker_(std::move(broker)), declare_(declare), options_(options) {}
    std::string send(const TestRequest& request, const std::string& release, const std::string& arch,
                     bool huge) override {
        if (declare_) {
            validate(request, options_);
            broker_->declare_queue(queue_for(request, release, arch, huge));
        }
        return submit_request(*broker_, stamped(request), release, arch, huge, options_);
    }

private:
    std::unique_ptr<Broker> broker_;
    bool declare_;
    ValidationOptions options_;
};

// Appends one line per request with a single write() on an O_APPEND file, so
// lines from concurrent senders do not interleave.
class FileSink : public RequestSink {
public:
    FileSink(std::string path, ValidationOptions options) : path_(std::move(path)), options_(options) {}
    std::string send(const TestRequest& request, const std::string& release, const std::string& arch,
                     bool huge) override {
        validate(request, options_);
        std::string queue = queue_for(request, release, arch, huge);
        std::string line = sink_line(queue, stamped(request)) + "\n";
        int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0)
            throw Error("cannot open sink file " + quote_for_message(path_) + ": " + errno_text(errno));
        ssize_t n = ::write(fd, line.data(), line.size());
        int err = errno;
        ::close(fd);
        if (n != static_cast<ssize_t>(line.size()))
            throw Error("cannot append to sink file " + quote_for_message(path_) + ": " +
                        (n < 0 ? errno_text(err) : std::string("short write")));
        return queue;
    }

private:
    std::string path_;
    ValidationOptions options_;
};

}  // namespace

std::unique_ptr<RequestSink> open_sink(const std::string& url, bool declare_queues,
                                       const ValidationOptions& options) {
    Url u = parse_url(url);
    if (u.scheme == "file") {
        if (!u.host.empty() || u.path.empty() || u.path[0] != '/')
            throw ConfigError("file sink URL must be file:///absolute/path, got " + quote_for_message(url));
        return std::make_unique<FileSink>(u.path, options);
    }
    if (u.scheme == "sqlite" || u.scheme == "amqp" || u.scheme == "amqps")
        return std::make_unique<BrokerSink>(open_broker(url), declare_queues, options);
    throw ConfigError("unsupported sink URL " + quote_for_message(u.redacted()) +
                      " (expected file://, sqlite:// or amqp(s)://)");
}

// ---- verdicts ----

std::string_view verdict_name(Verdict v) noexcept {
    switch (v) {
        case Verdict::pass:
            return "PASS";
        case Verdict::neutral:
            return "NEUTRAL";
        case Verdict::fail:
            return "FAIL";
        case Verdict::regression:
            return "REGRESSION";
        case Verdict::always_fail:
            return "ALWAYSFAIL";
        case Verdict::running:
            return "RUNNING";
        case Verdict::running_always_fail:
            return "RUNNING-ALWAYSFAIL";
        case Verdict::running_reference:
            return "RUNNING-REFERENCE";
    }
    return "FAIL";
}

namespace {

// britney's result_in_baseline: in reference mode the migration-reference/0
// entry (nullopt: NONE); otherwise the first non-FAIL status over all
// triggers, a PASS winning, else FAIL (also when there are no entries).
std::optional<std::string> baseline_status(const ResultsCache& cache, const std::string& package,
                                           const std::string& arch, bool reference_mode) {
    if (reference_mode) {
        auto ref = cache.get(std::string(migration_reference_trigger), package, arch);
        if (!ref) return std::nullopt;
        return ref->status;
    }
    std::string best = "FAIL";
    for (const auto& [t, e] : cache.entries_for(package, arch)) {
        if (e.status == "PASS") return e.status;
        if (e.status == "NEUTRAL") best = e.status;
    }
    return best;
}

// britney's check_ever_passed_before: some result of package/arch, for any
// trigger, PASSed at a version not higher than `max_version`.
bool ever_passed(const ResultsCache& cache, const std::string& package, const std::string& arch,
                 const std::string& max_version) {
    for (const auto& [t, e] : cache.entries_for(package, arch))
        if (e.status == "PASS" && version_compare(e.version, max_version) <= 0) return true;
    return false;
}

}  // namespace

Verdict decide(const ResultsCache& cache, const std::string& trigger, const std::string& package,
               const std::string& arch, bool pending, bool reference_mode,
               const std::optional<std::string>& version, bool test_in_target) {
    const auto baseline = baseline_status(cache, package, arch, reference_mode);
    auto result = cache.get(trigger, package, arch);
    if (!result) {
        // britney requests a test that is neither cached nor pending: it is
        // shown as running (not yet run) whatever the baseline.
        if (!pending) return Verdict::running;
        return baseline && *baseline == "FAIL" ? Verdict::running_always_fail : Verdict::running;
    }
    if (result->status == "PASS") return Verdict::pass;
    if (result->status == "NEUTRAL") return Verdict::neutral;
    // A failure (any other status string counts as one, as in britney).
    const Verdict fail_verdict = ever_passed(cache, package, arch, version.value_or(result->version))
                                     ? Verdict::regression
                                     : Verdict::always_fail;
    if (!baseline) {
        // Reference mode without a reference result: britney requests one.
        return test_in_target ? Verdict::running_reference : fail_verdict;
    }
    if (*baseline == "FAIL") return Verdict::always_fail;
    return fail_verdict;
}

}  // namespace apcloud
