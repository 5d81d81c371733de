// A strict streaming JSON reader (RFC 8259) for small messages: reads values
// straight into C++ types without building a document (private header).
#pragma once

#include <string>
#include <string_view>

namespace apcloud::detail {

/// The kind of the next JSON value.
enum class JsonType { object, array, string, number, boolean, null };

/// Walks one JSON text. Every method throws ParseError (naming the byte
/// offset) on malformed input; nesting is limited to `max_depth`.
class JsonReader {
public:
    explicit JsonReader(std::string_view text) : s_(text) {}

    /// Type of the value at the cursor (after whitespace).
    JsonType peek();
    /// Enters an object; then call next_key until it returns false.
    void begin_object();
    /// Reads the next key of the current object into `key`; false at its end.
    bool next_key(std::string& key);
    /// Enters an array; then call next_item until it returns false.
    void begin_array();
    /// True when the current array has another item (the cursor is on it).
    bool next_item();
    /// Reads a string value (escapes decoded, result is valid UTF-8).
    void read_string(std::string& out);
    /// Reads true/false.
    bool read_bool();
    /// Reads a number's text (validated against the JSON grammar).
    std::string_view read_number();
    /// Skips any value and returns its raw text, for error messages.
    std::string_view skip_value();
    /// Requires that only whitespace is left.
    void finish();

private:
    [[noreturn]] void fail(const char* what) const;
    void ws();
    char next_char();
    void expect(char c);
    void literal(std::string_view word);
    bool next_member(char close);
    void skip_value_impl(int depth);

    std::string_view s_;
    std::size_t pos_ = 0;
    // Per container level: true once the first member/item has been read.
    unsigned long long seen_ = 0;
    int depth_ = 0;
};

}  // namespace apcloud::detail
