// retry-autopkgtest-regressions over the network: excuses.yaml and logs
// fetched, retries sent to the request API (one call each, outcomes reported).
#include "autopkgtest_cloud/retries.hpp"

#include "autopkgtest_cloud/tool.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <thread>

#include "apcloud_config.h"
#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/file_io.hpp"
#include "autopkgtest_cloud/result.hpp"
#include "autopkgtest_cloud/url.hpp"
#include "autopkgtest_cloud/webhooks.hpp"
#include "core/digest.hpp"
#include "core/logging.hpp"
#if APCLOUD_HAVE_SWIFT
#include "http/http_client.hpp"
#endif

namespace apcloud {

using nlohmann::json;

namespace {

const detail::Logger logger("retry");

bool is_http(const std::string& s) {
    return s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0;
}

std::string trimmed(std::string s) {
    const auto start = s.find_first_not_of(" \t\r\n");
    if (start == std::string::npos) return {};
    return s.substr(start, s.find_last_not_of(" \t\r\n") + 1 - start);
}

#if APCLOUD_HAVE_SWIFT
// The rest of a body, at most max_bytes.
std::string read_capped(http::ResponseReader& reader, const std::string& url, std::size_t max_bytes) {
    std::string body, chunk;
    while (reader.read(chunk)) {
        if (body.size() + chunk.size() > max_bytes)
            throw ParseError(fmt::format("{} is larger than {} bytes", quote_for_message(url), max_bytes));
        body += chunk;
    }
    return body;
}

// The answer's JSON, or an object holding its text as the error.
json answer_json(const http::Response& resp) {
    json j = json::parse(resp.body, nullptr, false);
    if (j.is_object()) return j;
    return {{"error", resp.body.substr(0, 300)}};
}

// One retry sent (with the retries for 429, 5xx and transport errors).
// One request as POST /api/v1/test takes it: every field a user may set
// (the requester, uuid and submit time are the service's to stamp).
json api_request_body(const TestRequest& r, const std::string& release, const std::string& arch) {
    json body = {{"package", r.package}, {"release", release}, {"arch", arch}, {"triggers", r.triggers}};
    if (!r.ppas.empty()) body["ppas"] = r.ppas;
    if (!r.env.empty()) body["env"] = r.env;
    if (r.all_proposed) body["all-proposed"] = true;
    if (r.build_git) body["build-git"] = *r.build_git;
    if (r.test_git) body["test-git"] = *r.test_git;
    if (r.testname) body["testname"] = *r.testname;
    if (!r.readable_by.empty()) body["readable-by"] = r.readable_by;
    return body;
}

SubmitOutcome submit_one(http::HttpClient& client, const std::string& url, const std::string& api_key,
                         const TestRequest& r, const std::string& release, const std::string& arch) {
    const std::string text = api_request_body(r, release, arch).dump();
    http::Request req;
    req.method = "POST";
    req.url = url;
    req.headers["Authorization"] = "Bearer " + api_key;
    req.headers["Content-Type"] = "application/json";
    req.headers["Accept"] = "application/json";
    req.body = text;
    req.has_body = true;
    SubmitOutcome out;
    int busy = 0, broken = 0;
    for (;;) {
        http::Response resp;
        try {
            resp = client.request(req);
        } catch (const HttpError& e) {
            out.http_status = 0;
            out.message = e.what();
            if (++broken > 2) return out;
            std::this_thread::sleep_for(std::chrono::seconds(broken));
            continue;
        }
        out.http_status = resp.status;
        const json a = answer_json(resp);
        out.message = a.value("error", "");
        if (resp.status == 200 && a.contains("requests") && a["requests"].is_array() &&
            !a["requests"].empty()) {
            const json& made = a["requests"][0];
            out.status = SubmitOutcome::Status::queued;
            out.uuid = made.value("uuid", "");
            out.queue = made.value("queue", "");
            return out;
        }
        if (resp.status == 401)
            throw HttpError(
                fmt::format("the request API ({}) refused the key: HTTP 401: {}", url, out.message));
        if (resp.status == 409) {
            out.status = SubmitOutcome::Status::duplicate;
            if (a.contains("existing") && a["existing"].is_object() &&
                a["existing"].value("uuid", json()).is_string())
                out.uuid = a["existing"]["uuid"].get<std::string>();
            return out;
        }
        if (resp.status == 429 && ++busy <= 5) {
            long wait = 5;
            if (auto after = resp.header("Retry-After")) wait = std::strtol(after->c_str(), nullptr, 10);
            std::this_thread::sleep_for(std::chrono::seconds(std::clamp(wait, 1L, 60L)));
            continue;
        }
        if (resp.status >= 500 && ++broken <= 2) {
            std::this_thread::sleep_for(std::chrono::seconds(broken));
            continue;
        }
        if (out.message.empty()) out.message = fmt::format("HTTP {}", resp.status);
        return out;
    }
}
#endif

// Fetches documents with one HTTP client for all (its connections kept alive between them).
class Fetcher {
public:
    std::string fetch(const std::string& source, std::size_t max_bytes) {
        if (!is_http(source)) {
            const std::string path = source.rfind("file://", 0) == 0 ? parse_url(source).path : source;
            std::string data = read_file(path);
            if (data.size() > max_bytes)
                throw ParseError(
                    fmt::format("{} is larger than {} bytes", quote_for_message(path), max_bytes));
            return data;
        }
#if APCLOUD_HAVE_SWIFT
        if (!client_) client_ = std::make_unique<http::HttpClient>();
        http::Request req;
        req.url = source;
        std::string last;
        for (int attempt = 0;; ++attempt) {
            bool retryable = true;
            try {
                auto reader = client_->open(req);
                const int status = reader->head().status;
                if (status == 200) return read_capped(*reader, source, max_bytes);
                if (status == 404)
                    throw NotFound(fmt::format("{} does not exist (HTTP 404)", quote_for_message(source)));
                retryable = http::retryable_status(status);
                last = fmt::format("HTTP {}", status);
            } catch (const HttpError& e) {
                last = e.what();
            }
            if (!retryable || attempt >= 2)
                throw HttpError(fmt::format("cannot fetch {} ({} attempt(s)): {}", quote_for_message(source),
                                            attempt + 1, last));
            std::this_thread::sleep_for(std::chrono::seconds(attempt + 1));
        }
#else
        (void)max_bytes;
        throw ConfigError(
            fmt::format("this build has no HTTP client (built without Swift support): cannot fetch {}",
                        quote_for_message(source)));
#endif
    }

private:
#if APCLOUD_HAVE_SWIFT
    std::unique_ptr<http::HttpClient> client_;
#endif
};

}  // namespace

std::string fetch_document(const std::string& source, std::size_t max_bytes) {
    return Fetcher().fetch(source, max_bytes);
}

std::vector<RetryRequest> filter_by_log(const std::vector<RetryRequest>& requests, const LogRegex& regex) {
    std::vector<RetryRequest> out;
    Fetcher fetcher;
    for (const auto& r : requests) {
        if (!r.log_url || r.log_url->size() < 7 ||
            r.log_url->compare(r.log_url->size() - 7, 7, "/log.gz") != 0)
            continue;
        std::string log;
        try {
            log = fetcher.fetch(*r.log_url, max_log_gz_bytes);
            if (log.rfind("\x1f\x8b", 0) == 0) log = gzip_decompress(log, max_log_bytes);
        } catch (const Error& e) {
            logger.warn("{} on {}: the log is not searched, so the test is not retried: {}", r.package,
                        r.arch, e.what());
            continue;
        }
        if (regex.matches(log)) out.push_back(r);
    }
    return out;
}

std::string read_secret(const std::string& path, const std::string& field) {
    const std::string text = read_file(path);
    std::string secret = trimmed(text.substr(0, text.find('\n')));
    if (secret.empty()) throw ValidationError(field, path, "the file's first line holds no key");
    return secret;
}

std::string resolve_api_key(const std::string& given_key_file, const Environment& environment) {
    std::string key;
    const std::string key_file =
        option_or_setting(given_key_file, environment, "APCLOUD_API_KEY_FILE", "--api-key-file", false);
    if (!key_file.empty()) return read_secret(key_file, "--api-key-file");
    if (auto it = environment.find("APCLOUD_API_KEY"); it != environment.end()) key = trimmed(it->second);
    if (key.empty())
        throw ValidationError("--api-key-file", "",
                              "an API key is needed: give --api-key-file FILE or set APCLOUD_API_KEY_FILE or "
                              "APCLOUD_API_KEY (api_key_file in client.conf)");
    return key;
}

std::vector<SubmitOutcome> submit_requests(const std::string& web_url, const std::string& api_key,
                                           const std::vector<SinkItem>& items,
                                           const std::function<void(const SinkItem&, const SubmitOutcome&)>& report) {
#if APCLOUD_HAVE_SWIFT
    std::string base = web_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    const std::string url = base + "/api/v1/test";
    http::HttpClient client;
    for (const auto& it : items)  // before anything is sent
        if (it.huge)
            throw ValidationError("--bulk", it.request.package,
                                  "the request API has no huge queue: send bulk requests to the broker");
    std::vector<SubmitOutcome> out;
    for (const auto& it : items) {
        out.push_back(submit_one(client, url, api_key, it.request, it.release, it.arch));
        if (report) report(it, out.back());
    }
    return out;
#else
    (void)api_key;
    (void)items;
    (void)report;
    throw ConfigError(
        fmt::format("this build has no HTTP client (built without Swift support): cannot send to {}",
                    quote_for_message(web_url)));
#endif
}

int report_submitted(std::string_view program, const std::vector<SubmitOutcome>& outcomes,
                     const std::vector<SinkItem>& items, std::ostream& out, std::ostream& err) {
    int status = exit_ok;
    for (std::size_t i = 0; i < outcomes.size() && i < items.size(); ++i) {
        const SubmitOutcome& o = outcomes[i];
        const std::string what = fmt::format("{} on {}/{}", items[i].request.package, items[i].release, items[i].arch);
        if (o.status == SubmitOutcome::Status::queued) {
            out << "queued " << what << ": " << o.uuid << " in " << o.queue << "\n";
        } else if (o.status == SubmitOutcome::Status::duplicate) {
            out << "already queued or running " << what << (o.uuid.empty() ? "" : ": " + o.uuid) << "\n";
        } else {
            err << program << ": not queued " << what << ": " << o.message << "\n";
            status = exit_error;
        }
    }
    out.flush();
    return status;
}

std::vector<SubmitOutcome> submit_retries(
    const std::string& web_url, const std::string& api_key, const std::vector<RetryRequest>& requests,
    const std::function<void(const RetryRequest&, const SubmitOutcome&)>& report) {
    std::vector<SinkItem> items;
    for (const auto& r : requests) items.push_back({r.test_request(), r.release, r.arch, false});
    std::size_t i = 0;
    return submit_requests(web_url, api_key, items, [&](const SinkItem&, const SubmitOutcome& o) {
        if (report) report(requests[i], o);
        ++i;
    });
}

ReplayAnswer retry_github_test(const std::string& pr_api_url, const std::string& request_url,
                               const std::string& secret) {
#if APCLOUD_HAVE_SWIFT
    http::HttpClient client;
    http::Request get;
    get.url = pr_api_url;
    get.headers["Accept"] = "application/vnd.github+json";
    get.headers["User-Agent"] = "autopkgtest-cloud retry-github-test";
    const auto pr = client.request(get);
    if (pr.status == 404) throw NotFound(fmt::format("no pull request at {}", pr_api_url));
    if (pr.status != 200)
        throw HttpError(fmt::format("GET {}: HTTP {}: {}", pr_api_url, pr.status, pr.body.substr(0, 200)));
    const std::string payload = github_retry_payload(pr.body);  // Request::body is a view of it
    http::Request post;
    post.method = "POST";
    post.url = request_url;
    post.body = payload;
    post.headers["Content-Type"] = "application/json";
    post.headers["User-Agent"] = "autopkgtest-cloud retry-github-test";
    post.headers["X-GitHub-Event"] = "pull_request";
    post.headers["X-Hub-Signature-256"] = github_signature(post.body, secret);
    post.headers["X-Hub-Signature"] = "sha1=" + detail::hex_hmac("sha1", secret, post.body);
    const auto answer = client.request(post);
    return {answer.status, answer.body};
#else
    (void)pr_api_url, (void)request_url, (void)secret;
    throw ConfigError("this build has no HTTP client (meson option swift)");
#endif
}

}  // namespace apcloud
