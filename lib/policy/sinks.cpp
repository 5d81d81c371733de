// Request sinks for gating code: a broker (routed, validated, stamped) or a
// file of `<queue>:<src> <json>` lines.
#include "autopkgtest_cloud/sinks.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <ostream>
#include <random>
#include <set>

#include "autopkgtest_cloud/broker.hpp"
#include "autopkgtest_cloud/client.hpp"
#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/routing.hpp"
#include "autopkgtest_cloud/tool.hpp"
#include "autopkgtest_cloud/url.hpp"

namespace apcloud {

// ---- request sinks ----

RequestSink::~RequestSink() = default;

std::optional<TestComplete> RequestSink::send_and_wait(const TestRequest&, const std::string&,
                                                       const std::string&, bool, std::chrono::seconds) {
    throw ConfigError("this request sink cannot wait for results (only broker sinks can)");
}

std::vector<SendResult> RequestSink::send_many(const std::vector<SinkItem>& items) {
    std::vector<SendResult> out(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) {
        const SinkItem& it = items[i];
        out[i].sent = stamped(it.request);
        try {
            out[i].queue = send(out[i].sent, it.release, it.arch, it.huge);
            out[i].result.queued = true;
        } catch (const NotFound& e) {
            out[i].result.no_queue = true;
            out[i].result.error = e.what();
        } catch (const Error& e) {
            out[i].result.error = e.what();
        }
    }
    return out;
}

int report_sent(std::string_view program, const std::vector<SendResult>& results, std::ostream& out,
                std::ostream& err) {
    int status = exit_ok;
    for (const auto& r : results) {
        if (r.result.queued) {
            out << sink_line(r.queue, r.sent) << "\n";
            continue;
        }
        err << program << ": not queued: " << r.result.error << "\n";
        const int mine = r.queue.empty() ? exit_bad_input : r.result.no_queue ? exit_not_found : exit_error;
        if (status == exit_ok || mine == exit_error) status = mine;
    }
    out.flush();
    return status;
}

std::string sink_line(const std::string& queue, const TestRequest& request) {
    std::string msg = request.to_message();
    auto nl = msg.find('\n');
    if (nl == std::string::npos) return queue + ":" + msg;
    return queue + ":" + msg.substr(0, nl) + " " + msg.substr(nl + 1);
}

namespace {

// A random (version 4) RFC 4122 uuid.
std::string random_uuid() {
    std::random_device rd;
    unsigned char b[16];
    for (auto& x : b) x = static_cast<unsigned char>(rd());
    b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
    b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
    return fmt::format(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:"
        "02x}",
        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

}  // namespace

TestRequest stamped(const TestRequest& request) {
    TestRequest r = request;
    if (!r.submit_time) r.submit_time = format_submit_time(std::time(nullptr));
    if (!r.uuid) r.uuid = random_uuid();
    return r;
}

namespace {

class BrokerSink : public RequestSink {
public:
    BrokerSink(std::unique_ptr<Broker> broker, bool declare, ValidationOptions options)
        : broker_(std::move(broker)), declare_(declare), options_(options) {}
    std::string send(const TestRequest& request, const std::string& release, const std::string& arch,
                     bool huge) override {
        declare(request, release, arch, huge);
        return submit_request(*broker_, stamped(request), release, arch, huge, options_);
    }
    std::vector<SendResult> send_many(const std::vector<SinkItem>& items) override {
        std::vector<SendResult> out(items.size());
        std::vector<Publication> messages;
        std::vector<std::size_t> sent;  // out index of each message
        std::set<std::string> declared;
        for (std::size_t i = 0; i < items.size(); ++i) {
            const SinkItem& it = items[i];
            out[i].sent = stamped(it.request);
            try {
                validate(out[i].sent, options_);
                out[i].queue = queue_for(out[i].sent, it.release, it.arch, it.huge);
                if (declare_ && declared.insert(out[i].queue).second) broker_->declare_queue(out[i].queue);
            } catch (const Error& e) {
                out[i].result.error = e.what();
                continue;
            }
            messages.push_back({out[i].queue, out[i].sent.to_message()});
            sent.push_back(i);
        }
        auto results = broker_->publish_many(messages);
        for (std::size_t k = 0; k < sent.size(); ++k) out[sent[k]].result = std::move(results[k]);
        return out;
    }
    std::optional<TestComplete> send_and_wait(const TestRequest& request, const std::string& release,
                                              const std::string& arch, bool huge,
                                              std::chrono::seconds timeout) override {
        declare(request, release, arch, huge);
        return submit_and_wait(*broker_, stamped(request), release, arch, huge, timeout, options_);
    }

private:
    void declare(const TestRequest& request, const std::string& release, const std::string& arch, bool huge) {
        if (!declare_) return;
        validate(request, options_);
        broker_->declare_queue(queue_for(request, release, arch, huge));
    }

    std::unique_ptr<Broker> broker_;
    bool declare_;
    ValidationOptions options_;
};

// Appends one line per request with a single write() on an O_APPEND file, so
// lines from concurrent senders do not interleave.
class FileSink : public RequestSink {
public:
    FileSink(std::string path, ValidationOptions options) : path_(std::move(path)), options_(options) {}
    std::string send(const TestRequest& request, const std::string& release, const std::string& arch,
                     bool huge) override {
        validate(request, options_);
        std::string queue = queue_for(request, release, arch, huge);
        std::string line = sink_line(queue, stamped(request)) + "\n";
        int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) throw SystemError(errno, "open sink file", path_);
        ssize_t n = ::write(fd, line.data(), line.size());
        int err = errno;
        ::close(fd);
        if (n < 0) throw SystemError(err, "append to sink file", path_);
        if (n != static_cast<ssize_t>(line.size()))
            throw Error(fmt::format("cannot append to sink file {}: short write", quote_for_message(path_)));
        return queue;
    }

private:
    std::string path_;
    ValidationOptions options_;
};

}  // namespace

std::unique_ptr<RequestSink> open_sink(const std::string& url, bool declare_queues,
                                       const ValidationOptions& options, const Environment& env) {
    Url u = parse_url(url);
    if (u.scheme == "file") {
        if (!u.host.empty() || u.path.empty() || u.path[0] != '/')
            throw ConfigError(
                fmt::format("file sink URL must be file:///absolute/path, got {}", quote_for_message(url)));
        return std::make_unique<FileSink>(u.path, options);
    }
    if (u.scheme == "sqlite" || u.scheme == "amqp" || u.scheme == "amqps")
        return std::make_unique<BrokerSink>(open_broker(url, {}, env), declare_queues, options);
    throw ConfigError(fmt::format("unsupported sink URL {} (expected file://, sqlite:// or amqp(s)://)",
                                  quote_for_message(u.redacted())));
}

}  // namespace apcloud
