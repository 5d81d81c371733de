// The web service's results feed, read page by page with a cursor kept in a file.
#include "autopkgtest_cloud/feed.hpp"

#include <fmt/format.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "apcloud_config.h"
#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/exit_codes.hpp"
#include "autopkgtest_cloud/file_io.hpp"
#if APCLOUD_HAVE_SWIFT
#include "http/http_client.hpp"
#endif

namespace apcloud {

using nlohmann::json;

namespace {

std::optional<std::string> optional_string(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
}

FeedResult feed_result(const json& r) {
    FeedResult f;
    f.container = r.at("container").get<std::string>();
    f.release = r.at("release").get<std::string>();
    f.arch = r.at("arch").get<std::string>();
    f.package = r.at("package").get<std::string>();
    GatingResult& g = f.result;
    g.run_id = r.at("run_id").get<std::string>();
    g.exitcode = r.at("exitcode").get<int>();
    g.outcome = std::string(outcome_name(outcome(g.exitcode)));
    g.version = optional_string(r, "version");
    // Like result.tar: a run without ADT_TEST_TRIGGERS has no triggers (not an empty list).
    if (r.contains("triggers") && r["triggers"].is_array() && !r["triggers"].empty())
        g.triggers = r["triggers"].get<std::vector<std::string>>();
    if (r.contains("duration") && r["duration"].is_number_unsigned())
        g.duration = r["duration"].get<std::uint64_t>();
    return f;
}

}  // namespace

ResultsFeed::ResultsFeed(std::string web_url, std::string cursor_path)
    : url_(std::move(web_url)), path_(std::move(cursor_path)) {
    while (!url_.empty() && url_.back() == '/') url_.pop_back();
    if (auto text = read_file_if_exists(path_)) {
        try {
            saved_ = std::stoll(*text);
        } catch (const std::exception&) {
            throw ParseError(fmt::format("{} is not a feed cursor: {}", quote_for_message(path_),
                                         quote_for_message(*text)));
        }
    }
    next_ = saved_;
}

std::vector<FeedResult> ResultsFeed::fetch(std::size_t max, int retries) {
#if APCLOUD_HAVE_SWIFT
    http::HttpClient client;
    std::vector<FeedResult> out;
    for (;;) {
        const std::size_t limit = std::min<std::size_t>(1000, max - out.size());
        http::Request req;
        req.url = fmt::format("{}/api/v1/results?since={}&limit={}", url_, next_, limit);
        http::Response resp;
        for (int attempt = 0;; ++attempt) {
            try {
                resp = client.request(req);
            } catch (const HttpError&) {
                if (attempt >= retries) throw;
                resp.status = 0;
            }
            if (resp.status == 200) break;
            if (resp.status != 0 && (!http::retryable_status(resp.status) || attempt >= retries))
                throw HttpError(
                    fmt::format("GET {}: HTTP {} after {} attempt(s)", req.url, resp.status, attempt + 1));
            std::this_thread::sleep_for(std::chrono::milliseconds(500 << std::min(attempt, 6)));
        }
        bytes_ += resp.body.size();
        json page = json::parse(resp.body, nullptr, false);
        if (!page.is_object() || !page.contains("results") || !page["results"].is_array() ||
            !page.contains("next"))
            throw ParseError(fmt::format("{} is not a results feed page", quote_for_message(req.url)));
        try {
            for (const auto& r : page["results"]) out.push_back(feed_result(r));
        } catch (const json::exception& e) {
            throw ParseError(
                fmt::format("{}: a result is malformed: {}", quote_for_message(req.url), e.what()));
        }
        next_ = page["next"].get<std::int64_t>();
        if (!page.value("more", false) || out.size() >= max) return out;
    }
#else
    (void)max;
    (void)retries;
    throw ConfigError("this build has no HTTP client (built without Swift support)");
#endif
}

void ResultsFeed::commit() {
    if (next_ == saved_) return;
    write_atomically(path_, std::to_string(next_) + "\n");
    saved_ = next_;
}

}  // namespace apcloud
