"""
The echo endpoint sends every message back unchanged: text as text and
binary as binary, at the sizes where the length encoding changes and up to
websocket_max_message; fragmented messages come back whole, with pings
between their fragments answered at once; a burst of small messages comes
back in order; and a close from the client is answered with the same code
before the gateway closes TCP.
"""
import asyncio
import hashlib
import os
import socket
import time

import pytest
import websockets

from wsclient import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                      WSClient, frame)

CONFIG = """\
worker_processes 1;
error_log logs/error.log info;
pid logs/wsgate.pid;
events { worker_connections 1024; }
server {
    listen 127.0.0.1:$port;
    location = /healthz { return 200 "ok\\n"; }
    location /echo { websocket_echo on; websocket_max_message 16m; }
}
"""

TIMEOUT = 10


def run(gw, talk, **options):
    """Runs talk(ws) with a websockets client connected to /echo; returns
    what it returns."""
    async def session():
        uri = f"ws://127.0.0.1:{gw.port}/echo"
        async with websockets.connect(uri, open_timeout=3, close_timeout=3, ping_interval=None,
                                      compression=None, max_size=None, **options) as ws:
            return await asyncio.wait_for(talk(ws), TIMEOUT)

    return asyncio.run(session())


def text_of_size(n):
    """A str whose UTF-8 encoding is exactly <n> bytes, mostly two-byte
    characters, so the gateway's UTF-8 check sees them split across reads."""
    return "\u00e9" * (n // 2) + "a" * (n % 2)


# the length encodings change after 125 and 65535 bytes; messages up to
# 4 KiB are copied into the output, larger ones are not
SIZES = [0, 125, 126, 4096, 4097, 65535, 65536, 16 * 1024 * 1024]
SIZE_IDS = ["0", "125", "126", "4096", "4097", "65535", "65536", "16MiB"]


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_text_message_is_echoed_as_text(gateway, size):
    gw = gateway(CONFIG)
    message = text_of_size(size)

    async def talk(ws):
        await ws.send(message)
        return await ws.recv()

    echoed = run(gw, talk)
    assert isinstance(echoed, str)
    assert len(echoed.encode()) == size
    assert echoed == message


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_binary_message_is_echoed_as_binary(gateway, size):
    gw = gateway(CONFIG)
    message = bytes(range(256)) * (size // 256) + bytes(size % 256)

    async def talk(ws):
        await ws.send(message)
        return await ws.recv()

    echoed = run(gw, talk)
    assert isinstance(echoed, bytes)
    assert echoed == message


def test_random_image_round_trip_is_byte_exact(gateway):
    gw = gateway(CONFIG)
    image = os.urandom(1024 * 1024)

    async def talk(ws):
        await ws.send(image)
        return await ws.recv()

    echoed = run(gw, talk)
    assert len(echoed) == len(image)
    assert hashlib.sha256(echoed).hexdigest() == hashlib.sha256(image).hexdigest()


def test_fragmented_message_is_echoed_whole(gateway):
    gw = gateway(CONFIG)
    fragments = ["first ", "", "s\u00e9cond ", "x" * 70000, " last"]

    async def talk(ws):
        await ws.send(fragments)
        await ws.send([b"\x00\x01", b"\x02", b"\xff" * 200])
        return await ws.recv(), await ws.recv()

    text, data = run(gw, talk)
    assert text == "".join(fragments)
    assert data == b"\x00\x01\x02" + b"\xff" * 200


def test_pings_between_fragments_are_answered_at_once(gateway):
    gw = gateway(CONFIG)
    with WSClient.connect(gw.port) as ws:
        ws.send(frame(OP_TEXT, b"Hel", fin=False)
                + frame(OP_PING, b"p1")
                + frame(OP_CONT, b"lo, ", fin=False)
                + frame(OP_PING, b"p2-\x00\xff")
                + frame(OP_CONT, b"world", fin=True))
        pongs, data = [], []
        for _ in range(20):
            f = ws.recv_frame()
            if f.opcode == OP_PONG:
                assert not data or data[-1].fin is False, "pong after the whole echo"
                pongs.append(f.payload)
                continue
            assert f.opcode in (OP_TEXT, OP_CONT), f
            assert not f.masked and f.rsv == 0, f
            data.append(f)
            if f.fin:
                break
        assert pongs == [b"p1", b"p2-\x00\xff"]
        assert data[0].opcode == OP_TEXT
        assert all(f.opcode == OP_CONT for f in data[1:])
        assert b"".join(f.payload for f in data) == b"Hello, world"


def test_burst_of_small_messages_is_echoed_in_order(gateway):
    gw = gateway(CONFIG)
    count = 2000

    async def talk(ws):
        for i in range(count):
            await ws.send(f"message {i}" if i % 2 else f"message {i}".encode())
        return [await ws.recv() for _ in range(count)]

    echoed = run(gw, talk)
    assert echoed == [f"message {i}" if i % 2 else f"message {i}".encode()
                      for i in range(count)]


def test_burst_in_one_write_is_echoed_in_order(gateway):
    gw = gateway(CONFIG)
    count = 500
    with WSClient.connect(gw.port) as ws:
        ws.send(b"".join(frame(OP_BINARY, i.to_bytes(2, "big")) for i in range(count)))
        for i in range(count):
            assert ws.recv_message() == (OP_BINARY, i.to_bytes(2, "big"))


def test_burst_of_mixed_sizes_keeps_its_order(gateway):
    gw = gateway(CONFIG)
    sizes = [10, 5000, 4096, 4097, 1, 70000, 300, 4095, 200000, 2] * 20
    messages = [bytes([i % 256]) * n for i, n in enumerate(sizes)]
    with WSClient.connect(gw.port) as ws:
        ws.send(b"".join(frame(OP_BINARY, m) for m in messages))
        for i, m in enumerate(messages):
            assert ws.recv_message(timeout=5.0) == (OP_BINARY, m), i


def test_frame_sent_byte_by_byte_is_echoed(gateway):
    gw = gateway(CONFIG)
    with WSClient.connect(gw.port) as ws:
        ws.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        data = frame(OP_TEXT, "sl\u00f6w".encode() * 40)
        for i in range(len(data)):
            ws.send(data[i:i + 1])
            time.sleep(0.001)
        assert ws.recv_message() == (OP_TEXT, "sl\u00f6w".encode() * 40)


def test_client_close_is_answered_with_its_code_then_tcp_closes(gateway):
    gw = gateway(CONFIG)
    with WSClient.connect(gw.port) as ws:
        ws.send_text("before")
        assert ws.recv_message() == (OP_TEXT, b"before")
        ws.send_close(1000, b"bye")
        f = ws.recv_close()
        assert f.code == 1000, f
        assert f.fin and not f.masked
        assert ws.closed_by_peer(), "the gateway kept TCP open after the close handshake"


def test_close_behind_a_burst_comes_after_every_echo(gateway):
    gw = gateway(CONFIG)
    messages = [bytes([i]) * (i * 97) for i in range(100)]
    with WSClient.connect(gw.port) as ws:
        ws.send(b"".join(frame(OP_BINARY, m) for m in messages)
                + frame(OP_CLOSE, b"\x03\xe8done"))
        for i, m in enumerate(messages):
            assert ws.recv_message() == (OP_BINARY, m), i
        ws.expect_close(1000)


def test_empty_close_is_answered_with_an_empty_close(gateway):
    gw = gateway(CONFIG)
    with WSClient.connect(gw.port) as ws:
        ws.send_close()
        f = ws.recv_close()
        assert f.payload == b"", f
        assert ws.closed_by_peer()


@pytest.mark.parametrize("code", [1001, 3000, 4999])
def test_close_code_is_echoed(gateway, code):
    gw = gateway(CONFIG)
    with WSClient.connect(gw.port) as ws:
        ws.send_close(code, b"reason")
        assert ws.recv_close().code == code
        assert ws.closed_by_peer()


def test_websockets_client_sees_a_clean_close(gateway):
    gw = gateway(CONFIG)

    async def talk(ws):
        await ws.send("x")
        await ws.recv()
        await ws.close(1000, "bye")
        return ws.close_code

    assert run(gw, talk) == 1000


def test_close_frame_ends_the_session_before_later_frames(gateway):
    gw = gateway(CONFIG)
    with WSClient.connect(gw.port) as ws:
        ws.send(frame(OP_CLOSE, b"\x03\xe8") + frame(OP_TEXT, b"after close"))
        assert ws.recv_close().code == 1000
        assert ws.closed_by_peer()


def test_ping_is_answered_with_its_payload(gateway):
    gw = gateway(CONFIG)
    with WSClient.connect(gw.port) as ws:
        for payload in (b"", b"x", bytes(range(125))):
            ws.send_frame(OP_PING, payload)
            f = ws.recv_frame()
            assert (f.opcode, f.fin, f.payload) == (OP_PONG, True, payload), f


def test_unsolicited_pong_is_ignored(gateway):
    gw = gateway(CONFIG)
    with WSClient.connect(gw.port) as ws:
        ws.send(frame(OP_PONG, b"unasked") + frame(OP_TEXT, b"after the pong"))
        assert ws.recv_message() == (OP_TEXT, b"after the pong")
