/// @file sinks.hpp
/// Where gating code sends test requests: a broker or a file.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <chrono>

#include "autopkgtest_cloud/broker.hpp"
#include "autopkgtest_cloud/credentials.hpp"
#include "autopkgtest_cloud/events.hpp"
#include "autopkgtest_cloud/request.hpp"

namespace apcloud {

/// One request of RequestSink::send_many.
struct SinkItem {
    TestRequest request;
    std::string release;
    std::string arch;
    bool huge = false;
};

/// What RequestSink::send_many did with one request.
struct SendResult {
    std::string queue;     ///< where it was sent (empty when it is invalid)
    TestRequest sent;      ///< the request as sent (stamped)
    PublishResult result;  ///< queued, or why not (an invalid request names the field)
};

/// Where gating code sends test requests.
class RequestSink {
public:
    virtual ~RequestSink();
    /// Validates and sends `request` for release/arch, with `submit-time` set
    /// to now (UTC) and a random `uuid` unless the request has them; returns
    /// the queue name.
    virtual std::string send(const TestRequest& request, const std::string& release, const std::string& arch,
                             bool huge = false) = 0;
    /// Sends every request as send does, each on its own: an invalid
    /// request, or one whose queue is missing, is not sent and the others
    /// are. Broker sinks publish them all with pipelined confirms
    /// (Broker::publish_many); results are in the order of `items`.
    virtual std::vector<SendResult> send_many(const std::vector<SinkItem>& items);
    /// Like send, then waits up to `timeout` for the request's testcomplete
    /// event (subscribed before sending, so it cannot be missed); nullopt on
    /// timeout. Only broker sinks can wait: others throw ConfigError.
    virtual std::optional<TestComplete> send_and_wait(const TestRequest& request, const std::string& release,
                                                      const std::string& arch, bool huge,
                                                      std::chrono::seconds timeout);
};

/// The request as sent: stamped with the current UTC time as `submit-time`
/// and a random uuid, unless it has them (SPEC.md section 1: britney records
/// the time; the uuid names the request for status, cancel and at-most-once
/// storage).
TestRequest stamped(const TestRequest& request);

/// Formats a file-sink line (no newline): `<queue>:<src> <json>`, or
/// `<queue>:<src>` when the request has no parameters.
std::string sink_line(const std::string& queue, const TestRequest& request);

/// What a sending tool prints of send_many's results: the sink_line of each
/// queued request on `out`, "<program>: not queued: <why>" for each other on
/// `err`. Returns the exit status (tool.hpp): exit_ok when all are queued,
/// exit_bad_input when one is invalid, exit_not_found when a queue is
/// missing, exit_error otherwise.
int report_sent(std::string_view program, const std::vector<SendResult>& results, std::ostream& out,
                std::ostream& err);

/// Opens a sink: `amqp://...` and `sqlite://...` publish through open_broker;
/// `file:///path` appends one sink_line per request to the file. Throws
/// ConfigError naming the URL otherwise. A broker sink publishing to a queue
/// that does not exist throws NotFound, unless `declare_queues` is set: then
/// it declares each queue before publishing to it. Requests are validated
/// with `options` (e.g. allow_local_sources for a one-machine site whose
/// workers accept local source trees). Broker credentials: as open_broker.
std::unique_ptr<RequestSink> open_sink(const std::string& url, bool declare_queues = false,
                                       const ValidationOptions& options = {}, const Environment& env = {});

}  // namespace apcloud
