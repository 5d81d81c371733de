#!/usr/bin/python3
"""Helper for scripts/swift-start: write a private Swift-all-in-one config, and run its servers.

  swift_saio.py setup DIR PROXY_PORT ACCOUNT_PORT CONTAINER_PORT OBJECT_PORT MEMCACHED_PORT
      Write DIR/etc/{swift.conf,*-server.conf,*.ring.gz} (swift.conf and the
      tempauth keys in DIR/etc/secrets are created once and then kept).
  swift_saio.py serve DIR SERVER
      Run SERVER (proxy, account, container, object) in the foreground with
      logs on stderr, reading swift.conf from DIR/etc instead of /etc/swift.
  swift_saio.py wait DIR TIMEOUT
      Wait until all servers listen, the proxy answers GET /info, tempauth
      gives a token and the account answers HEAD (exit 1 on timeout, or when
      a server's process group in DIR/run has died).
  swift_saio.py check-xattr PATH
      Exit non-zero if PATH's filesystem does not support user xattrs.

Must run under Debian's /usr/bin/python3 (python3-swift lives there).
"""

import os
import secrets
import sys

SERVERS = ("account", "container", "object")


def write(path, text, mode=0o644):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def load_secrets(etc):
    """Tempauth keys: random, generated once per DIR."""
    path = os.path.join(etc, "secrets")
    keys = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                name, _, value = line.strip().partition("=")
                if name:
                    keys[name] = value
    for name in ("TESTER_KEY", "WORKER_KEY", "OTHER_KEY"):
        keys.setdefault(name, secrets.token_urlsafe(18))
    write(path, "".join("%s=%s\n" % kv for kv in sorted(keys.items())), 0o600)
    return keys


def setup(d, proxy_port, account_port, container_port, object_port, memcached_port):
    etc = os.path.join(d, "etc")
    dev_root = os.path.join(d, "srv", "node")
    os.makedirs(os.path.join(dev_root, "d1"), exist_ok=True)
    os.makedirs(etc, exist_ok=True)
    user = __import__("pwd").getpwuid(os.getuid()).pw_name
    ports = {"account": account_port, "container": container_port, "object": object_port}

    swift_conf = os.path.join(etc, "swift.conf")
    if not os.path.exists(swift_conf):  # the hash prefix/suffix must never change
        write(swift_conf, """\
[swift-hash]
swift_hash_path_prefix = {}
swift_hash_path_suffix = {}

[storage-policy:0]
name = Policy-0
default = yes

[swift-constraints]
container_listing_limit = 10000
account_listing_limit = 10000
""".format(secrets.token_hex(8), secrets.token_hex(8)))

    common = """\
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
workers = 0
user = {user}
swift_dir = {etc}
devices = {devices}
mount_check = false
disable_fallocate = true
fallocate_reserve = 0
log_name = {name}-server
log_level = INFO
"""
    for name in SERVERS:
        write(os.path.join(etc, "%s-server.conf" % name),
              common.format(port=ports[name], user=user, etc=etc, devices=dev_root, name=name)
              + """
[pipeline:main]
pipeline = {name}-server

[app:{name}-server]
use = egg:swift#{name}
""".format(name=name))

    keys = load_secrets(etc)
    write(os.path.join(etc, "proxy-server.conf"), """\
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
workers = 0
user = {user}
swift_dir = {etc}
log_name = proxy-server
log_level = INFO

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:tempauth]
use = egg:swift#tempauth
# test:tester owns AUTH_test; test:worker has no rights of its own (only via
# container ACLs such as X-Container-Read: test:worker); test2:other owns AUTH_test2.
user_test_tester = {tester} .admin
user_test_worker = {worker}
user_test2_other = {other} .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:{memcached}

""".format(port=proxy_port, user=user, etc=etc, memcached=memcached_port,
           tester=keys["TESTER_KEY"], worker=keys["WORKER_KEY"], other=keys["OTHER_KEY"])
          # The pipeline's other filters take no settings: name -> Swift's entry point.
          + "\n".join("[filter:%s]\nuse = egg:swift#%s\n" % (name, name.replace("-", "_"))
                    for name in ("catch_errors", "gatekeeper", "healthcheck", "proxy-logging",
                                 "listing_formats", "bulk", "tempurl", "copy", "slo", "dlo")))

    # Rings: 1 replica, one device each, built in-process (swift-ring-builder
    # would cost a Python start-up per command).  Rebuilt on every start since
    # they hold the ports; partition placement is trivially the same.
    from swift.common.ring import RingBuilder
    for name in SERVERS:
        builder = RingBuilder(6, 1, 1)
        builder.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1",
                         "port": ports[name], "device": "d1", "weight": 100,
                         "meta": ""})
        builder.rebalance(seed=1)
        builder.get_ring().save(os.path.join(etc, "%s.ring.gz" % name))


def serve(d, server):
    if server not in SERVERS + ("proxy",):
        sys.exit("unknown server %r" % server)
    etc = os.path.join(d, "etc")
    # Swift reads swift.conf (hash prefix/suffix, policies, constraints) from
    # swift.common.utils.SWIFT_CONF_FILE, '/etc/swift/swift.conf' by default.
    # Importing utils reads the hash from there if it exists; set_swift_dir()
    # points SWIFT_CONF_FILE at our DIR/etc and re-reads the hash.  Policies
    # and constraints are read when their modules are first imported, which
    # happens after this; reload them anyway in case that ever changes.
    from swift.common import utils
    utils.set_swift_dir(etc)
    assert utils.SWIFT_CONF_FILE == os.path.join(etc, "swift.conf")
    from swift.common import constraints, storage_policy
    storage_policy.reload_storage_policies()
    constraints.reload_constraints()
    from swift.common.wsgi import run_wsgi
    conf = os.path.join(etc, "%s-server.conf" % server)
    kwargs = {"verbose": True}  # log to stderr (there may be no /dev/log)
    if server == "object":
        from swift.obj import server as obj_server
        kwargs["global_conf_callback"] = obj_server.global_conf_callback
    sys.exit(run_wsgi(conf, "%s-server" % server, **kwargs))


def read_kv(path):
    with open(path) as f:
        return dict(line.strip().split("=", 1) for line in f if "=" in line)


def wait(d, timeout):
    import socket
    import time
    import urllib.error
    import urllib.request
    ports = read_kv(os.path.join(d, "etc", "ports"))
    keys = read_kv(os.path.join(d, "etc", "secrets"))
    base = "http://127.0.0.1:%s" % ports["PROXY_PORT"]
    deadline = time.monotonic() + timeout
    groups = ("memcached", "account", "container", "object", "proxy")
    last = "nothing tried yet"

    def alive(name):
        try:
            with open(os.path.join(d, "run", name + ".pgid")) as f:
                os.killpg(int(f.read().split()[0]), 0)
            return True
        except (OSError, ValueError):
            return False

    def step():
        for name, port in sorted(ports.items()):
            socket.create_connection(("127.0.0.1", int(port)), timeout=2).close()
        urllib.request.urlopen(base + "/info", timeout=5).read()
        req = urllib.request.Request(base + "/auth/v1.0", headers={
            "X-Auth-User": "test:tester", "X-Auth-Key": keys["TESTER_KEY"]})
        with urllib.request.urlopen(req, timeout=5) as r:
            token, url = r.headers["X-Auth-Token"], r.headers["X-Storage-Url"]
        req = urllib.request.Request(url, method="HEAD", headers={"X-Auth-Token": token})
        urllib.request.urlopen(req, timeout=5).read()

    while True:
        dead = [n for n in groups if not alive(n)]
        if dead:
            print("swift server(s) exited during startup: %s" % " ".join(dead), file=sys.stderr)
            sys.exit(1)
        try:
            step()
            return
        except (OSError, urllib.error.URLError, KeyError) as e:
            last = repr(e)
        if time.monotonic() > deadline:
            print("swift not ready after %ss: %s" % (timeout, last), file=sys.stderr)
            sys.exit(1)
        time.sleep(0.1)


def check_xattr(path):
    probe = os.path.join(path, ".xattr-probe")
    with open(probe, "w"):
        pass
    try:
        os.setxattr(probe, "user.swift.probe", b"1")
        ok = os.getxattr(probe, "user.swift.probe") == b"1"
    except OSError as e:
        print("user xattrs are not supported under %s: %s" % (path, e), file=sys.stderr)
        ok = False
    finally:
        os.unlink(probe)
    sys.exit(0 if ok else 1)


def main(argv):
    if len(argv) == 8 and argv[1] == "setup":
        setup(argv[2], *(int(p) for p in argv[3:]))
    elif len(argv) == 4 and argv[1] == "serve":
        serve(argv[2], argv[3])
    elif len(argv) == 4 and argv[1] == "wait":
        wait(argv[2], float(argv[3]))
    elif len(argv) == 3 and argv[1] == "check-xattr":
        check_xattr(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
