# The main job's steps, shared by scripts/quickstart and the browser tests (sourced, not run).
# shellcheck shell=bash
# Needs: $top (the source tree), $apcloud (the apcloud program).

example_release=unstable
example_arch=$(dpkg --print-architecture)

# start_site DATA PORT: `apcloud up` (worker pool + web service) on the embedded
# stack in DATA, in the background; sets $site_pid. Stop it with stop_site.
start_site() {
    mkdir -p "$1"
    USER=$(id -un) "$apcloud" up --data "$1" --release "$example_release" --arch "$example_arch" --workers 1 --port "$2" &
    site_pid=$!
}

stop_site() {
    kill -TERM "$site_pid" 2>/dev/null || true
    wait "$site_pid" 2>/dev/null || true
}

# submit_example DATA: requests the example package's test as a user would,
# through the web service's request API with an API key of the invoking user
# (made with `apcloud keys create`, kept in a variable, never in argv), and
# waits for its result; prints the request's uuid, then the exit code,
# container and directory of the run. build-git points at the example source
# tree (local sources are allowed on this one-machine site).
submit_example() {
    local key
    for _ in $(seq 300); do [ -f "$1/web.conf" ] && break; sleep 0.1; done  # written by `apcloud up`
    key=$("$apcloud" keys create "$(id -un)" -c "$1/web.conf" 2>/dev/null) || return 1
    APCLOUD_API_KEY=$key /usr/bin/python3 "$top/scripts/lib/request_example.py" \
        "http://127.0.0.1:$(web_port "$1")" "$example_release" "$example_arch" "$top/examples/hello-apc/"
}

# web_port DATA: the web service's port from DATA/web.conf.
web_port() { sed -n 's/^port = //p' "$1/web.conf"; }

# wait_url URL: waits (up to 10 s) until URL answers 200.
wait_url() {
    for _ in $(seq 100); do
        /usr/bin/python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' "$1" \
            2>/dev/null && return 0
        sleep 0.1
    done
    echo "no answer from $1" >&2
    return 1
}
