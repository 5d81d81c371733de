// The HTML pages of the results browser (SPEC.md section 7), server-rendered from
// mustache templates over the same views as the JSON API; complete without
// JavaScript (private header).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "autopkgtest_cloud/results_index.hpp"
#include "autopkgtest_cloud/store.hpp"
#include "http/http_server.hpp"
#include "web/templates.hpp"

namespace apcloud::web {

class RunningTests;
class WebState;
struct WebSettings;

/// Limits on what a run page reads from the store.
struct RunPageLimits {
    std::size_t max_log_gz_bytes = 64u << 20;        ///< larger log.gz files are only linked
    std::size_t max_log_bytes = 4u << 20;            ///< of the uncompressed log shown
    std::size_t max_artifacts_bytes = 32u << 20;     ///< larger artifacts.tar.gz are only linked
    std::size_t max_test_output_bytes = 256u << 10;  ///< of one test's stdout or stderr shown
};

/// The pages, over the same state as the JSON API.
class Pages {
public:
    /// Loads the templates of `settings.share_dir`/templates; throws ConfigError for one that does not parse.
    Pages(const ResultsIndex& index, const RunningTests& running, const WebState& state, Store* store,
          const WebSettings& settings);

    /// The page for the path's segments, or nullopt when no page lives there.
    /// Throws what handlers throw (ValidationError, NotFound): the caller
    /// turns it into an error page.
    std::optional<http::ServerResponse> handle(const http::ServerRequest& request,
                                               const std::vector<std::string>& segments) const;

    /// The answer of the request API as a page: the requests made, or why not.
    http::ServerResponse request_page(int status, const nlohmann::json& answer) const;

    /// An error page (HTML) with the status and the message.
    http::ServerResponse error_page(int status, const std::string& message) const;

    RunPageLimits limits;

private:
    http::ServerResponse render(const std::string& name, nlohmann::json data, int status = 200) const;
    http::ServerResponse home() const;
    http::ServerResponse package_pages(const http::ServerRequest& request,
                                       const std::vector<std::string>& rest) const;
    http::ServerResponse package_page(const std::string& package) const;
    http::ServerResponse history_page(const http::ServerRequest& request, const std::string& package,
                                      const std::string& release, const std::string& arch) const;
    http::ServerResponse run_page(const IndexedRecord& record) const;
    http::ServerResponse running_page() const;
    http::ServerResponse queued_page() const;
    http::ServerResponse recent_page(const http::ServerRequest& request) const;
    http::ServerResponse user_page(const std::string& user) const;
    http::ServerResponse testlist_page() const;
    http::ServerResponse request_form(const http::ServerRequest& request) const;
    http::ServerResponse statistics_page() const;
    http::ServerResponse atom_feed(const http::ServerRequest& request, const std::string& package) const;
    nlohmann::json queued_views(const std::function<bool(const struct QueuedRequest&)>& keep) const;
    nlohmann::json log_sections(const IndexedRun& run, const nlohmann::json& tests, std::string& note) const;
    std::vector<std::pair<std::string, std::string>> test_outputs(const IndexedRun& run,
                                                                  std::string& note) const;
    std::string banner() const;

    const ResultsIndex& index_;
    const RunningTests& running_;
    const WebState& state_;
    Store* store_;
    const WebSettings& settings_;
    Templates templates_;
};

/// A static file under `root` for the path segments after the mount point
/// (never outside it: no empty, `.` or `..` segments, no hidden files), with
/// its Content-Type, ETag, Last-Modified and Cache-Control; answers 304 to a
/// matching If-None-Match or If-Modified-Since. nullopt when there is none.
std::optional<http::ServerResponse> static_file(const std::string& root, const std::vector<std::string>& rest,
                                                const http::ServerRequest& request);

}  // namespace apcloud::web
