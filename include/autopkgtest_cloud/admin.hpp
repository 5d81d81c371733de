/// @file admin.hpp
/// The operator's commands (SPEC.md section 8, "Admin"): dead-lettered
/// requests listed, moved back to their queue or dropped (`apcloud dead`),
/// and the running tests as the web service shows them (`apcloud running`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "autopkgtest_cloud/broker.hpp"

namespace apcloud {

// ---- dead letters: the pure parts ------------------------------------------

/// The suffix of dead-letter queues (Broker::dead_letter).
inline constexpr std::string_view dead_letter_suffix = ".dead";

/// The dead-letter queue named by `name`: `name` when it ends in `.dead`,
/// else `name + ".dead"`. Throws ValidationError("queue") for an empty name
/// or plain `.dead`.
std::string dead_letter_queue_name(std::string_view name);

/// The queue the messages of dead-letter queue `dead_queue` came from
/// (`debci-noble-amd64` for `debci-noble-amd64.dead`). Throws
/// ValidationError("queue") naming it when it does not end in `.dead` or
/// names nothing before it.
std::string original_queue_name(std::string_view dead_queue);

/// What a message body says about its request, for operators: filled by
/// the core's request parser when it accepts the body (with the widest
/// options: local sources and the webhook's env allowed), else, for a body
/// that fails validation, read leniently from its JSON so that an invalid
/// request (the usual dead letter) still shows its package and uuid.
struct RequestSummary {
    std::string package;                   ///< the first word of the body ("" when there is none)
    std::optional<std::string> uuid;       ///< the `uuid` parameter
    std::optional<std::string> requester;  ///< the `requester` parameter
    std::vector<std::string> triggers;     ///< the `triggers` parameter
    /// Empty when the parser accepted the body; else its message (the body
    /// is then shown raw, quoted, beside what could be read).
    std::string parse_error;
    /// Nothing could be read at all (not `<package>[ \n<json object>]`).
    bool unreadable = false;
};

/// Summarises `body` (never throws for a bad body).
RequestSummary summarize_request(std::string_view body);

/// One message of a dead-letter queue as the operator sees it.
struct DeadLetter {
    std::string queue;                        ///< the dead-letter queue (`<queue>.dead`)
    std::size_t position = 0;                 ///< 1 for the message consume delivers first
    std::string body;                         ///< the message body, byte for byte
    std::string reason;                       ///< why it was dead-lettered (Broker::dead_letter)
    std::optional<std::uint32_t> deliveries;  ///< PeekedMessage::deliveries
    RequestSummary request;                   ///< summarize_request(body)
    std::string release, arch;                ///< from the original queue's name, when it is a debci-* one
};

/// A DeadLetter for the message at `position` (from 1) of `queue`.
DeadLetter describe_dead_letter(const std::string& queue, std::size_t position, const PeekedMessage& message);

/// Which dead letters `apcloud dead replay` / `drop` take: every one, or
/// those whose request's uuid is listed.
struct DeadLetterSelection {
    bool all = false;                ///< `--all`
    std::vector<std::string> uuids;  ///< `--uuid`, repeatable
    /// Throws ValidationError("--uuid") when nothing is selected (neither
    /// `all` nor a uuid): a replay or drop must say what it takes.
    void validate() const;
    /// Whether `letter` is selected.
    bool selects(const DeadLetter& letter) const;
};

/// Human text for `apcloud dead list`: per message a line `QUEUE #POSITION
/// PACKAGE RELEASE/ARCH uuid=U requester=R` (what is known), then an
/// indented `reason: ...` line (and `deliveries: N` where counted), and, for a
/// body the parser refused, `body: "<quoted>"` and `invalid: <why>`. Empty
/// string for no letters.
std::string format_dead_letters(const std::vector<DeadLetter>& letters);

/// JSON for programs: an array of `{queue, position, reason, deliveries
/// (number or null), body, valid, package, release, arch, uuid, requester,
/// triggers, invalid (the parser's message or null)}`.
std::string dead_letters_json(const std::vector<DeadLetter>& letters);

// ---- dead letters: on a broker ---------------------------------------------

/// Most messages listed per queue by default.
inline constexpr std::size_t default_dead_letter_limit = 1000;

/// The dead letters of `dead_queues` (each a dead-letter queue name, see
/// dead_letter_queue_name), in queue order and, per queue, in the order
/// consume delivers them; at most `limit` per queue. Peeks only: nothing is
/// consumed (on RabbitMQ the messages come back marked redelivered). A
/// missing queue is NotFound, unless `skip_missing` (listing every
/// configured queue's dead letters, most of which never had one).
std::vector<DeadLetter> list_dead_letters(Broker& broker, const std::vector<std::string>& dead_queues,
                                          bool skip_missing, std::size_t limit = default_dead_letter_limit);

/// What replay_dead_letters and drop_dead_letters did.
struct DeadLetterOutcome {
    std::vector<DeadLetter> taken;  ///< moved back (replay) or dropped, in queue order
    std::size_t kept = 0;           ///< left in the dead-letter queue, in their order
};

/// Moves the selected messages of `dead_queue` back to their original queue
/// (original_queue_name), keeping the others in order. One pass over the
/// messages ready when it starts (queue_depth): each is consumed; a selected
/// one is published to the original queue (publisher confirm) and only then
/// acked, so a crash in between leaves it in both queues, never in neither;
/// one not selected is put back at the end of the dead-letter queue with its
/// reason (publish_dead_letter, confirmed) and then acked, so after the pass
/// the kept ones are in their old order (dead letters that arrive during the
/// pass come after them). `report` is called for each message moved, after
/// its ack. Validates the selection first (ValidationError) and checks that
/// every listed uuid is in the queue (NotFound naming the ones that are not,
/// before anything moves). A missing dead-letter queue is NotFound; so is a
/// missing original queue (the publish fails; the message stays dead).
DeadLetterOutcome replay_dead_letters(Broker& broker, const std::string& dead_queue,
                                      const DeadLetterSelection& selection,
                                      const std::function<void(const DeadLetter&)>& report = {});

/// Removes the selected messages of `dead_queue` for good (acks them),
/// keeping the others in order, in the same single pass as
/// replay_dead_letters; `report` is called for each message before it is
/// acked (to print it while it still exists somewhere). Same checks.
DeadLetterOutcome drop_dead_letters(Broker& broker, const std::string& dead_queue,
                                    const DeadLetterSelection& selection,
                                    const std::function<void(const DeadLetter&)>& report = {});

// ---- running tests ---------------------------------------------------------

/// One running test as the web service reports it.
struct RunningTestView {
    std::string package, release, arch;
    std::string runhash;                ///< the reference's key of the parameters
    std::string params_json;            ///< the request's parameters, JSON text
    std::vector<std::string> triggers;  ///< the `triggers` parameter
    std::uint64_t duration = 0;         ///< seconds running, as last reported
    std::string logtail;                ///< the end of its log
    /// Not heard of for three status intervals; nullopt when the service
    /// does not say (`/static/running.json`, the reference's format, has no
    /// such field).
    std::optional<bool> stale;
};

/// The entries of `/static/running.json` (SPEC.md 7: `{package: {runhash:
/// {release: {arch: [params, duration, logtail]}}}}`), sorted by package,
/// release, arch, runhash. Throws ParseError naming the entry that is not
/// in that form.
std::vector<RunningTestView> parse_running_json(std::string_view text);

/// Sets `stale` on `tests` from our service's `/api/v1/running` answer (a
/// list of `{package, release, arch, params, stale, ...}`), matching by
/// package, release, arch and parameters. Entries it does not list keep
/// nullopt. Throws ParseError for an answer that is not such a list.
void apply_running_api(std::vector<RunningTestView>& tests, std::string_view api_json);

/// `H:MM:SS` for a number of seconds.
std::string format_running_time(std::uint64_t seconds);

/// The table of `apcloud running`: a header line, then per test package,
/// release, arch, running time (format_running_time), triggers
/// (comma-separated, `-` for none) and whether it is stale (`yes`, `no`, `?`
/// when unknown). "no tests running\n" for none.
std::string format_running_tests(const std::vector<RunningTestView>& tests);

/// JSON for programs: an array of `{package, release, arch, runhash,
/// params, triggers, duration, logtail, stale (bool or null)}`.
std::string running_tests_json(const std::vector<RunningTestView>& tests);

/// The running tests of the web service at `web_url`: GET
/// `<web_url>/static/running.json` (fetch_document's retries and errors:
/// NotFound for a 404, HttpError otherwise), then, for the stale flags, GET
/// `<web_url>/api/v1/running` when the service has it (a reference service
/// does not: the flags stay unknown).
std::vector<RunningTestView> fetch_running_tests(const std::string& web_url);

}  // namespace apcloud
