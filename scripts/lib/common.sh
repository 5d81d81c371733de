# Shared helpers for the scripts/*-start|stop servers scripts (sourced, not run).
# shellcheck shell=bash

# Debian's interpreter: a `python3` earlier on PATH (pyenv) lacks Debian's modules.
PY=/usr/bin/python3

die() { echo "$(basename "$0"): error: $*" >&2; exit 1; }
note() { echo "$(basename "$0"): $*" >&2; }

# Absolute path of DIR (created if needed).
abs_dir() { mkdir -p -- "$1" && (cd -- "$1" && pwd -P); }

# free_ports N [EXCLUDE...]: print N distinct TCP ports free on 127.0.0.1
# (and on the wildcard address), from 20000-32000, below Linux's ephemeral range.
free_ports() {
    "$PY" - "$@" <<'PYEOF'
import random, socket, sys
n, exclude = int(sys.argv[1]), {int(p) for p in sys.argv[2:] if p}
found = []
for _ in range(2000):
    p = random.randint(20000, 32000)
    if p in exclude or p in found:
        continue
    ok = True
    for addr in ("127.0.0.1", "0.0.0.0"):
        s = socket.socket()
        try:
            s.bind((addr, p))
        except OSError:
            ok = False
        finally:
            s.close()
    if ok:
        found.append(p)
        if len(found) == n:
            print(" ".join(map(str, found)))
            sys.exit(0)
sys.exit("no free ports found")
PYEOF
}

# port_free PORT: true if nothing listens on 127.0.0.1:PORT (SO_REUSEADDR, as
# servers do: connections in TIME_WAIT on a port we used before are no obstacle).
port_free() {
    "$PY" -c 'import socket,sys
s=socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try: s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError: sys.exit(1)' "$1"
}

# random_secret: 24 URL-safe characters.
random_secret() { "$PY" -c 'import secrets; print(secrets.token_urlsafe(18))'; }

# pid_alive PID: the process exists and is not a zombie.
pid_alive() {
    local st
    [ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
    st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ "$st" != Z ] && [ -n "$st" ]
}

# pgid_alive PGID: some live process is in that process group.
pgid_alive() {
    local p
    for p in $(pgrep -g "$1" 2>/dev/null); do
        pid_alive "$p" && return 0
    done
    return 1
}

# group_tree PGID: pids of the live members of process group PGID and of all
# their descendants (Erlang's erl_child_setup and port programs, for example,
# call setsid and so leave the group).
group_tree() {
    ps -eo pid=,ppid=,pgid=,stat= | awk -v g="$1" '
        { ppid[$1] = $2; grp[$1] = $3; st[$1] = $4 }
        END {
            changed = 1
            for (p in grp) if (grp[p] == g) mark[p] = 1
            while (changed) {
                changed = 0
                for (p in ppid) if (!(p in mark) && (ppid[p] in mark)) { mark[p] = 1; changed = 1 }
            }
            for (p in mark) if (st[p] !~ /^Z/) print p
        }'
}

# kill_group PGIDFILE [GRACE_SECONDS]: SIGTERM the process group whose id is in
# the file, wait, then SIGKILL what is left of it and of its descendants;
# remove the file.  No-op if the file is absent.
kill_group() {
    local f=$1 grace=${2:-10} g t i p tree
    [ -s "$f" ] || { rm -f -- "$f"; return 0; }
    read -r g t <"$f" || true
    case $g in ''|*[!0-9]*|0|1) rm -f -- "$f"; return 0;; esac
    # A stale file (say, after a reboot): the id now leads someone else's group.
    if pid_alive "$g" && [ "$(start_time "$g")" != "$t" ]; then rm -f -- "$f"; return 0; fi
    tree=$(group_tree "$g")
    if [ -n "$tree" ]; then
        kill -CONT -- "-$g" 2>/dev/null || true
        kill -TERM -- "-$g" 2>/dev/null || true
        for ((i = 0; i < grace * 10; i++)); do
            pgid_alive "$g" || break
            sleep 0.1
        done
        kill -KILL -- "-$g" 2>/dev/null || true
        # descendants that left the group get a moment to notice, then SIGKILL
        for ((i = 0; i < 20; i++)); do
            tree=$(for p in $tree; do if pid_alive "$p"; then echo "$p"; fi; done)
            [ -n "$tree" ] || break
            sleep 0.1
        done
        for p in $tree; do kill -KILL "$p" 2>/dev/null || true; done
    fi
    rm -f -- "$f"
}

# start_time PID: the process's start time (clock ticks after boot).
start_time() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }

# start_group PGIDFILE LOGFILE CMD...: run CMD in its own session/process group
# (setsid), stdin from /dev/null, stdout+stderr to LOGFILE; record its pgid
# (and its start time, to recognise a stale file).  The shell running this is
# not interactive, so the background child is no group leader and setsid
# makes it one without forking: $! is the new group's id.
start_group() {
    local f=$1 log=$2; shift 2
    setsid "$@" </dev/null >>"$log" 2>&1 &
    echo "$! $(start_time $!)" >"$f"
}

# pgid_of FILE: the group id recorded by start_group.
pgid_of() { local g _t; read -r g _t <"$1" && echo "$g"; }
