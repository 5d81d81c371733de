// Times as text in UTC, by arithmetic alone: no time zone, locale or libc state.
#include "core/time_text.hpp"

#include <ctime>

#include <cstdio>

namespace apcloud::detail {

namespace {

// Days since 1970-01-01 for a civil date, and back (H. Hinnant's algorithms).
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

unsigned days_in_month(std::int64_t y, unsigned m) {
    static const unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

constexpr const char* month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr const char* day_names[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};  // from 1970-01-01

// Reads exactly `n` digits at `pos`.
bool digits(std::string_view s, std::size_t pos, std::size_t n, unsigned& out) {
    if (pos + n > s.size()) return false;
    out = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        out = out * 10 + static_cast<unsigned>(s[i] - '0');
    }
    return true;
}

}  // namespace

CivilTime civil_time(std::int64_t t) {
    std::int64_t days = t / 86400, secs = t % 86400;
    if (secs < 0) {
        secs += 86400;
        --days;
    }
    CivilTime c;
    civil_from_days(days, c.year, c.month, c.day);
    c.hour = static_cast<unsigned>(secs / 3600);
    c.minute = static_cast<unsigned>(secs / 60 % 60);
    c.second = static_cast<unsigned>(secs % 60);
    return c;
}

std::optional<std::int64_t> unix_time(const CivilTime& c) {
    if (c.month < 1 || c.month > 12 || c.day < 1 || c.day > days_in_month(c.year, c.month) || c.hour > 23 ||
        c.minute > 59 || c.second > 60)
        return std::nullopt;
    return days_from_civil(c.year, c.month, c.day) * 86400 + c.hour * 3600 + c.minute * 60 + c.second;
}

std::string format_iso_time(std::int64_t t, unsigned micros) {
    const CivilTime c = civil_time(t);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02u:%02u:%02u.%06u", static_cast<long long>(c.year),
                  c.month, c.day, c.hour, c.minute, c.second, micros % 1000000);
    return buf;
}

std::optional<std::int64_t> parse_iso_time(std::string_view s) {
    CivilTime c;
    unsigned year = 0;
    if (s.size() < 19 || !digits(s, 0, 4, year) || s[4] != '-' || !digits(s, 5, 2, c.month) || s[7] != '-' ||
        !digits(s, 8, 2, c.day) || s[10] != 'T' || !digits(s, 11, 2, c.hour) || s[13] != ':' ||
        !digits(s, 14, 2, c.minute) || s[16] != ':' || !digits(s, 17, 2, c.second))
        return std::nullopt;
    c.year = year;
    std::size_t pos = 19;
    if (pos < s.size() && s[pos] == '.') {
        std::size_t start = ++pos;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
        if (pos == start) return std::nullopt;
    }
    if (pos < s.size() && s[pos] == 'Z') ++pos;
    if (pos != s.size()) return std::nullopt;
    return unix_time(c);
}

std::string format_http_date(std::int64_t t) {
    const CivilTime c = civil_time(t);
    std::int64_t days = t / 86400 - (t % 86400 < 0 ? 1 : 0);
    const auto weekday = static_cast<std::size_t>(((days % 7) + 7) % 7);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s, %02u %s %04lld %02u:%02u:%02u GMT", day_names[weekday], c.day,
                  month_names[c.month - 1], static_cast<long long>(c.year), c.hour, c.minute, c.second);
    return buf;
}

std::optional<std::int64_t> parse_http_date(std::string_view s) {
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    if (s.size() != 29 || s.substr(3, 2) != ", " || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s[19] != ':' || s[22] != ':' || s.substr(25) != " GMT")
        return std::nullopt;
    CivilTime c;
    unsigned year = 0;
    if (!digits(s, 5, 2, c.day) || !digits(s, 12, 4, year) || !digits(s, 17, 2, c.hour) ||
        !digits(s, 20, 2, c.minute) || !digits(s, 23, 2, c.second))
        return std::nullopt;
    c.year = year;
    c.month = 0;
    for (unsigned i = 0; i < 12; ++i)
        if (s.substr(8, 3) == month_names[i]) c.month = i + 1;
    return unix_time(c);
}

std::string format_run_stamp(std::int64_t t) {
    const CivilTime c = civil_time(t);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04lld%02u%02u_%02u%02u%02u", static_cast<long long>(c.year), c.month,
                  c.day, c.hour, c.minute, c.second);
    return buf;
}

std::string format_submit_stamp(std::int64_t t) {
    const CivilTime c = civil_time(t);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u %02u:%02u:%02u", static_cast<long long>(c.year), c.month,
                  c.day, c.hour, c.minute, c.second);
    return buf;
}

std::int64_t unix_now() {
    return static_cast<std::int64_t>(std::time(nullptr));
}

}  // namespace apcloud::detail
