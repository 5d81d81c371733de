"""The web service (autopkgtest-cloud-web, APCLOUD_WEB_BIN) run beside a gating_site.Site.

The service reads the same broker and store as the site's worker: on the
embedded stack the SQLite broker and the directory store, on the real servers
RabbitMQ (the worker account, which may bind and consume) and Swift (with
credentials, to list every container). Requests are answered over HTTP on a
free port of 127.0.0.1.
"""
import json
import os
import pathlib
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

from gating_site import ARCH, need

TOP = pathlib.Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebService:
    """One replica of the web service, with its own data directory and event queue."""

    def __init__(self, site, name="web", backfill_interval=3600, extra=""):
        self.site = site
        self.name = name
        self.port = free_port()
        self.data = site.root / f"web-{name}"
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = site.root / f"web-{name}.conf"
        swift = ""
        if site.kind != "embedded":
            swift = f"username = {need('APCLOUD_SWIFT_USER')}\npassword = {need('APCLOUD_SWIFT_KEY')}\n"
        self.config.write_text(
            f"[web]\nlisten = 127.0.0.1\nport = {self.port}\ndata_dir = {self.data}\nname = {name}\n"
            f"releases = {site.release}\narchitectures = {ARCH}\nshare_dir = {TOP / 'web'}\n"
            f"publish_interval = 1\nqueue_interval = 1\nstatistics_interval = 1\nstatus_interval = 1\n"
            f"backfill_interval = {backfill_interval}\n{extra}"
            f"[amqp]\nurl = {site.broker_url}\n[swift]\nurl = {site.store_url}\n{swift}")
        self.proc = None

    def start(self):
        self.log = open(self.site.root / f"web-{self.name}.log", "ab")
        self.proc = subprocess.Popen([need("APCLOUD_WEB_BIN"), "-c", str(self.config)], env=self.site.env,
                                     stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.get("/api/v1/packages")
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("the web service did not start:\n" + self.log_text())
                time.sleep(0.1)

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)
        self.log.close()
        return self.proc.returncode

    def log_text(self):
        return (self.site.root / f"web-{self.name}.log").read_text(errors="replace")[-4000:]

    def get(self, path, headers=None):
        """(status, headers, body) of a GET; errors are answers too."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        request = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with opener.open(request, timeout=30) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def json(self, path, status=200):
        code, _, body = self.get(path)
        assert code == status, (path, code, body[:500])
        return json.loads(body)

    def wait_json(self, path, predicate, timeout=20):
        """The JSON of path once predicate(json) holds."""
        deadline = time.monotonic() + timeout
        while True:
            code, _, body = self.get(path)
            value = json.loads(body) if code == 200 else None
            if value is not None and predicate(value):
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: condition not met in {timeout} s; last answer {code} {body[:300]!r}\n"
                                     + self.log_text())
            time.sleep(0.1)
