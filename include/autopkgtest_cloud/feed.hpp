/// @file feed.hpp
/// A gating client's incremental sync from the web service's feed of new
/// results (`/api/v1/results?since=CURSOR`): each sync costs what is new,
/// not a download of the whole results database. The cursor is kept in a
/// file, saved only when the caller says the results are processed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "autopkgtest_cloud/britney_state.hpp"

namespace apcloud {

/// One new result: where it is, and what gating reads of it.
struct FeedResult {
    std::string container, release, arch, package;
    GatingResult result;
};

/// The feed of a web service, resumed from a cursor file.
class ResultsFeed {
public:
    /// `web_url`: the service's base URL (`https://autopkgtest.example`);
    /// `cursor_path`: where the cursor is kept (absent: start from the
    /// beginning). Throws ParseError naming the file when it is not a cursor.
    ResultsFeed(std::string web_url, std::string cursor_path);

    /// The results indexed since the saved (or last fetched) cursor, following
    /// pages until there are no more or `max` are collected. Retries timeouts
    /// and 5xx answers `retries` times. Throws HttpError otherwise.
    std::vector<FeedResult> fetch(std::size_t max = 100000, int retries = 4);
    /// Saves the cursor of the last fetch (atomically): call it once what
    /// fetch returned is processed, so a crash in between fetches it again.
    void commit();
    /// The cursor the next fetch starts from.
    std::int64_t cursor() const noexcept { return next_; }
    /// Bytes received by this object's fetches (to compare with a whole database download).
    std::uint64_t bytes_received() const noexcept { return bytes_; }

private:
    std::string url_, path_;
    std::int64_t saved_ = 0, next_ = 0;
    std::uint64_t bytes_ = 0;
};

}  // namespace apcloud
