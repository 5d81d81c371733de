#!/usr/bin/python3
"""bench_gating.py: collecting 10k new results for 500 packages from a real Swift, as gating code does.

Usage (Debian's /usr/bin/python3, with the module from a build tree):

    scripts/swift-start DIR && set -a && . DIR/env && set +a
    PYTHONPATH=build/bindings/python /usr/bin/python3 bench/bench_gating.py \
        [--packages 500] [--runs-per-package 20] [--concurrency 8,16] [--wrk-seconds 10] [--no-python]

Environment (from scripts/swift-start): APCLOUD_SWIFT_AUTH_URL,
APCLOUD_SWIFT_USER and APCLOUD_SWIFT_KEY (setup only, read by open_store) and
APCLOUD_SWIFT_STORAGE_URL (the public storage URL, http://host:port/v1/AUTH_x).
Needs /usr/bin/wrk (Debian package wrk).

Setup (not timed; skipped when the container already holds every object):
PACKAGES x RUNS real result.tar files of about 10 kB, packed by
apcloud.pack_results, in the real layout
noble/amd64/<prefix>/<pkg>/<run_id>/result.tar of a public container,
uploaded concurrently with the authenticated store.

Timed, all anonymous on the public storage URL, like a gating client:
  (a) ours: apcloud.iter_results for every package from a thread pool (one
      run per --concurrency value), each result added to an
      apcloud.ResultsCache by apcloud.record_results (britney's rules);
  (b) britney's way: a sequential urllib + tarfile loop (delimiter listing
      per package following markers, then GET and parse each result.tar);
  (c) the server's raw concurrent GET rate: wrk -t2 -c<largest concurrency>
      rotating over the same result.tar paths, before and after (a); the raw
      rate is their mean.
Both collectors are checked (count, run ids, exit codes, versions, triggers).
Prints results/s of each and the ratios ours/raw (goal >= 0.80) and
ours/python. Exit status: 0 when it ran (a missed goal is reported, not an
error), 1 on errors, 2 on bad usage, 77 without a Swift.
"""

import argparse
import concurrent.futures
import functools
import io
import json
import os
import random
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass

try:
    import apcloud
except ImportError as e:
    sys.exit(f"bench-gating: cannot import apcloud ({e}); run with PYTHONPATH=BUILD/bindings/python /usr/bin/python3")

RELEASE = "noble"
ARCH = "amd64"
VERSION = "1.0-1"
GLIBC_TRIGGER = "glibc/2.40-1"
BASE_TIME = 1700000000  # run times: one day apart per run, one second apart per package
WRK = "/usr/bin/wrk"
# The padding that fills result.tar to one 10240-byte tar record, the size of
# real ones: 6 members of up to 512 bytes (headers and data) and the end blocks
# leave 3584 bytes for testbed-packages' data.
TESTBED_PACKAGES_BYTES = 3584


class BenchError(Exception):
    """A failed check or a failed tool: the bench exits 1 with its message."""


@dataclass(frozen=True)
class Run:
    """One stored run: what a collector must find for it."""

    package: str
    run_id: str
    exitcode: int

    @property
    def name(self):
        """The result.tar object name."""
        return apcloud.result_dir(RELEASE, ARCH, self.package, self.run_id) + "/result.tar"


def log(msg):
    """Progress and diagnostics go to stderr; the report goes to stdout."""
    print(f"bench-gating: {msg}", file=sys.stderr, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench_gating.py", description=__doc__.splitlines()[0])
    p.add_argument("--packages", type=int, default=500, help="source packages (500)")
    p.add_argument("--runs-per-package", type=int, default=20, help="runs of each package (20)")
    p.add_argument("--concurrency", default="8,16",
                   help="comma-separated thread counts for ours; wrk uses the largest as -c (8,16)")
    p.add_argument("--wrk-seconds", type=int, default=10, help="duration of each wrk run (10)")
    p.add_argument("--no-python", action="store_true", help="skip the sequential urllib + tarfile loop")
    args = p.parse_args(argv)
    try:
        args.concurrency = [int(c) for c in args.concurrency.split(",")]
    except ValueError:
        p.error(f"--concurrency: not a comma-separated list of numbers: {args.concurrency!r}")
    if min(args.concurrency) < 1 or args.packages < 1 or args.runs_per_package < 1 or args.wrk_seconds < 1:
        p.error("--packages, --runs-per-package, --concurrency and --wrk-seconds must be positive")
    return args


# ---- the data set ----

def package_names(n):
    """n distinct source package names shaped like the archive's (a third lib*)."""
    rng = random.Random(7)
    letters = "abcdefghijklmnopqrstuvwxyz"
    names = []
    seen = set()
    while len(names) < n:
        name = ("lib" if rng.random() < 1 / 3 else "") + "".join(rng.choice(letters) for _ in range(rng.randint(3, 11)))
        if rng.random() < 0.25:
            name += f"-{rng.randint(0, 9)}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def expected_triggers(package):
    return [f"{package}/{VERSION}", GLIBC_TRIGGER]


def exitcode_of(run_index):
    """Mostly passes, some failures (4) and some skips (2), like a real archive."""
    return {3: 2, 7: 4}.get(run_index % 10, 0)


def make_layout(packages, runs):
    """{package: [Run, ...] in run-id order}."""
    layout = {}
    for p, pkg in enumerate(packages):
        pkg_runs = []
        for r in range(runs):
            body = f'{pkg}\n{{"triggers": ["{pkg}/{VERSION}", "{GLIBC_TRIGGER}"]}}'
            run_id = apcloud.make_run_id(BASE_TIME + r * 86400 + p, body)
            pkg_runs.append(Run(pkg, run_id, exitcode_of(r)))
        layout[pkg] = sorted(pkg_runs, key=lambda run: run.run_id)
    return layout


def testbed_packages(max_bytes):
    """A dpkg-query style package list of at most max_bytes."""
    lines, size = [], 0
    for i in range(max_bytes):
        line = f"package-{i}\t1.2.3-4ubuntu{i}\n"
        if size + len(line) > max_bytes:
            break
        lines.append(line)
        size += len(line)
    return "".join(lines)


def write_output_dir(path, package, exitcode):
    """An autopkgtest output directory as a real run leaves it (~10 kB packed)."""
    os.makedirs(path, exist_ok=True)
    testinfo = {
        "virt_server": "autopkgtest-virt-ssh --timeout-ssh 300 --capabilities isolation-machine",
        "nproc": "4",
        "cpu_model": "AMD EPYC-Rome Processor",
        "cpu_flags": "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat",
        "kernel_version": "Linux version 6.8.0-31-generic (buildd@lcy02-amd64-080)",
        "custom_environment": ["ADT_TEST_TRIGGERS=" + " ".join(expected_triggers(package))],
    }
    status = {0: "PASS", 2: "SKIP", 4: "FAIL non-zero exit status 1"}[exitcode]
    files = {
        "testpkg-version": f"{package} {VERSION}\n",
        "testinfo.json": json.dumps(testinfo),
        "summary": f"command1             {status}\n",
        "testbed-packages": testbed_packages(TESTBED_PACKAGES_BYTES),
        "log": "autopkgtest: starting\n",
    }
    for name, text in files.items():
        with open(os.path.join(path, name), "w") as f:
            f.write(text)


def make_result_tars(packages, exitcodes):
    """{(package, exitcode): result.tar bytes} packed by apcloud.pack_results."""
    tars = {}
    with tempfile.TemporaryDirectory(prefix="bench-gating.") as scratch:
        for pkg in packages:
            for code in exitcodes:
                out = os.path.join(scratch, f"{pkg}.{code}")
                write_output_dir(out, pkg, code)
                tars[pkg, code] = apcloud.pack_results(out, code, 42, package=pkg, mtime=BASE_TIME)["result.tar"]
    return tars


# ---- setup ----

def list_all(store, container, prefix):
    """Every object name under prefix, following marker pages."""
    names, marker = [], ""
    while True:
        page = store.list(container, prefix=prefix, marker=marker)
        if not page:
            return names
        names.extend(page)
        marker = page[-1]


def setup(auth_url, container, layout):
    """Stores every missing result.tar (concurrently); a no-op on a rerun."""
    writer = apcloud.open_store("swift+" + auth_url)
    writer.ensure_container(container, public=True)
    present = set(list_all(writer, container, f"{RELEASE}/{ARCH}/"))
    missing = [run for runs in layout.values() for run in runs if run.name not in present]
    if not missing:
        return
    log(f"setup: uploading {len(missing)} result.tar (once per Swift)...")
    start = time.monotonic()
    tars = make_result_tars(sorted({r.package for r in missing}), sorted({r.exitcode for r in missing}))

    def put(run):
        writer.put(container, run.name, tars[run.package, run.exitcode], content_type="application/x-tar")

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        for _ in pool.map(put, missing):
            pass
    log(f"setup took {time.monotonic() - start:.1f} s")


# ---- checks ----

def check_collected(what, layout, collected):
    """collected: {package: [(run_id, exitcode, version, triggers), ...]}; raises BenchError on a mismatch."""
    total = sum(len(v) for v in collected.values())
    expected_total = sum(len(v) for v in layout.values())
    if total != expected_total:
        raise BenchError(f"{what} collected {total} results, expected {expected_total}")
    for pkg, runs in layout.items():
        want = [(r.run_id, r.exitcode, VERSION, expected_triggers(pkg)) for r in runs]
        got = [(run_id, code, version, list(triggers or []))
               for run_id, code, version, triggers in collected.get(pkg, [])]
        if got != want:
            raise BenchError(f"{what}: results of {pkg} differ from what was stored: {got[:2]}... vs {want[:2]}...")


def check_cache(cache, layout):
    """Every package has an entry under each of its triggers, latest run included."""
    for pkg, runs in layout.items():
        for trigger in expected_triggers(pkg):
            if cache.get(trigger, pkg, ARCH) is None:
                raise BenchError(f"ours: the ResultsCache has no entry for {trigger} {pkg}/{ARCH}")
        if cache.latest_run_id(pkg, ARCH) != runs[-1].run_id:
            raise BenchError(f"ours: the ResultsCache's latest run of {pkg} is "
                             f"{cache.latest_run_id(pkg, ARCH)}, expected {runs[-1].run_id}")


def cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


# ---- (a) ours ----

def collect_ours(store, container, packages, threads):
    """iter_results for every package from a thread pool, each result into a ResultsCache.

    Returns ({package: [(run_id, exitcode, version, triggers)]}, cache, seconds, client CPU seconds).
    """
    cache = apcloud.ResultsCache()
    collected = {}
    cpu0, start = cpu_seconds(), time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        fetch = functools.partial(apcloud.iter_results, store, container, RELEASE, ARCH)
        for pkg, results in zip(packages, pool.map(fetch, packages)):
            apcloud.record_results(cache, pkg, ARCH, results)
            collected[pkg] = [(r.run_id, r.exitcode, r.version, r.triggers) for r in results]
    return collected, cache, time.monotonic() - start, cpu_seconds() - cpu0


# ---- (b) britney's way: sequential urllib + tarfile ----

def list_run_dirs(opener, base, prefix):
    """The run directories (subdirs ending with '@') under prefix, following marker pages."""
    dirs, marker = [], ""
    while True:
        query = urllib.parse.urlencode({"prefix": prefix, "delimiter": "@", "format": "json", "marker": marker})
        with opener.open(f"{base}?{query}", timeout=30) as r:
            page = json.load(r) if r.status == 200 else []
        if not page:
            return dirs
        dirs.extend(e["subdir"] for e in page if "subdir" in e)
        marker = page[-1].get("subdir") or page[-1]["name"]


def parse_result(data):
    """(exitcode, version, triggers) from result.tar bytes, with tarfile."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        def member(name):
            return tar.extractfile(name).read().decode()
        exitcode = int(member("exitcode").strip())
        version = member("testpkg-version").split()[1]
        env = json.loads(member("testinfo.json")).get("custom_environment", [])
    triggers = None
    for entry in env:
        if entry.startswith("ADT_TEST_TRIGGERS="):
            triggers = entry.split("=", 1)[1].split()
    return exitcode, version, triggers


def collect_python(storage_url, container, packages):
    """The sequential loop; returns ({package: [(run_id, exitcode, version, triggers)]}, seconds)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    base = storage_url + "/" + urllib.parse.quote(container)
    collected = {}
    start = time.monotonic()
    for pkg in packages:
        prefix = apcloud.package_prefix(RELEASE, ARCH, pkg)
        runs = []
        for run_dir in list_run_dirs(opener, base, prefix):
            url = base + "/" + urllib.parse.quote(run_dir + "/result.tar")
            with opener.open(url, timeout=30) as r:
                runs.append((run_dir[len(prefix):],) + parse_result(r.read()))
        collected[pkg] = runs
    return collected, time.monotonic() - start


# ---- (c) the server's raw rate: wrk ----

def wrk_script(path_prefix, container, names):
    """Lua for wrk: every thread starts at a random path and GETs them all in turn."""
    paths = ",\n".join(f'  "{path_prefix}/{urllib.parse.quote(container)}/{urllib.parse.quote(n)}"' for n in names)
    return ("-- generated by bench_gating.py: GET every result.tar path in turn\n"
            f"paths = {{\n{paths}\n}}\n"
            "i = 0\n"
            "function init(args) i = math.random(#paths) end\n"
            "function request()\n  i = i % #paths + 1\n  return wrk.format(\"GET\", paths[i])\nend\n")


def run_wrk(storage_url, container, names, connections, seconds):
    """wrk's Requests/sec over the paths; raises BenchError on Non-2xx answers or a failed wrk."""
    url = urllib.parse.urlsplit(storage_url)
    with tempfile.TemporaryDirectory(prefix="bench-gating-wrk.") as tmp:
        lua = os.path.join(tmp, "rotate.lua")
        with open(lua, "w") as f:
            f.write(wrk_script(url.path.rstrip("/"), container, names))
        argv = [WRK, "-t2", f"-c{connections}", f"-d{seconds}s", "-s", lua, f"{url.scheme}://{url.netloc}"]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise BenchError(f"{WRK}: {e}") from e
    if proc.returncode != 0:
        raise BenchError(f"{WRK} exited {proc.returncode}: {proc.stderr.strip()}")
    if "Non-2xx" in proc.stdout:
        raise BenchError(f"wrk saw error responses:\n{proc.stdout}")
    if "Socket errors" in proc.stdout:
        log("wrk: " + next(line.strip() for line in proc.stdout.splitlines() if "Socket errors" in line))
    for line in proc.stdout.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise BenchError(f"no Requests/sec in wrk's output:\n{proc.stdout}")


# ---- main ----

def swift_env():
    """(auth URL, public storage URL) from the environment, or exit 77 (skip)."""
    auth = os.environ.get("APCLOUD_SWIFT_AUTH_URL", "")
    storage = os.environ.get("APCLOUD_SWIFT_STORAGE_URL", "")
    if not auth or not storage or not os.environ.get("APCLOUD_SWIFT_USER"):
        log("needs a Swift: scripts/swift-start DIR, then set -a; . DIR/env; set +a")
        sys.exit(77)
    return auth, storage.rstrip("/")


def measure_ours(storage, container, layout, concurrencies):
    """Runs ours once per thread count (after one uncounted warm-up); returns {threads: results/s}."""
    store = apcloud.open_store(storage)
    packages = list(layout)
    collect_ours(store, container, packages, concurrencies[0])  # warm-up: connections, Swift's caches
    rates = {}
    for threads in concurrencies:
        collected, cache, seconds, cpu = collect_ours(store, container, packages, threads)
        check_collected("ours", layout, collected)
        check_cache(cache, layout)
        n = sum(len(v) for v in collected.values())
        rates[threads] = n / seconds
        print(f"  ours   iter_results + ResultsCache, {threads:3d} threads:  {rates[threads]:8.0f} results/s  "
              f"({seconds:.2f} s, client CPU {cpu:.2f} s)")
    return rates


def run(args):
    auth, storage = swift_env()
    container = f"autopkgtest-benchgate-{args.packages}x{args.runs_per_package}"
    layout = make_layout(package_names(args.packages), args.runs_per_package)
    names = sorted(run.name for runs in layout.values() for run in runs)
    setup(auth, container, layout)

    print(f"bench-gating: {len(names)} result.tar (~10 kB) for {len(layout)} packages x "
          f"{args.runs_per_package} runs, container {container} at {storage}", flush=True)
    connections = max(args.concurrency)
    # The machine may be shared: wrk runs before and after ours; the raw rate is their mean.
    raw_before = run_wrk(storage, container, names, connections, args.wrk_seconds)
    rates = measure_ours(storage, container, layout, args.concurrency)
    raw_after = run_wrk(storage, container, names, connections, args.wrk_seconds)
    raw = (raw_before + raw_after) / 2
    print(f"  wrk -t2 -c{connections} raw GET rate (same result.tar paths): {raw:8.0f} requests/s  "
          f"({raw_before:.0f} before, {raw_after:.0f} after ours)", flush=True)

    py_rate = None
    if not args.no_python:
        collected, seconds = collect_python(storage, container, list(layout))
        check_collected("python", layout, collected)
        py_rate = sum(len(v) for v in collected.values()) / seconds
        print(f"  python urllib + tarfile, sequential (britney): {py_rate:8.0f} results/s  ({seconds:.2f} s)")

    best_threads = max(rates, key=rates.get)
    ours = rates[best_threads]
    ratio = ours / raw if raw > 0 else 0.0
    line = (f"  ours/raw = {ratio:.3f} with {best_threads} threads "
            f"(goal >= 0.80: {'met' if ratio >= 0.80 else 'NOT met'})")
    if py_rate:
        line += f", ours/python = {ours / py_rate:.1f}x"
    print(line)


def main(argv):
    args = parse_args(argv)
    try:
        run(args)
    except (BenchError, apcloud.Error, OSError) as e:
        log(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
