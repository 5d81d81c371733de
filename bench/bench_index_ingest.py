#!/usr/bin/python3
"""Python peer of bench-index-ingest: what a Python indexer does to fill autopkgtest.db
from a directory store: walk every release container, open each result.tar with
tarfile, read exitcode, testpkg-version, duration, requester, testinfo.json and the
stored request, and insert the reference's test/result rows with sqlite3 (WAL,
synchronous=NORMAL, a commit every 200 runs, as bench-index-ingest's backfill does).

Usage: bench_index_ingest.py STORE_ROOT DB_PATH; prints {"runs": N, "seconds": S}."""
import json
import os
import sqlite3
import sys
import tarfile
import time

SCHEMA = """
CREATE TABLE test(id INTEGER PRIMARY KEY, release CHAR[20], arch CHAR[20], package CHAR[120]);
CREATE TABLE result(test_id INTEGER, run_id CHAR[30], version VARCHAR[200], triggers TEXT,
       duration INTEGER, exitcode INTEGER, requester TEXT, env TEXT, uuid TEXT UNIQUE,
       PRIMARY KEY(test_id, run_id), FOREIGN KEY(test_id) REFERENCES test(id));
CREATE UNIQUE INDEX test_package_uix ON test(package, release, arch);
CREATE INDEX result_run_ix ON result(run_id DESC);
CREATE INDEX result_requester_idx ON result(requester);
CREATE INDEX result_test_id_ix ON result(test_id);
"""


def member(tar, name):
    try:
        return tar.extractfile(name).read().decode()
    except KeyError:
        return None


def read_result(path):
    """The row values of one result.tar."""
    with tarfile.open(path) as tar:
        exitcode = int(member(tar, "exitcode").strip())
        srcver = member(tar, "testpkg-version")
        version = srcver.split()[1] if srcver and len(srcver.split()) > 1 else None
        duration = member(tar, "duration")
        requester = member(tar, "requester")
        info = json.loads(member(tar, "testinfo.json") or "{}")
        request = member(tar, "request")
    triggers, env = None, []
    for entry in info.get("custom_environment", []):
        if entry.startswith("ADT_TEST_TRIGGERS="):
            triggers = entry.split("=", 1)[1]
        else:
            env.append(entry)
    uuid = None
    if request and "\n" in request:
        params = json.loads(request.split("\n", 1)[1])
        uuid = params.get("uuid")
        if params.get("all-proposed"):
            env.append("all-proposed=1")
    return (version, triggers or "", int(duration) if duration else None, exitcode,
            requester.strip() if requester else None, ",".join(env), uuid)


def ingest(root, db):
    """Walks the store's release containers; returns the number of runs indexed."""
    tests = {}
    n = 0
    for container in sorted(os.listdir(root)):
        if not container.startswith("autopkgtest-"):
            continue
        top = os.path.join(root, container)
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            if "result.tar" not in filenames:
                continue
            parts = os.path.relpath(dirpath, top).split(os.sep)
            if len(parts) != 5:
                continue
            release, arch, _prefix, package, run_id = parts
            key = (release, arch, package)
            test_id = tests.get(key)
            if test_id is None:
                db.execute("INSERT OR IGNORE INTO test(release, arch, package) VALUES (?, ?, ?)", key)
                test_id = db.execute("SELECT id FROM test WHERE release = ? AND arch = ? AND package = ?",
                                     key).fetchone()[0]
                tests[key] = test_id
            row = read_result(os.path.join(dirpath, "result.tar"))
            db.execute("INSERT OR IGNORE INTO result(test_id, run_id, version, triggers, duration, exitcode, "
                       "requester, env, uuid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (test_id, run_id) + row)
            n += 1
            if n % 200 == 0:
                db.commit()
    db.commit()
    return n


def main():
    root, db_path = sys.argv[1], sys.argv[2]
    start = time.perf_counter()
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(SCHEMA)
    n = ingest(root, db)
    db.close()
    print(json.dumps({"runs": n, "seconds": time.perf_counter() - start}))


if __name__ == "__main__":
    main()
