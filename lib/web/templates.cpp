// Mustache templates, parsed once and rendered straight from JSON data.
//
// The pages were rendered with Debian's kainjow/mustache.hpp, which parses the
// template on every render and copies the data into its own tree; with 100
// rows a history page spent most of its time in malloc and free (perf,
// bench-web-history). These templates are parsed once at load and rendered
// from the JSON with one output string. kainjow stays the reference:
// tests/unit/test_templates.cpp renders every template of web/templates with
// both, on ordinary and hostile data, and requires the same bytes.
#include "web/templates.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <filesystem>
#include <memory>
#include <string_view>
#include <vector>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/file_io.hpp"

namespace apcloud::web {

using nlohmann::json;

namespace {

// The template with its partials (`{{> name}}`) replaced by their text, recursively.
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

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

std::string trimmed(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return std::string(s);
}

std::vector<std::string> dotted(const std::string& name) {
    std::vector<std::string> parts;
    if (name == ".") return parts;  // the current item
    std::size_t from = 0;
    for (;;) {
        const auto dot = name.find('.', from);
        parts.push_back(name.substr(from, dot - from));
        if (dot == std::string::npos) break;
        from = dot + 1;
    }
    if (!parts.empty() && parts.back().empty()) parts.pop_back();  // "a." is "a", as getline splits it
    return parts;
}

// Values as the engine's model has them: null, false, "" and [] are false.
bool falsy(const json& v) {
    switch (v.type()) {
    case json::value_t::null: return true;
    case json::value_t::boolean: return !v.get<bool>();
    case json::value_t::string: return v.get_ref<const std::string&>().empty();
    case json::value_t::array: return v.empty();
    default: return false;
    }
}

void append_escaped(std::string& out, std::string_view s) {
    for (const char c : s) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&apos;"; break;
        default: out += c;
        }
    }
}

}  // namespace

/// A parsed template: text, line ends, variables and sections.
struct Templates::Node {
    enum class Kind { text, newline, variable, raw_variable, section, inverted };
    Kind kind = Kind::text;
    std::string text;                ///< text and newline: the characters
    std::vector<std::string> names;  ///< variables and sections: the dotted name (empty: `.`)
    std::vector<Node> children;      ///< sections
};

/// A template's nodes, and the size of its last page.
struct Templates::Compiled {
    std::vector<Node> nodes;
    std::atomic<std::size_t> last_size{0};
};

namespace {

using Node = Templates::Node;

// Parses `input` (partials already inlined) into nodes, with mustache's syntax
// as kainjow's parser reads it: `{{x}}`, `{{{x}}}`, `{{&x}}`, `{{#x}}`,
// `{{^x}}`, `{{/x}}`, `{{! comment}}`; delimiter changes are refused.
std::vector<Node> parse(const std::string& name, const std::string& input) {
    auto fail = [&](const std::string& what, std::size_t at) {
        throw ConfigError(fmt::format("template {}: {} at byte {}", quote_for_message(name), what, at));
    };
    std::vector<Node> root;
    std::vector<std::pair<std::vector<Node>*, std::string>> open{{&root, ""}};
    std::string text;
    auto flush = [&] {
        if (text.empty()) return;
        Node n;
        n.text = std::move(text);
        open.back().first->push_back(std::move(n));
        text.clear();
    };
    for (std::size_t i = 0; i < input.size();) {
        if (input.compare(i, 2, "{{") != 0) {
            const std::size_t nl = input.compare(i, 2, "\r\n") == 0 ? 2 : (input[i] == '\n' || input[i] == '\r') ? 1 : 0;
            if (nl == 0) {
                text += input[i++];
                continue;
            }
            flush();
            Node n;
            n.kind = Node::Kind::newline;
            n.text = input.substr(i, nl);
            open.back().first->push_back(std::move(n));
            i += nl;
            continue;
        }
        flush();
        const bool triple = i + 2 < input.size() && input[i + 2] == '{';
        const std::size_t contents = i + (triple ? 3 : 2);
        const std::size_t close = input.find(triple ? "}}}" : "}}", contents);
        if (close == std::string::npos) fail("unclosed tag", i);
        const std::string tag = trimmed(std::string_view(input).substr(contents, close - contents));
        const std::size_t tag_at = i;
        i = close + (triple ? 3 : 2);
        Node n;
        n.kind = Node::Kind::variable;
        std::string tag_name = tag;
        if (triple) {
            n.kind = Node::Kind::raw_variable;
        } else if (!tag.empty()) {
            const char sigil = tag[0];
            if (sigil == '=') fail("delimiter changes are not supported", tag_at);
            if (sigil == '>') fail("partial left after inlining", tag_at);
            if (sigil == '!') continue;
            if (sigil == '#' || sigil == '^' || sigil == '/' || sigil == '&') tag_name = trimmed(tag.substr(1));
            if (sigil == '#') n.kind = Node::Kind::section;
            if (sigil == '^') n.kind = Node::Kind::inverted;
            if (sigil == '&') n.kind = Node::Kind::raw_variable;
            if (sigil == '/') {
                if (open.size() == 1) fail(fmt::format("unopened section {}", quote_for_message(tag_name)), tag_at);
                if (open.back().second != tag_name)
                    fail(fmt::format("section {} closed by {}", quote_for_message(open.back().second),
                                     quote_for_message(tag_name)),
                         tag_at);
                open.pop_back();
                continue;
            }
        }
        n.names = dotted(tag_name);
        auto& siblings = *open.back().first;
        siblings.push_back(std::move(n));
        if (siblings.back().kind == Node::Kind::section || siblings.back().kind == Node::Kind::inverted)
            open.emplace_back(&siblings.back().children, tag_name);
    }
    flush();
    if (open.size() > 1) fail(fmt::format("unclosed section {}", quote_for_message(open.back().second)), input.size());
    return root;
}

// Renders nodes into one string, with kainjow's output rules (the test
// compares the two on every template): a line that holds a rendered section
// tag and nothing but blanks is left out, with its line end.
class Renderer {
public:
    explicit Renderer(const json& data) { stack_.push_back(&data); }

    std::string run(const std::vector<Node>& nodes, std::size_t expected) {
        out_.reserve(std::max<std::size_t>(expected + expected / 8, 4096));
        walk(nodes);
        end_line();
        return std::move(out_);
    }

private:
    const json* lookup(const std::vector<std::string>& names) const {
        if (names.empty()) return stack_.back();
        for (auto it = stack_.rbegin(); it != stack_.rend(); ++it) {
            const json* v = *it;
            for (const auto& n : names) {
                if (!v->is_object()) {
                    v = nullptr;
                    break;
                }
                auto f = v->find(n);
                v = f == v->end() ? nullptr : &*f;
                if (!v) break;
            }
            if (v) return v;
        }
        return nullptr;
    }

    // Drops the line being written when a section tag stood on it alone.
    bool end_line() {
        const bool blank = std::all_of(out_.begin() + static_cast<std::ptrdiff_t>(line_start_), out_.end(),
                                       [](char c) { return c == ' ' || c == '\t'; });
        const bool drop = section_on_line_ && blank;
        if (drop) out_.resize(line_start_);
        section_on_line_ = false;
        return !drop;
    }

    void section(const std::vector<Node>& children, const json* v) {
        auto once = [&](const json* item) {
            section_on_line_ = true;
            if (item) stack_.push_back(item);
            walk(children);
            if (item) stack_.pop_back();
            section_on_line_ = true;
        };
        if (v && v->is_array() && !v->empty())
            for (const auto& item : *v) once(&item);
        else
            once(v);
    }

    void walk(const std::vector<Node>& nodes) {
        for (const auto& n : nodes) {
            switch (n.kind) {
            case Node::Kind::text: out_ += n.text; break;
            case Node::Kind::newline:
                if (end_line()) out_ += n.text;
                line_start_ = out_.size();
                break;
            case Node::Kind::variable:
            case Node::Kind::raw_variable:
                if (const json* v = lookup(n.names)) {
                    if (v->is_string()) {
                        if (n.kind == Node::Kind::variable)
                            append_escaped(out_, v->get_ref<const std::string&>());
                        else
                            out_ += v->get_ref<const std::string&>();
                    } else if (v->is_number()) {
                        out_ += v->dump();  // digits and signs: nothing to escape
                    }
                }
                break;
            case Node::Kind::section:
                if (const json* v = lookup(n.names); v && !falsy(*v)) section(n.children, v);
                break;
            case Node::Kind::inverted:
                if (const json* v = lookup(n.names); !v || falsy(*v)) section(n.children, v);
                break;
            }
        }
    }

    std::vector<const json*> stack_;
    std::string out_;
    std::size_t line_start_ = 0;
    bool section_on_line_ = false;
};

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

Templates::~Templates() = default;
Templates::Templates(Templates&&) noexcept = default;

void Templates::prepare() {
    for (const auto& [name, text] : sources_) {
        std::string expanded = expand(sources_, name);
        auto c = std::make_shared<Compiled>();
        c->nodes = parse(name, expanded);
        parsed_[name] = std::move(c);
        expanded_[name] = std::move(expanded);
    }
}

std::string Templates::render(const std::string& name, const json& data) const {
    auto it = parsed_.find(name);
    if (it == parsed_.end()) throw NotFound(fmt::format("no template {}", quote_for_message(name)));
    static const json empty = json::object();
    // Written into a string as large as this template's last page: a history page
    // of 100 kB grown from small spent its time copying and freeing.
    Compiled& c = *it->second;
    std::string out = Renderer(data.is_object() ? data : empty).run(c.nodes, c.last_size.load());
    c.last_size.store(out.size());
    return out;
}

std::string Templates::expanded(const std::string& name) const {
    auto it = expanded_.find(name);
    if (it == expanded_.end()) throw NotFound(fmt::format("no template {}", quote_for_message(name)));
    return it->second;
}

}  // namespace apcloud::web
