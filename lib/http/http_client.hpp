// A small HTTP/1.1 client with keep-alive connection pools (private header, free of cpprest types).
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/http_types.hpp"

namespace apcloud::http {

/// One request. `url` is absolute (`http(s)://host[:port]/path?query`) and
/// already percent-encoded: it is sent exactly as given, so callers encode
/// object names themselves (apcloud::percent_encode(name, true)).
struct Request {
    std::string method = "GET";
    std::string url;
    Headers headers;
    /// The body; not copied, so the bytes must outlive the call that sends it.
    std::string_view body;
    /// Send a body (with Content-Length, even when empty) although `body` is
    /// empty: PUT and POST need it, GET and HEAD must not have one.
    bool has_body = false;
    /// When not empty, the body is the content of this file instead of
    /// `body`: read while it is sent (never whole into memory), with its size
    /// when the request starts as Content-Length. Every call that sends the
    /// request opens the file anew, so a retry sends it from the start.
    /// SystemError naming the file when it cannot be opened; the file must
    /// not change while it is sent.
    std::string body_file;
};

/// An answer: any status, including 4xx and 5xx (those are not errors here).
struct Response {
    int status = 0;
    Headers headers;
    std::string body;

    /// The header's value, or nullopt when absent.
    std::optional<std::string> header(std::string_view name) const;
};

/// An answer whose body is read piece by piece as it arrives
/// (HttpClient::open): status and headers are known at once, the body is
/// pulled with read(). The client reads ahead at most about
/// ResponseReader::buffer_limit bytes: while the reader is not read, nothing
/// more is taken from the connection (backpressure; a pause longer than the
/// client's timeout makes the transfer fail). Destroying the reader before
/// the end abandons the exchange: the connection is closed, not reused. Not
/// thread-safe: one thread reads it at a time.
class ResponseReader {
public:
    /// How much of the body the client holds, at most, ahead of read()
    /// (plus one piece of the connection's, 64 kB).
    static constexpr std::size_t buffer_limit = 1024 * 1024;

    ~ResponseReader();
    ResponseReader(const ResponseReader&) = delete;
    ResponseReader& operator=(const ResponseReader&) = delete;

    /// The status and headers; its body is empty (read() gives it).
    const Response& head() const noexcept;
    /// Replaces `chunk` with the next piece of the body (never empty), waiting
    /// until it arrives, and returns true; at the end empties `chunk` and
    /// returns false. Throws HttpError naming the method and URL when the
    /// transfer fails (connection reset, timeout ...).
    bool read(std::string& chunk);

private:
    friend class HttpClient;
    struct Impl;
    explicit ResponseReader(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

/// The outcome of one of several concurrent requests: a response, or the
/// message of the transport error (connection refused, reset, timeout ...).
struct Outcome {
    std::optional<Response> response;
    std::string error;  ///< empty when `response` is set
};

/// Client settings.
struct ClientOptions {
    /// Longest wait for connecting, sending or receiving (each step).
    std::chrono::milliseconds timeout{std::chrono::seconds(30)};
    /// Verify TLS certificates (https).
    bool validate_certificates = true;
};

/// An HTTP client keeping one connection pool per scheme://host:port, so
/// consecutive requests to a host reuse kept-alive connections. Safe to use
/// from several threads at once. Transport failures throw HttpError naming
/// the method and URL; HTTP statuses (even 5xx) are returned, not thrown.
/// A body file that cannot be opened throws SystemError (not a transport
/// failure: retrying does not help).
class HttpClient {
public:
    explicit HttpClient(ClientOptions options = {});
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    /// Sends one request and waits for the whole response.
    Response request(const Request& request);

    /// Sends one request and returns as soon as the status and headers of
    /// the answer are in; its body is read from the returned reader as it
    /// arrives, never whole into memory. Transport errors before the headers
    /// throw HttpError (as request() does), later ones come from read().
    std::unique_ptr<ResponseReader> open(const Request& request);

    /// Sends one request and streams the body of the answer into the file
    /// `path` (created or truncated, not fsynced) as it arrives, so large
    /// downloads need no buffer of their size. A non-2xx answer is returned
    /// with (the first 64 kB of) its body and the file removed; so is the file
    /// on a transport error (HttpError).
    Response download(const Request& request, const std::string& path);
    /// Sends all requests with at most `concurrency` in flight at a time
    /// (asynchronously, without a thread per request) and returns their
    /// outcomes in the order of `requests`. Never throws for one request's
    /// transport error: that request's Outcome carries it.
    std::vector<Outcome> request_many(const std::vector<Request>& requests, std::size_t concurrency);

    /// The settings this client was made with.
    const ClientOptions& options() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// True for answers worth retrying after a pause: 5xx, 408 (timeout) and 429
/// (too many requests).
bool retryable_status(int status) noexcept;

/// Splits an absolute URL into its origin (`http://host:port`) and the rest
/// (`/path?query`, "/" when empty). Throws HttpError when it is not http(s).
std::pair<std::string, std::string> split_origin(std::string_view url);

}  // namespace apcloud::http
