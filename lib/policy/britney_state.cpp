// britney's state (SPEC.md section 9): Debian version comparison, the results
// cache and pending-tests files, and the rules that feed results into them.
#include "autopkgtest_cloud/britney_state.hpp"

#include <apt-pkg/debversion.h>
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/exit_codes.hpp"
#include "autopkgtest_cloud/file_io.hpp"
#include "autopkgtest_cloud/layout.hpp"
#include "autopkgtest_cloud/request.hpp"

namespace apcloud {

namespace {

using nlohmann::json;

json parse_json_file(const std::string& path, const std::string& text) {
    try {
        return json::parse(text);
    } catch (const json::exception& e) {
        throw ParseError(fmt::format("{} is not valid JSON: {}", quote_for_message(path), e.what()));
    }
}

[[noreturn]] void bad_file(const std::string& path, const std::string& what) {
    throw ParseError(fmt::format("{} is malformed: {}", quote_for_message(path), what));
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

// ---- feeding results in ----

std::optional<CacheEntry> cache_entry(const GatingResult& result) {
    std::string version;
    if (result.version)
        version = *result.version;
    else if (reports_unknown_version(result.exitcode))
        version = "unknown";  // britney repairs these itself
    else
        return std::nullopt;  // damaged: britney ignores it and keeps the test pending
    return CacheEntry{std::string(britney_status(result.exitcode)), std::move(version), result.run_id,
                      run_id_time(result.run_id).value_or(0)};
}

std::size_t record_results(ResultsCache& cache, const std::string& package, const std::string& arch,
                           const std::vector<GatingResult>& results, PendingTests* pending,
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

}  // namespace apcloud
