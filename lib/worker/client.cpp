// Submitting requests, and waiting for their testcomplete events.
#include "autopkgtest_cloud/client.hpp"

#include <nlohmann/json.hpp>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/layout.hpp"
#include "autopkgtest_cloud/routing.hpp"
#include "core/time_text.hpp"

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

void cancel_request(Store& store, const std::string& uuid, const std::string& by) {
    const std::string name = cancel_marker(uuid);
    const std::string container(control_container);
    store.ensure_container(container, ContainerAcl::private_to(""));
    PutOptions o;
    o.content_type = "application/json";
    const nlohmann::json marker = {{"by", by}, {"at", detail::format_iso_time(detail::unix_now())}};
    store.put(container, name, marker.dump(), o);
}

std::set<std::string> cancelled_requests(Store& store) {
    std::set<std::string> out;
    ListOptions o;
    o.prefix = cancel_marker_prefix;
    try {
        for (const auto& e : store.list_all(std::string(control_container), o))
            out.insert(e.name.substr(o.prefix.size()));
    } catch (const NotFound&) {
        // no control container: nothing was ever cancelled
    }
    return out;
}

std::optional<std::string> cancelled_by(Store& store, const std::string& uuid) {
    std::optional<Object> o;
    try {
        o = store.get(std::string(control_container), cancel_marker(uuid));
    } catch (const NotFound&) {
        return std::nullopt;  // no control container: nothing was ever cancelled
    }
    if (!o) return std::nullopt;
    const auto j = nlohmann::json::parse(o->data, nullptr, false);
    return j.is_object() && j.value("by", nlohmann::json()).is_string() ? j["by"].get<std::string>()
                                                                         : std::string("someone");
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
