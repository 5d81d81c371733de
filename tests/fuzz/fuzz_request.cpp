// Fuzzing the request parser and validator (SPEC.md 1), with each set of options.
#include <autopkgtest_cloud/access.hpp>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/request.hpp>

#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto body = fuzz::text(data, size);
    for (bool lenient : {false, true}) {
        apcloud::ValidationOptions o;
        o.allow_local_sources = lenient;
        o.allow_webhook_env = lenient;
        try {
            const apcloud::TestRequest r = apcloud::parse_request(body, o);
            apcloud::validate(r, o);
            (void)apcloud::request_identity(r, "noble", "amd64");
        } catch (const apcloud::Error&) {
        }
    }
    return 0;
}
