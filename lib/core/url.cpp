// Backend URL parsing with percent-decoding; secrets never reach messages.
#include "autopkgtest_cloud/url.hpp"

#include <fmt/format.h>
#include <cctype>

#include "autopkgtest_cloud/error.hpp"

namespace apcloud {

namespace {
int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// The URL with any password replaced by "***", for error messages.
std::string hide_password(std::string_view url) {
    auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) return std::string(url);
    auto auth_start = scheme_end + 3;
    // The last '@' before the path, as parse_url splits it: a password may hold a raw '@'.
    const auto slash = url.find('/', auth_start);
    const auto authority = url.substr(auth_start, slash == std::string_view::npos ? slash : slash - auth_start);
    const auto last_at = authority.rfind('@');
    if (last_at == std::string_view::npos) return std::string(url);
    const auto at = auth_start + last_at;
    auto colon = url.find(':', auth_start);
    if (colon == std::string_view::npos || colon > at) return std::string(url);
    return std::string(url.substr(0, colon + 1)) + "***" + std::string(url.substr(at));
}
}  // namespace

std::string percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        int hi = i + 2 < s.size() ? hex_value(s[i + 1]) : -1;
        int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
        if (hi < 0 || lo < 0)
            throw ConfigError(fmt::format("bad percent escape in {}", quote_for_message(s)));
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return out;
}

std::string percent_encode(std::string_view s, bool keep_slash) {
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size() + s.size() / 4);
    for (unsigned char c : s) {
        // ASCII only, whatever the locale (std::isalnum may accept bytes >= 0x80).
        const bool alnum = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
        if (alnum || c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 0xf];
        }
    }
    return out;
}

Url parse_url(std::string_view text) {
    auto fail = [&](const char* why) -> Url {
        throw ConfigError(fmt::format("invalid URL {}: {}", quote_for_message(hide_password(text)), why));
    };
    // RFC 3986 has no blanks or control characters in a URL: percent-encode them.
    for (char c : text)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
            return fail("it contains a blank or a control character (percent-encode it)");
    Url u;
    auto scheme_end = text.find("://");
    if (scheme_end == std::string_view::npos || scheme_end == 0) return fail("expected scheme://");
    for (char c : text.substr(0, scheme_end)) {
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.'))
            return fail("bad scheme");
        u.scheme += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    std::string_view rest = text.substr(scheme_end + 3);
    auto query_start = rest.find('?');
    if (query_start != std::string_view::npos) {
        std::string_view q = rest.substr(query_start + 1);
        rest = rest.substr(0, query_start);
        while (!q.empty()) {
            auto amp = q.find('&');
            auto item = q.substr(0, amp);
            auto eq = item.find('=');
            if (!item.empty())
                u.query[percent_decode(item.substr(0, eq))] =
                    eq == std::string_view::npos ? "" : percent_decode(item.substr(eq + 1));
            q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
        }
    }
    auto path_start = rest.find('/');
    std::string_view authority = rest.substr(0, path_start);
    if (path_start != std::string_view::npos) {
        u.raw_path = std::string(rest.substr(path_start));
        u.path = percent_decode(u.raw_path);
    }
    auto at = authority.rfind('@');
    if (at != std::string_view::npos) {
        auto userinfo = authority.substr(0, at);
        authority = authority.substr(at + 1);
        auto colon = userinfo.find(':');
        u.user = percent_decode(userinfo.substr(0, colon));
        if (colon != std::string_view::npos) {
            u.password = percent_decode(userinfo.substr(colon + 1));
            u.has_password = true;
        }
    }
    std::string_view port;
    if (!authority.empty() && authority[0] == '[') {
        auto close = authority.find(']');
        if (close == std::string_view::npos) return fail("unclosed [ in host");
        u.host = std::string(authority.substr(1, close - 1));
        auto after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after[0] != ':') return fail("junk after ]");
            port = after.substr(1);
        }
    } else {
        auto colon = authority.rfind(':');
        u.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    }
    if (!port.empty()) {
        unsigned long v = 0;
        for (char c : port) {
            if (c < '0' || c > '9') return fail("port is not a number");
            v = v * 10 + static_cast<unsigned long>(c - '0');
            if (v > 65535) return fail("port out of range");
        }
        if (v == 0) return fail("port out of range");
        u.port = static_cast<std::uint16_t>(v);
    }
    return u;
}

std::string Url::redacted() const {
    std::string out = scheme + "://";
    if (!user.empty()) out += percent_encode(user) + (has_password ? ":***@" : "@");
    out += host.find(':') != std::string::npos ? "[" + host + "]" : host;
    if (port) out += ":" + std::to_string(*port);
    out += raw_path;
    return out;
}

}  // namespace apcloud
