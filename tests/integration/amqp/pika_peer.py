#!/usr/bin/python3
"""The other side of the AMQP interop tests: pika, the client the reference uses.

Commands (URL is an amqp:// URL; bodies travel base64-encoded in JSON):
  consume URL QUEUE N TIMEOUT   get N messages (ack each), print them as JSON
  publish URL QUEUE             publish the bodies of a JSON list read from stdin,
                                persistent, mandatory, with publisher confirms
  check-durable URL KIND NAME DURABLE
                                declare queue/exchange NAME with durable=DURABLE
                                (0/1): exit 0 if that matches what exists, 3 if
                                RabbitMQ refuses it as inequivalent (406)
  bind-web URL QUEUE EXCHANGE   declare and bind a queue as the reference's web
                                service does (durable, bound to the fanout exchange)
  delete-queue URL QUEUE        delete the queue (tests clean up what they bound)
"""
import base64
import json
import sys
import time

import pika


def connect(url):
    return pika.BlockingConnection(pika.URLParameters(url))


def consume(url, queue, n, timeout):
    conn = connect(url)
    ch = conn.channel()
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        method, props, body = ch.basic_get(queue, auto_ack=False)
        if method is None:
            time.sleep(0.05)
            continue
        headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in (props.headers or {}).items()}
        out.append({
            "body": base64.b64encode(body).decode(),
            "delivery_mode": props.delivery_mode,
            "headers": headers,
            "redelivered": method.redelivered,
        })
        ch.basic_ack(method.delivery_tag)
    conn.close()
    print(json.dumps(out))


def publish(url, queue):
    bodies = [base64.b64decode(b) for b in json.load(sys.stdin)]
    conn = connect(url)
    ch = conn.channel()
    ch.confirm_delivery()
    for body in bodies:
        ch.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2), mandatory=True)
    conn.close()
    print(json.dumps({"published": len(bodies)}))


def check_durable(url, kind, name, durable):
    conn = connect(url)
    ch = conn.channel()
    try:
        if kind == "queue":
            ch.queue_declare(name, durable=durable)
        else:
            ch.exchange_declare(name, "fanout", durable=durable)
    except pika.exceptions.ChannelClosedByBroker as e:
        print(f"{e.reply_code} {e.reply_text}")
        sys.exit(3 if e.reply_code == 406 else 1)
    conn.close()
    print("equivalent")


def bind_web(url, queue, exchange):
    conn = connect(url)
    ch = conn.channel()
    ch.queue_declare(queue, durable=True)
    ch.queue_bind(queue, exchange)
    conn.close()
    print("bound")


def delete_queue(url, queue):
    conn = connect(url)
    conn.channel().queue_delete(queue)
    conn.close()
    print("deleted")


def main(argv):
    cmd = argv[1]
    if cmd == "consume":
        consume(argv[2], argv[3], int(argv[4]), float(argv[5]))
    elif cmd == "publish":
        publish(argv[2], argv[3])
    elif cmd == "check-durable":
        check_durable(argv[2], argv[3], argv[4], argv[5] == "1")
    elif cmd == "bind-web":
        bind_web(argv[2], argv[3], argv[4])
    elif cmd == "delete-queue":
        delete_queue(argv[2], argv[3])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
