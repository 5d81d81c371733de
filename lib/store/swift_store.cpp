// The Swift store: the Store interface over the OpenStack Swift object API (v1 or Keystone v3 auth).
#include "store/swift_store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/request.hpp"
#include "core/digest.hpp"
#include "core/logging.hpp"
#include "core/time_text.hpp"
#include "http/http_client.hpp"
#include "store/files.hpp"

namespace apcloud {

namespace {

using Clock = std::chrono::steady_clock;

// Retries and token renewals, for operators. Never a key or a token.
const detail::Logger logger("swift");

enum class AuthKind { v1, keystone_v3, anonymous };

std::string first_nonempty(std::initializer_list<std::string> values) {
    for (const auto& v : values)
        if (!v.empty()) return v;
    return {};
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Swift quotes the ETag of some objects (manifests); plain objects are bare hex.
std::string normalize_etag(std::string etag) {
    if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
    for (auto& c : etag)
        if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    return etag;
}

// X-Timestamp ("1711026252.12345") in the listing's ISO form, so head() and
// list() agree to the microsecond.
std::optional<std::string> iso_from_x_timestamp(const std::string& ts) {
    auto dot = ts.find('.');
    std::string secs = ts.substr(0, dot), frac = dot == std::string::npos ? "" : ts.substr(dot + 1);
    if (secs.empty() || secs.size() > 15 || secs.find_first_not_of("0123456789") != std::string::npos ||
        frac.find_first_not_of("0123456789") != std::string::npos)
        return std::nullopt;
    frac = (frac + "000000").substr(0, 6);
    return detail::format_iso_time(std::stoll(secs), static_cast<unsigned>(std::stoul(frac)));
}

std::string http_status(int status) {
    const std::string_view t = http::status_reason(status);
    return t.empty() ? fmt::format("HTTP {}", status) : fmt::format("HTTP {} {}", status, t);
}

double parse_number(const Url& url, const std::string& key, double value, double min, double max) {
    auto it = url.query.find(key);
    if (it == url.query.end()) return value;
    char* end = nullptr;
    double v = std::strtod(it->second.c_str(), &end);
    if (it->second.empty() || *end != '\0' || !(v >= min && v <= max))
        throw ConfigError(fmt::format("store URL {}: parameter {}={} is not a number in [{}, {}]",
                                      url.redacted(), key, quote_for_message(it->second), std::to_string(min),
                                      std::to_string(max)));
    return v;
}

// One operation on the storage URL: account-relative container and object.
struct Call {
    const char* method;
    std::string container;
    std::string object;  // empty: the container itself
    std::string query;   // already encoded, without '?'
    http::Headers headers;
    std::string_view body;
    bool has_body = false;
    std::string body_file{};  // not empty: the body is this file's content (http::Request::body_file)
};

// Reads a GET's body as it arrives. Once a piece was handed out nothing is
// retried: a transfer that breaks off, or a body shorter than its
// Content-Length, is a StoreError naming the object.
class SwiftObjectReader final : public ObjectReader {
public:
    SwiftObjectReader(ObjectInfo info, std::unique_ptr<http::ResponseReader> body, std::string what,
                      std::optional<std::uint64_t> length)
        : ObjectReader(std::move(info)), body_(std::move(body)), what_(std::move(what)), length_(length) {}

    bool read(std::string& chunk) override {
        bool more = false;
        try {
            more = body_->read(chunk);
        } catch (const HttpError& e) {
            throw StoreError(
                fmt::format("{}: the transfer broke off after {} bytes: {}", what_, got_, e.what()));
        }
        got_ += chunk.size();
        if (!more && length_ && got_ != *length_)
            throw StoreError(
                fmt::format("{}: the body ended after {} of the {} bytes announced", what_, got_, *length_));
        return more;
    }

private:
    std::unique_ptr<http::ResponseReader> body_;
    std::string what_;
    std::optional<std::uint64_t> length_;  // Content-Length, when the answer had one
    std::uint64_t got_ = 0;
};

class SwiftStore final : public Store {
public:
    SwiftStore(AuthKind kind, std::string endpoint, std::string endpoint_for_messages, StoreCredentials creds,
               SwiftOptions options, std::string region, std::string interface)
        : kind_(kind),
          endpoint_(std::move(endpoint)),
          endpoint_shown_(std::move(endpoint_for_messages)),
          creds_(std::move(creds)),
          options_(options),
          region_(std::move(region)),
          interface_(std::move(interface)),
          http_(client_options(options)) {
        // A public storage URL is the storage URL; others learn it from auth.
        if (kind_ == AuthKind::anonymous) session_.storage_url = endpoint_;
    }

    std::uint64_t auth_count() const {
        std::lock_guard<std::mutex> lock(auth_mutex_);
        return auth_count_;
    }

    void ensure_container(const std::string& container, const ContainerAcl& acl) override {
        check_container_name(container);
        Call c{"PUT", container, {}, {}, {}, {}, true};
        require_credentials(c);
        if (!acl.public_read && acl.read_user.empty())
            c.headers["X-Remove-Container-Read"] = "1";  // only the owner
        else
            c.headers["X-Container-Read"] = acl.swift_read_acl();
        auto r = perform(c);
        if (r.status != 201 && r.status != 202 && r.status != 204) fail(c, r);
    }

    ContainerAcl container_acl(const std::string& container) override {
        check_container_name(container);
        Call c{"HEAD", container, {}, {}, {}, {}, false};
        auto r = perform(c);
        if (r.status == 404 || (anonymous() && (r.status == 401 || r.status == 403))) not_found(c, r);
        if (r.status != 200 && r.status != 204) fail(c, r);
        // Swift shows ACLs to the owner only; that an anonymous HEAD got
        // through is itself the proof that the container is public.
        if (anonymous()) return ContainerAcl::public_container();
        return ContainerAcl::parse(r.header("X-Container-Read").value_or(""));
    }

    ObjectInfo put(const std::string& container, const std::string& name, std::string_view data,
                   const PutOptions& options) override {
        check_container_name(container);
        check_object_name(name);
        Call c{"PUT", container, name, {}, {}, data, true};
        require_credentials(c);
        return put_object(c, detail::hex_digest("md5", data), data.size(), options);
    }

    ObjectInfo put_file(const std::string& container, const std::string& name, const std::string& path,
                        const PutOptions& options) override {
        check_container_name(container);
        check_object_name(name);
        Call c{"PUT", container, name, {}, {}, {}, true};
        require_credentials(c);
        // One pass over the file for the ETag; the HTTP client reads it again
        // while sending it (and once more on every retry).
        const detail::SourceFile source(path);
        detail::Digest md5("md5");
        const std::uint64_t bytes =
            source.read([&](const char* block, std::size_t n) { md5.update(block, n); });
        c.body_file = path;
        return put_object(c, md5.hex(), bytes, options);
    }

    std::optional<Object> get(const std::string& container, const std::string& name) override {
        check_container_name(container);
        check_object_name(name);
        Call c{"GET", container, name, {}, {}, {}, false};
        auto r = perform(c);
        return object_from(c, std::move(r));
    }

    std::unique_ptr<ObjectReader> open_object(const std::string& container,
                                              const std::string& name) override {
        check_container_name(container);
        check_object_name(name);
        Call c{"GET", container, name, {}, {}, {}, false};
        // Retried (and the token renewed) like get(), until the headers are in.
        auto body = perform_with(c, [this](const http::Request& req) { return http_.open(req); });
        const http::Response& r = body->head();
        if (r.status == 404) return nullptr;
        if (r.status != 200) fail(c, r);
        ObjectInfo info = info_from(name, r);
        const std::optional<std::uint64_t> length =
            r.header("Content-Length") ? std::optional<std::uint64_t>(info.bytes) : std::nullopt;
        return std::make_unique<SwiftObjectReader>(std::move(info), std::move(body), describe(c), length);
    }

    std::optional<ObjectInfo> head(const std::string& container, const std::string& name) override {
        check_container_name(container);
        check_object_name(name);
        Call c{"HEAD", container, name, {}, {}, {}, false};
        auto r = perform(c);
        if (r.status == 404) return std::nullopt;
        if (r.status != 200) fail(c, r);
        return info_from(name, r);
    }

    bool remove(const std::string& container, const std::string& name) override {
        check_container_name(container);
        check_object_name(name);
        Call c{"DELETE", container, name, {}, {}, {}, false};
        require_credentials(c);
        auto r = perform(c);
        if (r.status == 404) return false;
        if (r.status != 204 && r.status != 200) fail(c, r);
        return true;
    }

    std::vector<std::string> list_containers() override {
        std::vector<std::string> out;
        for (;;) {
            // Every page but the last is full: a short (or empty) one ends it.
            std::string q = fmt::format("format=json&limit={}", options_.list_page);
            if (!out.empty()) q += "&marker=" + percent_encode(out.back());
            Call c{"GET", {}, {}, std::move(q), {}, {}, false};
            c.headers["Accept"] = "application/json";
            auto r = perform(c);
            if (anonymous() && (r.status == 401 || r.status == 403))
                throw StoreError(fmt::format(
                    "{}: {}: listing containers needs credentials and an auth URL "
                    "(swift+http(s)://host/auth/v1.0 or .../v3); a public storage URL "
                    "(http(s)://host/v1/AUTH_x) reads only the containers it is given the names of",
                    describe(c), http_status(r.status)));
            if (r.status == 204) break;
            if (r.status != 200) fail(c, r);
            std::size_t page = 0;
            for_each_listed(c, r.body, [&](const nlohmann::json& item) {
                out.push_back(item.at("name").get<std::string>());
                ++page;
            });
            if (page < options_.list_page) break;
        }
        std::sort(out.begin(), out.end());
        return out;
    }

    std::vector<ListEntry> list(const std::string& container, const ListOptions& options) override {
        check_container_name(container);
        // 0 and anything above Swift's maximum mean the maximum (Swift itself
        // would answer 412 above it).
        std::size_t limit = options.limit == 0 ? ListOptions::max_list_limit
                                               : std::min(options.limit, ListOptions::max_list_limit);
        // Swift answers a bare 400 to parameters that are not UTF-8 (names
        // are UTF-8, so no prefix cut inside a character can match anyway).
        for (const auto& [field, value] :
             {std::pair<const char*, const std::string&>{"prefix", options.prefix},
              {"marker", options.marker},
              {"end_marker", options.end_marker}})
            if (!is_valid_utf8(value))
                throw ValidationError(field, value, "Swift accepts only UTF-8 listing parameters");
        std::string q = "format=json&limit=" + std::to_string(limit);
        if (!options.prefix.empty()) q += "&prefix=" + percent_encode(options.prefix);
        if (options.delimiter) q += "&delimiter=" + percent_encode(std::string(1, *options.delimiter));
        if (!options.marker.empty()) q += "&marker=" + percent_encode(options.marker);
        if (!options.end_marker.empty()) q += "&end_marker=" + percent_encode(options.end_marker);
        Call c{"GET", container, {}, std::move(q), {}, {}, false};
        c.headers["Accept"] = "application/json";
        auto r = perform(c);
        // Anonymous readers of a missing container get 401 from many
        // deployments (the ACL check comes first); to them it is not there.
        if (r.status == 404 || (anonymous() && (r.status == 401 || r.status == 403))) not_found(c, r);
        if (r.status == 204) return {};
        if (r.status != 200) fail(c, r);
        return parse_listing(c, r.body);
    }

    std::vector<std::optional<Object>> get_many(const std::string& container,
                                                const std::vector<std::string>& names) override {
        check_container_name(container);
        for (const auto& n : names) check_object_name(n);
        std::vector<std::optional<Object>> out(names.size());
        if (names.empty()) return out;
        // Fast path: all GETs concurrently over kept-alive connections. The
        // common answers (200, 404) are final; on 401 (token expired meanwhile)
        // the failed ones get one more concurrent pass with a fresh token.
        std::vector<std::size_t> pending(names.size());
        for (std::size_t i = 0; i < names.size(); ++i) pending[i] = i;
        for (int pass = 0; pass < 2 && !pending.empty(); ++pass) {
            const Session s = session();
            std::vector<http::Request> requests(pending.size());
            for (std::size_t k = 0; k < pending.size(); ++k) {
                requests[k].method = "GET";
                requests[k].url = object_url(s, container, names[pending[k]], {});
                if (!s.token.empty()) requests[k].headers["X-Auth-Token"] = s.token;
            }
            auto outcomes = http_.request_many(requests, options_.concurrency);
            std::vector<std::size_t> again;
            bool unauthorized = false;
            for (std::size_t k = 0; k < pending.size(); ++k) {
                const std::size_t i = pending[k];
                auto& o = outcomes[k];
                if (o.response && (o.response->status == 200 || o.response->status == 404)) {
                    Call c{"GET", container, names[i], {}, {}, {}, false};
                    out[i] = object_from(c, std::move(*o.response));
                } else {
                    unauthorized = unauthorized || (o.response && o.response->status == 401);
                    again.push_back(i);
                }
            }
            pending = std::move(again);
            if (!unauthorized || anonymous()) break;
            invalidate(s.generation);
        }
        // The rest (dropped connections, 5xx ...) one by one through get(),
        // which retries with backoff and throws the precise error.
        for (std::size_t i : pending) out[i] = get(container, names[i]);
        return out;
    }

private:
    struct Session {
        std::string token;
        std::string storage_url;
        std::uint64_t generation = 0;
        std::optional<Clock::time_point> renew_after;
        std::optional<long long> lifetime;  // seconds, as the auth service gave it
    };

    static http::ClientOptions client_options(const SwiftOptions& o) {
        http::ClientOptions c;
        c.timeout = std::chrono::milliseconds(static_cast<long long>(o.timeout * 1000));
        c.validate_certificates = o.verify_tls;
        return c;
    }

    bool anonymous() const { return kind_ == AuthKind::anonymous; }

    std::string describe(const Call& c) const {
        if (c.container.empty()) return fmt::format("{} the account (Swift {})", c.method, endpoint_shown_);
        if (!c.object.empty())
            return fmt::format("{} object {} in container {} (Swift {})", c.method,
                               quote_for_message(c.object), quote_for_message(c.container), endpoint_shown_);
        return fmt::format("{} container {} (Swift {})", c.method, quote_for_message(c.container),
                           endpoint_shown_);
    }

    [[noreturn]] void fail(const Call& c, const http::Response& r) const {
        const char* why = "";
        if (r.status == 401 || r.status == 403)
            why = anonymous() ? " (no credentials: this is a public storage URL)"
                              : " (the credentials do not grant this)";
        throw StoreError(fmt::format("{}: {}{}", describe(c), http_status(r.status), why));
    }

    [[noreturn]] void not_found(const Call& c, const http::Response& r) const {
        throw NotFound(fmt::format("{}: {}: container {} does not exist{}", describe(c),
                                   http_status(r.status), quote_for_message(c.container),
                                   r.status != 404 ? " or is not readable without credentials" : ""));
    }

    void require_credentials(const Call& c) const {
        if (anonymous())
            throw StoreError(fmt::format(
                "{}: a public storage URL (http(s)://host/v1/AUTH_x) allows reads only; writing needs "
                "credentials and an auth URL (swift+http(s)://host/auth/v1.0 or .../v3)",
                describe(c)));
    }

    // PUTs the body `c` carries (bytes or a file) whose MD5 and size are
    // known, and checks the server's answer.
    ObjectInfo put_object(Call& c, const std::string& md5, std::uint64_t bytes, const PutOptions& options) {
        c.headers["Content-Type"] = options.content_type;
        if (options.content_encoding) c.headers["Content-Encoding"] = *options.content_encoding;
        // The server checks the body against this ETag (422 on mismatch), and
        // we check its answer: corruption either way is caught.
        c.headers["ETag"] = md5;
        auto r = perform(c);
        if (r.status == 404) not_found(c, r);
        if (r.status == 422)
            throw StoreError(
                fmt::format("{}: {}: the server received content whose MD5 differs from the one sent",
                            describe(c), http_status(r.status)));
        if (r.status != 201) fail(c, r);
        const std::string returned = normalize_etag(r.header("ETag").value_or(""));
        if (returned != md5)
            throw StoreError(fmt::format("{}: the server answered ETag {} but the content's MD5 is {}",
                                         describe(c), quote_for_message(returned), md5));
        ObjectInfo info;
        info.name = c.object;
        info.bytes = bytes;
        info.etag = md5;
        info.content_type = options.content_type;
        info.content_encoding = options.content_encoding;
        info.last_modified = last_modified(r);
        return info;
    }

    static std::string last_modified(const http::Response& r) {
        if (auto ts = r.header("X-Timestamp"))
            if (auto iso = iso_from_x_timestamp(*ts)) return *iso;
        if (auto lm = r.header("Last-Modified"))
            if (auto t = detail::parse_http_date(*lm)) return detail::format_iso_time(*t);
        return {};
    }

    ObjectInfo info_from(const std::string& name, const http::Response& r) const {
        ObjectInfo info;
        info.name = name;
        auto len = r.header("Content-Length");
        info.bytes = len ? std::strtoull(len->c_str(), nullptr, 10) : r.body.size();
        info.etag = normalize_etag(r.header("ETag").value_or(""));
        info.content_type = r.header("Content-Type").value_or("");
        info.content_encoding = r.header("Content-Encoding");
        info.last_modified = last_modified(r);
        return info;
    }

    std::optional<Object> object_from(const Call& c, http::Response r) const {
        if (r.status == 404) return std::nullopt;
        if (r.status != 200) fail(c, r);
        Object o;
        o.info = info_from(c.object, r);
        o.info.bytes = r.body.size();
        o.data = std::move(r.body);
        return o;
    }

    std::vector<ListEntry> parse_listing(const Call& c, const std::string& body) const {
        std::vector<ListEntry> out;
        for_each_listed(c, body, [&](const nlohmann::json& item) {
            ListEntry e;
            if (item.contains("subdir")) {
                e.name = item.at("subdir").get<std::string>();
                e.subdir = true;
            } else {
                e.name = item.at("name").get<std::string>();
                e.bytes = item.value("bytes", std::uint64_t{0});
                e.etag = normalize_etag(item.value("hash", std::string()));
                e.content_type = item.value("content_type", std::string());
                e.last_modified = item.value("last_modified", std::string());
            }
            out.push_back(std::move(e));
        });
        return out;
    }

    // Calls `each` with every item of a JSON listing (of a container or the
    // account); StoreError when it is not one.
    template <typename Each>
    void for_each_listed(const Call& c, const std::string& body, Each each) const {
        try {
            auto doc = nlohmann::json::parse(body);
            if (!doc.is_array())
                throw StoreError(fmt::format("{}: the listing is not a JSON array", describe(c)));
            for (const auto& item : doc) each(item);
        } catch (const nlohmann::json::exception& e) {
            throw StoreError(
                fmt::format("{}: the listing is not valid Swift JSON: {}", describe(c), e.what()));
        }
    }

    std::string object_url(const Session& s, const std::string& container, const std::string& object,
                           const std::string& query) const {
        // No container: the account itself.
        std::string url = container.empty() ? s.storage_url : s.storage_url + "/" + percent_encode(container);
        if (!object.empty()) url += "/" + percent_encode(object, true);
        if (!query.empty()) url += "?" + query;
        return url;
    }

    // The status and headers of an answer, whole or streamed.
    static const http::Response& head_of(const http::Response& r) { return r; }
    static const http::Response& head_of(const std::unique_ptr<http::ResponseReader>& r) { return r->head(); }

    // Sends a request, retrying connection errors and retryable statuses with
    // exponential backoff; returns the last response (maybe a 5xx after the
    // budget) or throws StoreError when the server could not be reached.
    http::Response send_with_retries(const http::Request& req, const std::string& what) {
        return send_with_retries(req, what, [this](const http::Request& r) { return http_.request(r); });
    }

    // The same with `send` (the client's request() or open()) for one try.
    template <typename Send>
    auto send_with_retries(const http::Request& req, const std::string& what, Send send)
        -> decltype(send(req)) {
        double delay = options_.backoff;
        for (int attempt = 0;; ++attempt) {
            std::optional<decltype(send(req))> resp;
            std::string error;
            try {
                resp = send(req);
            } catch (const HttpError& e) {
                error = e.what();
            }
            const bool retry = !resp || http::retryable_status(head_of(*resp).status);
            if (!retry) return std::move(*resp);
            if (attempt >= options_.retries) {
                if (resp) return std::move(*resp);
                throw StoreError(fmt::format("{}: {} (gave up after {} {})", what, error, attempt + 1,
                                             attempt ? "tries" : "try"));
            }
            const double wait = retry_wait(delay, resp ? &head_of(*resp) : nullptr);
            // `error` names the method and URL (no token: that is a header).
            logger.warn("{}: {}; retry {} of {} in {:.2f} s", what,
                        resp ? http_status(head_of(*resp).status) : error, attempt + 1, options_.retries,
                        wait);
            resp.reset();  // a streamed answer's connection is dropped before the wait
            std::this_thread::sleep_for(std::chrono::duration<double>(wait));
            delay *= 2;
        }
    }

    // Seconds before the next try: the backoff `delay`, or longer when the
    // server says when to come back (Retry-After), within backoff_max.
    double retry_wait(double delay, const http::Response* resp) const {
        double wait = std::min(delay, options_.backoff_max);
        if (resp)
            if (auto ra = resp->header("Retry-After")) {
                char* end = nullptr;
                double v = std::strtod(ra->c_str(), &end);
                if (end != ra->c_str() && *end == '\0' && v > wait) wait = std::min(v, options_.backoff_max);
            }
        return wait;
    }

    http::Response perform(const Call& c) {
        return perform_with(c, [this](const http::Request& req) { return http_.request(req); });
    }

    // Sends the call with `send` (the client's request() or open()), with
    // retries; an expired or revoked token is renewed once and the call
    // repeated.
    template <typename Send>
    auto perform_with(const Call& c, Send send) -> decltype(send(std::declval<const http::Request&>())) {
        bool reauthenticated = false;
        for (;;) {
            const Session s = session();
            http::Request req;
            req.method = c.method;
            req.url = object_url(s, c.container, c.object, c.query);
            req.headers = c.headers;
            if (!s.token.empty()) req.headers["X-Auth-Token"] = s.token;
            req.body = c.body;
            req.has_body = c.has_body;
            req.body_file = c.body_file;
            auto r = send_with_retries(req, describe(c), send);
            // An expired or revoked token: fetch a new one once and repeat.
            if (head_of(r).status == 401 && !anonymous() && !reauthenticated) {
                invalidate(s.generation);
                reauthenticated = true;
                continue;
            }
            return r;
        }
    }

    Session session() {
        std::lock_guard<std::mutex> lock(auth_mutex_);
        if (anonymous()) return session_;
        const bool expiring = session_.renew_after && Clock::now() >= *session_.renew_after;
        if (session_.token.empty() || expiring) {
            const bool first = session_.generation == 0;
            authenticate();
            const std::string lifetime =
                session_.lifetime ? fmt::format("valid for {} s", *session_.lifetime) : "no expiry given";
            if (first)
                logger.debug("{}: logged in ({})", auth_description(), lifetime);
            else
                logger.info("{}: {}; renewed it ({})", auth_description(),
                            expiring ? "the token was about to expire" : "the server refused the token",
                            lifetime);
        }
        return session_;
    }

    void invalidate(std::uint64_t generation) {
        std::lock_guard<std::mutex> lock(auth_mutex_);
        // Only the token that failed: another thread may have renewed it.
        if (session_.generation == generation) session_.token.clear();
    }

    // Who logs in where, for messages and logs (never the key).
    std::string auth_description() const {
        if (kind_ == AuthKind::v1)
            return fmt::format("GET {} (Swift v1 auth as {})", endpoint_shown_,
                               quote_for_message(creds_.user));
        return fmt::format("POST {}/auth/tokens (Keystone v3 auth as {} for project {})", endpoint_shown_,
                           quote_for_message(creds_.user), quote_for_message(creds_.project));
    }

    // Called with auth_mutex_ held, so concurrent callers wait for one login.
    void authenticate() {
        Session fresh;
        if (kind_ == AuthKind::v1)
            v1_login(fresh);
        else
            keystone_login(fresh);
        while (!fresh.storage_url.empty() && fresh.storage_url.back() == '/') fresh.storage_url.pop_back();
        if (fresh.lifetime) {
            // Renew a little early so a request does not start with a token
            // about to lapse; a 401 would still trigger a renewal.
            long long margin = std::min<long long>(60, *fresh.lifetime / 10);
            fresh.renew_after = Clock::now() + std::chrono::seconds(*fresh.lifetime - margin);
        }
        fresh.generation = session_.generation + 1;
        session_ = std::move(fresh);
        ++auth_count_;
    }

    // Swift v1 (tempauth) authentication: GET the auth URL with user and key.
    void v1_login(Session& fresh) {
        http::Request req;
        req.url = endpoint_;
        req.headers["X-Auth-User"] = creds_.user;
        req.headers["X-Auth-Key"] = creds_.key;
        const std::string what = auth_description();
        auto r = send_with_retries(req, what);
        if (r.status < 200 || r.status > 299)
            throw StoreError(fmt::format("{}: {}{}", what, http_status(r.status),
                                         r.status == 401 || r.status == 403 ? ": user or key refused" : ""));
        fresh.token =
            first_nonempty({r.header("X-Auth-Token").value_or(""), r.header("X-Storage-Token").value_or("")});
        fresh.storage_url = r.header("X-Storage-Url").value_or("");
        if (fresh.token.empty() || fresh.storage_url.empty())
            throw StoreError(fmt::format("{}: the answer lacks X-Auth-Token or X-Storage-Url", what));
        if (auto e = r.header("X-Auth-Token-Expires")) {
            char* end = nullptr;
            long long v = std::strtoll(e->c_str(), &end, 10);
            if (end != e->c_str()) fresh.lifetime = v;
        }
    }

    // Keystone v3 password authentication scoped to a project
    // (POST /v3/auth/tokens); the storage URL comes from the catalog.
    void keystone_login(Session& fresh) {
        nlohmann::json body = {
            {"auth",
             {{"identity",
               {{"methods", {"password"}},
                {"password",
                 {{"user",
                   {{"name", creds_.user},
                    {"domain", {{"name", creds_.user_domain}}},
                    {"password", creds_.key}}}}}}},
              {"scope",
               {{"project", {{"name", creds_.project}, {"domain", {{"name", creds_.project_domain}}}}}}}}}};
        const std::string text = body.dump();
        http::Request req;
        req.method = "POST";
        req.url = endpoint_ + "/auth/tokens";
        req.headers["Content-Type"] = "application/json";
        req.headers["Accept"] = "application/json";
        req.body = text;
        req.has_body = true;
        const std::string what = auth_description();
        auto r = send_with_retries(req, what);
        if (r.status != 201 && r.status != 200)
            throw StoreError(
                fmt::format("{}: {}{}", what, http_status(r.status),
                            r.status == 401 ? ": user, password, project or domain refused" : ""));
        fresh.token = r.header("X-Subject-Token").value_or("");
        if (fresh.token.empty()) throw StoreError(fmt::format("{}: the answer lacks X-Subject-Token", what));
        try {
            auto doc = nlohmann::json::parse(r.body);
            const auto& token = doc.at("token");
            if (token.contains("expires_at") && token["expires_at"].is_string())
                if (auto exp = detail::parse_iso_time(token["expires_at"].get<std::string>()))
                    fresh.lifetime = static_cast<long long>(*exp - std::time(nullptr));
            if (token.contains("catalog")) fresh.storage_url = catalog_storage_url(token.at("catalog"));
        } catch (const nlohmann::json::exception& e) {
            throw StoreError(fmt::format("{}: the answer is not a Keystone token: {}", what, e.what()));
        }
        if (fresh.storage_url.empty())
            throw StoreError(fmt::format(
                "{}: the catalog has no {} object-store endpoint{}", what, interface_,
                region_.empty() ? std::string() : fmt::format(" in region {}", quote_for_message(region_))));
    }

    // The URL of the catalog's object-store endpoint with our interface (and
    // region, when one is set); empty when there is none.
    std::string catalog_storage_url(const nlohmann::json& catalog) const {
        for (const auto& service : catalog) {
            if (service.value("type", std::string()) != "object-store") continue;
            for (const auto& ep : service.at("endpoints")) {
                if (ep.value("interface", std::string()) != interface_) continue;
                if (!region_.empty() && ep.value("region", std::string()) != region_ &&
                    ep.value("region_id", std::string()) != region_)
                    continue;
                return ep.at("url").get<std::string>();
            }
        }
        return {};
    }

    const AuthKind kind_;
    const std::string endpoint_;        // auth URL, or the public storage URL
    const std::string endpoint_shown_;  // the same without user info, for messages
    const StoreCredentials creds_;
    const SwiftOptions options_;
    const std::string region_;
    const std::string interface_;
    http::HttpClient http_;
    mutable std::mutex auth_mutex_;
    Session session_;
    std::uint64_t auth_count_ = 0;
};

// Refuses query parameters a Swift store URL does not know (a misspelt one
// would otherwise be ignored).
void check_parameters(const Url& url) {
    static const char* known[] = {"retries",     "backoff",        "backoff_max", "timeout",
                                  "concurrency", "insecure",       "list_page",   "project",
                                  "user_domain", "project_domain", "region",      "interface"};
    for (const auto& [key, value] : url.query)
        if (std::find_if(std::begin(known), std::end(known), [&](const char* k) { return key == k; }) ==
            std::end(known))
            throw ConfigError(
                fmt::format("store URL {}: unknown parameter {}", url.redacted(), quote_for_message(key)));
}

SwiftOptions options_from(const Url& url) {
    SwiftOptions options;
    options.retries = static_cast<int>(parse_number(url, "retries", options.retries, 0, 100));
    options.backoff = parse_number(url, "backoff", options.backoff, 0, 3600);
    options.backoff_max = parse_number(url, "backoff_max", options.backoff_max, 0, 3600);
    options.timeout = parse_number(url, "timeout", options.timeout, 0.001, 86400);
    options.concurrency = static_cast<std::size_t>(parse_number(url, "concurrency", 16, 1, 1024));
    options.verify_tls = parse_number(url, "insecure", 0, 0, 1) == 0;
    options.list_page = static_cast<std::size_t>(parse_number(url, "list_page", 10000, 1, 10000));
    return options;
}

// How a URL with this path (trailing slashes removed) authenticates.
AuthKind auth_kind_of(const Url& url, const std::string& path, bool swift_scheme) {
    if (ends_with(path, "/v2.0"))
        throw ConfigError(
            fmt::format("store URL {}: Keystone v2.0 is not supported, use the v3 URL (path ending in /v3)",
                        url.redacted()));
    if (ends_with(path, "/v3")) return AuthKind::keystone_v3;
    if (ends_with(path, "/auth/v1.0") || ends_with(path, "/auth/v1") || ends_with(path, "/auth"))
        return AuthKind::v1;
    if (swift_scheme) return AuthKind::v1;
    // A plain http(s) URL is a storage URL, whatever its path: Swift's own
    // (/v1/AUTH_x) or one that serves the same API (the web service's /results).
    (void)url;
    return AuthKind::anonymous;
}

// The credentials a login of this kind needs (none for a public storage
// URL); ConfigError naming the URL when they are missing.
StoreCredentials login_credentials(const Url& url, AuthKind kind, const StoreCredentials& credentials) {
    if (kind == AuthKind::anonymous) return {};
    const bool v3 = kind == AuthKind::keystone_v3;
    if (credentials.user.empty() || credentials.key.empty())
        throw ConfigError(
            fmt::format("Swift store {}: no credentials (give user and key in the URL, the configuration, or "
                        "APCLOUD_SWIFT_USER and APCLOUD_SWIFT_KEY{})",
                        url.redacted(), v3 ? " or OS_USERNAME and OS_PASSWORD" : ""));
    if (v3 && credentials.project.empty())
        throw ConfigError(fmt::format(
            "Swift store {}: Keystone v3 needs a project (?project=, the configuration, or OS_PROJECT_NAME)",
            url.redacted()));
    return credentials;
}

}  // namespace

std::unique_ptr<Store> make_swift_store(const Url& url, const StoreCredentials& credentials) {
    const bool swift_scheme = url.scheme == "swift+http" || url.scheme == "swift+https";
    const std::string http_scheme = swift_scheme ? url.scheme.substr(6) : url.scheme;
    if (http_scheme != "http" && http_scheme != "https")
        throw ConfigError(fmt::format("not a Swift URL: {}", url.redacted()));
    check_parameters(url);
    const SwiftOptions options = options_from(url);

    std::string path = url.raw_path;
    while (!path.empty() && path.back() == '/') path.pop_back();
    const std::string host =
        url.host.find(':') != std::string::npos ? fmt::format("[{}]", url.host) : url.host;
    const std::string origin = url.port ? fmt::format("{}://{}:{}", http_scheme, host, *url.port)
                                        : fmt::format("{}://{}", http_scheme, host);
    const std::string shown = origin + path;

    const AuthKind kind = auth_kind_of(url, path, swift_scheme);
    StoreCredentials creds = login_credentials(url, kind, credentials);
    auto interface = url.query.find("interface");
    const std::string region = kind == AuthKind::keystone_v3 ? credentials.region : std::string();
    return std::make_unique<SwiftStore>(
        kind, origin + path, shown, std::move(creds), options, region,
        first_nonempty({interface == url.query.end() ? std::string() : interface->second, "public"}));
}

std::uint64_t swift_auth_count(const Store& store) {
    auto* s = dynamic_cast<const SwiftStore*>(&store);
    return s ? s->auth_count() : 0;
}

}  // namespace apcloud
