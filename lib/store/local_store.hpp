// The local directory store (private header): containers as directories,
// objects as plain files at ROOT/<container>/<object name>.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "autopkgtest_cloud/store.hpp"

namespace apcloud {

/// Opens the directory store rooted at `root` (created if missing).
///
/// Layout: `ROOT/<container>/<object name, its slashes as directories>` is the
/// object's content, byte for byte, so plain tools read results directly.
/// Object metadata (etag, size, content type and encoding, last modified) is
/// an extended attribute of the object's own file (`local_meta_xattr`), and a
/// container's read ACL one of its directory (`local_acl_xattr`). The
/// filesystem must support user extended attributes (ext4, xfs, btrfs do).
///
/// Because a name is a path, this store cannot hold both `a` and `a/b`
/// (StoreError), nor a name ending in '/' or with a segment longer than 255
/// bytes (ValidationError), where Swift accepts them. The result layout never
/// produces such names; get/head/remove of them find nothing.
std::unique_ptr<Store> make_local_store(const std::string& root);

/// The first bytes of the name of every temporary file the local store
/// writes (beside its final object, then renamed over it). 0xFF never occurs
/// in UTF-8, and object names are UTF-8, so a temporary file can never be
/// taken for an object (listings skip every entry whose name is not UTF-8).
/// A crashed writer leaves such a file behind; it stays invisible.
inline constexpr std::string_view local_temp_prefix =
    "\xff"
    "apcloud-tmp.";

/// The extended attribute holding an object's metadata (a JSON object).
inline constexpr const char* local_meta_xattr = "user.apcloud.meta";

/// The extended attribute holding a container's read ACL, in Swift's
/// `X-Container-Read` form (`.r:*,.rlistings` or `*:<user>`).
inline constexpr const char* local_acl_xattr = "user.apcloud.acl";

/// The form Swift gives a content type in container listings: parameters
/// rejoined without blanks (`text/plain; charset=UTF-8` lists as
/// `text/plain;charset=UTF-8`), while HEAD and GET give it as stored.
std::string swift_listing_content_type(std::string_view content_type);

}  // namespace apcloud
