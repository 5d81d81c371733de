// Fuzzing URL parsing and percent-decoding: bad input is a ConfigError, and a
// parsed URL's redacted form (what messages show) has its password masked.
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/url.hpp>

#include <cstdlib>

#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto text = fuzz::text(data, size);
    try {
        const apcloud::Url u = apcloud::parse_url(text);
        bool leaked = false;
        try {
            const apcloud::Url shown = apcloud::parse_url(u.redacted());
            leaked = shown.has_password && shown.password != "***";
        } catch (const apcloud::Error&) {
        }
        if (leaked) std::abort();
    } catch (const apcloud::Error&) {
    }
    try {
        (void)apcloud::percent_decode(text);
    } catch (const apcloud::Error&) {
    }
    (void)apcloud::percent_encode(text);
    return 0;
}
