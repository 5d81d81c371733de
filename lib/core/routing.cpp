// Queue names and routing of requests to queues (SPEC.md section 2).
#include "autopkgtest_cloud/routing.hpp"

#include <fmt/format.h>
#include <algorithm>

#include "autopkgtest_cloud/error.hpp"

namespace apcloud {

namespace {
constexpr std::string_view queue_prefix = "debci-";

bool lower_or_digit(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
}  // namespace

bool is_valid_release(std::string_view r) noexcept {
    return !r.empty() && r.size() <= 20 && r[0] >= 'a' && r[0] <= 'z' &&
           std::all_of(r.begin(), r.end(), [](char c) { return lower_or_digit(c) || c == '.'; });
}

bool is_valid_arch(std::string_view a) noexcept {
    return !a.empty() && a.size() <= 20 && lower_or_digit(a[0]) &&
           std::all_of(a.begin(), a.end(), [](char c) { return lower_or_digit(c) || c == '_'; });
}

void check_release(std::string_view release) {
    if (!is_valid_release(release)) throw ValidationError("release", std::string(release), release_rule);
}

void check_arch(std::string_view arch) {
    if (!is_valid_arch(arch)) throw ValidationError("arch", std::string(arch), arch_rule);
}

std::string_view context_name(QueueContext c) noexcept {
    switch (c) {
        case QueueContext::plain:
            return "";
        case QueueContext::huge:
            return "huge";
        case QueueContext::ppa:
            return "ppa";
        case QueueContext::upstream:
            return "upstream";
    }
    return "";
}

QueueContext parse_context(std::string_view name) {
    for (auto c : {QueueContext::huge, QueueContext::ppa, QueueContext::upstream})
        if (name == context_name(c)) return c;
    if (name.empty() || name == "plain") return QueueContext::plain;
    throw ValidationError("context", std::string(name), "must be one of huge, ppa, upstream or empty");
}

std::string queue_name(std::string_view release, std::string_view arch, QueueContext context) {
    check_release(release);
    check_arch(arch);
    std::string out(queue_prefix);
    if (context != QueueContext::plain) {
        out += context_name(context);
        out += '-';
    }
    out += release;
    out += '-';
    out += arch;
    return out;
}

QueueName parse_queue_name(std::string_view name) {
    auto fail = [&]() -> QueueName {
        throw ParseError(fmt::format(
            "not a test request queue name: {} (expected debci-[huge-|ppa-|upstream-]RELEASE-ARCH)",
            quote_for_message(name)));
    };
    if (name.substr(0, queue_prefix.size()) != queue_prefix) return fail();
    auto rest = name.substr(queue_prefix.size());
    QueueName out;
    auto dash = rest.find('-');
    if (dash == std::string_view::npos) return fail();
    // Releases contain no '-', so a third component means a context.
    if (rest.find('-', dash + 1) != std::string_view::npos) {
        auto ctx = rest.substr(0, dash);
        if (ctx.empty()) return fail();
        try {
            out.context = parse_context(ctx);
        } catch (const ValidationError&) {
            return fail();
        }
        if (out.context == QueueContext::plain) return fail();
        rest = rest.substr(dash + 1);
        dash = rest.find('-');
    }
    out.release = rest.substr(0, dash);
    out.arch = rest.substr(dash + 1);
    if (!is_valid_release(out.release) || !is_valid_arch(out.arch)) return fail();
    return out;
}

std::vector<std::string> queue_names(const std::vector<std::string>& releases,
                                     const std::vector<std::string>& arches) {
    std::vector<std::string> out;
    for (auto ctx : {QueueContext::plain, QueueContext::ppa, QueueContext::upstream, QueueContext::huge})
        for (const auto& release : releases)
            for (const auto& arch : arches) out.push_back(queue_name(release, arch, ctx));
    return out;
}

QueueContext choose_context(const TestRequest& r, bool huge) noexcept {
    if (r.test_git || r.build_git) return QueueContext::upstream;
    if (!r.ppas.empty()) return QueueContext::ppa;
    if (huge) return QueueContext::huge;
    return QueueContext::plain;
}

std::string queue_for(const TestRequest& r, std::string_view release, std::string_view arch, bool huge) {
    return queue_name(release, arch, choose_context(r, huge));
}

}  // namespace apcloud
