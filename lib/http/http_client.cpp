// The HTTP client on cpprestsdk: a pooled client per origin, streamed answers, cpprest errors as HttpError.
#include "http/http_client.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <unordered_map>

#include <cpprest/filestream.h>
#include <cpprest/http_client.h>
#include <cpprest/rawptrstream.h>

#include "autopkgtest_cloud/error.hpp"

namespace apcloud::http {

namespace {

std::string describe(const Request& r) {
    return fmt::format("{} {}", r.method, r.url);
}

// The message of whatever a cpprest task threw, for an HttpError.
std::string current_error_text() {
    try {
        throw;
    } catch (const web::http::http_exception& e) {
        // cpprest words a timeout as the step that was cut short.
        if (e.error_code() == std::errc::timed_out) return fmt::format("timed out: {}", e.what());
        return e.what();
    } catch (const web::uri_exception& e) {
        return fmt::format("invalid URL: {}", e.what());
    } catch (const pplx::task_canceled&) {
        return "request canceled";
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "unknown error";
    }
}

// The Content-Type a request's body is sent with.
std::string content_type_of(const Request& r) {
    auto ct = r.headers.find("Content-Type");
    return ct == r.headers.end() ? "application/octet-stream" : ct->second;
}

// Opens a request's body file as a stream cpprest reads while sending, and
// its size for Content-Length.
std::pair<concurrency::streams::istream, std::uint64_t> open_body_file(const std::string& path) {
    // Opened here first for the errno of a missing or unreadable file, which
    // cpprest's stream would not tell.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw SystemError(errno, "open the request body", path);
    struct stat st {};
    const int err = ::fstat(fd, &st) == 0 ? 0 : errno;
    ::close(fd);
    if (err != 0) throw SystemError(err, "stat the request body", path);
    if (!S_ISREG(st.st_mode))
        throw SystemError(S_ISDIR(st.st_mode) ? EISDIR : EINVAL, "send (not a regular file)", path);
    try {
        auto in = concurrency::streams::file_stream<uint8_t>::open_istream(
                      utility::conversions::to_string_t(path), std::ios::in | std::ios::binary)
                      .get();
        return {in, static_cast<std::uint64_t>(st.st_size)};
    } catch (...) {
        throw HttpError(fmt::format("cannot open the request body {}: {}", quote_for_message(path),
                                    current_error_text()));
    }
}

// Runs `exchange` (the sending of `request` and the wait for its answer),
// rethrowing what cpprest throws as HttpError naming the method and URL.
template <typename Exchange>
auto translating_errors(const Request& request, Exchange exchange) -> decltype(exchange()) {
    try {
        return exchange();
    } catch (const HttpError&) {
        throw;
    } catch (const SystemError&) {
        throw;  // the body file: not the exchange's fault
    } catch (...) {
        throw HttpError(fmt::format("{}: {}", describe(request), current_error_text()));
    }
}

// The most read() hands out at once: what has arrived, up to this much.
constexpr std::size_t max_piece = 256 * 1024;

// The body of a streamed response on its way from cpprest to a
// ResponseReader: cpprest's connection writes into it (it is the response
// stream), the reader takes from it. It holds about
// ResponseReader::buffer_limit bytes at most: the write that fills it
// completes only once the reader has taken enough, and cpprest reads nothing
// more from the socket until its write completes. cpprest's own default
// stream (producer_consumer_buffer) would accept the whole body, however
// slowly it is read. Write-only for cpprest: its read side is never used.
class BodyPipe final : public concurrency::streams::details::streambuf_state_manager<uint8_t> {
    using Base = concurrency::streams::details::streambuf_state_manager<uint8_t>;

public:
    BodyPipe() : Base(std::ios_base::out) {}

    // Waits for the next piece of the body and moves it into `chunk` (with
    // whatever else has arrived, up to max_piece); false at the end, with
    // `error` the failure's message when the exchange failed.
    bool take(std::string& chunk, std::string& error) {
        std::optional<pplx::task_completion_event<size_t>> room;
        size_t waiting = 0;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            ready_.wait(lock, [&] { return !pieces_.empty() || finished_; });
            if (pieces_.empty()) {
                chunk.clear();
                error = error_;
                return false;
            }
            chunk = std::move(pieces_.front());
            pieces_.pop_front();
            while (!pieces_.empty() && chunk.size() + pieces_.front().size() <= max_piece) {
                chunk += pieces_.front();
                pieces_.pop_front();
            }
            queued_ -= chunk.size();
            if (room_ && queued_ < ResponseReader::buffer_limit) {
                room = std::move(room_);
                room_.reset();
                waiting = waiting_;
            }
        }
        // Outside the lock: the continuation (cpprest's next socket read)
        // may run right here.
        if (room) room->set(waiting);
        return true;
    }

    // The exchange is over: `error` empty when the whole body was written.
    void finish(std::string error) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            finished_ = true;
            error_ = std::move(error);
        }
        ready_.notify_all();
    }

    // The reader is gone: writes are refused from now on (the one waiting
    // too), so cpprest fails the exchange and closes its connection itself,
    // on its own thread.
    void abandon() {
        std::optional<pplx::task_completion_event<size_t>> room;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            abandoned_ = true;
            pieces_.clear();
            queued_ = 0;
            room = std::move(room_);
            room_.reset();
        }
        if (room) room->set_exception(std::make_exception_ptr(gone()));
    }

    bool can_seek() const override { return false; }
    bool has_size() const override { return false; }
    size_t buffer_size(std::ios_base::openmode) const override { return 0; }
    void set_buffer_size(size_t, std::ios_base::openmode) override {}
    size_t in_avail() const override { return 0; }
    pos_type getpos(std::ios_base::openmode) const override { return static_cast<pos_type>(traits::eof()); }
    pos_type seekpos(pos_type, std::ios_base::openmode) override {
        return static_cast<pos_type>(traits::eof());
    }
    pos_type seekoff(off_type, std::ios_base::seekdir, std::ios_base::openmode) override {
        return static_cast<pos_type>(traits::eof());
    }
    bool acquire(uint8_t*& ptr, size_t& count) override {
        ptr = nullptr;
        count = 0;
        return false;
    }
    void release(uint8_t*, size_t) override {}

protected:
    using Base::_putn;

    // Takes a copy of the bytes at once; the task completes when there is
    // room for more.
    pplx::task<size_t> _putn(const uint8_t* ptr, size_t count) override {
        std::lock_guard<std::mutex> lock(mutex_);
        if (abandoned_) return pplx::task_from_exception<size_t>(gone());
        pieces_.emplace_back(reinterpret_cast<const char*>(ptr), count);
        queued_ += count;
        ready_.notify_all();
        if (queued_ < ResponseReader::buffer_limit) return pplx::task_from_result(count);
        room_.emplace();
        waiting_ = count;
        return pplx::create_task(*room_);
    }
    pplx::task<int_type> _putc(uint8_t ch) override {
        return _putn(&ch, 1).then([ch](size_t) { return static_cast<int_type>(ch); });
    }
    pplx::task<bool> _sync() override { return pplx::task_from_result(true); }
    uint8_t* _alloc(size_t) override { return nullptr; }
    void _commit(size_t) override {}
    // The read side, unused.
    pplx::task<int_type> _bumpc() override { return pplx::task_from_result<int_type>(traits::eof()); }
    int_type _sbumpc() override { return traits::eof(); }
    pplx::task<int_type> _getc() override { return pplx::task_from_result<int_type>(traits::eof()); }
    int_type _sgetc() override { return traits::eof(); }
    pplx::task<int_type> _nextc() override { return pplx::task_from_result<int_type>(traits::eof()); }
    pplx::task<int_type> _ungetc() override { return pplx::task_from_result<int_type>(traits::eof()); }
    pplx::task<size_t> _getn(uint8_t*, size_t) override { return pplx::task_from_result<size_t>(0); }
    size_t _scopy(uint8_t*, size_t) override { return 0; }

private:
    static std::runtime_error gone() { return std::runtime_error("the reader of the response is gone"); }

    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<std::string> pieces_;
    size_t queued_ = 0;                                        // bytes in pieces_
    std::optional<pplx::task_completion_event<size_t>> room_;  // the write waiting for room
    size_t waiting_ = 0;                                       // its size
    bool finished_ = false;
    bool abandoned_ = false;
    std::string error_;
};

}  // namespace

struct ResponseReader::Impl {
    std::string what;  // method and URL, for messages
    Response head;
    std::shared_ptr<BodyPipe> pipe = std::make_shared<BodyPipe>();
    bool ended = false;
    std::string error;  // the transfer's failure, once read() met it

    // An exchange still running ends at its next write into the pipe (or the
    // one waiting for room). No cancellation token: cancelling closes the
    // socket from this thread while cpprest's threads may be using it (the
    // clean-clone CI crashed once with SIGSEGV in a test that drops readers
    // midway); a stalled server's connection ends at the client's timeout.
    ~Impl() { pipe->abandon(); }
};

ResponseReader::ResponseReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ResponseReader::~ResponseReader() = default;

const Response& ResponseReader::head() const noexcept {
    return impl_->head;
}

bool ResponseReader::read(std::string& chunk) {
    if (!impl_->error.empty()) throw HttpError(impl_->error);
    if (impl_->ended) {
        chunk.clear();
        return false;
    }
    std::string error;
    if (impl_->pipe->take(chunk, error)) return true;
    impl_->ended = true;
    if (error.empty()) return false;
    impl_->error = fmt::format("{}: {}", impl_->what, error);
    throw HttpError(impl_->error);
}

std::optional<std::string> Response::header(std::string_view name) const {
    auto it = headers.find(name);
    if (it == headers.end()) return std::nullopt;
    return it->second;
}

bool retryable_status(int status) noexcept {
    return status >= 500 || status == 408 || status == 429;
}

std::pair<std::string, std::string> split_origin(std::string_view url) {
    auto scheme_end = url.find("://");
    std::string_view scheme =
        scheme_end == std::string_view::npos ? std::string_view() : url.substr(0, scheme_end);
    if (scheme != "http" && scheme != "https")
        throw HttpError(fmt::format("not an http(s) URL: {}", quote_for_message(url)));
    auto path_start = url.find_first_of("/?", scheme_end + 3);
    if (path_start == scheme_end + 3)
        throw HttpError(fmt::format("URL has no host: {}", quote_for_message(url)));
    if (path_start == std::string_view::npos) return {std::string(url), "/"};
    std::string rest(url.substr(path_start));
    if (rest.front() == '?') rest.insert(rest.begin(), '/');
    return {std::string(url.substr(0, path_start)), rest};
}

struct HttpClient::Impl {
    ClientOptions options;
    std::mutex mutex;
    // cpprest clients are thread-safe and each keeps its own pool of
    // kept-alive connections, so one per origin, created on first use.
    std::unordered_map<std::string, std::shared_ptr<web::http::client::http_client>> clients;

    std::shared_ptr<web::http::client::http_client> client_for(const std::string& origin) {
        std::lock_guard<std::mutex> lock(mutex);
        auto& c = clients[origin];
        if (!c) {
            web::http::client::http_client_config config;
            config.set_timeout(options.timeout);
            config.set_validate_certificates(options.validate_certificates);
            c = std::make_shared<web::http::client::http_client>(web::uri(origin), config);
        }
        return c;
    }

    // Starts one request; the task yields the response once its headers are in.
    // With `sink`, cpprest writes the body there as it arrives instead of
    // buffering it.
    pplx::task<web::http::http_response> start(const Request& r,
                                               const concurrency::streams::ostream* sink = nullptr) {
        auto [origin, rest] = split_origin(r.url);
        auto client = client_for(origin);
        web::http::http_request req(r.method);
        req.set_request_uri(web::uri(rest));
        for (const auto& [name, value] : r.headers) req.headers().add(name, value);
        if (!r.body_file.empty()) {
            // cpprest reads the file in chunks as it sends them.
            auto [in, size] = open_body_file(r.body_file);
            req.set_body(in, size, content_type_of(r));
        } else if (r.has_body || !r.body.empty()) {
            // A raw pointer stream: the body is sent from the caller's bytes
            // without a copy (Request::body must outlive the call).
            auto in = concurrency::streams::rawptr_stream<uint8_t>::open_istream(
                reinterpret_cast<const uint8_t*>(r.body.data()), r.body.size());
            req.set_body(in, r.body.size(), content_type_of(r));
        }
        if (sink) req.set_response_stream(*sink);
        return client->request(req);
    }

    // Starts one request; the task yields the whole response. May throw
    // synchronously (bad URL) or through the task (transport errors).
    pplx::task<Response> send(const Request& r) {
        return start(r)
            .then([](web::http::http_response resp) { return resp.content_ready(); })
            .then([](web::http::http_response resp) { return whole_response(resp); });
    }

    // A response whose body has arrived, as a Response.
    static Response whole_response(web::http::http_response& resp) {
        Response out = head_of(resp);
        // Read the raw bytes: no charset conversion (extract_string would
        // convert latin1) and no decompression of objects stored with
        // Content-Encoding: gzip.
        auto buf = resp.body().streambuf();
        std::size_t have = 0;
        for (;;) {
            const std::size_t avail = buf.in_avail();
            if (avail == 0) break;
            out.body.resize(have + avail);
            const std::size_t got = buf.getn(reinterpret_cast<uint8_t*>(&out.body[have]), avail).get();
            have += got;
            if (got == 0) break;
        }
        out.body.resize(have);
        return out;
    }

    // The status and headers of a response.
    static Response head_of(const web::http::http_response& resp) {
        Response out;
        out.status = resp.status_code();
        for (const auto& [name, value] : resp.headers()) out.headers[name] = value;
        return out;
    }
};

HttpClient::HttpClient(ClientOptions options) : impl_(std::make_unique<Impl>()) {
    impl_->options = options;
}

HttpClient::~HttpClient() = default;

const ClientOptions& HttpClient::options() const noexcept {
    return impl_->options;
}

Response HttpClient::request(const Request& request) {
    return translating_errors(request, [&] { return impl_->send(request).get(); });
}

std::unique_ptr<ResponseReader> HttpClient::open(const Request& request) {
    auto reader = std::make_unique<ResponseReader::Impl>();
    reader->what = describe(request);
    translating_errors(request, [&] {
        const concurrency::streams::ostream sink(concurrency::streams::streambuf<uint8_t>(reader->pipe));
        auto resp = impl_->start(request, &sink).get();
        reader->head = Impl::head_of(resp);
        // The end of the body (or the failure of its transfer) reaches the
        // reader through the pipe.
        resp.content_ready().then([pipe = reader->pipe](pplx::task<web::http::http_response> t) {
            try {
                t.get();
                pipe->finish({});
            } catch (...) {
                pipe->finish(current_error_text());
            }
        });
    });
    return std::unique_ptr<ResponseReader>(new ResponseReader(std::move(reader)));
}

Response HttpClient::download(const Request& request, const std::string& path) {
    // The body goes straight into the file as it arrives (no buffer of its size).
    std::optional<concurrency::streams::ostream> file;
    try {
        file = concurrency::streams::fstream::open_ostream(utility::conversions::to_string_t(path),
                                                           std::ios::out | std::ios::binary | std::ios::trunc)
                   .get();
    } catch (...) {
        throw HttpError(fmt::format("cannot write {}: {}", quote_for_message(path), current_error_text()));
    }
    Response out;
    try {
        auto resp = impl_->start(request, &*file).get();
        resp.content_ready().get();
        file->close().get();
        out = Impl::head_of(resp);
    } catch (...) {
        try {
            file->close().get();
        } catch (...) {
        }
        ::unlink(path.c_str());
        throw HttpError(
            fmt::format("{} to {}: {}", describe(request), quote_for_message(path), current_error_text()));
    }
    if (out.status < 200 || out.status > 299) {
        // An error page: return (the start of) it and leave no file behind.
        std::ifstream in(path, std::ios::binary);
        out.body.assign(64 * 1024, '\0');
        in.read(out.body.data(), static_cast<std::streamsize>(out.body.size()));
        out.body.resize(static_cast<std::size_t>(in.gcount()));
        ::unlink(path.c_str());
    }
    return out;
}

std::vector<Outcome> HttpClient::request_many(const std::vector<Request>& requests, std::size_t concurrency) {
    if (requests.empty()) return {};
    // Shared with the continuations; `requests` outlives them because this
    // function waits until every request has finished.
    struct State {
        Impl* impl;
        const std::vector<Request>* requests;
        std::mutex mutex;
        std::condition_variable all_done;
        std::size_t next = 0;
        std::size_t done = 0;
        std::vector<Outcome> out;

        // Records request i's outcome; returns the next index to start, or
        // npos when none is left (each finished request starts one more, so
        // `concurrency` stay in flight until the list runs out).
        std::size_t finish(std::size_t i, Outcome outcome) {
            std::lock_guard<std::mutex> lock(mutex);
            out[i] = std::move(outcome);
            if (++done == requests->size()) all_done.notify_all();
            return next < requests->size() ? next++ : std::string::npos;
        }

        static void launch(const std::shared_ptr<State>& self, std::size_t i) {
            // A loop, not recursion, for requests that fail before starting.
            while (i != std::string::npos) {
                const Request& r = (*self->requests)[i];
                try {
                    self->impl->send(r).then([self, i](pplx::task<Response> t) {
                        Outcome o;
                        try {
                            o.response = t.get();
                        } catch (...) {
                            o.error =
                                fmt::format("{}: {}", describe((*self->requests)[i]), current_error_text());
                        }
                        launch(self, self->finish(i, std::move(o)));
                    });
                    return;
                } catch (...) {
                    i = self->finish(
                        i, Outcome{std::nullopt, fmt::format("{}: {}", describe(r), current_error_text())});
                }
            }
        }
    };
    auto state = std::make_shared<State>();
    state->impl = impl_.get();
    state->requests = &requests;
    state->out.resize(requests.size());
    const std::size_t first = std::min(std::max<std::size_t>(concurrency, 1), requests.size());
    state->next = first;
    for (std::size_t i = 0; i < first; ++i) State::launch(state, i);
    std::unique_lock<std::mutex> lock(state->mutex);
    state->all_done.wait(lock, [&] { return state->done == requests.size(); });
    return std::move(state->out);
}

}  // namespace apcloud::http
