"""retry-autopkgtest-regressions against the real web service (autopkgtest-cloud-web) on the embedded
stack: logs searched through the service's /results links (--log-regex), retries sent with --submit
and an API key (environment or file), what the request API answered for each (queued, already
queued, refused), and the queued retry run by the real worker program with the excuse's trigger.
"""
import json
import os
import subprocess

from gating_site import ARCH, Site, need
from web_site import WebService

TRIGGER = "glib2.0/2.80.0-1"


def _excuses(site, web, logs):
    """An excuses.yaml in britney's shape: gedit and nautilus regressed for glib2.0, gnome-shell pending."""
    def result(state, log):
        return [state, log, f"{web.url}/packages/{site.release}/{ARCH}", None, None]
    tests = {
        "gedit/46.0-1": {ARCH: result("REGRESSION", logs["gedit"])},
        "nautilus/1:46.1-1": {ARCH: result("REGRESSION", logs["nautilus"])},
        "gnome-shell": {ARCH: result("RUNNING", f"{web.url}/running")},
        "verdict": "REJECTED_PERMANENTLY",
    }
    excuse = {"item-name": "glib2.0", "source": "glib2.0", "new-version": "2.80.0-1", "old-version": "2.78.0-2",
              "policy_info": {"age": {"current-age": 2}, "autopkgtest": tests}}
    path = site.root / "excuses.yaml"
    path.write_text(json.dumps({"generated-date": "2026-11-30 10:00:00", "sources": [excuse]}))  # JSON is YAML
    return path


def _retry(args, **env):
    proc = subprocess.run([need("APCLOUD_RETRY_REGRESSIONS")] + args, capture_output=True, text=True,
                          env=dict({k: v for k, v in os.environ.items() if k != "APCLOUD_API_KEY"}, **env),
                          timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def test_submit_sends_the_retries_through_the_request_api(tmp_path):
    site = Site("embedded", tmp_path)
    keys = tmp_path / "api-keys"

    def make_key(user):
        out = subprocess.run([need("APCLOUD_TOOL"), "keys", "create", user, "--keys", str(keys)],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()

    key, stranger = make_key("rita"), make_key("sam")
    (tmp_path / "access.conf").write_text("[team desktop]\nusers = rita\npackages = glib2.0\n")
    web = WebService(site, extra=f"[requests]\nkeys_file = {keys}\naccess_file = {tmp_path / 'access.conf'}\n")
    web.start()
    try:
        # Two real runs (the worker declares its queues on the way): gedit failed, nautilus passed.
        site.run("gedit", [TRIGGER], exitcode=4, version="46.0-1")
        site.run("nautilus", [TRIGGER], exitcode=0, version="1:46.1-1")
        logs = {}
        for package in ("gedit", "nautilus"):
            [run] = site.collect(package)
            logs[package] = f"{web.url}/results/{site.container}/{site.release}/{ARCH}/{package[0]}/{package}/" \
                            f"{run.run_id}/log.gz"
        excuses = str(_excuses(site, web, logs))
        base = [excuses, "--series", site.release, "--url", web.url]

        # Printing: the logs are fetched through the service (gzip) and searched.
        code, out, err = _retry(base + ["--log-regex", "^finished with 0$"])
        assert (code, err) == (0, ""), err
        assert out == (f"{web.url}/request.cgi?release={site.release}&arch={ARCH}&package=nautilus"
                       "&trigger=glib2.0%2F2.80.0-1\n")

        # Sending, with the key from the environment: only gedit's log says it failed.
        code, out, err = _retry(base + ["--log-regex", "finished with [1-9]", "--submit"], APCLOUD_API_KEY=key)
        assert code == 0, err
        prefix = f"queued gedit on {site.release}/{ARCH} for {TRIGGER}: "
        assert out.startswith(prefix) and out.count("\n") == 1, out
        uuid, queue = out[len(prefix):].split()[0], out.split()[-1]
        assert queue == f"debci-{site.release}-{ARCH}"

        # Again: the identical request is queued already (409), which is not a failure.
        code, out, err = _retry(base + ["--blocked-by", "gedit", "--submit"], APCLOUD_API_KEY=key)
        assert code == 0, err
        assert out == f"already queued or running gedit on {site.release}/{ARCH} for {TRIGGER}: {uuid}\n"

        # The key from a file; the pending test retried (--state RUNNING --only-unknown).
        (tmp_path / "key").write_text(key + "\n")
        code, out, err = _retry(base + ["--state", "RUNNING", "--only-unknown", "--submit",
                                        "--api-key-file", str(tmp_path / "key")])
        assert code == 0, err
        assert out.startswith(f"queued gnome-shell on {site.release}/{ARCH} for {TRIGGER}: "), out

        # A user the access file does not allow: each refusal reported, exit 1.
        code, out, err = _retry(base + ["--blocked-by", "nautilus", "--submit"], APCLOUD_API_KEY=stranger)
        assert code == 1 and out == ""
        assert "not queued nautilus" in err and "sam may not request" in err, err
        # A key the service does not know: stop at once.
        code, out, err = _retry(base + ["--submit"], APCLOUD_API_KEY="apc_0000_nope")
        assert code == 1 and out == "" and "refused the key: HTTP 401" in err, err

        # The worker runs the first queued request: gedit's retry, with the excuse's trigger, as rita.
        log = open(site.root / "worker.log", "ab")
        try:
            subprocess.run([need("APCLOUD_WORKER_BIN"), "-c", str(site.config), "--count", "1"], env=site.env,
                           stdout=log, stderr=log, timeout=120, check=True)
        finally:
            log.close()
        run = web.wait_json(f"/api/v1/run/{uuid}", lambda r: True)
        assert run["package"] == "gedit" and run["triggers"] == [TRIGGER] and run["requester"] == "rita"
    finally:
        web.stop()
