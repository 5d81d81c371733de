// The Store interface's shared parts: ACLs, name rules, paging, and the
// factory choosing a backend by URL.
#include "autopkgtest_cloud/store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>

#include "apcloud_config.h"
#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/file_io.hpp"
#include "autopkgtest_cloud/request.hpp"
#include "autopkgtest_cloud/url.hpp"
#include "store/local_store.hpp"
#if APCLOUD_HAVE_SWIFT
#include "store/swift_store.hpp"
#endif

namespace apcloud {

Store::~Store() = default;

ObjectReader::~ObjectReader() = default;

namespace {

// The reader of the default open_object(): an object already in memory,
// handed out in pieces.
class WholeObjectReader final : public ObjectReader {
public:
    explicit WholeObjectReader(Object object)
        : ObjectReader(std::move(object.info)), data_(std::move(object.data)) {}

    bool read(std::string& chunk) override {
        constexpr std::size_t piece = 256 * 1024;
        chunk.assign(data_, std::min(offset_, data_.size()), piece);
        offset_ += chunk.size();
        return !chunk.empty();
    }

private:
    std::string data_;
    std::size_t offset_ = 0;
};

}  // namespace

std::string ContainerAcl::swift_read_acl() const {
    // Keystone ACLs name "project:user"; a bare user means "that user in any
    // project" ("*:user"). tempauth has no wildcard, so "account:user" is kept.
    if (public_read) return ".r:*,.rlistings";
    return read_user.find(':') == std::string::npos ? fmt::format("*:{}", read_user) : read_user;
}

ContainerAcl ContainerAcl::parse(std::string_view x_container_read) {
    std::string_view rest = x_container_read;
    std::string user;
    for (;;) {
        const auto comma = rest.find(',');
        std::string_view item = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        if (item == ".r:*") return public_container();
        // Other referrer items (.rlistings, .r:host) grant no user anything.
        if (user.empty() && item.size() > 2 && item.substr(0, 2) == "*:")
            user = item.substr(2);
        else if (user.empty() && !item.empty() && item.front() != '.')
            user = item;
        if (comma == std::string_view::npos) break;
    }
    return private_to(std::move(user));
}

void Store::for_each_page(const std::string& container, ListOptions options,
                          const std::function<bool(std::vector<ListEntry>&)>& page_done) {
    const std::size_t page = options.limit == 0 ? ListOptions::max_list_limit : options.limit;
    options.limit = page;
    for (;;) {
        auto entries = list(container, options);
        const bool full = entries.size() >= page;
        if (!entries.empty()) options.marker = entries.back().name;
        if (!page_done(entries)) return;
        // A short page is the last one; a full page may have more after it.
        if (!full) return;
    }
}

std::vector<ListEntry> Store::list_all(const std::string& container, ListOptions options) {
    std::vector<ListEntry> out;
    for_each_page(container, std::move(options), [&out](std::vector<ListEntry>& entries) {
        for (auto& e : entries) out.push_back(std::move(e));
        return true;
    });
    return out;
}

ObjectInfo Store::put_file(const std::string& container, const std::string& name, const std::string& path,
                           const PutOptions& options) {
    // A store that can only put bytes: the whole file in memory. The
    // library's own stores override this and stream.
    check_container_name(container);
    check_object_name(name);
    auto data = read_file_if_exists(path);
    if (!data) throw SystemError(ENOENT, "open the file to store", path);
    return put(container, name, *data, options);
}

std::unique_ptr<ObjectReader> Store::open_object(const std::string& container, const std::string& name) {
    // A store that can only get whole objects. The library's own stores
    // override this and stream.
    auto object = get(container, name);
    if (!object) return nullptr;
    return std::make_unique<WholeObjectReader>(std::move(*object));
}

std::vector<std::string> Store::list_containers() {
    throw StoreError("this store cannot list its containers (it does not implement Store::list_containers)");
}

std::vector<std::optional<Object>> Store::get_many(const std::string& container,
                                                   const std::vector<std::string>& names) {
    std::vector<std::optional<Object>> out;
    out.reserve(names.size());
    for (const auto& n : names) out.push_back(get(container, n));
    return out;
}

void check_object_name(std::string_view name) {
    auto bad = [&](const char* why) { throw ValidationError("object", std::string(name), why); };
    if (name.empty()) bad("object name is empty");
    if (name.size() > 1024) bad("object name is longer than 1024 bytes");
    if (name.find('\0') != std::string_view::npos) bad("object name contains NUL");
    if (!is_valid_utf8(name)) bad("object name is not UTF-8");
    if (name.front() == '/') bad("object name is absolute");
    std::size_t start = 0;
    while (start <= name.size()) {
        auto end = name.find('/', start);
        auto seg = name.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
        if (seg == "." || seg == "..") bad("object name has a . or .. segment");
        if (seg.empty() && end != std::string_view::npos) bad("object name has an empty segment");
        if (end == std::string_view::npos) break;
        start = end + 1;
    }
}

void check_container_name(std::string_view name) {
    auto bad = [&](const char* why) { throw ValidationError("container", std::string(name), why); };
    if (name.empty()) bad("container name is empty");
    if (name.size() > 256) bad("container name is longer than 256 bytes");
    if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos)
        bad("container name contains / or NUL");
    if (name == "." || name == "..") bad("container name is . or ..");
    if (!is_valid_utf8(name)) bad("container name is not UTF-8");
}

std::unique_ptr<Store> open_store(const std::string& url, const StoreCredentials& credentials,
                                  const Environment& env) {
    Url u = parse_url(url);
    if (u.scheme == "file") {
        if (!u.host.empty() && u.host != "localhost")
            throw ConfigError(
                fmt::format("file store URL must be file:///absolute/path, got {}", quote_for_message(url)));
        if (u.path.empty() || u.path.front() != '/')
            throw ConfigError(
                fmt::format("file store URL needs an absolute path: {}", quote_for_message(url)));
        return make_local_store(u.path);
    }
    if (u.scheme == "swift+http" || u.scheme == "swift+https" || u.scheme == "http" || u.scheme == "https") {
#if APCLOUD_HAVE_SWIFT
        return make_swift_store(u, resolve_store_credentials(u, credentials, env));
#else
        (void)credentials;
        (void)env;
        throw ConfigError(
            fmt::format("this build has no Swift support (meson option swift): {}", u.redacted()));
#endif
    }
    throw ConfigError(
        fmt::format("unknown store URL scheme {} in {} (expected file://, swift+http(s):// or http(s)://)",
                    quote_for_message(u.scheme), u.redacted()));
}

}  // namespace apcloud
