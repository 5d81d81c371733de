"""apcloud: Python bindings of libautopkgtest-cloud.

Test requests (parse_request, TestRequest), queue routing (queue_name,
parse_queue_name, queue_for), store layout (srcpkg_prefix, container_name,
make_run_id, parse_run_id, result_dir), result files (pack_results,
parse_result_tar, outcome), gating support (version_compare, ResultsCache,
PendingTests, open_store, iter_results, open_sink) and the exception
hierarchy rooted at Error.
"""
from ._apcloud import *  # noqa: F401,F403

__version__ = "0.1.0"
