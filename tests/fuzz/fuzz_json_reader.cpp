// Fuzzing the strict streaming JSON reader: any text is walked to its end or refused with a ParseError.
#include <autopkgtest_cloud/error.hpp>

#include <string>

#include "core/json_reader.hpp"
#include "fuzz.hpp"

namespace {

void walk(apcloud::detail::JsonReader& in, int depth) {
    using apcloud::detail::JsonType;
    switch (in.peek()) {
        case JsonType::object: {
            in.begin_object();
            std::string key;
            while (in.next_key(key)) walk(in, depth + 1);
            break;
        }
        case JsonType::array:
            in.begin_array();
            while (in.next_item()) walk(in, depth + 1);
            break;
        case JsonType::string: {
            std::string s;
            in.read_string(s);
            break;
        }
        case JsonType::number:
            (void)in.read_number();
            break;
        case JsonType::boolean:
            (void)in.read_bool();
            break;
        default:
            (void)in.skip_value();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto text = fuzz::text(data, size);
    try {
        apcloud::detail::JsonReader in(text);
        walk(in, 0);
        in.finish();
    } catch (const apcloud::Error&) {
    }
    try {
        apcloud::detail::JsonReader in(text);
        (void)in.skip_value();
        in.finish();
    } catch (const apcloud::Error&) {
    }
    return 0;
}
