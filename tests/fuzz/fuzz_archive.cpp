// Fuzzing the archive readers: result.tar parsing and read_archive (gzip too)
// must refuse bad input with an Error, and the plain-tar scanner must agree
// with libarchive on every archive it reads itself (a difference aborts).
#include <archive.h>
#include <archive_entry.h>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/result.hpp>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/plain_tar.hpp"
#include "fuzz.hpp"

namespace {

using Members = std::vector<std::pair<std::string, std::string>>;

// The regular files as libarchive reads them; nullopt when it fails.
std::optional<Members> with_libarchive(std::string_view data) {
    std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
    archive_read_support_format_tar(a.get());
    if (archive_read_open_memory(a.get(), data.data(), data.size()) != ARCHIVE_OK) return std::nullopt;
    Members out;
    archive_entry* e;
    for (;;) {
        const int rc = archive_read_next_header(a.get(), &e);
        if (rc == ARCHIVE_EOF) return out;
        if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return std::nullopt;
        if (archive_entry_filetype(e) != AE_IFREG) continue;
        const auto size = archive_entry_size(e);
        if (size < 0 || size > (1 << 24)) return std::nullopt;
        std::string content(static_cast<std::size_t>(size), '\0');
        std::size_t got = 0;
        while (got < content.size()) {
            const auto n = archive_read_data(a.get(), content.data() + got, content.size() - got);
            if (n <= 0) return std::nullopt;
            got += static_cast<std::size_t>(n);
        }
        const char* name = archive_entry_pathname(e);
        out.emplace_back(name ? name : "", std::move(content));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto bytes = fuzz::text(data, size);
    if (const auto plain = apcloud::detail::scan_plain_tar(bytes)) {
        Members mine;
        for (const auto& m : *plain) mine.emplace_back(std::string(m.name), std::string(m.content));
        if (with_libarchive(bytes) != mine) std::abort();  // the fast path reads what libarchive would not
    }
    apcloud::ArchiveLimits small;
    small.max_archive_bytes = 1 << 20;
    small.max_member_bytes = 1 << 18;
    small.max_members = 16;
    try {
        (void)apcloud::parse_result_tar(bytes, small, apcloud::ResultDetail::summary);
    } catch (const apcloud::Error&) {
    }
    try {
        (void)apcloud::read_archive(bytes, small);
    } catch (const apcloud::Error&) {
    }
    return 0;
}
