/// @file routing.hpp
/// Queue names and the choice of queue for a request (SPEC.md section 2).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "autopkgtest_cloud/request.hpp"

namespace apcloud {

/// The queue family a request goes to.
enum class QueueContext { plain, huge, ppa, upstream };

/// The context's name in queue names: "", "huge", "ppa", "upstream".
std::string_view context_name(QueueContext context) noexcept;

/// Parses a context name ("" or "plain" -> plain); throws ValidationError.
QueueContext parse_context(std::string_view name);

/// A queue name taken apart.
struct QueueName {
    QueueContext context = QueueContext::plain;
    std::string release;
    std::string arch;
    bool operator==(const QueueName& o) const {
        return context == o.context && release == o.release && arch == o.arch;
    }
};

/// `debci-RELEASE-ARCH` or `debci-CONTEXT-RELEASE-ARCH`; validates release and
/// architecture names (ValidationError).
std::string queue_name(std::string_view release, std::string_view arch,
                       QueueContext context = QueueContext::plain);

/// Parses a queue name back; throws ParseError when it is not one of ours.
QueueName parse_queue_name(std::string_view name);

/// The context for a request, first match wins: upstream for test-git /
/// build-git (GitHub/GitLab requests, which also carry a PPA), ppa when it
/// has PPAs, huge when the caller says it is a bulk request, else plain.
QueueContext choose_context(const TestRequest& request, bool huge = false) noexcept;

/// The queue a request for `release`/`arch` must be published to.
std::string queue_for(const TestRequest& request, std::string_view release, std::string_view arch,
                      bool huge = false);

/// Every queue of the given releases and architectures, all contexts, in
/// the order a worker should prefer them: plain, ppa, upstream, huge (bulk
/// requests last, so they never starve ordinary ones).
std::vector<std::string> queue_names(const std::vector<std::string>& releases,
                                     const std::vector<std::string>& arches);

/// The rule release names follow, as error messages state it.
inline constexpr std::string_view release_rule = "must match ^[a-z][a-z0-9.]*$ (at most 20 characters)";
/// The rule architecture names follow, as error messages state it.
inline constexpr std::string_view arch_rule = "must match ^[a-z0-9][a-z0-9_]*$ (at most 20 characters)";

/// True when `release` is a valid release name (release_rule).
bool is_valid_release(std::string_view release) noexcept;

/// True when `arch` is a valid architecture name (arch_rule).
bool is_valid_arch(std::string_view arch) noexcept;

/// Throws ValidationError("release", release, release_rule) for an invalid name.
void check_release(std::string_view release);

/// Throws ValidationError("arch", arch, arch_rule) for an invalid name.
void check_arch(std::string_view arch);

}  // namespace apcloud
