"""A byte-for-byte TCP relay in front of the test broker that changes one
thing: it drops the top-level tagged fields of ApiVersions v3+ responses.

Why: Debian 12's librdkafka 2.0.2 skips a tagged field's length minus one
byte, so the four tagged fields Tansu 0.6.0 sends at the end of its
ApiVersions response (SupportedFeatures, FinalizedFeaturesEpoch = -1,
FinalizedFeatures, ZkMigrationReady) desync the parse ("Read underflow ...
expected 216172782113783806 bytes") and the client never gets past the
handshake.  Those fields carry nothing a producer uses; every other request
and response passes through untouched.  Newer librdkafka (the 2.16 bundled in
the confluent-kafka wheel) needs no shim but works through it as well.

    python apiversions_shim.py LISTEN_PORT BROKER_PORT    # loopback only

Threads, one per direction and connection; it exits on SIGTERM/SIGKILL like
any process (tests/kafka_broker.py starts and stops it with the broker).
"""

from __future__ import annotations

import socket
import struct
import sys
import threading

API_VERSIONS = 18
HOST = "127.0.0.1"


def _read_exact(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _read_frame(sock: socket.socket) -> bytes:
    (size,) = struct.unpack(">i", _read_exact(sock, 4))
    return _read_exact(sock, size)


def _uvarint(buf: bytes, pos: int) -> "tuple[int, int]":
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def strip_api_versions_tags(body: bytes) -> bytes:
    """An ApiVersions v3+ response (header v0: correlation id only) with its
    top-level tagged fields replaced by an empty set."""
    pos = 4 + 2  # correlation id, error code
    count_plus_one, pos = _uvarint(body, pos)
    pos += max(count_plus_one - 1, 0) * 7  # api key, min, max (int16 each), empty tags
    pos += 4  # throttle_time_ms
    return body[:pos] + b"\x00"


def _relay_requests(client, broker, pending, lock):
    """Client -> broker, noting each request's api key and version."""
    try:
        while True:
            frame = _read_frame(client)
            api_key, api_version, correlation_id = struct.unpack(">hhi", frame[:8])
            with lock:
                pending[correlation_id] = (api_key, api_version)
            broker.sendall(struct.pack(">i", len(frame)) + frame)
    except (EOFError, OSError, struct.error):
        pass
    finally:
        _close(client, broker)


def _relay_responses(client, broker, pending, lock):
    try:
        while True:
            frame = _read_frame(broker)
            (correlation_id,) = struct.unpack(">i", frame[:4])
            with lock:
                api_key, api_version = pending.pop(correlation_id, (None, None))
            if api_key == API_VERSIONS and api_version >= 3:
                frame = strip_api_versions_tags(frame)
            client.sendall(struct.pack(">i", len(frame)) + frame)
    except (EOFError, OSError, struct.error):
        pass
    finally:
        _close(client, broker)


def _close(*sockets):
    for sock in sockets:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


def _serve_connection(client: socket.socket, broker_port: int) -> None:
    try:
        broker = socket.create_connection((HOST, broker_port), timeout=5)
        broker.settimeout(None)
    except OSError:
        _close(client)  # the broker is down: the client sees the connection drop
        return
    for sock in (client, broker):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pending: dict = {}
    lock = threading.Lock()
    threading.Thread(target=_relay_requests, args=(client, broker, pending, lock),
                     daemon=True).start()
    _relay_responses(client, broker, pending, lock)


def serve(listen_port: int, broker_port: int) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((HOST, listen_port))
    server.listen(64)
    print(f"shim listening on {HOST}:{listen_port} -> {HOST}:{broker_port}", flush=True)
    while True:
        client, _ = server.accept()
        threading.Thread(target=_serve_connection, args=(client, broker_port),
                         daemon=True).start()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: apiversions_shim.py LISTEN_PORT BROKER_PORT")
    serve(int(sys.argv[1]), int(sys.argv[2]))
