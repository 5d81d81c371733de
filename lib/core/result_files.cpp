// Result files of a run: result.tar, log.gz and artifacts.tar.gz written from
// autopkgtest's output directory, and result.tar read back (SPEC.md section 3).
#include "autopkgtest_cloud/result.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/exit_codes.hpp"
#include "autopkgtest_cloud/request.hpp"
#include "core/json_reader.hpp"
#include "core/plain_tar.hpp"

namespace fs = std::filesystem;

namespace apcloud {

namespace {

// Members of result.tar, in the order they are written.
constexpr std::array<const char*, 8> result_members = {"exitcode",         "duration",      "testpkg-version",
                                                       "testbed-packages", "testinfo.json", "requester",
                                                       "summary",          "request"};

using Sink = std::function<void(const char*, std::size_t)>;

struct ArchiveDeleter {
    void operator()(archive* a) const { archive_write_free(a); }
};

// A tar (optionally gzip) writer that streams into a Sink.
class TarWriter {
public:
    TarWriter(Sink sink, bool gzip) : sink_(std::move(sink)), a_(archive_write_new()) {
        if (!a_) throw Error("cannot allocate an archive writer");
        check(archive_write_set_format_pax_restricted(a_.get()), "set tar format");
        if (gzip) {
            check(archive_write_add_filter_gzip(a_.get()), "add gzip filter");
            // No timestamp in the gzip header: the same input gives the same bytes.
            check(archive_write_set_filter_option(a_.get(), "gzip", "timestamp", nullptr), "gzip option");
            check(archive_write_set_bytes_in_last_block(a_.get(), 1), "set last block");
        }
        check(archive_write_open(a_.get(), this, nullptr, &TarWriter::write_cb, nullptr), "open archive");
    }

    void add_bytes(const std::string& name, std::string_view data, std::int64_t mtime) {
        auto* e = new_entry(name, mtime, static_cast<la_int64_t>(data.size()));
        check(archive_write_header(a_.get(), e), "write header of " + name);
        archive_entry_free(e);
        if (!data.empty() &&
            archive_write_data(a_.get(), data.data(), data.size()) != static_cast<la_ssize_t>(data.size()))
            fail(fmt::format("write {}", name));
    }

    void add_file(const std::string& name, const fs::path& path, std::int64_t mtime) {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw Error(fmt::format("cannot read {}", path.string()));
        auto size = fs::file_size(path);
        auto* e = new_entry(name, mtime, static_cast<la_int64_t>(size));
        check(archive_write_header(a_.get(), e), "write header of " + name);
        archive_entry_free(e);
        std::array<char, 65536> buf;
        std::uintmax_t left = size;
        while (left > 0 && in) {
            in.read(buf.data(), static_cast<std::streamsize>(std::min<std::uintmax_t>(buf.size(), left)));
            auto got = static_cast<std::size_t>(in.gcount());
            if (got == 0) break;
            if (archive_write_data(a_.get(), buf.data(), got) != static_cast<la_ssize_t>(got))
                fail(fmt::format("write {}", name));
            left -= got;
        }
        if (left != 0) throw Error(fmt::format("file changed size while packing: {}", path.string()));
    }

    void close() { check(archive_write_close(a_.get()), "close archive"); }

private:
    static la_ssize_t write_cb(archive*, void* self, const void* buf, size_t n) {
        try {
            static_cast<TarWriter*>(self)->sink_(static_cast<const char*>(buf), n);
        } catch (...) {
            return -1;
        }
        return static_cast<la_ssize_t>(n);
    }
    archive_entry* new_entry(const std::string& name, std::int64_t mtime, la_int64_t size) {
        archive_entry* e = archive_entry_new();
        archive_entry_set_pathname(e, name.c_str());
        archive_entry_set_size(e, size);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_mtime(e, mtime, 0);
        return e;
    }
    void check(int rc, const std::string& what) {
        if (rc != ARCHIVE_OK) fail(what);
    }
    [[noreturn]] void fail(const std::string& what) {
        const char* msg = archive_error_string(a_.get());
        throw Error(fmt::format("archive: cannot {}: {}", what, (msg ? msg : "unknown error")));
    }

    Sink sink_;
    std::unique_ptr<archive, ArchiveDeleter> a_;
};

// gzip -9 of a stream, into a Sink.
class GzipWriter {
public:
    explicit GzipWriter(Sink sink) : sink_(std::move(sink)) {
        if (deflateInit2(&z_, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
            throw Error("cannot initialise gzip compression");
    }
    ~GzipWriter() { deflateEnd(&z_); }
    GzipWriter(const GzipWriter&) = delete;
    GzipWriter& operator=(const GzipWriter&) = delete;

    void write(const char* data, std::size_t n) { run(data, n, Z_NO_FLUSH); }
    void finish() { run(nullptr, 0, Z_FINISH); }

private:
    void run(const char* data, std::size_t n, int flush) {
        z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
        z_.avail_in = static_cast<uInt>(n);
        std::array<char, 65536> out;
        int rc;
        do {
            z_.next_out = reinterpret_cast<Bytef*>(out.data());
            z_.avail_out = static_cast<uInt>(out.size());
            rc = deflate(&z_, flush);
            if (rc == Z_STREAM_ERROR) throw Error("gzip compression failed");
            sink_(out.data(), out.size() - z_.avail_out);
        } while (z_.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
    }
    Sink sink_;
    z_stream z_{};
};

std::int64_t mtime_of(const fs::path& p) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) return 0;
    return static_cast<std::int64_t>(st.st_mtime);
}

bool is_result_member(const std::string& name) {
    return std::any_of(result_members.begin(), result_members.end(),
                       [&](const char* m) { return name == m; });
}

// Regular files below `dir` (relative names, sorted), not following symlinks.
std::vector<std::string> regular_files(const fs::path& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
    if (ec) throw SystemError(ec.value(), "read output directory", dir.string());
    for (; it != end; it.increment(ec)) {
        if (ec) throw SystemError(ec.value(), "read output directory", dir.string());
        const auto st = it->symlink_status();
        if (fs::is_regular_file(st)) out.push_back(fs::relative(it->path(), dir).generic_string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

// Copies the log at `path` into `out`, whole or, past `limit` bytes, its
// first and last halves (the head cut after a line end, the tail begun after
// one, so no line is split) with a line between them saying what was left out.
void write_log(const fs::path& path, std::uint64_t limit, GzipWriter& out) {
    std::ifstream in(path, std::ios::binary);
    std::array<char, 65536> buf;
    auto copy = [&](std::uint64_t n) {
        while (n > 0 && in) {
            in.read(buf.data(), static_cast<std::streamsize>(std::min<std::uint64_t>(n, buf.size())));
            const auto got = static_cast<std::size_t>(in.gcount());
            if (got == 0) break;
            out.write(buf.data(), got);
            n -= got;
        }
    };
    std::error_code ec;
    const std::uint64_t size = fs::file_size(path, ec);
    if (ec || limit == 0 || size <= limit) {
        copy(ec ? UINT64_MAX : size);
        return;
    }
    // A line end near each cut, inside the kept part: looked for within 4 kB,
    // else the cut stays where it is.
    auto line_end_before = [&](std::uint64_t at) {
        const std::uint64_t from = at > 4096 ? at - 4096 : 0;
        std::string window(static_cast<std::size_t>(at - from), '\0');
        in.seekg(static_cast<std::streamoff>(from));
        in.read(window.data(), static_cast<std::streamsize>(window.size()));
        const auto nl = window.rfind('\n');
        return nl == std::string::npos ? at : from + nl + 1;
    };
    auto line_start_after = [&](std::uint64_t at) {
        std::string window(static_cast<std::size_t>(std::min<std::uint64_t>(4096, size - at)), '\0');
        in.seekg(static_cast<std::streamoff>(at));
        in.read(window.data(), static_cast<std::streamsize>(window.size()));
        const auto nl = window.find('\n');
        return nl == std::string::npos || at + nl + 1 >= size ? at : at + nl + 1;
    };
    const std::uint64_t head = line_end_before(limit / 2);
    const std::uint64_t tail = line_start_after(size - limit / 2);
    in.clear();
    in.seekg(0);
    copy(head);
    const std::string marker = fmt::format(
        "\n[autopkgtest-cloud: {} bytes of this {}-byte log left out here; stored logs keep at most {} "
        "bytes (worker.conf log_limit_mb)]\n\n",
        tail - head, size, limit);
    out.write(marker.data(), marker.size());
    in.clear();
    in.seekg(static_cast<std::streamoff>(tail));
    copy(size - tail);
}

void pack(const std::string& output_dir, const PackOptions& opt, const Sink& result_sink,
          const Sink& log_sink, const Sink& artifacts_sink) {
    const fs::path dir(output_dir);
    if (!fs::is_directory(dir))
        throw NotFound(fmt::format("output directory does not exist: {}", output_dir));
    auto files = regular_files(dir);

    std::int64_t mtime = 0;
    if (opt.mtime) {
        mtime = *opt.mtime;
    } else {
        for (const auto& f : files) mtime = std::max(mtime, mtime_of(dir / f));
    }

    // Members autopkgtest did not write, or that we always write ourselves.
    std::vector<std::pair<std::string, std::string>> generated = {
        {"exitcode", std::to_string(opt.exitcode) + "\n"},
        {"duration", std::to_string(opt.duration) + "\n"},
    };
    const bool has_version = std::find(files.begin(), files.end(), "testpkg-version") != files.end();
    if (!has_version && opt.package && reports_unknown_version(opt.exitcode))
        generated.emplace_back("testpkg-version", *opt.package + " unknown");
    if (opt.requester) generated.emplace_back("requester", *opt.requester + "\n");
    if (opt.request) generated.emplace_back("request", *opt.request);

    TarWriter result(result_sink, false);
    for (const char* m : result_members) {
        const std::string name = m;
        auto g =
            std::find_if(generated.begin(), generated.end(), [&](const auto& p) { return p.first == name; });
        if (g != generated.end())
            result.add_bytes(name, g->second, mtime);
        else if (std::find(files.begin(), files.end(), name) != files.end())
            result.add_file(name, dir / name, mtime);
    }
    result.close();

    GzipWriter log(log_sink);
    if (std::find(files.begin(), files.end(), "log") != files.end())
        write_log(dir / "log", opt.log_limit, log);
    log.finish();

    TarWriter artifacts(artifacts_sink, true);
    for (const auto& f : files) {
        if (f == "log" || is_result_member(f) || f.rfind("binaries/", 0) == 0) continue;
        artifacts.add_file(f, dir / f, mtime);
    }
    artifacts.close();
}

Sink string_sink(std::string& s) {
    return [&s](const char* d, std::size_t n) { s.append(d, n); };
}

}  // namespace

ResultFiles pack_results(const std::string& output_dir, const PackOptions& options) {
    ResultFiles out;
    pack(output_dir, options, string_sink(out.result_tar), string_sink(out.log_gz),
         string_sink(out.artifacts_tar_gz));
    return out;
}

void pack_results_to(const std::string& output_dir, const PackOptions& options, const std::string& dest_dir) {
    auto file_sink = [](std::ofstream& f) {
        return [&f](const char* d, std::size_t n) {
            if (!f.write(d, static_cast<std::streamsize>(n))) throw Error("write failed");
        };
    };
    const fs::path dest(dest_dir);
    std::ofstream r(dest / "result.tar", std::ios::binary | std::ios::trunc);
    std::ofstream l(dest / "log.gz", std::ios::binary | std::ios::trunc);
    std::ofstream a(dest / "artifacts.tar.gz", std::ios::binary | std::ios::trunc);
    if (!r || !l || !a) throw Error(fmt::format("cannot create result files in {}", dest_dir));
    pack(output_dir, options, file_sink(r), file_sink(l), file_sink(a));
    r.close();
    l.close();
    a.close();
    if (!r || !l || !a) throw Error(fmt::format("cannot write result files in {}", dest_dir));
}

std::string gzip_compress(std::string_view data) {
    std::string out;
    GzipWriter gz(string_sink(out));
    gz.write(data.data(), data.size());
    gz.finish();
    return out;
}

std::string gzip_decompress(std::string_view data, std::size_t max_bytes, bool* truncated) {
    z_stream z{};
    if (inflateInit2(&z, 15 + 16) != Z_OK) throw Error("cannot initialise gzip decompression");
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    std::string out;
    std::array<char, 65536> buf;
    bool more = false;
    for (;;) {
        z.next_out = reinterpret_cast<Bytef*>(buf.data());
        z.avail_out = static_cast<uInt>(buf.size());
        const int rc = inflate(&z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
            inflateEnd(&z);
            throw ArchiveError(
                fmt::format("not gzip data, or corrupt: {}", z.msg ? z.msg : "inflate failed"));
        }
        const std::size_t got = buf.size() - z.avail_out;
        const std::size_t room = max_bytes - std::min(max_bytes, out.size());
        out.append(buf.data(), std::min(got, room));
        if (got > room) {
            more = true;
            break;
        }
        if (rc == Z_STREAM_END) break;
        if (rc == Z_BUF_ERROR && z.avail_in == 0) {
            inflateEnd(&z);
            throw ArchiveError("truncated gzip data");
        }
    }
    inflateEnd(&z);
    if (truncated) *truncated = more;
    return out;
}

namespace {

// The members read_tar keeps, with SPEC.md 3's limits applied: regular files
// that `wanted` accepts, "./" taken off their names (`tar -C dir -cf . ...`).
class MemberCollector {
public:
    MemberCollector(const ArchiveLimits& limits, const MemberFilter& wanted)
        : limits_(limits), wanted_(wanted) {}

    /// The member's name when it is to be kept (after the limits' checks); nullopt to skip it.
    std::optional<std::string> admit(std::string_view stored_name, std::int64_t size) {
        std::string name(stored_name);
        if (name.compare(0, 2, "./") == 0) name.erase(0, 2);
        if (wanted_ && !wanted_(name)) return std::nullopt;
        if (members.size() >= limits_.max_members)
            throw ArchiveError(fmt::format("archive has more than {} members", limits_.max_members));
        if (size < 0 || static_cast<std::uint64_t>(size) > limits_.max_member_bytes)
            throw ArchiveError(fmt::format("archive member {} is {} bytes, more than the limit of {}",
                                           quote_for_message(name), size, limits_.max_member_bytes));
        total_ += static_cast<std::size_t>(size);
        if (total_ > limits_.max_archive_bytes)
            throw ArchiveError(fmt::format("archive contents exceed {} bytes", limits_.max_archive_bytes));
        return name;
    }

    std::vector<std::pair<std::string, std::string>> members;

private:
    const ArchiveLimits& limits_;
    const MemberFilter& wanted_;
    std::size_t total_ = 0;
};

// libarchive's last error; it has none for some failures (archive_error_string is then null).
const char* archive_message(archive* a) {
    const char* m = archive_error_string(a);
    return m ? m : "unknown error";
}

// Any tar archive libarchive reads (gzip-compressed too when `allow_gzip`).
void read_tar_with_libarchive(std::string_view data, bool allow_gzip, MemberCollector& collect) {
    std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
    if (!a) throw Error("cannot allocate an archive reader");
    archive_read_support_format_tar(a.get());
    if (allow_gzip) archive_read_support_filter_gzip(a.get());
    if (archive_read_open_memory(a.get(), data.data(), data.size()) != ARCHIVE_OK)
        throw ArchiveError(std::string("not a tar archive: ") + archive_message(a.get()));
    archive_entry* e;
    for (;;) {
        int rc = archive_read_next_header(a.get(), &e);
        if (rc == ARCHIVE_EOF) break;
        if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
            throw ArchiveError(std::string("corrupt archive: ") + archive_message(a.get()));
        if (archive_entry_filetype(e) != AE_IFREG) continue;
        const char* path = archive_entry_pathname(e);
        const auto size = archive_entry_size(e);
        auto name = collect.admit(path ? path : "", size);
        if (!name) continue;
        std::string content(static_cast<std::size_t>(size), '\0');
        std::size_t got = 0;
        while (got < content.size()) {
            auto n = archive_read_data(a.get(), content.data() + got, content.size() - got);
            if (n < 0)
                throw ArchiveError(fmt::format("corrupt archive member {}: {}", quote_for_message(*name),
                                               archive_message(a.get())));
            if (n == 0) break;
            got += static_cast<std::size_t>(n);
        }
        if (got != content.size())
            throw ArchiveError(fmt::format("truncated archive member {}", quote_for_message(*name)));
        collect.members.emplace_back(std::move(*name), std::move(content));
    }
}

std::vector<std::pair<std::string, std::string>> read_tar(std::string_view data, const ArchiveLimits& limits,
                                                          bool allow_gzip, const MemberFilter& wanted) {
    if (data.size() > limits.max_archive_bytes)
        throw ArchiveError(fmt::format("archive is {} bytes, more than the limit of {}", data.size(),
                                       limits.max_archive_bytes));
    MemberCollector collect(limits, wanted);
    if (auto plain = detail::scan_plain_tar(data)) {
        for (const auto& m : *plain)
            if (auto name = collect.admit(m.name, static_cast<std::int64_t>(m.content.size())))
                collect.members.emplace_back(std::move(*name), std::string(m.content));
    } else {
        read_tar_with_libarchive(data, allow_gzip, collect);
    }
    return std::move(collect.members);
}

}  // namespace

std::vector<std::pair<std::string, std::string>> read_archive(std::string_view data,
                                                              const ArchiveLimits& limits,
                                                              const MemberFilter& wanted) {
    return read_tar(data, limits, true, wanted);
}

namespace {

std::string_view strip_newline(std::string_view s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

template <typename T>
bool parse_number(std::string_view s, T& out) {
    s = strip_newline(s);
    bool neg = !s.empty() && s[0] == '-';
    if (neg) s.remove_prefix(1);
    if (s.empty() || s.size() > 18) return false;
    long long v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    if (neg && !std::is_signed<T>::value) return false;
    out = static_cast<T>(neg ? -v : v);
    return true;
}

// Takes custom_environment (and the triggers in it) from testinfo.json.
void read_custom_environment(std::string_view testinfo, Result& r) {
    if (!is_valid_utf8(testinfo)) throw ParseError("result.tar: testinfo.json is not valid UTF-8");
    try {
        detail::JsonReader in(testinfo);
        if (in.peek() != detail::JsonType::object) throw ParseError("not a JSON object");
        in.begin_object();
        std::string key;
        while (in.next_key(key)) {
            if (key != "custom_environment" || in.peek() != detail::JsonType::array) {
                in.skip_value();
                continue;
            }
            in.begin_array();
            while (in.next_item()) {
                if (in.peek() != detail::JsonType::string) {
                    in.skip_value();
                    continue;
                }
                auto& s = r.custom_environment.emplace_back();
                in.read_string(s);
                static constexpr std::string_view trigger_key = "ADT_TEST_TRIGGERS=";
                if (s.compare(0, trigger_key.size(), trigger_key) != 0) continue;
                r.triggers = split_triggers(std::string_view(s).substr(trigger_key.size()));
            }
        }
        in.finish();
    } catch (const ParseError& e) {
        throw ParseError(std::string("result.tar: testinfo.json is not valid JSON: ") + e.what());
    }
}

}  // namespace

std::vector<std::string> split_triggers(std::string_view text) {
    std::vector<std::string> triggers;
    while (!text.empty()) {
        auto start = text.find_first_not_of(" \t");
        if (start == std::string_view::npos) break;
        text.remove_prefix(start);
        auto end = text.find_first_of(" \t");
        triggers.emplace_back(text.substr(0, end));
        text.remove_prefix(end == std::string_view::npos ? text.size() : end);
    }
    return triggers;
}

Result parse_result_tar(std::string_view data, const ArchiveLimits& limits, ResultDetail detail) {
    Result r;
    bool have_exitcode = false;
    MemberFilter wanted;
    if (detail == ResultDetail::summary)
        wanted = [](std::string_view name) { return name != "testbed-packages"; };
    // result.tar is an uncompressed tar (SPEC.md section 3).
    for (auto& [name, content] : read_tar(data, limits, false, wanted)) {
        if (name == "exitcode") {
            if (!parse_number(content, r.exitcode))
                throw ParseError(
                    fmt::format("result.tar: exitcode is not a number: {}", quote_for_message(content)));
            have_exitcode = true;
        } else if (name == "duration") {
            std::uint64_t d = 0;
            if (!parse_number(content, d))
                throw ParseError(
                    fmt::format("result.tar: duration is not a number: {}", quote_for_message(content)));
            r.duration = d;
        } else if (name == "testpkg-version") {
            auto line = strip_newline(content);
            auto sp = line.find(' ');
            if (sp == std::string_view::npos || sp == 0)
                throw ParseError(fmt::format("result.tar: testpkg-version is not \"package version\": {}",
                                             quote_for_message(content)));
            r.package = std::string(line.substr(0, sp));
            r.version = std::string(line.substr(sp + 1));
        } else if (name == "testinfo.json") {
            read_custom_environment(content, r);
            r.testinfo_json = std::move(content);
        } else if (name == "requester") {
            r.requester = std::string(strip_newline(content));
        } else if (name == "request") {
            r.request = std::move(content);
        } else if (name == "summary") {
            r.summary = std::move(content);
        } else if (name == "testbed-packages") {
            r.testbed_packages = std::move(content);
        }
    }
    if (!have_exitcode) throw ParseError("result.tar has no exitcode member");
    return r;
}

}  // namespace apcloud
