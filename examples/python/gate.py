#!/usr/bin/python3
"""gate.py: a small gating script in britney's manner, on top of `import apcloud`.

For one trigger (an upload, `SRC/VERSION`) it requests the tests of the given
packages, waits for their results, and prints britney's verdict for each with
links to the log, the package's history and a retry request. It keeps
britney's state (results cache and pending tests) in DATA/gate/, so running it
again only waits for what is still missing.

On the embedded stack of the README (a pool started with `apcloud up --data
DATA`): the broker is sqlite://DATA/queue.db and the results are in
file://DATA/results. Pass --broker/--store for a distributed site (amqp://
requester URL, public Swift storage URL).

Exit status: 0 when the trigger may migrate (no REGRESSION), 1 when a
regression blocks it, 2 when results did not arrive in time, 3 on errors.

Example (the README's example package, tested from its source tree):
  PYTHONPATH=build/bindings/python /usr/bin/python3 examples/python/gate.py \\
      --data apcloud-data --trigger hello-apc/1.0-1 --build-git examples/hello-apc/ hello-apc
"""
import argparse
import os
import subprocess
import sys
import time

import apcloud

# Verdicts that do not block migration (britney: a test that always failed is
# no regression; NEUTRAL means no tests ran).
PASSING = {"PASS", "NEUTRAL", "ALWAYSFAIL"}
# A tmpfail (testbed failure) is no result to britney: its test stays RUNNING.
WAITING = {"RUNNING", "RUNNING-ALWAYSFAIL", "RUNNING-REFERENCE"}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("packages", nargs="+", metavar="PACKAGE", help="source packages whose tests gate the trigger")
    p.add_argument("--trigger", required=True, help="the upload being gated, SRC/VERSION")
    p.add_argument("--data", default="apcloud-data", help="data directory of `apcloud up` (default: %(default)s)")
    p.add_argument("--broker", help="where to send requests (default: sqlite://DATA/queue.db)")
    p.add_argument("--store", help="where results are read (default: file://DATA/results)")
    p.add_argument("--web", default="http://localhost:8080", help="web service base URL for history/retry links")
    p.add_argument("--release", default="unstable")
    p.add_argument("--arch", default=None, help="architecture (default: this machine's)")
    p.add_argument("--ppa", action="append", default=[], help="LPUSER/PPA to test with (repeatable)")
    p.add_argument("--env", action="append", default=[], help="NAME=value for the test (repeatable)")
    p.add_argument("--build-git", help="test this source tree or git URL instead of the archive's package")
    p.add_argument("--timeout", type=float, default=900, help="seconds to wait for results (default: %(default)s)")
    p.add_argument("--reference", action="store_true", help="baseline: the migration-reference/0 results")
    return p.parse_args(argv)


class Gate:
    """britney's autopkgtest policy for one release/arch, state kept in a directory."""

    def __init__(self, args):
        self.args = args
        data = os.path.abspath(args.data)
        self.arch = args.arch or subprocess.run(["dpkg", "--print-architecture"], check=True,
                                                capture_output=True, text=True).stdout.strip()
        state = os.path.join(data, "gate")
        os.makedirs(state, exist_ok=True)
        self.store_url = args.store or "file://" + os.path.join(data, "results")
        self.store = apcloud.open_store(self.store_url)  # one store: its connections are kept alive
        self.sink = apcloud.open_sink(args.broker or "sqlite://" + os.path.join(data, "queue.db"),
                                      declare_queues=not args.broker,
                                      allow_local_sources=bool(args.build_git and "://" not in args.build_git))
        self.container = apcloud.container_name(args.release, args.ppa, False)
        self.cache_path = os.path.join(state, "results.cache")
        self.pending_path = os.path.join(state, "pending.json")
        self.cache = apcloud.ResultsCache.load(self.cache_path)
        self.pending = apcloud.PendingTests.load(self.pending_path)

    def save(self):
        self.cache.save(self.cache_path)
        self.pending.save(self.pending_path)

    def collect(self, package):
        """New results of `package` since the cache's marker, fed into cache and pending."""
        try:
            results = apcloud.iter_results(self.store, self.container, self.args.release, self.arch, package,
                                           after=self.cache.latest_run_id(package, self.arch))
        except apcloud.NotFound:  # no run of this release has been stored yet
            return
        apcloud.record_results(self.cache, package, self.arch, results, self.pending)

    def verdict(self, package):
        return apcloud.decide(self.cache, self.args.trigger, package, self.arch,
                              pending=self.pending.contains(self.args.trigger, package, self.arch),
                              reference=self.args.reference)

    def request(self, package):
        """Sends the test request unless a result is cached or the test is pending already."""
        trigger = self.args.trigger
        if self.cache.get(trigger, package, self.arch) or self.pending.contains(trigger, package, self.arch):
            return
        request = apcloud.TestRequest(package, triggers=[trigger], ppas=self.args.ppa, env=self.args.env,
                                      build_git=self.args.build_git and self._source(self.args.build_git),
                                      requester=os.environ.get("USER", "gate"))
        queue = self.sink.send(request, self.args.release, self.arch)
        self.pending.add(trigger, package, self.arch)
        self.save()  # never lose track of a request that was sent
        print(f"requested {package} on {self.args.release}/{self.arch} for {trigger} (queue {queue})")

    @staticmethod
    def _source(build_git):
        # A local tree is sent as an absolute path ending in '/', as autopkgtest wants for a directory.
        if "://" in build_git or not os.path.isdir(build_git):
            return build_git
        return os.path.abspath(build_git).rstrip("/") + "/"

    def report(self, package):
        verdict = self.verdict(package)
        entry = self.cache.get(self.args.trigger, package, self.arch)
        links = apcloud.result_links(self.store_url, self.args.web, self.container, self.args.release, self.arch,
                                     package, entry[2] if entry else "", [self.args.trigger], self.args.ppa)
        print(f"{package} {self.args.release}/{self.arch}: {verdict}"
              + (f" (version {entry[1]}, run {entry[2]})" if entry else ""))
        if links.log:
            print(f"  log:     {links.log}")
        print(f"  history: {links.history}")
        print(f"  retry:   {links.retry}")
        return verdict


def main(argv):
    args = parse_args(argv)
    try:
        gate = Gate(args)
        for package in args.packages:
            gate.collect(package)
            gate.request(package)
        deadline = time.monotonic() + args.timeout
        while True:
            for package in args.packages:
                gate.collect(package)
            gate.save()
            verdicts = {p: gate.verdict(p) for p in args.packages}
            if not WAITING & set(verdicts.values()) or time.monotonic() > deadline:
                break
            time.sleep(2)
        print()
        verdicts = {p: gate.report(p) for p in args.packages}
    except apcloud.Error as e:
        print(f"gate.py: {e}", file=sys.stderr)
        return 3
    if WAITING & set(verdicts.values()):
        print(f"{args.trigger}: results still missing after {args.timeout:.0f} s; run again to keep waiting")
        return 2
    if set(verdicts.values()) <= PASSING:
        print(f"{args.trigger}: may migrate")
        return 0
    print(f"{args.trigger}: blocked by " + ", ".join(p for p, v in verdicts.items() if v not in PASSING))
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
