// Fuzzing worker.conf: any text parses or is refused with an Error, and what
// parses and renders (the renderer refuses values no INI line can hold) parses back.
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/worker_config.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto text = fuzz::text(data, size);
    try {
        const apcloud::WorkerConfig c = apcloud::parse_worker_config(text, {{"HOME", "/home/worker"}});
        std::string rendered;
        try {
            rendered = apcloud::render_worker_config(c);
        } catch (const apcloud::Error&) {
            return 0;  // a value an INI line cannot hold (surrounding blanks, a ';'): refused, as documented
        }
        try {
            (void)apcloud::parse_worker_config(rendered);
        } catch (const apcloud::Error& e) {
            std::fprintf(stderr, "rendered worker.conf refused: %s\n", e.what());
            std::abort();  // the renderer wrote what the parser refuses
        }
    } catch (const apcloud::Error&) {
    }
    return 0;
}
