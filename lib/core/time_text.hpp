// Times as text, in UTC, without time zones or locales: the run id stamp, Swift's
// listing times, HTTP dates and the request's submit-time. Private to the library.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace apcloud::detail {

/// A civil time in UTC.
struct CivilTime {
    std::int64_t year = 1970;
    unsigned month = 1, day = 1, hour = 0, minute = 0, second = 0;
};

/// The civil time of `unix_time` (proleptic Gregorian, any year).
CivilTime civil_time(std::int64_t unix_time);

/// The unix time of a civil time; nullopt when a field is out of range.
std::optional<std::int64_t> unix_time(const CivilTime& t);

/// `YYYY-MM-DDTHH:MM:SS.ffffff`, the form of Swift's `last_modified`.
std::string format_iso_time(std::int64_t unix_time, unsigned microseconds = 0);

/// Parses `YYYY-MM-DDTHH:MM:SS` with an optional fraction and an optional `Z`
/// (Swift's and Keystone's form); the fraction is dropped. nullopt otherwise.
std::optional<std::int64_t> parse_iso_time(std::string_view text);

/// An IMF-fixdate, HTTP's date form: `Sun, 06 Nov 1994 08:49:37 GMT`.
std::string format_http_date(std::int64_t unix_time);

/// Parses an IMF-fixdate (month names in English, whatever the locale).
std::optional<std::int64_t> parse_http_date(std::string_view text);

/// `%Y%m%d_%H%M%S`, the stamp at the start of a run id.
std::string format_run_stamp(std::int64_t unix_time);

/// `%Y-%m-%d %H:%M:%S`, a request's submit-time.
std::string format_submit_stamp(std::int64_t unix_time);

/// The current unix time in seconds.
std::int64_t unix_now();

}  // namespace apcloud::detail
