"""A local stand-in for the parts of GitHub's and GitLab's REST APIs the web service and retry-github-test
use (the only stand-ins of the project: nothing here reaches the internet).

It speaks the real APIs' shapes and checks what it receives:
- GitHub `POST /repos/OWNER/REPO/statuses/SHA`: `Authorization` must be the configured Basic user:token (or
  `Bearer TOKEN`), the body a JSON object with exactly `state` (pending, success, failure, error), `context`,
  `description` (at most 140 characters) and optionally `target_url`; else 401/422 as GitHub answers.
- GitHub `GET /repos/OWNER/REPO/pulls/N`: a pull request object set by the test.
- GitLab `POST /api/v4/projects/ID/statuses/SHA`: `PRIVATE-TOKEN` must be the configured token, the body JSON
  with `state` (pending, running, success, failed, canceled), `name`, optional `description`, `target_url`.
Every status accepted is recorded; `fail_next` answers that many requests with 502 first (an outage).
"""
import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GITHUB_STATES = {"pending", "success", "failure", "error"}
GITLAB_STATES = {"pending", "running", "success", "failed", "canceled"}


class ForgeStandin:
    def __init__(self, github_user="bot", github_token="gh-token", gitlab_token="gl-token"):
        self.github_auth = "Basic " + base64.b64encode(f"{github_user}:{github_token}".encode()).decode()
        self.gitlab_token = gitlab_token
        self.statuses = []   # accepted: {"forge", "repo", "sha", "body"}
        self.rejected = []   # refused: (path, code, why)
        self.pulls = {}      # "OWNER/REPO/N" -> PR JSON
        self.fail_next = 0
        self.lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, code, obj):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _refuse(self, code, why):
                with standin.lock:
                    standin.rejected.append((self.path, code, why))
                self._answer(code, {"message": why})

            def do_GET(self):
                m = re.fullmatch(r"/repos/([^/]+/[^/]+)/pulls/(\d+)", self.path)
                with standin.lock:
                    pr = standin.pulls.get(f"{m.group(1)}/{m.group(2)}") if m else None
                if pr is None:
                    return self._answer(404, {"message": "Not Found"})
                self._answer(200, pr)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                with standin.lock:
                    if standin.fail_next > 0:
                        standin.fail_next -= 1
                        return self._answer(502, {"message": "Bad Gateway"})
                github = re.fullmatch(r"/repos/([^/]+/[^/]+)/statuses/([0-9a-f]{7,64})", self.path)
                gitlab = re.fullmatch(r"/api/v4/projects/(\d+)/statuses/([0-9a-f]{7,64})", self.path)
                if not github and not gitlab:
                    return self._refuse(404, "Not Found")
                if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
                    return self._refuse(415, "not JSON")
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self._refuse(400, "Problems parsing JSON")
                if github:
                    if self.headers.get("Authorization") != standin.github_auth:
                        return self._refuse(401, "Bad credentials")
                    keys, states, name = {"state", "context", "description", "target_url"}, GITHUB_STATES, "context"
                else:
                    if self.headers.get("PRIVATE-TOKEN") != standin.gitlab_token:
                        return self._refuse(401, "401 Unauthorized")
                    keys, states, name = {"state", "name", "description", "target_url"}, GITLAB_STATES, "name"
                if not isinstance(body, dict) or not set(body) <= keys or body.get("state") not in states:
                    return self._refuse(422, f"Validation Failed: {body!r}")
                if not isinstance(body.get(name), str) or not body[name]:
                    return self._refuse(422, f"Validation Failed: {name}")
                if len(body.get("description", "")) > 140:
                    return self._refuse(422, "description is too long (maximum is 140 characters)")
                match = github or gitlab
                with standin.lock:
                    standin.statuses.append({"forge": "github" if github else "gitlab", "repo": match.group(1),
                                             "sha": match.group(2), "body": body})
                self._answer(201, dict(body, id=len(standin.statuses)))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def recorded(self, sha=None):
        with self.lock:
            return [s for s in self.statuses if sha is None or s["sha"] == sha]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
