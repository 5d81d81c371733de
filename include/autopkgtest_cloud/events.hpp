/// @file events.hpp
/// The fanout events of a run (SPEC.md section 2): `teststatus` while a test
/// runs, `testcomplete` after its results are stored. Pure encoders.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "autopkgtest_cloud/request.hpp"

namespace apcloud {

/// Package name reported for private runs, whose details must not leak.
inline constexpr std::string_view private_package_name = "private-test";

/// The log tail of a running test: the first 5 lines, a marker line, and
/// the last 2000 bytes (the whole log when it is short). Invalid UTF-8 is
/// replaced so the result is always valid UTF-8.
std::string make_logtail(std::string_view log);

/// A `teststatus.fanout` event: `{"architecture", "duration", "logtail",
/// "package", "params", "release", "running"}` (sorted keys). Private runs
/// report package "private-test", empty params and no log tail.
std::string teststatus_json(const TestRequest& request, std::string_view release, std::string_view arch,
                            bool running, std::uint64_t duration, std::string_view logtail);

/// What a `testcomplete.fanout` event reports.
struct TestComplete {
    std::string architecture;
    std::string container;
    std::uint64_t duration = 0;
    int exitcode = 0;
    std::string package;
    std::optional<std::string> testpkg_version;  ///< "src version"
    std::string release;
    std::optional<std::string> requester;
    std::string swift_dir;  ///< the run's directory in the container
    std::vector<std::string> triggers;
    std::vector<std::string> env;
};

/// Encodes a testcomplete event as JSON with sorted keys.
std::string testcomplete_json(const TestComplete& event);

/// Parses a testcomplete event (for consumers such as the web indexer);
/// throws ParseError naming the missing or mistyped key.
TestComplete parse_testcomplete(std::string_view json);

}  // namespace apcloud
