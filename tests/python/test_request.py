"""The apcloud module: requests, validation errors and queue routing."""
import json
import random
import string

import pytest

import apcloud


def test_parse_forms():
    a = apcloud.parse_request('gedit {"triggers": ["glib2.0/2.20-1"]}')
    b = apcloud.parse_request(b'gedit\n{"triggers": ["glib2.0/2.20-1"]}')
    assert a == b
    assert a.package == "gedit"
    assert a.triggers == ["glib2.0/2.20-1"]
    assert apcloud.parse_request("gzip").triggers == []


def _random_params(rng):
    words = lambda: "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 8)))
    params = {}
    if rng.random() < 0.9:
        params["triggers"] = [f"{words()}/{rng.randint(1, 9)}.{rng.randint(0, 9)}-{rng.randint(1, 3)}"
                              for _ in range(rng.randint(1, 4))]
    if rng.random() < 0.3:
        params["ppas"] = [f"{words()}/{words()}"]
    if rng.random() < 0.5:
        params["env"] = [f"VAR_{words().upper()}={words()} \u00e9\u20ac\U0001F600 \"q\" \\ ;&$'"]
    if rng.random() < 0.3:
        params["all-proposed"] = "1"
    if rng.random() < 0.3:
        params["requester"] = words()
    if rng.random() < 0.3:
        params["submit-time"] = "2024-03-21 13:04:12"
    if rng.random() < 0.2:
        params["testname"] = words()
    return params


def test_to_message_is_byte_identical_to_python_json_dumps():
    rng = random.Random(1234)
    for _ in range(500):
        params = _random_params(rng)
        body = "pkg" + rng.choice(string.ascii_lowercase)
        if params:
            body += "\n" + json.dumps(params, sort_keys=True)
        req = apcloud.parse_request(body)
        assert req.to_message() == body
        assert apcloud.parse_request(req.to_message()) == req


def test_request_construction_and_validation():
    req = apcloud.TestRequest("systemd", triggers=["systemd/255-1"], ppas=["pitti/systemd"],
                              env=["A=1"], all_proposed=True)
    assert req.to_message() == ('systemd\n{"all-proposed": "1", "env": ["A=1"], '
                                '"ppas": ["pitti/systemd"], "triggers": ["systemd/255-1"]}')
    req.validate()
    req.env = ["1BAD=x"]
    with pytest.raises(apcloud.ValidationError) as err:
        req.validate()
    assert err.value.field == "env"
    assert err.value.value == "1BAD=x"


@pytest.mark.parametrize("body,field", [
    ("Gedit", "package"),
    ('gedit {"triggers": ["glib2.0"]}', "triggers"),
    ('gedit {"ppas": ["nouser"]}', "ppas"),
    ('gedit {"env": ["A B=1"]}', "env"),
    ('gedit {"test-git": "https://x/y;id"}', "test-git"),
    ('gedit {"build-git": "git://x/y"}', "build-git"),
    ('gedit {"test-bzr": "lp:x"}', "test-bzr"),
    ('gedit {"testname": "a b"}', "testname"),
    ('gedit {"submit-time": "yesterday"}', "submit-time"),
    ('gedit {"bogus": 1}', "parameter"),
    ('gedit {"triggers": ["migration-reference/0"], "all-proposed": "1"}', "triggers"),
])
def test_validation_errors_name_field_and_value(body, field):
    with pytest.raises(apcloud.ValidationError) as err:
        apcloud.parse_request(body)
    assert err.value.field == field
    assert field in str(err.value)
    assert isinstance(err.value, apcloud.Error)


@pytest.mark.parametrize("body", [b"gedit {", b"gedit [1]", b"ged\xff", b"gedit\n{} x"])
def test_parse_errors(body):
    with pytest.raises(apcloud.ParseError):
        apcloud.parse_request(body)


def test_body_limit():
    with pytest.raises(apcloud.ValidationError) as err:
        apcloud.parse_request('gedit {"env": ["A=' + "x" * 200000 + '"]}')
    assert err.value.field == "body"


def test_exception_hierarchy():
    assert issubclass(apcloud.ArchiveError, apcloud.ParseError)
    for name in ("ParseError", "ValidationError", "NotFound", "ConfigError", "StoreError",
                 "BrokerError", "HttpError"):
        assert issubclass(getattr(apcloud, name), apcloud.Error)


def test_queue_names():
    assert apcloud.queue_name("noble", "amd64") == "debci-noble-amd64"
    assert apcloud.queue_name("noble", "amd64", "huge") == "debci-huge-noble-amd64"
    q = apcloud.parse_queue_name("debci-upstream-jammy-s390x")
    assert (q.context, q.release, q.arch) == ("upstream", "jammy", "s390x")
    assert tuple(apcloud.parse_queue_name("debci-noble-amd64")) == ("", "noble", "amd64")
    with pytest.raises(apcloud.ParseError):
        apcloud.parse_queue_name("celery")
    with pytest.raises(apcloud.ValidationError):
        apcloud.queue_name("noble", "amd64", "bogus")
    req = apcloud.TestRequest("gedit", ppas=["a1/b1"])
    assert apcloud.queue_for(req, "noble", "amd64", huge=True) == "debci-ppa-noble-amd64"


def test_docstrings_everywhere():
    for name in dir(apcloud):
        if name.startswith("_"):
            continue
        obj = getattr(apcloud, name)
        if callable(obj):
            assert obj.__doc__, name


def test_json_decoding_matches_python_json():
    """Escapes, unicode and whitespace decode exactly as Python's json module does."""
    rng = random.Random(7)
    alphabet = ["a", "Z", "\u00e9", "\u20ac", "\U0001F600", "\"", "\\", "/", " ", ";", "$", "'"]
    for _ in range(300):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        env = [f"V{rng.randint(0, 9)}={value}"]
        body = "pkg\n" + json.dumps({"env": env}, ensure_ascii=rng.random() < 0.5,
                                    indent=rng.choice([None, 2]))
        assert apcloud.parse_request(body).env == json.loads(body.split("\n", 1)[1])["env"]
    assert apcloud.parse_request('pkg {"env": ["A=\\/\\u0041"]}').env == ["A=/A"]
