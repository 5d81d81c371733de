// The store conformance suite: every Store behaviour, run against the backend
// APCLOUD_TEST_STORE names (local: a fresh directory; swift: the Swift at
// APCLOUD_SWIFT_AUTH_URL), so both backends are held to the same contract.
// The listing expectations were taken from a real Swift (2.30).
#include <doctest/doctest.h>
#include <malloc.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/store.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "store/local_store.hpp"

using namespace apcloud;
namespace fs = std::filesystem;

namespace {

// The backend under test, chosen once from the environment.
struct Backend {
    std::string kind;
    std::string url;
    fs::path tmp;   // local: the mktemp directory holding the store root
    fs::path root;  // local: the store root
    StoreCredentials credentials;
    std::string tag;  // unique per run, so reruns never share containers

    bool local() const { return kind == "local"; }
    std::unique_ptr<Store> open() const { return open_store(url, credentials); }

    ~Backend() {
        std::error_code ec;
        if (!tmp.empty()) fs::remove_all(tmp, ec);
    }
};

const char* env(const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' ? v : nullptr;
}

const Backend& backend() {
    static const Backend b = [] {
        Backend b;
        b.kind = env("APCLOUD_TEST_STORE") ? env("APCLOUD_TEST_STORE") : "local";
        b.tag = std::to_string(::getpid()) + "-" + std::to_string(std::time(nullptr));
        if (b.kind == "local") {
            std::string tmpl = (fs::temp_directory_path() / "apcloud-store-XXXXXX").string();
            if (::mkdtemp(tmpl.data()) == nullptr) {
                std::perror("mkdtemp");
                std::exit(1);
            }
            b.tmp = tmpl;
            b.root = b.tmp / "root";  // the store creates it
            b.url = "file://" + b.root.string();
        } else if (b.kind == "swift") {
            const char* auth = env("APCLOUD_SWIFT_AUTH_URL");
            const char* user = env("APCLOUD_SWIFT_USER");
            const char* key = env("APCLOUD_SWIFT_KEY");
            if (!auth || !user || !key) {
                std::fprintf(stderr,
                             "skipped: APCLOUD_TEST_STORE=swift needs APCLOUD_SWIFT_AUTH_URL, "
                             "APCLOUD_SWIFT_USER and APCLOUD_SWIFT_KEY (see scripts/swift-start)\n");
                std::exit(77);
            }
            b.url = std::string("swift+") + auth;
            b.credentials.user = user;
            b.credentials.key = key;
        } else {
            std::fprintf(stderr, "APCLOUD_TEST_STORE must be 'local' or 'swift', not '%s'\n", b.kind.c_str());
            std::exit(2);
        }
        return b;
    }();
    return b;
}

// Decided before doctest runs, so a missing server skips the whole program.
const bool is_local = backend().local();

// Runs a program with an argv vector; true when it exits 0.
bool run(const std::vector<std::string>& args) {
    std::fflush(nullptr);  // or the child flushes our buffered output again
    pid_t pid = ::fork();
    if (pid < 0) return false;
    if (pid == 0) {
        std::vector<char*> argv;
        for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        if (!std::freopen("/dev/null", "w", stdout)) _exit(126);
        ::execvp(argv[0], argv.data());
        _exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// A container for one test case, removed with everything in it afterwards.
class TestContainer {
public:
    TestContainer(Store& store, const std::string& what,
                  const ContainerAcl& acl = ContainerAcl::public_container())
        : store_(store), name_("apcloud-conformance-" + backend().tag + "-" + what) {
        store_.ensure_container(name_, acl);
    }
    ~TestContainer() {
        const Backend& b = backend();
        if (b.local()) {
            std::error_code ec;
            fs::remove_all(b.root / name_, ec);
            return;
        }
        // The Store interface cannot delete containers (nothing in the system
        // does); python-swiftclient's CLI deletes the objects and the container.
        if (!run({"swift", "-A", env("APCLOUD_SWIFT_AUTH_URL"), "-U", env("APCLOUD_SWIFT_USER"), "-K",
                  env("APCLOUD_SWIFT_KEY"), "delete", name_}))
            std::fprintf(stderr, "warning: could not delete test container %s\n", name_.c_str());
    }
    TestContainer(const TestContainer&) = delete;
    TestContainer& operator=(const TestContainer&) = delete;
    const std::string& name() const { return name_; }
    operator const std::string&() const { return name_; }

private:
    Store& store_;
    std::string name_;
};

std::string hex_of(const unsigned char* md, unsigned len) {
    std::string out;
    char buf[3];
    for (unsigned i = 0; i < len; ++i) {
        std::snprintf(buf, sizeof buf, "%02x", md[i]);
        out += buf;
    }
    return out;
}

std::string md5_hex(std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    REQUIRE(EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr) == 1);
    return hex_of(md, len);
}

// A listing as one comparable line: "a, SUB:b/, c".
std::string show(const std::vector<ListEntry>& entries) {
    std::string out;
    for (const auto& e : entries) {
        if (!out.empty()) out += ", ";
        out += (e.subdir ? "SUB:" : "") + e.name;
    }
    return out;
}

std::string show(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
}

ListOptions opts(std::string prefix, std::optional<char> delimiter = std::nullopt, std::string marker = "",
                 std::string end_marker = "", std::size_t limit = ListOptions::max_list_limit) {
    ListOptions o;
    o.prefix = std::move(prefix);
    o.delimiter = delimiter;
    o.marker = std::move(marker);
    o.end_marker = std::move(end_marker);
    o.limit = limit;
    return o;
}

// The field of the ValidationError `f` throws, or "" when it throws none.
std::string refused_field(const std::function<void()>& f) {
    try {
        f();
    } catch (const ValidationError& e) {
        return e.field();
    }
    return "";
}

// Last-modified is ISO 8601 UTC and recent (the server runs on this host).
void check_last_modified(const std::string& value) {
    INFO("last_modified = " << value);
    REQUIRE(value.size() >= 19);
    std::tm tm{};
    const char* end = ::strptime(value.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    REQUIRE(end != nullptr);
    CHECK((*end == '\0' || *end == '.'));
    const std::time_t t = ::timegm(&tm);
    CHECK(std::abs(std::difftime(std::time(nullptr), t)) < 3600);
}

std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng() & 0xff);
    return s;
}

void put_all(Store& s, const std::string& c, const std::vector<std::string>& names) {
    for (const auto& n : names) s.put(c, n, "data of " + n);
}

}  // namespace

TEST_CASE("containers: ensure_container is idempotent and records the read ACL") {
    auto store = backend().open();
    TestContainer c(*store, "acl");
    CHECK(store->container_acl(c).public_read);
    CHECK(store->list(c, {}).empty());

    store->put(c, "kept", "still here");
    store->ensure_container(c, ContainerAcl::public_container());
    CHECK(store->container_acl(c).public_read);
    REQUIRE(store->get(c, "kept"));  // re-ensuring keeps the objects
    CHECK(store->get(c, "kept")->data == "still here");

    store->ensure_container(c, ContainerAcl::private_to("test:worker"));
    ContainerAcl acl = store->container_acl(c);
    CHECK_FALSE(acl.public_read);
    CHECK(acl.read_user == "test:worker");

    // A user without an account part (Keystone "*:user"), and owner-only.
    store->ensure_container(c, ContainerAcl::private_to("someone"));
    acl = store->container_acl(c);
    CHECK_FALSE(acl.public_read);
    CHECK(acl.read_user == "someone");
    store->ensure_container(c, ContainerAcl::private_to(""));
    acl = store->container_acl(c);
    CHECK_FALSE(acl.public_read);
    CHECK(acl.read_user.empty());

    store->ensure_container(c, ContainerAcl::public_container());
    CHECK(store->container_acl(c).public_read);
    CHECK(store->get(c, "kept")->data == "still here");

    CHECK_THROWS_AS(store->container_acl(c.name() + "-missing"), NotFound);
}

TEST_CASE("objects: put, get and head round trip") {
    auto store = backend().open();
    TestContainer c(*store, "objects");

    auto round_trip = [&](const std::string& name, const std::string& data, const PutOptions& po) {
        INFO("object " << name << " (" << data.size() << " bytes)");
        ObjectInfo put = store->put(c, name, data, po);
        CHECK(put.name == name);
        CHECK(put.bytes == data.size());
        CHECK(put.etag == md5_hex(data));
        auto got = store->get(c, name);
        REQUIRE(got);
        CHECK(got->data.size() == data.size());
        CHECK((got->data == data));
        CHECK(got->info.name == name);
        CHECK(got->info.bytes == data.size());
        CHECK(got->info.etag == md5_hex(data));
        CHECK(got->info.content_type == po.content_type);
        CHECK(got->info.content_encoding == po.content_encoding);
        check_last_modified(got->info.last_modified);
        auto head = store->head(c, name);
        REQUIRE(head);
        CHECK(head->bytes == data.size());
        CHECK(head->etag == md5_hex(data));
        CHECK(head->content_type == po.content_type);
        CHECK(head->content_encoding == po.content_encoding);
        check_last_modified(head->last_modified);
    };

    std::string binary;
    for (int round = 0; round < 4; ++round)
        for (int b = 0; b < 256; ++b) binary += static_cast<char>(b);
    binary += std::string(100, '\0');
    round_trip("bin/all-bytes", binary, {});
    round_trip("bin/empty", "", {});
    CHECK(store->put(c, "bin/empty2", "").etag == "d41d8cd98f00b204e9800998ecf8427e");
    round_trip("bin/five-megabytes", random_bytes(5 * 1024 * 1024, 7), {});

    PutOptions log;
    log.content_type = "text/plain; charset=UTF-8";
    log.content_encoding = "gzip";
    const std::string gz("\x1f\x8b\x08\x00 not really gzip", 20);
    round_trip("noble/amd64/g/gedit/20240321_130412_3fa9c@/log.gz", gz, log);
    PutOptions tar;
    tar.content_type = "application/x-tar";
    round_trip("noble/amd64/g/gedit/20240321_130412_3fa9c@/result.tar", random_bytes(10240, 3), tar);

    // Listings give the same metadata (Swift lists content types without blanks).
    auto listed = store->list(c, opts("noble/"));
    REQUIRE(listed.size() == 2);
    CHECK(listed[0].name == "noble/amd64/g/gedit/20240321_130412_3fa9c@/log.gz");
    CHECK_FALSE(listed[0].subdir);
    CHECK(listed[0].bytes == gz.size());
    CHECK(listed[0].etag == md5_hex(gz));
    CHECK(listed[0].content_type == "text/plain;charset=UTF-8");
    check_last_modified(listed[0].last_modified);
    CHECK(listed[1].content_type == "application/x-tar");
    CHECK(listed[1].bytes == 10240);
    CHECK(listed[1].etag == md5_hex(random_bytes(10240, 3)));

    CHECK_FALSE(store->get(c, "bin/never-put"));
    CHECK_FALSE(store->head(c, "bin/never-put"));
    CHECK_FALSE(store->get(c, "bin"));  // a prefix of objects is no object
}

TEST_CASE("objects: overwrite replaces content and metadata") {
    auto store = backend().open();
    TestContainer c(*store, "overwrite");
    PutOptions first;
    first.content_type = "text/plain";
    first.content_encoding = "gzip";
    store->put(c, "a/b", "first version, rather long", first);
    PutOptions second;
    second.content_type = "application/x-tar";
    ObjectInfo info = store->put(c, "a/b", "second", second);
    CHECK(info.etag == md5_hex("second"));
    auto got = store->get(c, "a/b");
    REQUIRE(got);
    CHECK(got->data == "second");
    CHECK(got->info.bytes == 6);
    CHECK(got->info.etag == md5_hex("second"));
    CHECK(got->info.content_type == "application/x-tar");
    CHECK_FALSE(got->info.content_encoding);
    auto listed = store->list(c, {});
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].bytes == 6);
    CHECK(listed[0].etag == md5_hex("second"));
}

TEST_CASE("objects: remove") {
    auto store = backend().open();
    TestContainer c(*store, "remove");
    put_all(*store, c, {"a/b/c", "a/b/d", "top"});
    CHECK(store->remove(c, "a/b/c"));
    CHECK_FALSE(store->get(c, "a/b/c"));
    CHECK_FALSE(store->head(c, "a/b/c"));
    CHECK_FALSE(store->remove(c, "a/b/c"));
    CHECK_FALSE(store->remove(c, "never/put"));
    CHECK_FALSE(store->remove(c, "a/b"));  // a prefix of objects is no object
    REQUIRE(store->get(c, "a/b/d"));
    CHECK(show(store->list(c, {})) == "a/b/d, top");
    CHECK(store->remove(c, "a/b/d"));
    CHECK(store->remove(c, "top"));
    CHECK(store->list(c, {}).empty());
    CHECK(store->list(c, opts("", '/')).empty());
    // The emptied levels can hold objects again.
    store->put(c, "a/b/c", "again");
    CHECK(store->get(c, "a/b/c")->data == "again");
}

TEST_CASE("containers: a missing container") {
    auto store = backend().open();
    const std::string missing = "apcloud-conformance-" + backend().tag + "-never-created";
    CHECK_THROWS_AS(store->put(missing, "a/b", "data"), NotFound);
    CHECK_THROWS_AS(store->list(missing, {}), NotFound);
    CHECK_THROWS_AS(store->list_all(missing, opts("a/", '/')), NotFound);
    CHECK_THROWS_AS(store->container_acl(missing), NotFound);
    CHECK_FALSE(store->get(missing, "a/b"));
    CHECK_FALSE(store->head(missing, "a/b"));
    CHECK_FALSE(store->remove(missing, "a/b"));
    auto many = store->get_many(missing, {"a", "b"});
    REQUIRE(many.size() == 2);
    CHECK_FALSE(many[0]);
    CHECK_FALSE(many[1]);
    // Still missing: nothing above created it.
    CHECK_THROWS_AS(store->list(missing, {}), NotFound);
}

TEST_CASE("names: bad object and container names are refused before anything is stored") {
    auto store = backend().open();
    TestContainer c(*store, "names");
    const std::vector<std::string> bad = {"",         "..",           ".",
                                          "../x",     "a/../b",       "a/./b",
                                          "x/..",     "x/.",          "/abs",
                                          "/",        "a//b",         std::string("a\0b", 3),
                                          "\xff\xfe", "bad\xc3(utf8", std::string(1025, 'x')};
    for (const auto& name : bad) {
        INFO("object name " << quote_for_message(name));
        CHECK(refused_field([&] { store->put(c, name, "x"); }) == "object");
        CHECK(refused_field([&] { store->get(c, name); }) == "object");
        CHECK(refused_field([&] { store->head(c, name); }) == "object");
        CHECK(refused_field([&] { store->remove(c, name); }) == "object");
    }
    CHECK(store->list(c, {}).empty());
    // The longest name allowed (in segments a directory store can hold too).
    const std::string longest = std::string(200, 'y') + "/" + std::string(200, 'y') + "/" +
                                std::string(200, 'y') + "/" + std::string(200, 'y') + "/" +
                                std::string(220, 'y');
    REQUIRE(longest.size() == 1024);
    CHECK(refused_field([&] { store->put(c, longest, "x"); }).empty());
    CHECK(store->get(c, longest)->data == "x");

    for (const std::string& name :
         std::vector<std::string>{"", "a/b", "..", ".", std::string("a\0b", 3), std::string(257, 'c')}) {
        INFO("container name " << quote_for_message(name));
        CHECK(refused_field([&] { store->ensure_container(name, ContainerAcl::public_container()); }) ==
              "container");
        CHECK(refused_field([&] { store->list(name, {}); }) == "container");
        CHECK(refused_field([&] { store->put(name, "x", "x"); }) == "container");
        CHECK(refused_field([&] { store->get(name, "x"); }) == "container");
    }
}

TEST_CASE("listing: prefix and delimiter on the result layout") {
    auto store = backend().open();
    TestContainer c(*store, "layout");
    const std::string g = "noble/amd64/g/gedit/";
    const std::vector<std::string> runs = {"20140321_130412@", "20240321_130412_3fa9c@",
                                           "20240322_081500_0badc@"};
    std::vector<std::string> gedit_files;
    for (const auto& r : runs)
        for (const char* f : {"result.tar", "log.gz", "artifacts.tar.gz"})
            gedit_files.push_back(g + r + "/" + f);
    put_all(*store, c, gedit_files);
    put_all(*store, c,
            {"noble/amd64/g/gedit-plugins/20240323_101010_12345@/result.tar",
             "noble/arm64/g/gedit/20240321_130412_3fa9c@/result.tar",
             "noble/amd64/libp/libpng/20240321_130412_3fa9c@/result.tar",
             "jammy/amd64/g/gedit/20230101_000000_aaaaa@/result.tar"});

    CHECK(show(store->list(c, opts(g, '@'))) ==
          "SUB:noble/amd64/g/gedit/20140321_130412@, SUB:noble/amd64/g/gedit/20240321_130412_3fa9c@, "
          "SUB:noble/amd64/g/gedit/20240322_081500_0badc@");
    // Without the trailing '/', gedit-plugins matches too ('-' sorts before '/').
    CHECK(show(store->list(c, opts("noble/amd64/g/gedit", '@'))) ==
          "SUB:noble/amd64/g/gedit-plugins/20240323_101010_12345@, SUB:noble/amd64/g/gedit/20140321_130412@, "
          "SUB:noble/amd64/g/gedit/20240321_130412_3fa9c@, SUB:noble/amd64/g/gedit/20240322_081500_0badc@");
    CHECK(show(store->list(c, opts(g + "2024", '@'))) ==
          "SUB:noble/amd64/g/gedit/20240321_130412_3fa9c@, SUB:noble/amd64/g/gedit/20240322_081500_0badc@");
    CHECK(show(store->list(c, opts("noble/amd64/g/", '/'))) ==
          "SUB:noble/amd64/g/gedit-plugins/, SUB:noble/amd64/g/gedit/");
    CHECK(show(store->list(c, opts("noble/amd64/", '/'))) == "SUB:noble/amd64/g/, SUB:noble/amd64/libp/");
    CHECK(show(store->list(c, opts("noble/", '/'))) == "SUB:noble/amd64/, SUB:noble/arm64/");
    CHECK(show(store->list(c, opts("", '/'))) == "SUB:jammy/, SUB:noble/");
    CHECK(
        show(store->list(c, opts("", '@'))) ==
        "SUB:jammy/amd64/g/gedit/20230101_000000_aaaaa@, "
        "SUB:noble/amd64/g/gedit-plugins/20240323_101010_12345@, "
        "SUB:noble/amd64/g/gedit/20140321_130412@, SUB:noble/amd64/g/gedit/20240321_130412_3fa9c@, "
        "SUB:noble/amd64/g/gedit/20240322_081500_0badc@, SUB:noble/amd64/libp/libpng/20240321_130412_3fa9c@, "
        "SUB:noble/arm64/g/gedit/20240321_130412_3fa9c@");

    // The files of one run, and (the delimiter counts only after the prefix)
    // the same with '@' when the prefix already holds the run's '@'.
    const std::string run = g + "20240321_130412_3fa9c@";
    const std::string run_files = run + "/artifacts.tar.gz, " + run + "/log.gz, " + run + "/result.tar";
    CHECK(show(store->list(c, opts(run + "/"))) == run_files);
    CHECK(show(store->list(c, opts(run, '@'))) == run_files);
    CHECK(show(store->list(c, opts(run + "/", '/'))) == run_files);

    std::vector<std::string> sorted = gedit_files;
    std::sort(sorted.begin(), sorted.end());
    CHECK(show(store->list(c, opts(g))) == show(sorted));
    CHECK(store->list(c, opts("nothing/")).empty());
    CHECK(store->list(c, opts("nothing/", '@')).empty());
    CHECK(store->list(c, opts("noble/amd64/g/gedit/2099", '@')).empty());

    // Subdir entries carry no object metadata.
    for (const auto& e : store->list(c, opts(g, '@'))) {
        CHECK(e.subdir);
        CHECK(e.bytes == 0);
        CHECK(e.etag.empty());
    }
    // Paging through runs: the marker is the subdir itself.
    auto page1 = store->list(c, opts(g, '@', "", "", 2));
    REQUIRE(page1.size() == 2);
    CHECK(show(store->list(c, opts(g, '@', page1.back().name, "", 2))) ==
          "SUB:noble/amd64/g/gedit/20240322_081500_0badc@");
    CHECK(show(store->list_all(c, opts(g, '@', "", "", 1))) == show(store->list(c, opts(g, '@'))));
}

TEST_CASE("listing: marker and end_marker are exclusive") {
    auto store = backend().open();
    TestContainer c(*store, "markers");
    std::vector<std::string> names;
    for (int i = 9; i >= 0; --i) names.push_back("m/" + std::to_string(i));
    put_all(*store, c, names);
    auto range = [](int from, int to) {
        std::string out;
        for (int i = from; i <= to; ++i) out += (out.empty() ? "m/" : ", m/") + std::to_string(i);
        return out;
    };
    CHECK(show(store->list(c, opts("", std::nullopt, "m/3"))) == range(4, 9));
    CHECK(show(store->list(c, opts("", std::nullopt, "", "m/7"))) == range(0, 6));
    CHECK(show(store->list(c, opts("", std::nullopt, "m/3", "m/7"))) == range(4, 6));
    CHECK(show(store->list(c, opts("", std::nullopt, "m/35"))) == range(4, 9));
    CHECK(show(store->list(c, opts("", std::nullopt, "", "m/35"))) == range(0, 3));
    CHECK(store->list(c, opts("", std::nullopt, "m/5", "m/5")).empty());
    CHECK(store->list(c, opts("", std::nullopt, "m/5", "m/6")).empty());
    CHECK(show(store->list(c, opts("", std::nullopt, "m/5", "m/7"))) == "m/6");
    CHECK(store->list(c, opts("", std::nullopt, "m/7", "m/3")).empty());
    CHECK(store->list(c, opts("", std::nullopt, "m/9")).empty());
    CHECK(store->list(c, opts("", std::nullopt, "", "m/0")).empty());
    CHECK(show(store->list(c, opts("", std::nullopt, "l", "n"))) == range(0, 9));
    CHECK(show(store->list(c, opts("m/", std::nullopt, "a"))) == range(0, 9));  // marker below the prefix
    CHECK(store->list(c, opts("m/", std::nullopt, "z")).empty());               // marker above it
    CHECK(show(store->list(c, opts("m/", std::nullopt, "", "z"))) == range(0, 9));
    CHECK(store->list(c, opts("m/", std::nullopt, "", "a")).empty());
    CHECK(show(store->list(c, opts("m/", '/', "m/2", "m/5"))) == range(3, 4));
}

TEST_CASE("listing: limit and paging across page boundaries") {
    auto store = backend().open();
    TestContainer c(*store, "paging");
    // 50 names over 5 directories; inserted out of order.
    std::vector<std::string> names;
    char buf[32];
    for (int i = 0; i < 50; ++i) {
        std::snprintf(buf, sizeof buf, "p/%02d/n%02d", i / 10, i);
        names.push_back(buf);
    }
    std::vector<std::string> shuffled = names;
    std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(42));
    put_all(*store, c, shuffled);

    auto first7 = store->list(c, opts("", std::nullopt, "", "", 7));
    CHECK(show(first7) == show(std::vector<std::string>(names.begin(), names.begin() + 7)));
    CHECK(show(store->list_all(c, opts("", std::nullopt, "", "", 7))) == show(names));
    CHECK(show(store->list_all(c, opts("p/", std::nullopt, "", "", 7))) == show(names));
    // 0 and more than 10000 mean Swift's maximum, 10000.
    CHECK(store->list(c, opts("", std::nullopt, "", "", 0)).size() == 50);
    CHECK(store->list(c, opts("", std::nullopt, "", "", 20000)).size() == 50);

    // Paging by hand: 7 full pages and one of 1, each continuing exactly.
    std::vector<std::size_t> sizes;
    std::vector<std::string> seen;
    ListOptions o = opts("", std::nullopt, "", "", 7);
    for (;;) {
        auto page = store->list(c, o);
        if (page.empty()) break;
        sizes.push_back(page.size());
        for (const auto& e : page) seen.push_back(e.name);
        o.marker = page.back().name;
    }
    CHECK(sizes == std::vector<std::size_t>{7, 7, 7, 7, 7, 7, 7, 1});
    CHECK(show(seen) == show(names));

    // Subdirs count against the limit and never repeat across pages.
    const std::string dirs = "SUB:p/00/, SUB:p/01/, SUB:p/02/, SUB:p/03/, SUB:p/04/";
    CHECK(show(store->list_all(c, opts("p/", '/', "", "", 2))) == dirs);
    CHECK(show(store->list_all(c, opts("p/0", '/', "", "", 1))) == dirs);
    CHECK(show(store->list(c, opts("p/", '/', "", "", 3))) == "SUB:p/00/, SUB:p/01/, SUB:p/02/");
    CHECK(
        show(store->list_all(c, opts("p/02/", '/', "", "", 3))) ==
        "p/02/n20, p/02/n21, p/02/n22, p/02/n23, p/02/n24, p/02/n25, p/02/n26, p/02/n27, p/02/n28, p/02/n29");
}

TEST_CASE("listing: names sort bytewise as UTF-8") {
    auto store = backend().open();
    TestContainer c(*store, "order");
    // The expected order, written out: uppercase before lowercase, then
    // '-' (0x2d) < '.' (0x2e) < '/' (0x2f) < '0' < '@' < letters < non-ASCII
    // in code point order (U+FF5E before U+1F600, unlike UTF-16 order).
    const std::vector<std::string> expected = {
        "o/A",   "o/Z", "o/a-b", "o/a.b",      "o/a/b",          "o/a/b-c",           "o/a0",
        "o/a@b", "o/z", "o/ä/x", "o/\xc3\xa9", "o/\xef\xbd\x9e", "o/\xf0\x9f\x98\x80"};
    std::vector<std::string> bytewise = expected;
    std::sort(bytewise.begin(), bytewise.end());
    REQUIRE(bytewise == expected);
    std::vector<std::string> reversed(expected.rbegin(), expected.rend());
    put_all(*store, c, reversed);

    CHECK(show(store->list(c, opts("o/"))) == show(expected));
    CHECK(show(store->list_all(c, opts("o/", std::nullopt, "", "", 4))) == show(expected));
    CHECK(show(store->list(c, opts("o/", '/'))) ==
          "o/A, o/Z, o/a-b, o/a.b, SUB:o/a/, o/a0, o/a@b, o/z, SUB:o/ä/, o/\xc3\xa9, o/\xef\xbd\x9e, "
          "o/\xf0\x9f\x98\x80");
    CHECK(show(store->list(c, opts("o/a"))) == "o/a-b, o/a.b, o/a/b, o/a/b-c, o/a0, o/a@b");
    CHECK(show(store->list(c, opts("o/ä"))) == "o/ä/x");
    // A prefix cut inside a character matches no (UTF-8) name; both refuse it.
    CHECK(refused_field([&] { store->list(c, opts("o/\xc3")); }) == "prefix");
    CHECK(refused_field([&] { store->list(c, opts("o/", std::nullopt, "o/\xc3")); }) == "marker");
    CHECK(refused_field([&] { store->list(c, opts("o/", std::nullopt, "", "o/\xc3")); }) == "end_marker");
    CHECK(show(store->list(c, opts("o/", std::nullopt, "o/a.b", "o/a0"))) == "o/a/b, o/a/b-c");
    CHECK(show(store->list(c, opts("o/", std::nullopt, "o/z", "o/\xef\xbd\x9f"))) ==
          "o/ä/x, o/\xc3\xa9, o/\xef\xbd\x9e");
}

// What a real Swift answers for the delimiter edge cases (observed on Swift
// 2.30 with python-swiftclient), which the local store must answer too:
// (a) a marker equal to a subdir returned by a delimiter listing does not
//     return that subdir again, and skips every name below it; a marker
//     inside a subdir (not equal to it) returns the subdir again;
// (b) the delimiter is looked for only after the prefix;
// (c) end_marker bounds the object names before the roll-up: a subdir
//     appears when one of its names is below end_marker.
TEST_CASE("listing: Swift's delimiter, marker and end_marker edge cases") {
    auto store = backend().open();
    TestContainer c(*store, "edges");
    put_all(*store, c,
            {"s/a-b", "s/a.b", "s/a/b", "s/a/c/d", "s/a/c/e", "s/a@x", "s/abc/def@/r", "s/abc/def@/s",
             "s/abc/deg@/r", "s/b"});
    struct Case {
        std::string prefix;
        std::optional<char> delimiter;
        std::string marker, end_marker;
        std::size_t limit;
        std::string expected;
    };
    const std::optional<char> none;
    const std::size_t all = ListOptions::max_list_limit;
    const std::vector<Case> cases = {
        {"s/", '/', "", "", all, "s/a-b, s/a.b, SUB:s/a/, s/a@x, SUB:s/abc/, s/b"},
        // (a) markers and subdirs
        {"s/", '/', "s/a/", "", all, "s/a@x, SUB:s/abc/, s/b"},
        {"s/", '/', "s/a/c", "", all, "SUB:s/a/, s/a@x, SUB:s/abc/, s/b"},
        {"s/", '/', "s/a/b", "", all, "SUB:s/a/, s/a@x, SUB:s/abc/, s/b"},
        {"s/", '/', "s/a", "", all, "s/a-b, s/a.b, SUB:s/a/, s/a@x, SUB:s/abc/, s/b"},
        {"s/a/", '/', "s/a/c/", "", all, ""},
        {"s/a/", '/', "s/a/b", "", all, "SUB:s/a/c/"},
        {"s/abc/", '@', "s/abc/def@", "", all, "SUB:s/abc/deg@"},
        {"s/a", '/', "s/a/c/e", "", all, "s/a@x, SUB:s/abc/"},
        {"s/", '/', "s/a.b", "", 1, "SUB:s/a/"},
        {"s/", '/', "s/a/", "", 1, "s/a@x"},
        {"s/", '/', "s/a@x", "", 1, "SUB:s/abc/"},
        {"s/", '/', "s/abc/", "", 1, "s/b"},
        {"s/", '/', "s/b", "", all, ""},
        // (b) delimiter after the prefix
        {"s/a", '/', "", "", all, "s/a-b, s/a.b, SUB:s/a/, s/a@x, SUB:s/abc/"},
        {"s/a/c", '/', "", "", all, "SUB:s/a/c/"},
        {"s/abc", '@', "", "", all, "SUB:s/abc/def@, SUB:s/abc/deg@"},
        {"s/", '@', "", "", all,
         "s/a-b, s/a.b, s/a/b, s/a/c/d, s/a/c/e, SUB:s/a@, SUB:s/abc/def@, SUB:s/abc/deg@, s/b"},
        // (c) end_marker before the roll-up
        {"s/", '/', "", "s/a/", all, "s/a-b, s/a.b"},
        {"s/", '/', "", "s/a/b", all, "s/a-b, s/a.b"},
        {"s/", '/', "", "s/a/c", all, "s/a-b, s/a.b, SUB:s/a/"},
        {"s/", '/', "", "s/a/c/d", all, "s/a-b, s/a.b, SUB:s/a/"},
        {"s/", '/', "s/a.b", "s/abc/def@/s", all, "SUB:s/a/, s/a@x, SUB:s/abc/"},
        {"s/", '@', "", "s/abc/def@/s", all,
         "s/a-b, s/a.b, s/a/b, s/a/c/d, s/a/c/e, SUB:s/a@, SUB:s/abc/def@"},
        {"s/", '@', "", "s/abc/def@/r", all, "s/a-b, s/a.b, s/a/b, s/a/c/d, s/a/c/e, SUB:s/a@"},
        // without a delimiter
        {"s/", none, "s/a/c/d", "s/abc/deg@/r", all, "s/a/c/e, s/a@x, s/abc/def@/r, s/abc/def@/s"},
        {"s/a", none, "r", "", all,
         "s/a-b, s/a.b, s/a/b, s/a/c/d, s/a/c/e, s/a@x, s/abc/def@/r, s/abc/def@/s, s/abc/deg@/r"},
        {"s/a", none, "", "t", all,
         "s/a-b, s/a.b, s/a/b, s/a/c/d, s/a/c/e, s/a@x, s/abc/def@/r, s/abc/def@/s, s/abc/deg@/r"},
    };
    for (const auto& k : cases) {
        INFO("prefix=" << k.prefix << " delimiter=" << (k.delimiter ? std::string(1, *k.delimiter) : "none")
                       << " marker=" << k.marker << " end_marker=" << k.end_marker << " limit=" << k.limit);
        CHECK(show(store->list(c, opts(k.prefix, k.delimiter, k.marker, k.end_marker, k.limit))) ==
              k.expected);
    }
    // list_all pages by the last entry, subdirs included, without repeats.
    CHECK(show(store->list_all(c, opts("s/", '/', "", "", 1))) ==
          "s/a-b, s/a.b, SUB:s/a/, s/a@x, SUB:s/abc/, s/b");
}

TEST_CASE("get_many: one slot per name, empty where missing") {
    auto store = backend().open();
    TestContainer c(*store, "many");
    store->put(c, "x/1", "one");
    store->put(c, "x/3", "three");
    auto got = store->get_many(c, {"x/1", "x/2", "x/3", "nope/x", "x/1"});
    REQUIRE(got.size() == 5);
    REQUIRE(got[0]);
    CHECK(got[0]->data == "one");
    CHECK(got[0]->info.etag == md5_hex("one"));
    CHECK_FALSE(got[1]);
    REQUIRE(got[2]);
    CHECK(got[2]->data == "three");
    CHECK(got[2]->info.name == "x/3");
    CHECK_FALSE(got[3]);
    REQUIRE(got[4]);
    CHECK(got[4]->data == "one");
    CHECK(store->get_many(c, {}).empty());
}

// ---------------------------------------------------------------------------
// The local directory store only.

namespace {

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void spill(const fs::path& p, const std::string& data) {
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary);
    out << data;
}

std::optional<std::string> xattr_of(const fs::path& p, const char* name) {
    char buf[4096];
    ssize_t n = ::getxattr(p.c_str(), name, buf, sizeof buf);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
}

// Every regular file and directory under `dir`, relative, sorted.
std::vector<std::string> tree(const fs::path& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(dir))
        out.push_back(fs::relative(e.path(), dir).string() + (e.is_directory() ? "/" : ""));
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

TEST_CASE("local: the layout on disk is ROOT/<container>/<object name>" * doctest::skip(!is_local)) {
    auto store = backend().open();
    TestContainer c(*store, "disk");
    const fs::path root = backend().root;
    const std::string run = "noble/amd64/g/gedit/20240321_130412_3fa9c@/";
    const std::string tar = random_bytes(10240, 11);
    PutOptions t;
    t.content_type = "application/x-tar";
    store->put(c, run + "result.tar", tar, t);
    store->put(c, run + "log.gz", "log");

    // Plain tools read the result where Swift would have it.
    CHECK(slurp(root / c.name() / (run + "result.tar")) == tar);
    CHECK(slurp(root / c.name() / (run + "log.gz")) == "log");
    // Nothing but the objects and their directories: metadata is in xattrs.
    CHECK(show(tree(root / c.name())) == "noble/, noble/amd64/, noble/amd64/g/, noble/amd64/g/gedit/, " +
                                             std::string("noble/amd64/g/gedit/") +
                                             "20240321_130412_3fa9c@/, " + run + "log.gz, " + run +
                                             "result.tar");
    auto meta = xattr_of(root / c.name() / (run + "result.tar"), local_meta_xattr);
    REQUIRE(meta);
    CHECK(meta->find(md5_hex(tar)) != std::string::npos);
    CHECK(meta->find("application/x-tar") != std::string::npos);
    CHECK(xattr_of(root / c.name(), local_acl_xattr) == std::optional<std::string>(".r:*,.rlistings"));

    // Removing the objects prunes their directories, not the container.
    CHECK(store->remove(c, run + "result.tar"));
    CHECK(fs::exists(root / c.name() / run));
    CHECK(store->remove(c, run + "log.gz"));
    CHECK(fs::is_directory(root / c.name()));
    CHECK(fs::is_empty(root / c.name()));
    CHECK(store->list(c, {}).empty());
}

TEST_CASE("local: a private container is closed to the host's other users, a public one open" *
          doctest::skip(!is_local)) {
    auto store = backend().open();
    TestContainer c(*store, "mode");
    const fs::path dir = fs::path(backend().root) / c.name();
    auto mode = [&] { return fs::status(dir).permissions() & fs::perms::mask; };
    CHECK(mode() == (fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                     fs::perms::others_read | fs::perms::others_exec));
    store->ensure_container(c, ContainerAcl::private_to("test:worker"));
    CHECK(mode() == fs::perms::owner_all);
    store->put(c, "secret", "private result");
    CHECK(store->get(c, "secret")->data == "private result");  // the owner still reads it
    store->ensure_container(c, ContainerAcl::private_to(""));
    CHECK(mode() == fs::perms::owner_all);
    store->ensure_container(c, ContainerAcl::public_container());
    CHECK((mode() & fs::perms::others_read) != fs::perms::none);
}

TEST_CASE("local: a crashed put leaves nothing visible" * doctest::skip(!is_local)) {
    auto store = backend().open();
    TestContainer c(*store, "crash");
    const fs::path dir = backend().root / c.name();
    store->put(c, "o/run@/result.tar", "complete");
    // What a writer killed between its temporary file and the rename leaves:
    // a temporary file beside an object, one alone in a run directory, and
    // directories made for an object that never arrived.
    const std::string temp = std::string(local_temp_prefix) + "4242.0.0123456789abcdef";
    spill(dir / "o/run@" / temp, "partial");
    spill(dir / "o/crashed@" / temp, "partial");
    fs::create_directories(dir / "o/empty@");
    fs::create_directories(dir / "o/emptier@/deep/er");

    CHECK(show(store->list_all(c, {})) == "o/run@/result.tar");
    CHECK(show(store->list(c, opts("o/", '@'))) == "SUB:o/run@");
    CHECK(show(store->list(c, opts("o/", '/'))) == "SUB:o/run@/");
    CHECK(show(store->list(c, opts("", '/'))) == "SUB:o/");
    CHECK(show(store->list(c, opts("o/run@/"))) == "o/run@/result.tar");
    CHECK(refused_field([&] { store->get(c, "o/run@/" + temp); }) == "object");
    // Later puts and removes work around the leftovers.
    store->put(c, "o/run@/result.tar", "again");
    CHECK(store->get(c, "o/run@/result.tar")->data == "again");
    store->put(c, "o/crashed@/result.tar", "retried");
    CHECK(show(store->list(c, opts("o/", '@'))) == "SUB:o/crashed@, SUB:o/run@");
    CHECK(store->remove(c, "o/run@/result.tar"));
    CHECK(store->remove(c, "o/crashed@/result.tar"));
    CHECK(store->list_all(c, {}).empty());
    CHECK(store->list(c, opts("", '/')).empty());
}

TEST_CASE("local: files placed by hand read with derived metadata" * doctest::skip(!is_local)) {
    auto store = backend().open();
    TestContainer c(*store, "byhand");
    const fs::path dir = backend().root / c.name();
    spill(dir / "noble/amd64/h/hello/20240101_000000@/result.tar", "tar by hand");
    auto head = store->head(c, "noble/amd64/h/hello/20240101_000000@/result.tar");
    REQUIRE(head);
    CHECK(head->bytes == 11);
    CHECK(head->etag == md5_hex("tar by hand"));
    CHECK(head->content_type == "application/x-tar");
    check_last_modified(head->last_modified);
    auto listed = store->list(c, opts("noble/"));
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].etag == md5_hex("tar by hand"));

    // Edited in place after a put: the recorded etag no longer applies.
    PutOptions log;
    log.content_type = "text/plain; charset=UTF-8";
    log.content_encoding = "gzip";
    store->put(c, "edited", "original", log);
    {
        std::ofstream out(dir / "edited", std::ios::binary | std::ios::app);
        out << " plus an edit";
    }
    auto got = store->get(c, "edited");
    REQUIRE(got);
    CHECK(got->data == "original plus an edit");
    CHECK(got->info.etag == md5_hex("original plus an edit"));
    CHECK(got->info.bytes == 21);
    CHECK(got->info.content_type == "text/plain; charset=UTF-8");  // kept from the put
    CHECK(store->head(c, "edited")->etag == md5_hex("original plus an edit"));

    // A container directory made by hand has no recorded ACL: private.
    fs::create_directories(backend().root / (c.name() + "-handmade"));
    ContainerAcl acl = store->container_acl(c.name() + "-handmade");
    CHECK_FALSE(acl.public_read);
    CHECK(acl.read_user.empty());
    CHECK(store->list(c.name() + "-handmade", {}).empty());
    fs::remove_all(backend().root / (c.name() + "-handmade"));
}

TEST_CASE("local: a name cannot be both an object and a directory" * doctest::skip(!is_local)) {
    auto store = backend().open();
    TestContainer c(*store, "conflict");
    store->put(c, "n/a", "file");
    CHECK_THROWS_AS(store->put(c, "n/a/b", "below a file"), StoreError);
    CHECK_THROWS_AS(store->put(c, "n/a/b/c", "below a file"), StoreError);
    store->put(c, "n/x/y", "file");
    CHECK_THROWS_AS(store->put(c, "n/x", "over a directory"), StoreError);
    CHECK(refused_field([&] { store->put(c, "n/z/", "trailing slash"); }) == "object");
    // A path segment is a file name, at most 255 bytes.
    CHECK(refused_field([&] { store->put(c, "n/" + std::string(256, 's'), "long"); }) == "object");
    CHECK(refused_field([&] { store->put(c, "n/" + std::string(255, 's'), "long"); }).empty());
    CHECK(store->remove(c, "n/" + std::string(255, 's')));
    CHECK(store->get(c, "n/a")->data == "file");
    CHECK(store->get(c, "n/x/y")->data == "file");
    CHECK_FALSE(store->get(c, "n/x"));
    CHECK(show(store->list_all(c, {})) == "n/a, n/x/y");
    // Nothing left behind by the refused puts.
    CHECK(show(tree(backend().root / c.name())) == "n/, n/a, n/x/, n/x/y");
}

namespace {

// One version of the shared object: a header naming writer, round and
// length, then bytes derived from them, so a reader can tell a complete
// version from a torn or mixed one.
std::string version_of(int writer, int round) {
    const std::size_t len = 1 + static_cast<std::size_t>((writer * 7919 + round * 104729) % 200000);
    return std::to_string(writer) + " " + std::to_string(round) + " " + std::to_string(len) + "\n" +
           random_bytes(len, static_cast<unsigned>(writer * 1000 + round));
}

bool complete_version(const std::string& data) {
    std::istringstream in(data);
    int writer = -1, round = -1;
    in >> writer >> round;
    return writer >= 0 && round >= 0 && data == version_of(writer, round);
}

bool allowed_name(const std::string& n) {
    if (n == "same/obj" || n == "race/a/b/p0" || n == "race/a/b/p1") return true;
    int a = -1, b = -1;
    char tail = 0;
    if (std::sscanf(n.c_str(), "w%d/%d%c", &a, &b, &tail) == 2) return true;
    return std::sscanf(n.c_str(), "churn/%d/w%d%c", &a, &b, &tail) == 2;
}

// A child process's body: runs `body`, exits 0, or 1 with its message.
[[noreturn]] void child(const std::function<void()>& body) {
    try {
        body();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "child %d: %s\n", static_cast<int>(::getpid()), e.what());
        _exit(1);
    }
    _exit(0);
}

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(what);
}

}  // namespace

TEST_CASE("local: concurrent writers and readers in several processes" * doctest::skip(!is_local)) {
    auto store = backend().open();
    TestContainer c(*store, "concurrent");
    const std::string container = c.name();
    const std::string url = backend().url;
    const fs::path done_flag = backend().tmp / "writers-done";
    constexpr int writers = 4, rounds = 200;
    std::fflush(nullptr);

    std::vector<pid_t> pids;
    for (int w = 0; w < writers; ++w) {
        pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0)
            child([&] {
                auto s = open_store(url);
                for (int i = 0; i < rounds; ++i) {
                    if (i % 2 == 0)
                        s->put(container, "same/obj", version_of(w, i));
                    else
                        s->put(container, "w" + std::to_string(w) + "/" + std::to_string(i),
                               version_of(w, i));
                    // Puts and removes racing in shared directories: removes
                    // prune what puts are about to use.
                    if (i % 5 == 0) {
                        const std::string churn = "churn/" + std::to_string(i % 3) + "/w" + std::to_string(w);
                        s->put(container, churn, "x");
                        if (!s->remove(container, churn)) fail("remove of " + churn + " found nothing");
                    }
                }
            });
        pids.push_back(pid);
    }
    // Two churners putting and removing in the same directories, so removes
    // keep pruning directories that the other's put is about to write into.
    for (int k = 0; k < 2; ++k) {
        pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0)
            child([&] {
                auto s = open_store(url);
                const std::string name = "race/a/b/p" + std::to_string(k);
                for (int i = 0; i < 1000; ++i) {
                    s->put(container, name, std::to_string(i));
                    if (!s->remove(container, name)) fail("remove of " + name + " found nothing");
                }
            });
        pids.push_back(pid);
    }
    pid_t reader = ::fork();
    REQUIRE(reader >= 0);
    if (reader == 0)
        child([&] {
            auto s = open_store(url);
            int reads = 0, lists = 0;
            for (;;) {
                const bool last = fs::exists(done_flag);  // one more pass after the writers ended
                if (auto obj = s->get(container, "same/obj")) {
                    ++reads;
                    if (!complete_version(obj->data))
                        fail("get of same/obj returned a torn or mixed version");
                    if (obj->info.etag != md5_hex(obj->data) || obj->info.bytes != obj->data.size())
                        fail("get of same/obj returned metadata of another version");
                }
                ListOptions all;
                for (const auto& e : s->list_all(container, all)) {
                    if (!allowed_name(e.name)) fail("listing showed " + quote_for_message(e.name));
                    if (e.name.rfind("w", 0) == 0 && lists % 10 == 0) {
                        auto obj = s->get(container, e.name);
                        if (!obj || !complete_version(obj->data) || obj->info.etag != md5_hex(obj->data))
                            fail("listed " + e.name + " did not read back complete");
                    }
                }
                for (const auto& e : s->list(container, opts("", '/')))
                    if (!e.subdir || (e.name != "same/" && e.name != "churn/" && e.name != "race/" &&
                                      e.name.rfind("w", 0) != 0))
                        fail("delimiter listing showed " + quote_for_message(e.name));
                ++lists;
                if (last) break;
            }
            if (reads == 0 || lists < 2) fail("the reader never overlapped the writers");
        });

    bool writers_ok = true;
    for (pid_t pid : pids) {
        int status = 0;
        ::waitpid(pid, &status, 0);
        writers_ok = writers_ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    spill(done_flag, "");
    int status = 0;
    ::waitpid(reader, &status, 0);
    CHECK(writers_ok);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));

    // The final state: every distinct object complete, the shared one one
    // complete version, the churn gone with its directories, no temp files.
    std::set<std::string> expected = {"same/obj"};
    for (int w = 0; w < writers; ++w)
        for (int i = 1; i < rounds; i += 2)
            expected.insert("w" + std::to_string(w) + "/" + std::to_string(i));
    std::set<std::string> listed;
    for (const auto& e : store->list_all(c, opts("", std::nullopt, "", "", 333))) listed.insert(e.name);
    CHECK(listed == expected);
    for (int w = 0; w < writers; ++w) {
        auto got = store->get(c, "w" + std::to_string(w) + "/" + std::to_string(rounds - 1));
        REQUIRE(got);
        CHECK(got->data == version_of(w, rounds - 1));
        CHECK(got->info.etag == md5_hex(got->data));
    }
    auto same = store->get(c, "same/obj");
    REQUIRE(same);
    CHECK(complete_version(same->data));
    CHECK(same->info.etag == md5_hex(same->data));
    CHECK_FALSE(fs::exists(backend().root / container / "churn"));
    CHECK_FALSE(fs::exists(backend().root / container / "race"));
    std::size_t temps = 0;
    for (const auto& e : fs::recursive_directory_iterator(backend().root / container))
        if (e.path().filename().string().rfind(std::string(local_temp_prefix), 0) == 0) ++temps;
    CHECK(temps == 0);
}

// ---------------------------------------------------------------------------
// put_file: an object streamed from a file, on every backend.

namespace {

// A directory for the files to upload, removed afterwards.
struct SourceDir {
    fs::path path;
    SourceDir() {
        std::string tmpl = (fs::temp_directory_path() / "apcloud-put-file-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~SourceDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    SourceDir(const SourceDir&) = delete;
    SourceDir& operator=(const SourceDir&) = delete;
    // Writes `data` to a file of this directory; its path.
    std::string write(const std::string& name, const std::string& data) const {
        std::ofstream out(path / name, std::ios::binary);
        out << data;
        REQUIRE(out.good());
        return (path / name).string();
    }
};

// An MD5 computed piece by piece.
class Md5 {
public:
    Md5() : ctx_(EVP_MD_CTX_new()) { REQUIRE(EVP_DigestInit_ex(ctx_, EVP_md5(), nullptr) == 1); }
    ~Md5() { EVP_MD_CTX_free(ctx_); }
    Md5(const Md5&) = delete;
    Md5& operator=(const Md5&) = delete;
    void update(std::string_view data) {
        if (EVP_DigestUpdate(ctx_, data.data(), data.size()) != 1) FAIL("EVP_DigestUpdate");
    }
    std::string hex() {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        REQUIRE(EVP_DigestFinal_ex(ctx_, md, &len) == 1);
        return hex_of(md, len);
    }

private:
    EVP_MD_CTX* ctx_;
};

// Writes `mib` MiB of random bytes to `path`, one MiB at a time (never the
// whole file in memory); the MD5 of what was written.
std::string write_random_file(const fs::path& path, int mib) {
    std::ofstream out(path, std::ios::binary);
    Md5 md5;
    for (int i = 0; i < mib; ++i) {
        const std::string block = random_bytes(1024 * 1024, static_cast<unsigned>(100 + i));
        out.write(block.data(), static_cast<std::streamsize>(block.size()));
        md5.update(block);
    }
    out.close();
    REQUIRE(out.good());
    return md5.hex();
}

// This process's peak resident set size (VmHWM) in kB.
long peak_rss_kb() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
    return -1;
}

// Lowers the peak to the current RSS (Linux 4.0+), so a growth shows even
// below an earlier peak; false when the kernel refuses. Memory that earlier
// tests freed is given back to the kernel first, or a growth could reuse it
// unseen.
bool reset_peak_rss() {
    ::malloc_trim(0);
    std::ofstream out("/proc/self/clear_refs");
    out << "5";
    out.close();
    return out.good();
}

}  // namespace

TEST_CASE("put_file: content and metadata equal put of the same bytes") {
    auto store = backend().open();
    TestContainer c(*store, "putfile");
    SourceDir src;
    // Several of the stores' read blocks and a partial one.
    const std::string data = random_bytes(3 * 1024 * 1024 + 17, 21);
    PutOptions log;
    log.content_type = "text/plain; charset=UTF-8";
    log.content_encoding = "gzip";
    const ObjectInfo from_file = store->put_file(c, "f/file", src.write("data", data), log);
    const ObjectInfo from_bytes = store->put(c, "f/bytes", data, log);
    CHECK(from_file.name == "f/file");
    CHECK(from_file.bytes == data.size());
    CHECK(from_file.bytes == from_bytes.bytes);
    CHECK(from_file.etag == md5_hex(data));
    CHECK(from_file.etag == from_bytes.etag);
    CHECK(from_file.content_type == from_bytes.content_type);
    CHECK(from_file.content_encoding == from_bytes.content_encoding);
    check_last_modified(from_file.last_modified);

    auto got = store->get(c, "f/file");
    REQUIRE(got);
    CHECK(got->data.size() == data.size());
    CHECK((got->data == data));
    CHECK(got->info.etag == md5_hex(data));
    CHECK(got->info.content_type == "text/plain; charset=UTF-8");
    CHECK(got->info.content_encoding == std::optional<std::string>("gzip"));
    auto head_file = store->head(c, "f/file");
    auto head_bytes = store->head(c, "f/bytes");
    REQUIRE(head_file);
    REQUIRE(head_bytes);
    CHECK(head_file->bytes == head_bytes->bytes);
    CHECK(head_file->etag == head_bytes->etag);
    CHECK(head_file->content_type == head_bytes->content_type);
    CHECK(head_file->content_encoding == head_bytes->content_encoding);
    auto listed = store->list(c, opts("f/"));
    REQUIRE(listed.size() == 2);
    CHECK(listed[0].name == "f/bytes");
    CHECK(listed[1].name == "f/file");
    CHECK(listed[1].bytes == listed[0].bytes);
    CHECK(listed[1].etag == listed[0].etag);
    CHECK(listed[1].content_type == listed[0].content_type);

    // Over an existing object: replaced whole, metadata included.
    const ObjectInfo replaced = store->put_file(c, "f/bytes", src.write("short", "short"));
    CHECK(replaced.etag == md5_hex("short"));
    got = store->get(c, "f/bytes");
    REQUIRE(got);
    CHECK(got->data == "short");
    CHECK(got->info.bytes == 5);
    CHECK(got->info.content_type == "application/octet-stream");
    CHECK_FALSE(got->info.content_encoding);
}

TEST_CASE("put_file: an empty file") {
    auto store = backend().open();
    TestContainer c(*store, "putfile-empty");
    SourceDir src;
    const ObjectInfo info = store->put_file(c, "run@/empty", src.write("empty", ""));
    CHECK(info.bytes == 0);
    CHECK(info.etag == "d41d8cd98f00b204e9800998ecf8427e");
    auto got = store->get(c, "run@/empty");
    REQUIRE(got);
    CHECK(got->data.empty());
    CHECK(got->info.bytes == 0);
    CHECK(got->info.etag == "d41d8cd98f00b204e9800998ecf8427e");
    REQUIRE(store->list(c, {}).size() == 1);
    CHECK(store->list(c, {})[0].bytes == 0);
}

TEST_CASE("put_file: a source that cannot be read is a SystemError naming it; nothing is stored") {
    auto store = backend().open();
    TestContainer c(*store, "putfile-missing");
    SourceDir src;
    const std::string missing = (src.path / "never-written").string();
    try {
        store->put_file(c, "x", missing);
        FAIL("no exception");
    } catch (const SystemError& e) {
        MESSAGE(std::string(e.what()));
        CHECK(e.path() == missing);
        CHECK(e.error_code() == ENOENT);
        CHECK(std::string(e.what()).find(missing) != std::string::npos);
        CHECK(std::string(e.what()).find("No such file or directory") != std::string::npos);
    }
    CHECK_FALSE(store->head(c, "x"));
    // A directory is no file to store.
    try {
        store->put_file(c, "x", src.path.string());
        FAIL("no exception");
    } catch (const SystemError& e) {
        CHECK(e.path() == src.path.string());
        CHECK(e.error_code() == EISDIR);
    }
    CHECK_FALSE(store->head(c, "x"));
    // An object of that name stays as it was.
    store->put(c, "kept", "old");
    CHECK_THROWS_AS(store->put_file(c, "kept", missing), SystemError);
    CHECK(store->get(c, "kept")->data == "old");
    CHECK(show(store->list(c, {})) == "kept");
    if (backend().local()) CHECK(show(tree(backend().root / c.name())) == "kept");  // no temporary file

    // Names and containers are checked as for put.
    const std::string file = src.write("file", "content");
    CHECK(refused_field([&] { store->put_file(c, "../x", file); }) == "object");
    CHECK(refused_field([&] { store->put_file("a/b", "x", file); }) == "container");
    CHECK_THROWS_AS(store->put_file("apcloud-conformance-" + backend().tag + "-never-created", "x", file),
                    NotFound);
}

TEST_CASE("put_file: a 64 MiB file is streamed, its size far from the process's memory") {
    auto store = backend().open();
    TestContainer c(*store, "putfile-large");
    SourceDir src;
    constexpr int mib = 64;
    const fs::path big = src.path / "big";
    const std::string md5 = write_random_file(big, mib);

    const bool reset = reset_peak_rss();
    const long before = peak_rss_kb();
    const ObjectInfo info = store->put_file(c, "run@/artifacts.tar.gz", big.string());
    const long after = peak_rss_kb();
    const long growth_kb = after - before;
    MESSAGE("put_file of " << mib << " MiB: peak RSS " << before << " kB -> " << after << " kB (+"
                           << growth_kb << " kB; peak "
                           << std::string(reset ? "reset first" : "not resettable") << ")");
    REQUIRE(before > 0);
    // Streaming needs a few blocks; holding the file would add 64 MiB.
    CHECK(growth_kb < 16 * 1024);
    CHECK(info.bytes == std::uint64_t{mib} * 1024 * 1024);
    CHECK(info.etag == md5);

    auto head = store->head(c, "run@/artifacts.tar.gz");
    REQUIRE(head);
    CHECK(head->bytes == info.bytes);
    CHECK(head->etag == md5);
    // The content itself, read back (into memory, now that the measure is taken).
    auto got = store->get(c, "run@/artifacts.tar.gz");
    REQUIRE(got);
    CHECK(got->data.size() == info.bytes);
    CHECK(md5_hex(got->data) == md5);
}

// ---------------------------------------------------------------------------
// list_containers: every container of the store.

namespace {

// The containers of `names` whose names start with `prefix`, in their order.
std::vector<std::string> starting_with(const std::vector<std::string>& names, const std::string& prefix) {
    std::vector<std::string> out;
    for (const auto& n : names)
        if (n.rfind(prefix, 0) == 0) out.push_back(n);
    return out;
}

}  // namespace

TEST_CASE("list_containers: every container, sorted bytewise, across pages") {
    auto store = backend().open();
    const std::string prefix = "apcloud-conformance-" + backend().tag + "-lc-";
    // Bytewise: upper case before lower case, UTF-8 after ASCII.
    TestContainer b(*store, "lc-b"), upper(*store, "lc-B"), a(*store, "lc-a"),
        utf8(*store, "lc-\xc3\xa9t\xc3\xa9"), c(*store, "lc-c");
    const std::vector<std::string> expected = {prefix + "B", prefix + "a", prefix + "b", prefix + "c",
                                               prefix + "\xc3\xa9t\xc3\xa9"};

    const auto all = store->list_containers();
    INFO("listed: " << show(starting_with(all, prefix)));
    CHECK(std::is_sorted(all.begin(), all.end()));
    CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());  // each once
    CHECK(starting_with(all, prefix) == expected);
    // Empty containers count, and so do those of other tests (and runs).
    CHECK(std::find(all.begin(), all.end(), a.name()) != all.end());

    if (!backend().local()) {
        // Pages of two (the account has more containers than that): the same
        // containers, in the same order, although fetched three or more
        // requests apart.
        auto paged = open_store(backend().url + "?list_page=2", backend().credentials);
        const auto listed = paged->list_containers();
        CHECK(std::is_sorted(listed.begin(), listed.end()));
        CHECK(std::adjacent_find(listed.begin(), listed.end()) == listed.end());
        CHECK(starting_with(listed, prefix) == expected);
        CHECK(listed.size() >= expected.size());
        auto single = open_store(backend().url + "?list_page=1", backend().credentials);
        CHECK(starting_with(single->list_containers(), prefix) == expected);
    }
}

TEST_CASE("local: list_containers skips what is not a container" * doctest::skip(!is_local)) {
    auto store = backend().open();
    const fs::path root = backend().root;
    const std::string prefix = "apcloud-conformance-" + backend().tag + "-lcx-";
    {
        TestContainer kept(*store, "lcx-kept");
        // A file, a crashed writer's temporary file and directory (their names
        // are not UTF-8), a FIFO, and a link to a container (which, like
        // every other operation, takes it for the container it leads to).
        std::ofstream(root / (prefix + "file")) << "not a container";
        const std::string temp = std::string(local_temp_prefix) + "1.2.3";
        std::ofstream(root / temp) << "left over";
        fs::create_directory(root / (prefix + "\xff" + "dir"));
        REQUIRE(::mkfifo((root / (prefix + "fifo")).c_str(), 0644) == 0);
        fs::create_directory_symlink(kept.name(), root / (prefix + "link"));
        CHECK(starting_with(store->list_containers(), prefix) ==
              std::vector<std::string>{prefix + "kept", prefix + "link"});
        CHECK(store->list(prefix + "link", {}).empty());
        fs::remove(root / (prefix + "file"));
        fs::remove(root / temp);
        fs::remove(root / (prefix + "\xff" + "dir"));
        fs::remove(root / (prefix + "fifo"));
        fs::remove(root / (prefix + "link"));
    }
    // Removed: no longer listed.
    CHECK(starting_with(store->list_containers(), prefix).empty());
}

// ---------------------------------------------------------------------------
// open_object: an object read piece by piece, on every backend.

namespace {

// Everything a reader gives, checking each piece on the way.
std::string read_all(ObjectReader& reader) {
    std::string out, chunk = "left over from before";
    while (reader.read(chunk)) {
        if (chunk.empty()) FAIL("read() returned true with an empty piece");
        if (chunk.size() > 1024 * 1024) FAIL("a piece of " << chunk.size() << " bytes");
        out += chunk;
    }
    CHECK(chunk.empty());
    // The end stays the end.
    chunk = "x";
    CHECK_FALSE(reader.read(chunk));
    CHECK(chunk.empty());
    return out;
}

void check_same_info(const ObjectInfo& read, const ObjectInfo& head) {
    CHECK(read.name == head.name);
    CHECK(read.bytes == head.bytes);
    CHECK(read.etag == head.etag);
    CHECK(read.content_type == head.content_type);
    CHECK(read.content_encoding == head.content_encoding);
    CHECK(read.last_modified == head.last_modified);
}

}  // namespace

TEST_CASE("open_object: the content read piece by piece equals get(), info() equals head()") {
    auto store = backend().open();
    TestContainer c(*store, "open");
    PutOptions log;
    log.content_type = "text/plain; charset=UTF-8";
    log.content_encoding = "gzip";  // served as stored: never decompressed
    const std::string gz("\x1f\x8b\x08\x00 not really gzip", 20);
    PutOptions tar;
    tar.content_type = "application/x-tar";
    struct Case {
        std::string name;
        std::string data;
        PutOptions options;
    };
    const std::vector<Case> cases = {
        {"empty", "", {}},
        {"small", "exitcode 0\n", {}},
        {"run@/log.gz", gz, log},
        {"run@/result.tar", random_bytes(10240, 5), tar},
        // Several of the stores' blocks and pieces, and a partial one.
        {"run@/artifacts.tar.gz", random_bytes(3 * 1024 * 1024 + 17, 6), {}},
    };
    for (const auto& k : cases) store->put(c, k.name, k.data, k.options);
    for (const auto& k : cases) {
        INFO("object " << k.name << " (" << k.data.size() << " bytes)");
        auto reader = store->open_object(c, k.name);
        REQUIRE(reader);
        auto head = store->head(c, k.name);
        REQUIRE(head);
        check_same_info(reader->info(), *head);
        CHECK(reader->info().bytes == k.data.size());
        CHECK(reader->info().etag == md5_hex(k.data));
        CHECK(reader->info().content_type == k.options.content_type);
        CHECK(reader->info().content_encoding == k.options.content_encoding);
        const std::string content = read_all(*reader);
        CHECK(content.size() == k.data.size());
        CHECK((content == k.data));
        CHECK((content == store->get(c, k.name)->data));
    }
    // An object put from a file reads the same.
    SourceDir src;
    store->put_file(c, "from-file", src.write("f", cases.back().data));
    auto reader = store->open_object(c, "from-file");
    REQUIRE(reader);
    CHECK((read_all(*reader) == cases.back().data));
}

TEST_CASE("open_object: nullptr for a missing object or container; names checked as for get") {
    auto store = backend().open();
    TestContainer c(*store, "open-missing");
    store->put(c, "a/b", "x");
    CHECK(store->open_object(c, "never/put") == nullptr);
    CHECK(store->open_object(c, "a") == nullptr);  // a prefix of objects is no object
    CHECK(store->open_object("apcloud-conformance-" + backend().tag + "-never-created", "a/b") == nullptr);
    CHECK(refused_field([&] { store->open_object(c, "../x"); }) == "object");
    CHECK(refused_field([&] { store->open_object(c, ""); }) == "object");
    CHECK(refused_field([&] { store->open_object("a/b", "x"); }) == "container");
    // Removed: gone for readers opened afterwards.
    CHECK(store->remove(c, "a/b"));
    CHECK(store->open_object(c, "a/b") == nullptr);
}

TEST_CASE("open_object: readers left midway, or read in turns, leave the store as it was") {
    auto store = backend().open();
    TestContainer c(*store, "open-abandon");
    const std::string big = random_bytes(5 * 1024 * 1024, 8);
    const std::string other = random_bytes(2 * 1024 * 1024 + 3, 9);
    store->put(c, "big", big);
    store->put(c, "other", other);
    // Abandoned after one piece, many times over (Swift: each one closes
    // its connection instead of leaving it stuck or reusing it).
    for (int i = 0; i < 20; ++i) {
        auto reader = store->open_object(c, "big");
        REQUIRE(reader);
        std::string chunk;
        REQUIRE(reader->read(chunk));
        CHECK(chunk == big.substr(0, chunk.size()));
    }
    // Abandoned before the first read.
    CHECK(store->open_object(c, "big") != nullptr);
    // Two readers in turns, and other operations meanwhile.
    auto r1 = store->open_object(c, "big");
    auto r2 = store->open_object(c, "other");
    REQUIRE(r1);
    REQUIRE(r2);
    std::string s1, s2, chunk;
    bool more1 = true, more2 = true;
    while (more1 || more2) {
        if (more1) {
            more1 = r1->read(chunk);
            s1 += chunk;
        }
        if (more2) {
            more2 = r2->read(chunk);
            s2 += chunk;
        }
        CHECK(store->head(c, "other"));
    }
    CHECK((s1 == big));
    CHECK((s2 == other));
    CHECK((store->get(c, "big")->data == big));
    CHECK(show(store->list(c, {})) == "big, other");
}

namespace {

// A Store with only the methods a Store must implement, and of those only
// get() and head() in use (over the backend): what it inherits are the
// interface's defaults.
struct GetOnlyStore : Store {
    Store& inner;
    explicit GetOnlyStore(Store& s) : inner(s) {}
    std::optional<Object> get(const std::string& c, const std::string& n) override { return inner.get(c, n); }
    std::optional<ObjectInfo> head(const std::string& c, const std::string& n) override {
        return inner.head(c, n);
    }
    [[noreturn]] static void unused() { throw std::logic_error("not used by the test"); }
    void ensure_container(const std::string&, const ContainerAcl&) override { unused(); }
    ContainerAcl container_acl(const std::string&) override { unused(); }
    ObjectInfo put(const std::string&, const std::string&, std::string_view, const PutOptions&) override {
        unused();
    }
    bool remove(const std::string&, const std::string&) override { unused(); }
    std::vector<ListEntry> list(const std::string&, const ListOptions&) override { unused(); }
};

}  // namespace

TEST_CASE("defaults: open_object over get(), and no list_containers, for a Store without them") {
    auto store = backend().open();
    TestContainer c(*store, "defaults");
    GetOnlyStore minimal(*store);
    const std::string data = random_bytes(600 * 1024, 12);
    store->put(c, "obj", data);
    auto reader = minimal.open_object(c, "obj");
    REQUIRE(reader);
    check_same_info(reader->info(), *store->head(c, "obj"));
    CHECK((read_all(*reader) == data));
    CHECK(minimal.open_object(c, "missing") == nullptr);
    CHECK_THROWS_AS(minimal.list_containers(), StoreError);
}

TEST_CASE("local: a reader outliving a put or remove of its name reads the version it opened" *
          doctest::skip(!is_local)) {
    auto store = backend().open();
    TestContainer c(*store, "open-versions");
    // Larger than a block, so the rest is read after the put.
    const std::string v1 = random_bytes(600 * 1024, 10);
    const std::string v2 = "the second version";
    const ObjectInfo put1 = store->put(c, "run@/log.gz", v1);
    auto reader = store->open_object(c, "run@/log.gz");
    REQUIRE(reader);
    std::string chunk;
    REQUIRE(reader->read(chunk));
    std::string got = chunk;
    store->put(c, "run@/log.gz", v2);
    got += read_all(*reader);
    CHECK((got == v1));
    CHECK(reader->info().etag == put1.etag);
    CHECK(reader->info().bytes == v1.size());
    // A reader opened now has the new version.
    auto now = store->open_object(c, "run@/log.gz");
    REQUIRE(now);
    CHECK(read_all(*now) == v2);

    // Removed while being read: the reader still has it all.
    store->put(c, "gone", v1);
    auto doomed = store->open_object(c, "gone");
    REQUIRE(doomed);
    CHECK(store->remove(c, "gone"));
    CHECK((read_all(*doomed) == v1));
    CHECK(store->open_object(c, "gone") == nullptr);
}

TEST_CASE("open_object: a 64 MiB object is streamed, its size far from the process's memory") {
    auto store = backend().open();
    TestContainer c(*store, "open-large");
    constexpr int mib = 64;
    std::string md5;
    {
        SourceDir src;
        const fs::path big = src.path / "big";
        md5 = write_random_file(big, mib);
        REQUIRE(store->put_file(c, "run@/artifacts.tar.gz", big.string()).etag == md5);
    }

    const bool reset = reset_peak_rss();
    const long before = peak_rss_kb();
    auto reader = store->open_object(c, "run@/artifacts.tar.gz");
    REQUIRE(reader);
    CHECK(reader->info().bytes == std::uint64_t{mib} * 1024 * 1024);
    CHECK(reader->info().etag == md5);
    Md5 streamed;
    std::uint64_t bytes = 0;
    std::size_t pieces = 0;
    std::string chunk;
    REQUIRE(reader->read(chunk));
    // A slow consumer (a web client on a slow link): with an unbounded read
    // ahead, the whole object would arrive in memory meanwhile.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    const long paused = peak_rss_kb();
    do {
        streamed.update(chunk);
        bytes += chunk.size();
        ++pieces;
    } while (reader->read(chunk));
    const long after = peak_rss_kb();
    const long growth_kb = after - before;
    MESSAGE("open_object of " << mib << " MiB in " << pieces << " pieces: peak RSS " << before << " kB -> "
                              << paused << " kB after a 1.5 s pause -> " << after << " kB (+" << growth_kb
                              << " kB; peak " << std::string(reset ? "reset first" : "not resettable")
                              << ")");
    REQUIRE(before > 0);
    // Streaming holds a few pieces; holding the object would add 64 MiB.
    CHECK(growth_kb < 16 * 1024);
    CHECK(paused - before < 16 * 1024);
    CHECK(bytes == std::uint64_t{mib} * 1024 * 1024);
    CHECK(streamed.hex() == md5);
}

// ---------------------------------------------------------------------------
// ContainerAcl::parse, the reader both stores use for X-Container-Read.

TEST_CASE("acl: ContainerAcl::parse reads back what swift_read_acl writes, and Swift's other forms") {
    // ACL -> header -> ACL. (Owner-only has no header value: the stores remove it.)
    for (const ContainerAcl& acl : {ContainerAcl::public_container(), ContainerAcl::private_to("test:worker"),
                                    ContainerAcl::private_to("someone")}) {
        INFO("X-Container-Read: " << acl.swift_read_acl());
        const ContainerAcl back = ContainerAcl::parse(acl.swift_read_acl());
        CHECK(back.public_read == acl.public_read);
        CHECK(back.read_user == acl.read_user);
    }
    // Header -> ACL -> header.
    for (const char* header : {".r:*,.rlistings", "*:someone", "test:worker"})
        CHECK(ContainerAcl::parse(header).swift_read_acl() == header);

    auto is_public = [](std::string_view v) { return ContainerAcl::parse(v).public_read; };
    auto user_of = [](std::string_view v) {
        const ContainerAcl acl = ContainerAcl::parse(v);
        CHECK_FALSE(acl.public_read);
        return acl.read_user;
    };
    CHECK(is_public(".r:*"));
    CHECK(is_public(".rlistings, .r:*"));  // any order, blanks around items
    CHECK(is_public("  .r:*  "));
    CHECK(is_public("*:someone,.r:*"));  // public wins over a named user
    CHECK(user_of("").empty());          // owner-only
    CHECK(user_of(".rlistings").empty());
    CHECK(user_of(".r:example.com").empty());  // a referrer grant is not public
    CHECK(user_of(",, ,").empty());
    CHECK(user_of(" *:worker ") == "worker");
    CHECK(user_of("AUTH_test:tester, *:other") == "AUTH_test:tester");  // the first user named
    CHECK(user_of(".rlistings,*:second") == "second");
}
