"""
The WebSocket opening handshake: 101 with the right Sec-WebSocket-Accept for
a valid upgrade, and the exact status for each request the gateway refuses
(400, 403, 404, 405, 414, 426 with its hint header, 431); Origin checking,
subprotocol choice, `return` next to a WebSocket location, the request-head
deadline against a slowloris client, frames sent right behind the request,
and the choice of server by the Host header.
"""
import select
import socket
import time

import pytest

from support import HOST, Response, read_until_closed, send_raw
from wsclient import (OP_BINARY, OP_CLOSE, OP_TEXT, WSClient, accept_for, frame, new_key,
                      upgrade_request)

CONFIG = """\
worker_processes 1;
error_log logs/error.log info;
pid logs/wsgate.pid;
events { worker_connections 1024; }
server {
    listen 127.0.0.1:$port;
    client_header_timeout 1s;
    client_max_header_size 1k;
    location = /healthz { return 200 "ok\\n"; }
    location /echo { websocket_echo on; }
    location /strict {
        websocket_echo on;
        websocket_allowed_origins https://chat.example.com https://other.example.com;
    }
    location /proto { websocket_echo on; websocket_subprotocols chat json; }
}
"""

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def raw_request(*lines):
    """A request head from its lines."""
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def upgrade_lines(path="/echo", version="HTTP/1.1"):
    return [f"GET {path} {version}", "Host: 127.0.0.1", "Upgrade: websocket",
            "Connection: Upgrade", f"Sec-WebSocket-Key: {KEY}", "Sec-WebSocket-Version: 13"]


def without(lines, prefix):
    return [line for line in lines if not line.startswith(prefix)]


def refused(gw, data):
    """Sends <data>; returns the gateway's answer, after checking that it
    is not an upgrade and that the gateway closed the connection."""
    r = Response(gw.send_raw(data))
    assert r.status != 101, r
    assert r.headers["connection"] == "close", r
    assert int(r.headers["content-length"]) == len(r.body), r
    return r


def handshake(gw, path, headers=()):
    """Sends an upgrade request; returns (client, response head)."""
    client = WSClient.open(gw.port)
    key = new_key()
    client.send(upgrade_request(path, key=key, headers=headers))
    r = client.read_head()
    if r.status == 101:
        assert r.headers["sec-websocket-accept"] == accept_for(key), r
    return client, r


def test_valid_upgrade_gets_101_with_the_rfc_accept_value(gateway):
    gw = gateway(CONFIG)
    with WSClient.open(gw.port) as client:
        client.send(raw_request(*upgrade_lines()))
        r = client.read_head()
    assert r.status_line == "HTTP/1.1 101 Switching Protocols"
    # the example key of RFC 6455 section 1.3
    assert r.headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert r.headers["upgrade"].lower() == "websocket"
    assert r.headers["connection"].lower() == "upgrade"
    assert "sec-websocket-protocol" not in r.headers
    assert "sec-websocket-extensions" not in r.headers


def replaced(lines, old, new):
    return [new if line == old else line for line in lines]


@pytest.mark.parametrize("lines", [
    replaced(upgrade_lines(), "Connection: Upgrade", "Connection: keep-alive, Upgrade"),
    replaced(upgrade_lines(), "Connection: Upgrade", "Connection: upgrade"),
    upgrade_lines()[:3] + ["Connection: keep-alive"] + upgrade_lines()[3:],
    replaced(upgrade_lines(), "Upgrade: websocket", "Upgrade: WebSocket"),
    replaced(upgrade_lines(), "Upgrade: websocket", "Upgrade: h2c, websocket"),
    replaced(upgrade_lines(), "Host: 127.0.0.1", "host: 127.0.0.1"),
    replaced(upgrade_lines(), f"Sec-WebSocket-Key: {KEY}", f"Sec-WebSocket-Key:   {KEY}  "),
    replaced(upgrade_lines(), "GET /echo HTTP/1.1", "GET /echo?room=1 HTTP/1.1"),
], ids=["connection-list", "connection-lower-case", "connection-two-lines",
        "upgrade-mixed-case", "upgrade-list", "header-name-case", "key-with-blanks",
        "query-string"])
def test_upgrade_request_variants_get_101(gateway, lines):
    gw = gateway(CONFIG)
    with WSClient.open(gw.port) as client:
        client.send(raw_request(*lines))
        r = client.read_head()
        assert r.status == 101, r
        assert r.headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        client.send_text("ok")
        assert client.recv_message() == (OP_TEXT, b"ok")


@pytest.mark.parametrize("lines", [
    upgrade_lines(version="HTTP/1.0"),
    without(upgrade_lines(), "Host:"),
    without(upgrade_lines(), "Sec-WebSocket-Key:") + ["Sec-WebSocket-Key: c2hvcnQ="],
    without(upgrade_lines(), "Sec-WebSocket-Key:") + ["Sec-WebSocket-Key: not base64 at all!!"],
    upgrade_lines() + [f"Sec-WebSocket-Key: {KEY}"],
    without(upgrade_lines(), "Connection:") + ["Connection: keep-alive"],
    without(upgrade_lines(), "Sec-WebSocket-Version:"),
    upgrade_lines()[:2] + ["X-Folded: a", " b"] + upgrade_lines()[2:],
], ids=["http-1.0", "no-host", "short-key", "bad-key", "duplicate-key",
        "connection-without-upgrade", "no-version", "obs-fold"])
def test_bad_upgrade_request_gets_400(gateway, lines):
    gw = gateway(CONFIG)
    r = refused(gw, raw_request(*lines))
    assert r.status_line == "HTTP/1.1 400 Bad Request", r


def test_version_8_gets_426_naming_version_13(gateway):
    gw = gateway(CONFIG)
    lines = without(upgrade_lines(), "Sec-WebSocket-Version:") + ["Sec-WebSocket-Version: 8"]
    r = refused(gw, raw_request(*lines))
    assert r.status == 426, r
    assert r.headers["sec-websocket-version"] == "13"


def test_plain_get_on_websocket_location_gets_426_with_upgrade_header(gateway):
    gw = gateway(CONFIG)
    r = refused(gw, raw_request("GET /echo HTTP/1.1", "Host: 127.0.0.1"))
    assert r.status_line == "HTTP/1.1 426 Upgrade Required", r
    assert r.headers["upgrade"] == "websocket"


def test_post_with_upgrade_headers_gets_405(gateway):
    gw = gateway(CONFIG)
    lines = upgrade_lines()
    lines[0] = "POST /echo HTTP/1.1"
    r = refused(gw, raw_request(*lines, "Content-Length: 0"))
    assert r.status == 405, r


def test_unknown_path_gets_404(gateway):
    gw = gateway(CONFIG)
    r = refused(gw, raw_request(*upgrade_lines("/nowhere")))
    assert r.status == 404, r


@pytest.mark.parametrize("origin, status", [
    ("https://chat.example.com", 101),
    ("HTTPS://Chat.Example.COM", 101),
    ("https://other.example.com", 101),
    ("https://evil.example.com", 403),
    ("https://chat.example.com.evil.net", 403),
    ("http://chat.example.com", 403),
    (None, 403),
], ids=["listed", "listed-other-case", "second-listed", "other", "suffix", "other-scheme",
        "no-origin"])
def test_allowed_origins_decide_the_handshake(gateway, origin, status):
    gw = gateway(CONFIG)
    headers = [("Origin", origin)] if origin else []
    client, r = handshake(gw, "/strict", headers)
    with client:
        assert r.status == status, r
        if status == 101:
            client.send_text("hi")
            assert client.recv_message() == (OP_TEXT, b"hi")
        else:
            assert r.headers["connection"] == "close"


def test_any_origin_is_accepted_without_the_directive(gateway):
    gw = gateway(CONFIG)
    client, r = handshake(gw, "/echo", [("Origin", "https://anything.example")])
    client.close()
    assert r.status == 101, r


def test_return_location_answers_next_to_websocket_ones(gateway):
    gw = gateway(CONFIG)
    r = gw.http_get("/healthz")
    assert r.status_line == "HTTP/1.1 200 OK"
    assert r.headers["content-type"] == "text/plain"
    assert r.body == b"ok\n"


@pytest.mark.parametrize("offer, chosen", [
    ("json, chat", "json"),
    ("chat, json", "chat"),
    ("x, json", "json"),
    ("x", None),
    ("JSON", None),
    ("x,json", "json"),
], ids=["json-first", "chat-first", "skips-unknown", "none-listed", "case-sensitive",
        "no-blank"])
def test_first_offered_listed_subprotocol_is_chosen(gateway, offer, chosen):
    gw = gateway(CONFIG)
    client, r = handshake(gw, "/proto", [("Sec-WebSocket-Protocol", offer)])
    with client:
        assert r.status == 101, r
        assert r.headers.get("sec-websocket-protocol") == chosen, r
        client.send_text("still works")
        assert client.recv_message() == (OP_TEXT, b"still works")


def test_subprotocols_offered_on_two_header_lines_are_one_list(gateway):
    gw = gateway(CONFIG)
    offers = [("Sec-WebSocket-Protocol", "x"), ("Sec-WebSocket-Protocol", "json, chat")]
    client, r = handshake(gw, "/proto", offers)
    client.close()
    assert r.status == 101, r
    assert r.headers["sec-websocket-protocol"] == "json"


def test_head_over_client_max_header_size_gets_431(gateway):
    gw = gateway(CONFIG)
    lines = upgrade_lines() + [f"X-Pad-{i}: {'p' * 100}" for i in range(10)]
    assert len(raw_request(*lines)) > 1024
    r = refused(gw, raw_request(*lines))
    assert r.status == 431, r


def test_request_line_over_client_max_header_size_gets_414(gateway):
    gw = gateway(CONFIG)
    lines = upgrade_lines("/echo?" + "q" * 1100)
    r = refused(gw, raw_request(*lines))
    assert r.status == 414, r


def test_too_many_header_lines_get_431(gateway):
    gw = gateway(CONFIG)
    # the default client_max_headers is 64
    lines = upgrade_lines() + [f"X-{i}: {i}" for i in range(64)]
    assert len(raw_request(*lines)) < 1024
    r = refused(gw, raw_request(*lines))
    assert r.status == 431, r


def test_bare_cr_in_a_header_gets_400(gateway):
    gw = gateway(CONFIG)
    r = refused(gw, raw_request(*upgrade_lines(), "X-Bad: a\rb"))
    assert r.status == 400, r


def send_slowly(sock, data, interval, limit):
    """Sends <data> one byte every <interval> seconds until the gateway
    closes the connection; returns the seconds that took, or None if it
    was still open after <limit> seconds. An error response before the
    close is allowed."""
    start = time.monotonic()
    for i in range(len(data)):
        if time.monotonic() - start > limit:
            return None
        try:
            sock.sendall(data[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - start
        readable, _, _ = select.select([sock], [], [], interval)
        if readable:
            elapsed = time.monotonic() - start
            answer = read_until_closed(sock, 1.0)
            assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer
            return elapsed
    return None


def test_slowloris_is_closed_at_client_header_timeout(gateway):
    gw = gateway(CONFIG)
    data = raw_request(*upgrade_lines())
    with socket.create_connection((HOST, gw.port), timeout=3.0) as sock:
        elapsed = send_slowly(sock, data, interval=0.3, limit=3.0)
    assert elapsed is not None, "a client sending a byte every 0.3 s was never closed"
    # the deadline is 1 s from the connection's start, not an idle timer
    assert 0.8 <= elapsed <= 1.8, elapsed


def test_frame_sent_with_the_handshake_is_echoed(gateway):
    gw = gateway(CONFIG)
    key = new_key()
    with WSClient.open(gw.port) as client:
        client.send(upgrade_request("/echo", key=key) + frame(OP_TEXT, b"right behind")
                    + frame(OP_BINARY, b"\x00" * 5000) + frame(OP_CLOSE, b"\x03\xe8"))
        r = client.read_head()
        assert r.status == 101, r
        assert r.headers["sec-websocket-accept"] == accept_for(key)
        assert client.recv_message() == (OP_TEXT, b"right behind")
        assert client.recv_message() == (OP_BINARY, b"\x00" * 5000)
        client.expect_close(1000)


SERVER_NAMES = """\
worker_processes 1;
error_log logs/error.log info;
pid logs/wsgate.pid;
events { worker_connections 1024; }
server {
    listen 127.0.0.1:$port;
    server_name a.test;
    location = /healthz { return 200 "ok\\n"; }
    location = /who { return 200 "a\\n"; }
    location /only-a { websocket_echo on; }
}
server {
    listen 127.0.0.1:$port;
    server_name b.test;
    location = /who { return 200 "b\\n"; }
    location /only-b { websocket_echo on; }
}
"""


@pytest.mark.parametrize("host, name", [
    ("a.test", "a"), ("b.test", "b"), ("B.Test", "b"), ("b.test:8080", "b"),
    ("unknown.test", "a"),
], ids=["a", "b", "b-other-case", "b-with-port", "unknown-uses-default"])
def test_host_header_selects_the_server(gateway, host, name):
    gw = gateway(SERVER_NAMES)
    r = Response(send_raw(gw.port, raw_request("GET /who HTTP/1.1", f"Host: {host}")))
    assert r.status == 200, r
    assert r.body == f"{name}\n".encode()
    other = "b" if name == "a" else "a"
    with WSClient.open(gw.port) as client:
        client.send(upgrade_request(f"/only-{name}", host=host))
        assert client.read_head().status == 101
        client.send_text(name)
        assert client.recv_message() == (OP_TEXT, name.encode())
    with WSClient.open(gw.port) as client:
        client.send(upgrade_request(f"/only-{other}", host=host))
        assert client.read_head().status == 404
