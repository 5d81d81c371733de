// Python-compatible JSON string escaping, so our messages are byte-identical
// to those britney and the reference tools write with json.dumps.
#include "core/json_text.hpp"

#include <cstdint>

namespace apcloud::detail {

namespace {
const char hex_digits[] = "0123456789abcdef";

void append_u16(std::string& out, std::uint32_t unit) {
    out += "\\u";
    out += hex_digits[(unit >> 12) & 0xf];
    out += hex_digits[(unit >> 8) & 0xf];
    out += hex_digits[(unit >> 4) & 0xf];
    out += hex_digits[unit & 0xf];
}
}  // namespace

void append_json_string(std::string& out, std::string_view s, bool ensure_ascii) {
    out += '"';
    for (std::size_t i = 0; i < s.size(); ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80 || !ensure_ascii) {
            switch (c) {
                case '"':
                    out += "\\\"";
                    break;
                case '\\':
                    out += "\\\\";
                    break;
                case '\n':
                    out += "\\n";
                    break;
                case '\r':
                    out += "\\r";
                    break;
                case '\t':
                    out += "\\t";
                    break;
                case '\b':
                    out += "\\b";
                    break;
                case '\f':
                    out += "\\f";
                    break;
                default:
                    if (c < 0x20)
                        append_u16(out, c);
                    else
                        out += static_cast<char>(c);
            }
            continue;
        }
        // Decode one UTF-8 sequence (input already validated).
        std::uint32_t cp;
        int extra;
        if (c >= 0xf0) {
            cp = c & 0x07;
            extra = 3;
        } else if (c >= 0xe0) {
            cp = c & 0x0f;
            extra = 2;
        } else {
            cp = c & 0x1f;
            extra = 1;
        }
        for (int k = 0; k < extra && i + 1 < s.size(); ++k)
            cp = (cp << 6) | (static_cast<unsigned char>(s[++i]) & 0x3f);
        if (cp >= 0x10000) {
            cp -= 0x10000;
            append_u16(out, 0xd800 + (cp >> 10));
            append_u16(out, 0xdc00 + (cp & 0x3ff));
        } else {
            append_u16(out, cp);
        }
    }
    out += '"';
}

void JsonObjectWriter::key(std::string_view k) {
    if (!members_.empty()) members_ += ", ";
    append_json_string(members_, k);
    members_ += ": ";
}

void JsonObjectWriter::str(std::string_view k, std::string_view value) {
    key(k);
    append_json_string(members_, value);
}

void JsonObjectWriter::raw(std::string_view k, std::string_view json) {
    key(k);
    members_ += json;
}

void JsonObjectWriter::list(std::string_view k, const std::vector<std::string>& values) {
    key(k);
    members_ += '[';
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i) members_ += ", ";
        append_json_string(members_, values[i]);
    }
    members_ += ']';
}

}  // namespace apcloud::detail
