// Fuzzing what webhooks read from the outside: GitHub and GitLab payloads,
// their times, and the secrets files' formats.
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/webhooks.hpp>

#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto text = fuzz::text(data, size);
    auto guard = [](auto&& f) {
        try {
            f();
        } catch (const apcloud::Error&) {
        }
    };
    guard([&] {
        const auto e = apcloud::parse_github_event("pull_request", text);
        if (e.action == apcloud::HookAction::test) {
            (void)apcloud::webhook_env(e);
            (void)apcloud::webhook_build_git(e);
        }
    });
    guard([&] { (void)apcloud::parse_gitlab_event(text, "https://gitlab.example/api/v4"); });
    guard([&] { (void)apcloud::parse_forge_time(text); });
    guard([&] { (void)apcloud::parse_github_secrets(text); });
    guard([&] { (void)apcloud::parse_status_credentials(text); });
    guard([&] { (void)apcloud::parse_forge_projects(text, "projects.conf"); });
    guard([&] {
        (void)apcloud::github_signature_valid(text, "secret", std::string(text.substr(0, 80)), std::nullopt);
    });
    return 0;
}
