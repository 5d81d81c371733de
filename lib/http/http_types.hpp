// HTTP types shared by the client and the server, free of any library's types (private header).
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace apcloud::http {

/// Orders header names case-insensitively (ASCII), as HTTP requires.
struct CaseInsensitiveLess {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const noexcept;
};

/// Header fields by name, compared case-insensitively.
using Headers = std::map<std::string, std::string, CaseInsensitiveLess>;

/// The reason phrase of a status code ("Not Found"), "" when unknown.
std::string_view status_reason(int status) noexcept;

}  // namespace apcloud::http
