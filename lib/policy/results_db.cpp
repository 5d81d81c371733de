// Gating from a downloaded results database (SPEC.md section 6): checksum
// verification, britney's `run_id > ?` query, and the download itself.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

#include "apcloud_config.h"
#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/exit_codes.hpp"
#include "autopkgtest_cloud/file_io.hpp"
#include "autopkgtest_cloud/gating.hpp"
#include "autopkgtest_cloud/result.hpp"
#include "autopkgtest_cloud/url.hpp"
#include "core/digest.hpp"
#if APCLOUD_HAVE_SWIFT
#include "http/http_client.hpp"
#endif

namespace apcloud {

namespace {

// The SHA-256 of a file's content as lowercase hex.
std::string file_sha256(const std::string& path) {
    auto digest = detail::file_hex_digest("sha256", path);
    if (!digest) throw NotFound(fmt::format("results database {} does not exist", quote_for_message(path)));
    return *digest;
}

// The digest a checksum file announces: its first word, 64 hex digits
// (lowercased). The rest (`sha256sum`'s "  name") is ignored.
std::string announced_sha256(const std::string& sha256_path) {
    auto text = read_file_if_exists(sha256_path);
    if (!text) throw NotFound(fmt::format("checksum file {} does not exist", quote_for_message(sha256_path)));
    const auto start = text->find_first_not_of(" \t\r\n");
    std::string word = start == std::string::npos
                           ? std::string()
                           : text->substr(start, text->find_first_of(" \t\r\n", start) - start);
    bool ok = word.size() == 64;
    for (char& c : word) {
        ok = ok && std::isxdigit(static_cast<unsigned char>(c));
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (!ok)
        throw ParseError(fmt::format("checksum file {} does not start with a SHA-256 (64 hex digits): got {}",
                                     quote_for_message(sha256_path), quote_for_message(word)));
    return word;
}

// An SQLite URI for opening `path` read-only without creating -wal/-shm
// files beside it (a downloaded database does not change while we read it).
std::string readonly_uri(const std::string& path) {
    std::string uri = "file:";
    for (unsigned char c : path) {
        if (c == '%' || c == '?' || c == '#' || c < 0x20) {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            uri += buf;
        } else {
            uri += static_cast<char>(c);
        }
    }
    return uri + "?mode=ro&immutable=1";
}

std::optional<std::string> optional_text(const SQLite::Column& c) {
    if (c.isNull()) return std::nullopt;
    return c.getString();
}

}  // namespace

void verify_results_db(const std::string& db_path, const std::string& sha256_path) {
    const std::string want = announced_sha256(sha256_path);
    const std::string have = file_sha256(db_path);
    if (want != have)
        throw IntegrityError(fmt::format("results database {} has SHA-256 {} but {} says {}",
                                         quote_for_message(db_path), have, quote_for_message(sha256_path),
                                         want));
}

CollectedResults collect_db_results(const std::string& db_path, const std::string& release,
                                    const std::string& arch, const std::string& package,
                                    const std::optional<std::string>& after_run_id,
                                    const std::optional<std::string>& sha256_path) {
    if (::access(db_path.c_str(), F_OK) != 0)
        throw NotFound(fmt::format("results database {} does not exist", quote_for_message(db_path)));
    if (sha256_path) verify_results_db(db_path, *sha256_path);
    CollectedResults out;
    try {
        SQLite::Database db(readonly_uri(db_path), SQLite::OPEN_READONLY | SQLite::OPEN_URI);
        SQLite::Statement q(db,
                            "SELECT r.run_id, r.exitcode, r.version, r.triggers, r.duration "
                            "FROM test AS t JOIN result AS r ON t.id = r.test_id "
                            "WHERE t.release = ? AND t.arch = ? AND t.package = ? AND r.run_id > ? "
                            "ORDER BY r.run_id");
        q.bind(1, release);
        q.bind(2, arch);
        q.bind(3, package);
        q.bind(4, after_run_id.value_or(""));
        while (q.executeStep()) {
            GatingResult g;
            g.run_id = q.getColumn(0).getString();
            const auto& code = q.getColumn(1);
            if (g.run_id.empty() || code.isNull()) {
                ++out.corrupt;
                continue;
            }
            g.exitcode = code.getInt();
            g.outcome = std::string(outcome_name(outcome(g.exitcode)));
            g.version = optional_text(q.getColumn(2));
            // A NULL or blank column is a run without triggers, like a
            // result.tar without ADT_TEST_TRIGGERS.
            if (auto t = optional_text(q.getColumn(3)); t && !split_triggers(*t).empty())
                g.triggers = split_triggers(*t);
            const auto& duration = q.getColumn(4);
            if (!duration.isNull() && duration.getInt64() >= 0)
                g.duration = static_cast<std::uint64_t>(duration.getInt64());
            out.results.push_back(std::move(g));
        }
    } catch (const SQLite::Exception& e) {
        throw ParseError(fmt::format("results database {} cannot be queried (not an autopkgtest.db?): {}",
                                     quote_for_message(db_path), e.what()));
    }
    return out;
}

namespace {

// Copies a file:// source into `dest` (not fsynced).
void copy_local(const std::string& source, const std::string& dest) {
    auto content = read_file_if_exists(source);
    if (!content) throw NotFound(fmt::format("{} does not exist", quote_for_message(source)));
    int fd = ::open(dest.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw SystemError(errno, "create", dest);
    try {
        write_all(fd, *content, dest);
    } catch (...) {
        ::close(fd);
        throw;
    }
    if (::close(fd) != 0) throw SystemError(errno, "close", dest);
}

#if APCLOUD_HAVE_SWIFT
// GETs `url` into `dest`, retrying transport errors and 5xx/408/429 answers;
// returns the answer (2xx, or 304 when `etag` still matches).
http::Response fetch_http(http::HttpClient& client, const std::string& url, const std::string& dest, int retries,
                          double backoff, const std::optional<std::string>& etag = std::nullopt) {
    std::string last;
    for (int attempt = 0;; ++attempt) {
        bool retryable = true;
        try {
            http::Request req;
            req.url = url;
            if (etag) req.headers["If-None-Match"] = "\"" + *etag + "\"";
            auto resp = client.download(req, dest);
            if ((resp.status >= 200 && resp.status <= 299) || resp.status == 304) return resp;
            if (resp.status == 404)
                throw NotFound(fmt::format("{} does not exist (HTTP 404)", quote_for_message(url)));
            retryable = http::retryable_status(resp.status);
            last = "HTTP " + std::to_string(resp.status);
        } catch (const HttpError& e) {
            last = e.what();
        }
        if (!retryable || attempt >= retries)
            throw HttpError(fmt::format("cannot download {} after {} attempt(s): {}", quote_for_message(url),
                                        attempt + 1, last));
        std::this_thread::sleep_for(std::chrono::duration<double>(backoff * (1 << std::min(attempt, 10))));
    }
}

// The web service's answer names the database's SHA-256 (ETag, X-Checksum-Sha256):
// one request is enough to verify, and a poll with the local copy's checksum costs a
// 304. Other servers (a plain web server) get the .sha256 file fetched as well.
// False when the local copy is current.
bool fetch_over_http(const std::string& url, const std::string& path, const std::string& temp_db,
                     const std::string& temp_sum, int retries, double backoff) {
    http::HttpClient client;
    std::optional<std::string> local;
    if (auto sum = read_file_if_exists(path + ".sha256"); sum && ::access(path.c_str(), R_OK) == 0)
        local = sum->substr(0, sum->find_first_of(" \t\r\n"));
    auto resp = fetch_http(client, url, temp_db, retries, backoff, local);
    if (resp.status == 304) return false;
    if (auto sha = resp.header("X-Checksum-Sha256"); sha && sha->size() == 64) {
        int fd = ::open(temp_sum.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) throw SystemError(errno, "create", temp_sum);
        write_all(fd, *sha, temp_sum);
        ::close(fd);
        return true;
    }
    fetch_http(client, url + ".sha256", temp_sum, retries, backoff);
    return true;
}
#endif

}  // namespace

void download_results_db(const std::string& url, const std::string& path, int retries, double backoff) {
    const std::string temp_db = path + ".new";
    const std::string temp_sum = path + ".sha256.new";
    Url u = parse_url(url);
    struct Cleanup {
        std::string a, b;
        ~Cleanup() {
            ::unlink(a.c_str());
            ::unlink(b.c_str());
        }
    } cleanup{temp_db, temp_sum};
    if (u.scheme == "file") {
        copy_local(u.path, temp_db);
        copy_local(u.path + ".sha256", temp_sum);
    } else if (u.scheme == "http" || u.scheme == "https") {
#if APCLOUD_HAVE_SWIFT
        if (!fetch_over_http(url, path, temp_db, temp_sum, retries, backoff)) return;  // unchanged
#else
        (void)retries;
        (void)backoff;
        throw ConfigError(
            fmt::format("this build has no HTTP client (built without Swift support): cannot download {}",
                        quote_for_message(u.redacted())));
#endif
    } else {
        throw ConfigError(fmt::format("results database URL must be http(s):// or file://, got {}",
                                      quote_for_message(u.redacted())));
    }
    verify_results_db(temp_db, temp_sum);
    fsync_file(temp_db);
    fsync_file(temp_sum);
    if (std::rename(temp_db.c_str(), path.c_str()) != 0)
        throw SystemError(errno, "rename the download to", path);
    if (std::rename(temp_sum.c_str(), (path + ".sha256").c_str()) != 0)
        throw SystemError(errno, "rename the download to", fmt::format("{}.sha256", path));
}

}  // namespace apcloud
