#!/usr/bin/python3
"""A TLS front for the test RabbitMQ, so amqps:// is tested end to end.

Usage: tls_proxy.py CERT KEY TARGET_PORT
Listens on 127.0.0.1 (a free port, printed on the first line of stdout),
terminates TLS with CERT/KEY and forwards the bytes to 127.0.0.1:TARGET_PORT.
Runs until its stdin is closed (its parent test exited) or it is killed.
"""
import socket
import ssl
import sys
import threading


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(listener, ctx, target_port):
    while True:
        client, _ = listener.accept()
        try:
            tls = ctx.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):
            client.close()  # a client that refused our certificate
            continue
        upstream = socket.create_connection(("127.0.0.1", target_port))
        threading.Thread(target=pump, args=(tls, upstream), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, tls), daemon=True).start()


def main(cert, key, target_port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(listener.getsockname()[1], flush=True)
    threading.Thread(target=serve, args=(listener, ctx, int(target_port)), daemon=True).start()
    sys.stdin.read()  # until the parent goes away


if __name__ == "__main__":
    main(*sys.argv[1:4])
