// /results/<container>/<object>: the store's objects and listings with Swift's
// semantics, so ADT_SWIFT_URL, apcloud.collect_results and britney can read
// results through the web service (SPEC.md sections 3 and 7).
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/indexed_run.hpp"
#include "core/time_text.hpp"
#include "web/web_app.hpp"

namespace apcloud::web {

using http::ServerRequest;
using http::ServerResponse;
using nlohmann::json;

namespace {

ListOptions listing_options(const ServerRequest& r) {
    ListOptions o;
    o.prefix = r.param("prefix").value_or("");
    o.marker = r.param("marker").value_or("");
    o.end_marker = r.param("end_marker").value_or("");
    if (auto d = r.param("delimiter")) {
        if (d->size() != 1) throw ValidationError("delimiter", *d, "must be a single character");
        o.delimiter = (*d)[0];
    }
    if (auto l = r.param("limit")) {
        std::size_t n = 0;
        try {
            n = std::stoul(*l);
        } catch (const std::exception&) {
        }
        if (n < 1 || n > ListOptions::max_list_limit ||
            l->find_first_not_of("0123456789") != std::string::npos)
            throw ValidationError(
                "limit", *l, fmt::format("must be a whole number from 1 to {}", ListOptions::max_list_limit));
        o.limit = n;
    }
    return o;
}

ServerResponse listing(Store& store, const std::string& container, const ServerRequest& r) {
    const auto entries = store.list(container, listing_options(r));
    ServerResponse out;
    const bool as_json = r.param("format").value_or("") == "json";
    if (entries.empty()) {
        out.status = 204;
        return out;
    }
    if (as_json) {
        json list = json::array();
        for (const auto& e : entries) {
            if (e.subdir)
                list.push_back({{"subdir", e.name}});
            else
                list.push_back({{"name", e.name},
                                {"bytes", e.bytes},
                                {"hash", e.etag},
                                {"content_type", e.content_type},
                                {"last_modified", e.last_modified}});
        }
        out = json_response(200, list);
        out.body.pop_back();  // Swift's JSON listing ends without a newline
    } else {
        for (const auto& e : entries) out.body += e.name + "\n";
        out.headers["Content-Type"] = "text/plain; charset=utf-8";
    }
    out.headers["X-Container-Object-Count"] = std::to_string(entries.size());
    return out;
}

// An object, streamed from the store as the client reads it: artifacts may be
// far larger than memory.
ServerResponse object(Store& store, const std::string& container, const std::string& name) {
    std::shared_ptr<ObjectReader> reader = store.open_object(container, name);
    if (!reader)
        throw NotFound(
            fmt::format("no object {} in {}", quote_for_message(name), quote_for_message(container)));
    const ObjectInfo& info = reader->info();
    ServerResponse out;
    out.headers["Content-Type"] = info.content_type;
    if (info.content_encoding) out.headers["Content-Encoding"] = *info.content_encoding;
    out.headers["ETag"] = "\"" + info.etag + "\"";
    if (auto t = detail::parse_iso_time(info.last_modified))
        out.headers["Last-Modified"] = detail::format_http_date(*t);
    out.producer = [reader](std::string& chunk) { return reader->read(chunk); };
    return out;
}

}  // namespace

ServerResponse WebApp::results(const ServerRequest& request, const std::vector<std::string>& segs) const {
    if (!store_) return error_response(404, "this service serves no store");
    if (segs.size() < 2) return error_response(404, "give a container: /results/CONTAINER[/OBJECT]");
    const std::string& container = segs[1];
    check_container_name(container);
    // Private containers are never served to anonymous readers (authentication comes with the request API).
    auto info = parse_container_name(container);
    if (!info || info->is_private)
        throw NotFound(fmt::format("no container {}", quote_for_message(container)));
    if (segs.size() == 2) {
        ServerResponse r = listing(*store_, container, request);
        return r;
    }
    // The object name: everything after /results/CONTAINER/, decoded.
    const std::string prefix = "/results/" + container + "/";
    std::string name =
        request.path.size() > prefix.size() ? request.path.substr(prefix.size()) : std::string();
    check_object_name(name);
    return object(*store_, container, name);
}

}  // namespace apcloud::web
