// The Broker interface's shared parts and the factory choosing a backend by URL.
#include "autopkgtest_cloud/broker.hpp"

#include <fmt/format.h>

#include <utility>

#include "apcloud_config.h"
#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/url.hpp"
#include "broker/embedded_broker.hpp"
#if APCLOUD_HAVE_AMQP
#include "broker/amqp_broker.hpp"
#endif

namespace apcloud {

Broker::~Broker() = default;
Subscription::~Subscription() = default;

void Broker::renew(const Delivery&) {}

std::vector<PublishResult> Broker::publish_many(const std::vector<Publication>& messages) {
    std::vector<PublishResult> results(messages.size());
    for (std::size_t i = 0; i < messages.size(); ++i) {
        try {
            publish(messages[i].queue, messages[i].body);
            results[i].queued = true;
        } catch (const NotFound& e) {
            results[i].no_queue = true;
            results[i].error = e.what();
        } catch (const Error& e) {
            results[i].error = e.what();
        }
    }
    return results;
}

std::vector<std::string> Broker::peek(const std::string& queue, std::size_t limit) {
    std::vector<std::string> bodies;
    for (auto& m : peek_messages(queue, limit)) bodies.push_back(std::move(m.body));
    return bodies;
}

std::unique_ptr<Broker> open_broker(const std::string& url, const BrokerCredentials& credentials,
                                    const Environment& env) {
    Url u = parse_url(url);
    if (u.scheme == "sqlite") {
        if (u.path.empty() || u.path.front() != '/')
            throw ConfigError(fmt::format("sqlite broker URL needs an absolute path: {}", u.redacted()));
        return make_embedded_broker(u);
    }
    if (u.scheme == "amqp" || u.scheme == "amqps") {
#if APCLOUD_HAVE_AMQP
        return make_amqp_broker(u, resolve_broker_credentials(u, credentials, env));
#else
        (void)credentials;
        (void)env;
        throw ConfigError(
            fmt::format("this build has no AMQP support (meson option amqp): {}", u.redacted()));
#endif
    }
    throw ConfigError(fmt::format("unknown broker URL scheme {} in {} (expected sqlite:// or amqp(s)://)",
                                  quote_for_message(u.scheme), u.redacted()));
}

}  // namespace apcloud
