// The real autopkgtest (null runner) on tests/data/hello-apc: its output
// directory packed and parsed back (needs root and autopkgtest installed).
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <autopkgtest_cloud/result.hpp>

#include <cstdlib>
#include <filesystem>
#include <map>

#include "subprocess.hpp"

using namespace apcloud;
namespace fs = std::filesystem;

namespace {

// Runs autopkgtest with an argv vector (no shell), output to `out`; returns its exit code.
int run_autopkgtest(const fs::path& tree, const fs::path& out, const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"autopkgtest", "--output-dir", out.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(tree.string() + "/");
    args.push_back("--");
    args.push_back("null");
    test_process::RunOptions options;
    options.stdout_path = "/dev/null";
    options.search_path = true;
    return test_process::run(args, options).status;
}

}  // namespace

TEST_CASE("pack and parse autopkgtest's own output") {
    const char* data = std::getenv("APCLOUD_TEST_DATA");
    REQUIRE(data != nullptr);
    const fs::path tree = fs::path(data) / "hello-apc";
    std::string tmpl = (fs::temp_directory_path() / "apcloud-adt-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    const fs::path work = tmpl;

    struct Case {
        std::vector<std::string> extra;
        int expect;
    };
    for (const Case& c : {Case{{"--env=ADT_TEST_TRIGGERS=hello-apc/1.0-1 glib2.0/2.20-1"}, 0},
                          Case{{"--env=HELLO_FAIL=1", "--env=ADT_TEST_TRIGGERS=hello-apc/1.0-1"}, 4}}) {
        const fs::path out = work / ("out" + std::to_string(c.expect));
        int code = run_autopkgtest(tree, out, c.extra);
        REQUIRE_MESSAGE(code == c.expect, "autopkgtest exited " << code << "; see " << out / "log");
        PackOptions o;
        o.exitcode = code;
        o.duration = 15;
        o.requester = "ci";
        o.package = "hello-apc";
        auto f = pack_results(out.string(), o);
        auto r = parse_result_tar(f.result_tar);
        CHECK(r.exitcode == c.expect);
        CHECK(r.package == "hello-apc");
        CHECK(r.version == "1.0-1");
        CHECK(r.requester == "ci");
        REQUIRE(r.triggers);
        CHECK(r.triggers->front() == "hello-apc/1.0-1");
        REQUIRE(r.summary);
        CHECK(r.summary->find(c.expect == 0 ? "env-check            PASS" : "env-check            FAIL") !=
              std::string::npos);
        REQUIRE(r.testbed_packages);
        CHECK(r.testbed_packages->find("coreutils") != std::string::npos);
        std::map<std::string, std::string> art;
        for (auto& [k, v] : read_archive(f.artifacts_tar_gz)) art[k] = v;
        CHECK(art["artifacts/hello.txt"] == "artifact content\n");
        CHECK(art.count("smoke-stdout") == 1);
        for (auto& [k, v] : art) CHECK_MESSAGE(k.rfind("binaries/", 0) != 0, k);
    }
    fs::remove_all(work);
}
