#!/usr/bin/python3
"""pika doing what bench-broker measures for our AMQP broker, on the same RabbitMQ.

Usage: bench_broker.py URL QUEUE N BATCH
Prints JSON rates (operations per second):
  round_trip_get      publish (persistent, mandatory, confirmed) -> basic_get -> basic_ack
  round_trip_consume  the same with a prefetch-1 consumer (the reference worker's way)
  batched             publish BATCH, then get+ack BATCH, repeated: messages per second
  cpu_us_get, cpu_us_consume   this process's CPU time per round trip (microseconds)
Deletes QUEUE at the end. Note: pika's basic_ack is asynchronous (no round
trip), while our ack waits until the broker has processed it.
"""
import json
import sys
import time

import pika

BODY = (b'{"triggers": ["glibc/2.36-9+deb12u4"], "requester": "britney", '
        b'"submit-time": "2024-05-01 12:00:00", "env": ["AUTOPKGTEST_SETUP_VM=1"], "ppas": []}')


def main(url, queue, n, batch):
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.confirm_delivery()
    ch.basic_qos(prefetch_count=1)
    ch.queue_declare(queue, durable=True)
    props = pika.BasicProperties(delivery_mode=2)

    def get_round_trips(count):
        for _ in range(count):
            ch.basic_publish("", queue, BODY, props, mandatory=True)
            method, _, body = ch.basic_get(queue)
            assert method is not None and body == BODY
            ch.basic_ack(method.delivery_tag)

    get_round_trips(50)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    get_round_trips(n)
    round_trip_get = n / (time.perf_counter() - t0)
    cpu_us_get = (time.process_time() - c0) / n * 1e6

    def consume_round_trips(count):
        it = ch.consume(queue, inactivity_timeout=10)
        for _ in range(count):
            ch.basic_publish("", queue, BODY, props, mandatory=True)
            method, _, body = next(it)
            assert method is not None and body == BODY
            ch.basic_ack(method.delivery_tag)
        ch.cancel()

    consume_round_trips(50)
    t0, c0 = time.perf_counter(), time.process_time()
    consume_round_trips(n)
    round_trip_consume = n / (time.perf_counter() - t0)
    cpu_us_consume = (time.process_time() - c0) / n * 1e6

    t0 = time.perf_counter()
    done = 0
    while done < n:
        for _ in range(batch):
            ch.basic_publish("", queue, BODY, props, mandatory=True)
        for _ in range(batch):
            method, _, body = ch.basic_get(queue)
            assert method is not None
            ch.basic_ack(method.delivery_tag)
        done += batch
    batched = done / (time.perf_counter() - t0)

    ch.queue_delete(queue)
    conn.close()
    print(json.dumps({"round_trip_get": round_trip_get, "round_trip_consume": round_trip_consume,
                      "batched": batched, "cpu_us_get": cpu_us_get, "cpu_us_consume": cpu_us_consume}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
