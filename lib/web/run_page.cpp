// The page of one run: its facts, its per-test results, its log (log.gz read from
// the store, within limits) in sections with line anchors, and each test's
// stdout/stderr from artifacts.tar.gz.
#include <fmt/format.h>

#include <map>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/layout.hpp"
#include "autopkgtest_cloud/result.hpp"
#include "autopkgtest_cloud/url.hpp"
#include "core/time_text.hpp"
#include "web/json_views.hpp"
#include "web/log_view.hpp"
#include "web/pages.hpp"

namespace apcloud::web {

using http::ServerResponse;
using nlohmann::json;

namespace {

// The colour class of a test result ("PASS" -> "pass"); unknown ones are "other".
std::string result_css(const std::string& result) {
    for (const char* known : {"PASS", "FAIL", "SKIP", "FLAKY", "NEUTRAL", "BROKEN"})
        if (result.rfind(known, 0) == 0) {
            std::string css = known;
            for (auto& c : css) c = static_cast<char>(c - 'A' + 'a');
            return css;
        }
    return "other";
}

std::string capped(std::string text, std::size_t max_bytes) {
    if (text.size() <= max_bytes) return text;
    text.resize(max_bytes);
    return text + fmt::format("\n[… shown up to {} bytes; the whole file is in artifacts.tar.gz]", max_bytes);
}

}  // namespace

std::vector<std::pair<std::string, std::string>> Pages::test_outputs(const IndexedRun& run, std::string& note) const {
    const std::string name = result_dir(run.release, run.arch, run.package, run.run_id) + "/artifacts.tar.gz";
    try {
        auto info = store_->head(run.container, name);
        if (!info) return {};
        if (info->bytes > limits.max_artifacts_bytes) {
            note += fmt::format("artifacts.tar.gz is {} bytes: the tests' output is only in the download. ",
                                info->bytes);
            return {};
        }
        auto object = store_->get(run.container, name);
        if (!object) return {};
        ArchiveLimits l;
        l.max_archive_bytes = limits.max_artifacts_bytes * 4;  // uncompressed
        l.max_member_bytes = limits.max_artifacts_bytes;
        l.max_members = 1024;
        return read_archive(object->data, l, [](std::string_view member) {
            const bool out = member.size() > 7 && member.substr(member.size() - 7) == "-stdout";
            const bool err = member.size() > 7 && member.substr(member.size() - 7) == "-stderr";
            return (out || err) && member.find('/') == std::string_view::npos;
        });
    } catch (const ArchiveError& e) {
        note += fmt::format("artifacts.tar.gz could not be read: {}. ", e.what());
    } catch (const StoreError& e) {
        note += fmt::format("artifacts.tar.gz could not be fetched: {}. ", e.what());
    }
    return {};
}

json Pages::log_sections(const IndexedRun& run, const json& tests, std::string& note) const {
    json out = json::array();
    if (!store_) return out;
    const std::string name = result_dir(run.release, run.arch, run.package, run.run_id) + "/log.gz";
    std::string log;
    bool truncated = false;
    try {
        auto info = store_->head(run.container, name);
        if (!info) {
            note = "This run has no log.gz. ";
            return out;
        }
        if (info->bytes > limits.max_log_gz_bytes) {
            note = fmt::format("log.gz is {} bytes, too large to show here: download it. ", info->bytes);
            return out;
        }
        auto object = store_->get(run.container, name);
        if (!object) return out;
        log = gzip_decompress(object->data, limits.max_log_bytes, &truncated);
    } catch (const ArchiveError& e) {
        note = fmt::format("log.gz could not be read: {}. ", e.what());
        return out;
    } catch (const StoreError& e) {
        note = fmt::format("log.gz could not be fetched: {}. ", e.what());
        return out;
    }
    if (truncated)
        note = fmt::format("The log is shown up to {} bytes; log.gz has all of it. ", limits.max_log_bytes);
    std::map<std::string, std::string> css;
    for (const auto& t : tests) css[t["name"].get<std::string>()] = t["css"].get<std::string>();
    std::map<std::string, std::pair<std::string, std::string>> outputs;
    for (auto& [member, text] : test_outputs(run, note)) {
        const std::string test = member.substr(0, member.size() - 7);
        (member.back() == 't' ? outputs[test].first : outputs[test].second) =
            capped(std::move(text), limits.max_test_output_bytes);
    }
    for (const auto& s : split_log(log)) {
        json lines = json::array();
        std::size_t n = s.first_line;
        for (const auto& l : s.lines) lines.push_back({{"n", std::to_string(n++)}, {"text", l}});
        json j = {{"id", s.kind == "test" ? "test-" + s.name : s.kind},
                  {"title", s.kind == "test" ? "test " + s.name : s.kind},
                  {"css", s.kind == "test" ? (css.count(s.name) ? css[s.name] : "other") : s.kind},
                  {"name", s.name},
                  {"lines", lines}};
        if (s.kind == "test" && outputs.count(s.name)) {
            j["stdout"] = outputs[s.name].first;
            j["stderr"] = outputs[s.name].second;
        }
        out.push_back(std::move(j));
    }
    return out;
}

ServerResponse Pages::run_page(const IndexedRecord& rec) const {
    const IndexedRun& r = rec.run;
    json run = run_json(rec, true);
    for (auto& t : run["tests"]) t["css"] = result_css(t["result"].get<std::string>());
    std::string note;
    json sections = log_sections(r, run["tests"], note);
    return render("run", {{"title", fmt::format("{} {}/{} {}", r.package, r.release, r.arch, r.run_id)},
                          {"run", run},
                          {"history", run_urls(r).history},
                          {"started_human", human_time(r.started())},
                          {"duration_human", r.duration ? human_duration(*r.duration) : std::string()},
                          {"retry_link", run["retry"]},
                          {"has_env", !r.env.empty() || r.all_proposed},
                          {"has_ppas", !r.ppas.empty()},
                          {"sections", sections},
                          {"log_note", note}});
}

}  // namespace apcloud::web
