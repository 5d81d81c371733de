#!/usr/bin/python3
"""Requests the example package's test through the web service's request API and waits for its result.

Usage: request_example.py BASE_URL RELEASE ARCH BUILD_GIT   (the API key in $APCLOUD_API_KEY, never in argv)
Prints what `apcloud submit --wait` prints (exitcode, container, directory) after the answer's uuid.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request

base, release, arch, build_git = sys.argv[1:5]
headers = {"Authorization": "Bearer " + os.environ["APCLOUD_API_KEY"], "Content-Type": "application/json",
           "Accept": "application/json"}
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with opener.open(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


body = {"package": "hello-apc", "release": release, "arch": arch, "triggers": ["hello-apc/1.0-1"],
        "build-git": build_git}
deadline = time.monotonic() + 60
while True:  # until the service listens and the workers have declared their queues (404 until then)
    try:
        status, answer = call("/api/v1/test", body)
    except urllib.error.URLError:
        status, answer = 0, {"error": "the web service does not answer"}
    if status not in (0, 404) or time.monotonic() > deadline:
        break
    time.sleep(0.5)
if status != 200:
    sys.exit(f"the request API answered {status}: {answer.get('error')}")
[made] = answer["requests"]
print(f"POST {base}/api/v1/test -> {status}: request {made['uuid']} in {made['queue']} (position {made['position']})")
deadline = time.monotonic() + 600
while True:
    status, run = call(f"/api/v1/run/{made['uuid']}")
    if status == 200:
        break
    if time.monotonic() > deadline:
        sys.exit("no result after 600 s")
    time.sleep(0.5)
directory = run["urls"]["result"].split("/", 3)[3].rsplit("/", 1)[0]
print(f"exitcode: {run['exitcode']}\ncontainer: {run['container']}\ndirectory: {directory}")
