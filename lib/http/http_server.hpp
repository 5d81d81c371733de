// A small HTTP/1.1 server behind our own interface (private header; Boost.Beast stays in the .cpp):
// keep-alive, size limits and timeouts, graceful stop, an access log with timings. Handlers are
// plain functions of a ServerRequest, so tests call them without sockets.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/http_types.hpp"

namespace apcloud::http {

/// One request as a handler sees it.
struct ServerRequest {
    std::string method;    ///< "GET", "POST", ... (HEAD is given to handlers as HEAD)
    std::string target;    ///< as received: percent-encoded path and query
    std::string path;      ///< the path, percent-decoded ("/packages/gedit")
    std::string raw_path;  ///< the path as received (still percent-encoded)
    /// Query parameters in order (repeatable: `arch=a&arch=b`), decoded
    /// (`+` is a space, as in HTML forms).
    std::vector<std::pair<std::string, std::string>> query;
    Headers headers;
    std::string body;
    std::string remote;  ///< peer address

    /// The first value of query parameter `name`, if present.
    std::optional<std::string> param(std::string_view name) const;
    /// Every value of query parameter `name`, in order.
    std::vector<std::string> params(std::string_view name) const;
    /// The header's value, if present.
    std::optional<std::string> header(std::string_view name) const;
};

/// Produces a streamed body piece by piece: fills `chunk` and returns true,
/// or returns false at the end. Called on the server's thread, one call
/// after the other, while the client reads.
using BodyProducer = std::function<bool(std::string& chunk)>;

/// A handler's answer.
struct ServerResponse {
    int status = 200;
    Headers headers;        ///< Content-Type, ETag, Cache-Control, ...
    std::string body;       ///< the body, unless `file` or `producer` is set
    std::string file;       ///< send this file (streamed from disk) as the body
    BodyProducer producer;  ///< stream the body (chunked transfer encoding)

    /// A response with a text body and its content type.
    static ServerResponse text(int status, std::string body,
                               std::string content_type = "text/plain; charset=utf-8");
};

/// Handles a request; never called concurrently for one connection, but
/// concurrently across connections. An exception becomes a 500 (logged,
/// never shown to the client).
using Handler = std::function<ServerResponse(const ServerRequest&)>;

/// Server settings.
struct ServerOptions {
    std::string address = "127.0.0.1";        ///< address to listen on
    std::uint16_t port = 8080;                ///< 0: any free port (see Server::port)
    int threads = 4;                          ///< threads serving connections
    std::size_t max_body_bytes = 1 << 20;     ///< larger request bodies are refused (413)
    std::size_t max_header_bytes = 16 << 10;  ///< larger request heads are refused (431)
    std::chrono::seconds header_timeout{10};  ///< to receive a request's head
    std::chrono::seconds body_timeout{60};    ///< to receive its body / send the response
    std::chrono::seconds idle_timeout{30};    ///< a kept-alive connection waiting for its next request
    std::size_t max_connections = 1024;       ///< more are refused at once
    bool access_log = true;                   ///< log one line per request with its timing
};

/// A running server. Listens from construction to stop() (or destruction).
class Server {
public:
    /// Binds and starts serving with `handler`; throws Error when the address
    /// cannot be bound (naming it).
    Server(ServerOptions options, Handler handler);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    /// The port listened on (the chosen one when options.port was 0).
    std::uint16_t port() const noexcept;

    /// Stops accepting, lets requests in progress finish (up to `grace`),
    /// closes idle connections, and returns when every thread has ended.
    void stop(std::chrono::milliseconds grace = std::chrono::seconds(10));

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// Splits a query string into decoded (name, value) pairs; `+` is a space.
/// Throws ParseError for a bad percent escape.
std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query);

}  // namespace apcloud::http
