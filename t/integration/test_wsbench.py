"""
wsbench, the WebSocket load generator in contrib/wsbench, and
contrib/ws-echo-server, the echo server it is measured against. wsbench
runs against small Python servers started here (echo, corrupting echo,
fragmenting echo with pings, broadcast, refusing, TLS) and against
ws-echo-server; ws-echo-server is also checked alone with a raw client.

The binaries are not built here: WSBENCH_BIN and WS_ECHO_BIN name them, and
the tests that need one skip when it is not given.
"""
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest
import websockets

from support import HOST, free_port, port_refuses, wait_until
from wsclient import OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_TEXT, WSClient

WSBENCH_BIN = os.environ.get("WSBENCH_BIN")
WS_ECHO_BIN = os.environ.get("WS_ECHO_BIN")

needs_wsbench = pytest.mark.skipif(
    not WSBENCH_BIN, reason="WSBENCH_BIN is not set: no wsbench binary to test")
needs_echo = pytest.mark.skipif(
    not WS_ECHO_BIN, reason="WS_ECHO_BIN is not set: no ws-echo-server binary to test")

READY_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")

# The Python servers, one program with a mode argument:
#   echo      every message back unchanged
#   corrupt   every second message back with one character changed
#   fragment  a ping, answered within 2 s or the connection fails, then
#             the message back in three fragments
#   broadcast every message to every connected client
#   reject    the upgrade refused with 404
# A TLS certificate and key may follow the mode.
SERVER = r"""
import asyncio, http, ssl, sys
import websockets

port, mode = int(sys.argv[1]), sys.argv[2]
clients = set()

async def handler(ws, path):
    clients.add(ws)
    n = 0
    try:
        async for m in ws:
            n += 1
            if mode == "corrupt" and n % 2 == 0:
                i = len(m) // 2
                m = m[:i] + ("A" if m[i] != "A" else "B") + m[i + 1:]
            if mode == "broadcast":
                websockets.broadcast(clients, m)
            elif mode == "fragment":
                pong = await ws.ping()
                await asyncio.wait_for(pong, 2)
                third = max(1, len(m) // 3)
                await ws.send([m[:third], m[third:2 * third], m[2 * third:]])
            else:
                await ws.send(m)
    except websockets.ConnectionClosed:
        pass
    finally:
        clients.discard(ws)

async def refuse(path, headers):
    if mode == "reject":
        return http.HTTPStatus.NOT_FOUND, [], b"no\n"
    return None

async def main():
    tls = None
    if len(sys.argv) > 3:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(sys.argv[3], sys.argv[4])
    async with websockets.serve(handler, "127.0.0.1", port, ssl=tls,
                                process_request=refuse, max_size=None,
                                compression=None, backlog=1024):
        await asyncio.Future()

asyncio.run(main())
"""


class Server:
    """A server process on a free 127.0.0.1 port, stopped by PID."""

    def __init__(self, argv, port, log_path):
        self.port = port
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, start_new_session=True)
        wait_until(self._ready, READY_TIMEOUT, f"a server on port {port}")

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()}")
        return not port_refuses(self.port)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        """Stops the server: TERM, then KILL after a bound; returns its
        exit status."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(STOP_TIMEOUT)
        return self.proc.returncode


@pytest.fixture
def servers(tmp_path):
    """Starts servers for a test and stops them all at its end; fails on a
    sanitizer report from ws-echo-server or on it not exiting cleanly."""
    started = []

    def python(mode, *tls):
        port = free_port()
        argv = [sys.executable, "-c", SERVER, str(port), mode, *map(str, tls)]
        server = Server(argv, port, tmp_path / f"python-{mode}-{port}.log")
        started.append((server, False))
        return server

    def echo(threads=1):
        port = free_port()
        argv = [WS_ECHO_BIN, "-l", f"{HOST}:{port}", "-t", str(threads)]
        server = Server(argv, port, tmp_path / f"ws-echo-server-{port}.log")
        started.append((server, True))
        return server

    yield type("Servers", (), {"python": staticmethod(python), "echo": staticmethod(echo)})
    problems = []
    for server, ours in started:
        status = server.stop()
        if ours and status != 0:
            problems.append(f"ws-echo-server exited with {status}:\n{server.log()}")
        if ours and SANITIZER.search(server.log()):
            problems.append(f"sanitizer report from ws-echo-server:\n{server.log()}")
    assert not problems, "\n".join(problems)


def wsbench(*args, timeout=60):
    """Runs wsbench with --json to the end; returns its report as a dict."""
    done = subprocess.run([WSBENCH_BIN, "--json", *map(str, args)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, errors="replace", timeout=timeout)
    assert done.returncode == 0, f"wsbench exited with {done.returncode}:\n{done.stderr}"
    assert not SANITIZER.search(done.stderr), done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    return json.loads(lines[0])


def url(server, path="/"):
    return f"ws://{HOST}:{server.port}{path}"


def assert_latency_ordered(report):
    lat = report["latency_us"]
    assert lat["samples"] > 0, report
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] \
        <= lat["max"], lat


@needs_wsbench
def test_echo_against_python_server_reports_messages_and_ordered_latency(servers):
    server = servers.python("echo")
    report = wsbench("-c", 4, "-d", 1, "--pipeline", 4, url(server))
    assert report["mode"] == "echo"
    assert report["connections"] == 4
    assert report["handshakes"] == 4
    assert report["messages"] > 0
    assert report["messages_per_s"] > 0
    assert report["bytes"] == 64 * report["messages"]
    assert report["errors"]["total"] == 0, report
    assert_latency_ordered(report)


@needs_wsbench
def test_corrupted_echoes_count_as_mismatch_errors(servers):
    server = servers.python("corrupt")
    report = wsbench("-c", 2, "-d", 1, "--warmup", 0.2, url(server))
    errors = report["errors"]
    assert errors["mismatch"] > 0, report
    assert errors["total"] == errors["mismatch"], report
    # every second echo is intact, and only those count as messages
    assert report["messages"] > 0
    assert report["bytes"] == 64 * report["messages"]


@needs_wsbench
@needs_echo
def test_binary_64k_messages_through_ws_echo_server_have_no_errors(servers):
    server = servers.echo()
    report = wsbench("-c", 4, "-d", 1, "--pipeline", 4, "--binary", "-s", 65536, url(server))
    assert report["binary"] is True
    assert report["message_size"] == 65536
    assert report["messages"] > 0
    assert report["bytes"] == 65536 * report["messages"]
    assert report["errors"]["total"] == 0, report
    assert_latency_ordered(report)


@needs_wsbench
def test_open_loop_rate_sends_on_schedule(servers):
    server = servers.python("echo")
    report = wsbench("-c", 4, "-d", 2, "--rate", 1000, url(server))
    assert report["rate"] == 1000
    assert 1700 <= report["sent"] <= 2300, report
    assert 1700 <= report["messages"] <= 2300, report
    assert report["unsent"] == 0
    assert report["errors"]["total"] == 0, report
    assert_latency_ordered(report)


@needs_wsbench
def test_idle_connections_are_established_and_held(servers):
    server = servers.python("echo")
    report = wsbench("--idle", 200, "--hold", 1, url(server))
    assert report["mode"] == "idle"
    assert report["idle"] == {"requested": 200, "established": 200, "held": 200,
                              "hold_s": 1.0}, report
    assert report["handshakes"] == 200
    assert report["sent"] == 0
    assert report["errors"]["total"] == 0, report


@needs_wsbench
def test_fragmented_echoes_and_server_pings_are_handled(servers):
    server = servers.python("fragment")
    report = wsbench("-c", 2, "-d", 1, "--warmup", 0.2, "-s", 1000, url(server))
    assert report["messages"] > 0
    assert report["errors"]["total"] == 0, report


@needs_wsbench
@needs_echo
def test_connect_rate_cycles_connections_over_two_threads(servers):
    server = servers.echo(threads=2)
    report = wsbench("--connect-rate", "-c", 4, "-t", 2, "-d", 1, "--warmup", 0.2, url(server))
    assert report["mode"] == "connect-rate"
    assert report["latency_of"] == "handshake"
    # each cycle is a handshake and one verified echo
    assert report["handshakes_per_s"] > 10, report
    assert report["messages"] > 10, report
    assert report["errors"]["total"] == 0, report
    assert_latency_ordered(report)


@needs_wsbench
def test_room_messages_reach_every_member(servers):
    server = servers.python("broadcast")
    report = wsbench("--room", "lobby", "--members", 5, "--interval", 0.05, "-d", 1,
                     "--warmup", 0.5, url(server))
    room = report["room"]
    assert room["members"] == 5
    assert room["sent"] >= 10, report
    # a message sent just before the window closes may arrive after it
    assert 5 * (room["sent"] - 2) <= room["deliveries"] <= 5 * (room["sent"] + 2), report
    assert report["errors"]["total"] == 0, report
    assert_latency_ordered(report)


@needs_wsbench
def test_refused_upgrade_and_closed_port_count_their_errors(servers):
    server = servers.python("reject")
    report = wsbench("-c", 2, "-d", 0.3, "--warmup", 0, url(server))
    assert report["handshakes"] == 0
    assert report["errors"]["handshake"] > 0, report
    assert report["messages"] == 0

    report = wsbench("-c", 2, "-d", 0.3, "--warmup", 0, f"ws://{HOST}:{free_port()}/")
    assert report["errors"]["connect"] > 0, report
    assert report["errors"]["total"] == report["errors"]["connect"], report


@pytest.fixture
def cert(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a test certificate")
    crt, key = tmp_path / "a.crt", tmp_path / "a.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=a.test",
         "-addext", "subjectAltName=DNS:a.test", "-days", "2",
         "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True, timeout=30)
    return crt, key


@needs_wsbench
def test_wss_verifies_the_certificate_unless_insecure(servers, cert):
    crt, key = cert
    server = servers.python("echo", crt, key)
    wss = f"wss://{HOST}:{server.port}/"

    report = wsbench("-c", 2, "-d", 0.5, "--warmup", 0.3, "--cacert", crt, "--sni", "a.test", wss)
    assert report["messages"] > 0
    assert report["errors"]["total"] == 0, report

    report = wsbench("-c", 2, "-d", 0.5, "--warmup", 0.3, "--insecure", wss)
    assert report["messages"] > 0
    assert report["errors"]["total"] == 0, report

    # the certificate names a.test, not 127.0.0.1
    report = wsbench("-c", 1, "-d", 0.3, "--warmup", 0, "--cacert", crt, wss)
    assert report["messages"] == 0
    assert report["errors"]["handshake"] > 0, report


@needs_echo
def test_ws_echo_server_echoes_fragments_whole_and_answers_ping_and_close(servers):
    server = servers.echo()
    with WSClient.connect(server.port) as ws:
        ws.send_frame(OP_TEXT, b"hel", fin=False)
        ws.send_frame(OP_PING, b"p1")
        ws.send_frame(OP_CONT, b"lo", fin=False)
        ws.send_frame(OP_CONT, b"!", fin=True)
        pong = ws.recv_frame()
        assert (pong.opcode, pong.payload, pong.masked) == (OP_PONG, b"p1", False)
        assert ws.recv_message() == (OP_TEXT, b"hello!")
        big = os.urandom(70000)
        ws.send_frame(OP_BINARY, big)
        assert ws.recv_message() == (OP_BINARY, big)
        ws.send_close(4000)
        ws.expect_close(4000)

    # a client frame must be masked (RFC 6455 section 5.1)
    with WSClient.connect(server.port) as ws:
        ws.send_frame(OP_TEXT, b"x", masked=False)
        ws.expect_close(1002)

    # and the legacy client library agrees with the handshake
    async def talk():
        async with websockets.connect(url(server), compression=None) as ws:
            await ws.send("ping")
            return await asyncio.wait_for(ws.recv(), 5)

    assert asyncio.run(asyncio.wait_for(talk(), 10)) == "ping"
    with WSClient.open(server.port) as raw:
        raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert raw.read_head().status == 400
