// Running tests as the teststatus events report them (SPEC.md sections 2 and 7): the
// in-memory view behind /running, /static/running.json and the API (private header).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

namespace apcloud::web {

/// One running test.
struct RunningTest {
    std::string package, release, arch;
    nlohmann::json params = nlohmann::json::object();  ///< the request's parameters
    std::string runhash;                               ///< the reference's key of the params
    std::uint64_t duration = 0;                        ///< seconds, as last reported
    std::string logtail;
    std::int64_t last_seen = 0;  ///< unix seconds of the last event
    bool stale = false;          ///< missed three status intervals
};

/// The reference's key of a run's parameters: "k_v;" over the sorted keys,
/// each value as Python's str() renders it.
std::string runhash(const nlohmann::json& params);

/// The running tests, fed with teststatus events; thread-safe.
class RunningTests {
public:
    /// `interval`: the workers' status interval; an entry not heard of for
    /// three is stale, for ten it is dropped (a dead worker's).
    explicit RunningTests(std::chrono::seconds interval = std::chrono::seconds(10)) : interval_(interval) {}

    /// Applies one teststatus event received at `now` (unix seconds);
    /// returns false for an event that is not one (ignored).
    bool apply(const std::string& event_json, std::int64_t now);
    /// Marks and drops entries by age at `now`.
    void expire(std::int64_t now);
    /// Every entry, sorted by package, release, arch.
    std::vector<RunningTest> list() const;
    /// `/static/running.json`: {package: {runhash: {release: {arch: [params, duration, logtail]}}}}.
    nlohmann::json reference_json() const;

private:
    using Key =
        std::tuple<std::string, std::string, std::string, std::string>;  // package, runhash, release, arch
    std::chrono::seconds interval_;
    mutable std::mutex mutex_;
    std::map<Key, RunningTest> tests_;
};

}  // namespace apcloud::web
