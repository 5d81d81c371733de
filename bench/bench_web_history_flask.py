#!/usr/bin/python3
"""Python peer of bench-web-history: a minimal Flask + sqlite3 app serving a package's
history (first page, newest first) from the same index.db as the web service, as JSON
(the same fields as /api/v1/packages/PKG/RELEASE/ARCH) and as an HTML page from a
Jinja2 template (date, version, triggers, env, duration, requester, result, links).

Usage: bench_web_history_flask.py INDEX_DB; serves on a free port of 127.0.0.1 and
prints "port N server NAME" once it listens. The server is waitress when installed,
else Flask's own (werkzeug) threaded server."""
import json
import logging
import sqlite3
import sys
import threading
from urllib.parse import quote

from flask import Flask, Response, abort

COLUMNS = ("seq, container, release, arch, package, run_id, private, exitcode, outcome, version, triggers, "
           "duration, requester, env_list, all_proposed, uuid, ppas, testname, build_git, test_git")
# ResultsIndex::history for an anonymous viewer.
HISTORY = (f"SELECT {COLUMNS} FROM run WHERE package = ? AND release = ? AND arch = ? AND container = ? "
           "AND run_id < ? AND private = 0 ORDER BY run_id DESC LIMIT ?")
NO_RETRY = {"pass", "neutral", "denylisted"}

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ package }} {{ release }}/{{ arch }}</title></head>
<body><h1>{{ package }} <small>{{ release }}/{{ arch }}</small></h1>
<table><thead><tr><th>Date</th><th>Version</th><th>Triggers</th><th>Env</th><th>Duration</th>
<th>Requester</th><th>Result</th><th>Links</th></tr></thead><tbody>
{% for r in runs %}<tr class="{{ r.outcome }}"><td>{{ r.started }}</td><td>{{ r.version or "" }}</td>
<td>{% for t in r.triggers %}{{ t }}<br>{% endfor %}</td><td>{{ r.env | join(", ") }}</td>
<td>{{ r.human_duration }}</td><td>{{ r.requester or "" }}</td><td>{{ r.outcome }}</td>
<td><a href="{{ r.urls.log }}">log</a> <a href="{{ r.urls.artifacts }}">artifacts</a>
<a href="{{ r.urls.result }}">result.tar</a>{% if r.show_retry %} <a href="{{ r.retry }}">retry</a>{% endif %}
</td></tr>
{% endfor %}</tbody></table>
{% if next_before %}<a href="?before={{ next_before }}">older</a>{% endif %}
</body></html>
"""

app = Flask(__name__)
local = threading.local()


def db():
    if not hasattr(local, "db"):
        local.db = sqlite3.connect(f"file:{app.config['INDEX_DB']}?mode=ro", uri=True, check_same_thread=False)
    return local.db


def human_duration(s):
    if s >= 3600:
        return f"{s // 3600}h {s // 60 % 60:02}m {s % 60:02}s"
    if s >= 60:
        return f"{s // 60}m {s % 60:02}s"
    return f"{s}s"


def run_json(row):
    (seq, container, release, arch, package, run_id, private, exitcode, outcome, version, triggers, duration,
     requester, env_list, all_proposed, uuid, ppas, testname, build_git, test_git) = row
    triggers = triggers.split()
    env = json.loads(env_list)
    ppas = json.loads(ppas)
    prefix = package[:4] if package.startswith("lib") else package[0]
    base = f"/results/{quote(container, safe='')}/{release}/{arch}/{prefix}/{quote(package, safe='')}/{run_id}/"
    retry = None
    if outcome not in NO_RETRY:
        retry = f"/request.cgi?release={release}&arch={arch}&package={quote(package, safe='')}"
        retry += "".join(f"&trigger={quote(t, safe='')}" for t in triggers)
        retry += "".join(f"&ppa={quote(p, safe='')}" for p in ppas)
        retry += "".join(f"&env={quote(e, safe='')}" for e in env)
        if all_proposed:
            retry += "&all-proposed=1"
    r = run_id
    return {
        "seq": seq, "container": container, "release": release, "arch": arch, "package": package,
        "run_id": run_id, "started": f"{r[0:4]}-{r[4:6]}-{r[6:8]}T{r[9:11]}:{r[11:13]}:{r[13:15]}Z",
        "version": version, "triggers": triggers, "env": env, "all_proposed": bool(all_proposed),
        "exitcode": exitcode, "outcome": outcome, "duration": duration, "requester": requester, "uuid": uuid,
        "ppas": ppas, "testname": testname, "build_git": build_git, "test_git": test_git,
        "private": bool(private),
        "urls": {"page": f"/packages/{quote(package, safe='')}/{release}/{arch}/{run_id}",
                 "log": base + "log.gz", "artifacts": base + "artifacts.tar.gz", "result": base + "result.tar"},
        "retry": retry,
    }


def history(package, release, arch, limit=100):
    rows = db().execute(HISTORY, (package, release, arch, f"autopkgtest-{release}", "\x7f", limit + 1)).fetchall()
    runs = [run_json(row) for row in rows[:limit]]
    return runs, runs[-1]["run_id"] if len(rows) > limit else None


@app.route("/api/v1/packages/<package>/<release>/<arch>")
def history_json(package, release, arch):
    runs, next_before = history(package, release, arch)
    body = {"package": package, "release": release, "arch": arch, "container": f"autopkgtest-{release}",
            "runs": runs, "next_before": next_before}
    return Response(json.dumps(body) + "\n", mimetype="application/json")


@app.route("/packages/<package>/<release>/<arch>")
def history_html(package, release, arch):
    runs, next_before = history(package, release, arch)
    if not runs:
        abort(404)
    seen = set()
    for r in runs:  # a retry link on the first row of each (version, triggers) pair only
        key = (r["version"], tuple(r["triggers"]))
        r["show_retry"] = r["retry"] is not None and key not in seen
        seen.add(key)
        r["human_duration"] = human_duration(r["duration"] or 0)
    return page.render(package=package, release=release, arch=arch, runs=runs, next_before=next_before)


page = app.jinja_env.from_string(PAGE)  # autoescaped: Flask escapes templates without a file name


def main():
    app.config["INDEX_DB"] = sys.argv[1]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    try:
        import waitress
        server = waitress.create_server(app, host="127.0.0.1", port=0, threads=8)
        print(f"port {server.effective_port} server waitress", flush=True)
        server.run()
    except ImportError:
        from werkzeug.serving import make_server
        server = make_server("127.0.0.1", 0, app, threaded=True)
        print(f"port {server.server_port} server flask-threaded-dev-server", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
