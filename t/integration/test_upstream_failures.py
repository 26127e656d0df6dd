"""
What clients see when backends end, stall or pause. One connection per
client: a backend that closes (EOF, also when its process is killed)
closes its client with 1000 once what it sent is delivered; a backend that
resets closes it with 1011; either way the gateway keeps serving the other
clients. Shared pools: when a server's process is killed, proxy_failover
reopen moves its clients to another server, announced with a fresh open
under the same connection id, and their next messages still echo;
proxy_failover close closes them with 1012 when another server is up and
1011 when none is. proxy_read_timeout 0 never cuts a silent backend,
proxy_read_timeout 1s closes its client with 1011 after about a second of
silence, and backend data restarts that clock. A mux or json backend's
pause holds one client's messages until its resume, without slowing the
other clients of the link.
"""
import asyncio
import json
import re
import socket
import struct
import time

import pytest

from backends import AsyncClient, Listener, backend_processes, recv_exactly
from wsclient import OP_BINARY, WSClient

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
        websocket_ping_interval 0;
        websocket_idle_timeout 0;
%s
    }
}
"""

TIMEOUT = 5.0


@pytest.fixture
def backends(tmp_path, tmp_path_factory):
    """Backend processes, stopped by PID after the test."""
    yield from backend_processes(tmp_path, tmp_path_factory)


def config(servers, protocol="raw", extra="", location=""):
    lines = "".join(f"    server {s};\n" for s in servers)
    return (PRELUDE + f"upstream u {{\n{lines}    protocol {protocol};\n{extra}}}\n"
            + SERVER % location)


def closed_with(ws, timeout=TIMEOUT):
    """Reads the gateway's close frame, answers it, and checks TCP closes;
    returns the close code."""
    code = ws.recv_close(timeout).code
    ws.send_close(code)
    assert ws.closed_by_peer(timeout), "gateway kept the connection open"
    return code


# ---- one connection per client ------------------------------------------------


def test_backend_close_delivers_its_last_bytes_then_closes_1000(gateway):
    with Listener() as backend:
        gw = gateway(config([backend.address]))
        with WSClient.connect(gw.port, "/ws") as ws:
            conn = backend.accept()
            ws.send_frame(OP_BINARY, b"hello")
            assert recv_exactly(conn, 5) == b"hello"
            conn.sendall(b"goodbye")
            conn.shutdown(socket.SHUT_WR)
            assert ws.recv_message(TIMEOUT) == (OP_BINARY, b"goodbye")
            assert closed_with(ws) == 1000
            # the gateway shuts its side down too
            assert conn.recv(16) == b""
    gw.wait_log(r'upstream "u" server \S+ closed the connection')


def test_backend_reset_closes_client_1011_and_others_go_on(gateway):
    with Listener() as backend:
        gw = gateway(config([backend.address]))
        with WSClient.connect(gw.port, "/ws") as doomed, WSClient.connect(gw.port, "/ws") as other:
            first, second = backend.accept(), backend.accept()
            # which backend connection is whose: each client says so
            doomed.send_frame(OP_BINARY, b"doomed")
            other.send_frame(OP_BINARY, b"other!")
            by_name = {recv_exactly(c, 6): c for c in (first, second)}
            reset, survivor = by_name[b"doomed"], by_name[b"other!"]
            reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            reset.close()
            assert closed_with(doomed) == 1011

            survivor.sendall(b"still here")
            assert other.recv_message(TIMEOUT) == (OP_BINARY, b"still here")
            other.send_frame(OP_BINARY, b"and me")
            assert recv_exactly(survivor, 6) == b"and me"
    gw.wait_log(r'upstream "u" server \S+ connection failed')


def test_killed_backend_closes_its_clients_1000_and_gateway_serves_others(gateway, backends):
    a = backends.raw("name", "a")
    b = backends.raw("name", "b")
    gw = gateway(config([a.address, b.address]))

    async def scenario():
        clients = {}
        for _ in range(4):
            c = await AsyncClient.connect(gw.port, "/ws", timeout=TIMEOUT)
            clients.setdefault((await c.recv()).decode().strip(), []).append(c)
        assert sorted(clients) == ["a", "b"] and len(clients["a"]) == 2
        a.kill()
        codes = [await c.recv_close() for c in clients["a"]]
        for c in clients["a"]:
            c.abort()
        for c in clients["b"]:
            await c.send(b"echo me")
            assert await c.recv() == b"echo me"
        newcomers = []
        for _ in range(4):
            c = await AsyncClient.connect(gw.port, "/ws", timeout=TIMEOUT)
            newcomers.append((await c.recv()).decode().strip())
            await c.close()
        for c in clients["b"]:
            await c.close()
        return codes, newcomers

    codes, newcomers = asyncio.run(scenario())
    # a killed process's sockets end with FIN: an orderly EOF for the gateway
    assert codes == [1000, 1000]
    assert newcomers == ["b"] * 4


# ---- shared pools: failover -----------------------------------------------------


async def whoami(client):
    await client.send("whoami")
    return json.loads(await client.recv())


def pooled_gateway(gateway, backends, protocol, failover, names="ab"):
    servers = [backends.reference(protocol, name) for name in names]
    gw = gateway(config([s.address for s in servers], protocol=protocol,
                        extra=f"    pool_size 1;\n    proxy_failover {failover};\n"))
    gw.wait_log(r'upstream "u" server \S+ connected', count=len(servers))
    return gw, servers


def wait_link_lost(gw, server):
    gw.wait_log(rf'upstream "u" server {re.escape(server.address)}: '
                r'(closed the connection|connection failed)')


@pytest.mark.parametrize("protocol", ["mux", "json"])
def test_failover_reopen_moves_clients_to_another_server_under_the_same_id(
        gateway, backends, protocol):
    gw, (a, b) = pooled_gateway(gateway, backends, protocol, "reopen")

    async def scenario():
        clients = [await AsyncClient.connect(gw.port, "/ws?c=%d" % i, timeout=TIMEOUT)
                   for i in range(6)]
        before = [await whoami(c) for c in clients]
        a.kill()
        await asyncio.to_thread(wait_link_lost, gw, a)
        after = [await whoami(c) for c in clients]
        for c in clients:
            await c.send(b"\x00binary after failover")
            assert await c.recv() == b"\x00binary after failover"
            await c.close()
        return before, after

    before, after = asyncio.run(scenario())
    assert sorted(info["server"] for info in before) == ["a"] * 3 + ["b"] * 3
    for i, (old, new) in enumerate(zip(before, after)):
        assert new["server"] == "b"
        assert new["id"] == old["id"]
        # b knows the moved clients from a fresh open: its whoami reports
        # what that open said
        assert (new["path"], new["query"]) == ("/ws", f"c={i}")
        assert new["remote"] == old["remote"]


@pytest.mark.parametrize("protocol", ["mux", "json"])
def test_failover_close_closes_clients_1012_when_another_server_is_up(
        gateway, backends, protocol):
    gw, (a, b) = pooled_gateway(gateway, backends, protocol, "close")

    async def scenario():
        clients = [await AsyncClient.connect(gw.port, "/ws", timeout=TIMEOUT) for _ in range(4)]
        servers = [(await whoami(c))["server"] for c in clients]
        a.kill()
        codes = {}
        for c, server in zip(clients, servers):
            if server == "a":
                codes[c] = await c.recv_close()
                c.abort()
        for c, server in zip(clients, servers):
            if server == "b":
                assert (await whoami(c))["server"] == "b"
                await c.close()
        return servers, list(codes.values())

    servers, codes = asyncio.run(scenario())
    assert sorted(servers) == ["a", "a", "b", "b"]
    assert codes == [1012, 1012]


@pytest.mark.parametrize("failover", ["close", "reopen"])
def test_failover_closes_clients_1011_when_no_server_is_left(gateway, backends, failover):
    gw, (a,) = pooled_gateway(gateway, backends, "mux", failover, names="a")

    async def scenario():
        clients = [await AsyncClient.connect(gw.port, "/ws", timeout=TIMEOUT) for _ in range(2)]
        for c in clients:
            assert (await whoami(c))["server"] == "a"
        a.kill()
        codes = [await c.recv_close() for c in clients]
        for c in clients:
            c.abort()
        return codes

    assert asyncio.run(scenario()) == [1011, 1011]


def test_pool_serves_clients_as_soon_as_the_server_returns(gateway, backends):
    gw, (a,) = pooled_gateway(gateway, backends, "mux", "reopen", names="a")
    a.kill()
    wait_link_lost(gw, a)
    # the server stays away long enough for a reconnect to fail
    gw.wait_log(rf'upstream "u" server {re.escape(a.address)}: connect\(\) failed')
    a.start()
    gw.wait_log(r'upstream "u" server \S+ connected', count=2)

    async def scenario():
        c = await AsyncClient.connect(gw.port, "/ws", timeout=TIMEOUT)
        if c.status != 101:
            return c.status
        info = await whoami(c)
        await c.close()
        return info["server"]

    # a live pool connection again: clients are served (502 is only for
    # "no server has a live pool connection")
    assert asyncio.run(scenario()) == "a"


# ---- proxy_read_timeout -----------------------------------------------------------


def test_read_timeout_0_keeps_a_silent_backend_connected(gateway):
    with Listener() as backend:
        gw = gateway(config([backend.address], location="        proxy_read_timeout 0;"))
        with WSClient.connect(gw.port, "/ws") as ws:
            conn = backend.accept()
            ws.sock.settimeout(3.5)
            with pytest.raises(socket.timeout):
                ws.sock.recv(1)
            ws.send_frame(OP_BINARY, b"still there?")
            assert recv_exactly(conn, 12) == b"still there?"
            conn.sendall(b"yes")
            assert ws.recv_message(TIMEOUT) == (OP_BINARY, b"yes")


def test_read_timeout_closes_client_1011_after_backend_silence(gateway):
    with Listener() as backend:
        gw = gateway(config([backend.address], location="        proxy_read_timeout 1s;"))
        with WSClient.connect(gw.port, "/ws") as ws:
            start = time.monotonic()
            backend.accept()
            assert closed_with(ws) == 1011
            elapsed = time.monotonic() - start
    assert 0.8 <= elapsed <= 2.5, f"closed after {elapsed:.2f} s"
    gw.wait_log(r'upstream "u" server \S+ timed out \(proxy_read_timeout\)')


def test_read_timeout_restarts_on_backend_data(gateway):
    with Listener() as backend:
        gw = gateway(config([backend.address], location="        proxy_read_timeout 1s;"))
        with WSClient.connect(gw.port, "/ws") as ws:
            conn = backend.accept()
            for i in range(4):
                time.sleep(0.5)
                conn.sendall(b"tick")
                assert ws.recv_message(TIMEOUT) == (OP_BINARY, b"tick"), f"tick {i}"
            # 2 s went by with data every 0.5 s; now silence cuts it
            silent = time.monotonic()
            assert closed_with(ws) == 1011
            assert 0.8 <= time.monotonic() - silent <= 2.5


# ---- pause and resume -------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["mux", "json"])
def test_backend_pause_delays_a_clients_messages_until_resume(gateway, backends, protocol):
    b = backends.reference(protocol, "a", "--pause-after", "1", "--pause-seconds", "1")
    gw = gateway(config([b.address], protocol=protocol, extra="    pool_size 1;\n"))
    gw.wait_log(r'upstream "u" server \S+ connected')

    async def scenario():
        paused = await AsyncClient.connect(gw.port, "/ws", timeout=TIMEOUT)
        other = await AsyncClient.connect(gw.port, "/ws", timeout=TIMEOUT)
        await paused.send("one")
        assert await paused.recv() == "one"
        first = time.monotonic()
        # the backend paused this client right after echoing "one"; give
        # the pause the time to arrive, then "two" waits for the resume
        await asyncio.sleep(0.2)
        await paused.send("two")
        second = asyncio.ensure_future(paused.recv())
        # meanwhile another client of the same link is answered at once
        t = time.monotonic()
        await other.send("quick")
        assert await other.recv() == "quick"
        other_latency = time.monotonic() - t
        assert await second == "two"
        delay = time.monotonic() - first
        await paused.close()
        await other.close()
        return delay, other_latency

    delay, other_latency = asyncio.run(scenario())
    assert 0.7 <= delay <= 3.0, f"the second message came back after {delay:.2f} s"
    assert other_latency < 0.5, f"the other client waited {other_latency:.2f} s"
