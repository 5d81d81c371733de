// britney's excuses.yaml read, and the tests retry-autopkgtest-regressions
// asks for again chosen from it (SPEC.md section 8) and written as
// request.cgi URLs (SPEC.md section 7).
#include "autopkgtest_cloud/excuses.hpp"

#include <archive.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <regex>
#include <set>
#include <tuple>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/url.hpp"
#include "core/yaml_json.hpp"

namespace apcloud {

using nlohmann::json;

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The text of gzip- or xz-compressed data (libarchive's raw format), at most max_excuses_bytes.
std::string decompress(std::string_view data) {
    std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
    if (!a) throw Error("cannot allocate a decompressor");
    archive_read_support_filter_gzip(a.get());
    archive_read_support_filter_xz(a.get());
    archive_read_support_format_raw(a.get());
    archive_entry* entry = nullptr;
    auto failed = [&] {
        return ParseError(
            fmt::format("excuses.yaml: cannot decompress: {}",
                        archive_error_string(a.get()) ? archive_error_string(a.get()) : "corrupt"));
    };
    if (archive_read_open_memory(a.get(), data.data(), data.size()) != ARCHIVE_OK ||
        archive_read_next_header(a.get(), &entry) != ARCHIVE_OK)
        throw failed();
    std::string out;
    std::array<char, 65536> buf;
    for (;;) {
        const la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
        if (n < 0) throw failed();
        if (n == 0) return out;
        if (out.size() + static_cast<std::size_t>(n) > max_excuses_bytes)
            throw ParseError(
                fmt::format("excuses.yaml: more than {} bytes once decompressed", max_excuses_bytes));
        out.append(buf.data(), static_cast<std::size_t>(n));
    }
}

bool is_compressed(std::string_view data) {
    static constexpr char xz_magic[] = {'\xfd', '7', 'z', 'X', 'Z', '\0'};
    return starts_with(data, "\x1f\x8b") || starts_with(data, std::string_view(xz_magic, sizeof xz_magic));
}

// Reads one element of `sources` into an Excuse; errors name it.
class ExcuseReader {
public:
    ExcuseReader(const json& e, std::size_t index) : e_(e), index_(index) {}

    Excuse read() {
        if (!e_.is_object()) fail("", "is not a mapping");
        Excuse x;
        x.source = text("source", true);
        x.item_name = text("item-name", false);
        if (x.item_name.empty()) x.item_name = x.source;
        where_ = fmt::format("sources[{}] ({})", index_, x.item_name);
        x.new_version = text("new-version", false);
        x.old_version = text("old-version", false);
        const json* info = member(e_, "policy_info");
        if (info && !info->is_object()) fail("policy_info", "is not a mapping");
        if (const json* age = info ? member(*info, "age") : nullptr) x.age = read_age(*age);
        if (const json* tests = info ? member(*info, "autopkgtest") : nullptr) x.tests = read_tests(*tests);
        return x;
    }

private:
    [[noreturn]] void fail(const std::string& field, std::string_view problem) const {
        const std::string where = where_.empty() ? fmt::format("sources[{}]", index_) : where_;
        throw ParseError(
            fmt::format("excuses.yaml: {}{}{} {}", where, field.empty() ? "" : ": ", field, problem));
    }

    // The member, or nullptr when absent or null.
    static const json* member(const json& object, const char* key) {
        auto it = object.find(key);
        return it == object.end() || it->is_null() ? nullptr : &*it;
    }

    std::string text(const char* key, bool required) const {
        const json* v = member(e_, key);
        if (!v) {
            if (required) fail(key, "is missing");
            return {};
        }
        if (!v->is_string()) fail(key, "is not text");
        return v->get<std::string>();
    }

    std::optional<double> read_age(const json& age) const {
        if (!age.is_object()) fail("policy_info.age", "is not a mapping");
        const json* current = member(age, "current-age");
        if (!current) return std::nullopt;
        const std::string t = current->is_string() ? current->get<std::string>() : current->dump();
        char* end = nullptr;
        const double days = std::strtod(t.c_str(), &end);
        if (t.empty() || *end != '\0' || !(days >= 0))
            fail("policy_info.age.current-age",
                 fmt::format("is not a number of days: {}", quote_for_message(t)));
        return days;
    }

    static std::optional<std::string> optional_text(const json& v) {
        if (v.is_string()) return v.get<std::string>();
        return std::nullopt;
    }

    std::vector<ExcuseTest> read_tests(const json& tests) const {
        if (!tests.is_object()) fail("policy_info.autopkgtest", "is not a mapping");
        std::vector<ExcuseTest> out;
        for (const auto& [name, arches] : tests.items()) {
            if (name == "verdict") continue;
            const std::string field = "policy_info.autopkgtest." + name;
            if (!arches.is_object()) fail(field, "is not a mapping of architectures");
            // `src/version`, or `src` alone while it runs everywhere (older britneys: `src version`).
            const auto split = name.find_first_of("/ ");
            for (const auto& [arch, result] : arches.items()) {
                if (!result.is_array() || result.empty() || !result[0].is_string())
                    fail(field + "." + arch, "is not a list [state, log, history, artifacts, retry]");
                for (const auto& v : result)
                    if (!v.is_string() && !v.is_null())
                        fail(field + "." + arch, "holds a value that is not text");
                ExcuseTest t;
                t.package = name.substr(0, split);
                if (split != std::string::npos) t.version = name.substr(split + 1);
                t.arch = arch;
                t.state = result[0].get<std::string>();
                if (result.size() > 1) t.log_url = optional_text(result[1]);
                if (result.size() > 2) t.history_url = optional_text(result[2]);
                if (result.size() > 3) t.artifacts_url = optional_text(result[3]);
                if (result.size() > 4) t.retry_url = optional_text(result[4]);
                out.push_back(std::move(t));
            }
        }
        std::stable_sort(out.begin(), out.end(), [](const ExcuseTest& a, const ExcuseTest& b) {
            return std::tie(a.package, a.arch) < std::tie(b.package, b.arch);
        });
        return out;
    }

    const json& e_;
    std::size_t index_;
    std::string where_;
};

// The values of `key` in a URL's query, in order (parse_url keeps only the last).
std::vector<std::string> query_values(std::string_view url, std::string_view key) {
    std::vector<std::string> out;
    const auto q = url.find('?');
    if (q == std::string_view::npos) return out;
    std::string_view rest = url.substr(q + 1);
    rest = rest.substr(0, rest.find('#'));
    while (!rest.empty()) {
        const auto amp = rest.find('&');
        const std::string_view item = rest.substr(0, amp);
        const auto eq = item.find('=');
        if (eq != std::string_view::npos && item.substr(0, eq) == key) {
            try {
                out.push_back(percent_decode(item.substr(eq + 1)));
            } catch (const ConfigError&) {
            }
        }
        rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    }
    return out;
}

// The series in a history link: `.../packages/[PREFIX/]PKG/SERIES/ARCH`.
std::optional<std::string> history_series(std::string_view url) {
    const auto at = url.find("/packages/");
    if (at == std::string_view::npos) return std::nullopt;
    std::string_view path = url.substr(at + 10);
    path = path.substr(0, path.find_first_of("?#"));
    std::vector<std::string_view> parts;
    while (!path.empty()) {
        const auto slash = path.find('/');
        if (slash != 0) parts.push_back(path.substr(0, slash));
        path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
    }
    if (parts.size() < 3) return std::nullopt;
    return std::string(parts[parts.size() - 2]);
}

std::string joined_states() {
    std::string out;
    for (const auto& s : autopkgtest_states()) out += (out.empty() ? "" : ", ") + s;
    return out;
}

}  // namespace

bool ExcuseTest::has_log() const {
    return log_url && ends_with(*log_url, "/log.gz");
}

bool Excuse::is_removal() const {
    return starts_with(item_name, "-") || new_version == "-";
}

Excuses parse_excuses(std::string_view data) {
    std::string decompressed;
    if (is_compressed(data)) {
        decompressed = decompress(data);
        data = decompressed;
    }
    if (data.size() > max_excuses_bytes)
        throw ParseError(fmt::format("excuses.yaml: more than {} bytes", max_excuses_bytes));
    Excuses out;
    std::size_t index = 0;
    json top;
    try {
        top = detail::parse_yaml(data, "sources", [&](json&& element) {
            out.excuses.push_back(ExcuseReader(element, index++).read());
        });
    } catch (const ParseError& e) {
        if (starts_with(e.what(), "excuses.yaml")) throw;
        throw ParseError(fmt::format("excuses.yaml: {}", e.what()));
    }
    if (!top.is_object())
        throw ParseError(
            "excuses.yaml: is not a mapping with a 'sources' list (is it britney's excuses.yaml?)");
    auto sources = top.find("sources");
    if (sources == top.end() || !(sources->is_array() || sources->is_null()))
        throw ParseError("excuses.yaml: has no 'sources' list (is it britney's excuses.yaml?)");
    if (auto date = top.find("generated-date"); date != top.end() && date->is_string())
        out.generated_date = date->get<std::string>();
    return out;
}

std::optional<std::string> excuses_series(const Excuses& excuses) {
    std::set<std::string> found;
    for (const auto& x : excuses.excuses)
        for (const auto& t : x.tests) {
            if (t.retry_url)
                for (auto& r : query_values(*t.retry_url, "release")) found.insert(std::move(r));
            if (t.history_url)
                if (auto s = history_series(*t.history_url)) found.insert(std::move(*s));
            if (found.size() > 1) return std::nullopt;
        }
    if (found.size() != 1) return std::nullopt;
    return *found.begin();
}

const std::vector<std::string>& autopkgtest_states() {
    // britney2-ubuntu's EXCUSES_LABELS: results, verdicts and pending states.
    static const std::vector<std::string> states = {
        "PASS",       "OLD_PASS",    "NEUTRAL", "OLD_NEUTRAL",        "REGRESSION",
        "ALWAYSFAIL", "IGNORE-FAIL", "RUNNING", "RUNNING-ALWAYSFAIL", "RUNNING-REFERENCE"};
    return states;
}

void validate(const RetryOptions& o) {
    if (o.release.empty()) throw ValidationError("--series", "", "is required");
    if (!is_valid_package_name(o.release))
        throw ValidationError("--series", o.release, "must be a series name such as noble");
    if (o.states.empty()) throw ValidationError("--state", "", "give at least one state");
    const auto& known = autopkgtest_states();
    for (const auto& s : o.states)
        if (std::find(known.begin(), known.end(), s) == known.end())
            throw ValidationError("--state", s,
                                  "is not a state britney reports (known: " + joined_states() + ")");
    if (o.min_age && !(*o.min_age >= 0))
        throw ValidationError("--min-age", fmt::format("{}", *o.min_age), "must be 0 or more days");
    if (o.max_age && !(*o.max_age >= 0))
        throw ValidationError("--max-age", fmt::format("{}", *o.max_age), "must be 0 or more days");
    if (o.min_age && o.max_age && *o.min_age > *o.max_age)
        throw ValidationError("--min-age", fmt::format("{}", *o.min_age),
                              fmt::format("is more than --max-age {}: nothing could match", *o.max_age));
    for (const auto& t : o.add_triggers) parse_trigger(t);
    for (const auto& p : o.ppas) parse_ppa(p);
    if (o.blocked_by) check_package_name(*o.blocked_by);
}

TestRequest RetryRequest::test_request() const {
    TestRequest t;
    t.package = package;
    t.triggers = triggers;
    t.ppas = ppas;
    t.all_proposed = all_proposed;
    return t;
}

std::vector<RetryRequest> select_retries(const Excuses& excuses, const RetryOptions& options) {
    validate(options);
    const std::set<std::string> states(options.states.begin(), options.states.end());
    std::vector<RetryRequest> out;
    std::set<std::string> seen;
    for (const auto& x : excuses.excuses) {
        if (x.is_removal()) continue;
        if (options.blocks && *options.blocks != x.source && *options.blocks != x.item_name) continue;
        if (x.age && options.min_age && *x.age < *options.min_age) continue;
        if (x.age && options.max_age && *x.age > *options.max_age) continue;
        for (const auto& t : x.tests) {
            if (!states.count(t.state)) continue;
            if (options.blocked_by && *options.blocked_by != t.package) continue;
            if (options.only_unknown && t.has_log()) continue;
            RetryRequest r;
            r.release = options.release;
            r.arch = t.arch;
            r.package = t.package;
            r.triggers.push_back(x.source + "/" + x.new_version);
            for (const auto& a : options.add_triggers)
                if (std::find(r.triggers.begin(), r.triggers.end(), a) == r.triggers.end())
                    r.triggers.push_back(a);
            r.ppas = options.ppas;
            if (r.ppas.empty() && t.retry_url) r.ppas = query_values(*t.retry_url, "ppa");
            r.all_proposed = options.all_proposed;
            r.log_url = t.log_url;
            r.item = x.item_name;
            try {
                validate(r.test_request());
            } catch (const ValidationError& e) {
                throw ParseError(fmt::format("excuses.yaml: the excuse of {}, result {} on {}: {}",
                                             quote_for_message(x.item_name), quote_for_message(t.package),
                                             quote_for_message(t.arch), e.what()));
            }
            if (seen.insert(request_cgi_url("", r)).second) out.push_back(std::move(r));
        }
    }
    return out;
}

std::string request_cgi_url(std::string_view web_url, const RetryRequest& r) {
    while (!web_url.empty() && web_url.back() == '/') web_url.remove_suffix(1);
    std::string url = std::string(web_url) + "/request.cgi?release=" + percent_encode(r.release) +
                      "&arch=" + percent_encode(r.arch) + "&package=" + percent_encode(r.package);
    for (const auto& t : r.triggers) url += "&trigger=" + percent_encode(t);
    for (const auto& p : r.ppas) url += "&ppa=" + percent_encode(p);
    if (r.all_proposed) url += "&all-proposed=1";
    return url;
}

std::string resolve_web_url(const std::string& given, const Environment& environment) {
    std::string url = given;
    if (url.empty())
        if (auto it = environment.find("APCLOUD_WEB_URL"); it != environment.end()) url = it->second;
    if (url.empty()) url = default_web_url;
    if (!starts_with(url, "http://") && !starts_with(url, "https://"))
        throw ValidationError("--url", url, "must be the web service's http:// or https:// URL");
    while (url.size() > 8 && url.back() == '/') url.pop_back();
    return url;
}

std::string resolve_excuses_source(const std::string& given, const Environment& environment) {
    if (!given.empty()) return given;
    auto it = environment.find("APCLOUD_EXCUSES_URL");
    return it == environment.end() ? std::string() : it->second;
}

std::string resolve_series(const std::string& given, const Excuses& excuses, const Environment& environment) {
    if (!given.empty()) return given;
    if (auto s = excuses_series(excuses)) return *s;
    if (auto it = environment.find("APCLOUD_SERIES"); it != environment.end() && !it->second.empty())
        return it->second;
    throw ValidationError("--series", "",
                          "the excuses name no single series: give --series SERIES or set APCLOUD_SERIES");
}

// ---- --log-regex ----

struct LogRegex::Impl {
    std::regex re;
};

LogRegex::LogRegex(const std::string& pattern) : pattern_(pattern), impl_(std::make_unique<Impl>()) {
    try {
        impl_->re = std::regex(pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
        throw ValidationError("--log-regex", pattern,
                              fmt::format("is not a regular expression: {}", e.what()));
    }
}

LogRegex::~LogRegex() = default;
LogRegex::LogRegex(LogRegex&&) noexcept = default;
LogRegex& LogRegex::operator=(LogRegex&&) noexcept = default;

bool LogRegex::matches(std::string_view log) const {
    // libstdc++'s regex recurses once per character of the searched text: pieces of a line keep it shallow.
    constexpr std::size_t piece = 8192;
    while (!log.empty()) {
        const auto nl = log.find('\n');
        std::string_view line = log.substr(0, nl);
        log = nl == std::string_view::npos ? std::string_view() : log.substr(nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        do {
            const std::string_view part = line.substr(0, piece);
            if (std::regex_search(part.begin(), part.end(), impl_->re)) return true;
            line = line.substr(part.size());
        } while (!line.empty());
    }
    return false;
}

}  // namespace apcloud
