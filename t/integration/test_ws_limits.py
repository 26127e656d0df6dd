"""
Limits of a WebSocket session: back-pressure (a client that sends without
reading is no longer read once its echo output passes half of
websocket_send_buffer_max, so the worker's memory stays bounded, and it is
served again, in order, once it reads), and graceful shutdown (after QUIT an
open session goes on until worker_shutdown_timeout, then gets a close frame
with 1001, and the master exits).
"""
import re
import select
import signal
import socket
import struct
import time
from pathlib import Path

from support import HOST, wait_until
from wsclient import OP_BINARY, OP_TEXT, WSClient, frame

CONFIG = """\
worker_processes 1;
error_log logs/error.log info;
pid logs/wsgate.pid;
worker_shutdown_timeout 1s;
events { worker_connections 1024; }
server {
    listen 127.0.0.1:$port;
    location = /healthz { return 200 "ok\\n"; }
    location /echo { websocket_echo on; websocket_send_buffer_max 64k; }
}
"""

MESSAGE = 16 * 1024
MiB = 1024 * 1024


def vm_kib(pid, field):
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.M).group(1))


def refused(port):
    """True when a connection to <port> is refused. One reset while the
    listener is being closed counts as not refused yet."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        return False


def numbered(i):
    """Message <i>: its number, then filler up to 16 KiB."""
    return struct.pack("!I", i) + bytes([i % 251]) * (MESSAGE - 4)


def test_client_that_does_not_read_is_no_longer_read(gateway):
    gw = gateway(CONFIG)
    (worker,) = gw.worker_pids()
    rss_before = vm_kib(worker, "VmRSS")
    limit = 200 * MiB
    with WSClient.connect(gw.port) as ws:
        ws.sock.setblocking(False)
        sent = 0
        count = 0
        pending = b""
        blocked = False
        deadline = time.monotonic() + 10.0
        while sent < limit and time.monotonic() < deadline:
            if not pending:
                pending = frame(OP_BINARY, numbered(count))
                count += 1
            _, writable, _ = select.select([], [ws.sock], [], 1.0)
            if not writable:
                blocked = True
                break
            try:
                n = ws.sock.send(pending)
            except BlockingIOError:
                continue
            sent += n
            pending = pending[n:]
        assert blocked, f"the gateway kept reading: {sent} bytes sent"
        assert sent < 64 * MiB, sent
        growth = vm_kib(worker, "VmHWM") - rss_before
        assert growth < 50 * 1024, f"worker grew by {growth} kB"

        # reading drains the gateway's output; it then reads the client
        # again and every whole message comes back, in order
        ws.sock.setblocking(True)
        complete = count - 1 if pending else count
        for i in range(complete):
            assert ws.recv_message(timeout=5.0) == (OP_BINARY, numbered(i)), i
        if pending:
            ws.send(pending)
            assert ws.recv_message(timeout=5.0) == (OP_BINARY, numbered(count - 1))
        ws.send_text("done")
        assert ws.recv_message() == (OP_TEXT, b"done")
    assert gw.worker_pids() == [worker]


def test_quit_closes_open_session_1001_after_shutdown_timeout(gateway):
    gw = gateway(CONFIG)
    (worker,) = gw.worker_pids()
    with WSClient.connect(gw.port) as ws:
        ws.send_text("before")
        assert ws.recv_message() == (OP_TEXT, b"before")
        gw.signal(signal.SIGQUIT)
        start = time.monotonic()
        # the listener closes; the open session goes on meanwhile
        wait_until(lambda: refused(gw.port), 0.5, "the listener to close")
        ws.send_text("during")
        assert ws.recv_message() == (OP_TEXT, b"during")

        f = ws.recv_close(timeout=3.0)
        elapsed = time.monotonic() - start
        assert f.code == 1001, f
        assert 0.8 <= elapsed <= 2.0, elapsed
        ws.send_close(1001)
        assert ws.closed_by_peer(timeout=2.0)
    assert gw.wait_exit(5.0) == 0
    assert worker not in gw.worker_pids()


def test_quit_with_no_sessions_exits_at_once(gateway):
    gw = gateway(CONFIG)
    start = time.monotonic()
    gw.signal(signal.SIGQUIT)
    assert gw.wait_exit(5.0) == 0
    assert time.monotonic() - start < 0.9
