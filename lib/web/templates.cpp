// Mustache rendering (Debian's kainjow/mustache.hpp, header-only) of JSON data.
#include "web/templates.hpp"

#include <fmt/format.h>
#include <kainjow/mustache.hpp>

#include <filesystem>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/file_io.hpp"

namespace apcloud::web {

using nlohmann::json;
namespace mustache = kainjow::mustache;

namespace {

mustache::data to_data(const json& j) {
    switch (j.type()) {
    case json::value_t::object: {
        mustache::data d{mustache::data::type::object};
        for (const auto& [k, v] : j.items()) d.set(k, to_data(v));
        return d;
    }
    case json::value_t::array: {
        if (j.empty()) return mustache::data{false};
        mustache::data d{mustache::data::type::list};
        for (const auto& v : j) d.push_back(to_data(v));
        return d;
    }
    case json::value_t::string:
        if (j.get_ref<const std::string&>().empty()) return mustache::data{false};
        return mustache::data{j.get<std::string>()};
    case json::value_t::boolean: return mustache::data{j.get<bool>()};
    case json::value_t::null: return mustache::data{false};
    default: return mustache::data{j.dump()};
    }
}

// The template with its partials (`{{> name}}`) replaced by their text, recursively:
// each page is parsed once per render instead of once per partial use.
std::string expand(const std::map<std::string, std::string>& sources, const std::string& name, int depth = 0) {
    if (depth > 8) throw ConfigError(fmt::format("template {}: partials nested too deep", quote_for_message(name)));
    const std::string& text = sources.at(name);
    std::string out;
    std::size_t pos = 0;
    for (;;) {
        const auto open = text.find("{{>", pos);
        if (open == std::string::npos) break;
        const auto close = text.find("}}", open);
        if (close == std::string::npos) break;
        std::string partial = text.substr(open + 3, close - open - 3);
        partial.erase(0, partial.find_first_not_of(' '));
        partial.erase(partial.find_last_not_of(' ') + 1);
        if (!sources.count(partial))
            throw ConfigError(fmt::format("template {}: no partial {}", quote_for_message(name),
                                          quote_for_message(partial)));
        out.append(text, pos, open - pos);
        out += expand(sources, partial, depth + 1);
        pos = close + 2;
    }
    out.append(text, pos, std::string::npos);
    return out;
}

void check(const std::string& name, const std::string& text) {
    mustache::mustache t{text};
    if (!t.is_valid())
        throw ConfigError(fmt::format("template {}: {}", quote_for_message(name), t.error_message()));
}

}  // namespace

Templates::Templates(const std::string& dir) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
        if (e.path().extension() != ".mustache") continue;
        sources_[e.path().stem().string()] = read_file(e.path().string());
    }
    if (ec) throw SystemError(ec.value(), "read the template directory", dir);
    if (sources_.empty()) throw ConfigError(fmt::format("no templates in {}", quote_for_message(dir)));
    prepare();
}

Templates::Templates(std::map<std::string, std::string> sources) : sources_(std::move(sources)) {
    prepare();
}

void Templates::prepare() {
    for (const auto& [name, text] : sources_) {
        expanded_[name] = expand(sources_, name);
        check(name, expanded_[name]);
    }
}

std::string Templates::render(const std::string& name, const json& data) const {
    auto it = expanded_.find(name);
    if (it == expanded_.end()) throw NotFound(fmt::format("no template {}", quote_for_message(name)));
    mustache::data d = to_data(data.is_object() ? data : json::object());
    mustache::mustache t{it->second};
    std::string out = t.render(d);
    if (!t.error_message().empty())
        throw Error(fmt::format("template {}: {}", quote_for_message(name), t.error_message()));
    return out;
}

}  // namespace apcloud::web
