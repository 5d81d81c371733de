"""The web service's data side on the real worker path (gating_site.Site), embedded and distributed.

Results are made by the real worker program with the stand-in autopkgtest; the
web service (autopkgtest-cloud-web) indexes them from its own durable event
queue and from the store, and answers the JSON API, the published database,
the store proxy and the reference's JSON files over real HTTP.
"""
import gzip
import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest

import apcloud
from gating_site import ARCH, Site, need
from web_site import WebService


@pytest.fixture(params=["embedded", "swift"])
def site(request, tmp_path):
    return Site(request.param, tmp_path)


@pytest.fixture
def embedded(tmp_path):
    return Site("embedded", tmp_path)


def _history(web, site, package):
    return web.json(f"/api/v1/packages/{package}/{site.release}/{ARCH}")["runs"]


def test_results_reach_the_api_the_published_db_and_the_store_proxy(site, tmp_path):
    web = WebService(site).start()
    try:
        site.run("gedit", ["glib2.0/2.80-1"])
        site.run("gedit", ["gtk+3.0/3.24-1"], exitcode=4)
        # The Swift account is shared with other tests: only this test's release counts.
        mine = lambda j: [r for r in j["latest"] if r["release"] == site.release]
        overview = web.wait_json("/api/v1/packages/gedit", lambda j: mine(j) and mine(j)[0]["exitcode"] == 4)
        [latest] = mine(overview)
        assert (latest["release"], latest["arch"], latest["version"]) == (site.release, ARCH, "1.0-1")
        assert latest["triggers"] == ["gtk+3.0/3.24-1"] and latest["outcome"] == "fail"
        assert latest["uuid"]  # stamped by the sink, stored in result.tar, indexed
        runs = _history(web, site, "gedit")
        assert [r["exitcode"] for r in runs] == [4, 0]
        run = web.json(latest["urls"]["page"].replace("/packages/", "/api/v1/packages/", 1))
        assert run["tests"] == [{"name": "smoke", "result": "PASS", "detail": ""}]
        assert web.json(f"/api/v1/run/{latest['uuid']}")["run_id"] == latest["run_id"]
        assert latest["retry"].startswith(f"/request.cgi?release={site.release}&arch={ARCH}&package=gedit")

        # The store through the service, with Swift's semantics: log.gz shows inline.
        code, headers, body = web.get(latest["urls"]["log"])
        assert code == 200 and headers["Content-Encoding"] == "gzip"
        assert b"finished with 4" in gzip.decompress(body)
        via_proxy = apcloud.iter_results(web.url + "/results", site.container, site.release, ARCH, "gedit")
        direct = apcloud.iter_results(site.read_url, site.container, site.release, ARCH, "gedit")
        assert [r.run_id for r in via_proxy] == [r.run_id for r in direct]

        # The published database: britney's query gives the store's results.
        db = str(tmp_path / "autopkgtest.db")
        web.wait_json("/api/v1/packages", lambda j: True)
        deadline = time.monotonic() + 20
        while True:
            apcloud.download_results_db(web.url + "/static/autopkgtest.db", db)
            rows = apcloud.iter_db_results(db, site.release, ARCH, "gedit")
            if len(rows) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert [(r.run_id, r.exitcode, r.triggers) for r in rows] == \
            [(r.run_id, r.exitcode, r.triggers) for r in direct]
        # Polling again costs a 304: the file is left alone.
        before = os.stat(db).st_mtime_ns
        apcloud.download_results_db(web.url + "/static/autopkgtest.db", db)
        assert os.stat(db).st_mtime_ns == before
        code, headers, _ = web.get("/static/autopkgtest.db")
        assert headers["X-Checksum-Sha256"] == web.get("/static/autopkgtest.db.sha256")[2].decode()
    finally:
        web.stop()


def test_results_stored_while_the_service_is_down_all_arrive(site):
    web = WebService(site).start()
    site.run("gedit", ["glib2.0/2.80-1"])
    web.wait_json(f"/api/v1/packages/gedit/{site.release}/{ARCH}", lambda j: len(j["runs"]) == 1)
    assert web.stop() == 0
    for n in range(3):
        site.run("gedit", [f"t{n}/1"])
    web.start()
    try:
        web.wait_json(f"/api/v1/packages/gedit/{site.release}/{ARCH}", lambda j: len(j["runs"]) == 4)
        # Each run once, however it arrived (its event, and the backfill at start).
        assert len(web.json(f"/api/v1/recent?package=gedit&release={site.release}")) == 4
    finally:
        web.stop()


def test_a_rabbitmq_restart_loses_nothing(tmp_path):
    site = Site("swift", tmp_path)
    web = WebService(site).start()
    try:
        site.run("gedit", ["glib2.0/2.80-1"])
        web.wait_json(f"/api/v1/packages/gedit/{site.release}/{ARCH}", lambda j: len(j["runs"]) == 1)
        subprocess.run([str(os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "rabbitmq-restart")),
                        need("APCLOUD_RABBITMQ_DIR")], check=True, stdout=subprocess.DEVNULL)
        site.run("gedit", ["gtk+3.0/3.24-1"])
        web.wait_json(f"/api/v1/packages/gedit/{site.release}/{ARCH}", lambda j: len(j["runs"]) == 2, timeout=60)
    finally:
        web.stop()


def _put_runs(site, tmp_path, count):
    """Stores `count` complete runs straight into the store, as workers would have."""
    store = apcloud.open_store(site.store_url)
    store.ensure_container(site.container, public=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "log").write_text("log\n")
    (out / "testpkg-version").write_text("bulk 1.0\n")
    (out / "testinfo.json").write_text(json.dumps({"custom_environment": ["ADT_TEST_TRIGGERS=glib2.0/2.80-1"]}))
    files = apcloud.pack_results(str(out), 0, 10)
    ids = []
    for i in range(count):
        run_id = apcloud.make_run_id(1700000000 + i, f"bulk{i}")
        d = apcloud.result_dir(site.release, ARCH, "bulk", run_id)
        for name in ("log.gz", "artifacts.tar.gz", "result.tar"):
            store.put(site.container, d + "/" + name, files[name])
        ids.append(run_id)
    return ids


def _compat_rows(db):
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        return sorted(c.execute("SELECT t.release, t.arch, t.package, r.run_id, r.version, r.triggers, r.duration, "
                                "r.exitcode, r.requester, r.env, r.uuid FROM test t JOIN result r ON t.id = r.test_id"))


def _index_rows(index_dir):
    with sqlite3.connect(f"file:{index_dir}/index.db?mode=ro", uri=True) as c:
        cols = [r[1] for r in c.execute("PRAGMA table_info(run)") if r[1] != "seq"]
        return sorted(c.execute(f"SELECT {', '.join(cols)} FROM run"))


def test_kill_9_during_the_backfill_leaves_a_consistent_index_that_the_next_start_completes(embedded, tmp_path):
    ids = _put_runs(embedded, tmp_path, 600)
    web = WebService(embedded).start()
    web.wait_json("/api/v1/recent?package=bulk", lambda j: len(j) > 0, timeout=60)
    web.stop(signal.SIGKILL)
    partial = len(_index_rows(web.data / "index"))
    web.start()
    try:
        web.wait_json("/api/v1/results?limit=10000", lambda j: len(j["results"]) == 600, timeout=120)
        # The published copy agrees with the index: every run, once.
        db = str(tmp_path / "pub.db")
        deadline = time.monotonic() + 20
        while True:
            apcloud.download_results_db(web.url + "/static/autopkgtest.db", db)
            if len(_compat_rows(db)) == 600 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert sorted(r[3] for r in _compat_rows(db)) == sorted(ids)
    finally:
        web.stop()
    assert partial <= 600


def test_rebuild_gives_the_same_rows(site, tmp_path):
    web = WebService(site).start()
    try:
        site.run("gedit", ["glib2.0/2.80-1"])
        site.run("gedit", ["gtk+3.0/3.24-1"], exitcode=4)
        site.run("libpeas", ["glib2.0/2.80-1"], ppas=["lpuser/ppa"])
        web.wait_json(f"/api/v1/recent?release={site.release}", lambda j: len(j) >= 3)
    finally:
        web.stop()
    index = web.data / "index"
    before_run, before_compat = _index_rows(index), _compat_rows(index / "compat.db")
    env = dict(site.env)
    proc = subprocess.run([need("APCLOUD_TOOL"), "index", "rebuild", "--index", str(index), "--store",
                           site.store_url], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    # Only this test's containers are compared: the shared Swift holds other tests' results too.
    mine = lambda rows, col: [r for r in rows if site.release in str(r[col])]
    assert mine(_index_rows(index), 0) == mine(before_run, 0)
    assert mine(_compat_rows(index / "compat.db"), 0) == mine(before_compat, 0)
    assert len(mine(before_run, 0)) == 3 and len(mine(before_compat, 0)) == 2


def test_two_replicas_serve_the_same_data(embedded):
    a, b = WebService(embedded, "a").start(), WebService(embedded, "b").start()
    try:
        embedded.run("gedit", ["glib2.0/2.80-1"])
        embedded.run("evince", ["glib2.0/2.80-1"], exitcode=4)
        ra = a.wait_json("/api/v1/recent", lambda j: len(j) == 2)
        rb = b.wait_json("/api/v1/recent", lambda j: len(j) == 2)
        assert [r["run_id"] for r in ra] == [r["run_id"] for r in rb]
    finally:
        a.stop()
        b.stop()


def test_queued_and_running_tests(embedded):
    web = WebService(embedded).start()
    try:
        sink = apcloud.open_sink(embedded.sink_url, declare_queues=True)
        queue = sink.send(apcloud.TestRequest("gedit", triggers=["glib2.0/2.80-1"], requester="alice"),
                          embedded.release, ARCH)
        queues = web.wait_json("/queues.json", lambda j: j["ubuntu"][embedded.release][ARCH])
        [body] = queues["ubuntu"][embedded.release][ARCH]
        assert body.startswith("gedit\n")
        [queued] = web.wait_json("/api/v1/queued", lambda j: len(j) == 1)
        assert (queued["queue"], queued["position"], queued["package"]) == (queue, 1, "gedit")
        assert web.json("/queue_size.json")["ubuntu"][embedded.release][ARCH] == 1
        assert web.json("/api/v1/user/alice")["queued"][0]["uuid"] == queued["uuid"]
        # Now a worker takes it and runs for a few seconds: it shows as running, then not.
        (embedded.root / "fake" / "sleep").write_text("4\n")
        worker = subprocess.Popen([need("APCLOUD_WORKER_BIN"), "-c", str(embedded.config), "--count", "1"],
                                  env=embedded.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        running = web.wait_json("/static/running.json", lambda j: "gedit" in j)
        [by_hash] = running["gedit"].values()
        assert by_hash[embedded.release][ARCH][0]["requester"] == "alice"
        assert worker.wait(timeout=60) == 0
        web.wait_json("/static/running.json", lambda j: "gedit" not in j)
        web.wait_json("/queues.json", lambda j: not j["ubuntu"][embedded.release][ARCH])
        web.wait_json("/api/v1/packages/gedit", lambda j: len(j["latest"]) == 1)
    finally:
        web.stop()


def test_bad_requests_get_clear_answers(embedded):
    web = WebService(embedded).start()
    try:
        code, _, body = web.get("/api/v1/packages/gedit/noble/amd64?limit=many")
        assert code == 400 and b"limit" in body and b"many" in body
        assert web.get("/api/v1/packages/nothere")[0] == 404
        assert web.get("/results/private-autopkgtest-x-y-z")[0] == 404
        assert web.get("/api/v1/packages/%3Cscript%3E")[0] == 400
        code, headers, body = web.get("/metrics")
        assert code == 200 and b"apcloud_http_requests_total" in body
    finally:
        web.stop()


def test_gating_sync_through_the_feed_costs_what_is_new(embedded, tmp_path):
    web = WebService(embedded).start()
    try:
        embedded.run("gedit", ["glib2.0/2.80-1"])
        embedded.run("evince", ["glib2.0/2.80-1"], exitcode=4)
        web.wait_json("/api/v1/recent", lambda j: len(j) == 2)
        cursor = tmp_path / "feed.cursor"
        feed = apcloud.ResultsFeed(web.url, str(cursor))
        first = feed.fetch()
        assert sorted(r.package for r in first) == ["evince", "gedit"]
        assert all(r.container == embedded.container and r.release == embedded.release for r in first)
        # Into britney's state, per package, as record_results wants them.
        cache = apcloud.ResultsCache()
        for r in first:
            apcloud.record_results(cache, r.package, r.arch, [r.result])
        assert cache.get("glib2.0/2.80-1", "gedit", ARCH)[0] == "PASS"
        assert cache.get("glib2.0/2.80-1", "evince", ARCH)[0] == "FAIL"
        # Not committed: a new feed object starts over; committed: it continues.
        assert len(apcloud.ResultsFeed(web.url, str(cursor)).fetch()) == 2
        feed.commit()
        embedded.run("gedit", ["gtk+3.0/3.24-1"])
        web.wait_json("/api/v1/recent", lambda j: len(j) == 3)
        again = apcloud.ResultsFeed(web.url, str(cursor))
        [new] = again.fetch()
        assert new.result.triggers == ["gtk+3.0/3.24-1"]
        assert again.bytes_received < feed.bytes_received
        assert again.fetch() == []
    finally:
        web.stop()
