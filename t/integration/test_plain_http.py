"""
What a listener answers before any WebSocket session: a `return` location
such as /healthz, 404 where no location matches, 426 and 405 on a WebSocket
location, 400, 431 and 505 for requests it cannot take. Every answer
carries "Connection: close" and the gateway closes after it.
"""
import asyncio

import pytest
import websockets

from support import Response

CONFIG = """\
worker_processes 2;
error_log logs/error.log info;
pid logs/wsgate.pid;
events { worker_connections 1024; }
server {
    listen 127.0.0.1:$port;
    location = /healthz { return 200 "ok\\n"; }
    location /gone { return 410 "gone for good\\n"; }
    location /ws { websocket_echo on; }
}
"""


def test_healthz_answers_200_ok(gateway):
    gw = gateway(CONFIG)
    r = gw.http_get("/healthz")
    assert r.status_line == "HTTP/1.1 200 OK"
    assert r.body == b"ok\n"
    assert r.headers["content-length"] == "3"
    assert r.headers["connection"] == "close"


@pytest.mark.parametrize("raw, status", [
    (b"GET /nothing/here HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    (b"GET /healthz/more HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    (b"GET /gone/x HTTP/1.1\r\nHost: x\r\n\r\n", 410),
    (b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", 426),
    (b"POST /ws HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405),
    (b"nonsense\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
], ids=["no-location", "exact-location-only", "return-410", "ws-without-upgrade",
        "ws-post", "malformed", "http2-version", "head-too-large"])
def test_plain_request_gets_its_status_and_a_close(gateway, raw, status):
    gw = gateway(CONFIG)
    r = Response(gw.send_raw(raw))
    assert r.status == status, r
    assert r.headers["connection"] == "close"
    assert int(r.headers["content-length"]) == len(r.body)
    if status == 426:
        assert r.headers["upgrade"].lower() == "websocket"


def test_websocket_client_is_echoed(gateway):
    gw = gateway(CONFIG)

    async def talk():
        uri = f"ws://127.0.0.1:{gw.port}/ws"
        async with websockets.connect(uri, open_timeout=3, close_timeout=3,
                                      ping_interval=None) as ws:
            await ws.send("hello")
            text = await asyncio.wait_for(ws.recv(), 3)
            await ws.send(b"\x00\x01")
            data = await asyncio.wait_for(ws.recv(), 3)
            return text, data

    assert asyncio.run(talk()) == ("hello", b"\x00\x01")
