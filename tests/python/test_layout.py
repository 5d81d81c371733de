"""The apcloud module: store layout and run ids."""
import calendar
import hashlib
import time

import pytest

import apcloud


def test_srcpkg_prefix():
    assert [apcloud.srcpkg_prefix(p) for p in ("libpng", "glibc", "lib", "libc", "li")] == \
        ["libp", "g", "lib", "libc", "l"]


def test_container_name():
    assert apcloud.container_name("noble") == "autopkgtest-noble"
    assert apcloud.container_name("wily", ["pitti/systemd"]) == "autopkgtest-wily-pitti-systemd"
    assert apcloud.container_name("noble", ("u:t@a1/b1",)) == "private-autopkgtest-noble-a1-b1"
    assert apcloud.container_name("noble", private=True) == "private-autopkgtest-noble"


def test_run_id_matches_python_time_and_hashlib():
    body = 'gedit\n{"triggers": ["glib2.0/2.20-1"]}'
    for t in (0, 1711026252, 1234567890, 2000000000):
        expect = time.strftime("%Y%m%d_%H%M%S", time.gmtime(t)) + "_" + \
            hashlib.sha1(body.encode()).hexdigest()[:5] + "@"
        assert apcloud.make_run_id(t, body) == expect
        rid = apcloud.parse_run_id(expect)
        assert rid.unix_time == t
        assert rid.hash == expect[16:21]


def test_old_run_id():
    rid = apcloud.parse_run_id("20140321_130412@")
    assert rid.hash is None
    assert rid.unix_time == calendar.timegm((2014, 3, 21, 13, 4, 12))
    with pytest.raises(apcloud.ParseError):
        apcloud.parse_run_id("20140321_130412")


def test_result_dir():
    assert apcloud.result_dir("trusty", "amd64", "libpng", "20140321_130412@") == \
        "trusty/amd64/libp/libpng/20140321_130412@"
    with pytest.raises(apcloud.ValidationError):
        apcloud.result_dir("trusty", "amd64", "../x", "20140321_130412@")
