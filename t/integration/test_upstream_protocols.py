"""
Messages travel through a real backend in each of the five protocols: raw,
line and length (one backend connection per client, an echo server behind)
and mux and json (shared pools, the reference app server behind). Text and
binary come back at the sizes where the WebSocket length encoding changes,
and a 1 MiB binary image comes back byte for byte; raw replies may arrive
cut into messages of at most proxy_buffer_size. A line message holding a
newline is refused with 1003, a backend line longer than proxy_buffer_size
closes with 1011, and proxy_message_type text turns raw and length replies
into text when they are UTF-8. The open envelope tells the backend the
client's path, query, real address, subprotocol, the user the auth
module accepted and the headers named by proxy_pass_headers. With
proxy_protocol on (v1) or v2, a raw backend connection starts with a PROXY
header naming the client's address and port.
"""
import hashlib
import json
import struct

import pytest

from backends import Listener, backend_processes, recv_exactly
from wsclient import OP_BINARY, OP_TEXT, WSClient

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
        websocket_max_message 4m;
%s
    }
}
"""

TIMEOUT = 10.0
MIB = 1024 * 1024
PER_CLIENT = ("raw", "line", "length")
POOLED = ("mux", "json")


@pytest.fixture
def backends(tmp_path, tmp_path_factory):
    """Backend processes, stopped by PID after the test."""
    yield from backend_processes(tmp_path, tmp_path_factory)


def upstream(protocol, *servers, extra=""):
    lines = [f"    server {s};" for s in servers]
    return "upstream u {\n%s\n    protocol %s;\n%s}\n" % ("\n".join(lines), protocol, extra)


def start(gateway, backends, protocol, location="", extra=""):
    """A gateway proxying /ws to one echo backend speaking <protocol>."""
    if protocol in POOLED:
        b = backends.reference(protocol, "a")
        extra += "    pool_size 1;\n"
    else:
        b = backends.echo()
    gw = gateway(PRELUDE + upstream(protocol, b.address, extra=extra) + SERVER % location)
    if protocol in POOLED:
        wait_links(gw, 1)
    return gw


def wait_links(gw, count):
    """Waits until <count> pool connections are up: a client that comes
    earlier would get 502."""
    gw.wait_log(r'upstream "u" server \S+ connected', count=count)


def text_of_size(n):
    """A str of exactly <n> UTF-8 bytes, without a newline."""
    return "\u00e9" * (n // 2) + "a" * (n % 2)


NO_NEWLINE = bytes.maketrans(b"\n", b"\x0b")


def binary_of_size(n, seed=0):
    """<n> bytes that are not UTF-8 and hold no newline."""
    if n == 0:
        return b""
    data = hashlib.shake_256(bytes([seed])).digest(n).translate(NO_NEWLINE)
    return b"\xff" + data[1:]


def receive(ws, protocol, length, max_part=16384):
    """The reply to a message of <length> bytes as (opcode, payload). A raw
    reply may come in several binary messages of at most <max_part> bytes:
    they are joined."""
    opcode, payload = ws.recv_message(TIMEOUT)
    if protocol != "raw":
        return opcode, payload
    parts = [payload]
    total = len(payload)
    while total < length:
        assert len(parts[-1]) <= max_part, f"a raw message of {len(parts[-1])} bytes"
        op, more = ws.recv_message(TIMEOUT)
        assert op == opcode, (op, opcode)
        parts.append(more)
        total += len(more)
    assert len(parts[-1]) <= max_part
    return opcode, b"".join(parts)


def closed_with(ws):
    """Reads the gateway's close frame, answers it as a client does, and
    checks TCP closes; returns the close code."""
    code = ws.recv_close(TIMEOUT).code
    ws.send_close(code)
    assert ws.closed_by_peer(TIMEOUT), "gateway kept the connection open"
    return code


# sizes 0 are left out for raw: an empty message writes nothing to a byte
# stream, so nothing comes back
SIZES = {
    "raw": [125, 65536],
    "line": [0, 125, 65536],
    "length": [0, 125, 65536],
    "mux": [0, 125, 65536],
    "json": [0, 125, 65536],
}


@pytest.mark.parametrize("protocol", PER_CLIENT + POOLED)
def test_text_and_binary_messages_echo_through_backend(gateway, backends, protocol):
    # a line is as long as its message: proxy_buffer_size must hold 64 KiB
    gw = start(gateway, backends, protocol, location="        proxy_buffer_size 2m;"
               if protocol == "line" else "")
    # the three byte-stream protocols return binary by default
    # (proxy_message_type binary), except line, which returns UTF-8 as text
    text_back = OP_BINARY if protocol in ("raw", "length") else OP_TEXT
    with WSClient.connect(gw.port, "/ws") as ws:
        for size in SIZES[protocol]:
            text = text_of_size(size)
            ws.send_text(text)
            opcode, payload = receive(ws, protocol, size)
            assert (opcode, len(payload)) == (text_back, size), f"text of {size} bytes"
            assert payload == text.encode(), f"text of {size} bytes"

            data = binary_of_size(size, seed=size & 0xFF)
            ws.send_frame(OP_BINARY, data)
            opcode, payload = receive(ws, protocol, size)
            # an empty line is valid UTF-8, so line returns it as text
            binary_back = OP_TEXT if protocol == "line" and size == 0 else OP_BINARY
            assert (opcode, len(payload)) == (binary_back, size), f"binary of {size} bytes"
            assert payload == data, f"binary of {size} bytes"


@pytest.mark.parametrize("protocol", PER_CLIENT + POOLED)
def test_one_mib_image_echoes_byte_exact(gateway, backends, protocol):
    gw = start(gateway, backends, protocol, location="        proxy_buffer_size 2m;"
               if protocol == "line" else "")
    image = binary_of_size(MIB, seed=7)
    with WSClient.connect(gw.port, "/ws") as ws:
        ws.send_frame(OP_BINARY, image)
        opcode, payload = receive(ws, protocol, MIB)
        assert opcode == OP_BINARY
        assert len(payload) == MIB
        assert hashlib.sha256(payload).digest() == hashlib.sha256(image).digest()
        # the session is still usable afterwards
        ws.send_frame(OP_BINARY, b"\xffafter")
        assert receive(ws, protocol, 6) == (OP_BINARY, b"\xffafter")


def test_raw_replies_are_cut_at_proxy_buffer_size(gateway, backends):
    gw = start(gateway, backends, "raw", location="        proxy_buffer_size 1k;")
    data = binary_of_size(100000, seed=3)
    with WSClient.connect(gw.port, "/ws") as ws:
        ws.send_frame(OP_BINARY, data)
        got = bytearray()
        messages = 0
        while len(got) < len(data):
            opcode, payload = ws.recv_message(TIMEOUT)
            assert opcode == OP_BINARY
            assert 0 < len(payload) <= 1024
            got += payload
            messages += 1
        assert bytes(got) == data
        assert messages >= len(data) // 1024


def test_line_message_with_newline_closes_1003(gateway, backends):
    gw = start(gateway, backends, "line")
    with WSClient.connect(gw.port, "/ws") as ws:
        ws.send_text("first\nsecond")
        assert closed_with(ws) == 1003


def test_line_from_backend_longer_than_proxy_buffer_size_closes_1011(gateway):
    with Listener() as backend:
        gw = gateway(PRELUDE + upstream("line", backend.address) + SERVER % "")
        with WSClient.connect(gw.port, "/ws") as ws:
            conn = backend.accept()
            conn.sendall(b"short\n")
            assert ws.recv_message(TIMEOUT) == (OP_TEXT, b"short")
            # one byte over the default 16k, newline included in one write
            conn.sendall(b"x" * (16384 + 1) + b"\n")
            assert closed_with(ws) == 1011
    gw.wait_log(r'upstream "u" server \S+ sent an invalid line message')


def test_line_keeps_a_trailing_carriage_return(gateway):
    with Listener() as backend:
        gw = gateway(PRELUDE + upstream("line", backend.address) + SERVER % "")
        with WSClient.connect(gw.port, "/ws") as ws:
            conn = backend.accept()
            conn.sendall(b"one\r\ntwo\n")
            assert ws.recv_message(TIMEOUT) == (OP_TEXT, b"one\r")
            assert ws.recv_message(TIMEOUT) == (OP_TEXT, b"two")


@pytest.mark.parametrize("protocol", ["raw", "length"])
def test_message_type_text_returns_utf8_replies_as_text(gateway, backends, protocol):
    gw = start(gateway, backends, protocol, location="        proxy_message_type text;")
    with WSClient.connect(gw.port, "/ws") as ws:
        ws.send_text("h\u00e9llo")
        assert receive(ws, protocol, 6) == (OP_TEXT, "h\u00e9llo".encode())
        # bytes that are not UTF-8 still come back as binary
        ws.send_frame(OP_BINARY, b"\xff\xfe")
        assert receive(ws, protocol, 2) == (OP_BINARY, b"\xff\xfe")
        # valid UTF-8 sent as binary comes back as text
        ws.send_frame(OP_BINARY, b"plain")
        assert receive(ws, protocol, 5) == (OP_TEXT, b"plain")


# ---- the open envelope ------------------------------------------------------


@pytest.mark.parametrize("protocol", POOLED)
def test_open_envelope_carries_path_query_remote_subprotocol_and_headers(
        gateway, backends, protocol):
    gw = start(gateway, backends, protocol, location=(
        "        websocket_subprotocols chat;\n"
        "        proxy_pass_headers Origin X-Tenant;"))
    headers = [("Origin", "https://chat.example.com"), ("X-Tenant", "acme"),
               ("User-Agent", "not-passed/1.0"), ("Sec-WebSocket-Protocol", "other, chat")]
    with WSClient.connect(gw.port, "/ws/room?room=7&x=%20y", headers=headers) as ws:
        assert ws.response.headers.get("sec-websocket-protocol") == "chat"
        client_port = ws.sock.getsockname()[1]
        ws.send_text("whoami")
        opcode, payload = ws.recv_message(TIMEOUT)
    assert opcode == OP_TEXT
    info = json.loads(payload)
    assert info["server"] == "a"
    assert info["path"] == "/ws/room"
    assert info["query"] == "room=7&x=%20y"
    assert info["remote"] == f"127.0.0.1:{client_port}"
    assert info["subprotocol"] == "chat"
    assert info["user"] is None
    assert info["headers"] == {"origin": "https://chat.example.com", "x-tenant": "acme"}


@pytest.mark.parametrize("protocol", POOLED)
def test_open_envelope_without_subprotocol_or_query(gateway, backends, protocol):
    gw = start(gateway, backends, protocol, location="        proxy_pass_headers Origin;")
    with WSClient.connect(gw.port, "/ws") as ws:
        ws.send_text("whoami")
        info = json.loads(ws.recv_message(TIMEOUT)[1])
    assert info["path"] == "/ws"
    assert info["query"] == ""
    assert info["subprotocol"] is None
    # a header named by proxy_pass_headers but not sent is left out
    assert info["headers"] == {}


@pytest.mark.parametrize("protocol", POOLED)
def test_each_client_gets_its_own_connection_id(gateway, backends, protocol):
    gw = start(gateway, backends, protocol)
    ids = set()
    clients = [WSClient.connect(gw.port, "/ws") for _ in range(5)]
    try:
        for ws in clients:
            ws.send_text("whoami")
            ids.add(json.loads(ws.recv_message(TIMEOUT)[1])["id"])
    finally:
        for ws in clients:
            ws.close()
    assert len(ids) == 5


# ---- PROXY protocol ---------------------------------------------------------

PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


@pytest.mark.parametrize("value", ["on", "v1"])
def test_proxy_protocol_v1_header_names_the_client(gateway, value):
    with Listener() as backend:
        gw = gateway(PRELUDE + upstream("raw", backend.address,
                                        extra=f"    proxy_protocol {value};\n") + SERVER % "")
        with WSClient.connect(gw.port, "/ws") as ws:
            client_port = ws.sock.getsockname()[1]
            conn = backend.accept()
            expected = f"PROXY TCP4 127.0.0.1 127.0.0.1 {client_port} {gw.port}\r\n".encode()
            assert recv_exactly(conn, len(expected)) == expected
            ws.send_frame(OP_BINARY, b"payload")
            assert recv_exactly(conn, 7) == b"payload"


def test_proxy_protocol_v2_header_names_the_client(gateway):
    with Listener() as backend:
        gw = gateway(PRELUDE + upstream("raw", backend.address,
                                        extra="    proxy_protocol v2;\n") + SERVER % "")
        with WSClient.connect(gw.port, "/ws") as ws:
            client_port = ws.sock.getsockname()[1]
            conn = backend.accept()
            head = recv_exactly(conn, 16)
            assert head[:12] == PROXY_V2_SIGNATURE
            assert head[12] == 0x21, "version 2, command PROXY"
            assert head[13] == 0x11, "TCP over IPv4"
            length = struct.unpack("!H", head[14:16])[0]
            assert length >= 12
            body = recv_exactly(conn, length)
            src, dst, sport, dport = struct.unpack("!4s4sHH", body[:12])
            assert (src, dst) == (bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
            assert (sport, dport) == (client_port, gw.port)
            ws.send_frame(OP_BINARY, b"payload")
            assert recv_exactly(conn, 7) == b"payload"


def test_without_proxy_protocol_backend_gets_only_the_payload(gateway):
    with Listener() as backend:
        gw = gateway(PRELUDE + upstream("length", backend.address) + SERVER % "")
        with WSClient.connect(gw.port, "/ws") as ws:
            conn = backend.accept()
            ws.send_text("abc")
            assert recv_exactly(conn, 7) == b"\x00\x00\x00\x03abc"
            conn.sendall(b"\x00\x00\x00\x02\xff\x01")
            assert ws.recv_message(TIMEOUT) == (OP_BINARY, b"\xff\x01")


@pytest.mark.parametrize("protocol", POOLED)
def test_open_envelope_carries_the_authenticated_user(gateway, backends, tmp_path, protocol):
    (tmp_path / "tokens.txt").write_text("s3cr3t-t0ken-for-bob bob\n")
    gw = start(gateway, backends, protocol, location=(
        "        auth_tokens_file tokens.txt;\n"
        "        auth_token_from query;"))
    with WSClient.connect(gw.port, "/ws?access_token=s3cr3t-t0ken-for-bob") as ws:
        ws.send_text("whoami")
        opcode, payload = ws.recv_message(TIMEOUT)
    assert opcode == OP_TEXT
    assert json.loads(payload)["user"] == "bob"
