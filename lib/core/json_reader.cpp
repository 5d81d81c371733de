// Strict streaming JSON reader used by the request parser (no DOM, no copies
// beyond the values kept).
#include "core/json_reader.hpp"

#include <fmt/format.h>
#include <cstdint>

#include "autopkgtest_cloud/error.hpp"

namespace apcloud::detail {

namespace {
constexpr int max_depth = 32;

void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xc0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xe0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
        out += static_cast<char>(0xf0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    }
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
}  // namespace

void JsonReader::fail(const char* what) const {
    throw ParseError(fmt::format("invalid JSON at byte {}: {}", pos_, what));
}

void JsonReader::ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r'))
        ++pos_;
}

char JsonReader::next_char() {
    if (pos_ >= s_.size()) fail("unexpected end of input");
    return s_[pos_++];
}

void JsonReader::expect(char c) {
    ws();
    if (next_char() != c) {
        --pos_;
        const char msg[] = {'e', 'x', 'p', 'e', 'c', 't', 'e', 'd', ' ', '\'', c, '\'', '\0'};
        fail(msg);
    }
}

JsonType JsonReader::peek() {
    ws();
    if (pos_ >= s_.size()) fail("unexpected end of input");
    switch (s_[pos_]) {
        case '{':
            return JsonType::object;
        case '[':
            return JsonType::array;
        case '"':
            return JsonType::string;
        case 't':
        case 'f':
            return JsonType::boolean;
        case 'n':
            return JsonType::null;
        default:
            if (s_[pos_] == '-' || is_digit(s_[pos_])) return JsonType::number;
            fail("expected a value");
    }
}

void JsonReader::begin_object() {
    expect('{');
    if (++depth_ > max_depth) fail("nested too deeply");
    seen_ &= ~(1ULL << depth_);
}

void JsonReader::begin_array() {
    expect('[');
    if (++depth_ > max_depth) fail("nested too deeply");
    seen_ &= ~(1ULL << depth_);
}

bool JsonReader::next_key(std::string& key) {
    if (!next_member('}')) return false;
    if (pos_ >= s_.size() || s_[pos_] != '"') fail("expected a string key");
    read_string(key);
    expect(':');
    return true;
}

bool JsonReader::next_item() {
    return next_member(']');
}

// Steps to the next member of the current container, or past its end.
bool JsonReader::next_member(char close) {
    ws();
    const unsigned long long bit = 1ULL << depth_;
    if (seen_ & bit) {
        const char c = next_char();
        if (c == close) {
            --depth_;
            return false;
        }
        if (c != ',') {
            --pos_;
            fail(close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
        }
        ws();
        if (pos_ < s_.size() && s_[pos_] == close) fail("trailing comma");
    } else if (pos_ < s_.size() && s_[pos_] == close) {
        ++pos_;
        --depth_;
        return false;
    }
    seen_ |= bit;
    return true;
}

void JsonReader::read_string(std::string& out) {
    expect('"');
    out.clear();
    // Fast path: copy runs of plain characters at once.
    for (;;) {
        std::size_t start = pos_;
        while (pos_ < s_.size()) {
            auto c = static_cast<unsigned char>(s_[pos_]);
            if (c == '"' || c == '\\' || c < 0x20) break;
            ++pos_;
        }
        out.append(s_.data() + start, pos_ - start);
        char c = next_char();
        if (c == '"') return;
        if (c != '\\') {
            --pos_;
            fail("control character in string");
        }
        switch (next_char()) {
            case '"':
                out += '"';
                break;
            case '\\':
                out += '\\';
                break;
            case '/':
                out += '/';
                break;
            case 'b':
                out += '\b';
                break;
            case 'f':
                out += '\f';
                break;
            case 'n':
                out += '\n';
                break;
            case 'r':
                out += '\r';
                break;
            case 't':
                out += '\t';
                break;
            case 'u': {
                auto hex4 = [&]() {
                    std::uint32_t v = 0;
                    for (int i = 0; i < 4; ++i) {
                        char h = next_char();
                        v <<= 4;
                        if (is_digit(h))
                            v |= static_cast<std::uint32_t>(h - '0');
                        else if (h >= 'a' && h <= 'f')
                            v |= static_cast<std::uint32_t>(h - 'a' + 10);
                        else if (h >= 'A' && h <= 'F')
                            v |= static_cast<std::uint32_t>(h - 'A' + 10);
                        else
                            fail("bad \\u escape");
                    }
                    return v;
                };
                std::uint32_t cp = hex4();
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (next_char() != '\\' || next_char() != 'u') fail("lone surrogate in \\u escape");
                    std::uint32_t lo = hex4();
                    if (lo < 0xdc00 || lo > 0xdfff) fail("bad surrogate pair in \\u escape");
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                    fail("lone surrogate in \\u escape");
                }
                append_utf8(out, cp);
                break;
            }
            default:
                --pos_;
                fail("bad escape in string");
        }
    }
}

void JsonReader::literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) fail("bad literal");
    pos_ += word.size();
}

bool JsonReader::read_bool() {
    ws();
    if (pos_ < s_.size() && s_[pos_] == 't') {
        literal("true");
        return true;
    }
    literal("false");
    return false;
}

std::string_view JsonReader::read_number() {
    ws();
    std::size_t start = pos_;
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '0') {
        ++pos_;
    } else {
        if (pos_ >= s_.size() || !is_digit(s_[pos_])) fail("bad number");
        while (pos_ < s_.size() && is_digit(s_[pos_])) ++pos_;
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
        ++pos_;
        if (pos_ >= s_.size() || !is_digit(s_[pos_])) fail("bad number");
        while (pos_ < s_.size() && is_digit(s_[pos_])) ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
        ++pos_;
        if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
        if (pos_ >= s_.size() || !is_digit(s_[pos_])) fail("bad number");
        while (pos_ < s_.size() && is_digit(s_[pos_])) ++pos_;
    }
    return s_.substr(start, pos_ - start);
}

void JsonReader::skip_value_impl(int depth) {
    if (depth > max_depth) fail("nested too deeply");
    std::string scratch;
    switch (peek()) {
        case JsonType::object:
            begin_object();
            while (next_key(scratch)) skip_value_impl(depth + 1);
            break;
        case JsonType::array:
            begin_array();
            while (next_item()) skip_value_impl(depth + 1);
            break;
        case JsonType::string:
            read_string(scratch);
            break;
        case JsonType::number:
            read_number();
            break;
        case JsonType::boolean:
            read_bool();
            break;
        case JsonType::null:
            literal("null");
            break;
    }
}

std::string_view JsonReader::skip_value() {
    ws();
    std::size_t start = pos_;
    skip_value_impl(depth_);
    return s_.substr(start, pos_ - start);
}

void JsonReader::finish() {
    ws();
    if (pos_ != s_.size()) fail("trailing characters after the JSON value");
}

}  // namespace apcloud::detail
