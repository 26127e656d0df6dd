"""
Bounded memory whatever the speeds. One connection per client: when the
backend does not read, the gateway stops reading the client, whose sends
then block, and the worker's memory stays flat; when the client does not
read, the gateway stops reading the backend, whose writes then block; in
both cases the flow resumes once the slow side reads. Shared pools: a
client that does not read while the backend floods it is closed with 1008
(websocket_send_buffer_max), and the other clients of the same backend
connection keep getting answers within a fraction of a second meanwhile;
the messages that could not be delivered are counted and logged.
"""
import asyncio
import select
import socket
import threading
import time

import pytest

from backends import (AsyncClient, Listener, backend_processes, send_until_blocked,
                      vm_rss_kib)
from wsclient import OP_BINARY, OP_CLOSE, WSClient, frame

PRELUDE = """\
worker_processes 1;
error_log logs/error.log info;
pid logs/wsgate.pid;
events { worker_connections 1024; }
"""

SERVER = """\
server {
    listen 127.0.0.1:$port;
    location = /healthz { return 200 "ok\\n"; }
    location /ws {
        proxy_pass u;
%s
    }
}
"""

TIMEOUT = 5.0
MIB = 1024 * 1024
# growth of the worker's resident memory that counts as "bounded": the
# gateway's own buffers are a few MiB (websocket_send_buffer_max 4m)
RSS_GROWTH_MAX_KIB = 50 * 1024
# what the kernel may hold on a loopback path (socket buffers at both ends
# of two connections) plus the gateway's buffers: far below this
IN_FLIGHT_MAX = 64 * MIB


@pytest.fixture
def backends(tmp_path, tmp_path_factory):
    """Backend processes, stopped by PID after the test."""
    yield from backend_processes(tmp_path, tmp_path_factory)


def config(servers, protocol="raw", extra="", location=""):
    lines = "".join(f"    server {s};\n" for s in servers)
    return (PRELUDE + f"upstream u {{\n{lines}    protocol {protocol};\n{extra}}}\n"
            + SERVER % location)


def drain_in_background(sock, stop):
    """Reads <sock> and discards it until <stop> is set or it closes;
    returns the thread and a list holding the byte count."""
    got = [0]

    def run():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                chunk = sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError:
                return
            if not chunk:
                return
            got[0] += len(chunk)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, got


def writable_within(sock, timeout):
    _, w, _ = select.select([], [sock], [], timeout)
    return bool(w)


def test_backend_that_does_not_read_stops_the_gateway_reading_its_client(gateway):
    with Listener() as backend:
        gw = gateway(config([backend.address]))
        worker = gw.worker_pids()[0]
        with WSClient.connect(gw.port, "/ws") as ws:
            conn = backend.accept()
            rss_before = vm_rss_kib(worker)
            message = frame(OP_BINARY, bytes(64 * 1024))
            sent = send_until_blocked(ws.sock, message, limit=IN_FLIGHT_MAX)
            rss_after = vm_rss_kib(worker)
            assert sent > 4 * MIB, f"blocked after only {sent} bytes"
            assert rss_after - rss_before < RSS_GROWTH_MAX_KIB, \
                f"worker grew from {rss_before} to {rss_after} KiB"
            # the client stays blocked while the backend does not read
            assert not writable_within(ws.sock, 0.5)

            stop = threading.Event()
            reader, got = drain_in_background(conn, stop)
            try:
                assert writable_within(ws.sock, TIMEOUT), "the client was never read again"
                # the stream goes on: another megabyte reaches the backend
                target = got[0] + MIB
                ws.sock.setblocking(True)
                ws.sock.settimeout(TIMEOUT)
                ws.sock.sendall(message[(sent % len(message)):] + message * 16)
                deadline = time.monotonic() + TIMEOUT
                while got[0] < target and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert got[0] >= target
            finally:
                stop.set()
                reader.join(TIMEOUT)


def test_client_that_does_not_read_stops_the_gateway_reading_its_backend(gateway):
    with Listener() as backend:
        gw = gateway(config([backend.address]))
        worker = gw.worker_pids()[0]
        with WSClient.connect(gw.port, "/ws") as ws:
            conn = backend.accept()
            rss_before = vm_rss_kib(worker)
            sent = send_until_blocked(conn, bytes(range(256)) * 256, limit=IN_FLIGHT_MAX)
            rss_after = vm_rss_kib(worker)
            assert sent > 4 * MIB, f"blocked after only {sent} bytes"
            assert rss_after - rss_before < RSS_GROWTH_MAX_KIB, \
                f"worker grew from {rss_before} to {rss_after} KiB"
            assert not writable_within(conn, 0.5)

            # the client reads: everything arrives, and the backend may write again
            received = 0
            deadline = time.monotonic() + 2 * TIMEOUT
            while received < sent and time.monotonic() < deadline:
                opcode, payload = ws.recv_message(TIMEOUT)
                assert opcode == OP_BINARY
                received += len(payload)
            assert received == sent
            assert writable_within(conn, TIMEOUT)


def test_slow_client_of_a_pool_is_closed_1008_and_others_stay_fast(gateway, backends):
    b = backends.raw("mux-flood", "flood")
    gw = gateway(config([b.address], protocol="mux", extra="    pool_size 1;\n",
                        location="        websocket_send_buffer_max 64k;"))
    gw.wait_log(r'upstream "u" server \S+ connected')

    # the slow client asks for 2 s of 64 KiB messages and never reads
    slow = WSClient.connect(gw.port, "/ws")
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)

    async def measure():
        others = [await AsyncClient.connect(gw.port, "/ws", timeout=TIMEOUT) for _ in range(4)]
        slow.send_text("flood 2")
        await asyncio.sleep(0.1)
        latencies = []
        for i in range(100):
            client = others[i % len(others)]
            t = time.monotonic()
            await client.send(f"echo {i}")
            assert await client.recv() == f"echo {i}"
            latencies.append(time.monotonic() - t)
            await asyncio.sleep(0.01)
        for client in others:
            await client.close()
        return sorted(latencies)

    try:
        latencies = asyncio.run(measure())
        # now the slow client reads: what was queued, then the close
        deadline = time.monotonic() + 10
        code = None
        while time.monotonic() < deadline:
            f = slow.recv_frame(TIMEOUT)
            if f.opcode == OP_CLOSE:
                code = f.code
                break
    finally:
        slow.close()
    p99 = latencies[98]
    assert p99 < 0.2, f"p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
    assert code == 1008
    gw.wait_log(r"client send buffer over 65536 bytes")


def test_messages_to_a_gone_client_are_counted_and_logged(gateway, backends):
    b = backends.raw("mux-flood", "flood")
    gw = gateway(config([b.address], protocol="mux", extra="    pool_size 1;\n",
                        location="        websocket_send_buffer_max 64k;"))
    gw.wait_log(r'upstream "u" server \S+ connected')
    with WSClient.connect(gw.port, "/ws") as slow:
        slow.send_text("flood 2")
        time.sleep(0.3)
    # the flood outlives the client by far: its messages have nowhere to go
    gw.wait_log(r'(?i)upstream "u".*drop|drop.*upstream "u"')
