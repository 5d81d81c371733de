// YAML text read into nlohmann::json: the only door to libyaml (private header).
#pragma once

#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace apcloud::detail {

/// Limits of one YAML document.
struct YamlLimits {
    /// Deepest nesting of mappings and sequences (as for JSON elsewhere).
    std::size_t max_depth = 32;
    /// Most nodes built, aliases counted with every node they copy, per byte
    /// of input (plus a constant): a few aliases cannot blow up into gigabytes.
    std::size_t max_nodes_per_byte = 4;
};

/// Called with each element of the streamed sequence, in order.
using YamlElementSink = std::function<void(nlohmann::json&& element)>;

/// Parses one YAML document (UTF-8) into JSON: mappings become objects (keys
/// as written), sequences arrays, scalars strings, except the plain nulls
/// (`null`, `~`, nothing) which become null. No other implicit typing: YAML
/// 1.1 would read a version `1.10` as the number 1.1, and every caller here
/// wants the text. Anchors and aliases are resolved; tags are ignored.
///
/// When `streamed_key` is not empty and the top-level mapping has a sequence
/// under that key, each element of that sequence is handed to `sink` as
/// soon as it is complete and not kept (the sequence stays empty in the
/// result), so a large file costs the memory of one element.
///
/// Throws ParseError "line L, column C: <problem>" (1-based) for text that is
/// not YAML, more than one document, non-scalar mapping keys, unknown aliases
/// and exceeded limits.
nlohmann::json parse_yaml(std::string_view text, const std::string& streamed_key = {},
                          const YamlElementSink& sink = {}, const YamlLimits& limits = {});

}  // namespace apcloud::detail
