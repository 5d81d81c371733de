// Functional tests of the retry-autopkgtest-regressions program: its standard
// output on the fixture byte for byte against tests/data/excuses/expected-*,
// from a file, an xz file and standard input, and its exit statuses.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "subprocess.hpp"

namespace fs = std::filesystem;

namespace {

std::string env_path(const char* name) {
    const char* v = std::getenv(name);
    REQUIRE_MESSAGE(v != nullptr, name << " is not set (run through meson test)");
    return v;
}

std::string data(const std::string& name) {
    return env_path("APCLOUD_TEST_DATA") + "/excuses/" + name;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in, "cannot read " << path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// A scratch directory, and the tool run with its stderr in a file there.
struct Tool {
    fs::path dir;
    Tool() {
        std::string tmpl = (fs::temp_directory_path() / "apcloud-retry-XXXXXX").string();
        REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        dir = tmpl;
        // What the tool reads from the environment must not leak in from the caller's.
        for (const char* v : {"APCLOUD_WEB_URL", "APCLOUD_SERIES", "APCLOUD_EXCUSES_URL", "APCLOUD_API_KEY"})
            unsetenv(v);
    }
    ~Tool() { fs::remove_all(dir); }

    struct Run {
        int status;
        std::string out, err;
    };
    Run operator()(std::vector<std::string> args, const std::string& input = "") const {
        args.insert(args.begin(), env_path("APCLOUD_RETRY_REGRESSIONS"));
        test_process::RunOptions o;
        o.input = input;
        o.stderr_path = (dir / "stderr").string();
        fs::remove(o.stderr_path);
        auto r = test_process::run(args, o);
        return {r.status, r.out, fs::exists(o.stderr_path) ? slurp(o.stderr_path) : std::string()};
    }
};

}  // namespace

TEST_CASE("the URLs printed, byte for byte, from a file, an xz file and standard input") {
    Tool tool;
    auto r = tool({data("excuses.yaml"), "--url", "https://autopkgtest.example.org/"});
    CHECK(r.status == 0);
    CHECK(r.err.empty());
    CHECK(r.out == slurp(data("expected-regressions.txt")));

    r = tool({data("excuses.yaml.xz"), "--series", "noble", "--state", "RUNNING", "--state", "REGRESSION",
              "--only-unknown"});
    CHECK(r.status == 0);
    CHECK(r.out == slurp(data("expected-running-unknown.txt")));  // the default URL: apcloud up's

    r = tool({"-", "--blocks", "glib2.0", "--add-trigger", "gtk+3.0/3.24.41-4ubuntu1~24.04.1", "--ppa",
              "alice/fixes", "--all-proposed", "-s", "jammy", "-u", "http://x/"},
             slurp(data("excuses.yaml")));
    CHECK(r.status == 0);
    CHECK(r.out == slurp(data("expected-blocks-glib2.0.txt")));

    setenv("APCLOUD_EXCUSES_URL", ("file://" + data("excuses.yaml")).c_str(), 1);
    setenv("APCLOUD_WEB_URL", "https://autopkgtest.example.org", 1);
    r = tool({});
    unsetenv("APCLOUD_EXCUSES_URL");
    unsetenv("APCLOUD_WEB_URL");
    CHECK(r.status == 0);
    CHECK(r.out == slurp(data("expected-regressions.txt")));

    r = tool({data("excuses.yaml"), "--blocks", "hello"});
    CHECK(r.status == 0);
    CHECK(r.out.empty());
}

TEST_CASE("exit statuses: usage 2, invalid input 3 (bad YAML with its line), not found 4, other errors 1") {
    Tool tool;
    struct Case {
        std::vector<std::string> args;
        int status;
        std::string in_stderr;
    };
    std::ofstream(tool.dir / "bad.yaml") << "generated-date: x\nsources:\n- item-name: [unclosed\n";
    const std::vector<Case> cases = {
        {{"--bogus"}, 2, "bogus"},
        {{}, 2, "which excuses?"},
        {{data("excuses.yaml"), "--min-age", "-1"}, 2, "--min-age"},
        {{data("excuses.yaml"), "--max-age", "soon"}, 2, "--max-age"},
        {{data("excuses.yaml"), "--state", "REGRESSIONS"}, 3, "invalid --state 'REGRESSIONS'"},
        {{data("excuses.yaml"), "--min-age", "5", "--max-age", "1"}, 3, "--min-age"},
        {{data("excuses.yaml"), "--add-trigger", "gtk+3.0"}, 3, "invalid triggers 'gtk+3.0'"},
        {{data("excuses.yaml"), "--log-regex", "(unclosed"}, 3, "invalid --log-regex"},
        {{data("excuses.yaml"), "--url", "ftp://x"}, 3, "invalid --url"},
        {{data("excuses.yaml"), "--submit"}, 3, "APCLOUD_API_KEY"},
        {{(tool.dir / "bad.yaml").string()}, 3, "excuses.yaml: line 4, column 1: "},
        {{"-"}, 3, "has no 'sources' list"},
        {{(tool.dir / "missing.yaml").string()}, 4, "missing.yaml"},
        {{"file://" + (tool.dir / "missing.yaml").string()}, 4, "missing.yaml"},
        {{tool.dir.string()}, 1, tool.dir.string()},  // a directory: not readable as a file
    };
    for (const auto& c : cases) {
        std::string line;
        for (const auto& a : c.args) line += a + " ";
        CAPTURE(line);
        const auto r = tool(c.args, "generated-date: x\n");
        CHECK(r.status == c.status);
        CHECK(r.out.empty());
        CHECK_MESSAGE(r.err.find(c.in_stderr) != std::string::npos, r.err);
    }
}

TEST_CASE("--help has examples; --version the project's version") {
    Tool tool;
    auto r = tool({"--help"});
    CHECK(r.status == 0);
    CHECK(r.out.find("Examples:") != std::string::npos);
    CHECK(r.out.find("--blocked-by") != std::string::npos);
    CHECK(r.out.find("--submit") != std::string::npos);
    r = tool({"--version"});
    CHECK(r.status == 0);
    CHECK(r.out.rfind("retry-autopkgtest-regressions ", 0) == 0);
}
