// Unit tests of result files: packing an output directory and parsing result.tar.
#include <archive.h>
#include <archive_entry.h>
#include <doctest/doctest.h>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/exit_codes.hpp>
#include <autopkgtest_cloud/request.hpp>
#include <autopkgtest_cloud/result.hpp>

#include <unistd.h>
#include <zlib.h>
#include "temp_dir.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

using namespace apcloud;
namespace fs = std::filesystem;

namespace {

using test::TempDir;

std::map<std::string, std::string> members(std::string_view archive) {
    std::map<std::string, std::string> out;
    for (auto& [k, v] : read_archive(archive)) out[k] = v;
    return out;
}

std::vector<std::string> member_names(std::string_view archive) {
    std::vector<std::string> out;
    for (auto& kv : read_archive(archive)) out.push_back(kv.first);
    return out;
}

std::string gunzip(const std::string& data) {
    z_stream z{};
    REQUIRE(inflateInit2(&z, 15 + 16) == Z_OK);
    std::string out(1 << 20, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    REQUIRE(inflate(&z, Z_FINISH) == Z_STREAM_END);
    out.resize(z.total_out);
    inflateEnd(&z);
    return out;
}

const char* testinfo =
    R"({"virt_server": "autopkgtest-virt-null", "custom_environment": ["FOO=1", "ADT_TEST_TRIGGERS=glib2.0/2.20-1 gtk+3.0/3.24-1"]})";

// A directory shaped like autopkgtest's --output-dir.
void fill_output(const TempDir& d) {
    d.write("log", "autopkgtest [10:00:00]: starting\nall done\n");
    d.write("testpkg-version", "gedit 44.2-1\n");
    d.write("testbed-packages", "coreutils\t9.1-1\n");
    d.write("testinfo.json", testinfo);
    d.write("summary", "smoke                PASS\n");
    d.write("smoke-stdout", "hello\n");
    d.write("smoke-packages", "gedit\t44.2-1\n");
    d.write("artifacts/deep/dir/file.txt", "artifact\n");
    d.write("binaries/gedit.deb", "not for the store");
}

}  // namespace

TEST_CASE("pack: result.tar members, order and formats") {
    TempDir d;
    fill_output(d);
    PackOptions o;
    o.exitcode = 4;
    o.duration = 42;
    o.requester = "alice";
    o.package = "gedit";
    auto f = pack_results(d.path.string(), o);
    CHECK(member_names(f.result_tar) == std::vector<std::string>{"exitcode", "duration", "testpkg-version",
                                                                 "testbed-packages", "testinfo.json",
                                                                 "requester", "summary"});
    auto m = members(f.result_tar);
    CHECK(m["exitcode"] == "4\n");
    CHECK(m["duration"] == "42\n");
    CHECK(m["requester"] == "alice\n");
    CHECK(m["testpkg-version"] == "gedit 44.2-1\n");
    CHECK(m["testinfo.json"] == testinfo);
    CHECK(f.result_tar.size() % 10240 == 0);  // tar's default record size, like GNU tar
    CHECK(gunzip(f.log_gz) == "autopkgtest [10:00:00]: starting\nall done\n");
    CHECK(static_cast<unsigned char>(f.log_gz[0]) == 0x1f);
    CHECK(static_cast<unsigned char>(f.log_gz[1]) == 0x8b);
    CHECK(member_names(f.artifacts_tar_gz) ==
          std::vector<std::string>{"artifacts/deep/dir/file.txt", "smoke-packages", "smoke-stdout"});
}

TEST_CASE("pack is deterministic for the same input") {
    TempDir d;
    fill_output(d);
    PackOptions o;
    o.exitcode = 0;
    auto a = pack_results(d.path.string(), o);
    auto b = pack_results(d.path.string(), o);
    CHECK(a.result_tar == b.result_tar);
    CHECK(a.log_gz == b.log_gz);
    CHECK(a.artifacts_tar_gz == b.artifacts_tar_gz);
}

TEST_CASE("testpkg-version 'PACKAGE unknown' only for exit codes 4, 12 and 20 (SPEC.md 3)") {
    TempDir d;
    d.write("log", "boom\n");
    PackOptions o;
    o.package = "gedit";
    for (int code : {4, 12, 20}) {
        o.exitcode = code;
        auto r = parse_result_tar(pack_results(d.path.string(), o).result_tar);
        CHECK(members(pack_results(d.path.string(), o).result_tar)["testpkg-version"] == "gedit unknown");
        CHECK(r.version == "unknown");
    }
    // A tmpfail (16) without a version stays without one: britney then keeps
    // the test pending (RUNNING) instead of recording a FAIL that would show
    // as a REGRESSION. So do passes, neutrals, errors of other codes and 99.
    for (int code : {0, 2, 6, 8, 14, 16, 99}) {
        CAPTURE(code);
        o.exitcode = code;
        CHECK_FALSE(parse_result_tar(pack_results(d.path.string(), o).result_tar).version);
        CHECK(members(pack_results(d.path.string(), o).result_tar).count("testpkg-version") == 0);
    }
    o.exitcode = 4;
    o.package.reset();
    CHECK_FALSE(parse_result_tar(pack_results(d.path.string(), o).result_tar).version);
}

TEST_CASE("an empty output directory still yields all three files") {
    TempDir d;
    PackOptions o;
    o.exitcode = 20;
    auto f = pack_results(d.path.string(), o);
    CHECK(members(f.result_tar).size() == 2);
    CHECK(gunzip(f.log_gz).empty());
    CHECK(read_archive(f.artifacts_tar_gz).empty());
    CHECK_THROWS_AS(pack_results((d.path / "missing").string(), o), NotFound);
}

TEST_CASE("a log past log_limit keeps its first and last halves, whole lines, and says what was left out") {
    TempDir d;
    std::string log;
    for (int i = 1; i <= 10000; ++i) log += "line " + std::to_string(100000 + i) + "\n";  // 12 bytes each
    d.write("log", log);
    PackOptions o;
    CHECK(gunzip(pack_results(d.path.string(), o).log_gz) == log);  // no limit
    o.log_limit = log.size();
    CHECK(gunzip(pack_results(d.path.string(), o).log_gz) == log);  // exactly at the limit

    o.log_limit = 20000;
    const std::string kept = gunzip(pack_results(d.path.string(), o).log_gz);
    const auto marker_at = kept.find("\n[autopkgtest-cloud: ");
    REQUIRE(marker_at != std::string::npos);
    const auto marker_end = kept.find("]\n\n", marker_at);
    REQUIRE(marker_end != std::string::npos);
    const std::string head = kept.substr(0, marker_at);
    const std::string tail = kept.substr(marker_end + 3);
    CHECK(head.size() + tail.size() <= o.log_limit);
    CHECK(head.size() + tail.size() > o.log_limit - 24);  // cut at the line ends nearest the halves
    CHECK(log.compare(0, head.size(), head) == 0);
    CHECK(log.compare(log.size() - tail.size(), tail.size(), tail) == 0);
    CHECK(head.size() % 12 == 0);  // whole lines only
    CHECK(tail.size() % 12 == 0);
    const std::string marker = kept.substr(marker_at, marker_end - marker_at);
    CHECK(marker.find(std::to_string(log.size() - head.size() - tail.size()) + " bytes") != std::string::npos);
    CHECK(marker.find(std::to_string(log.size()) + "-byte log") != std::string::npos);
    CHECK(marker.find("log_limit_mb") != std::string::npos);

    // One long line is cut where the halves end.
    d.write("log", std::string(100000, 'x'));
    o.log_limit = 1000;
    const std::string cut = gunzip(pack_results(d.path.string(), o).log_gz);
    CHECK(cut.rfind(std::string(500, 'x'), 0) == 0);
    CHECK(cut.size() - cut.find("]\n\n") - 3 == 500);
    CHECK(std::count(cut.begin(), cut.end(), 'x') == 1000);
}

TEST_CASE("symlinks in the output directory are not followed") {
    TempDir d;
    d.write("log", "x\n");
    fs::create_symlink("/etc/passwd", d.path / "passwd-link");
    fs::create_directories(d.path / "artifacts");
    fs::create_directory_symlink("/etc", d.path / "artifacts" / "etc");
    auto f = pack_results(d.path.string(), PackOptions{});
    CHECK(read_archive(f.artifacts_tar_gz).empty());
}

TEST_CASE("pack_results_to streams into files equal to the in-memory result") {
    TempDir d, dest;
    fill_output(d);
    PackOptions o;
    o.exitcode = 2;
    o.mtime = 1700000000;
    pack_results_to(d.path.string(), o, dest.path.string());
    auto mem = pack_results(d.path.string(), o);
    auto slurp = [&](const char* n) {
        std::ifstream in(dest.path / n, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    CHECK(slurp("result.tar") == mem.result_tar);
    CHECK(slurp("log.gz") == mem.log_gz);
    CHECK(slurp("artifacts.tar.gz") == mem.artifacts_tar_gz);
}

TEST_CASE("parse_result_tar reads what pack wrote") {
    TempDir d;
    fill_output(d);
    PackOptions o;
    o.exitcode = 2;
    o.duration = 3600;
    o.requester = "bob";
    auto r = parse_result_tar(pack_results(d.path.string(), o).result_tar);
    CHECK(r.exitcode == 2);
    CHECK(r.duration == 3600u);
    CHECK(r.package == "gedit");
    CHECK(r.version == "44.2-1");
    CHECK(r.requester == "bob");
    REQUIRE(r.triggers);
    CHECK(*r.triggers == std::vector<std::string>{"glib2.0/2.20-1", "gtk+3.0/3.24-1"});
    CHECK(r.custom_environment.size() == 2);
    CHECK(r.summary == "smoke                PASS\n");
    CHECK(r.testbed_packages == "coreutils\t9.1-1\n");
    CHECK(outcome(r.exitcode) == Outcome::pass);
}

TEST_CASE("a result without ADT_TEST_TRIGGERS has no triggers (not an empty list)") {
    TempDir d;
    d.write("testinfo.json", R"({"custom_environment": ["FOO=1"]})");
    auto r = parse_result_tar(pack_results(d.path.string(), PackOptions{}).result_tar);
    CHECK_FALSE(r.triggers);
    d.write("testinfo.json", R"({"custom_environment": ["ADT_TEST_TRIGGERS="]})");
    auto e = parse_result_tar(pack_results(d.path.string(), PackOptions{}).result_tar);
    REQUIRE(e.triggers);
    CHECK(e.triggers->empty());
}

TEST_CASE("the triggers are the LAST ADT_TEST_TRIGGERS= entry: the one the worker wrote") {
    TempDir d;
    // The worker passes the request's env first and its own ADT_TEST_TRIGGERS
    // last; an older worker that let a forged entry through is still read right.
    d.write(
        "testinfo.json",
        R"({"custom_environment": ["ADT_TEST_TRIGGERS=glib2.0/2.80-1", "A=1", "ADT_TEST_TRIGGERS=gedit/1-1"]})");
    auto r = parse_result_tar(pack_results(d.path.string(), PackOptions{}).result_tar);
    REQUIRE(r.triggers);
    CHECK(*r.triggers == std::vector<std::string>{"gedit/1-1"});
    CHECK(r.custom_environment.size() == 3);
}

TEST_CASE("corrupt, truncated and oversized archives are refused") {
    TempDir d;
    fill_output(d);
    auto tar = pack_results(d.path.string(), PackOptions{}).result_tar;
    CHECK_THROWS_AS(parse_result_tar(""), ArchiveError);
    CHECK_THROWS_AS(parse_result_tar("this is not a tar archive at all"), ArchiveError);
    CHECK_THROWS_AS(parse_result_tar(tar.substr(0, 700)), ArchiveError);  // cut inside a member
    std::string flipped = tar;
    flipped[148] ^= 0x55;  // header checksum field
    CHECK_THROWS_AS(parse_result_tar(flipped), ArchiveError);
    ArchiveLimits small;
    small.max_archive_bytes = 1024;
    CHECK_THROWS_AS(parse_result_tar(tar, small), ArchiveError);
    ArchiveLimits tiny_member;
    tiny_member.max_member_bytes = 8;
    try {
        parse_result_tar(tar, tiny_member);
        FAIL("oversized member accepted");
    } catch (const ArchiveError& e) {
        CHECK(std::string(e.what()).find("testpkg-version") != std::string::npos);
    }
    ArchiveLimits few;
    few.max_members = 3;
    CHECK_THROWS_AS(parse_result_tar(tar, few), ArchiveError);
}

TEST_CASE("malformed members are ParseErrors naming the member") {
    TempDir d;
    d.write("testinfo.json", "{not json");
    CHECK_THROWS_AS(parse_result_tar(pack_results(d.path.string(), PackOptions{}).result_tar), ParseError);
    TempDir v;
    v.write("testpkg-version", "noversion\n");
    try {
        parse_result_tar(pack_results(v.path.string(), PackOptions{}).result_tar);
        FAIL("accepted");
    } catch (const ParseError& e) {
        CHECK(std::string(e.what()).find("testpkg-version") != std::string::npos);
    }
}

TEST_CASE("a result.tar without exitcode is refused") {
    std::string tar;
    archive* a = archive_write_new();
    archive_write_set_format_ustar(a);
    archive_write_open(
        a, &tar, nullptr,
        [](archive*, void* buf, const void* d, size_t n) -> la_ssize_t {
            static_cast<std::string*>(buf)->append(static_cast<const char*>(d), n);
            return static_cast<la_ssize_t>(n);
        },
        nullptr);
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, "duration");
    archive_entry_set_size(e, 3);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_write_header(a, e);
    archive_write_data(a, "12\n", 3);
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
    CHECK_THROWS_WITH_AS(parse_result_tar(tar), "result.tar has no exitcode member", ParseError);
}

TEST_CASE("result.tar is plain tar: a gzip-compressed archive is refused") {
    TempDir d;
    fill_output(d);
    auto f = pack_results(d.path.string(), PackOptions{});
    CHECK_THROWS_AS(parse_result_tar(f.artifacts_tar_gz), ArchiveError);
}

TEST_CASE("the request is stored in result.tar without PPA credentials") {
    TempDir d;
    TestRequest req;
    req.package = "gedit";
    req.ppas = {"bob:s3cret@lp/private-ppa", "lp/public"};
    req.uuid = "0f1e2d3c-aaaa-bbbb-cccc-111122223333";
    req.swiftuser = "bob";
    req.all_proposed = true;
    const std::string stored = req.to_stored_message();
    CHECK(stored.find("s3cret") == std::string::npos);
    CHECK(stored.find("\"lp/private-ppa\"") != std::string::npos);
    PackOptions o;
    o.request = stored;
    auto r = parse_result_tar(pack_results(d.path.string(), o).result_tar);
    REQUIRE(r.request);
    CHECK(*r.request == stored);
    auto back = parse_request(*r.request);
    CHECK(back.uuid == req.uuid);
    CHECK(back.all_proposed);
    CHECK_FALSE(back.is_private());
}
