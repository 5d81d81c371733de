// doctest main for the Swift integration tests: exit 77 (skipped) without a Swift to talk to.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
    // These tests need a real Swift (scripts/swift-start DIR prints the env).
    // Skipping is reported as 77 so scripts/run-tests counts it as a failure.
    for (const char* name :
         {"APCLOUD_SWIFT_AUTH_URL", "APCLOUD_SWIFT_USER", "APCLOUD_SWIFT_KEY", "APCLOUD_SWIFT_STORAGE_URL"}) {
        const char* v = std::getenv(name);
        if (!v || !*v) {
            std::fprintf(stderr,
                         "%s is not set: start a Swift with scripts/swift-start DIR and export its env\n",
                         name);
            return 77;
        }
    }
    doctest::Context context(argc, argv);
    return context.run();
}
