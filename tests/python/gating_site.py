"""A gating test site: requests sent through apcloud.open_sink, run by the real worker program.

The worker (autopkgtest-cloud-worker, APCLOUD_WORKER_BIN) runs each request
with the stand-in autopkgtest of tests/data/fake-autopkgtest (exit code and
tested version chosen per run), packs and uploads the results; britney's side
collects them with apcloud.iter_results, feeds them into its state with
apcloud.record_results and asks apcloud.decide for the verdict.

Two kinds: "embedded" (SQLite broker, directory store) and "swift" (the real
RabbitMQ with the requester account for sending, the real Swift read
anonymously through its public storage URL, as britney reads it). The swift
kind needs the env of scripts/servers-up (scripts/run-tests provides it);
without it the tests fail, they are never skipped.
"""
import itertools
import os
import pathlib
import subprocess
import time
import urllib.request

import pytest

import apcloud

ARCH = "amd64"
_counter = itertools.count()


def need(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: start the servers with scripts/servers-up DIR and source DIR/env "
                    "(scripts/run-tests does both)")
    return value


class Site:
    """One deployment: a broker, a store, a worker configuration and britney's state."""

    def __init__(self, kind, root):
        self.kind = kind
        self.root = root
        # A release of its own, so queues and containers of other tests never mix in.
        self.release = f"g{os.getpid()}x{next(_counter)}"
        self.container = f"autopkgtest-{self.release}"
        (root / "fake").mkdir()
        (root / "lists").mkdir()
        (root / "work").mkdir()
        self.env = dict(os.environ, FAKE_ADT_DIR=str(root / "fake"))
        if kind == "embedded":
            broker = f"sqlite://{root}/queue.db"
            self.sink_url = broker
            store = f"file://{root}/results"
            self.read_url = store
        else:
            broker = need("APCLOUD_AMQP_URL")
            self.sink_url = need("APCLOUD_AMQP_REQUESTER_URL")
            store = "swift+" + need("APCLOUD_SWIFT_AUTH_URL")
            need("APCLOUD_SWIFT_USER")
            need("APCLOUD_SWIFT_KEY")
            self.read_url = need("APCLOUD_SWIFT_STORAGE_URL")
        self.broker_url, self.store_url = broker, store
        data = pathlib.Path(need("APCLOUD_TEST_DATA"))
        self.config = root / "worker.conf"
        self.config.write_text(
            f"[amqp]\nurl = {broker}\n[swift]\nurl = {store}\n"
            f"[autopkgtest]\nreleases = {self.release}\narchitectures = {ARCH}\n"
            f"checkout_dir = {data / 'fake-autopkgtest'}\nper_package_config_dir = {root / 'lists'}\n"
            f"work_dir = {root / 'work'}\nstatus_interval = 1\ntestbed_failure_retries = 0\n"
            "upload_backoff = 1\n[virt]\nargs = null\n")
        self.sink = apcloud.open_sink(self.sink_url)
        self.cache = apcloud.ResultsCache()
        self.pending = apcloud.PendingTests()
        self._last_end = 0.0

    def run(self, package, triggers=(), exitcode=0, version="1.0-1", ppas=(), huge=False):
        """Requests one test as britney does (marking it pending), lets the worker run it; returns the queue."""
        (self.root / "fake" / "exit").write_text(f"{exitcode}\n")
        (self.root / "fake" / "version").write_text(version + "\n")
        # Run ids have a resolution of one second: start each run in a new
        # second so that later runs sort after earlier ones, as in production.
        # (The second after the previous run ended: its id's second is the
        # one the worker took it in, after run() started it.)
        wait = int(self._last_end) + 1 - time.time()
        if wait > 0:
            time.sleep(wait)
        log = open(self.root / "worker.log", "ab")
        worker = subprocess.Popen([need("APCLOUD_WORKER_BIN"), "-c", str(self.config), "--count", "1"],
                                  env=self.env, stdout=log, stderr=log)
        try:
            request = apcloud.TestRequest(package, triggers=list(triggers), ppas=list(ppas),
                                          submit_time=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()))
            queue = self._send(request, huge)
            for trigger in triggers:
                self.pending.add(trigger, package, ARCH)
            assert worker.wait(timeout=120) == 0, (self.root / "worker.log").read_text()[-3000:]
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            log.close()
            self._last_end = time.time()
        return queue

    def _send(self, request, huge):
        # The worker declares its queues when it starts; until then a send is NotFound.
        deadline = time.monotonic() + 30
        while True:
            try:
                return self.sink.send(request, self.release, ARCH, huge)
            except apcloud.NotFound:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def collect(self, package, container=None):
        """britney's collection step: new results since the cache's marker, into cache and pending."""
        results = apcloud.iter_results(self.read_url, container or self.container, self.release, ARCH, package,
                                       after=self.cache.latest_run_id(package, ARCH))
        apcloud.record_results(self.cache, package, ARCH, results, self.pending)
        return results

    def verdict(self, trigger, package, reference=False):
        return apcloud.decide(self.cache, trigger, package, ARCH,
                              pending=self.pending.contains(trigger, package, ARCH), reference=reference)

    def links(self, trigger, package, container=None, ppas=()):
        entry = self.cache.get(trigger, package, ARCH)
        return apcloud.result_links(self.read_url, "https://autopkgtest.example.org", container or self.container,
                                    self.release, ARCH, package, entry[2] if entry else "", [trigger], list(ppas))

    def fetch(self, url):
        """The bytes behind a log link, read as a browser would (anonymously)."""
        if url.startswith("file://"):
            return pathlib.Path(url[len("file://"):]).read_bytes()
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=30) as r:
            assert r.headers.get("Content-Encoding") == "gzip"
            return r.read()
