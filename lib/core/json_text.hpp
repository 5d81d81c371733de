// JSON text helpers shared by the core encoders (private header).
#pragma once

#include <string>
#include <string_view>

namespace apcloud::detail {

/// Appends `utf8` as a JSON string literal exactly as Python's json.dumps
/// writes it with ensure_ascii=True (lowercase \uXXXX, surrogate pairs).
/// The input must be valid UTF-8.
void append_json_string(std::string& out, std::string_view utf8);

}  // namespace apcloud::detail
