// YAML to JSON over libyaml's event parser: the only file that includes yaml.h.
#include "core/yaml_json.hpp"

#include <fmt/format.h>
#include <yaml.h>

#include <map>
#include <utility>
#include <vector>

#include "autopkgtest_cloud/error.hpp"

namespace apcloud::detail {

using nlohmann::json;

namespace {

std::string position(const yaml_mark_t& mark) {
    return fmt::format("line {}, column {}", mark.line + 1, mark.column + 1);
}

[[noreturn]] void fail(const yaml_mark_t& mark, std::string_view problem) {
    throw ParseError(fmt::format("{}: {}", position(mark), problem));
}

std::size_t node_count(const json& v) {
    std::size_t n = 1;
    if (v.is_structured())
        for (const auto& e : v) n += node_count(e);
    return n;
}

// An open mapping or sequence.
struct Frame {
    json value;
    std::string anchor;
    bool is_mapping = false;
    bool have_key = false;  // a mapping's key was read, its value is next
    std::string key;
    bool streamed = false;  // a sequence whose elements go to the sink
};

// Builds the document from parser events.
class Builder {
public:
    Builder(std::size_t max_nodes, const YamlLimits& limits, const std::string& streamed_key,
            const YamlElementSink& sink)
        : max_nodes_(max_nodes), limits_(limits), streamed_key_(streamed_key), sink_(sink) {}

    void scalar(const yaml_event_t& e) {
        count(1, e.start_mark);
        const auto& s = e.data.scalar;
        std::string text(reinterpret_cast<const char*>(s.value), s.length);
        if (expecting_key()) {
            remember(s.anchor, json(text));
            set_key(std::move(text));
            return;
        }
        const bool plain = s.style == YAML_PLAIN_SCALAR_STYLE;
        json v = plain && (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL")
                     ? json(nullptr)
                     : json(std::move(text));
        remember(s.anchor, v);
        attach(std::move(v));
    }

    void start(bool mapping, const yaml_event_t& e, const yaml_char_t* anchor) {
        if (expecting_key()) fail(e.start_mark, "a mapping key must be a scalar");
        if (stack_.size() >= limits_.max_depth)
            fail(e.start_mark, fmt::format("nested deeper than {} levels", limits_.max_depth));
        count(1, e.start_mark);
        Frame f;
        f.value = mapping ? json::object() : json::array();
        f.is_mapping = mapping;
        if (anchor) f.anchor = reinterpret_cast<const char*>(anchor);
        f.streamed = !mapping && sink_ && !streamed_key_.empty() && stack_.size() == 1 &&
                     stack_[0].is_mapping && stack_[0].key == streamed_key_;
        stack_.push_back(std::move(f));
    }

    void end() {
        Frame f = std::move(stack_.back());
        stack_.pop_back();
        if (!f.anchor.empty()) anchors_[f.anchor] = f.value;
        attach(std::move(f.value));
    }

    void alias(const yaml_event_t& e) {
        const std::string name = reinterpret_cast<const char*>(e.data.alias.anchor);
        auto it = anchors_.find(name);
        if (it == anchors_.end())
            fail(e.start_mark, fmt::format("unknown alias {}", quote_for_message(name)));
        count(node_count(it->second), e.start_mark);
        if (expecting_key()) {
            if (!it->second.is_string()) fail(e.start_mark, "a mapping key must be a scalar");
            set_key(it->second.get<std::string>());
            return;
        }
        attach(json(it->second));
    }

    json take() { return std::move(root_); }

private:
    bool expecting_key() const {
        return !stack_.empty() && stack_.back().is_mapping && !stack_.back().have_key;
    }

    void set_key(std::string key) {
        stack_.back().key = std::move(key);
        stack_.back().have_key = true;
    }

    void remember(const yaml_char_t* anchor, const json& v) {
        if (anchor) anchors_[reinterpret_cast<const char*>(anchor)] = v;
    }

    void attach(json&& v) {
        if (stack_.empty()) {
            root_ = std::move(v);
            return;
        }
        Frame& top = stack_.back();
        if (top.is_mapping) {
            top.value[top.key] = std::move(v);
            top.have_key = false;
        } else if (top.streamed) {
            sink_(std::move(v));
        } else {
            top.value.push_back(std::move(v));
        }
    }

    void count(std::size_t n, const yaml_mark_t& mark) {
        nodes_ += n;
        if (nodes_ > max_nodes_) fail(mark, fmt::format("more than {} nodes (aliases included)", max_nodes_));
    }

    std::size_t max_nodes_;
    std::size_t nodes_ = 0;
    const YamlLimits& limits_;
    const std::string& streamed_key_;
    const YamlElementSink& sink_;
    std::vector<Frame> stack_;
    std::map<std::string, json> anchors_;
    json root_;
};

// libyaml's parser and event, freed on every path.
struct Parser {
    yaml_parser_t p;
    Parser() {
        if (!yaml_parser_initialize(&p)) throw Error("cannot initialise the YAML parser (out of memory?)");
    }
    ~Parser() { yaml_parser_delete(&p); }
    Parser(const Parser&) = delete;
    Parser& operator=(const Parser&) = delete;
};

struct Event {
    yaml_event_t e{};
    ~Event() { yaml_event_delete(&e); }
};

}  // namespace

json parse_yaml(std::string_view text, const std::string& streamed_key, const YamlElementSink& sink,
                const YamlLimits& limits) {
    Parser parser;
    yaml_parser_set_input_string(&parser.p, reinterpret_cast<const unsigned char*>(text.data()), text.size());
    yaml_parser_set_encoding(&parser.p, YAML_UTF8_ENCODING);
    Builder builder(text.size() * limits.max_nodes_per_byte + 1024, limits, streamed_key, sink);
    int documents = 0;
    for (;;) {
        Event event;
        if (!yaml_parser_parse(&parser.p, &event.e)) {
            std::string problem = parser.p.problem ? parser.p.problem : "not YAML";
            if (parser.p.context) problem += fmt::format(" ({})", parser.p.context);
            fail(parser.p.problem_mark, problem);
        }
        const yaml_event_t& e = event.e;
        switch (e.type) {
            case YAML_STREAM_END_EVENT:
                return builder.take();
            case YAML_DOCUMENT_START_EVENT:
                if (++documents > 1) fail(e.start_mark, "more than one YAML document");
                break;
            case YAML_SCALAR_EVENT:
                builder.scalar(e);
                break;
            case YAML_SEQUENCE_START_EVENT:
                builder.start(false, e, e.data.sequence_start.anchor);
                break;
            case YAML_MAPPING_START_EVENT:
                builder.start(true, e, e.data.mapping_start.anchor);
                break;
            case YAML_SEQUENCE_END_EVENT:
            case YAML_MAPPING_END_EVENT:
                builder.end();
                break;
            case YAML_ALIAS_EVENT:
                builder.alias(e);
                break;
            default:  // stream start, document end, none
                break;
        }
    }
}

}  // namespace apcloud::detail
