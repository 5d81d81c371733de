// Static files of the pages (our CSS and JavaScript, Debian's Bootstrap and
// Chart.js) served from disk with validators, so browsers revalidate cheaply.
#include <sys/stat.h>

#include <algorithm>
#include <map>

#include "core/time_text.hpp"
#include "web/pages.hpp"

namespace apcloud::web {

namespace {

std::string content_type_for(const std::string& name) {
    static const std::map<std::string, std::string> types = {
        {".css", "text/css; charset=utf-8"},  {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"}, {".map", "application/json"},
        {".svg", "image/svg+xml"},             {".png", "image/png"},
        {".ico", "image/x-icon"},              {".woff2", "font/woff2"},
        {".txt", "text/plain; charset=utf-8"},
    };
    const auto dot = name.rfind('.');
    if (dot != std::string::npos) {
        auto it = types.find(name.substr(dot));
        if (it != types.end()) return it->second;
    }
    return "application/octet-stream";
}

}  // namespace

std::optional<http::ServerResponse> static_file(const std::string& root, const std::vector<std::string>& rest,
                                                const http::ServerRequest& request) {
    if (rest.empty()) return std::nullopt;
    std::string path = root;
    for (const auto& seg : rest) {
        if (seg.empty() || seg[0] == '.' || seg.find('/') != std::string::npos ||
            seg.find('\0') != std::string::npos)
            return std::nullopt;
        path += "/" + seg;
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    http::ServerResponse r;
    const auto mtime = static_cast<std::int64_t>(st.st_mtime);
    r.headers["ETag"] = "\"" + std::to_string(st.st_size) + "-" + std::to_string(mtime) + "\"";
    r.headers["Last-Modified"] = detail::format_http_date(mtime);
    r.headers["Cache-Control"] = "public, max-age=3600";
    r.headers["Content-Type"] = content_type_for(rest.back());
    r.headers["X-Content-Type-Options"] = "nosniff";
    const auto since = request.header("If-Modified-Since");
    if (since && !request.header("If-None-Match")) {
        const auto t = detail::parse_http_date(*since);
        if (t && mtime <= *t) {
            r.status = 304;
            r.headers.erase("Content-Type");
            return r;
        }
    }
    r.file = path;
    return r;
}

}  // namespace apcloud::web
