"""examples/python/gate.py against the embedded stack of the README, with real autopkgtest.

The pool (`apcloud up`) runs autopkgtest's null runner on the example source
tree examples/hello-apc; the script requests, waits and prints verdicts.
"""
import os
import pathlib
import re
import signal
import subprocess
import sys

import pytest

TOP = pathlib.Path(__file__).resolve().parents[2]
GATE = TOP / "examples" / "python" / "gate.py"


def _gate(data, *args, timeout=300):
    env = dict(os.environ, PYTHONPATH=os.environ["PYTHONPATH"])
    return subprocess.run([sys.executable, str(GATE), "--data", str(data), *args], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture
def data(tmp_path):
    return tmp_path / "apcloud-data"


def _start_pool(data, env=None):
    tool = os.environ.get("APCLOUD_TOOL")
    if not tool:
        pytest.fail("APCLOUD_TOOL (the apcloud program) is not set; run the tests with scripts/run-tests")
    data.mkdir(exist_ok=True)
    return subprocess.Popen([tool, "up", "--data", str(data), "--workers", "1"], stdout=subprocess.DEVNULL,
                            stderr=open(data / "pool.log", "ab"), env=env)


def test_gate_example_requests_waits_and_decides(data):
    source = str(TOP / "examples" / "hello-apc")
    # No pool yet: the request is sent and remembered as pending; results are missing (exit 2).
    early = _gate(data, "--trigger", "hello-apc/1.0-1", "--build-git", source, "--timeout", "0", "hello-apc")
    assert early.returncode == 2, early.stdout + early.stderr
    assert "requested hello-apc" in early.stdout and "RUNNING-ALWAYSFAIL" in early.stdout
    pool = _start_pool(data)
    try:
        # Run again: nothing is requested twice; the pending test's result arrives.
        first = _gate(data, "--trigger", "hello-apc/1.0-1", "--build-git", source, "hello-apc")
        assert first.returncode == 0, first.stdout + first.stderr
        assert "requested" not in first.stdout
        assert "hello-apc unstable/" in first.stdout and ": PASS (version 1.0-1, run " in first.stdout
        log = [line.split()[1] for line in first.stdout.splitlines() if line.strip().startswith("log:")][0]
        assert pathlib.Path(log[len("file://"):]).is_file()
        assert "hello-apc/1.0-1: may migrate" in first.stdout

        # A new trigger whose test fails (the example fails on request): a regression blocks it.
        second = _gate(data, "--trigger", "glib2.0/2.80-1", "--env", "HELLO_FAIL=1", "--build-git", source,
                       "hello-apc")
        assert second.returncode == 1, second.stdout + second.stderr
        assert ": REGRESSION (version 1.0-1" in second.stdout
        assert "retry:   http://localhost:8080/request.cgi?release=unstable&arch=" in second.stdout
        assert "glib2.0/2.80-1: blocked by hello-apc" in second.stdout
    finally:
        pool.send_signal(signal.SIGTERM)
        pool.wait(timeout=60)

    bad = _gate(data, "--trigger", "pango1.0/1.52-1", "--env", "NOT AN ENV", "hello-apc")
    assert bad.returncode == 3 and "env" in bad.stderr


def test_gate_example_keeps_a_tmpfail_running(data, tmp_path):
    """A testbed failure past the worker's retries is RUNNING to britney, never a REGRESSION."""
    fake = tmp_path / "fake"
    fake.mkdir()
    data.mkdir()
    arch = subprocess.run(["dpkg", "--print-architecture"], check=True, capture_output=True, text=True).stdout.strip()
    test_data = pathlib.Path(os.environ["APCLOUD_TEST_DATA"])
    # The pool's worker.conf, with the stand-in autopkgtest (a real testbed failure cannot be provoked
    # on demand); apcloud up keeps a worker.conf it finds.
    (data / "worker.conf").write_text(
        f"[amqp]\nurl = sqlite://{data}/queue.db\n[swift]\nurl = file://{data}/results\n"
        f"[autopkgtest]\nreleases = unstable\narchitectures = {arch}\n"
        f"checkout_dir = {test_data / 'fake-autopkgtest'}\nwork_dir = {tmp_path}\nallow_local_sources = true\n"
        "testbed_failure_retries = 1\ntestbed_failure_backoff = 0\nstatus_interval = 1\n[virt]\nargs = null\n")
    source = str(TOP / "examples" / "hello-apc")
    pool = _start_pool(data, dict(os.environ, FAKE_ADT_DIR=str(fake)))
    try:
        (fake / "exit").write_text("0\n")
        first = _gate(data, "--trigger", "hello-apc/1.0-1", "--build-git", source, "hello-apc")
        assert first.returncode == 0 and ": PASS (version 1.0-1" in first.stdout, first.stdout + first.stderr
        # Exit 16 on every attempt, and no testpkg-version, as autopkgtest leaves it on a testbed failure.
        (fake / "exit").write_text("16\n")
        (fake / "version").write_text("none\n")
        second = _gate(data, "--trigger", "glib2.0/2.80-1", "--build-git", source, "--timeout", "25", "hello-apc")
        assert "argv" in os.listdir(fake) and (fake / "argv").read_text().count("--end--") == 3  # 1 + 1 + retry
        assert second.returncode == 2, second.stdout + second.stderr
        assert re.search(r"^hello-apc unstable/\S+: RUNNING$", second.stdout, re.M), second.stdout
        assert "REGRESSION" not in second.stdout
    finally:
        pool.send_signal(signal.SIGTERM)
        pool.wait(timeout=60)
