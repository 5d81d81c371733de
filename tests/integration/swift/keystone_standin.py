#!/usr/bin/python3
"""A local stand-in for Keystone v3 password authentication, for tests that cannot run Keystone.

It answers POST /v3/auth/tokens the way the Keystone v3 API reference
documents it (request checked field by field; 201 with X-Subject-Token and a
token body with catalog, or 401 with Keystone's error body), and hands out
REAL Swift tokens: it logs in to the test Swift (APCLOUD_SWIFT_AUTH_URL with
APCLOUD_SWIFT_USER/KEY, v1) and puts the Swift storage URL into the catalog as
the object-store endpoint of region RegionTwo. So the client under test does
real Swift operations with what it got from here.

Accepted credentials: user "gate" (domain "users"), password "gate-pass",
project "autopkgtest" (domain "projects").

  keystone_standin.py [--lifetime SECONDS] [--first-token-invalid]

Prints http://127.0.0.1:PORT on its first stdout line, then serves until killed.
--first-token-invalid: the first token issued is one Swift does not know.
"""

import argparse
import datetime
import json
import os
import sys
import threading
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

USER, PASSWORD, PROJECT = "gate", "gate-pass", "autopkgtest"
USER_DOMAIN, PROJECT_DOMAIN = "users", "projects"


def swift_login():
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(os.environ["APCLOUD_SWIFT_AUTH_URL"], headers={
        "X-Auth-User": os.environ["APCLOUD_SWIFT_USER"],
        "X-Auth-Key": os.environ["APCLOUD_SWIFT_KEY"]})
    with opener.open(req, timeout=10) as r:
        return r.headers["X-Auth-Token"], r.headers["X-Storage-Url"]


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Handler(BaseHTTPRequestHandler):
    server_version = "keystone-standin"

    def log_message(self, fmt, *args):
        sys.stderr.write("keystone-standin: " + fmt % args + "\n")

    def send_json(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Vary", "X-Auth-Token")
        self.send_header("x-openstack-request-id", "req-" + str(uuid.uuid4()))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, title, message):
        self.send_json(status, {"error": {"code": status, "title": title, "message": message}})

    def do_POST(self):
        if self.path.rstrip("/") != "/v3/auth/tokens":
            return self.error(404, "Not Found", "The resource could not be found.")
        length = int(self.headers.get("Content-Length", "0"))
        try:
            if not self.headers.get("Content-Type", "").startswith("application/json"):
                raise ValueError("Content-Type must be application/json")
            auth = json.loads(self.rfile.read(length))["auth"]
            identity = auth["identity"]
            if identity["methods"] != ["password"]:
                raise ValueError("methods must be [\"password\"]")
            user = identity["password"]["user"]
            project = auth["scope"]["project"]
            name, password, user_domain = user["name"], user["password"], user["domain"]["name"]
            project_name, project_domain = project["name"], project["domain"]["name"]
        except (KeyError, TypeError, ValueError) as e:
            return self.error(400, "Bad Request", "Invalid input for field: %s" % e)
        if (name, password, user_domain) != (USER, PASSWORD, USER_DOMAIN) or \
                (project_name, project_domain) != (PROJECT, PROJECT_DOMAIN):
            return self.error(401, "Unauthorized", "The request you have made requires authentication.")

        with self.server.lock:
            self.server.issued += 1
            bogus = self.server.first_token_invalid and self.server.issued == 1
        token, storage_url = swift_login()
        if bogus:
            token = "AUTH_tk" + uuid.uuid4().hex  # well-formed, unknown to Swift
        now = datetime.datetime.utcnow()
        dead = "http://127.0.0.1:9/v1/AUTH_wrong"
        body = {"token": {
            "methods": ["password"],
            "user": {"domain": {"id": "d-users", "name": USER_DOMAIN}, "id": "u-gate", "name": USER,
                     "password_expires_at": None},
            "audit_ids": [uuid.uuid4().hex[:22]],
            "expires_at": iso(now + datetime.timedelta(seconds=self.server.lifetime)),
            "issued_at": iso(now),
            "project": {"domain": {"id": "d-projects", "name": PROJECT_DOMAIN}, "id": "p-apc", "name": PROJECT},
            "is_domain": False,
            "roles": [{"id": "r-member", "name": "member"}],
            "catalog": [
                {"type": "identity", "name": "keystone", "id": "s-identity", "endpoints": [
                    {"id": "e1", "interface": "public", "region": "RegionOne", "region_id": "RegionOne",
                     "url": "http://127.0.0.1:%d/v3" % self.server.server_port}]},
                {"type": "object-store", "name": "swift", "id": "s-swift", "endpoints": [
                    {"id": "e2", "interface": "public", "region": "RegionOne", "region_id": "RegionOne",
                     "url": dead},
                    {"id": "e3", "interface": "internal", "region": "RegionTwo", "region_id": "RegionTwo",
                     "url": dead},
                    {"id": "e4", "interface": "public", "region": "RegionTwo", "region_id": "RegionTwo",
                     "url": storage_url},
                    {"id": "e5", "interface": "admin", "region": "RegionTwo", "region_id": "RegionTwo",
                     "url": dead}]},
            ],
        }}
        self.send_json(201, body, [("X-Subject-Token", token)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lifetime", type=float, default=3600)
    ap.add_argument("--first-token-invalid", action="store_true")
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.lifetime = args.lifetime
    server.first_token_invalid = args.first_token_invalid
    server.issued = 0
    server.lock = threading.Lock()
    print("http://127.0.0.1:%d" % server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
