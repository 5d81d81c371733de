// JSON text helpers shared by the core encoders (private header).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace apcloud::detail {

/// Appends `utf8` as a JSON string literal exactly as Python's json.dumps
/// writes it with ensure_ascii=True (lowercase \uXXXX, surrogate pairs).
/// With `ensure_ascii` false, characters past ASCII are copied as they are
/// (as nlohmann's dump() and json.dumps(ensure_ascii=False) write them).
/// The input must be valid UTF-8.
void append_json_string(std::string& out, std::string_view utf8, bool ensure_ascii = true);

/// Builds a JSON object with Python's json.dumps separators (", " and
/// ": "); callers add members in the key order they want (sorted, for
/// sort_keys=True compatibility).
class JsonObjectWriter {
public:
    /// A member whose value is a string.
    void str(std::string_view key, std::string_view value);
    /// A member whose value is already JSON text (numbers, literals, objects).
    void raw(std::string_view key, std::string_view json);
    /// A member whose value is a list of strings.
    void list(std::string_view key, const std::vector<std::string>& values);
    /// True when no member was added.
    bool empty() const { return members_.empty(); }
    /// The object, braces included.
    std::string object() const { return "{" + members_ + "}"; }

private:
    void key(std::string_view k);
    std::string members_;
};

}  // namespace apcloud::detail
