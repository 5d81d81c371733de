// The HTTP server on Boost.Beast (asynchronous, a few threads on one io_context). Beast and Asio
// stay in this file: everything else sees http_server.hpp's own types.
#include "http/http_server.hpp"

#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <mutex>
#include <set>
#include <thread>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/url.hpp"
#include "core/logging.hpp"

namespace apcloud::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

const detail::Logger logger("http");

std::string decode_component(std::string_view s, bool plus_is_space) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '+' && plus_is_space) {
            out += ' ';
        } else if (c == '%') {
            auto hex = [](char h) -> int {
                if (h >= '0' && h <= '9') return h - '0';
                if (h >= 'a' && h <= 'f') return h - 'a' + 10;
                if (h >= 'A' && h <= 'F') return h - 'A' + 10;
                return -1;
            };
            int hi = i + 2 < s.size() ? hex(s[i + 1]) : -1, lo = i + 2 < s.size() ? hex(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                throw ParseError(fmt::format("bad percent escape in {}", quote_for_message(s)));
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query) {
    std::vector<std::pair<std::string, std::string>> out;
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view item = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        if (item.empty()) continue;
        auto eq = item.find('=');
        out.emplace_back(
            decode_component(item.substr(0, eq), true),
            eq == std::string_view::npos ? std::string() : decode_component(item.substr(eq + 1), true));
    }
    return out;
}

std::optional<std::string> ServerRequest::param(std::string_view name) const {
    for (const auto& [k, v] : query)
        if (k == name) return v;
    return std::nullopt;
}

std::vector<std::string> ServerRequest::params(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : query)
        if (k == name) out.push_back(v);
    return out;
}

std::optional<std::string> ServerRequest::header(std::string_view name) const {
    auto it = headers.find(name);
    if (it == headers.end()) return std::nullopt;
    return it->second;
}

ServerResponse ServerResponse::text(int status, std::string body, std::string content_type) {
    ServerResponse r;
    r.status = status;
    r.body = std::move(body);
    r.headers["Content-Type"] = std::move(content_type);
    return r;
}

namespace {

class Session;

// What every session shares: settings, handler, and the registry stop() uses.
struct Shared {
    ServerOptions options;
    Handler handler;
    std::atomic<bool> stopping{false};
    std::atomic<std::size_t> connections{0};
    std::mutex mutex;
    std::set<Session*> sessions;
};

// Builds the handler's view of a parsed request.
ServerRequest to_server_request(const bhttp::request<bhttp::string_body>& req, const std::string& remote) {
    ServerRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    std::string_view target = r.target;
    auto q = target.find('?');
    r.raw_path = std::string(target.substr(0, q));
    r.path = decode_component(r.raw_path, false);
    if (q != std::string_view::npos) r.query = parse_query(target.substr(q + 1));
    for (const auto& field : req) r.headers[std::string(field.name_string())] = std::string(field.value());
    r.body = req.body();
    r.remote = remote;
    return r;
}

// One connection: read a request, answer it, repeat while kept alive.
class Session : public std::enable_shared_from_this<Session> {
public:
    Session(tcp::socket socket, std::shared_ptr<Shared> shared)
        : stream_(std::move(socket)), shared_(std::move(shared)) {
        beast::error_code ec;
        auto ep = stream_.socket().remote_endpoint(ec);
        remote_ = ec ? std::string("?") : ep.address().to_string();
        std::lock_guard<std::mutex> lock(shared_->mutex);
        shared_->sessions.insert(this);
    }
    ~Session() {
        std::lock_guard<std::mutex> lock(shared_->mutex);
        shared_->sessions.erase(this);
        --shared_->connections;
    }

    void start() { read_header(shared_->options.header_timeout); }

    // A strong reference, or null when the session is being destroyed.
    std::shared_ptr<Session> shared() { return weak_from_this().lock(); }

    // From stop(): an idle connection closes now; a busy one after its response.
    void close_if_idle() {
        asio::post(stream_.get_executor(), [self = shared_from_this()] {
            beast::error_code ec;
            if (self->idle_) self->stream_.socket().close(ec);
        });
    }

private:
    void read_header(std::chrono::seconds timeout) {
        idle_ = true;
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(shared_->options.max_header_bytes));
        parser_->body_limit(shared_->options.max_body_bytes);
        stream_.expires_after(timeout);
        bhttp::async_read_header(
            stream_, buffer_, *parser_,
            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
    }

    void on_header(beast::error_code ec) {
        idle_ = false;
        if (ec) return fail_read(ec);
        started_ = Clock::now();
        stream_.expires_after(shared_->options.body_timeout);
        bhttp::async_read(
            stream_, buffer_, *parser_,
            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_body(ec); });
    }

    // A request that could not be read: answer what the client should know, else just close.
    void fail_read(beast::error_code ec) {
        if (ec == bhttp::error::header_limit) return refuse(431, "request head too large");
        if (ec == bhttp::error::body_limit) return refuse(413, "request body too large");
        const bool http_error = ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category();
        if (http_error && ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message)
            return refuse(400, "malformed request");
        close();
    }

    void refuse(int status, const char* why) {
        ServerResponse r = ServerResponse::text(status, std::string(why) + "\n");
        keep_alive_ = false;
        write(r, "-", "-");
    }

    void on_body(beast::error_code ec) {
        if (ec) return fail_read(ec);
        const auto& req = parser_->get();
        keep_alive_ = req.keep_alive() && !shared_->stopping;
        ServerRequest request;
        ServerResponse response;
        try {
            request = to_server_request(req, remote_);
            response = shared_->handler(request);
        } catch (const ParseError& e) {
            response = ServerResponse::text(400, std::string("bad request: ") + e.what() + "\n");
        } catch (const std::exception& e) {
            logger.error("{} {}: handler failed: {}", request.method, request.target, e.what());
            response = ServerResponse::text(500, "internal error\n");
        }
        head_ = req.method() == bhttp::verb::head;
        write(response, std::string(req.method_string()), std::string(req.target()));
    }

    template <class Body>
    void fill(bhttp::response<Body>& res, const ServerResponse& r) {
        res.result(static_cast<unsigned>(r.status));
        res.version(11);
        for (const auto& [k, v] : r.headers) res.set(k, v);
        res.keep_alive(keep_alive_);
    }

    void write(ServerResponse& r, const std::string& method, const std::string& target) {
        keep_alive_ = keep_alive_ && !shared_->stopping;  // a stopping server says so
        method_ = method;
        target_ = target;
        status_ = r.status;
        if (r.producer) return write_stream(r);
        if (!r.file.empty()) return write_file(r);
        auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
        fill(*res, r);
        bytes_ = r.body.size();
        res->body() = std::move(r.body);
        res->prepare_payload();
        if (head_) res->body().clear();  // Content-Length stays that of the GET
        send(res);
    }

    void write_file(ServerResponse& r) {
        auto res = std::make_shared<bhttp::response<bhttp::file_body>>();
        beast::error_code ec;
        res->body().open(r.file.c_str(), beast::file_mode::scan, ec);
        if (ec) {
            logger.error("cannot open {} for {}: {}", r.file, target_, ec.message());
            ServerResponse missing = ServerResponse::text(404, "not found\n");
            r = std::move(missing);
            return write(r, method_, target_);
        }
        fill(*res, r);
        res->prepare_payload();
        bytes_ = res->body().size();
        if (head_) {
            auto empty = std::make_shared<bhttp::response<bhttp::empty_body>>();
            fill(*empty, r);
            empty->content_length(bytes_);
            return send(empty);
        }
        send(res);
    }

    // Chunked, written synchronously on this thread: a producer may block (a
    // proxied download), and its pace is the client's.
    void write_stream(ServerResponse& r) {
        bhttp::response<bhttp::empty_body> res;
        fill(res, r);
        res.chunked(!head_);
        beast::error_code ec;
        auto& sock = stream_.socket();
        const timeval tv{static_cast<time_t>(shared_->options.body_timeout.count()), 0};
        ::setsockopt(sock.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        bhttp::response_serializer<bhttp::empty_body> sr(res);
        bhttp::write_header(sock, sr, ec);
        std::string chunk;
        try {
            while (!ec && !head_ && r.producer(chunk)) {
                if (chunk.empty()) continue;
                bytes_ += chunk.size();
                asio::write(sock, bhttp::make_chunk(asio::buffer(chunk)), ec);
            }
            if (!ec && !head_) asio::write(sock, bhttp::make_chunk_last(), ec);
        } catch (const std::exception& e) {
            // The head is sent: all that is left is to cut the connection short.
            logger.error("{} {}: streaming failed after {} bytes: {}", method_, target_, bytes_, e.what());
            keep_alive_ = false;
        }
        if (ec) keep_alive_ = false;
        after_write(ec);
    }

    template <class Message>
    void send(std::shared_ptr<Message> res) {
        stream_.expires_after(shared_->options.body_timeout);
        bhttp::async_write(
            stream_, *res,
            [self = shared_from_this(), res](beast::error_code ec, std::size_t) { self->after_write(ec); });
    }

    void after_write(beast::error_code ec) {
        if (shared_->options.access_log && method_ != "-") {
            const double ms = std::chrono::duration<double, std::milli>(Clock::now() - started_).count();
            logger.info("{} {} {} {} {}B {:.1f}ms", remote_, method_, target_, status_, bytes_, ms);
        }
        if (ec || !keep_alive_ || shared_->stopping) return close();
        bytes_ = 0;
        head_ = false;
        read_header(shared_->options.idle_timeout);
    }

    void close() {
        beast::error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
        stream_.socket().close(ec);
    }

    beast::tcp_stream stream_;
    std::shared_ptr<Shared> shared_;
    beast::flat_buffer buffer_;
    std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
    std::string remote_, method_, target_;
    int status_ = 0;
    std::size_t bytes_ = 0;
    bool keep_alive_ = true, head_ = false;
    std::atomic<bool> idle_{true};
    Clock::time_point started_ = Clock::now();
};

}  // namespace

struct Server::Impl {
    std::shared_ptr<Shared> shared = std::make_shared<Shared>();
    asio::io_context ioc;
    tcp::acceptor acceptor{ioc};
    // The acceptor's handlers and its close() run on this strand only: an
    // accept completing while stop() closes the acceptor would race on it.
    asio::strand<asio::io_context::executor_type> accept_strand{ioc.get_executor()};
    std::vector<std::thread> threads;
    std::uint16_t port = 0;
    bool stopped = false;

    void accept() {
        acceptor.async_accept(asio::make_strand(ioc), asio::bind_executor(accept_strand, [this](beast::error_code ec,
                                                                                               tcp::socket socket) {
            if (ec) {
                if (ec != asio::error::operation_aborted) logger.warn("accept failed: {}", ec.message());
                if (!acceptor.is_open()) return;
            } else if (shared->connections >= shared->options.max_connections) {
                logger.warn("refusing a connection: {} open already", shared->connections.load());
                socket.close(ec);
            } else {
                ++shared->connections;
                std::make_shared<Session>(std::move(socket), shared)->start();
            }
            accept();
        }));
    }
};

Server::Server(ServerOptions options, Handler handler) : impl_(std::make_unique<Impl>()) {
    impl_->shared->options = std::move(options);
    impl_->shared->handler = std::move(handler);
    const auto& o = impl_->shared->options;
    beast::error_code ec;
    auto address = asio::ip::make_address(o.address, ec);
    if (ec)
        throw ConfigError(
            fmt::format("cannot listen on {}: not an IP address", quote_for_message(o.address)));
    tcp::endpoint endpoint(address, o.port);
    auto& acc = impl_->acceptor;
    acc.open(endpoint.protocol(), ec);
    if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acc.bind(endpoint, ec);
    if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw Error(fmt::format("cannot listen on {}:{}: {}", o.address, o.port, ec.message()));
    impl_->port = acc.local_endpoint().port();
    impl_->accept();
    for (int i = 0; i < std::max(1, o.threads); ++i)
        impl_->threads.emplace_back([this] { impl_->ioc.run(); });
}

Server::~Server() {
    stop(std::chrono::seconds(2));
}

std::uint16_t Server::port() const noexcept {
    return impl_->port;
}

void Server::stop(std::chrono::milliseconds grace) {
    if (impl_->stopped) return;
    impl_->stopped = true;
    auto& shared = *impl_->shared;
    shared.stopping = true;
    asio::post(impl_->accept_strand, [this] {
        beast::error_code ec;
        impl_->acceptor.close(ec);
    });
    const auto deadline = Clock::now() + grace;
    for (;;) {
        // Strong references taken under the lock, used and dropped outside it:
        // the last one may destroy a session, which takes the lock itself.
        std::vector<std::shared_ptr<Session>> open;
        {
            std::lock_guard<std::mutex> lock(shared.mutex);
            if (shared.sessions.empty()) break;
            for (Session* s : shared.sessions)
                if (auto sp = s->shared()) open.push_back(std::move(sp));
        }
        for (auto& s : open) s->close_if_idle();
        open.clear();
        if (Clock::now() >= deadline) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    impl_->ioc.stop();
    for (auto& t : impl_->threads) t.join();
}

}  // namespace apcloud::http
