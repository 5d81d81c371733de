// The operator's commands on a broker and a web service: dead letters listed, replayed and dropped; running
// tests fetched.
#include <fmt/format.h>

#include <chrono>
#include <set>

#include "autopkgtest_cloud/admin.hpp"
#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/retries.hpp"
#include "core/logging.hpp"

namespace apcloud {

namespace {

const detail::Logger logger("admin");

// The longest wait for a message the queue said it had ready.
constexpr std::chrono::seconds take_timeout{5};
// Largest running.json (and API answer) read.
constexpr std::size_t max_running_bytes = std::size_t(64) << 20;

std::vector<DeadLetter> describe_all(const std::string& queue, const std::vector<PeekedMessage>& messages) {
    std::vector<DeadLetter> out;
    for (std::size_t i = 0; i < messages.size(); ++i)
        out.push_back(describe_dead_letter(queue, i + 1, messages[i]));
    return out;
}

// Every listed uuid must be in the queue before anything moves: a typo must
// not look like success.
void check_uuids_present(Broker& broker, const std::string& dead_queue,
                         const DeadLetterSelection& selection) {
    if (selection.all) return;
    const std::uint64_t depth = broker.queue_depth(dead_queue);
    std::set<std::string> present;
    for (const auto& d : describe_all(dead_queue, broker.peek_messages(dead_queue, depth)))
        if (d.request.uuid) present.insert(*d.request.uuid);
    std::string missing;
    for (const auto& u : selection.uuids)
        if (!present.count(u)) missing += (missing.empty() ? "" : ", ") + quote_for_message(u);
    if (!missing.empty())
        throw NotFound(fmt::format("no message with uuid {} in dead-letter queue {}", missing,
                                   quote_for_message(dead_queue)));
}

// One pass over the messages ready in `dead_queue` when it starts: `take`
// settles a selected one (and acks it), the others go to the end of the
// queue with their reason, so that they keep their order.
DeadLetterOutcome one_pass(Broker& broker, const std::string& dead_queue,
                           const DeadLetterSelection& selection,
                           const std::function<void(const Delivery&, const DeadLetter&)>& take) {
    selection.validate();
    const std::string original = original_queue_name(dead_queue);
    check_uuids_present(broker, dead_queue, selection);
    DeadLetterOutcome outcome;
    const std::uint64_t depth = broker.queue_depth(dead_queue);
    for (std::uint64_t i = 0; i < depth; ++i) {
        auto d = broker.consume({dead_queue}, take_timeout);
        if (!d) {
            logger.warn("{}: {} of {} messages seen; the others were taken meanwhile", dead_queue, i, depth);
            break;
        }
        PeekedMessage m{d->body, d->reason, std::nullopt};
        DeadLetter letter = describe_dead_letter(dead_queue, static_cast<std::size_t>(i + 1), m);
        if (selection.selects(letter)) {
            take(*d, letter);
            outcome.taken.push_back(std::move(letter));
            continue;
        }
        try {
            // Confirmed at the end first, then the ack: a crash in between keeps two copies, never none.
            broker.publish_dead_letter(original, d->body, d->reason);
        } catch (...) {
            broker.requeue(*d);
            throw;
        }
        broker.ack(*d);
        ++outcome.kept;
    }
    return outcome;
}

}  // namespace

std::vector<DeadLetter> list_dead_letters(Broker& broker, const std::vector<std::string>& dead_queues,
                                          bool skip_missing, std::size_t limit) {
    std::vector<DeadLetter> out;
    for (const auto& name : dead_queues) {
        const std::string queue = dead_letter_queue_name(name);
        std::vector<PeekedMessage> messages;
        try {
            messages = broker.peek_messages(queue, limit);
        } catch (const NotFound&) {
            if (skip_missing) continue;
            throw;
        }
        for (auto& d : describe_all(queue, messages)) out.push_back(std::move(d));
    }
    return out;
}

DeadLetterOutcome replay_dead_letters(Broker& broker, const std::string& dead_queue,
                                      const DeadLetterSelection& selection,
                                      const std::function<void(const DeadLetter&)>& report) {
    const std::string original = original_queue_name(dead_queue);
    auto outcome = one_pass(broker, dead_queue, selection, [&](const Delivery& d, const DeadLetter& letter) {
        try {
            broker.publish(original, d.body);
        } catch (...) {
            broker.requeue(d);  // stays dead, at its place
            throw;
        }
        broker.ack(d);
        logger.info("moved a dead letter of {} back to {} (it was dead-lettered for {})",
                    quote_for_message(dead_queue), quote_for_message(original), quote_for_message(d.reason));
        if (report) report(letter);
    });
    return outcome;
}

DeadLetterOutcome drop_dead_letters(Broker& broker, const std::string& dead_queue,
                                    const DeadLetterSelection& selection,
                                    const std::function<void(const DeadLetter&)>& report) {
    return one_pass(broker, dead_queue, selection, [&](const Delivery& d, const DeadLetter& letter) {
        if (report) report(letter);
        broker.ack(d);
        logger.info("dropped a dead letter of {} (it was dead-lettered for {})",
                    quote_for_message(dead_queue), quote_for_message(d.reason));
    });
}

std::vector<RunningTestView> fetch_running_tests(const std::string& web_url) {
    std::string base = web_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    auto tests = parse_running_json(fetch_document(base + "/static/running.json", max_running_bytes));
    if (tests.empty()) return tests;
    try {
        apply_running_api(tests, fetch_document(base + "/api/v1/running", max_running_bytes));
    } catch (const Error& e) {
        // A reference service has no such API: the flags stay unknown.
        logger.info("{}: no stale flags ({})", base, e.what());
    }
    return tests;
}

}  // namespace apcloud
