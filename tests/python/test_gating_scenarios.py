"""Gating scenarios, from britney's point of view, on results made by the real worker path.

See gating_site.py for how a site runs requests through the real worker and
reads them back like britney: on the embedded stack and on the real
RabbitMQ + Swift.
"""
import gzip

import pytest

import apcloud
from gating_site import ARCH, Site


@pytest.fixture(params=["embedded", "swift"])
def site(request, tmp_path):
    return Site(request.param, tmp_path)


def test_all_pass(site):
    trigger = "glib2.0/2.80-1"
    for package in ("gedit", "libpeas"):
        assert site.run(package, [trigger]) == f"debci-{site.release}-{ARCH}"
    for package in ("gedit", "libpeas"):
        [result] = site.collect(package)
        assert (result.exitcode, result.outcome, result.version, result.triggers) == (0, "pass", "1.0-1", [trigger])
        assert result.duration is not None
        assert site.verdict(trigger, package) == "PASS"
        assert not site.pending.contains(trigger, package, ARCH)
    links = site.links(trigger, "libpeas")
    assert links.log.endswith(f"/{site.container}/{site.release}/{ARCH}/libp/libpeas/"
                              f"{site.cache.get(trigger, 'libpeas', ARCH)[2]}/log.gz")
    assert site.fetch(links.log)[:2] == b"\x1f\x8b"
    assert links.history == f"https://autopkgtest.example.org/packages/libpeas/{site.release}/{ARCH}"
    # Nothing new: the marker skips what was seen.
    assert site.collect("gedit") == []


def test_regression(site):
    site.run("gedit", ["gtk+3.0/3.24-1"])
    site.run("gedit", ["glib2.0/2.80-1"], exitcode=4)
    site.collect("gedit")
    assert site.verdict("gtk+3.0/3.24-1", "gedit") == "PASS"
    assert site.verdict("glib2.0/2.80-1", "gedit") == "REGRESSION"
    links = site.links("glib2.0/2.80-1", "gedit")
    assert links.retry == (f"https://autopkgtest.example.org/request.cgi?release={site.release}&arch={ARCH}"
                           "&package=gedit&trigger=glib2.0%2F2.80-1")
    assert b"finished with 4" in gzip.decompress(site.fetch(links.log))


def test_always_failing(site):
    site.run("gedit", ["gtk+3.0/3.24-1"], exitcode=4)
    site.run("gedit", ["glib2.0/2.80-1"], exitcode=6)
    site.collect("gedit")
    assert site.verdict("gtk+3.0/3.24-1", "gedit") == "ALWAYSFAIL"
    assert site.verdict("glib2.0/2.80-1", "gedit") == "ALWAYSFAIL"
    site.pending.add("pango1.0/1.52-1", "gedit", ARCH)
    assert site.verdict("pango1.0/1.52-1", "gedit") == "RUNNING-ALWAYSFAIL"


def test_result_without_triggers_is_ignored(site):
    site.run("gedit", [])
    [result] = site.collect("gedit")
    assert result.triggers is None and result.outcome == "pass"
    assert site.cache.latest_run_id("gedit", ARCH) is None
    site.pending.add("glib2.0/2.80-1", "gedit", ARCH)
    assert site.verdict("glib2.0/2.80-1", "gedit") == "RUNNING-ALWAYSFAIL"


def test_tmpfail_stays_running(site):
    # A testbed failure past the worker's retries: autopkgtest wrote no testpkg-version, and
    # the worker writes none either (only exit 4, 12 and 20 get "gedit unknown"). britney
    # ignores such a result as damaged, keeps the test pending and shows it RUNNING: a
    # tmpfail must never become a REGRESSION.
    site.run("gedit", ["gtk+3.0/3.24-1"])
    site.run("gedit", ["glib2.0/2.80-1"], exitcode=16, version="none")
    results = site.collect("gedit")
    assert [(r.outcome, r.version) for r in results] == [("pass", "1.0-1"), ("tmpfail", None)]
    assert site.cache.get("glib2.0/2.80-1", "gedit", ARCH) is None
    assert site.pending.contains("glib2.0/2.80-1", "gedit", ARCH)
    assert site.verdict("glib2.0/2.80-1", "gedit") == "RUNNING"
    # An unexpected failure (20) without a version is repaired to "unknown", as britney does.
    site.run("gedit", ["pango1.0/1.52-1"], exitcode=20, version="none")
    # The tmpfail is read again (britney's marker is its newest cached result), still ignored.
    tmpfail, error = site.collect("gedit")
    assert tmpfail.exitcode == 16 and site.verdict("glib2.0/2.80-1", "gedit") == "RUNNING"
    assert (error.outcome, error.version) == ("error", "unknown")
    assert site.cache.get("pango1.0/1.52-1", "gedit", ARCH)[:2] == ["FAIL", "unknown"]
    assert "trigger=pango1.0%2F1.52-1" in site.links("pango1.0/1.52-1", "gedit").retry


def test_forged_trigger_is_refused(site):
    # A requester cannot make a result count for a trigger it never installed.
    request = apcloud.TestRequest("gedit", env=["ADT_TEST_TRIGGERS=glib2.0/2.80-1"])
    with pytest.raises(apcloud.ValidationError, match="ADT_TEST_TRIGGERS") as bad:
        site.sink.send(request, site.release, ARCH)
    assert bad.value.field == "env" and bad.value.value == "ADT_TEST_TRIGGERS=glib2.0/2.80-1"
    with pytest.raises(apcloud.ValidationError, match="AUTOPKGTEST_TMP"):
        apcloud.TestRequest("gedit", env=["AUTOPKGTEST_TMP=/x"]).validate()


def test_result_for_an_older_version_does_not_count(site):
    # gedit 2.0-1 was uploaded, but the test ran on 1.0-1 (published too late).
    site.run("gedit", ["gedit/2.0-1"], version="1.0-1")
    [old] = site.collect("gedit")
    assert old.version == "1.0-1"
    assert site.cache.get("gedit/2.0-1", "gedit", ARCH) is None
    assert not site.pending.contains("gedit/2.0-1", "gedit", ARCH)
    assert site.verdict("gedit/2.0-1", "gedit") == "RUNNING"  # not run yet: britney requests it again
    site.run("gedit", ["gedit/2.0-1"], version="2.0-1")
    site.collect("gedit")
    assert site.cache.get("gedit/2.0-1", "gedit", ARCH)[:2] == ["PASS", "2.0-1"]
    assert site.verdict("gedit/2.0-1", "gedit") == "PASS"


def test_pass_is_not_clobbered_by_a_later_failure(site):
    site.run("gedit", ["glib2.0/2.80-1"])
    first = site.collect("gedit")[0].run_id
    site.run("gedit", ["glib2.0/2.80-1"], exitcode=4)
    [later] = site.collect("gedit")
    assert later.exitcode == 4 and later.run_id > first
    assert site.cache.get("glib2.0/2.80-1", "gedit", ARCH)[:3] == ["PASS", "1.0-1", first]
    assert site.verdict("glib2.0/2.80-1", "gedit") == "PASS"


def test_ppa_container_and_queue(site):
    ppas = ["lpuser/ppa"]
    assert site.run("gedit", ["glib2.0/2.80-1"], ppas=ppas) == f"debci-ppa-{site.release}-{ARCH}"
    container = apcloud.container_name(site.release, ppas, False)
    assert container == f"autopkgtest-{site.release}-lpuser-ppa"
    with pytest.raises(apcloud.NotFound):
        apcloud.iter_results(site.read_url, site.container, site.release, ARCH, "gedit")
    [result] = site.collect("gedit", container)
    assert result.triggers == ["glib2.0/2.80-1"]
    assert site.verdict("glib2.0/2.80-1", "gedit") == "PASS"
    links = site.links("glib2.0/2.80-1", "gedit", container, ppas)
    assert f"/{container}/" in links.log and links.retry.endswith("&ppa=lpuser%2Fppa")
    assert site.fetch(links.log)[:2] == b"\x1f\x8b"


def test_huge_queue(site):
    assert site.run("linux", ["linux/6.8-1"], version="6.8-1", huge=True) == f"debci-huge-{site.release}-{ARCH}"
    [result] = site.collect("linux")
    assert result.version == "6.8-1"
    assert site.verdict("linux/6.8-1", "linux") == "PASS"


def test_reference_mode(site):
    # gedit: passes on the reference run, fails with the new glib: a regression.
    site.run("gedit", ["migration-reference/0"])
    site.run("gedit", ["glib2.0/2.80-1"], exitcode=4)
    # libpeas: fails on the reference run; passed once for another trigger.
    site.run("libpeas", ["gtk+3.0/3.24-1"])
    site.run("libpeas", ["migration-reference/0"], exitcode=4)
    site.run("libpeas", ["glib2.0/2.80-1"], exitcode=4)
    for package in ("gedit", "libpeas"):
        site.collect(package)
    assert site.verdict("glib2.0/2.80-1", "gedit", reference=True) == "REGRESSION"
    assert site.verdict("glib2.0/2.80-1", "libpeas", reference=True) == "ALWAYSFAIL"
    # Without reference mode the baseline is the best result over all triggers.
    assert site.verdict("glib2.0/2.80-1", "libpeas") == "REGRESSION"
