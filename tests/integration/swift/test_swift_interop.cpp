// Interop: a run our SwiftStore writes is read by python-swiftclient and anonymous urllib, and the other way
// round.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "autopkgtest_cloud/layout.hpp"
#include "autopkgtest_cloud/result.hpp"
#include "autopkgtest_cloud/store.hpp"
#include "swift_test_util.hpp"

using namespace apcloud;
using swift_test::env;
namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& p, const std::string& data) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << data;
}

// An autopkgtest output directory as autopkgtest 5.x leaves it for a run of
// gedit's tests (the files the worker packs into the three objects).
fs::path make_output_dir(const fs::path& root) {
    fs::path out = root / "out";
    write_file(out / "log",
               "autopkgtest [13:04:12]: starting date and time: 2024-03-21 13:04:12+0000\n"
               "autopkgtest [13:04:12]: version 5.28\n"
               "autopkgtest [13:04:13]: test smoke: [-----------------------\n"
               "gedit 46.0 starts and prints its version: caf\xc3\xa9 \xe2\x9c\x93\n"
               "autopkgtest [13:04:20]: test smoke: -----------------------]\n"
               "smoke                PASS\n");
    write_file(out / "testpkg-version", "gedit 46.0-1ubuntu1\n");
    write_file(out / "testbed-packages", "gedit\t46.0-1ubuntu1\nlibc6\t2.39-0ubuntu8\n");
    write_file(out / "testinfo.json",
               "{\"virt_server\": \"autopkgtest-virt-null\", \"nproc\": \"2\", \"cpu_model\": \"QEMU\", "
               "\"custom_environment\": [\"ADT_TEST_TRIGGERS=gedit/46.0-1ubuntu1 glib2.0/2.80.0-6\"]}");
    write_file(out / "summary", "smoke                PASS\n");
    write_file(out / "smoke-stdout", "gedit - Version 46.0\n");
    write_file(out / "smoke-stderr", "");
    write_file(out / "smoke-packages", "gedit\t46.0-1ubuntu1\n");
    write_file(out / "artifacts" / "screenshot.txt", std::string(3000, 'x'));
    return out;
}

}  // namespace

TEST_CASE("a run written by SwiftStore reads back through python-swiftclient and anonymous HTTP") {
    const std::string script = env("APCLOUD_TEST_INTEROP_CHECK");
    REQUIRE(!script.empty());
    char tmpl[] = "/tmp/h3-interop.XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    const fs::path root(tmpl);

    PackOptions po;
    po.exitcode = 0;
    po.duration = 8;
    po.package = "gedit";
    po.requester = "britney";
    po.mtime = 1711026252;
    ResultFiles files = pack_results(make_output_dir(root).string(), po);

    const std::string body = "gedit\n{\"triggers\": [\"gedit/46.0-1ubuntu1\", \"glib2.0/2.80.0-6\"]}";
    const std::string run_id = make_run_id(1711026252, body);
    const std::string dir = result_dir("noble", "amd64", "gedit", run_id);
    const std::string prefix = package_prefix("noble", "amd64", "gedit");
    REQUIRE(dir == prefix + run_id);
    REQUIRE(dir.rfind("noble/amd64/g/gedit/20240321_130412_", 0) == 0);

    const std::string container = swift_test::unique_name(container_name("noble"));
    const std::string private_container = swift_test::unique_name(container_name("noble", {}, true));
    auto store = open_test_store(swift_test::store_url());
    store->ensure_container(container, ContainerAcl::public_container());
    store->ensure_container(private_container, ContainerAcl::private_to(env("APCLOUD_SWIFT_OTHER_USER")));
    store->put(private_container, "secret/result.tar", "private result", {"application/x-tar", std::nullopt});

    // Upload order as the worker does it: result.tar last.
    store->put(container, dir + "/log.gz", files.log_gz, {"text/plain; charset=UTF-8", std::string("gzip")});
    store->put(container, dir + "/artifacts.tar.gz", files.artifacts_tar_gz,
               {"application/gzip", std::nullopt});
    store->put(container, dir + "/result.tar", files.result_tar, {"application/x-tar", std::nullopt});

    const fs::path expected = root / "expected";
    write_file(expected / "log.gz", files.log_gz);
    write_file(expected / "artifacts.tar.gz", files.artifacts_tar_gz);
    write_file(expected / "result.tar", files.result_tar);

    auto r = swift_test::run(
        {"/usr/bin/python3", script, container, prefix, run_id, expected.string(), private_container});
    INFO(r.out);
    CHECK(r.status == 0);
    MESSAGE(r.out);

    // What swiftclient uploaded, read by us.
    auto hello = store->get(container, "from-swiftclient/hello.txt");
    REQUIRE(hello);
    CHECK(hello->data == "hello from swiftclient\n");
    CHECK(hello->info.content_type == "text/plain; charset=UTF-8");
    // And our own reading of the run, anonymously, as a gating client would.
    auto anon = open_test_store(env("APCLOUD_SWIFT_STORAGE_URL"));
    auto result_tar = anon->get(container, dir + "/result.tar");
    REQUIRE(result_tar);
    auto parsed = parse_result_tar(result_tar->data);
    CHECK(parsed.exitcode == 0);
    CHECK(parsed.version == std::optional<std::string>("46.0-1ubuntu1"));
    REQUIRE(parsed.triggers);
    CHECK(*parsed.triggers == std::vector<std::string>{"gedit/46.0-1ubuntu1", "glib2.0/2.80.0-6"});
    fs::remove_all(root);
}
