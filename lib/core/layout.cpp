// Store layout: containers, run ids and object names (SPEC.md section 3).
#include "autopkgtest_cloud/layout.hpp"

#include <cstdio>
#include <ctime>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/request.hpp"
#include "autopkgtest_cloud/routing.hpp"
#include "core/digest.hpp"

namespace apcloud {

namespace {

// Days since 1970-01-01 for a civil date (proleptic Gregorian), and back;
// pure arithmetic so no time zone or locale is involved.
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = static_cast<std::int64_t>(yoe) + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
}

void check_component(const char* field, std::string_view v, bool ok, const char* rule) {
    if (!ok) throw ValidationError(field, std::string(v), rule);
}

}  // namespace

std::string srcpkg_prefix(std::string_view package) {
    if (package.empty()) throw ValidationError("package", "", "must not be empty");
    if (package.substr(0, 3) == "lib") return std::string(package.substr(0, 4));
    return std::string(package.substr(0, 1));
}

std::string container_name(std::string_view release, const std::vector<std::string>& ppas, bool private_run) {
    check_component("release", release, is_valid_release(release), "must match ^[a-z][a-z0-9.]*$");
    std::string out = "autopkgtest-";
    out += release;
    bool priv = private_run;
    for (const auto& p : ppas) priv = parse_ppa(p).is_private() || priv;
    if (!ppas.empty()) {
        auto last = parse_ppa(ppas.back());
        out += '-' + last.lpuser + '-' + last.name;
    }
    return priv ? "private-" + out : out;
}

std::string format_timestamp(std::int64_t t) {
    std::int64_t days = t / 86400;
    std::int64_t secs = t % 86400;
    if (secs < 0) {
        secs += 86400;
        --days;
    }
    std::int64_t y;
    unsigned m, d;
    civil_from_days(days, y, m, d);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04lld%02u%02u_%02lld%02lld%02lld", static_cast<long long>(y), m, d,
                  static_cast<long long>(secs / 3600), static_cast<long long>(secs / 60 % 60),
                  static_cast<long long>(secs % 60));
    return buf;
}

std::string make_run_id(std::int64_t unix_time, std::string_view body) {
    if (unix_time < 0 || unix_time > 253402300799)  // 9999-12-31 23:59:59
        throw ValidationError("unix_time", std::to_string(unix_time), "out of range for a run id");
    return format_timestamp(unix_time) + '_' + detail::hex_digest("sha1", body).substr(0, 5) + '@';
}

RunId parse_run_id(std::string_view id) {
    auto fail = [&]() -> RunId {
        throw ParseError("not a run id: " + quote_for_message(id) +
                         " (expected YYYYMMDD_HHMMSS_xxxxx@ or YYYYMMDD_HHMMSS@)");
    };
    if (id.size() != 16 && id.size() != 22) return fail();
    if (id.back() != '@' || id[8] != '_') return fail();
    auto digits = [&](std::size_t pos, std::size_t len, int& out) {
        out = 0;
        for (std::size_t i = pos; i < pos + len; ++i) {
            if (id[i] < '0' || id[i] > '9') return false;
            out = out * 10 + (id[i] - '0');
        }
        return true;
    };
    int y, mo, d, h, mi, s;
    if (!digits(0, 4, y) || !digits(4, 2, mo) || !digits(6, 2, d) || !digits(9, 2, h) || !digits(11, 2, mi) ||
        !digits(13, 2, s))
        return fail();
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return fail();
    RunId out;
    out.unix_time = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 +
                    h * 3600 + mi * 60 + s;
    if (id.size() == 22) {
        if (id[15] != '_') return fail();
        auto h5 = id.substr(16, 5);
        for (char c : h5)
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return fail();
        out.hash = std::string(h5);
    }
    return out;
}

std::string package_prefix(std::string_view release, std::string_view arch, std::string_view package) {
    check_component("release", release, is_valid_release(release), "must match ^[a-z][a-z0-9.]*$");
    check_component("arch", arch, is_valid_arch(arch), "must match ^[a-z0-9][a-z0-9_]*$");
    check_component("package", package, is_valid_package_name(package), "must match ^[a-z0-9][a-z0-9.+-]+$");
    std::string out(release);
    out += '/';
    out += arch;
    out += '/';
    out += srcpkg_prefix(package);
    out += '/';
    out += package;
    out += '/';
    return out;
}

std::string result_dir(std::string_view release, std::string_view arch, std::string_view package,
                       std::string_view run_id) {
    parse_run_id(run_id);
    return package_prefix(release, arch, package) + std::string(run_id);
}

}  // namespace apcloud
