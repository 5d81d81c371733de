// Store names taken apart and result.tar turned into an index row (SPEC.md sections 3 and 6).
#include "autopkgtest_cloud/indexed_run.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/exit_codes.hpp"
#include "autopkgtest_cloud/layout.hpp"
#include "autopkgtest_cloud/request.hpp"
#include "autopkgtest_cloud/routing.hpp"

namespace apcloud {

std::optional<ContainerInfo> parse_container_name(std::string_view name) {
    ContainerInfo c;
    c.name = std::string(name);
    std::string_view rest = name;
    constexpr std::string_view private_prefix = "private-", prefix = "autopkgtest-";
    if (rest.substr(0, private_prefix.size()) == private_prefix) {
        c.is_private = true;
        rest.remove_prefix(private_prefix.size());
    }
    if (rest.substr(0, prefix.size()) != prefix) return std::nullopt;
    rest.remove_prefix(prefix.size());
    auto dash = rest.find('-');  // release names have none
    c.release = std::string(rest.substr(0, dash));
    if (!is_valid_release(c.release)) return std::nullopt;
    if (dash != std::string_view::npos) {
        c.ppa = std::string(rest.substr(dash + 1));
        if (c.ppa.empty()) return std::nullopt;
    }
    return c;
}

std::string RunLocation::dir() const {
    return result_dir(release, arch, package, run_id);
}

std::optional<RunLocation> parse_run_dir(std::string_view dir) {
    std::vector<std::string_view> parts;
    while (!dir.empty() && parts.size() < 5) {
        auto slash = dir.find('/');
        parts.push_back(dir.substr(0, slash));
        dir = slash == std::string_view::npos ? std::string_view() : dir.substr(slash + 1);
    }
    if (parts.size() != 5) return std::nullopt;
    RunLocation r{std::string(parts[0]), std::string(parts[1]), std::string(parts[3]), std::string(parts[4])};
    if (!is_valid_release(r.release) || !is_valid_arch(r.arch) || !is_valid_package_name(r.package) ||
        srcpkg_prefix(r.package) != parts[2] || !run_id_time(r.run_id))
        return std::nullopt;
    return r;
}

std::vector<TestSummaryLine> parse_summary(std::string_view summary) {
    std::vector<TestSummaryLine> out;
    while (!summary.empty()) {
        auto nl = summary.find('\n');
        std::string_view line = summary.substr(0, nl);
        summary = nl == std::string_view::npos ? std::string_view() : summary.substr(nl + 1);
        auto name_end = line.find_first_of(" \t");
        if (name_end == std::string_view::npos || name_end == 0) continue;
        auto result_start = line.find_first_not_of(" \t", name_end);
        if (result_start == std::string_view::npos) continue;
        auto result_end = line.find_first_of(" \t", result_start);
        TestSummaryLine t;
        t.name = std::string(line.substr(0, name_end));
        t.result = std::string(line.substr(result_start, result_end - result_start));
        if (!std::all_of(t.result.begin(), t.result.end(), [](char c) { return c >= 'A' && c <= 'Z'; }))
            continue;
        if (result_end != std::string_view::npos) {
            auto detail = line.substr(result_end);
            auto start = detail.find_first_not_of(" \t");
            if (start != std::string_view::npos) t.detail = std::string(detail.substr(start));
        }
        out.push_back(std::move(t));
    }
    return out;
}

std::string IndexedRun::triggers_column() const {
    return fmt::format("{}", fmt::join(triggers, " "));
}

std::string IndexedRun::env_column() const {
    std::vector<std::string> items = env;
    if (all_proposed) items.emplace_back("all-proposed=1");
    return fmt::format("{}", fmt::join(items, ","));
}

std::int64_t IndexedRun::started() const noexcept {
    return run_id_time(run_id).value_or(0);
}

namespace {

constexpr std::string_view triggers_key = "ADT_TEST_TRIGGERS=";

// The request stored beside the result, if there is a readable one.
std::optional<TestRequest> stored_request(const Result& result) {
    if (!result.request) return std::nullopt;
    ValidationOptions lenient;
    lenient.allow_local_sources = true;  // the worker accepted it: its config allowed it
    lenient.allow_webhook_env = true;
    try {
        return parse_request(*result.request, lenient);
    } catch (const Error&) {
        return std::nullopt;  // an unreadable request is no reason to lose the result
    }
}

}  // namespace

TestRequest IndexedRun::request() const {
    TestRequest t;
    t.package = package;
    t.triggers = triggers;
    t.ppas = ppas;
    t.env = env;
    t.all_proposed = all_proposed;
    t.build_git = build_git;
    t.test_git = test_git;
    t.testname = testname;
    t.readable_by = readable_by;
    return t;
}

IndexedRun index_run(const ContainerInfo& container, const RunLocation& where, const Result& result) {
    IndexedRun r;
    r.container = container.name;
    r.release = where.release;
    r.arch = where.arch;
    r.package = where.package;
    r.run_id = where.run_id;
    r.is_private = container.is_private;
    r.exitcode = result.exitcode;
    r.version = result.version;
    if (!r.version && reports_unknown_version(result.exitcode)) r.version = "unknown";
    if (result.triggers) {
        r.triggers = *result.triggers;
        r.has_triggers = true;
    }
    r.duration = result.duration;
    r.requester = result.requester;
    r.summary = result.summary;
    if (auto req = stored_request(result)) {
        r.env = req->env;
        r.all_proposed = req->all_proposed;
        r.uuid = req->uuid;
        r.ppas = req->ppas;
        r.testname = req->testname;
        r.build_git = req->build_git;
        r.test_git = req->test_git;
        r.readable_by = req->readable_by;
        r.swiftuser = req->swiftuser;
        if (!r.requester) r.requester = req->requester;
    } else {
        for (const auto& e : result.custom_environment)
            if (e.compare(0, triggers_key.size(), triggers_key) != 0) r.env.push_back(e);
    }
    return r;
}

}  // namespace apcloud
