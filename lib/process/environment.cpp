// This process's environment as a map (read once per call, by tools and bindings).
#include "autopkgtest_cloud/credentials.hpp"

extern char** environ;

namespace apcloud {

Environment process_environment() {
    Environment env;
    for (char** e = environ; e && *e; ++e) {
        std::string_view kv = *e;
        auto eq = kv.find('=');
        if (eq != std::string_view::npos) env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
    }
    return env;
}

}  // namespace apcloud
