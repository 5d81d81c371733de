/// @file pool.hpp
/// A supervised pool of worker processes on one machine (`apcloud up`), and
/// the layout of a one-machine installation (data directory, worker.conf).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace apcloud {

/// A one-machine installation: everything lives under one directory.
struct LocalSite {
    std::string data_dir;                 ///< absolute
    std::string store_url() const;        ///< file://DATA/results
    std::string broker_url() const;       ///< sqlite://DATA/queue.db
    std::string config_path() const;      ///< DATA/worker.conf
    std::string web_config_path() const;  ///< DATA/web.conf
    std::string log_dir() const;          ///< DATA/log
};

/// Creates the data directory and, if absent, a worker.conf for the embedded
/// backends and autopkgtest's null runner (`releases`/`architectures` as
/// given; local sources allowed) and a web.conf for the web service on
/// `web_port` of 127.0.0.1 with its data in DATA/web and its files in
/// `share_dir`, whose request API accepts local sources and lets `admin`
/// (when given; DATA/access.conf, if absent) request anything with a key of
/// `apcloud keys create ADMIN -c DATA/web.conf`. Returns the site. Throws
/// Error on I/O errors.
LocalSite prepare_local_site(const std::string& data_dir, const std::vector<std::string>& releases,
                             const std::vector<std::string>& architectures, std::uint16_t web_port = 8080,
                             const std::string& share_dir = {}, const std::string& admin = {});

/// How to run the pool.
struct PoolOptions {
    std::string worker_program;            ///< path of autopkgtest-cloud-worker
    std::vector<std::string> worker_args;  ///< e.g. {"-c", "DATA/worker.conf"}
    int workers = 1;
    std::string log_dir;  ///< worker-N.log files go here
};

/// Starts `workers` worker processes and keeps them running: a worker that
/// exits 75 (SIGHUP: reload) is restarted at once, one that fails is
/// restarted after a growing delay (capped at 60 s), one that exits 0 is not
/// restarted. Returns when `stop` becomes true, after sending SIGTERM to
/// every worker and waiting for them to finish their tests.
void run_worker_pool(const PoolOptions& options, const std::atomic<bool>& stop);

}  // namespace apcloud
