"""
Heartbeat and timeouts of a WebSocket session: the gateway pings a client
after websocket_ping_interval without a frame from it and closes it with
1001 after websocket_idle_timeout; a client that answers pings stays; with
both set to 0 a silent client stays; and a client that never answers the
gateway's close frame is dropped after websocket_close_timeout, its data
frames meanwhile read and dropped.
"""
import asyncio
import select
import time

import websockets

from wsclient import OP_CLOSE, OP_PING, OP_TEXT, WSClient

CONFIG = """\
worker_processes 1;
error_log logs/error.log info;
pid logs/wsgate.pid;
events { worker_connections 1024; }
server {
    listen 127.0.0.1:$port;
    location = /healthz { return 200 "ok\\n"; }
    location /beat {
        websocket_echo on;
        websocket_ping_interval 300ms;
        websocket_idle_timeout 1s;
        websocket_close_timeout 500ms;
    }
    location /quiet { websocket_echo on; websocket_ping_interval 0; websocket_idle_timeout 0; }
    location /closewait {
        websocket_echo on;
        websocket_ping_interval 0;
        websocket_idle_timeout 500ms;
        websocket_close_timeout 700ms;
    }
}
"""


def test_silent_client_is_pinged_then_closed_1001(gateway):
    gw = gateway(CONFIG)
    with WSClient.connect(gw.port, "/beat") as ws:
        start = time.monotonic()
        pings = []
        for _ in range(20):
            f = ws.recv_frame(timeout=2.0)
            at = time.monotonic() - start
            if f.opcode != OP_PING:
                break
            pings.append(at)
        assert pings, "no ping before the close"
        assert 0.25 <= pings[0] <= 0.8, pings
        assert f.opcode == OP_CLOSE, f
        assert f.code == 1001, f
        assert 0.9 <= at <= 1.6, at
        # answering the close ends the connection at once
        ws.send_close(1001)
        assert ws.closed_by_peer(timeout=0.5)
    gw.wait_log(r"\[info\] \d+: \*\d+ client idle for \d+ ms, ping unanswered ")


def test_client_answering_pings_stays_connected(gateway):
    gw = gateway(CONFIG)

    async def talk():
        uri = f"ws://127.0.0.1:{gw.port}/beat"
        # the client answers the gateway's pings by itself
        async with websockets.connect(uri, open_timeout=3, close_timeout=3,
                                      ping_interval=None) as ws:
            await asyncio.sleep(2.2)
            await ws.send("still here")
            return await asyncio.wait_for(ws.recv(), 3)

    assert asyncio.run(talk()) == "still here"


def test_silent_client_stays_without_ping_and_idle_timeout(gateway):
    gw = gateway(CONFIG)
    with WSClient.connect(gw.port, "/quiet") as ws:
        readable, _, _ = select.select([ws.sock], [], [], 2.0)
        assert not readable, "the gateway sent something to a silent client"
        ws.send_text("awake")
        assert ws.recv_message() == (OP_TEXT, b"awake")


def test_unanswered_close_is_dropped_after_close_timeout(gateway):
    gw = gateway(CONFIG)
    with WSClient.connect(gw.port, "/closewait") as ws:
        start = time.monotonic()
        f = ws.recv_close(timeout=2.0)
        closed_at = time.monotonic()
        assert f.code == 1001, f
        assert 0.4 <= closed_at - start <= 1.0, closed_at - start
        # data after the gateway's close is read and dropped, not echoed
        ws.send_text("too late")
        assert ws.closed_by_peer(timeout=2.0), "data came back after the close frame"
        dropped = time.monotonic() - closed_at
        assert 0.6 <= dropped <= 1.2, dropped
