#!/usr/bin/python3
"""Python equivalent of bench-core: what britney-style code does with json + re
and tarfile. Usage: bench_core.py REQUESTS_FILE TARS_DIR SECONDS; prints JSON rates."""
import io
import json
import os
import re
import sys
import tarfile
import time

NAME = re.compile(r"^[a-z0-9][a-z0-9.+-]+$")
VERSION = re.compile(r"^[A-Za-z0-9.+:~-]+$")
ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=[^\x00-\x1f\x7f]*$")
PPA = re.compile(r"^(?:[A-Za-z0-9._+-]+:[A-Za-z0-9._+-]+@)?[a-z0-9][a-z0-9.+-]+/[a-z0-9][a-z0-9.+-]+(?::[0-9A-Fa-f]{8,40})?$")


def parse_request(body):
    """Split, decode and validate one message like our parser does."""
    text = body.decode("utf-8")
    pkg, sep, rest = text.partition("\n")
    if not sep:
        pkg, sep, rest = text.partition(" ")
    if not NAME.match(pkg):
        raise ValueError("package")
    params = json.loads(rest) if sep else {}
    for t in params.get("triggers", []):
        src, _, ver = t.partition("/")
        if not NAME.match(src) or not VERSION.match(ver):
            raise ValueError("trigger")
    for p in params.get("ppas", []):
        if not PPA.match(p):
            raise ValueError("ppa")
    for e in params.get("env", []):
        if not ENV.match(e):
            raise ValueError("env")
    return pkg, params


def parse_result_tar(data):
    """What britney does with a result.tar: exitcode, version, triggers."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        exitcode = int(tar.extractfile("exitcode").read().strip())
        try:
            srcver = tar.extractfile("testpkg-version").read().decode().strip()
        except KeyError:
            srcver = None
        try:
            info = json.loads(tar.extractfile("testinfo.json").read().decode())
            triggers = [e.split("=", 1)[1].split() for e in info.get("custom_environment", [])
                        if e.startswith("ADT_TEST_TRIGGERS=")]
        except KeyError:
            triggers = None
        duration = tar.extractfile("duration").read().strip()
    return exitcode, srcver, triggers, duration


def rate(func, items, seconds):
    n, start = 0, time.perf_counter()
    while True:
        for item in items:
            func(item)
        n += len(items)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def main():
    requests_file, tars_dir, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    with open(requests_file, "rb") as f:
        requests = f.read().split(b"\0")
    tars = []
    for name in sorted(os.listdir(tars_dir)):
        with open(os.path.join(tars_dir, name), "rb") as f:
            tars.append(f.read())
    print(json.dumps({"requests": rate(parse_request, requests, seconds),
                      "result_tar": rate(parse_result_tar, tars, seconds)}))


if __name__ == "__main__":
    main()
