"""The apcloud module as gating code (britney) uses it: versions, cache, pending, results, sinks."""
import json
import os
import re
import subprocess
import time

import pytest

import apcloud

RELEASE, ARCH, PKG, CONTAINER = "noble", "amd64", "gedit", "autopkgtest-noble"
VERSIONS = ["1.0", "1.0-1", "1.0~rc1", "1.0~~", "1:0.9", "0:1.0", "1.0+b1", "1.00", "1.0-1ubuntu1",
            "1.0-1~bpo1", "10.0", "9.9", "1.0+dfsg-1", "2.20-1ubuntu0.1"]


def _dpkg(a, op, b):
    return subprocess.run(["dpkg", "--compare-versions", a, op, b], check=False).returncode == 0


@pytest.mark.parametrize("a", VERSIONS)
def test_version_compare_agrees_with_dpkg(a):
    for b in VERSIONS:
        expect = -1 if _dpkg(a, "lt", b) else (0 if _dpkg(a, "eq", b) else 1)
        assert apcloud.version_compare(a, b) == expect, (a, b)


def test_results_cache_rules_and_file(tmp_path):
    cache = apcloud.ResultsCache()
    assert cache.add("glib2.0/2.20-1", PKG, ARCH, ["PASS", "44.2-1", "20240101_000000_aaaaa@", 100])
    assert not cache.add("glib2.0/2.20-1", PKG, ARCH, ("FAIL", "44.2-2", "20240102_000000_bbbbb@", 200))
    assert cache.get("glib2.0/2.20-1", PKG, ARCH) == ["PASS", "44.2-1", "20240101_000000_aaaaa@", 100]
    assert cache.add("glib2.0/2.20-1", PKG, ARCH, ["PASS", "44.2-3", "20240103_000000_ccccc@", 300])
    assert cache.add("other/1", PKG, ARCH, ["FAIL", "44.2-3", "20240104_000000_ccccc@", 300])
    assert cache.get("nothing/1", PKG, ARCH) is None
    with pytest.raises(TypeError, match="GatingResult"):
        cache.add("t/1", PKG, ARCH, ["PASS", "1"])
    assert cache.latest_run_id(PKG, ARCH) == "20240104_000000_ccccc@"
    assert cache.latest_run_id(PKG, "s390x") is None

    path = tmp_path / "results.cache"
    assert apcloud.ResultsCache.load(str(path)).get("glib2.0/2.20-1", PKG, ARCH) is None
    cache.save(str(path))
    assert not (tmp_path / "results.cache.new").exists()
    assert json.loads(path.read_text()) == {
        "glib2.0/2.20-1": {PKG: {ARCH: ["PASS", "44.2-3", "20240103_000000_ccccc@", 300]}},
        "other/1": {PKG: {ARCH: ["FAIL", "44.2-3", "20240104_000000_ccccc@", 300]}},
    }
    back = apcloud.ResultsCache.load(str(path))
    assert back.get("other/1", PKG, ARCH) == ["FAIL", "44.2-3", "20240104_000000_ccccc@", 300]

    path.write_text('{"t": {"p": {"a": ["PASS"]}}}')
    with pytest.raises(apcloud.ParseError, match="results.cache"):
        apcloud.ResultsCache.load(str(path))


def test_pending_tests(tmp_path):
    path = tmp_path / "pending.json"
    pending = apcloud.PendingTests.load(str(path))
    pending.add("glib2.0/2.20-1", PKG, ARCH)
    pending.add("glib2.0/2.20-1", PKG, "arm64")
    assert pending.contains("glib2.0/2.20-1", PKG, ARCH)
    assert ("glib2.0/2.20-1", PKG, "arm64") in pending
    pending.save(str(path))
    assert json.loads(path.read_text()) == {"glib2.0/2.20-1": {PKG: ["amd64", "arm64"]}}
    pending = apcloud.PendingTests.load(str(path))
    assert pending.remove("glib2.0/2.20-1", PKG, ARCH)
    assert not pending.remove("glib2.0/2.20-1", PKG, ARCH)
    assert pending.remove("glib2.0/2.20-1", PKG, "arm64")
    pending.save(str(path))
    assert json.loads(path.read_text()) == {}
    path.write_text("[1]")
    with pytest.raises(apcloud.ParseError, match="pending.json"):
        apcloud.PendingTests.load(str(path))


def _store_run(store, tmp_path, run_id, exitcode, triggers, version):
    """Packs an output directory and uploads it as the worker does (result.tar last)."""
    out = tmp_path / ("out-" + run_id)
    out.mkdir()
    (out / "log").write_text("log of %s\n" % run_id)
    (out / "testpkg-version").write_text("%s %s\n" % (PKG, version))
    env = ["ADT_TEST_TRIGGERS=" + triggers] if triggers is not None else ["FOO=1"]
    (out / "testinfo.json").write_text(json.dumps({"custom_environment": env}))
    files = apcloud.pack_results(str(out), exitcode, 42)
    d = apcloud.result_dir(RELEASE, ARCH, PKG, run_id)
    store.put(CONTAINER, d + "/log.gz", files["log.gz"], "text/plain", "gzip")
    store.put(CONTAINER, d + "/artifacts.tar.gz", files["artifacts.tar.gz"], "application/x-tar")
    store.put(CONTAINER, d + "/result.tar", files["result.tar"], "application/x-tar")


def test_iter_results_on_a_local_store(tmp_path):
    url = "file://" + str(tmp_path / "store")
    (tmp_path / "store").mkdir()
    store = apcloud.open_store(url)
    store.ensure_container(CONTAINER, public=True)
    ids = [apcloud.make_run_id(1700000000 + 60 * i, "body%d" % i) for i in range(12)]
    for i in reversed(range(12)):
        if i in (3, 5):
            continue
        _store_run(store, tmp_path, ids[i], 4 if i % 3 == 0 else 0,
                   None if i == 7 else "glib2.0/2.20-1 gtk+3.0/3.24-1", "44.2-%d" % i)
    store.put(CONTAINER, apcloud.result_dir(RELEASE, ARCH, PKG, ids[3]) + "/log.gz", b"partial")
    # Written hours ago: an abandoned run, not one still being stored.
    old = time.time() - 5 * 3600
    os.utime(tmp_path / "store" / CONTAINER / apcloud.result_dir(RELEASE, ARCH, PKG, ids[3]) / "log.gz", (old, old))
    store.put(CONTAINER, apcloud.result_dir(RELEASE, ARCH, PKG, ids[5]) + "/result.tar", b"not a tar")
    assert store.get(CONTAINER, apcloud.result_dir(RELEASE, ARCH, PKG, ids[5]) + "/result.tar") == b"not a tar"
    assert store.get(CONTAINER, "nothing") is None
    prefix = apcloud.package_prefix(RELEASE, ARCH, PKG)
    assert store.list(CONTAINER, prefix=prefix, delimiter="@", limit=2) == [prefix + ids[0], prefix + ids[1]]

    results = list(apcloud.iter_results(url, CONTAINER, RELEASE, ARCH, PKG))
    assert [r.run_id for r in results] == [ids[i] for i in range(12) if i not in (3, 5)]
    first = results[0]
    assert (first.exitcode, first.outcome, first.version, first.duration) == (4, "fail", "44.2-0", 42)
    assert first.triggers == ["glib2.0/2.20-1", "gtk+3.0/3.24-1"]
    assert results[1].outcome == "pass"
    no_trigger = [r for r in results if r.run_id == ids[7]][0]
    assert no_trigger.triggers is None

    later = apcloud.iter_results(store, CONTAINER, RELEASE, ARCH, PKG, after=ids[8])
    assert [r.run_id for r in later] == ids[9:]
    assert list(apcloud.iter_results(url, CONTAINER, RELEASE, ARCH, PKG, after=ids[11])) == []
    with pytest.raises(apcloud.NotFound):
        apcloud.iter_results(url, "autopkgtest-nothere", RELEASE, ARCH, PKG)

    # Feeding results into the cache, as britney does.
    cache = apcloud.ResultsCache()
    for r in results:
        for trigger in r.triggers or []:
            cache.add(trigger, PKG, ARCH, r)
    # seen is the time in the run id, not the time of collection.
    assert cache.get("glib2.0/2.20-1", PKG, ARCH) == ["PASS", "44.2-11", ids[11], 1700000000 + 60 * 11]
    assert cache.latest_run_id(PKG, ARCH) == ids[11]


def test_file_sink(tmp_path):
    path = tmp_path / "requests.txt"
    sink = apcloud.open_sink("file://" + str(path))
    req = apcloud.TestRequest(PKG, triggers=["glib2.0/2.20-1"])
    assert sink.send(req, RELEASE, ARCH) == "debci-noble-amd64"
    assert sink.send(apcloud.TestRequest("hello"), RELEASE, "arm64", huge=True) == "debci-huge-noble-arm64"
    lines = path.read_text().splitlines()
    # The sink stamps submit-time (UTC, now) and a uuid on requests that have none.
    first, second = (json.loads(line.split(" ", 1)[1]) for line in lines)
    stamp, stamp2 = first["submit-time"], second["submit-time"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", stamp)
    uuid1, uuid2 = first["uuid"], second["uuid"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", uuid1) and uuid1 != uuid2
    assert lines == ["debci-noble-amd64:gedit " + json.dumps({"submit-time": stamp, "triggers": ["glib2.0/2.20-1"],
                                                              "uuid": uuid1}, sort_keys=True),
                     "debci-huge-noble-arm64:hello " + json.dumps({"submit-time": stamp2, "uuid": uuid2},
                                                                  sort_keys=True)]
    # A request's own uuid is kept.
    sink.send(apcloud.TestRequest("hello", uuid="0f1e2d3c-aaaa-4bbb-8ccc-111122223333"), RELEASE, ARCH)
    assert json.loads(path.read_text().splitlines()[-1].split(" ", 1)[1])["uuid"] == "0f1e2d3c-aaaa-4bbb-8ccc-111122223333"
    assert apcloud.sink_line("q", req) == "q:gedit " + req.to_message().split("\n", 1)[1]
    with pytest.raises(apcloud.ValidationError):
        sink.send(apcloud.TestRequest("Bad Name"), RELEASE, ARCH)
    with pytest.raises(apcloud.ConfigError):
        apcloud.open_sink("ftp://host/x")
    # Local source trees only where the caller says its workers accept them.
    local = apcloud.TestRequest(PKG, triggers=["glib2.0/2.20-1"], build_git="/srv/src/gedit/")
    with pytest.raises(apcloud.ValidationError, match="build-git") as bad:
        sink.send(local, RELEASE, ARCH)
    assert bad.value.field == "build-git" and bad.value.value == "/srv/src/gedit/"
    local_sink = apcloud.open_sink("file://" + str(path), allow_local_sources=True)
    assert local_sink.send(local, RELEASE, ARCH) == "debci-upstream-noble-amd64"
    assert '"build-git": "/srv/src/gedit/"' in path.read_text().splitlines()[-1]


def test_sqlite_sink_publishes_to_the_broker(tmp_path):
    url = "sqlite://" + str(tmp_path / "broker.db")
    req = apcloud.TestRequest(PKG, triggers=["glib2.0/2.20-1"])
    with pytest.raises(apcloud.NotFound, match="debci-noble-amd64"):
        apcloud.open_sink(url).send(req, RELEASE, ARCH)
    sink = apcloud.open_sink(url, declare_queues=True)
    assert sink.send(apcloud.TestRequest(PKG, triggers=["glib2.0/2.20-1"]), RELEASE, ARCH) == "debci-noble-amd64"


# britney's verdicts (pkg_test_result), one row per branch: cache entries as (trigger, status, version),
# the trigger asked about, keyword arguments of decide, and britney's answer.
VERDICT_ROWS = [
    ([("t/1", "PASS", "1")], "t/1", {}, "PASS"),
    ([("t/1", "NEUTRAL", "1")], "t/1", {}, "NEUTRAL"),
    ([("a/1", "PASS", "1"), ("t/1", "FAIL", "1")], "t/1", {}, "REGRESSION"),
    ([("a/1", "PASS", "0.9"), ("t/1", "FAIL", "1")], "t/1", {}, "REGRESSION"),
    ([("a/1", "PASS", "2"), ("t/1", "FAIL", "1")], "t/1", {}, "ALWAYSFAIL"),          # pass only at a higher version
    ([("a/1", "PASS", "2"), ("t/1", "FAIL", "1")], "t/1", {"version": "3"}, "REGRESSION"),
    ([("a/1", "NEUTRAL", "1"), ("t/1", "FAIL", "1")], "t/1", {}, "ALWAYSFAIL"),       # neutral is no pass
    ([("a/1", "FAIL", "1"), ("t/1", "FAIL", "1")], "t/1", {}, "ALWAYSFAIL"),          # baseline FAIL
    ([("t/1", "FAIL", "1")], "t/1", {}, "ALWAYSFAIL"),
    ([("migration-reference/0", "PASS", "1"), ("t/1", "FAIL", "1")], "t/1", {"reference": True}, "REGRESSION"),
    ([("migration-reference/0", "FAIL", "1"), ("a/1", "PASS", "1"), ("t/1", "FAIL", "1")], "t/1",
     {"reference": True}, "ALWAYSFAIL"),
    ([("migration-reference/0", "NEUTRAL", "1"), ("a/1", "PASS", "1"), ("t/1", "FAIL", "1")], "t/1",
     {"reference": True}, "REGRESSION"),
    ([("a/1", "PASS", "1"), ("t/1", "FAIL", "1")], "t/1", {"reference": True}, "RUNNING-REFERENCE"),  # NONE
    ([("a/1", "PASS", "1"), ("t/1", "FAIL", "1")], "t/1", {"reference": True, "test_in_target": False},
     "REGRESSION"),
    ([], "t/1", {"pending": True}, "RUNNING-ALWAYSFAIL"),
    ([("a/1", "FAIL", "1")], "t/1", {"pending": True}, "RUNNING-ALWAYSFAIL"),
    ([("a/1", "NEUTRAL", "1")], "t/1", {"pending": True}, "RUNNING"),
    ([("a/1", "PASS", "1")], "t/1", {"pending": True}, "RUNNING"),
    ([("a/1", "FAIL", "1")], "t/1", {"pending": True, "reference": True}, "RUNNING"),
    ([("migration-reference/0", "FAIL", "1")], "t/1", {"pending": True, "reference": True}, "RUNNING-ALWAYSFAIL"),
    ([], "t/1", {}, "RUNNING"),
]


@pytest.mark.parametrize("entries,trigger,kwargs,britney", VERDICT_ROWS)
def test_decide_as_britney(entries, trigger, kwargs, britney):
    cache = apcloud.ResultsCache()
    for n, (t, status, version) in enumerate(entries):
        assert cache.add(t, PKG, ARCH, [status, version, "20240101_00000%d_aaaaa@" % n, n])
    assert apcloud.decide(cache, trigger, PKG, ARCH, **kwargs) == britney


def test_decide_verdicts():
    cache = apcloud.ResultsCache()
    assert apcloud.decide(cache, "t/1", PKG, ARCH) == "RUNNING"
    assert apcloud.decide(cache, "t/1", PKG, ARCH, pending=True) == "RUNNING-ALWAYSFAIL"
    cache.add("glib2.0/2.20-1", PKG, ARCH, ["PASS", "44.2-1", "20240101_000000_aaaaa@", 100])
    cache.add("gtk+3.0/3.24-1", PKG, ARCH, ["FAIL", "44.2-1", "20240102_000000_aaaaa@", 200])
    cache.add("hello/1", PKG, ARCH, ["NEUTRAL", "44.2-1", "20240103_000000_aaaaa@", 300])
    assert apcloud.decide(cache, "glib2.0/2.20-1", PKG, ARCH) == "PASS"
    assert apcloud.decide(cache, "hello/1", PKG, ARCH) == "NEUTRAL"
    assert apcloud.decide(cache, "gtk+3.0/3.24-1", PKG, ARCH) == "REGRESSION"
    assert apcloud.decide(cache, "t/1", PKG, ARCH, pending=True) == "RUNNING"
    # A PASS is not clobbered by a later FAIL for the same trigger.
    assert not cache.add("glib2.0/2.20-1", PKG, ARCH, ["FAIL", "44.2-2", "20240104_000000_aaaaa@", 400])
    assert apcloud.decide(cache, "glib2.0/2.20-1", PKG, ARCH) == "PASS"
    # Other architectures have only failures.
    cache.add("gtk+3.0/3.24-1", PKG, "s390x", ["FAIL", "44.2-1", "20240102_000000_aaaaa@", 200])
    assert apcloud.decide(cache, "gtk+3.0/3.24-1", PKG, "s390x") == "ALWAYSFAIL"
    assert apcloud.decide(cache, "t/1", PKG, "s390x", pending=True) == "RUNNING-ALWAYSFAIL"


def test_decide_reference_mode():
    cache = apcloud.ResultsCache()
    cache.add("glib2.0/2.20-1", PKG, ARCH, ["PASS", "44.2-1", "20240101_000000_aaaaa@", 100])
    cache.add("gtk+3.0/3.24-1", PKG, ARCH, ["FAIL", "44.2-1", "20240102_000000_aaaaa@", 200])
    assert apcloud.decide(cache, "gtk+3.0/3.24-1", PKG, ARCH, reference=True, test_in_target=False) == "REGRESSION"
    assert apcloud.decide(cache, "gtk+3.0/3.24-1", PKG, ARCH, reference=True) == "RUNNING-REFERENCE"
    cache.add("migration-reference/0", PKG, ARCH, ["PASS", "44.2-1", "20240103_000000_aaaaa@", 300])
    assert apcloud.decide(cache, "gtk+3.0/3.24-1", PKG, ARCH, reference=True) == "REGRESSION"
    assert apcloud.decide(cache, "t/1", PKG, ARCH, True, True) == "RUNNING"
    with pytest.raises(TypeError):
        apcloud.decide(None, "t/1", PKG, ARCH)


def test_collect_results_counts_what_it_skipped(tmp_path):
    url = "file://" + str(tmp_path / "store")
    (tmp_path / "store").mkdir()
    store = apcloud.open_store(url)
    store.ensure_container(CONTAINER, public=True)
    ids = [apcloud.make_run_id(1700000000 + 60 * i, "c%d" % i) for i in range(3)]
    _store_run(store, tmp_path, ids[0], 0, "glib2.0/2.20-1", "1")
    store.put(CONTAINER, apcloud.result_dir(RELEASE, ARCH, PKG, ids[1]) + "/result.tar", b"not a tar")
    # A run still being stored (its log.gz was just written) holds back the complete one after it.
    store.put(CONTAINER, apcloud.result_dir(RELEASE, ARCH, PKG, ids[2]) + "/log.gz", b"partial")
    _store_run(store, tmp_path, apcloud.make_run_id(1700000000 + 600, "later"), 0, "glib2.0/2.20-1", "2")
    got = apcloud.collect_results(store, CONTAINER, RELEASE, ARCH, PKG)
    assert [r.run_id for r in got.results] == [ids[0]]
    assert (got.missing, got.corrupt, got.held_back) == (1, 1, 1)
    assert [r.run_id for r in apcloud.iter_results(url, CONTAINER, RELEASE, ARCH, PKG)] == [ids[0]]
    # Hours later nothing is being stored any more: the abandoned run no longer holds anything back.
    later = apcloud.collect_results(url, CONTAINER, RELEASE, ARCH, PKG, now=int(time.time()) + 3600)
    assert (len(later.results), later.missing, later.held_back) == (2, 1, 0)
    assert apcloud.upload_grace_seconds == 600


def test_system_errors_are_oserrors_naming_the_path(tmp_path):
    (tmp_path / "cache").mkdir()
    with pytest.raises(apcloud.SystemError) as e:
        apcloud.ResultsCache.load(str(tmp_path / "cache"))  # a directory, not a file
    assert isinstance(e.value, OSError) and isinstance(e.value, apcloud.Error)
    assert e.value.filename == str(tmp_path / "cache")
    assert str(tmp_path / "cache") in str(e.value)
