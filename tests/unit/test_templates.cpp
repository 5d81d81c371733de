// The page templates' renderer against the reference engine (Debian's
// kainjow/mustache.hpp, which the pages used before; lib/web/templates.cpp
// says why they no longer do): every template of web/templates, and a set of
// small ones for mustache's corner cases, rendered by both with random data
// built from the names each template uses; the bytes must be equal.
#include <doctest/doctest.h>
#include <kainjow/mustache.hpp>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>
#include <string>

#include "autopkgtest_cloud/error.hpp"
#include "web/templates.hpp"

using namespace apcloud;
using nlohmann::json;
namespace mustache = kainjow::mustache;

namespace {

// The data model the pages had with kainjow: null, "" and [] false, numbers as JSON writes them.
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

std::string reference(const std::string& text, const json& data) {
    mustache::mustache t{text};
    REQUIRE_MESSAGE(t.is_valid(), t.error_message());
    mustache::data d = to_data(data);
    std::string out = t.render(d);
    REQUIRE_MESSAGE(t.error_message().empty(), t.error_message());
    return out;
}

// The names a template's tags use (dotted ones split).
std::vector<std::vector<std::string>> names_in(const std::string& text) {
    std::set<std::string> seen;
    static const std::regex tag(R"(\{\{\{?\s*[#^/&]?\s*([A-Za-z0-9_.]+)\s*\}?\}\})");
    for (std::sregex_iterator it(text.begin(), text.end(), tag), end; it != end; ++it)
        if ((*it)[1] != ".") seen.insert((*it)[1]);
    std::vector<std::vector<std::string>> out;
    for (const auto& n : seen) {
        std::vector<std::string> parts;
        std::size_t from = 0;
        for (auto dot = n.find('.'); ; dot = n.find('.', from)) {
            parts.push_back(n.substr(from, dot - from));
            if (dot == std::string::npos) break;
            from = dot + 1;
        }
        out.push_back(parts);
    }
    return out;
}

const std::vector<std::string> strings = {"", "x", "<script>alert('1')</script>", "a & \"b\"", "{{x}}", " ", "\t\n"};

// Random data for the names: values of every kind, nested sections filled from the same names.
struct Fill {
    std::mt19937& rng;
    const std::vector<std::vector<std::string>>& names;

    json value(int depth) {
        switch (std::uniform_int_distribution<int>(0, depth > 2 ? 6 : 9)(rng)) {
        case 0: return nullptr;
        case 1: return false;
        case 2: return true;
        case 3: return std::uniform_int_distribution<int>(-3, 1000)(rng);
        case 4: return 2.5;
        case 5:
        case 6: return strings[std::uniform_int_distribution<std::size_t>(0, strings.size() - 1)(rng)];
        case 7: return object(depth + 1);
        case 8: {
            json a = json::array();
            const int n = std::uniform_int_distribution<int>(0, 3)(rng);
            for (int i = 0; i < n; ++i) a.push_back(object(depth + 1));
            return a;
        }
        default: {
            json a = json::array();
            const int n = std::uniform_int_distribution<int>(0, 3)(rng);
            for (int i = 0; i < n; ++i) a.push_back(strings[std::uniform_int_distribution<std::size_t>(0, strings.size() - 1)(rng)]);
            return a;
        }
        }
    }

    json object(int depth) {
        json o = json::object();
        for (const auto& parts : names) {
            if (std::uniform_int_distribution<int>(0, 2)(rng) == 0) continue;  // absent
            json* at = &o;
            for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
                json& next = (*at)[parts[i]];
                if (!next.is_object()) next = json::object();
                at = &next;
            }
            (*at)[parts.back()] = value(depth);
        }
        return o;
    }
};

void compare(const std::string& name, const std::string& text, int rounds, unsigned seed) {
    web::Templates ours(std::map<std::string, std::string>{{name, text}});
    const auto names = names_in(text);
    std::mt19937 rng(seed);
    Fill fill{rng, names};
    for (int i = 0; i < rounds; ++i) {
        const json data = fill.object(0);
        const std::string want = reference(text, data);
        const std::string got = ours.render(name, data);
        if (got != want) {
            FAIL_CHECK("template " << name << ", data " << data.dump() << "\nkainjow: " << want << "\nours:    " << got);
            return;
        }
    }
}

std::string web_dir() {
    const char* d = std::getenv("APCLOUD_TEST_WEB");
    REQUIRE(d);
    return d;
}

}  // namespace

TEST_CASE("every page template renders as kainjow renders it, on random and hostile data") {
    web::Templates all(web_dir() + "/templates");
    int templates = 0;
    for (const auto& e : std::filesystem::directory_iterator(web_dir() + "/templates")) {
        const std::string name = e.path().stem().string();
        CAPTURE(name);
        compare(name, all.expanded(name), 300, static_cast<unsigned>(std::hash<std::string>{}(name)));
        ++templates;
    }
    CHECK(templates >= 10);
}

TEST_CASE("mustache's corner cases render as kainjow renders them") {
    const std::vector<std::string> cases = {
        "a{{x}}b{{{x}}}c{{&x}}d{{! a comment }}e{{ x }}f",
        "{{#s}}[{{.}}]{{/s}}{{^s}}none{{/s}}",
        "<ul>\n  {{#l}}\n  <li>{{a}}</li>\n  {{/l}}\n</ul>\n",
        "  {{#l}}  \n{{a}}\n  {{/l}}  \nend",
        "{{#l}}{{^a}}no a: {{.}}{{/a}}{{/l}}",
        "{{#o}}{{o.a}}|{{a}}|{{#a}}{{b}}{{/a}}{{/o}}",
        "{{a.b}}-{{#a}}{{a.b}}{{b}}{{/a}}-{{x.y.z}}",
        "line\r\n{{#a}}\r\n{{b}}\r\n{{/a}}\r\nlast{{#a}} {{/a}}",
        "{{#a}}\n{{/a}}\n{{^a}}\n{{/a}}\n\t{{#b}}\t\n{{/b}}",
        "{{^l}}\n{{.}}\n{{/l}}",
        "{{x}} {{#x}}{{/x}}\n",
    };
    unsigned seed = 1;
    for (const auto& text : cases) {
        CAPTURE(text);
        compare("case", text, 400, seed++);
    }
}

TEST_CASE("templates that do not parse are refused at load, naming the template") {
    auto refused = [](const std::string& text) {
        try {
            web::Templates t(std::map<std::string, std::string>{{"broken", text}});
        } catch (const ConfigError& e) {
            return std::string(e.what()).find("broken") != std::string::npos;
        }
        return false;
    };
    CHECK(refused("{{#a}}"));
    CHECK(refused("{{/a}}"));
    CHECK(refused("{{#a}}{{/b}}"));
    CHECK(refused("{{x"));
    CHECK(refused("{{=<% %>=}}"));
    CHECK(refused("{{> nothing}}"));
}
