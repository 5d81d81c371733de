"""GitHub and GitLab webhooks end to end (SPEC.md 10): signed events POSTed to the web service
(autopkgtest-cloud-web) queue a pull request's tests on the upstream queue, the real worker program runs
them, and the commit statuses reach a local stand-in for GitHub's and GitLab's APIs (forge_standin: the
only stand-in, as those services cannot run here), on the embedded stack and on RabbitMQ + Swift.
"""
import hashlib
import hmac
import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from forge_standin import ForgeStandin
from gating_site import ARCH, Site, need
from web_site import WebService

SECRET = "s3cr3t-of-gedit"
SHA1, SHA2 = "a" * 40, "b" * 40


@pytest.fixture(params=["embedded", "swift"])
def site(request, tmp_path):
    return Site(request.param, tmp_path)


@pytest.fixture
def forge():
    f = ForgeStandin()
    yield f
    f.stop()


def _pr(forge, action, sha, number=7):
    return {"action": action, "number": number, "sender": {"login": "octocat"},
            "pull_request": {"statuses_url": f"{forge.url}/repos/upstream/gedit/statuses/{sha}",
                             "head": {"sha": sha}, "base": {"repo": {"clone_url": f"{forge.url}/upstream/gedit.git"}}}}


def _web(site, tmp_path, forge, extra=""):
    projects = tmp_path / "projects.conf"
    projects.write_text(f"[github gedit]\nsecret = {SECRET}\nstatus_user = bot\nstatus_token = gh-token\n"
                        f"[gitlab nautilus]\nsecret = gl-secret\nstatus_token = gl-token\n")
    projects.chmod(0o600)
    web = WebService(site, extra=f"[webhooks]\nprojects_file = {projects}\ngithub_api = {forge.url}\n"
                                 f"gitlab_api = {forge.url}/api/v4\n{extra}")
    web.start()
    return web


def _post(web, query, body, headers):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"{web.url}/request.cgi?{query}", data=data, method="POST",
                                     headers=dict({"Content-Type": "application/json"}, **headers))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _github(web, query, payload, event="pull_request", secret=SECRET, sha256=True, sha1=False):
    data = json.dumps(payload).encode()
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": "1"}
    if sha256:
        headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()
    if sha1:
        headers["X-Hub-Signature"] = "sha1=" + hmac.new(secret.encode(), data, hashlib.sha1).hexdigest()
    return _post(web, query, data, headers)


def _upstream_depth(site):
    out = subprocess.run([need("APCLOUD_TOOL"), "queues", "--broker", site.broker_url, "--release", site.release,
                          "--arch", ARCH], capture_output=True, text=True, check=True, env=site.env).stdout
    depths = dict(line.split() for line in out.splitlines())
    return int(depths[f"debci-upstream-{site.release}-{ARCH}"])


def _worker_once(site, exitcode=0):
    (site.root / "fake" / "exit").write_text(f"{exitcode}\n")
    with open(site.root / "worker.log", "ab") as log:
        subprocess.run([need("APCLOUD_WORKER_BIN"), "-c", str(site.config), "--count", "1"], env=site.env,
                       stdout=log, stderr=log, timeout=120, check=True)


def _queued_params(web, site):
    """The parameters of the one request the upstream queue view shows."""
    def requests(q):
        return q["queues"]["upstream"][site.release][ARCH]["requests"]
    queued = web.wait_json("/queued.json", lambda q: len(requests(q)) == 1)
    return json.loads(requests(queued)[0].split("\n", 1)[1])


def _wait_statuses(forge, sha, n, timeout=30):
    deadline = time.monotonic() + timeout
    while len(forge.recorded(sha)) < n:
        assert time.monotonic() < deadline, (forge.recorded(), forge.rejected)
        time.sleep(0.1)
    return [s["body"] for s in forge.recorded(sha)]


def test_signatures_events_and_what_reaches_the_queue(site, tmp_path, forge):
    site.run("gedit", ["glib2.0/2.80-1"])  # the worker declares its queues (the upstream one too)
    web = _web(site, tmp_path, forge)
    query = f"release={site.release}&arch={ARCH}&package=gedit"
    try:
        code, answer = _github(web, query, {"zen": "Keep it simple.", "hook_id": 1}, event="ping")
        assert (code, answer) == (200, {"message": "pong"})
        opened = _pr(forge, "opened", SHA1)
        for bad in ({"secret": "wrong"}, {"sha256": False}, {"sha256": False, "sha1": True, "secret": "wrong"}):
            code, answer = _github(web, query, opened, **bad)
            assert code == 403 and "signature" in answer["error"], (bad, answer)
        code, answer = _github(web, query.replace("package=gedit", "package=nautilus"), opened)
        assert code == 403 and "no GitHub webhook is configured for 'nautilus'" in answer["error"]
        # A signature over other bytes (the body changed on the way) is refused too.
        data = json.dumps(opened).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), data, hashlib.sha256).hexdigest()
        code, _ = _post(web, query, data + b" ", {"X-GitHub-Event": "pull_request", "X-Hub-Signature-256": signature})
        assert code == 403
        assert _upstream_depth(site) == 0 and forge.recorded() == []

        code, answer = _github(web, query, dict(opened, action="labeled"))
        assert code == 200 and answer["message"] == "not relevant: pull_request labeled"
        code, answer = _github(web, query, {"ref": "refs/heads/main"}, event="push")
        assert code == 200 and answer["message"] == "not relevant: push"
        # The legacy sha1 signature alone is accepted; a second arch that is not tested here is refused with
        # an error status on its own context, the first one queued with a pending status.
        code, answer = _github(web, query + "&arch=s390x" * (ARCH != "s390x"), opened, sha256=False, sha1=True)
        assert code == 200, answer
        assert [q["context"] for q in answer["queued"]] == [f"{site.release}/{ARCH}"]
        assert _upstream_depth(site) == 1
        if ARCH != "s390x":
            assert answer["refused"][0]["context"] == f"{site.release}/s390x"
        statuses = _wait_statuses(forge, SHA1, 2 if ARCH != "s390x" else 1)
        pending = [s for s in statuses if s["state"] == "pending"]
        assert pending == [{"state": "pending", "context": f"{site.release}/{ARCH}",
                            "description": f"queued in debci-upstream-{site.release}-{ARCH}",
                            "target_url": f"{web.url}/run/{answer['queued'][0]['uuid']}"}]
        if ARCH != "s390x":
            error = [s for s in statuses if s["state"] == "error"][0]
            assert error["context"] == f"{site.release}/s390x" and "s390x" in error["description"]
        # The request as queued: build-git from the PR, the env of SPEC.md 10, requested by the PR's sender.
        params = _queued_params(web, site)
        assert params["build-git"] == f"{forge.url}/upstream/gedit.git#refs/pull/7/head"
        assert params["env"] == ["UPSTREAM_PULL_REQUEST=7",
                                 f"GITHUB_STATUSES_URL={forge.url}/repos/upstream/gedit/statuses/{SHA1}"]
        assert params["requester"] == "github:octocat"
        # GitHub redelivering the same event queues nothing more.
        code, again = _github(web, query, opened)
        assert code == 200 and again["queued"] == [] and len(again["already_queued"]) == 1
        assert _upstream_depth(site) == 1
        # A statuses URL outside the configured API is refused: the token is never sent elsewhere.
        elsewhere = _pr(forge, "opened", SHA2, number=8)
        elsewhere["pull_request"]["statuses_url"] = f"https://evil.example/repos/x/y/statuses/{SHA2}"
        code, answer = _github(web, query, elsewhere)
        assert code == 400 and "pull_request.statuses_url" in answer["error"]
        # Closing the PR cancels its queued test: its status becomes an error.
        code, answer = _github(web, query, dict(opened, action="closed"))
        assert code == 200, answer
        final = _wait_statuses(forge, SHA1, len(statuses) + 1)[-1]
        assert final["state"] == "error" and final["description"] == "#7 closed"
        _worker_once(site)
        assert "was cancelled by #7 closed" in (site.root / "worker.log").read_text()
    finally:
        web.stop()


def test_a_pull_request_gets_pending_then_its_final_status_across_a_restart_and_an_outage(site, tmp_path, forge):
    site.run("gedit", ["glib2.0/2.80-1"])
    web = _web(site, tmp_path, forge)
    query = f"release={site.release}&arch={ARCH}&package=gedit"
    try:
        code, answer = _github(web, query, _pr(forge, "opened", SHA1))
        assert code == 200 and len(answer["queued"]) == 1, answer
        uuid = answer["queued"][0]["uuid"]
        assert [s["state"] for s in _wait_statuses(forge, SHA1, 1)] == ["pending"]
        # The service stops between pending and final; the test runs meanwhile; the event waits.
        web.stop()
        forge.fail_next = 3  # and GitHub answers 502 for a while
        _worker_once(site, exitcode=4)
        web.start()
        statuses = _wait_statuses(forge, SHA1, 2, timeout=60)
        assert statuses[1] == {"state": "failure", "context": f"{site.release}/{ARCH}",
                               "description": "fail (autopkgtest exit code 4)", "target_url": f"{web.url}/run/{uuid}"}
        assert forge.fail_next == 0  # the 502s were retried

        # A newer push supersedes the queued test of the older commit; the new one passes.
        code, first = _github(web, query, _pr(forge, "synchronize", SHA2))
        assert code == 200, first
        sha3 = "c" * 40
        code, second = _github(web, query, _pr(forge, "synchronize", sha3))
        assert code == 200, second
        # Its last status is the error (a pending not sent yet is dropped: it must not arrive after it).
        superseded = _wait_statuses(forge, SHA2, 1)
        deadline = time.monotonic() + 30
        while superseded[-1]["state"] != "error" and time.monotonic() < deadline:
            time.sleep(0.1)
            superseded = _wait_statuses(forge, SHA2, 1)
        assert [s["state"] for s in superseded] in (["pending", "error"], ["error"]), superseded
        assert superseded[-1]["description"] == f"superseded by {sha3[:12]}"
        _worker_once(site)  # drops the superseded request
        _worker_once(site, exitcode=0)
        final = _wait_statuses(forge, sha3, 2, timeout=60)
        assert [s["state"] for s in final] == ["pending", "success"]
        assert final[1]["target_url"] == f"{web.url}/run/{second['queued'][0]['uuid']}"
        assert forge.rejected == []
    finally:
        web.stop()


def test_a_request_not_started_in_time_ends_in_error(site, tmp_path, forge):
    site.run("gedit", ["glib2.0/2.80-1"])
    web = _web(site, tmp_path, forge, extra="start_timeout = 2\n")
    try:
        code, answer = _github(web, f"release={site.release}&arch={ARCH}&package=gedit", _pr(forge, "opened", SHA1))
        assert code == 200 and answer["queued"], answer
        statuses = _wait_statuses(forge, SHA1, 2, timeout=30)
        assert [s["state"] for s in statuses] == ["pending", "error"]
        assert statuses[1]["description"].startswith("not started within 2 s")
    finally:
        web.stop()


def test_a_request_the_worker_dead_letters_ends_in_error_with_the_reason(site, tmp_path, forge):
    # The web service takes local sources, the worker does not: it dead-letters the request at once.
    site.run("gedit", ["glib2.0/2.80-1"])
    web = _web(site, tmp_path, forge, extra="start_timeout = 3600\n[requests]\nallow_local_sources = true\n")
    try:
        payload = _pr(forge, "opened", SHA1)
        payload["pull_request"]["base"]["repo"]["clone_url"] = "/srv/git/gedit.git"
        code, answer = _github(web, f"release={site.release}&arch={ARCH}&package=gedit", payload)
        assert code == 200 and answer["queued"], answer
        _worker_once(site)
        statuses = _wait_statuses(forge, SHA1, 2, timeout=30)
        assert [s["state"] for s in statuses] == ["pending", "error"]
        assert statuses[1]["description"].startswith("not run: "), statuses[1]
        assert "build-git" in statuses[1]["description"], statuses[1]
        assert _upstream_depth(site) == 0
    finally:
        web.stop()


def test_a_status_the_forge_keeps_refusing_is_dropped_after_its_tries(site, tmp_path, forge):
    site.run("gedit", ["glib2.0/2.80-1"])
    web = _web(site, tmp_path, forge, extra="status_attempts = 2\n")
    try:
        forge.fail_next = 1000  # GitHub answers 502, for ever
        code, answer = _github(web, f"release={site.release}&arch={ARCH}&package=gedit", _pr(forge, "opened", SHA1))
        assert code == 200 and answer["queued"], answer
        deadline = time.monotonic() + 30
        while forge.fail_next > 998:
            assert time.monotonic() < deadline, forge.fail_next
            time.sleep(0.1)
        time.sleep(4)  # a third try would have come after 2 s
        assert forge.fail_next == 998
        log = (site.root / "web-web.log").read_text()
        assert "gave up sending a status" in log and "after 2 tries, the last: HTTP 502" in log
    finally:
        web.stop()


def test_a_redelivered_older_event_does_not_supersede_a_newer_push(site, tmp_path, forge):
    site.run("gedit", ["glib2.0/2.80-1"])
    web = _web(site, tmp_path, forge)
    try:
        query = f"release={site.release}&arch={ARCH}&package=gedit"
        newer, older = _pr(forge, "synchronize", SHA2), _pr(forge, "opened", SHA1)
        newer["pull_request"]["updated_at"] = "2026-01-02T10:00:00Z"
        older["pull_request"]["updated_at"] = "2026-01-02T09:59:59Z"
        code, answer = _github(web, query, newer)
        assert code == 200 and answer["queued"], answer
        # GitHub redelivers the opening event after the push: it changes nothing.
        code, answer = _github(web, query, older)
        assert code == 200 and answer["message"].startswith("stale: pull_request opened of #7"), answer
        assert _upstream_depth(site) == 1
        assert [s["state"] for s in _wait_statuses(forge, SHA2, 1)] == ["pending"]
        time.sleep(2)
        assert len(forge.recorded(SHA2)) == 1 and forge.recorded(SHA1) == []
    finally:
        web.stop()


def test_gitlab_merge_requests(site, tmp_path, forge):
    site.run("nautilus", ["glib2.0/2.80-1"])
    web = _web(site, tmp_path, forge)
    query = f"release={site.release}&arch={ARCH}&package=nautilus"
    hook = {"object_kind": "merge_request", "user": {"username": "alice"}, "project": {"id": 42},
            "object_attributes": {"iid": 3, "action": "open", "last_commit": {"id": SHA1},
                                  "source": {"git_http_url": f"{forge.url}/alice/nautilus.git"},
                                  "target": {"git_http_url": f"{forge.url}/gnome/nautilus.git"}}}
    try:
        code, answer = _post(web, query, hook, {"X-Gitlab-Event": "Merge Request Hook", "X-Gitlab-Token": "wrong"})
        assert code == 403 and "X-Gitlab-Token" in answer["error"]
        code, answer = _post(web, query, hook, {"X-Gitlab-Event": "Merge Request Hook"})
        assert code == 403
        edit = dict(hook, object_attributes=dict(hook["object_attributes"], action="update"))
        code, answer = _post(web, query, edit, {"X-Gitlab-Event": "Merge Request Hook", "X-Gitlab-Token": "gl-secret"})
        assert code == 200 and answer["message"] == "not relevant: merge_request update"  # a title edit
        code, answer = _post(web, query, hook, {"X-Gitlab-Event": "Merge Request Hook", "X-Gitlab-Token": "gl-secret"})
        assert code == 200 and len(answer["queued"]) == 1, answer
        params = _queued_params(web, site)
        assert [s["state"] for s in _wait_statuses(forge, SHA1, 1)] == ["pending"]
        assert params["build-git"] == f"{forge.url}/gnome/nautilus.git#refs/merge-requests/3/head"
        assert params["env"] == ["UPSTREAM_MERGE_REQUEST=3"] and params["requester"] == "gitlab:alice"
        _worker_once(site)
        statuses = [s for s in _wait_statuses(forge, SHA1, 2, timeout=60)]
        assert all(s["forge"] == "gitlab" and s["repo"] == "42" for s in forge.recorded(SHA1))
        assert [s["state"] for s in statuses] == ["pending", "success"]
        assert statuses[1]["name"] == f"{site.release}/{ARCH}"
    finally:
        web.stop()


def test_retry_github_test_replays_the_webhook_against_the_running_service(site, tmp_path, forge):
    site.run("gedit", ["glib2.0/2.80-1"])
    web = _web(site, tmp_path, forge)
    pr = _pr(forge, "opened", SHA2, number=9)["pull_request"]
    forge.pulls["upstream/gedit/9"] = dict(pr, number=9, user={"login": "octocat"}, state="open")
    secret = tmp_path / "gedit.secret"
    secret.write_text(SECRET + "\n")
    tool = need("APCLOUD_RETRY_GITHUB_TEST")
    request_url = f"{web.url}/request.cgi?release={site.release}&arch={ARCH}&package=gedit"
    try:
        done = subprocess.run([tool, f"{forge.url}/repos/upstream/gedit/pulls/9", request_url, str(secret)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert [q["context"] for q in answer["queued"]] == [f"{site.release}/{ARCH}"]
        assert _upstream_depth(site) == 1
        assert [s["state"] for s in _wait_statuses(forge, SHA2, 1)] == ["pending"]
        assert _queued_params(web, site)["env"][0] == "UPSTREAM_PULL_REQUEST=9"

        secret.write_text("not the secret\n")
        refused = subprocess.run([tool, f"{forge.url}/repos/upstream/gedit/pulls/9", request_url, str(secret)],
                                 capture_output=True, text=True)
        assert refused.returncode == 1 and "HTTP 403" in refused.stderr, refused.stderr
        missing = subprocess.run([tool, f"{forge.url}/repos/upstream/gedit/pulls/10", request_url, str(secret)],
                                 capture_output=True, text=True)
        assert missing.returncode == 4 and "no pull request" in missing.stderr, missing.stderr
        usage = subprocess.run([tool, f"{forge.url}/repos/upstream/gedit/pulls/9"], capture_output=True, text=True)
        assert usage.returncode == 2
        assert _upstream_depth(site) == 1
    finally:
        web.stop()


def test_a_newer_push_stops_the_running_test_of_an_older_commit_when_configured(site, tmp_path, forge):
    site.run("gedit", ["glib2.0/2.80-1"])
    web = _web(site, tmp_path, forge, extra="cancel_running = true\n")
    query = f"release={site.release}&arch={ARCH}&package=gedit"
    (site.root / "fake" / "sleep").write_text("60\n")
    log = open(site.root / "worker.log", "ab")
    worker = subprocess.Popen([need("APCLOUD_WORKER_BIN"), "-c", str(site.config), "--count", "1"], env=site.env,
                              stdout=log, stderr=log)
    try:
        code, answer = _github(web, query, _pr(forge, "opened", SHA1))
        assert code == 200 and answer["queued"], answer
        uuid = answer["queued"][0]["uuid"]
        web.wait_json("/api/v1/running", lambda tests: any(t["params"].get("uuid") == uuid for t in tests),
                      timeout=60)
        assert [s["state"] for s in _wait_statuses(forge, SHA1, 1)] == ["pending"]
        code, answer = _github(web, query, _pr(forge, "synchronize", SHA2))
        assert code == 200 and answer["queued"], answer
        assert worker.wait(timeout=30) == 0  # stopped at its next status tick, not after 60 s
        statuses = _wait_statuses(forge, SHA1, 2)
        assert [s["state"] for s in statuses] == ["pending", "error"]
        assert statuses[1]["description"] == f"superseded by {SHA2[:12]}"
        assert "cancelled by superseded by" in (site.root / "worker.log").read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
        log.close()
        web.stop()


def test_a_maintainer_retries_a_pull_requests_run_and_the_pr_gets_its_statuses(site, tmp_path, forge):
    """GET /api/v1/retry/RUN_ID (britney's retry URL) of a run a webhook queued: with an API key of someone
    the access file allows the package, the same request again, its statuses to the recorded URL."""
    site.run("gedit", ["glib2.0/2.80-1"])
    keys = tmp_path / "api-keys"
    made = {u: subprocess.run([need("APCLOUD_TOOL"), "keys", "create", u, "--keys", str(keys)], capture_output=True,
                              text=True, check=True).stdout.strip() for u in ("maint", "other")}
    (tmp_path / "access.conf").write_text("[team desktop]\nusers = maint\npackages = gedit\n")
    web = _web(site, tmp_path, forge,
               extra=f"[requests]\nkeys_file = {keys}\naccess_file = {tmp_path / 'access.conf'}\n")
    try:
        code, answer = _github(web, f"release={site.release}&arch={ARCH}&package=gedit", _pr(forge, "opened", SHA1))
        assert code == 200 and answer["queued"], answer
        uuid = answer["queued"][0]["uuid"]
        assert [s["state"] for s in _wait_statuses(forge, SHA1, 1)] == ["pending"]
        _worker_once(site, exitcode=4)
        assert [s["state"] for s in _wait_statuses(forge, SHA1, 2, timeout=60)] == ["pending", "failure"]
        run = web.wait_json(f"/api/v1/run/{uuid}", lambda r: True)
        run_id = run["run_id"]
        assert run["retry"] == f"/api/v1/retry/{urllib.parse.quote(run_id)}"  # request.cgi cannot carry a PR's env
        web.wait_json("/queued.json", lambda q: q["queues"]["upstream"][site.release][ARCH]["size"] == 0)

        def retry(key=None):
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            code, _, body = web.get(run["retry"], headers=dict(headers, Accept="application/json"))
            return code, json.loads(body)

        assert retry()[0] == 401
        code, refused = retry(made["other"])
        assert code == 403, refused
        code, again = retry(made["maint"])
        assert code == 200, again
        new = again["requests"][0]
        assert new["requester"] == "maint" and new["uuid"] != uuid
        params = _queued_params(web, site)
        assert params["env"] == ["UPSTREAM_PULL_REQUEST=7",
                                 f"GITHUB_STATUSES_URL={forge.url}/repos/upstream/gedit/statuses/{SHA1}"]
        statuses = _wait_statuses(forge, SHA1, 3)  # sent before the worker starts: nothing can replace it
        assert statuses[2]["state"] == "pending" and statuses[2]["description"].startswith("retried by maint in ")
        assert statuses[2]["target_url"] == f"{web.url}/run/{new['uuid']}"
        _worker_once(site, exitcode=0)
        assert [s["state"] for s in _wait_statuses(forge, SHA1, 4, timeout=60)][3] == "success"
    finally:
        web.stop()
