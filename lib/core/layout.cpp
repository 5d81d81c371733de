// Store layout: containers, run ids and object names (SPEC.md section 3).
#include <fmt/format.h>

#include <algorithm>

#include "autopkgtest_cloud/layout.hpp"

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/request.hpp"
#include "autopkgtest_cloud/routing.hpp"
#include "core/digest.hpp"
#include "core/time_text.hpp"

namespace apcloud {

std::string srcpkg_prefix(std::string_view package) {
    if (package.empty()) throw ValidationError("package", "", "must not be empty");
    if (package.substr(0, 3) == "lib") return std::string(package.substr(0, 4));
    return std::string(package.substr(0, 1));
}

std::string container_name(std::string_view release, const std::vector<std::string>& ppas, bool private_run) {
    check_release(release);
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
    return detail::format_run_stamp(t);
}

std::string make_run_id(std::int64_t unix_time, std::string_view body) {
    if (unix_time < 0 || unix_time > 253402300799)  // 9999-12-31 23:59:59
        throw ValidationError("unix_time", std::to_string(unix_time), "out of range for a run id");
    return format_timestamp(unix_time) + '_' + detail::hex_digest("sha1", body).substr(0, 5) + '@';
}

std::string runs_since_marker(std::string_view prefix, std::int64_t since) {
    return std::string(prefix) + format_timestamp(std::max<std::int64_t>(since - 1, 0)) + "_~";
}

std::string cancel_marker(std::string_view uuid) {
    TestRequest r;
    r.package = "x0";
    r.uuid = std::string(uuid);
    validate(r);  // the uuid rule, in one place
    return std::string(cancel_marker_prefix) + std::string(uuid);
}

std::vector<std::string> runs_of_request(const std::vector<std::string>& run_dirs, std::string_view body,
                                         std::int64_t since) {
    const std::string hash = detail::hex_digest("sha1", body).substr(0, 5);
    std::vector<std::string> out;
    for (const auto& dir : run_dirs) {
        std::string_view name(dir);
        if (!name.empty() && name.back() == '/') name.remove_suffix(1);
        std::string_view id = name.substr(name.find_last_of('/') + 1);
        if (id.size() != 22) continue;  // the old form has no hash
        RunId run;
        try {
            run = parse_run_id(id);
        } catch (const ParseError&) {
            continue;
        }
        if (run.hash == hash && run.unix_time >= since) out.push_back(std::string(name));
    }
    return out;
}

RunId parse_run_id(std::string_view id) {
    auto fail = [&]() -> RunId {
        throw ParseError(fmt::format("not a run id: {} (expected YYYYMMDD_HHMMSS_xxxxx@ or YYYYMMDD_HHMMSS@)",
                                     quote_for_message(id)));
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
    auto t = detail::unix_time(detail::CivilTime{y, static_cast<unsigned>(mo), static_cast<unsigned>(d),
                                                 static_cast<unsigned>(h), static_cast<unsigned>(mi),
                                                 static_cast<unsigned>(s)});
    if (!t) return fail();
    RunId out;
    out.unix_time = *t;
    if (id.size() == 22) {
        if (id[15] != '_') return fail();
        auto h5 = id.substr(16, 5);
        for (char c : h5)
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return fail();
        out.hash = std::string(h5);
    }
    return out;
}

std::optional<std::int64_t> run_id_time(std::string_view run_id) noexcept {
    try {
        return parse_run_id(run_id).unix_time;
    } catch (...) {
        return std::nullopt;
    }
}

std::string package_prefix(std::string_view release, std::string_view arch, std::string_view package) {
    check_release(release);
    check_arch(arch);
    check_package_name(package);
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
