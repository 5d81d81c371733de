// Consumer leases of the AMQP broker: lease queues, copy-then-ack, renewal, end of a lease.
#include "broker/amqp_lease.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "broker/amqp_connection.hpp"
#include "core/digest.hpp"
#include "core/logging.hpp"

namespace apcloud::detail::amqp {

namespace {

const Logger logger("amqp");

// How many ended leases a consumer remembers (is_settled_copy): far more
// than can expire during one outage.
constexpr std::size_t kSettledKept = 4096;

// Host, process and a random part: unique among the consumers of a broker.
std::string make_consumer_id() {
    char host[64] = {};
    ::gethostname(host, sizeof host - 1);
    std::string id;
    for (const char* c = host; *c; ++c)
        id += (std::isalnum(static_cast<unsigned char>(*c)) || *c == '-') ? *c : '_';
    unsigned char rnd[4] = {};
    if (FILE* f = std::fopen("/dev/urandom", "rb")) {
        if (std::fread(rnd, 1, sizeof rnd, f) != sizeof rnd) rnd[0] = 0;
        std::fclose(f);
    }
    return id + fmt::format(".{}.{:02x}{:02x}{:02x}{:02x}", static_cast<int>(::getpid()), rnd[0], rnd[1],
                            rnd[2], rnd[3]);
}

}  // namespace

Leases::Leases(std::chrono::milliseconds lease) : lease_(lease), consumer_id_(make_consumer_id()) {}

// This consumer's lease queue for `queue`: durable, its messages go back
// to `queue` when they expire, and it disappears a day after last use.
std::string Leases::queue_for(LeaseHost& host, const std::string& queue) {
    std::string name = fmt::format("apcloud.lease.{}.{}", queue, consumer_id_);
    if (host.declared().count(name)) return name;
    const amqp_channel_t ch = host.admin_channel();
    AmqpConnection& c = host.connection();
    amqp_table_entry_t entries[3];
    entries[0].key = amqp_cstring_bytes("x-dead-letter-exchange");
    entries[0].value.kind = AMQP_FIELD_KIND_UTF8;
    entries[0].value.value.bytes = amqp_cstring_bytes("");
    entries[1].key = amqp_cstring_bytes("x-dead-letter-routing-key");
    entries[1].value.kind = AMQP_FIELD_KIND_UTF8;
    entries[1].value.value.bytes = as_bytes(queue);
    entries[2].key = amqp_cstring_bytes("x-expires");
    entries[2].value.kind = AMQP_FIELD_KIND_I32;
    entries[2].value.value.i32 = static_cast<std::int32_t>(
        std::min<std::int64_t>(std::max<std::int64_t>(lease_.count() * 10, 86400000), 2000000000));
    amqp_table_t args{3, entries};
    amqp_queue_declare(c.get(), ch, as_bytes(name), 0, 1, 0, 0, args);
    c.check_reply(ch, fmt::format("declaring lease queue {}", quote_for_message(name)));
    amqp_maybe_release_buffers_on_channel(c.get(), ch);
    host.declared().insert(name);
    return name;
}

void Leases::copy(LeaseHost& host, const LeasedMessage& m, const std::string& what) {
    const std::string ttl = std::to_string(lease_.count());
    host.publish_with_attempt(m.lease_queue, m, &ttl, what);
}

// Removes the oldest copies of a lease until `keep` remain. Throws when
// none was left: the lease expired and the request went back to its queue.
void Leases::trim(LeaseHost& host, const LeasedMessage& m, std::uint64_t keep, const std::string& what) {
    for (;;) {
        std::uint64_t n = host.message_count(m.lease_queue);
        if (n == 0 && keep > 0)
            throw BrokerError(fmt::format(
                "{}: the lease expired (no renewal within {}); the request went back to {} and may run again",
                what, seconds_text(lease_), quote_for_message(m.queue)));
        if (n <= keep) return;
        const amqp_channel_t ch = host.admin_channel();
        AmqpConnection& c = host.connection();
        amqp_rpc_reply_t r = amqp_basic_get(c.get(), ch, as_bytes(m.lease_queue), 0);
        c.check(r, ch, what);
        if (r.reply.id != AMQP_BASIC_GET_OK_METHOD) {
            amqp_maybe_release_buffers_on_channel(c.get(), ch);
            continue;
        }
        std::uint64_t tag = static_cast<amqp_basic_get_ok_t*>(r.reply.decoded)->delivery_tag;
        read_content(c, ch, what);
        c.check_status(amqp_basic_ack(c.get(), ch, tag, 0), what);
        amqp_maybe_release_buffers_on_channel(c.get(), ch);
    }
}

void Leases::take(LeaseHost& host, LeasedMessage& m) {
    const std::string what =
        fmt::format("taking a lease on a message of queue {}", quote_for_message(m.queue));
    m.lease_queue = queue_for(host, m.queue);
    m.lease_id = random_hex(8);
    try {
        copy(host, m, what);
    } catch (...) {
        m.lease_queue.clear();
        throw;
    }
    logger.debug("leased a message of queue {} for {} in {}", quote_for_message(m.queue),
                 seconds_text(lease_), quote_for_message(m.lease_queue));
}

void Leases::renew(LeaseHost& host, const LeasedMessage& m, std::uint64_t tag) {
    const std::string what =
        fmt::format("renewing the lease of delivery {} of queue {}", tag, quote_for_message(m.queue));
    try {
        host.retry(what, [&] { copy(host, m, what); });
        host.retry(what, [&] { trim(host, m, 1, what); });
    } catch (const std::exception& e) {
        logger.warn("{}", e.what());
        throw;
    }
    logger.debug("renewed the lease of delivery {} of queue {} for {}", tag, quote_for_message(m.queue),
                 seconds_text(lease_));
}

bool Leases::end(LeaseHost& host, const LeasedMessage& m) {
    const std::string what =
        fmt::format("ending the lease of a message of queue {}", quote_for_message(m.queue));
    if (!m.lease_id.empty() && settled_.insert(m.lease_id).second) {
        settled_order_.push_back(m.lease_id);
        if (settled_order_.size() > kSettledKept) {
            settled_.erase(settled_order_.front());
            settled_order_.pop_front();
        }
    }
    const bool had_copies = host.message_count(m.lease_queue) > 0;
    trim(host, m, 0, what);
    host.message_count(m.lease_queue);
    logger.debug("ended the lease of a message of queue {}", quote_for_message(m.queue));
    return had_copies;
}

bool Leases::is_settled_copy(const LeasedMessage& m) const {
    return !m.expired_from.empty() && settled_.count(m.expired_from) > 0;
}

}  // namespace apcloud::detail::amqp
