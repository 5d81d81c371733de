// Fuzzing britney's excuses.yaml reader (libyaml underneath), plain and compressed.
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/excuses.hpp>

#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        (void)apcloud::parse_excuses(fuzz::text(data, size));
    } catch (const apcloud::Error&) {
    }
    return 0;
}
