// Tests of the HTTP server over real sockets on loopback: keep-alive, limits,
// malformed requests, HEAD, files and streamed bodies, handler errors, timeouts
// and a graceful stop.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

#include <autopkgtest_cloud/error.hpp>

#include "http/http_server.hpp"
#include "temp_dir.hpp"

using namespace apcloud::http;
using namespace std::chrono_literals;

namespace {

// A raw client connection: what is sent is exactly what a test writes.
class Conn {
public:
    explicit Conn(std::uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        timeval tv{10, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~Conn() { ::close(fd_); }
    void send(const std::string& s) {
        std::size_t done = 0;
        while (done < s.size()) {
            ssize_t n = ::send(fd_, s.data() + done, s.size() - done, MSG_NOSIGNAL);
            if (n <= 0) return;  // the server may close early (a refused request)
            done += static_cast<std::size_t>(n);
        }
    }
    // Everything until the peer closes (or the timeout).
    std::string read_all() {
        std::string out;
        char buf[65536];
        for (;;) {
            ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) return out;
            out.append(buf, static_cast<std::size_t>(n));
        }
    }
    // One response with a Content-Length body (none for a HEAD).
    std::string read_response(bool head = false) {
        std::string out;
        char c;
        while (out.find("\r\n\r\n") == std::string::npos && ::recv(fd_, &c, 1, 0) == 1) out += c;
        auto pos = out.find("Content-Length: ");
        std::size_t len = pos == std::string::npos ? 0 : std::stoul(out.substr(pos + 16));
        if (head || out.rfind("HTTP/1.1 304", 0) == 0 ||
            out.find("\r\nContent-Length: ") == std::string::npos)
            len = 0;
        std::string body(len, '\0');
        std::size_t got = 0;
        while (got < len) {
            ssize_t n = ::recv(fd_, body.data() + got, len - got, 0);
            if (n <= 0) break;
            got += static_cast<std::size_t>(n);
        }
        return out + body.substr(0, got);
    }

private:
    int fd_;
};

ServerOptions options() {
    ServerOptions o;
    o.port = 0;
    o.threads = 2;
    o.max_body_bytes = 1000;
    o.max_header_bytes = 2000;
    o.header_timeout = 2s;
    o.idle_timeout = 1s;
    o.access_log = false;
    return o;
}

std::string get(const std::string& target, const std::string& extra = "") {
    return "GET " + target + " HTTP/1.1\r\nHost: x\r\n" + extra + "\r\n";
}

}  // namespace

TEST_CASE("requests reach the handler decoded, and keep-alive serves several on one connection") {
    std::atomic<int> calls{0};
    Server server(options(), [&](const ServerRequest& r) {
        ++calls;
        return ServerResponse::text(200, r.method + " " + r.path + " " + r.param("q").value_or("-") + " " +
                                             std::to_string(r.params("a").size()) + " " + r.body);
    });
    Conn c(server.port());
    c.send(get("/p%20ath?q=a+b&a=1&a=2"));
    auto first = c.read_response();
    CHECK(first.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(first.find("GET /p ath a b 2 ") != std::string::npos);
    c.send("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    CHECK(c.read_response().find("POST /x - 0 hello") != std::string::npos);
    CHECK(calls == 2);
}

TEST_CASE("oversized bodies are 413, oversized heads 431, garbage 400: the handler never sees them") {
    std::atomic<int> calls{0};
    Server server(options(), [&](const ServerRequest&) {
        ++calls;
        return ServerResponse::text(200, "ok");
    });
    {
        Conn c(server.port());
        c.send("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + std::string(5000, 'x'));
        CHECK(c.read_all().rfind("HTTP/1.1 413", 0) == 0);
    }
    {
        Conn c(server.port());
        c.send(get("/x", "X-Big: " + std::string(5000, 'y') + "\r\n"));
        CHECK(c.read_all().rfind("HTTP/1.1 431", 0) == 0);
    }
    {
        Conn c(server.port());
        c.send("THIS IS NOT HTTP\r\n\r\n");
        CHECK(c.read_all().rfind("HTTP/1.1 400", 0) == 0);
    }
    {
        Conn c(server.port());
        c.send(get("/bad%zzescape"));
        CHECK(c.read_response().rfind("HTTP/1.1 400", 0) == 0);
    }
    CHECK(calls == 0);
}

TEST_CASE("a handler's exception is a 500 that shows nothing of it") {
    Server server(options(),
                  [](const ServerRequest&) -> ServerResponse { throw std::runtime_error("secret detail"); });
    Conn c(server.port());
    c.send(get("/"));
    auto r = c.read_response();
    CHECK(r.rfind("HTTP/1.1 500", 0) == 0);
    CHECK(r.find("secret detail") == std::string::npos);
}

TEST_CASE("HEAD keeps the length of GET without a body; files and streamed bodies are sent whole") {
    test::TempDir d;
    const std::string file = (d.path / "big.bin").string();
    std::ofstream(file) << std::string(300000, 'f');
    Server server(options(), [&](const ServerRequest& r) {
        ServerResponse out;
        if (r.path == "/file") {
            out.file = file;
        } else if (r.path == "/stream") {
            auto n = std::make_shared<int>(0);
            out.producer = [n](std::string& chunk) {
                if (*n == 3) return false;
                chunk = "piece" + std::to_string((*n)++) + ";";
                return true;
            };
        } else {
            out = ServerResponse::text(200, "hello");
        }
        return out;
    });
    {
        Conn c(server.port());
        c.send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
        c.send(get("/"));
        auto head = c.read_response(true);
        CHECK(head.find("Content-Length: 5\r\n") != std::string::npos);
        CHECK(head.substr(head.find("\r\n\r\n") + 4).empty());
        CHECK(c.read_response().find("\r\n\r\nhello") !=
              std::string::npos);  // the next one on the same connection
    }
    {
        Conn c(server.port());
        c.send(get("/file", "Connection: close\r\n"));
        auto r = c.read_all();
        CHECK(r.find("Content-Length: 300000\r\n") != std::string::npos);
        CHECK(r.size() - (r.find("\r\n\r\n") + 4) == 300000);
    }
    {
        Conn c(server.port());
        c.send(get("/stream", "Connection: close\r\n"));
        auto r = c.read_all();
        CHECK(r.find("Transfer-Encoding: chunked") != std::string::npos);
        CHECK(r.find("piece0;") != std::string::npos);
        CHECK(r.find("piece2;") != std::string::npos);
        REQUIRE(r.size() >= 5);
        CHECK(r.substr(r.size() - 5) == "0\r\n\r\n");
    }
}

TEST_CASE(
    "an idle kept-alive connection is closed after the idle timeout; a silent client after the head "
    "timeout") {
    Server server(options(), [](const ServerRequest&) { return ServerResponse::text(200, "x"); });
    Conn c(server.port());
    c.send(get("/"));
    c.read_response();
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(c.read_all().empty());  // closed by the server
    const auto waited = std::chrono::steady_clock::now() - t0;
    CHECK(waited >= 900ms);
    CHECK(waited < 5s);
    Conn silent(server.port());
    const auto t1 = std::chrono::steady_clock::now();
    CHECK(silent.read_all().empty());
    CHECK(std::chrono::steady_clock::now() - t1 < 6s);
}

TEST_CASE("stop lets a request in progress finish, and then no new connection is served") {
    std::atomic<bool> started{false};
    auto server = std::make_unique<Server>(options(), [&](const ServerRequest&) {
        started = true;
        std::this_thread::sleep_for(800ms);
        return ServerResponse::text(200, "finished");
    });
    const auto port = server->port();
    Conn busy(port);
    busy.send(get("/slow"));
    while (!started) std::this_thread::sleep_for(10ms);
    std::thread stopper([&] { server->stop(5s); });
    const std::string answer = busy.read_all();
    stopper.join();
    CHECK(answer.find("finished") != std::string::npos);
    CHECK(answer.find("Connection: close") != std::string::npos);
    // The port no longer answers.
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0);
    ::close(fd);
}

TEST_CASE("a port in use is a clear error naming it") {
    Server first(options(), [](const ServerRequest&) { return ServerResponse::text(200, "x"); });
    ServerOptions o = options();
    o.port = first.port();
    try {
        Server second(o, [](const ServerRequest&) { return ServerResponse::text(200, "x"); });
        FAIL("bound a port in use");
    } catch (const apcloud::Error& e) {
        CHECK(std::string(e.what()).find(std::to_string(first.port())) != std::string::npos);
    }
}
