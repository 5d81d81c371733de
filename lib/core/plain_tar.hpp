// The common case of a tar archive read without a library: POSIX ustar or GNU
// headers of regular files and directories, each header's checksum right, the
// archive ended by a zero block. result.tar as our worker and the reference's
// write it is exactly that; indexing a store reads a hundred thousand of them,
// and this costs a tenth of opening each with libarchive (bench-index-ingest).
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace apcloud::detail {

/// One regular file of a plain tar archive: its name and its content, both
/// viewing the archive's bytes.
struct PlainTarMember {
    std::string_view name;
    std::string_view content;
};

/// The regular files of `data` in archive order when it is a plain tar
/// archive as above; nullopt for anything else (pax or GNU long-name
/// records, a ustar name prefix, links, devices, base-256 or malformed
/// numbers, names not printable ASCII, a bad checksum, truncation, no end
/// block, compressed data), which the caller
/// reads with a full tar reader instead.
std::optional<std::vector<PlainTarMember>> scan_plain_tar(std::string_view data);

}  // namespace apcloud::detail
