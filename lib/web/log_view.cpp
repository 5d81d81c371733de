// autopkgtest's log markers: "autopkgtest [HH:MM:SS]: test NAME: ..." and "@@@@ summary".
#include "web/log_view.hpp"

namespace apcloud::web {

namespace {

// The test a marker line announces, if it starts one: "test NAME: preparing
// testbed" or "test NAME: [---". `seen` is the name of the current test.
bool starts_test(std::string_view line, const std::string& current, std::string& name) {
    auto pos = line.find("]: test ");
    if (line.substr(0, 12) != "autopkgtest " || pos == std::string_view::npos) return false;
    auto rest = line.substr(pos + 8);
    auto colon = rest.find(": ");
    if (colon == std::string_view::npos || colon == 0) return false;
    std::string_view what = rest.substr(colon + 2);
    const bool preparing = what.substr(0, 17) == "preparing testbed";
    const bool opening = what.substr(0, 4) == "[---";
    if (!preparing && !opening) return false;
    name = std::string(rest.substr(0, colon));
    return preparing || name != current;  // "[---" only starts a test that had no "preparing" line
}

bool starts_summary(std::string_view line) {
    return line.substr(0, 12) == "autopkgtest " && line.find("@@@@@@@@@@@@@@@@@@@@ summary") != std::string_view::npos;
}

}  // namespace

std::vector<LogSection> split_log(std::string_view log) {
    std::vector<LogSection> out;
    out.push_back({"setup", "", 1, {}});
    std::size_t n = 0;
    while (!log.empty()) {
        auto nl = log.find('\n');
        std::string_view line = log.substr(0, nl);
        log = nl == std::string_view::npos ? std::string_view() : log.substr(nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        ++n;
        std::string name;
        const std::string current = out.back().kind == "test" ? out.back().name : std::string();
        if (out.back().kind != "summary") {
            if (starts_summary(line))
                out.push_back({"summary", "", n, {}});
            else if (starts_test(line, current, name))
                out.push_back({"test", name, n, {}});
        }
        out.back().lines.emplace_back(line);
    }
    if (out.size() > 1 && out.front().lines.empty()) out.erase(out.begin());
    return out;
}

}  // namespace apcloud::web
