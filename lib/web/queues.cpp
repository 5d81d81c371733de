// Queue snapshots and the reference's JSON views of them.
#include "web/queues.hpp"

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/request.hpp"

namespace apcloud::web {

using nlohmann::json;

std::string reference_context(QueueContext context) {
    return context == QueueContext::plain ? "ubuntu" : std::string(context_name(context));
}

QueueSnapshot QueueSnapshot::make(const std::vector<std::string>& releases,
                                  const std::vector<std::string>& arches,
                                  const std::map<std::string, std::uint64_t>& sizes,
                                  const std::map<std::string, std::vector<std::string>>& bodies,
                                  std::int64_t now, const std::set<std::string>& cancelled) {
    QueueSnapshot s;
    s.releases = releases;
    s.arches = arches;
    s.queues = queue_names(releases, arches);
    s.sizes = sizes;
    s.taken_at = now;
    for (const auto& queue : s.queues) {
        auto it = bodies.find(queue);
        if (it == bodies.end()) continue;
        std::size_t position = 0;
        for (const auto& body : it->second) {
            QueuedRequest q;
            q.queue = queue;
            q.name = parse_queue_name(queue);
            q.position = ++position;
            q.body = body;
            try {
                ValidationOptions lenient;
                lenient.allow_local_sources = true;
                lenient.allow_webhook_env = true;
                TestRequest r = parse_request(body, lenient);
                if (r.uuid && cancelled.count(*r.uuid)) {
                    --position;
                    if (auto& size = s.sizes[queue]; size > 0) --size;
                    continue;
                }
                q.is_private = r.is_private();
                if (!q.is_private) {
                    q.package = r.package;
                    q.uuid = r.uuid;
                    q.requester = r.requester;
                    q.triggers = r.triggers;
                }
            } catch (const Error&) {
                // Unreadable: shown as it is (the worker dead-letters it).
            }
            if (q.is_private) q.body = "private job";
            s.requests.push_back(std::move(q));
        }
    }
    return s;
}

namespace {

json& slot(json& root, const QueueName& q) {
    return root[reference_context(q.context)][q.release][q.arch];
}

}  // namespace

json queues_json(const QueueSnapshot& s) {
    json out = json::object();
    for (const auto& queue : s.queues) slot(out, parse_queue_name(queue)) = json::array();
    for (const auto& r : s.requests) slot(out, r.name).push_back(r.body);
    return out;
}

json queued_json(const QueueSnapshot& s) {
    json queues = json::object();
    for (const auto& queue : s.queues) {
        auto size = s.sizes.find(queue);
        slot(queues, parse_queue_name(queue)) = {{"size", size == s.sizes.end() ? 0 : size->second},
                                                 {"requests", json::array()}};
    }
    for (const auto& r : s.requests) slot(queues, r.name)["requests"].push_back(r.body);
    return {{"releases", s.releases}, {"arches", s.arches}, {"queues", queues}};
}

json queue_size_json(const QueueSnapshot& s) {
    json out = json::object();
    for (const auto& queue : s.queues) {
        auto size = s.sizes.find(queue);
        slot(out, parse_queue_name(queue)) = size == s.sizes.end() ? 0 : size->second;
    }
    return out;
}

}  // namespace apcloud::web
