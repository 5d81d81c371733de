# The main job's steps, shared by scripts/quickstart and the browser tests (sourced, not run).
# shellcheck shell=bash
# Needs: $top (the source tree), $apcloud (the apcloud program).

example_release=unstable
example_arch=$(dpkg --print-architecture)

# start_site DATA PORT: `apcloud up` (worker pool + web service) on the embedded
# stack in DATA, in the background; sets $site_pid. Stop it with stop_site.
start_site() {
    mkdir -p "$1"
    "$apcloud" up --data "$1" --release "$example_release" --arch "$example_arch" --workers 1 --port "$2" &
    site_pid=$!
}

stop_site() {
    kill -TERM "$site_pid" 2>/dev/null || true
    wait "$site_pid" 2>/dev/null || true
}

# submit_example DATA: sends the test request gating code would send for the
# example package and waits for its result; prints what `apcloud submit` says
# (exit code, container, directory). build-git points at the example source
# tree (local sources are allowed on this one-machine site).
submit_example() {
    local body="hello-apc
{\"build-git\": \"$top/examples/hello-apc/\", \"requester\": \"$(id -un)\", \"triggers\": [\"hello-apc/1.0-1\"]}"
    printf '%s' "$body" | "$apcloud" submit --broker "sqlite://$1/queue.db" --release "$example_release" \
        --arch "$example_arch" --allow-local-sources --declare --wait 600
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
