#!/usr/bin/python3
"""bench_store.py STORAGE_URL CONTAINER PREFIX: the britney way of reading results, for bench-store to compare.

Sequential urllib, no token (the container is public): list the container
page by page with marker (format=json, limit 10000), then GET every object one
after the other, as britney's autopkgtest policy fetches result.tar files.
Prints one JSON line: {"objects": N, "bytes": B, "seconds": S}.
"""

import json
import sys
import time
import urllib.parse
import urllib.request


def main(storage_url, container, prefix):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    base = storage_url + "/" + urllib.parse.quote(container)
    start = time.monotonic()
    names, marker = [], ""
    while True:
        q = urllib.parse.urlencode({"format": "json", "prefix": prefix, "marker": marker, "limit": 10000})
        with opener.open(base + "?" + q, timeout=30) as r:
            page = json.load(r) if r.status == 200 else []
        if not page:
            break
        names.extend(o["name"] for o in page)
        marker = page[-1]["name"]
    total = 0
    for name in names:
        with opener.open(base + "/" + urllib.parse.quote(name), timeout=30) as r:
            total += len(r.read())
    seconds = time.monotonic() - start
    print(json.dumps({"objects": len(names), "bytes": total, "seconds": seconds}))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
