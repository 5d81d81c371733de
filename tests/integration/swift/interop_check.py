#!/usr/bin/python3
"""Interop check of a run our SwiftStore wrote, from the clients the world uses.

  interop_check.py CONTAINER PACKAGE_PREFIX RUN_ID FILES_DIR PRIVATE_CONTAINER

- python-swiftclient (as britney and the reference's tools use it) lists the
  container with delimiter '@' and downloads every file of the run, comparing
  bytes, ETag and headers with FILES_DIR/<file>;
- anonymous urllib (a browser, a gating script without credentials) reads the
  public listing and log.gz with no token;
- anonymous urllib is refused the listing and objects of PRIVATE_CONTAINER;
- swiftclient uploads CONTAINER/from-swiftclient/hello.txt for the C++ side
  to read back.

Env: APCLOUD_SWIFT_AUTH_URL, APCLOUD_SWIFT_USER, APCLOUD_SWIFT_KEY,
APCLOUD_SWIFT_STORAGE_URL. Exits 0 when all checks pass; prints each failure.
"""

import hashlib
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

import swiftclient.client

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def main(container, package_prefix, run_id, files_dir, private_container):
    files = sorted(os.listdir(files_dir))
    conn = swiftclient.client.Connection(
        authurl=os.environ["APCLOUD_SWIFT_AUTH_URL"], user=os.environ["APCLOUD_SWIFT_USER"],
        key=os.environ["APCLOUD_SWIFT_KEY"], auth_version="1", retries=0)

    # The run listing britney does: one subdir per run, ending in '@'.
    _, runs = conn.get_container(container, prefix=package_prefix, delimiter="@")
    check(runs == [{"subdir": package_prefix + run_id}], "swiftclient delimiter=@ listing: %r" % runs)
    _, objs = conn.get_container(container, prefix=package_prefix + run_id + "/", full_listing=True)
    names = [o["name"] for o in objs]
    check(names == [package_prefix + run_id + "/" + f for f in files], "swiftclient listing of the run: %r" % names)

    acl = conn.head_container(container).get("x-container-read")
    check(acl == ".r:*,.rlistings", "X-Container-Read of the public container: %r" % acl)

    for f in files:
        with open(os.path.join(files_dir, f), "rb") as fh:
            expected = fh.read()
        hdrs, body = conn.get_object(container, package_prefix + run_id + "/" + f)
        check(body == expected, "swiftclient download of %s: %d bytes, same content" % (f, len(body)))
        check(hdrs["etag"] == hashlib.md5(expected).hexdigest(), "ETag of %s is its md5" % f)
        if f == "log.gz":
            check(hdrs.get("content-type") == "text/plain; charset=UTF-8",
                  "log.gz Content-Type: %r" % hdrs.get("content-type"))
            check(hdrs.get("content-encoding") == "gzip",
                  "log.gz Content-Encoding: %r" % hdrs.get("content-encoding"))
        elif f == "result.tar":
            check(hdrs.get("content-type") == "application/x-tar",
                  "result.tar Content-Type: %r" % hdrs.get("content-type"))
            check("content-encoding" not in hdrs, "result.tar has no Content-Encoding")

    # Anonymous reads: no token, no proxy.
    anon = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    storage = os.environ["APCLOUD_SWIFT_STORAGE_URL"]
    q = urllib.parse.urlencode({"format": "json", "prefix": package_prefix, "delimiter": "@"})
    with anon.open(storage + "/" + urllib.parse.quote(container) + "?" + q, timeout=10) as r:
        listing = json.load(r)
        check(r.status == 200 and listing == [{"subdir": package_prefix + run_id}],
              "anonymous JSON listing: %d %r" % (r.status, listing))
    log_url = storage + "/" + urllib.parse.quote(container) + "/" + urllib.parse.quote(
        package_prefix + run_id + "/log.gz")
    with anon.open(log_url, timeout=10) as r:
        body = r.read()
        with open(os.path.join(files_dir, "log.gz"), "rb") as fh:
            check(body == fh.read(), "anonymous GET of log.gz: same bytes (%d)" % len(body))
        check(r.headers["Content-Encoding"] == "gzip", "anonymous log.gz is served with Content-Encoding: gzip")

    for what, url in (("listing", storage + "/" + urllib.parse.quote(private_container)),
                      ("object", storage + "/" + urllib.parse.quote(private_container) + "/secret/result.tar")):
        try:
            with anon.open(url, timeout=10) as r:
                check(False, "anonymous GET of the private container's %s is refused (got %d)" % (what, r.status))
        except urllib.error.HTTPError as e:
            check(e.code in (401, 403), "anonymous GET of the private container's %s is refused: %d" % (what, e.code))
    # With a token, the owner reads it (so the refusal above is about the ACL).
    _, secret = conn.get_object(private_container, "secret/result.tar")
    check(secret == b"private result", "the owner reads the private object with a token")

    conn.put_object(container, "from-swiftclient/hello.txt", contents=b"hello from swiftclient\n",
                    content_type="text/plain; charset=UTF-8")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
