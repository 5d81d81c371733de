// The exception hierarchy's shared helpers.
#include "autopkgtest_cloud/error.hpp"

#include <cstdio>
#include <cstring>

#include "autopkgtest_cloud/request.hpp"

namespace apcloud {

std::string quote_for_message(std::string_view value, std::size_t max_len) {
    std::string out = "'";
    const bool utf8 = is_valid_utf8(value);
    std::size_t n = 0;
    for (char ch : value) {
        if (n++ >= max_len) {
            out += "'... (" + std::to_string(value.size()) + " bytes)";
            return out;
        }
        auto c = static_cast<unsigned char>(ch);
        if (c == '\'' || c == '\\') {
            out += '\\';
            out += ch;
        } else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += ch;
        }
    }
    out += '\'';
    return out;
}

ValidationError::ValidationError(std::string field, std::string value, std::string_view reason)
    : Error("invalid " + field + " " + quote_for_message(value) + ": " + std::string(reason)),
      field_(std::move(field)),
      value_(std::move(value)) {}

std::string errno_message(int errno_value) {
    char buf[256];
    // GNU strerror_r returns the message (maybe not in buf).
    return ::strerror_r(errno_value, buf, sizeof buf);
}

SystemError::SystemError(int errno_value, std::string_view what, std::string path)
    : Error(path.empty() ? "cannot " + std::string(what) + ": " + errno_message(errno_value)
                         : "cannot " + std::string(what) + " " + quote_for_message(path) + ": " +
                               errno_message(errno_value)),
      errno_(errno_value),
      path_(std::move(path)) {}

}  // namespace apcloud
