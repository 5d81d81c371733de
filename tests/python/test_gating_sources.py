"""Where gating code reads results from: a downloaded autopkgtest.db, and Swift through a faulty network.

Results are made by the real worker path (gating_site.Site). The results
database is written with autopkgtest-web's schema (SPEC.md section 6) from
those results, as the web service's indexer would, and its checksum with the
real sha256sum. The network faults (502, 503, answers slower than the client's
timeout) come from a small proxy in front of the real Swift and the HTTP
server that publishes the database: they cannot be provoked in the real
servers on demand.
"""
import hashlib
import http.client
import http.server
import os
import sqlite3
import subprocess
import threading
import time
import urllib.parse

import pytest

import apcloud
from gating_site import ARCH, Site

SCHEMA = """
CREATE TABLE test (id INTEGER PRIMARY KEY, release CHAR[20], arch CHAR[20], package CHAR[120]);
CREATE TABLE result (test_id INTEGER, run_id CHAR[30], version VARCHAR[200], triggers TEXT,
    duration INTEGER, exitcode INTEGER, requester TEXT, env TEXT, uuid TEXT UNIQUE,
    PRIMARY KEY(test_id, run_id));
"""

FIELDS = ("run_id", "exitcode", "outcome", "version", "triggers", "duration")


def _fields(results):
    return [tuple(getattr(r, f) for f in FIELDS) for r in results]


def _write_db(path, release, rows):
    """An autopkgtest.db (WAL, SPEC schema) from (arch, package, GatingResult) rows, plus its .sha256."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA)
    ids = {}
    for arch, package, r in rows:
        if (arch, package) not in ids:
            ids[arch, package] = db.execute("INSERT INTO test (release, arch, package) VALUES (?, ?, ?)",
                                            (release, arch, package)).lastrowid
        db.execute("INSERT INTO result VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (ids[arch, package], r.run_id, r.version, " ".join(r.triggers or []), r.duration, r.exitcode,
                    "britney", "", f"{arch}-{package}-{r.run_id}"))
    db.commit()
    db.close()
    _write_sha256(path)


def _write_sha256(path):
    out = subprocess.run(["sha256sum", os.path.basename(path)], cwd=os.path.dirname(path), check=True,
                         capture_output=True, text=True).stdout
    with open(path + ".sha256", "w") as f:
        f.write(out)


@pytest.fixture
def embedded(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    return Site("embedded", root)


def _three_gedit_runs(site):
    site.run("gedit", ["gtk+3.0/3.24-1"])
    site.run("gedit", ["glib2.0/2.80-1"], exitcode=4)
    site.run("gedit", [])
    site.run("libpeas", ["glib2.0/2.80-1"])
    return apcloud.iter_results(site.read_url, site.container, site.release, ARCH, "gedit")


def test_db_results_are_the_store_results(embedded, tmp_path):
    site = embedded
    store_results = _three_gedit_runs(site)
    assert len(store_results) == 3 and store_results[2].triggers is None
    peas = apcloud.iter_results(site.read_url, site.container, site.release, ARCH, "libpeas")
    db = str(tmp_path / "autopkgtest.db")
    _write_db(db, site.release, [(ARCH, "gedit", r) for r in store_results] +
              [(ARCH, "libpeas", r) for r in peas] + [("arm64", "gedit", store_results[0])])

    from_db = apcloud.iter_db_results(db, site.release, ARCH, "gedit", sha256=db + ".sha256")
    assert _fields(from_db) == _fields(store_results)
    later = apcloud.iter_db_results(db, site.release, ARCH, "gedit", after=store_results[0].run_id)
    assert _fields(later) == _fields(store_results[1:])
    assert apcloud.iter_db_results(db, site.release, ARCH, "nothing") == []
    assert apcloud.iter_db_results(db, "otherrelease", ARCH, "gedit") == []

    # Gating from either source gives the same state and verdicts.
    via_store, via_db = apcloud.ResultsCache(), apcloud.ResultsCache()
    apcloud.record_results(via_store, "gedit", ARCH, store_results)
    apcloud.record_results(via_db, "gedit", ARCH, from_db)
    for trigger in ("gtk+3.0/3.24-1", "glib2.0/2.80-1"):
        assert via_db.get(trigger, "gedit", ARCH) == via_store.get(trigger, "gedit", ARCH)
    assert apcloud.decide(via_db, "glib2.0/2.80-1", "gedit", ARCH) == "REGRESSION"
    assert via_db.latest_run_id("gedit", ARCH) == store_results[1].run_id
    # Reading never writes beside the file (no -wal/-shm left behind).
    assert sorted(os.listdir(tmp_path)) == ["autopkgtest.db", "autopkgtest.db.sha256", "site"]


def test_db_checksum_and_bad_files(tmp_path):
    db = str(tmp_path / "autopkgtest.db")
    _write_db(db, "noble", [])
    apcloud.verify_results_db(db, db + ".sha256")
    good_sum = open(db + ".sha256").read()
    with open(db, "ab") as f:
        f.write(b"\0")
    with pytest.raises(apcloud.IntegrityError, match="autopkgtest.db.sha256"):
        apcloud.iter_db_results(db, "noble", ARCH, "gedit", sha256=db + ".sha256")
    with open(db + ".sha256", "w") as f:
        f.write("not-a-digest  autopkgtest.db\n")
    with pytest.raises(apcloud.ParseError, match="not-a-digest"):
        apcloud.verify_results_db(db, db + ".sha256")
    with open(db + ".sha256", "w") as f:
        f.write(hashlib.sha256(open(db, "rb").read()).hexdigest().upper())  # a bare digest is fine too
    apcloud.verify_results_db(db, db + ".sha256")
    with open(db + ".sha256", "w") as f:
        f.write(good_sum)
    with pytest.raises(apcloud.IntegrityError, match=good_sum.split()[0]):
        apcloud.verify_results_db(db, db + ".sha256")
    with pytest.raises(apcloud.NotFound, match="missing.db"):
        apcloud.iter_db_results(str(tmp_path / "missing.db"), "noble", ARCH, "gedit")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(apcloud.ParseError, match="junk.db"):
        apcloud.iter_db_results(str(junk), "noble", ARCH, "gedit")


class _Faults:
    """Per-path fault plans: a list of 502, 503 or 'slow' served before the real answer."""

    def __init__(self, plan):
        self.plan = plan
        self.seen = {}
        self.injected = 0
        self.lock = threading.Lock()

    def next_fault(self, path):
        with self.lock:
            n = self.seen.get(path, 0)
            self.seen[path] = n + 1
            if n < len(self.plan):
                self.injected += 1
                return self.plan[n]
            return None


def _serve(handler_class):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _FaultyHandler(http.server.BaseHTTPRequestHandler):
    """Answers GETs with the planned faults first, then with `answer(path)` -> (status, headers, body)."""

    protocol_version = "HTTP/1.1"
    faults = None
    answer = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        fault = self.faults.next_fault(self.path)
        if fault == "slow":
            time.sleep(2)  # longer than the client's timeout: it gives up and retries
            self.close_connection = True
            return
        if fault is not None:
            self._reply(fault, {}, b"injected fault")
            return
        status, headers, body = type(self).answer(self.path)
        self._reply(status, headers, body)

    def _reply(self, status, headers, body):
        try:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True


def _proxy_to(storage_url, faults):
    """A proxy in front of the real Swift (same paths) that injects `faults`."""
    target = urllib.parse.urlsplit(storage_url)

    def answer(path):
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            keep = {k: v for k, v in r.getheaders() if k.lower() in ("content-type", "content-encoding", "etag")}
            return r.status, keep, body
        finally:
            conn.close()

    handler = type("Proxy", (_FaultyHandler,), {"faults": faults, "answer": staticmethod(answer)})
    return _serve(handler)


def test_swift_reads_survive_502_503_and_timeouts(tmp_path):
    site = Site("swift", tmp_path)
    for code in (0, 4, 0):
        site.run("gedit", ["glib2.0/2.80-1"], exitcode=code)
    direct = apcloud.iter_results(site.read_url, site.container, site.release, ARCH, "gedit")
    assert len(direct) == 3

    faults = _Faults([502, 503, "slow"])
    proxy = _proxy_to(site.read_url, faults)
    try:
        base = f"http://127.0.0.1:{proxy.server_address[1]}" + urllib.parse.urlsplit(site.read_url).path
        store = apcloud.open_store(f"{base}?timeout=0.5&backoff=0.01&retries=4")
        through = apcloud.iter_results(store, site.container, site.release, ARCH, "gedit")
        assert _fields(through) == _fields(direct)
        assert faults.injected >= 4 * 3  # the listing and each result.tar got all three faults

        # Without retries the first fault is an error, not an empty or partial answer.
        faults.plan, faults.seen = [503], {}
        with pytest.raises(apcloud.Error, match="503"):
            apcloud.iter_results(apcloud.open_store(f"{base}?retries=0"), site.container, site.release, ARCH,
                                 "gedit")
    finally:
        proxy.shutdown()


def _publisher(directory, faults):
    """An HTTP server publishing the files of `directory`, with `faults` first."""

    def answer(path):
        file = os.path.join(directory, os.path.basename(urllib.parse.urlsplit(path).path))
        if not os.path.isfile(file):
            return 404, {}, b"not found"
        with open(file, "rb") as f:
            return 200, {"Content-Type": "application/octet-stream"}, f.read()

    handler = type("Publisher", (_FaultyHandler,), {"faults": faults, "answer": staticmethod(answer)})
    return _serve(handler)


def test_download_results_db(embedded, tmp_path):
    site = embedded
    results = _three_gedit_runs(site)
    published = tmp_path / "published"
    published.mkdir()
    _write_db(str(published / "autopkgtest.db"), site.release, [(ARCH, "gedit", r) for r in results])

    faults = _Faults([503, 502])
    server = _publisher(str(published), faults)
    url = f"http://127.0.0.1:{server.server_address[1]}/static/autopkgtest.db"
    local = str(tmp_path / "autopkgtest.db")
    try:
        apcloud.download_results_db(url, local, backoff=0.01)
        assert faults.injected == 4  # two faults for the database, two for its checksum
        assert open(local, "rb").read() == (published / "autopkgtest.db").read_bytes()
        from_db = apcloud.iter_db_results(local, site.release, ARCH, "gedit", sha256=local + ".sha256")
        assert _fields(from_db) == _fields(results)

        # A database that does not match its checksum is refused and the verified copy stays.
        with open(published / "autopkgtest.db", "ab") as f:
            f.write(b"\0")
        before = open(local, "rb").read()
        with pytest.raises(apcloud.IntegrityError):
            apcloud.download_results_db(url, local, backoff=0.01)
        assert open(local, "rb").read() == before
        assert not os.path.exists(local + ".new") and not os.path.exists(local + ".sha256.new")

        with pytest.raises(apcloud.NotFound, match="404"):
            apcloud.download_results_db(url.replace("autopkgtest.db", "nothing.db"), local, backoff=0.01)
        faults.plan, faults.seen = [503] * 10, {}
        with pytest.raises(apcloud.HttpError, match="503"):
            apcloud.download_results_db(url, local, retries=2, backoff=0.01)
    finally:
        server.shutdown()

    _write_sha256(str(published / "autopkgtest.db"))
    apcloud.download_results_db("file://" + str(published / "autopkgtest.db"), local)
    apcloud.verify_results_db(local, local + ".sha256")
    with pytest.raises(apcloud.ConfigError, match="ftp"):
        apcloud.download_results_db("ftp://host/autopkgtest.db", local)
