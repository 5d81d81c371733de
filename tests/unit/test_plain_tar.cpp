// Unit tests of the plain tar reader: on archives in each format libarchive
// writes it finds exactly the regular files libarchive reads, and it refuses
// (leaving them to libarchive) everything it does not read itself.
#include <archive.h>
#include <archive_entry.h>
#include <doctest/doctest.h>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/result.hpp>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/plain_tar.hpp"

using namespace apcloud;
using Members = std::vector<std::pair<std::string, std::string>>;

namespace {

struct Entry {
    std::string name, content;
    bool dir = false;
    std::string symlink = {};  ///< a symbolic link to this, when not empty
};

// An archive of `entries` in one of libarchive's tar formats.
std::string write_tar(int format, const std::vector<Entry>& entries) {
    std::unique_ptr<archive, int (*)(archive*)> a(archive_write_new(), archive_write_free);
    archive_write_set_format(a.get(), format);
    archive_write_set_bytes_per_block(a.get(), 10240);
    std::string out;
    archive_write_open(
        a.get(), &out, nullptr,
        [](archive*, void* sink, const void* buf, size_t n) -> la_ssize_t {
            static_cast<std::string*>(sink)->append(static_cast<const char*>(buf), n);
            return static_cast<la_ssize_t>(n);
        },
        nullptr);
    for (const auto& e : entries) {
        std::unique_ptr<archive_entry, void (*)(archive_entry*)> ent(archive_entry_new(), archive_entry_free);
        archive_entry_set_pathname(ent.get(), e.name.c_str());
        archive_entry_set_filetype(ent.get(), e.dir ? AE_IFDIR : !e.symlink.empty() ? AE_IFLNK : AE_IFREG);
        if (!e.symlink.empty()) archive_entry_set_symlink(ent.get(), e.symlink.c_str());
        archive_entry_set_perm(ent.get(), e.dir ? 0755 : 0644);
        archive_entry_set_size(ent.get(), static_cast<la_int64_t>(e.content.size()));
        archive_entry_set_mtime(ent.get(), 1700000000, 0);
        REQUIRE(archive_write_header(a.get(), ent.get()) == ARCHIVE_OK);
        if (!e.content.empty()) archive_write_data(a.get(), e.content.data(), e.content.size());
    }
    archive_write_close(a.get());
    return out;
}

// The regular files as libarchive reads them.
Members with_libarchive(const std::string& data) {
    std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
    archive_read_support_format_tar(a.get());
    REQUIRE(archive_read_open_memory(a.get(), data.data(), data.size()) == ARCHIVE_OK);
    Members out;
    archive_entry* e;
    while (archive_read_next_header(a.get(), &e) == ARCHIVE_OK) {
        if (archive_entry_filetype(e) != AE_IFREG) continue;
        std::string content(static_cast<std::size_t>(archive_entry_size(e)), '\0');
        if (!content.empty()) archive_read_data(a.get(), content.data(), content.size());
        out.emplace_back(archive_entry_pathname(e), content);
    }
    return out;
}

Members scanned(const std::string& data) {
    auto m = detail::scan_plain_tar(data);
    REQUIRE(m.has_value());
    Members out;
    for (const auto& x : *m) out.emplace_back(std::string(x.name), std::string(x.content));
    return out;
}

const std::vector<Entry> result_like = {
    {"exitcode", "0\n"},
    {"duration", "123\n"},
    {"testpkg-version", "gedit 1.0-1\n"},
    {"files", "", true},
    {"testbed-packages", std::string(12851, 'p')},
    {"empty", ""},
    {"block", std::string(512, 'b')},
    {"summary", "smoke PASS\n"},
};

}  // namespace

TEST_CASE("plain archives: the same members as libarchive, in ustar, GNU and restricted pax formats") {
    for (int format :
         {ARCHIVE_FORMAT_TAR_USTAR, ARCHIVE_FORMAT_TAR_GNUTAR, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED}) {
        CAPTURE(format);
        const std::string tar = write_tar(format, result_like);
        const Members expected = with_libarchive(tar);
        REQUIRE(expected.size() == 7);
        CHECK(scanned(tar) == expected);
        CHECK(read_archive(tar) == expected);
    }
    // Only an end block: no members.
    CHECK(detail::scan_plain_tar(std::string(1024, '\0'))->empty());
}

TEST_CASE("what is not plain is left to libarchive, which reads it the same way as before") {
    const std::string long_name = std::string(120, 'd') + "/member";
    const std::vector<Entry> long_entries = {{"dir/" + long_name, "long\n"}, {"exitcode", "0\n"}};
    for (int format : {ARCHIVE_FORMAT_TAR_USTAR, ARCHIVE_FORMAT_TAR_GNUTAR, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED,
                       ARCHIVE_FORMAT_TAR_PAX_INTERCHANGE}) {
        CAPTURE(format);
        const std::string tar = write_tar(format, long_entries);  // a prefix, a long-name or a pax record
        CHECK_FALSE(detail::scan_plain_tar(tar).has_value());
        CHECK(read_archive(tar) == with_libarchive(tar));
        CHECK(read_archive(tar).at(0).first == "dir/" + long_name);
    }
    const std::string tar = write_tar(ARCHIVE_FORMAT_TAR_USTAR, result_like);
    std::string bad_sum = tar;
    bad_sum[0] = 'X';  // the name changes, the checksum does not
    CHECK_FALSE(detail::scan_plain_tar(bad_sum).has_value());
    CHECK_THROWS_AS(read_archive(bad_sum), ArchiveError);
    // Truncated in a member, or before any end block.
    CHECK_FALSE(detail::scan_plain_tar(tar.substr(0, 1024 + 100)).has_value());
    CHECK_FALSE(detail::scan_plain_tar(tar.substr(0, 512 * 3)).has_value());
    CHECK_FALSE(detail::scan_plain_tar("").has_value());
    CHECK_FALSE(detail::scan_plain_tar("\x1f\x8b\x08" + std::string(1021, '\0')).has_value());
    // A symbolic link: libarchive's, skipped there as it is not a regular file.
    const std::string link = write_tar(ARCHIVE_FORMAT_TAR_USTAR, {{"link", "", false, "exitcode"}});
    CHECK_FALSE(detail::scan_plain_tar(link).has_value());
    CHECK(read_archive(link).empty());
    // The limits hold on both paths, with the same messages.
    ArchiveLimits small;
    small.max_member_bytes = 1000;
    CHECK_THROWS_WITH_AS(read_archive(tar, small), doctest::Contains("testbed-packages"), ArchiveError);
    small = {};
    small.max_members = 3;
    CHECK_THROWS_WITH_AS(read_archive(tar, small), "archive has more than 3 members", ArchiveError);
}

TEST_CASE(
    "an archive libarchive refuses without a message is an ArchiveError, not a crash (found by fuzzing)") {
    const char* data = std::getenv("APCLOUD_TEST_DATA");
    REQUIRE(data != nullptr);
    std::ifstream in(std::string(data) + "/../fuzz/corpus/archive/regression-null-error-message",
                     std::ios::binary);
    REQUIRE(in);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK_THROWS_AS(read_archive(bytes), ArchiveError);
    CHECK_THROWS_AS(parse_result_tar(bytes), ArchiveError);
}
