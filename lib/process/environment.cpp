// This process's environment as a map (read once per call, by tools and
// bindings), and the tools' settings: it over the client configuration file.
#include <sys/stat.h>

#include <cerrno>

#include "autopkgtest_cloud/credentials.hpp"
#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/file_io.hpp"
#include "autopkgtest_cloud/tool.hpp"

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

Environment tool_environment() {
    Environment env = process_environment();
    const std::string path = client_config_path(env);
    if (path.empty()) return env;
    const bool named = env.count("APCLOUD_CONFIG") != 0 && !env.at("APCLOUD_CONFIG").empty();
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        if (errno == ENOENT && !named) return env;  // the default file is optional
        throw SystemError(errno, "read the tools' configuration (APCLOUD_CONFIG)", path);
    }
    const bool private_file = (st.st_mode & (S_IRWXG | S_IRWXO)) == 0;
    return with_client_config(std::move(env), read_file(path), path, private_file);
}

}  // namespace apcloud
