#!/usr/bin/python3
"""bench_submit.py: britney's bulk submission, run-autopkgtest against a pika loop.

Sends N test requests (default 10000) to one queue of a real RabbitMQ twice,
side by side: once with `run-autopkgtest` (one call, all requests published
with pipelined publisher confirms, Broker::publish_many), once with a pika
loop that publishes each request persistent and mandatory on a confirming
channel and waits for its confirm (what britney's amqp sink does). Both send
the same message bytes (taken from run-autopkgtest --dry-run). Prints wall
time, messages per second, CPU per message of each, and the ratio; checks
that the queue holds exactly N after each.

Usage: set -a; . SERVERS_DIR/env; set +a
       bench/bench_submit.py [--count N] [--tool build/tools/run-autopkgtest/run-autopkgtest]
Needs APCLOUD_AMQP_REQUESTER_URL (sending) and APCLOUD_AMQP_ADMIN_URL
(declaring and deleting the queue), as scripts/servers-up writes them.
"""
import argparse
import os
import platform
import resource
import subprocess
import sys
import time

import pika


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def depth(admin, queue):
    return admin.queue_declare(queue, durable=True, passive=True).method.message_count


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--tool", default=os.path.join(os.path.dirname(__file__), "..", "build", "tools",
                                                   "run-autopkgtest", "run-autopkgtest"))
    args = ap.parse_args()
    sender_url = os.environ["APCLOUD_AMQP_REQUESTER_URL"]
    admin_conn = pika.BlockingConnection(pika.URLParameters(os.environ["APCLOUD_AMQP_ADMIN_URL"]))
    admin = admin_conn.channel()
    arch = "amd64" if platform.machine() == "x86_64" else "arm64"
    release = f"bench{os.getpid()}"
    queue = f"debci-{release}-{arch}"
    admin.queue_declare(queue, durable=True)
    packages = [f"pkg{i}" for i in range(args.count)]
    base = [args.tool, "-s", release, "-a", arch, "--trigger", "glib2.0/2.80-1", "--requester", "britney"]
    try:
        dry = subprocess.run(base + ["--dry-run"] + packages, capture_output=True, text=True, check=True)
        bodies = []
        for line in dry.stdout.splitlines():
            q, message = line.split(":", 1)
            assert q == queue
            name, params = message.split(" ", 1)
            bodies.append(f"{name}\n{params}".encode())
        assert len(bodies) == args.count

        # run-autopkgtest: one process, pipelined confirms.
        env = dict(os.environ, APCLOUD_AMQP_URL=sender_url)
        c0, t0 = child_cpu(), time.perf_counter()
        sent = subprocess.run(base + packages, capture_output=True, text=True, env=env)
        ours_s, ours_cpu = time.perf_counter() - t0, child_cpu() - c0
        if sent.returncode != 0:
            sys.exit(f"run-autopkgtest failed ({sent.returncode}): {sent.stderr[-2000:]}")
        assert len(sent.stdout.splitlines()) == args.count
        assert depth(admin, queue) == args.count, depth(admin, queue)
        admin.queue_purge(queue)

        # pika: one confirmed publish after the other.
        conn = pika.BlockingConnection(pika.URLParameters(sender_url))
        ch = conn.channel()
        ch.confirm_delivery()
        props = pika.BasicProperties(delivery_mode=2)
        p0, t0 = time.process_time(), time.perf_counter()
        for body in bodies:
            ch.basic_publish("", queue, body, props, mandatory=True)
        pika_s, pika_cpu = time.perf_counter() - t0, time.process_time() - p0
        conn.close()
        assert depth(admin, queue) == args.count
    finally:
        admin.queue_delete(queue)
        admin_conn.close()

    n = args.count
    print(f"bench_submit: {n} requests to {queue} on RabbitMQ (persistent, mandatory, confirmed)")
    print(f"{'sender':48} {'seconds':>8} {'msgs/s':>9} {'CPU us/msg':>11}")
    print(f"{'run-autopkgtest (pipelined confirms, 1 process)':48} {ours_s:8.2f} {n / ours_s:9.0f} "
          f"{ours_cpu / n * 1e6:11.1f}")
    print(f"{'pika loop, a confirm per publish':48} {pika_s:8.2f} {n / pika_s:9.0f} {pika_cpu / n * 1e6:11.1f}")
    ratio = pika_s / ours_s
    print(f"ratio {ratio:.1f}x messages/s (goal >= 3x); CPU per message {pika_cpu / ours_cpu:.1f}x less "
          f"(run-autopkgtest's includes its start, validation and stamping)")
    print("goals:", "met" if ratio >= 3 else "NOT met")


if __name__ == "__main__":
    main()
