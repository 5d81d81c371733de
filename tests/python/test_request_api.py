"""The request API end to end: a key made with `apcloud keys create`, a test requested over HTTP from
the web service (autopkgtest-cloud-web), the request on the broker (embedded, and real RabbitMQ), run
by the real worker program, and its result at the request's /run/UUID.
"""
import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from gating_site import ARCH, Site, need
from web_site import WebService


@pytest.fixture(params=["embedded", "swift"])
def site(request, tmp_path):
    return Site(request.param, tmp_path)


def _call(web, path, key=None, body=None, headers=None):
    headers = dict(headers or {})
    if key:
        headers["Authorization"] = f"Bearer {key}"
    headers.setdefault("Accept", "application/json")
    data = json.dumps(body).encode() if body is not None else None
    if data:
        headers["Content-Type"] = "application/json"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(web.url + path, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with opener.open(request, timeout=30) as r:
            return r.status, r.headers, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read())


def _run_worker_once(site):
    log = open(site.root / "worker.log", "ab")
    try:
        subprocess.run([need("APCLOUD_WORKER_BIN"), "-c", str(site.config), "--count", "1"], env=site.env,
                       stdout=log, stderr=log, timeout=120, check=True)
    finally:
        log.close()


def _web_with_keys(site, tmp_path, users, access, extra=""):
    """A started web service whose request API knows a key for each of `users` and the rules `access`;
    returns (web, {user: key})."""
    keys = tmp_path / "api-keys"
    made = {u: subprocess.run([need("APCLOUD_TOOL"), "keys", "create", u, "--keys", str(keys)],
                              capture_output=True, text=True, check=True).stdout.strip() for u in users}
    (tmp_path / "access.conf").write_text(access)
    web = WebService(site, extra=f"[requests]\nkeys_file = {keys}\naccess_file = {tmp_path / 'access.conf'}\n"
                                 f"{extra}")
    web.start()
    return web, made


def test_a_requested_test_is_queued_run_and_shown(site, tmp_path):
    keys = tmp_path / "api-keys"
    out = subprocess.run([need("APCLOUD_TOOL"), "keys", "create", "carol", "--keys", str(keys)],
                         capture_output=True, text=True, check=True)
    key = out.stdout.strip()
    assert key.startswith("apc_") and key not in keys.read_text()
    assert oct(os.stat(keys).st_mode & 0o777) == "0o600"
    (tmp_path / "access.conf").write_text("[team desktop]\nusers = carol\npackages = gedit\n")
    web = WebService(site, extra=f"[requests]\nkeys_file = {keys}\naccess_file = {tmp_path / 'access.conf'}\n")
    web.start()
    try:
        site.run("gedit", ["glib2.0/2.80-1"])  # the worker declares its queues
        path = f"/request.cgi?release={site.release}&arch={ARCH}&package=gedit&trigger=gedit/1.0-2"
        assert _call(web, path)[0] == 401
        code, _, answer = _call(web, path, key)
        assert code == 200, answer
        [made] = answer["requests"]
        assert made["requester"] == "carol" and made["queue"] == f"debci-{site.release}-{ARCH}"
        code, _, again = _call(web, path, key)
        assert code == 409 and again["existing"]["uuid"] == made["uuid"]
        other = f"/request.cgi?release={site.release}&arch={ARCH}&package=nautilus&trigger=glib2.0/2.80-1"
        code, _, refused = _call(web, other, key)
        assert code == 403 and "carol may not request tests of nautilus" in refused["error"]
        code, _, bad = _call(web, path + "&colour=blue", key)
        assert code == 400 and "colour" in bad["error"]

        _run_worker_once(site)  # runs exactly the queued request
        run = web.wait_json(f"/api/v1/run/{made['uuid']}", lambda r: True)
        assert run["requester"] == "carol" and run["triggers"] == ["gedit/1.0-2"]
        code, headers, _ = web.get(f"/run/{made['uuid']}")
        assert code == 200  # the redirect to the run's page was followed

        # Retry by run id (britney's ADT_RETRY_URL_MECH=run_id), as a batch of one through the JSON API too.
        code, _, retried = _call(web, f"/api/v1/retry/{run['run_id']}", key)
        assert code == 200 and retried["requests"][0]["triggers"] == ["gedit/1.0-2"], retried
        code, _, batch = _call(web, "/api/v1/test", key, [
            {"package": "gedit", "release": site.release, "arch": [ARCH], "triggers": ["gedit/1.0-3"]}])
        assert code == 200 and len(batch["requests"]) == 1
    finally:
        web.stop()


def test_run_autopkgtest_prints_what_it_sends_and_the_worker_runs_it(site):
    tool = need("APCLOUD_RUN_AUTOPKGTEST")
    for program in (tool, need("APCLOUD_TOOL")):
        version = subprocess.run([program, "--version"], capture_output=True, text=True, check=True).stdout
        assert version.startswith(os.path.basename(program) + " ") and version.strip()[-1].isdigit(), version
    base = [tool, "-s", site.release, "-a", ARCH, "--trigger", "glib2.0/2.80-1", "--env", "X=1",
            "--requester", "rita"]
    dry = subprocess.run(base + ["--dry-run", "gedit", "nautilus"], capture_output=True, text=True, check=True)
    lines = dry.stdout.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == [f"debci-{site.release}-{ARCH}"] * 2
    queue, message = lines[0].split(":", 1)
    package, params = message.split(" ", 1)
    params_json = json.loads(params)
    assert package == "gedit" and params == json.dumps(params_json, sort_keys=True)  # SPEC.md 1's encoding
    assert params_json["triggers"] == ["glib2.0/2.80-1"] and params_json["env"] == ["X=1"]
    assert params_json["requester"] == "rita" and params_json["uuid"] and params_json["submit-time"]

    bad = subprocess.run(base + ["--dry-run", "Not_A_Package"], capture_output=True, text=True)
    assert bad.returncode == 3 and "package" in bad.stderr
    bad = subprocess.run(base + ["--dry-run", "--env", "ADT_TEST_TRIGGERS=x/1", "gedit"], capture_output=True,
                         text=True)
    assert bad.returncode == 3 and "ADT_TEST_TRIGGERS" in bad.stderr

    site.run("gedit", ["gtk+3.0/3.24-1"])  # the worker declares its queues
    # The broker URL (with its password) from the environment: secrets stay out of argv.
    sent = subprocess.run(base + ["gedit"], capture_output=True, text=True,
                          env=dict(site.env, APCLOUD_AMQP_URL=site.sink_url))
    assert sent.returncode == 0, sent.stderr
    uuid = json.loads(sent.stdout.split(" ", 1)[1])["uuid"]
    _run_worker_once(site)
    results = site.collect("gedit")
    assert any(r.triggers == ["glib2.0/2.80-1"] for r in results), results
    assert uuid


def test_the_tools_read_their_settings_from_client_conf_under_the_environment(site, tmp_path):
    """~/.config/autopkgtest-cloud/client.conf (or $APCLOUD_CONFIG): the broker, architectures and store of
    run-autopkgtest and apcloud without options; the environment and options win; secrets only in a
    private file; errors name the file and key (exit 78)."""
    site.run("gedit", ["gtk+3.0/3.24-1"])  # the worker declares its queues
    home = tmp_path / "home"
    conf = home / ".config" / "autopkgtest-cloud" / "client.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text(f"[client]\namqp_url = {site.sink_url}\narchitectures = {ARCH}\nstore_url = {site.store_url}\n")
    conf.chmod(0o600)
    env = {k: v for k, v in site.env.items() if not k.startswith("APCLOUD_AMQP") and k != "APCLOUD_CONFIG"}
    env["HOME"] = str(home)
    env.pop("XDG_CONFIG_HOME", None)
    tool, admin = need("APCLOUD_RUN_AUTOPKGTEST"), need("APCLOUD_TOOL")
    sent = subprocess.run([tool, "-s", site.release, "--trigger", "glib2.0/2.80-1", "gedit"], capture_output=True,
                          text=True, env=env)
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith(f"debci-{site.release}-{ARCH}:gedit "), sent.stdout
    uuid = json.loads(sent.stdout.split(" ", 1)[1])["uuid"]
    # apcloud: the broker of `queues` and the store of `cancel` from the file too.
    depths = subprocess.run([admin, "queues", "--release", site.release, "--arch", ARCH], capture_output=True,
                            text=True, env=dict(env, APCLOUD_AMQP_URL=site.broker_url))
    assert depths.returncode == 0, depths.stderr
    assert f"debci-{site.release}-{ARCH} 1" in depths.stdout.splitlines(), depths.stdout
    cancelled = subprocess.run([admin, "cancel", uuid], capture_output=True, text=True, env=env)
    assert cancelled.returncode == 0 and cancelled.stdout.strip() == f"cancelled {uuid}", cancelled.stderr
    # The environment wins over the file: a broker that does not exist is used, and fails.
    other = subprocess.run([tool, "-s", site.release, "gedit"], capture_output=True, text=True,
                           env=dict(env, APCLOUD_AMQP_URL=f"sqlite://{tmp_path}/none/queue.db"))
    assert other.returncode != 0

    # A secret in a file others may read: refused, naming the key, never showing it.
    conf.write_text(f"[client]\narchitectures = {ARCH}\napi_key = s3cret-key\n")
    conf.chmod(0o644)
    leaky = subprocess.run([tool, "-s", site.release, "--dry-run", "gedit"], capture_output=True, text=True, env=env)
    assert leaky.returncode == 78, leaky.stderr
    assert f"{conf} [client] api_key: a secret in a file others may read" in leaky.stderr
    assert "s3cret-key" not in leaky.stderr
    conf.write_text("[client]\narchitecture = amd64\n")
    typo = subprocess.run([tool, "-s", site.release, "--dry-run", "gedit"], capture_output=True, text=True, env=env)
    assert typo.returncode == 78 and "[client] architecture: unknown key" in typo.stderr, typo.stderr
    # A file named by APCLOUD_CONFIG must exist; without any file, the options are asked for.
    missing = subprocess.run([tool, "-s", site.release, "--dry-run", "gedit"], capture_output=True, text=True,
                             env=dict(env, APCLOUD_CONFIG=str(tmp_path / "nope.conf")))
    assert missing.returncode == 1 and "nope.conf" in missing.stderr, missing.stderr
    conf.unlink()
    none = subprocess.run([tool, "-s", site.release, "--dry-run", "gedit"], capture_output=True, text=True, env=env)
    assert none.returncode == 3 and "APCLOUD_ARCHITECTURES" in none.stderr and "architectures in client.conf" in \
        none.stderr, none.stderr


def _queue_depths(site, arches):
    out = subprocess.run([need("APCLOUD_TOOL"), "queues", "--broker", site.broker_url, "--release", site.release,
                          "--arch", *arches], capture_output=True, text=True, check=True, env=site.env).stdout
    return {line.split()[0]: line.split()[1] for line in out.splitlines()}


def test_run_autopkgtest_sends_many_at_once_and_says_which_were_not_queued(site):
    """Britney's bulk case: hundreds of packages in one call (pipelined confirms on RabbitMQ); a missing
    queue refuses only its own requests, each named on stderr, and the exit status says so."""
    tool = need("APCLOUD_RUN_AUTOPKGTEST")
    site.run("gedit", ["gtk+3.0/3.24-1"])  # the worker declares the queues of its architecture
    packages = [f"pkg{i}" for i in range(600)]
    env = dict(site.env, APCLOUD_AMQP_URL=site.sink_url)
    sent = subprocess.run([tool, "-s", site.release, "-a", ARCH, "--trigger", "glib2.0/2.80-1", *packages],
                          capture_output=True, text=True, env=env)
    assert sent.returncode == 0, sent.stderr
    lines = sent.stdout.splitlines()
    assert [line.split(":", 1)[1].split(" ", 1)[0] for line in lines] == packages  # one line per queued request
    assert len({json.loads(line.split(" ", 1)[1])["uuid"] for line in lines}) == 600
    queue = f"debci-{site.release}-{ARCH}"
    assert _queue_depths(site, [ARCH])[queue] == "600"

    other = "s390x" if ARCH != "s390x" else "ppc64el"  # no worker declared its queue
    mixed = subprocess.run([tool, "-s", site.release, "-a", ARCH, "-a", other, "gedit", "nautilus"],
                           capture_output=True, text=True, env=env)
    assert mixed.returncode == 4, mixed.stderr  # a queue not found
    assert [line.split(":", 1)[0] for line in mixed.stdout.splitlines()] == [queue, queue]
    refused = mixed.stderr.splitlines()
    assert len(refused) == 2 and all("not queued" in line and f"debci-{site.release}-{other}" in line
                                     for line in refused), mixed.stderr
    assert _queue_depths(site, [ARCH])[queue] == "602"


def test_a_request_is_cancelled_by_its_requester_or_an_admin_and_never_runs(site, tmp_path):
    web, k = _web_with_keys(site, tmp_path, ["carol", "dave", "boss"],
                            "[admins]\nusers = boss\n[team desktop]\nusers = carol dave\npackages = gedit\n")
    carol, dave, boss = k["carol"], k["dave"], k["boss"]
    try:
        site.run("gedit", ["glib2.0/2.80-1"])  # the worker declares its queues
        assert len(site.collect("gedit")) == 1  # britney's marker now stands after that run
        ask = f"/request.cgi?release={site.release}&arch={ARCH}&package=gedit&trigger=gedit/2.0-1"
        code, _, answer = _call(web, ask, carol)
        assert code == 200, answer
        uuid = answer["requests"][0]["uuid"]
        cancel = f"/api/v1/cancel/{uuid}"
        assert _call(web, cancel, body={})[0] == 401
        code, _, refused = _call(web, cancel, dave, body={})
        assert code == 403 and "only its requester (carol) and admins" in refused["error"], refused
        code, _, missing = _call(web, "/api/v1/cancel/no-such-request", carol, body={})
        assert code == 404 and "no-such-request" in missing["error"]
        code, _, bad = _call(web, "/api/v1/cancel/not%20a%20uuid", carol, body={})
        assert code == 400 and "uuid" in bad["error"]
        assert web.get(cancel)[0] == 405  # a GET changes nothing
        code, _, done = _call(web, cancel, carol, body={})  # at once: the queue view may not show it yet
        assert code == 200, done
        assert done["cancelled"] == {"uuid": uuid, "state": "queued", "package": "gedit", "release": site.release,
                                     "arch": ARCH, "by": "carol"}

        # An admin may cancel anyone's; the worker acks both without running them.
        code, _, other = _call(web, ask.replace("2.0-1", "2.0-2"), dave)
        assert code == 200, other
        code, _, done = _call(web, f"/api/v1/cancel/{other['requests'][0]['uuid']}", boss, body={})
        assert code == 200 and done["cancelled"]["by"] == "boss", done
        # Both still wait in the queue for a worker to drop them, but the queue views no longer show them.
        assert _queue_depths(site, [ARCH])[f"debci-{site.release}-{ARCH}"] == "2"
        queued = web.wait_json("/queued.json", lambda q: q["queues"]["ubuntu"][site.release][ARCH]["size"] == 0)
        assert queued["queues"]["ubuntu"][site.release][ARCH] == {"size": 0, "requests": []}
        assert _call(web, "/api/v1/queued")[2] == []
        assert _call(web, cancel, carol, body={})[0] == 404  # nothing left to cancel
        _run_worker_once(site)
        _run_worker_once(site)
        log = (site.root / "worker.log").read_text()
        assert f"request {uuid} on {site.release}/{ARCH} was cancelled by carol" in log, log[-2000:]
        assert "was cancelled by boss" in log
        assert site.collect("gedit") == []  # nothing ran, nothing stored
    finally:
        web.stop()


def test_a_running_request_is_cancelled_through_the_api_and_stops_at_once(site, tmp_path):
    web, k = _web_with_keys(site, tmp_path, ["carol", "dave"], "[team desktop]\nusers = carol dave\npackages = gedit\n")
    try:
        site.run("gedit", ["glib2.0/2.80-1"])  # the worker declares its queues
        assert len(site.collect("gedit")) == 1
        code, _, answer = _call(web, f"/request.cgi?release={site.release}&arch={ARCH}&package=gedit"
                                     "&trigger=gedit/2.0-1", k["carol"])
        assert code == 200, answer
        uuid = answer["requests"][0]["uuid"]
        (site.root / "fake" / "sleep").write_text("60\n")
        log = open(site.root / "worker.log", "ab")
        worker = subprocess.Popen([need("APCLOUD_WORKER_BIN"), "-c", str(site.config), "--count", "1"], env=site.env,
                                  stdout=log, stderr=log)
        try:
            web.wait_json("/api/v1/running", lambda tests: any(t["params"].get("uuid") == uuid for t in tests),
                          timeout=60)
            code, _, done = _call(web, f"/api/v1/cancel/{uuid}", k["carol"], body={})
            assert code == 200, done
            assert done["cancelled"]["state"] == "running" and done["cancelled"]["by"] == "carol", done
            t0 = time.time()
            assert worker.wait(timeout=30) == 0
            assert time.time() - t0 < 15  # at the next status tick, not after the test's 60 s
        finally:
            if worker.poll() is None:
                worker.kill()
            log.close()
        text = (site.root / "worker.log").read_text()
        assert "cancelled by carol while it ran" in text, text[-2000:]
        assert site.collect("gedit") == []  # nothing stored for the cancelled one
        assert _queue_depths(site, [ARCH])[f"debci-{site.release}-{ARCH}"] == "0"  # acked
    finally:
        web.stop()


def test_a_newer_upload_supersedes_the_queued_requests_of_an_older_one_when_configured(site, tmp_path):
    web, k = _web_with_keys(site, tmp_path, ["britney"], "[admins]\nusers = britney\n", "supersede = true\n")
    key = k["britney"]
    try:
        site.run("gedit", ["glib2.0/2.80-1"])  # the worker declares its queues
        site.collect("gedit")
        time.sleep(1.1)  # run ids have one-second resolution: later runs in a second of their own

        def ask(package, *triggers):
            query = "".join(f"&trigger={urllib.parse.quote(t, safe='/')}" for t in triggers)
            code, _, answer = _call(web, f"/request.cgi?release={site.release}&arch={ARCH}&package={package}{query}",
                                    key)
            assert code == 200, answer
            return answer["requests"][0]

        old = ask("gedit", "glib2.0/2.81-1")
        other_source = ask("gedit", "gtk+3.0/3.24-2")
        other_package = ask("nautilus", "glib2.0/2.81-1")
        new = ask("gedit", "glib2.0/2.81-2")
        assert new["superseded"] == [old["uuid"]], new
        assert other_source["superseded"] == [] and other_package["superseded"] == []

        for _ in range(4):
            _run_worker_once(site)
        log = (site.root / "worker.log").read_text()
        assert f"request {old['uuid']} on {site.release}/{ARCH} was cancelled by superseded by {new['uuid']}" in log
        ran = {tuple(r.triggers) for r in site.collect("gedit")}
        assert ran == {("gtk+3.0/3.24-2",), ("glib2.0/2.81-2",)}, ran
    finally:
        web.stop()


def test_run_autopkgtest_through_the_request_api_with_a_key_from_the_environment(site, tmp_path):
    web, k = _web_with_keys(site, tmp_path, ["carol"], "[team desktop]\nusers = carol\npackages = gedit\n")
    key = k["carol"]
    try:
        site.run("gedit", ["glib2.0/2.80-1"])  # the worker declares its queues
        tool = need("APCLOUD_RUN_AUTOPKGTEST")
        base = [tool, "-s", site.release, "-a", ARCH, "--api", web.url, "--trigger", "glib2.0/2.82-1",
                "--env", "X=1"]
        env = dict(site.env, APCLOUD_API_KEY=key)
        sent = subprocess.run(base + ["gedit", "nautilus"], capture_output=True, text=True, env=env)
        assert sent.returncode == 1, sent.stderr  # nautilus is not carol's to request
        [line] = sent.stdout.splitlines()
        assert line.startswith(f"queued gedit on {site.release}/{ARCH}: ") and f"debci-{site.release}-{ARCH}" in line
        assert "not queued nautilus" in sent.stderr and "carol may not request tests of nautilus" in sent.stderr
        again = subprocess.run(base + ["gedit"], capture_output=True, text=True, env=env)
        assert again.returncode == 0 and again.stdout.startswith("already queued or running gedit"), again
        bulk = subprocess.run(base + ["--bulk", "gedit"], capture_output=True, text=True, env=env)
        assert bulk.returncode == 3 and "--bulk" in bulk.stderr
        nokey = subprocess.run(base + ["gedit"], capture_output=True, text=True,
                               env={k: v for k, v in env.items() if k != "APCLOUD_API_KEY"})
        assert nokey.returncode == 3 and "APCLOUD_API_KEY" in nokey.stderr, nokey.stderr
        _run_worker_once(site)
        # Both runs may start in one second, so their ids need not sort in run order: look at all.
        assert any(r.triggers == ["glib2.0/2.82-1"] for r in site.collect("gedit"))
    finally:
        web.stop()
