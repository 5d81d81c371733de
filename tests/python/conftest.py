"""Shared fixtures of the Python tests."""
import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

DATA = pathlib.Path(os.environ.get("APCLOUD_TEST_DATA", pathlib.Path(__file__).parent.parent / "data"))


@pytest.fixture(scope="session")
def autopkgtest_output():
    """A real autopkgtest (null runner) output directory of tests/data/hello-apc."""
    if shutil.which("autopkgtest") is None:
        pytest.fail("autopkgtest is not installed (apt-get install autopkgtest)")
    work = pathlib.Path(tempfile.mkdtemp(prefix="apcloud-py-adt-"))
    out = work / "out"
    proc = subprocess.run(
        ["autopkgtest", "--output-dir", str(out),
         "--env=ADT_TEST_TRIGGERS=hello-apc/1.0-1 glib2.0/2.20-1",
         str(DATA / "hello-apc") + "/", "--", "null"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    yield out, proc.returncode
    shutil.rmtree(work)


def pytest_sessionfinish(session, exitstatus):
    """A skipped test is a failure here: CI may skip nothing."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and reporter.stats.get("skipped") and exitstatus == 0:
        session.exitstatus = 1
