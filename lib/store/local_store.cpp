// The local directory store: containers as directories and objects as plain
// files, laid out exactly like the Swift containers and listed like Swift.
//
// Why metadata lives in extended attributes of the object's own file rather
// than in sidecar files: the attribute is set on the temporary file before
// it is renamed into place, so a single rename publishes content and metadata
// together. No reader sees one without the other, and when two processes put
// the same name the last rename wins with its own metadata. A sidecar needs a
// second rename (a window where data and metadata disagree, and interleaved
// writers can pair one's data with the other's metadata), and a sidecar name
// could collide with an object name, since any UTF-8 name is a valid object
// name. Swift's object server keeps object metadata in xattrs for the same
// reasons. A file without the attribute (copied in by hand, restored without
// xattrs) or whose attribute no longer matches its size and mtime still
// reads: its metadata is derived from the file (md5 computed, size, mtime).
#include "store/local_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <ctime>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <utility>
#include <vector>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/file_io.hpp"
#include "autopkgtest_cloud/request.hpp"
#include "core/digest.hpp"
#include "core/json_reader.hpp"
#include "core/time_text.hpp"
#include "store/files.hpp"

namespace apcloud {

namespace {

using Json = nlohmann::json;
using detail::Fd;

// Bounded retries of a put whose directory a concurrent remove pruned.
constexpr int max_put_attempts = 100;

bool starts_with(std::string_view s, std::string_view p) {
    return s.size() >= p.size() && s.compare(0, p.size(), p) == 0;
}

std::string what_object(const std::string& container, std::string_view name) {
    return fmt::format("object {} in container {}", quote_for_message(name), quote_for_message(container));
}

// Swift's listing timestamp form, UTC with microseconds.
std::string iso_time(const timespec& ts) {
    return detail::format_iso_time(ts.tv_sec, static_cast<unsigned>(ts.tv_nsec / 1000));
}

// A content type for a file that has no recorded one, from its extension.
std::string guess_content_type(std::string_view name) {
    auto ends = [&](std::string_view s) {
        return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    if (ends(".tar")) return "application/x-tar";
    if (ends(".gz")) return "application/gzip";
    if (ends(".json")) return "application/json";
    if (ends(".txt") || ends(".log")) return "text/plain";
    return "application/octet-stream";
}

// Header values end up in HTTP headers when served; refuse what cannot.
void check_header_value(const char* field, const std::string& value) {
    if (value.size() > 1024) throw ValidationError(field, value, "longer than 1024 bytes");
    if (!is_valid_utf8(value)) throw ValidationError(field, value, "not UTF-8");
    for (unsigned char c : value)
        if (c < 0x20 || c == 0x7f) throw ValidationError(field, value, "contains a control character");
}

// Why this store cannot hold a name Swift can (a path, not a key), or null.
const char* unholdable(const std::string& name) {
    if (name.back() == '/') return "the local store cannot hold a name ending in '/'";
    std::size_t start = 0;
    while (start < name.size()) {
        auto end = std::min(name.find('/', start), name.size());
        if (end - start > 255)
            return "the local store cannot hold a name with a segment longer than 255 bytes (a file name)";
        start = end + 1;
    }
    return nullptr;
}

std::optional<std::string> fget_xattr(int fd, const char* attr) {
    std::string buf(512, '\0');
    for (;;) {
        ssize_t n = fgetxattr(fd, attr, buf.data(), buf.size());
        if (n >= 0) {
            buf.resize(static_cast<std::size_t>(n));
            return buf;
        }
        if (errno != ERANGE) return std::nullopt;  // absent, or xattrs unsupported: derive
        ssize_t need = fgetxattr(fd, attr, nullptr, 0);
        if (need < 0) return std::nullopt;
        buf.assign(static_cast<std::size_t>(need) + 1, '\0');
    }
}

// The MD5 of an open object file's content, read in blocks.
std::string md5_of_open_file(int fd, const std::string& path) {
    detail::Digest m("md5");
    try {
        detail::read_blocks(fd, path, [&](const char* data, std::size_t n) { m.update(data, n); });
    } catch (const SystemError& e) {
        throw StoreError(fmt::format("local store: {}", e.what()));
    }
    return m.hex();
}

// Reads an open object file's metadata: the recorded attribute when it still
// describes the file, else derived from the file. `data` is the content when
// the caller has read it already (saves a second read for the md5).
// The attribute's fields (written by put, see the end of this file); nullopt
// when it is not a JSON object. Read without building a document: a get
// reads it for every object (bench-index-ingest).
struct LocalMeta {
    std::optional<std::string> content_type, content_encoding, etag, last_modified;
    std::optional<std::uint64_t> bytes;
    std::optional<std::int64_t> mtime;
};

std::optional<LocalMeta> parse_local_meta(std::string_view raw) {
    // A JSON integer's value (no fraction or exponent); nullopt for any other number.
    auto integer = [](std::string_view text, auto& out) {
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
        return ec == std::errc() && end == text.data() + text.size();
    };
    try {
        LocalMeta m;
        detail::JsonReader in(raw);
        if (in.peek() != detail::JsonType::object) return std::nullopt;
        in.begin_object();
        std::string key;
        while (in.next_key(key)) {
            const auto type = in.peek();
            std::optional<std::string>* text = key == "content_type"       ? &m.content_type
                                               : key == "content_encoding" ? &m.content_encoding
                                               : key == "etag"             ? &m.etag
                                               : key == "last_modified"    ? &m.last_modified
                                                                           : nullptr;
            if (text && type == detail::JsonType::string) {
                in.read_string(text->emplace());
            } else if (text) {
                in.skip_value();
                text->reset();
            } else if ((key == "bytes" || key == "mtime") && type == detail::JsonType::number) {
                const auto number = in.read_number();
                std::uint64_t u = 0;
                std::int64_t i = 0;
                if (key == "bytes")
                    m.bytes = integer(number, u) ? std::optional<std::uint64_t>(u) : std::nullopt;
                else
                    m.mtime = integer(number, i) ? std::optional<std::int64_t>(i) : std::nullopt;
            } else {
                in.skip_value();
                if (key == "bytes") m.bytes.reset();
                if (key == "mtime") m.mtime.reset();
            }
        }
        in.finish();
        return m;
    } catch (const ParseError&) {
        return std::nullopt;
    }
}

// Reads an open object file's metadata: the recorded attribute when it still
// describes the file, else derived from the file. `data` is the content when
// the caller has read it already (saves a second read for the md5).
ObjectInfo object_info(int fd, const struct stat& st, const std::string& name, const std::string* data,
                       const std::string& path) {
    ObjectInfo info;
    info.name = name;
    info.bytes = static_cast<std::uint64_t>(st.st_size);
    std::optional<LocalMeta> meta;
    if (auto raw = fget_xattr(fd, local_meta_xattr)) meta = parse_local_meta(*raw);
    if (meta && meta->content_type)
        info.content_type = *meta->content_type;
    else
        info.content_type = guess_content_type(name);
    if (meta) info.content_encoding = meta->content_encoding;
    // The attribute describes this file only while size and mtime are the
    // ones recorded: an edit in place (by hand) makes it stale.
    const bool fresh = meta && meta->etag && meta->last_modified && meta->bytes == info.bytes &&
                       meta->mtime == static_cast<std::int64_t>(st.st_mtim.tv_sec);
    if (fresh) {
        info.etag = *meta->etag;
        info.last_modified = *meta->last_modified;
        return info;
    }
    // Changed or placed by hand: the content is the truth.
    info.last_modified = iso_time(st.st_mtim);
    info.etag = data != nullptr ? detail::hex_digest("md5", *data) : md5_of_open_file(fd, path);
    return info;
}

void fsync_dir(const std::string& path) {
    Fd d(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (d) ::fsync(d.get());
}

std::string parent_of(const std::string& rel) {
    auto slash = rel.rfind('/');
    return slash == std::string::npos ? std::string() : rel.substr(0, slash);
}

// A directory entry: its name and its type (DT_DIR, DT_REG, ..., DT_UNKNOWN).
struct DirEntry {
    const char* d_name;
    unsigned char d_type;
};

// Calls `visit` with every entry of the directory `path` whose name an object
// or container can have (not "." or "..", and UTF-8: so never a temporary
// file of a put, see local_temp_prefix), and the directory's descriptor (for
// fstatat). False when there is no such directory (ENOENT, ENOTDIR,
// ENAMETOOLONG); StoreError naming it when it cannot be read.
// Read with getdents64 into a buffer on the stack: opendir's 32 KiB buffer,
// allocated for every directory, was a tenth of listing a store of runs
// (bench-index-ingest).
bool for_each_entry(const std::string& path, const std::function<void(int dfd, const DirEntry& ent)>& visit) {
    Fd d(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d) {
        if (errno == ENOENT || errno == ENOTDIR || errno == ENAMETOOLONG) return false;
        throw StoreError(fmt::format("local store: cannot list directory {}: {}", quote_for_message(path),
                                     errno_message(errno)));
    }
    alignas(struct dirent64) char buf[8192];
    for (;;) {
        const ssize_t n = ::getdents64(d.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        // A directory removed while open reads as empty (POSIX; glibc's readdir does the same).
        if (n < 0 && errno == ENOENT) return true;
        if (n < 0)
            throw StoreError(fmt::format("local store: cannot read directory {}: {}", quote_for_message(path),
                                         errno_message(errno)));
        if (n == 0) return true;
        for (ssize_t at = 0; at < n;) {
            const auto* ent = reinterpret_cast<const struct dirent64*>(buf + at);
            at += ent->d_reclen;
            const std::string_view nm = ent->d_name;
            if (nm != "." && nm != ".." && is_valid_utf8(nm))
                visit(d.get(), DirEntry{ent->d_name, ent->d_type});
        }
    }
}

// Yields the object names under one directory of a container in bytewise
// order, without reading more of the tree than the bounds require. Each
// directory is read and sorted by "entry name, plus '/' for a directory":
// names below a directory `d` all start with `d/`, and a file name has no
// '/', so sorting entries by that key gives exactly the order of full names
// ("a-b" < "a.b" < "a/..." < "a0"), although a directory walk would not.
class Walker {
public:
    Walker(std::string container_dir, const ListOptions& o) : dir_(std::move(container_dir)), o_(o) {
        // Only the directory the prefix designates (up to its last '/') can
        // hold names starting with the prefix.
        auto slash = o_.prefix.rfind('/');
        std::string start = slash == std::string::npos ? std::string() : o_.prefix.substr(0, slash + 1);
        if (!start.empty() && (!walkable(start) || judge_dir(start) != Verdict::take)) return;
        load(start);
    }

    /// The next object name within the prefix, marker and end marker.
    std::optional<std::string> next() {
        while (!stack_.empty()) {
            Frame& f = stack_.back();
            if (f.pos >= f.entries.size()) {
                stack_.pop_back();
                continue;
            }
            Entry e = std::move(f.entries[f.pos++]);
            Verdict v = e.dir ? judge_dir(e.key) : judge_file(e.key);
            if (v == Verdict::stop) {
                stack_.clear();
                break;
            }
            if (v == Verdict::skip) continue;
            if (!e.dir) return std::move(e.key);
            load(e.key);
        }
        return std::nullopt;
    }

    /// Skips every remaining name that starts with `s` (a rolled-up subdir).
    void skip_prefix(const std::string& s) {
        while (!stack_.empty() && starts_with(stack_.back().key, s)) stack_.pop_back();
        if (stack_.empty()) return;
        Frame& f = stack_.back();
        while (f.pos < f.entries.size() && starts_with(f.entries[f.pos].key, s)) ++f.pos;
    }

private:
    struct Entry {
        std::string key;  // name relative to the container; directories end in '/'
        bool dir;
    };
    struct Frame {
        std::string key;
        std::vector<Entry> entries;
        std::size_t pos = 0;
    };
    enum class Verdict { take, skip, stop };

    // A prefix directory with an empty, "." or ".." segment (or a NUL) names
    // no object, and must never be opened: it could lead out of the tree.
    static bool walkable(const std::string& key) {
        std::size_t start = 0;
        while (start < key.size()) {
            auto end = key.find('/', start);
            std::string_view seg(key.data() + start, end - start);
            if (seg.empty() || seg == "." || seg == ".." || seg.find('\0') != std::string_view::npos ||
                !is_valid_utf8(seg))
                return false;
            start = end + 1;
        }
        return true;
    }

    Verdict judge_file(const std::string& n) const {
        if (!o_.end_marker.empty() && n >= o_.end_marker) return Verdict::stop;
        if (!starts_with(n, o_.prefix)) return n > o_.prefix ? Verdict::stop : Verdict::skip;
        if (n <= o_.marker) return Verdict::skip;
        return Verdict::take;
    }

    // `k` ends in '/'; every name below it starts with `k` and is longer.
    Verdict judge_dir(const std::string& k) const {
        if (!o_.end_marker.empty() && o_.end_marker <= k) return Verdict::stop;
        if (!starts_with(k, o_.prefix) && !starts_with(o_.prefix, k))
            return k > o_.prefix ? Verdict::stop : Verdict::skip;
        if (o_.marker > k && !starts_with(o_.marker, k)) return Verdict::skip;
        return Verdict::take;
    }

    void load(const std::string& key) {
        const std::string path = key.empty() ? dir_ : dir_ + "/" + key.substr(0, key.size() - 1);
        Frame f;
        f.key = key;
        // Gone (removed meanwhile) or a file where the prefix needs a
        // directory: nothing to list there.
        if (!for_each_entry(path, [&](int dfd, const DirEntry& ent) {
                bool is_dir = false;
                if (!classify(dfd, ent, is_dir)) return;
                f.entries.push_back({key + ent.d_name + (is_dir ? "/" : ""), is_dir});
            }))
            return;
        std::sort(f.entries.begin(), f.entries.end(),
                  [](const Entry& a, const Entry& b) { return a.key < b.key; });
        stack_.push_back(std::move(f));
    }

    // Whether a directory entry can hold objects: a file (or a link to one,
    // placed by hand, read through) or a directory (`is_dir`). Links to
    // directories are not followed (no loops).
    static bool classify(int dfd, const DirEntry& ent, bool& is_dir) {
        is_dir = ent.d_type == DT_DIR;
        if (ent.d_type == DT_DIR || ent.d_type == DT_REG) return true;
        if (ent.d_type != DT_LNK && ent.d_type != DT_UNKNOWN) return false;
        struct stat st {};
        if (::fstatat(dfd, ent.d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) return false;
        if (S_ISDIR(st.st_mode)) {
            is_dir = true;
            return true;
        }
        if (S_ISLNK(st.st_mode)) return ::fstatat(dfd, ent.d_name, &st, 0) == 0 && S_ISREG(st.st_mode);
        return S_ISREG(st.st_mode);
    }

    std::string dir_;
    const ListOptions& o_;
    std::vector<Frame> stack_;
};

// Writes bytes of a put into its temporary file `temp_path`; a failure (a
// full disk, say) is the put's StoreError.
void write_temp(int fd, std::string_view data, const std::string& temp_path, const std::string& container,
                const std::string& name) {
    try {
        write_all(fd, data, temp_path);
    } catch (const SystemError& e) {
        throw StoreError(
            fmt::format("local store: cannot write {}: {}", what_object(container, name), e.what()));
    }
}

// Reads an open object file block by block. The descriptor keeps the version
// it was opened on: a put renames a new file over the name and a remove
// unlinks it, and neither touches this inode.
class LocalObjectReader final : public ObjectReader {
public:
    LocalObjectReader(ObjectInfo info, Fd fd, std::string path, std::string what)
        : ObjectReader(std::move(info)), fd_(std::move(fd)), path_(std::move(path)), what_(std::move(what)) {}

    bool read(std::string& chunk) override {
        if (!fd_) {
            chunk.clear();
            return false;
        }
        chunk.resize(detail::file_block_size);
        std::size_t n = 0;
        try {
            n = detail::read_at(fd_.get(), offset_, chunk.data(), chunk.size(), path_);
        } catch (const SystemError& e) {
            chunk.clear();
            throw StoreError(fmt::format("local store: cannot read {}: {}", what_, e.what()));
        }
        chunk.resize(n);
        offset_ += n;
        if (n == 0) fd_.reset();  // at the end: no need to hold the file any longer
        return n != 0;
    }

private:
    Fd fd_;
    std::string path_;  // for messages
    std::string what_;  // the object, for messages
    std::uint64_t offset_ = 0;
};

class LocalStore final : public Store {
public:
    explicit LocalStore(std::string root) : root_(std::move(root)) {
        while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
        std::string path;
        // mkdir -p, each level in turn.
        std::size_t pos = 0;
        while (pos != std::string::npos) {
            pos = root_.find('/', pos + 1);
            path = root_.substr(0, pos);
            if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
                throw StoreError(fmt::format("local store: cannot create directory {}: {}",
                                             quote_for_message(path), errno_message(errno)));
        }
        struct stat st {};
        if (::stat(root_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
            throw StoreError(
                fmt::format("local store: root {} is not a directory", quote_for_message(root_)));
    }

    void ensure_container(const std::string& container, const ContainerAcl& acl) override {
        check_container_name(container);
        const std::string path = container_dir(container);
        if (::mkdir(path.c_str(), 0755) == 0) {
            fsync_dir(root_);
        } else if (errno != EEXIST) {
            throw StoreError(fmt::format("local store: cannot create container {} at {}: {}",
                                         quote_for_message(container), quote_for_message(path),
                                         errno_message(errno)));
        } else if (!is_dir(path)) {
            throw StoreError(
                fmt::format("local store: cannot create container {}: {} exists and is not a directory",
                            quote_for_message(container), quote_for_message(path)));
        }
        // Only a public container is open to the host's other users: a private
        // one (owner-only or named readers, who read through the web service) is 0700.
        if (::chmod(path.c_str(), acl.public_read ? 0755 : 0700) != 0)
            throw StoreError(fmt::format("local store: cannot set the mode of container {} on {}: {}",
                                         quote_for_message(container), quote_for_message(path),
                                         errno_message(errno)));
        // Swift's header form, readable with getfattr; owner-only is empty.
        const std::string value = acl.public_read || !acl.read_user.empty() ? acl.swift_read_acl() : "";
        if (::setxattr(path.c_str(), local_acl_xattr, value.data(), value.size(), 0) != 0)
            throw StoreError(fmt::format("local store: cannot record the ACL of container {} on {}: {}",
                                         quote_for_message(container), quote_for_message(path),
                                         xattr_error(errno)));
    }

    ContainerAcl container_acl(const std::string& container) override {
        check_container_name(container);
        const std::string path = require_container(container);
        std::string buf(512, '\0');
        ssize_t n = ::getxattr(path.c_str(), local_acl_xattr, buf.data(), buf.size());
        if (n < 0) {
            if (errno == ENOENT) throw missing_container(container);
            if (errno == ENODATA || errno == ENOTSUP) return {false, ""};  // made by hand: fail closed
            throw StoreError(fmt::format("local store: cannot read the ACL of container {}: {}",
                                         quote_for_message(container), errno_message(errno)));
        }
        buf.resize(static_cast<std::size_t>(n));
        return ContainerAcl::parse(buf);
    }

    ObjectInfo put(const std::string& container, const std::string& name, std::string_view data,
                   const PutOptions& options) override {
        ObjectInfo info = new_object(container, name, options);
        info.bytes = data.size();
        info.etag = detail::hex_digest("md5", data);
        publish(container, info, [&](int fd, const std::string& temp_path) {
            write_temp(fd, data, temp_path, container, name);
        });
        return info;
    }

    ObjectInfo put_file(const std::string& container, const std::string& name, const std::string& path,
                        const PutOptions& options) override {
        ObjectInfo info = new_object(container, name, options);
        const detail::SourceFile source(path);
        publish(container, info, [&](int fd, const std::string& temp_path) {
            // One pass over the file: each block is hashed and written.
            detail::Digest md5("md5");
            info.bytes = source.read([&](const char* block, std::size_t n) {
                md5.update(block, n);
                write_temp(fd, std::string_view(block, n), temp_path, container, name);
            });
            info.etag = md5.hex();
        });
        return info;
    }

    std::optional<Object> get(const std::string& container, const std::string& name) override {
        check_container_name(container);
        check_object_name(name);
        if (unholdable(name)) return std::nullopt;
        const std::string path = container_dir(container) + "/" + name;
        auto file = open_regular(path, container, name);
        if (!file) return std::nullopt;
        auto& [fd, st] = *file;
        Object obj;
        // The descriptor keeps this version's inode: a concurrent put renames
        // a new file over the name and never touches what we read.
        try {
            obj.data = detail::read_whole(fd.get(), path, static_cast<std::size_t>(st.st_size));
        } catch (const SystemError& e) {
            throw StoreError(
                fmt::format("local store: cannot read {}: {}", what_object(container, name), e.what()));
        }
        st.st_size = static_cast<off_t>(obj.data.size());
        obj.info = object_info(fd.get(), st, name, &obj.data, path);
        return obj;
    }

    std::unique_ptr<ObjectReader> open_object(const std::string& container,
                                              const std::string& name) override {
        check_container_name(container);
        check_object_name(name);
        if (unholdable(name)) return nullptr;
        const std::string path = container_dir(container) + "/" + name;
        auto file = open_regular(path, container, name);
        if (!file) return nullptr;
        auto& [fd, st] = *file;
        ObjectInfo info = object_info(fd.get(), st, name, nullptr, path);
        return std::make_unique<LocalObjectReader>(std::move(info), std::move(fd), path,
                                                   what_object(container, name));
    }

    std::optional<ObjectInfo> head(const std::string& container, const std::string& name) override {
        check_container_name(container);
        check_object_name(name);
        if (unholdable(name)) return std::nullopt;
        return info_at(container, name);
    }

    bool remove(const std::string& container, const std::string& name) override {
        check_container_name(container);
        check_object_name(name);
        if (unholdable(name)) return false;
        const std::string cdir = container_dir(container);
        const std::string path = cdir + "/" + name;
        if (::unlink(path.c_str()) != 0) {
            // EISDIR: the name is a directory of other objects, not an object.
            if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR) return false;
            throw StoreError(fmt::format("local store: cannot remove {} at {}: {}",
                                         what_object(container, name), quote_for_message(path),
                                         errno_message(errno)));
        }
        // Prune directories the removal emptied, up to the container. A put
        // racing with this retries when its directory vanishes under it.
        std::string rel = parent_of(name);
        while (!rel.empty() && ::rmdir((cdir + "/" + rel).c_str()) == 0) rel = parent_of(rel);
        fsync_dir(rel.empty() ? cdir : cdir + "/" + rel);
        return true;
    }

    std::vector<std::string> list_containers() override {
        std::vector<std::string> out;
        const bool exists = for_each_entry(root_, [&](int dfd, const DirEntry& ent) {
            // A container is what require_container() takes for one: a
            // directory, or a link to one.
            struct stat st {};
            if (ent.d_type == DT_DIR || ((ent.d_type == DT_LNK || ent.d_type == DT_UNKNOWN) &&
                                         ::fstatat(dfd, ent.d_name, &st, 0) == 0 && S_ISDIR(st.st_mode)))
                out.emplace_back(ent.d_name);
        });
        if (!exists)
            throw StoreError(fmt::format("local store: cannot list the containers: the root {} is gone",
                                         quote_for_message(root_)));
        std::sort(out.begin(), out.end());
        return out;
    }

    std::vector<ListEntry> list(const std::string& container, const ListOptions& options) override {
        check_container_name(container);
        // As Swift: no name is anything but UTF-8, and it refuses the rest.
        for (const auto& [field, value] :
             {std::pair<const char*, const std::string&>{"prefix", options.prefix},
              {"marker", options.marker},
              {"end_marker", options.end_marker}})
            if (!is_valid_utf8(value))
                throw ValidationError(field, value, "listing parameters must be UTF-8");
        if (options.delimiter) {
            const auto d = static_cast<unsigned char>(*options.delimiter);
            if (d == 0 || d >= 0x80)
                throw ValidationError("delimiter", std::string(1, *options.delimiter),
                                      "a delimiter must be one ASCII character other than NUL");
        }
        const std::string cdir = require_container(container);
        const std::size_t limit = options.limit == 0 || options.limit > ListOptions::max_list_limit
                                      ? ListOptions::max_list_limit
                                      : options.limit;
        std::vector<ListEntry> out;
        Walker walker(cdir, options);
        while (out.size() < limit) {
            auto n = walker.next();
            if (!n) break;
            if (options.delimiter) {
                auto i = n->find(*options.delimiter, options.prefix.size());
                if (i != std::string::npos) {
                    // Swift's roll-up: one subdir entry for every name sharing
                    // the prefix up to the delimiter, except (on the next page)
                    // the subdir that is the marker itself.
                    std::string sub = n->substr(0, i + 1);
                    walker.skip_prefix(sub);
                    if (sub != options.marker) {
                        ListEntry e;
                        e.name = std::move(sub);
                        e.subdir = true;
                        out.push_back(std::move(e));
                    }
                    continue;
                }
            }
            auto info = info_at(container, *n);
            if (!info) continue;  // removed since the directory was read
            ListEntry e;
            e.name = std::move(info->name);
            e.bytes = info->bytes;
            e.etag = std::move(info->etag);
            e.content_type = swift_listing_content_type(info->content_type);
            e.last_modified = std::move(info->last_modified);
            out.push_back(std::move(e));
        }
        return out;
    }

private:
    // Writes a put's content into a temporary file: `fd` is open on it,
    // `temp_path` its path (for messages).
    using Fill = std::function<void(int fd, const std::string& temp_path)>;

    std::string container_dir(const std::string& container) const { return root_ + "/" + container; }

    static bool is_dir(const std::string& path) {
        struct stat st {};
        return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    }

    NotFound missing_container(const std::string& container) const {
        return NotFound(fmt::format("container {} does not exist (local store {})",
                                    quote_for_message(container), quote_for_message(root_)));
    }

    std::string require_container(const std::string& container) const {
        std::string path = container_dir(container);
        if (!is_dir(path)) throw missing_container(container);
        return path;
    }

    std::string xattr_error(int err) const {
        if (err == ENOTSUP)
            return fmt::format(
                "the filesystem of {} does not support user extended attributes, which the local store needs "
                "(use ext4, xfs or btrfs)",
                quote_for_message(root_));
        return errno_message(err);
    }

    // The object file at `path`, open, with its status; nullopt when there is
    // no such object (no file or container, or a directory of other objects).
    static std::optional<std::pair<Fd, struct stat>> open_regular(const std::string& path,
                                                                  const std::string& container,
                                                                  const std::string& name) {
        Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd && errno != ENOENT && errno != ENOTDIR)
            throw StoreError(fmt::format("local store: cannot open {} at {}: {}",
                                         what_object(container, name), quote_for_message(path),
                                         errno_message(errno)));
        struct stat st {};
        if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
        return std::make_pair(std::move(fd), st);
    }

    std::optional<ObjectInfo> info_at(const std::string& container, const std::string& name) const {
        const std::string path = container_dir(container) + "/" + name;
        auto file = open_regular(path, container, name);
        if (!file) return std::nullopt;
        return object_info(file->first.get(), file->second, name, nullptr, path);
    }

    // Checks a put's names and options; the object's metadata, without
    // what depends on the content (size, etag, time).
    static ObjectInfo new_object(const std::string& container, const std::string& name,
                                 const PutOptions& options) {
        check_container_name(container);
        check_object_name(name);
        if (const char* why = unholdable(name)) throw ValidationError("object", name, why);
        ObjectInfo info;
        info.name = name;
        info.content_type =
            options.content_type.empty() ? std::string("application/octet-stream") : options.content_type;
        check_header_value("content_type", info.content_type);
        if (options.content_encoding) check_header_value("content_encoding", *options.content_encoding);
        info.content_encoding = options.content_encoding;
        return info;
    }

    // Stores the object `info` names: `fill` writes the content into a new
    // temporary file beside its final name (and sets info's size and etag),
    // the metadata is recorded on it, and one rename publishes both. Retries
    // when a concurrent remove prunes the directory before the file exists.
    void publish(const std::string& container, ObjectInfo& info, const Fill& fill) {
        const std::string& name = info.name;
        const std::string cdir = require_container(container);
        const std::string parent = parent_of(name);
        const std::string leaf = name.substr(parent.empty() ? 0 : parent.size() + 1);
        const std::string dir = parent.empty() ? cdir : cdir + "/" + parent;
        for (int attempt = 0; attempt < max_put_attempts; ++attempt) {
            Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            if (!dfd) {
                if (errno != ENOENT && errno != ENOTDIR)
                    throw StoreError(fmt::format("local store: cannot open directory {} for {}: {}",
                                                 quote_for_message(dir), what_object(container, name),
                                                 errno_message(errno)));
                if (parent.empty()) throw missing_container(container);
                make_parents(cdir, container, name, parent);
                continue;
            }
            const std::string temp = temp_name();
            Fd fd(::openat(dfd.get(), temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
            if (!fd) {
                // ENOENT: a concurrent remove pruned the directory after we
                // opened it; EEXIST: a leftover temporary file had this name.
                if (errno == ENOENT || errno == EEXIST) continue;
                throw StoreError(fmt::format("local store: cannot create a temporary file in {} for {}: {}",
                                             quote_for_message(dir), what_object(container, name),
                                             errno_message(errno)));
            }
            try {
                fill(fd.get(), dir + "/" + temp);
                seal(fd, info, container);
            } catch (...) {
                ::unlinkat(dfd.get(), temp.c_str(), 0);
                throw;
            }
            rename_into_place(dfd.get(), temp, leaf, dir, container, info);
            return;
        }
        throw StoreError(
            fmt::format("local store: cannot put {}: its directory {} kept disappearing (concurrent removes)",
                        what_object(container, name), quote_for_message(dir)));
    }

    // Records `info` (last modified: now) on the written temporary file, then
    // syncs and closes it.
    void seal(Fd& fd, ObjectInfo& info, const std::string& container) const {
        auto fail = [&](const char* step, const std::string& why) {
            throw StoreError(
                fmt::format("local store: cannot {} {}: {}", step, what_object(container, info.name), why));
        };
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) fail("stat", errno_message(errno));
        timespec now{};
        ::clock_gettime(CLOCK_REALTIME, &now);
        info.last_modified = iso_time(now);
        Json meta = {{"etag", info.etag},
                     {"bytes", info.bytes},
                     {"content_type", info.content_type},
                     {"last_modified", info.last_modified},
                     {"mtime", static_cast<std::int64_t>(st.st_mtim.tv_sec)}};
        if (info.content_encoding) meta["content_encoding"] = *info.content_encoding;
        const std::string raw = meta.dump();
        // Set before the rename, so the object appears with its metadata.
        if (::fsetxattr(fd.get(), local_meta_xattr, raw.data(), raw.size(), 0) != 0)
            fail("record metadata of", xattr_error(errno));
        if (::fsync(fd.get()) != 0) fail("sync", errno_message(errno));
        if (int err = fd.close_checked()) fail("close", errno_message(err));
    }

    // Renames the sealed temporary file `temp` in the directory `dfd` over
    // the object's file name `leaf`, durably.
    static void rename_into_place(int dfd, const std::string& temp, const std::string& leaf,
                                  const std::string& dir, const std::string& container,
                                  const ObjectInfo& info) {
        if (::renameat(dfd, temp.c_str(), dfd, leaf.c_str()) != 0) {
            const int err = errno;
            ::unlinkat(dfd, temp.c_str(), 0);
            if (err == EISDIR || err == ENOTEMPTY || err == EEXIST)
                throw StoreError(
                    fmt::format("local store: cannot put {}: other objects are stored below {}, and in a "
                                "directory store a name cannot be both an object and a directory",
                                what_object(container, info.name), quote_for_message(info.name + "/")));
            throw StoreError(fmt::format("local store: cannot rename the temporary file of {} into place: {}",
                                         what_object(container, info.name), errno_message(err)));
        }
        // The rename is durable only once its directory is.
        if (::fsync(dfd) != 0)
            throw StoreError(fmt::format("local store: cannot sync directory {} after putting {}: {}",
                                         quote_for_message(dir), what_object(container, info.name),
                                         errno_message(errno)));
    }

    // Creates the directories above an object (mkdir -p below the container).
    void make_parents(const std::string& cdir, const std::string& container, const std::string& name,
                      const std::string& parent) const {
        std::size_t pos = 0;
        while (pos != std::string::npos) {
            pos = parent.find('/', pos == 0 ? 0 : pos + 1);
            const std::string rel = parent.substr(0, pos);
            const std::string path = cdir + "/" + rel;
            if (::mkdir(path.c_str(), 0755) == 0) {
                fsync_dir(cdir + (rel.find('/') == std::string::npos ? "" : "/" + parent_of(rel)));
                continue;
            }
            if (errno == EEXIST) {
                struct stat st {};
                if (::stat(path.c_str(), &st) != 0) {
                    if (errno == ENOENT) return;  // pruned right after our mkdir failed; retry
                    throw StoreError(fmt::format("local store: cannot stat {} for {}: {}",
                                                 quote_for_message(path), what_object(container, name),
                                                 errno_message(errno)));
                }
                if (S_ISDIR(st.st_mode)) continue;
                throw StoreError(
                    fmt::format("local store: cannot put {}: {} is an object, and in a directory store a "
                                "name cannot be both an object and a directory",
                                what_object(container, name), quote_for_message(rel)));
            }
            // ENOENT: a concurrent remove pruned a level just made (the
            // caller retries), or the container itself is gone.
            if (errno == ENOENT) {
                if (rel.find('/') == std::string::npos && !is_dir(cdir)) throw missing_container(container);
                return;
            }
            if (errno == ENOTDIR)
                throw StoreError(
                    fmt::format("local store: cannot put {}: a directory above it is an object, and in a "
                                "directory store a name cannot be both an object and a directory",
                                what_object(container, name)));
            throw StoreError(fmt::format("local store: cannot create directory {} for {}: {}",
                                         quote_for_message(path), what_object(container, name),
                                         errno_message(errno)));
        }
    }

    // Unique per process (pid), thread and call (counter); O_EXCL settles
    // collisions with leftovers of a crashed process that had the same pid.
    static std::string temp_name() {
        static std::atomic<unsigned long> counter{0};
        thread_local std::mt19937_64 rng{std::random_device{}()};
        return fmt::format("{}{}.{}.{:016x}", local_temp_prefix, static_cast<long>(::getpid()),
                           counter.fetch_add(1), static_cast<unsigned long long>(rng()));
    }

    std::string root_;
};

}  // namespace

std::string swift_listing_content_type(std::string_view content_type) {
    auto semi = content_type.find(';');
    if (semi == std::string_view::npos) return std::string(content_type);
    auto trim = [](std::string_view s) {
        while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
        while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
        return s;
    };
    std::string out(content_type.substr(0, semi));
    std::string_view rest = content_type.substr(semi + 1);
    for (;;) {
        const auto next = rest.find(';');
        const std::string_view param = trim(rest.substr(0, next));
        if (!param.empty()) {
            const auto eq = param.find('=');
            out += ';';
            out += trim(param.substr(0, eq));
            out += '=';
            if (eq != std::string_view::npos) out += trim(param.substr(eq + 1));
        }
        if (next == std::string_view::npos) break;
        rest = rest.substr(next + 1);
    }
    return out;
}

std::unique_ptr<Store> make_local_store(const std::string& root) {
    return std::make_unique<LocalStore>(root);
}

}  // namespace apcloud
