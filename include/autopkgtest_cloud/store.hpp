/// @file store.hpp
/// The result store interface (Swift API semantics, SPEC.md section 3) and
/// the factory that opens a backend from its URL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "autopkgtest_cloud/credentials.hpp"

namespace apcloud {

/// Who may read a container.
struct ContainerAcl {
    /// True: anyone may read and list (`X-Container-Read: .r:*,.rlistings`).
    bool public_read = true;
    /// For a private container: the one user who may read it (`*:<user>`).
    std::string read_user;

    /// The Swift `X-Container-Read` value of this ACL.
    std::string swift_read_acl() const;
    /// Reads an `X-Container-Read` value back (the inverse of
    /// swift_read_acl()): public when an item grants `.r:*`; else private to
    /// the first user it names (`*:user` gives `user`, `account:user` stays
    /// as it is); else (empty, or only other referrer items) owner-only.
    /// Items are comma-separated, blanks around them ignored. Never throws.
    static ContainerAcl parse(std::string_view x_container_read);
    /// A public container.
    static ContainerAcl public_container() { return {}; }
    /// A container only `user` (and the owner) may read.
    static ContainerAcl private_to(std::string user) { return {false, std::move(user)}; }
};

/// Metadata of one stored object.
struct ObjectInfo {
    std::string name;                             ///< object name within its container
    std::uint64_t bytes = 0;                      ///< size
    std::string etag;                             ///< md5 of the content, lowercase hex
    std::string content_type;                     ///< e.g. "application/x-tar"
    std::optional<std::string> content_encoding;  ///< e.g. "gzip"
    std::string last_modified;                    ///< ISO 8601 UTC, e.g. "2024-03-21T13:04:12.000000"
};

/// An object with its content.
struct Object {
    ObjectInfo info;
    std::string data;
};

/// How to store an object.
struct PutOptions {
    std::string content_type = "application/octet-stream";
    std::optional<std::string> content_encoding;
};

/// One line of a container listing: an object, or (with a delimiter) a
/// "subdir" that rolls up every name sharing a prefix up to the delimiter.
struct ListEntry {
    std::string name;  ///< object name, or subdir name ending with the delimiter
    bool subdir = false;
    std::uint64_t bytes = 0;    ///< objects only
    std::string etag;           ///< objects only
    std::string content_type;   ///< objects only
    std::string last_modified;  ///< objects only
};

/// Swift's container listing parameters, with exactly Swift's semantics.
struct ListOptions {
    std::string prefix;                  ///< only names starting with this
    std::optional<char> delimiter;       ///< roll names up to the first delimiter after the prefix
    std::string marker;                  ///< only names strictly greater (exclusive)
    std::string end_marker;              ///< only names strictly smaller (exclusive); empty: no bound
    std::size_t limit = max_list_limit;  ///< at most this many entries (1..10000)

    /// Swift's default and maximum page size.
    static constexpr std::size_t max_list_limit = 10000;
};

/// An object read piece by piece (Store::open_object), for serving large
/// objects without holding them in memory: the caller pulls one piece after
/// the other, and the store reads ahead at most a bounded amount (a block of
/// the file; for Swift, about a megabyte of the response). Not thread-safe:
/// one reader is read by one thread at a time. Destroying it before the end
/// is fine (the rest is not read).
class ObjectReader {
public:
    virtual ~ObjectReader();
    ObjectReader(const ObjectReader&) = delete;
    ObjectReader& operator=(const ObjectReader&) = delete;

    /// The object's metadata as head() gives it, known before the first read.
    const ObjectInfo& info() const noexcept { return info_; }
    /// Replaces `chunk` with the next piece of the content (never empty, at
    /// most a few hundred kB) and returns true; at the end empties `chunk`
    /// and returns false (and keeps doing so). Throws StoreError naming the
    /// object when the content cannot be read to its end (a read error, a
    /// connection lost midway: there is no retry once content was returned).
    virtual bool read(std::string& chunk) = 0;

protected:
    explicit ObjectReader(ObjectInfo info) : info_(std::move(info)) {}

private:
    ObjectInfo info_;
};

/// A result store: containers of objects, listed like Swift. Implementations
/// are safe to use from several threads at once.
class Store {
public:
    virtual ~Store();

    /// Creates the container if needed and sets its read ACL.
    virtual void ensure_container(const std::string& container, const ContainerAcl& acl) = 0;
    /// The container's read ACL; NotFound when the container does not exist.
    virtual ContainerAcl container_acl(const std::string& container) = 0;
    /// Stores an object (replacing any previous one) atomically: readers see
    /// the old or the new content, never a part. NotFound when the container
    /// does not exist. Throws StoreError naming the object on failure.
    virtual ObjectInfo put(const std::string& container, const std::string& name, std::string_view data,
                           const PutOptions& options = {}) = 0;
    /// Stores the content of the file at `path` as an object, with the same
    /// atomicity, result and errors as put() of the same bytes. The file is
    /// read while it is uploaded, never whole into memory (the library's
    /// backends; the default, for a Store that only implements put(), reads
    /// it whole and calls put()), so its size is bounded by the disk, not by
    /// RAM. The file must not change meanwhile (Swift then refuses the upload
    /// as corrupt). Throws SystemError naming `path` when the file cannot be
    /// opened or read (it does not exist, is not a regular file ...).
    virtual ObjectInfo put_file(const std::string& container, const std::string& name,
                                const std::string& path, const PutOptions& options = {});
    /// The object, or nullopt when it (or its container) does not exist.
    virtual std::optional<Object> get(const std::string& container, const std::string& name) = 0;
    /// The object as a reader of its content, piece by piece, or nullptr when
    /// it (or its container) does not exist. The reader delivers the version
    /// that existed when it was opened: the local store keeps its file open,
    /// so a later put or remove of the name does not change what it reads;
    /// Swift serves a GET begun before a put from the old version as well,
    /// but does not promise it. The library's backends stream (the default,
    /// for a Store that only implements get(), reads the whole object with
    /// get() first). Names are checked as for get(); a failure to start
    /// reading throws StoreError naming the object (Swift: after the same
    /// retries as get()).
    virtual std::unique_ptr<ObjectReader> open_object(const std::string& container, const std::string& name);
    /// The object's metadata, or nullopt when it does not exist.
    virtual std::optional<ObjectInfo> head(const std::string& container, const std::string& name) = 0;
    /// Deletes an object; false when it did not exist.
    virtual bool remove(const std::string& container, const std::string& name) = 0;
    /// One page of the listing, sorted by name (bytewise). NotFound when the
    /// container does not exist.
    virtual std::vector<ListEntry> list(const std::string& container, const ListOptions& options) = 0;

    /// Every container of the store (the Swift account), sorted bytewise.
    /// Swift: GET on the account, paged with markers to the last page; a
    /// public storage URL cannot list its account (StoreError: listing
    /// containers needs credentials). Local store: the directories under its
    /// root whose names are container names (temporary files and other
    /// entries are skipped). The default, for a Store that does not
    /// implement it, throws StoreError.
    virtual std::vector<std::string> list_containers();

    /// Every entry of the listing: follows markers page by page to the end.
    std::vector<ListEntry> list_all(const std::string& container, ListOptions options);
    /// The listing page by page as list_all goes, each page given to
    /// `page_done` as it arrives (its entries may be moved from); stops when
    /// `page_done` returns false.
    void for_each_page(const std::string& container, ListOptions options,
                       const std::function<bool(std::vector<ListEntry>&)>& page_done);

    /// Fetches several objects; backends may fetch concurrently. The result
    /// has one slot per name, nullopt where the object does not exist.
    virtual std::vector<std::optional<Object>> get_many(const std::string& container,
                                                        const std::vector<std::string>& names);
};

/// Opens a store from its URL:
/// - `file:///path` — a local directory laid out like the containers;
/// - `swift+http://host:port/auth/v1.0` or `swift+https://...` — Swift with v1
///   (tempauth) auth; `.../v3` for Keystone v3;
/// - `http(s)://host/v1/AUTH_x` — a public Swift storage URL (reads only, no token).
/// Credentials: resolve_store_credentials(url, credentials, env); pass
/// process_environment() to let APCLOUD_SWIFT_* and OS_* variables count.
/// Throws ConfigError naming the URL when it is not one of these, or when
/// Swift credentials are missing.
std::unique_ptr<Store> open_store(const std::string& url, const StoreCredentials& credentials = {},
                                  const Environment& env = {});

/// Object names a store refuses: empty, over 1024 bytes, not UTF-8, with NUL,
/// absolute, or with `.`/`..` path segments. Throws ValidationError("object", name).
void check_object_name(std::string_view name);

/// Container names a store refuses: empty, over 256 bytes, with '/' or NUL,
/// `.` or `..`. Throws ValidationError("container", name).
void check_container_name(std::string_view name);

}  // namespace apcloud
