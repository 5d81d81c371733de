// Page templates: mustache files (logic-less, every value HTML-escaped) rendered
// with data given as JSON (private header; the template engine stays in the .cpp).
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace apcloud::web {

/// Every `*.mustache` file of a directory, by name without the extension.
/// Partials (`{{> name}}`) are the other templates of the directory, inlined
/// when loading.
class Templates {
public:
    /// Loads `dir`; throws ConfigError naming a template that does not parse
    /// or names a missing partial.
    explicit Templates(const std::string& dir);
    /// Templates given as (name, text), for tests.
    explicit Templates(std::map<std::string, std::string> sources);
    ~Templates();
    Templates(Templates&&) noexcept;

    /// Renders template `name` with `data`: strings, numbers and booleans as
    /// values (`{{x}}` escaped; numbers as JSON writes them), arrays as
    /// sections, objects as contexts, null, empty strings and empty arrays as
    /// false (so `{{#note}}` shows nothing for an empty note). Throws
    /// NotFound for an unknown template. Output is byte for byte what
    /// kainjow's mustache writes for the same template and data (a line that
    /// holds only a rendered section tag and blanks is left out).
    std::string render(const std::string& name, const nlohmann::json& data) const;

    /// The text of template `name` with its partials inlined (what is parsed).
    std::string expanded(const std::string& name) const;

    bool has(const std::string& name) const { return sources_.count(name) > 0; }

    struct Node;
    struct Compiled;

private:
    void prepare();
    std::map<std::string, std::string> sources_;
    std::map<std::string, std::string> expanded_;  ///< partials inlined
    std::map<std::string, std::shared_ptr<Compiled>> parsed_;
};

}  // namespace apcloud::web
