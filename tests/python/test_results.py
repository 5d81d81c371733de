"""The apcloud module: result files read by Python's tarfile/gzip and vice versa."""
import gzip
import io
import json
import tarfile

import pytest

import apcloud


def _tar_members(data, mode="r:"):
    with tarfile.open(fileobj=io.BytesIO(data), mode=mode) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}


def test_python_reads_what_we_write(autopkgtest_output):
    out, code = autopkgtest_output
    files = apcloud.pack_results(str(out), code, 17, requester="alice", package="hello-apc")
    assert set(files) == {"result.tar", "log.gz", "artifacts.tar.gz"}
    result = _tar_members(files["result.tar"])
    assert list(result)[:3] == ["exitcode", "duration", "testpkg-version"]
    assert result["exitcode"] == b"0\n"
    assert result["duration"] == b"17\n"
    assert result["requester"] == b"alice\n"
    assert result["testpkg-version"] == b"hello-apc 1.0-1\n"
    info = json.loads(result["testinfo.json"])
    assert "ADT_TEST_TRIGGERS=hello-apc/1.0-1 glib2.0/2.20-1" in info["custom_environment"]
    assert gzip.decompress(files["log.gz"]) == (out / "log").read_bytes()
    artifacts = _tar_members(files["artifacts.tar.gz"], "r:gz")
    assert artifacts["artifacts/hello.txt"] == b"artifact content\n"
    assert not any(name.startswith("binaries/") for name in artifacts)
    assert "log" not in artifacts and "exitcode" not in artifacts

    parsed = apcloud.parse_result_tar(files["result.tar"])
    assert parsed.exitcode == 0 and parsed.outcome == "pass"
    assert (parsed.package, parsed.version) == ("hello-apc", "1.0-1")
    assert parsed.triggers == ["hello-apc/1.0-1", "glib2.0/2.20-1"]
    assert parsed.duration == 17


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_we_read_what_python_tarfile_writes(fmt):
    buf = io.BytesIO()
    members = {
        "exitcode": b"4\n",
        "duration": b"123\n",
        "testpkg-version": b"gedit 44.2-1\n",
        "testinfo.json": json.dumps({"custom_environment": ["ADT_TEST_TRIGGERS=glib2.0/2.20-1"]}).encode(),
        "requester": b"bob\n",
    }
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    r = apcloud.parse_result_tar(buf.getvalue())
    assert (r.exitcode, r.duration, r.package, r.version, r.requester) == (4, 123, "gedit", "44.2-1", "bob")
    assert r.triggers == ["glib2.0/2.20-1"]
    assert r.outcome == "fail"


def test_corrupt_and_oversized():
    with pytest.raises(apcloud.ArchiveError):
        apcloud.parse_result_tar(b"garbage" * 100)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = b"0\n"
        info = tarfile.TarInfo("exitcode")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
        big = b"x" * 100000
        info = tarfile.TarInfo("testbed-packages")
        info.size = len(big)
        tf.addfile(info, io.BytesIO(big))
    with pytest.raises(apcloud.ArchiveError):
        apcloud.parse_result_tar(buf.getvalue(), max_member_bytes=1000)
    with pytest.raises(apcloud.ArchiveError):
        apcloud.parse_result_tar(buf.getvalue(), max_archive_bytes=1000)
    assert apcloud.parse_result_tar(buf.getvalue()).exitcode == 0


def test_gzip_compress_matches_python():
    data = b"log line\n" * 1000
    assert gzip.decompress(apcloud.gzip_compress(data)) == data


def test_outcomes():
    assert [apcloud.outcome(c) for c in (0, 2, 4, 6, 8, 12, 14, 16, 20, 99)] == \
        ["pass", "pass", "fail", "fail", "neutral", "fail", "fail", "tmpfail", "error", "denylisted"]
    assert apcloud.britney_status(8) == "NEUTRAL"
    assert apcloud.github_state(14) == "error"
