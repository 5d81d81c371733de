// Submitting requests, and waiting for their testcomplete events.
#include "autopkgtest_cloud/client.hpp"

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/routing.hpp"

namespace apcloud {

std::string submit_request(Broker& broker, const TestRequest& request, const std::string& release,
                           const std::string& arch, bool huge, const ValidationOptions& options) {
    validate(request, options);
    auto queue = queue_for(request, release, arch, huge);
    broker.publish(queue, request.to_message());
    return queue;
}

std::optional<TestComplete> submit_and_wait(Broker& broker, const TestRequest& request,
                                            const std::string& release, const std::string& arch, bool huge,
                                            std::chrono::seconds timeout, const ValidationOptions& options) {
    auto sub = broker.subscribe(testcomplete_exchange);
    submit_request(broker, request, release, arch, huge, options);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                          std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        auto event = sub->next(left);
        if (!event) return std::nullopt;
        TestComplete done;
        try {
            done = parse_testcomplete(*event);
        } catch (const ParseError&) {
            continue;  // someone else's malformed event is not ours to judge
        }
        if (done.package == request.package && done.release == release && done.architecture == arch &&
            done.triggers == request.triggers)
            return done;
    }
}

std::vector<std::pair<std::string, std::optional<std::uint64_t>>> queue_depths(
    Broker& broker, const std::vector<std::string>& queues) {
    std::vector<std::pair<std::string, std::optional<std::uint64_t>>> out;
    for (const auto& q : queues) {
        try {
            out.emplace_back(q, broker.queue_depth(q));
        } catch (const NotFound&) {
            out.emplace_back(q, std::nullopt);
        }
    }
    return out;
}

}  // namespace apcloud
