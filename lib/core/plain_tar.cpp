// A reader of plain tar archives (see plain_tar.hpp); the header layout is
// POSIX.1-1988 ustar's (pax's "ustar Interchange Format"), which GNU tar shares.
#include "core/plain_tar.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

namespace apcloud::detail {

namespace {

constexpr std::size_t block = 512;

// Offsets and lengths of the header fields used here.
constexpr std::size_t name_at = 0, name_len = 100;
constexpr std::size_t mode_at = 100, uid_at = 108, gid_at = 116, id_len = 8;
constexpr std::size_t size_at = 124, size_len = 12;
constexpr std::size_t mtime_at = 136, mtime_len = 12;
constexpr std::size_t devmajor_at = 329, devminor_at = 337, dev_len = 8;
constexpr std::size_t checksum_at = 148, checksum_len = 8;
constexpr std::size_t type_at = 156;
constexpr std::size_t magic_at = 257;  // "ustar\0" "00" (POSIX) or "ustar  \0" (GNU)
constexpr std::size_t prefix_at = 345, prefix_len = 155;

bool all_zero(std::string_view bytes) {
    static const char zeros[block] = {};
    return bytes.size() <= block && std::memcmp(bytes.data(), zeros, bytes.size()) == 0;
}

// An octal number field: optional leading spaces, at least one digit, then
// only NULs or spaces. Nullopt for anything else (base-256 included).
std::optional<std::uint64_t> octal(std::string_view field) {
    std::size_t i = 0;
    while (i < field.size() && field[i] == ' ') ++i;
    std::uint64_t v = 0;
    std::size_t digits = 0;
    for (; i < field.size() && field[i] >= '0' && field[i] <= '7'; ++i, ++digits)
        v = v * 8 + (field[i] - '0');
    if (digits == 0 || digits > 21) return std::nullopt;
    for (; i < field.size(); ++i)
        if (field[i] != '\0' && field[i] != ' ') return std::nullopt;
    return v;
}

// The field up to its first NUL.
std::string_view c_string(std::string_view field) {
    auto nul = field.find('\0');
    return nul == std::string_view::npos ? field : field.substr(0, nul);
}

bool checksum_matches(std::string_view h) {
    const auto stored = octal(h.substr(checksum_at, checksum_len));
    if (!stored) return false;
    // The sum of the header's bytes with the checksum field's taken as spaces.
    std::uint64_t sum = 0;
    for (unsigned char c : h) sum += c;
    for (unsigned char c : h.substr(checksum_at, checksum_len)) sum -= c;
    return sum + checksum_len * ' ' == *stored;
}

bool printable_ascii(std::string_view s) {
    for (char c : s)
        if (c < 0x20 || c > 0x7e) return false;
    return true;
}

}  // namespace

std::optional<std::vector<PlainTarMember>> scan_plain_tar(std::string_view data) {
    std::vector<PlainTarMember> out;
    for (std::size_t at = 0;;) {
        if (data.size() - at < block) return std::nullopt;  // truncated, or no end block
        const std::string_view h = data.substr(at, block);
        if (all_zero(h)) return out;
        if (!checksum_matches(h)) return std::nullopt;
        const std::string_view magic = h.substr(magic_at, 8);
        const bool posix = magic == std::string_view(
                                        "ustar\0"
                                        "00",
                                        8);
        const bool gnu = magic == std::string_view("ustar  \0", 8);
        if (!posix && !gnu) return std::nullopt;
        // POSIX: a longer name's first part; GNU: times and sparse maps. Either way not plain.
        if (!all_zero(h.substr(prefix_at, prefix_len))) return std::nullopt;
        const std::string_view name = c_string(h.substr(name_at, name_len));
        if (name.empty() || !printable_ascii(name)) return std::nullopt;
        const auto size = octal(h.substr(size_at, size_len));
        if (!size) return std::nullopt;
        // The other numbers as every writer writes them (libarchive refuses
        // an archive whose first header has a malformed one).
        for (auto [at, len] :
             {std::pair{mode_at, id_len}, {uid_at, id_len}, {gid_at, id_len}, {mtime_at, mtime_len}})
            if (!octal(h.substr(at, len))) return std::nullopt;
        for (std::size_t at : {devmajor_at, devminor_at})
            if (!all_zero(h.substr(at, dev_len)) && !octal(h.substr(at, dev_len))) return std::nullopt;
        const char type = h[type_at];
        at += block;
        if (type == '5') {
            if (*size != 0) return std::nullopt;
            continue;
        }
        // A name ending in '/' is a directory to old readers: not plain.
        if ((type != '0' && type != '\0') || name.back() == '/') return std::nullopt;
        if (*size > data.size() - at) return std::nullopt;
        out.push_back({name, data.substr(at, static_cast<std::size_t>(*size))});
        const std::uint64_t padded = (*size + block - 1) / block * block;
        if (padded > data.size() - at) return std::nullopt;
        at += static_cast<std::size_t>(padded);
    }
}

}  // namespace apcloud::detail
