"""
permessage-deflate (RFC 7692) on the echo endpoint: negotiated with a client
that offers it when `permessage_deflate on`, never offered back when off;
messages are compressed in both directions (RSV1 on the first frame) except
those under permessage_deflate_threshold; the no_context_takeover options
appear in the response and a client's server_max_window_bits bounds the
gateway's window; a malformed offer gets 400 and one it cannot accept is
declined; corrupt deflate data closes 1007, and a decompression bomb closes
1009 without the worker's memory growing, after which the worker goes on
serving.
"""
import asyncio
import os
import re
import zlib
from pathlib import Path

import pytest
import websockets

from wsclient import (OP_BINARY, OP_CONT, OP_TEXT, RSV1, WSClient, frame,
                      upgrade_request)

CONFIG = """\
worker_processes 1;
error_log logs/error.log info;
pid logs/wsgate.pid;
events { worker_connections 1024; }
server {
    listen 127.0.0.1:$port;
    location = /healthz { return 200 "ok\\n"; }
    location /deflate {
        websocket_echo on;
        permessage_deflate on;
        permessage_deflate_threshold 64;
        websocket_max_message 4m;
    }
    location /fresh {
        websocket_echo on;
        permessage_deflate on;
        permessage_deflate_server_no_context_takeover on;
        permessage_deflate_client_no_context_takeover on;
    }
    location /bomb { websocket_echo on; permessage_deflate on; websocket_max_message 1m; }
    location /plain { websocket_echo on; permessage_deflate off; }
}
"""

OFFER = ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")
TAIL = b"\x00\x00\xff\xff"


def compressed(data, compressor):
    """<data> as one permessage-deflate message: a sync flush without its
    final empty block."""
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TAIL)
    return out[:-4]


def raw_deflate():
    return zlib.compressobj(6, zlib.DEFLATED, -15)


def raw_inflate():
    return zlib.decompressobj(-15)


def inflate_with_window(data, bits):
    """Inflates <data> with a window of 2^<bits> bytes, a little output at
    a time so that every back-reference must fit the window: one reaching
    further fails with "invalid distance too far back"."""
    inflater = zlib.decompressobj(-bits)
    out = []
    for _ in range(len(data) * 1100 // 256 + 2):
        if not data:
            break
        out.append(inflater.decompress(data, 256))
        data = inflater.unconsumed_tail
    out.append(inflater.flush())
    return b"".join(out)


def connect_deflate(gw, path="/deflate"):
    """A raw client that negotiated permessage-deflate; returns (client,
    the extension the gateway answered)."""
    ws = WSClient.connect(gw.port, path, headers=[OFFER])
    ext = ws.response.headers.get("sec-websocket-extensions", "")
    assert ext.startswith("permessage-deflate"), ws.response
    return ws, ext


def recv_inflated(ws, inflater, timeout=5.0):
    """The next message, inflated if its first frame has RSV1; returns
    (opcode, rsv1, data)."""
    first = ws.recv_frame(timeout)
    assert first.opcode in (OP_TEXT, OP_BINARY), first
    parts = [first.payload]
    f = first
    for _ in range(100000):
        if f.fin:
            break
        f = ws.recv_frame(timeout)
        assert f.opcode == OP_CONT and f.rsv == 0, f
        parts.append(f.payload)
    data = b"".join(parts)
    rsv1 = bool(first.rsv & RSV1)
    if rsv1:
        data = inflater.decompress(data + TAIL)
    return first.opcode, rsv1, data


def run(gw, talk, path="/deflate"):
    async def session():
        uri = f"ws://127.0.0.1:{gw.port}{path}"
        async with websockets.connect(uri, open_timeout=3, close_timeout=3, ping_interval=None,
                                      compression="deflate", max_size=None) as ws:
            return await asyncio.wait_for(talk(ws), 20)

    return asyncio.run(session())


def sample_text(n):
    """Compressible text of about <n> bytes, with multi-byte characters."""
    phrase = "gateway w\u00f6rd message \u2713 frame deflate \U0001f600 "
    return phrase * (n // len(phrase.encode()))


@pytest.mark.parametrize("size", [0, 10, 1000, 65536, 1024 * 1024],
                         ids=["0", "10", "1000", "64KiB", "1MiB"])
def test_websockets_client_negotiates_deflate_and_is_echoed(gateway, size):
    gw = gateway(CONFIG)
    text = sample_text(size)
    data = os.urandom(size // 2) + bytes(size - size // 2)

    async def talk(ws):
        await ws.send(text)
        await ws.send(data)
        return ws.extensions, await ws.recv(), await ws.recv()

    extensions, echoed_text, echoed_data = run(gw, talk)
    assert [e.name for e in extensions] == ["permessage-deflate"]
    assert echoed_text == text
    assert echoed_data == data


def test_both_directions_are_compressed(gateway):
    gw = gateway(CONFIG)
    deflater, inflater = raw_deflate(), raw_inflate()
    ws, _ = connect_deflate(gw)
    with ws:
        for i in range(3):
            message = (f"compress me please {i} " * 100).encode()
            payload = compressed(message, deflater)
            assert len(payload) < len(message) // 4
            ws.send_frame(OP_TEXT, payload, rsv=RSV1)
            opcode, rsv1, data = recv_inflated(ws, inflater)
            assert (opcode, rsv1, data) == (OP_TEXT, True, message)


def test_compressed_message_may_span_fragments(gateway):
    gw = gateway(CONFIG)
    deflater, inflater = raw_deflate(), raw_inflate()
    message = bytes(range(256)) * 64
    payload = compressed(message, deflater)
    ws, _ = connect_deflate(gw)
    with ws:
        third = len(payload) // 3
        ws.send(frame(OP_BINARY, payload[:third], fin=False, rsv=RSV1)
                + frame(OP_CONT, payload[third:2 * third], fin=False)
                + frame(OP_CONT, payload[2 * third:]))
        assert recv_inflated(ws, inflater) == (OP_BINARY, True, message)


def test_message_under_threshold_is_sent_uncompressed(gateway):
    gw = gateway(CONFIG)
    deflater, inflater = raw_deflate(), raw_inflate()
    ws, _ = connect_deflate(gw)
    with ws:
        ws.send_frame(OP_TEXT, compressed(b"ten bytes!", deflater), rsv=RSV1)
        assert recv_inflated(ws, inflater) == (OP_TEXT, False, b"ten bytes!")
        ws.send_frame(OP_TEXT, b"uncompressed from the client too")
        assert recv_inflated(ws, inflater) == (OP_TEXT, False, b"uncompressed from the client too")
        big = b"a" * 100
        ws.send_frame(OP_TEXT, compressed(big, deflater), rsv=RSV1)
        assert recv_inflated(ws, inflater) == (OP_TEXT, True, big)


def test_deflate_off_is_not_negotiated(gateway):
    gw = gateway(CONFIG)
    with WSClient.connect(gw.port, "/plain", headers=[OFFER]) as ws:
        assert "sec-websocket-extensions" not in ws.response.headers, ws.response
        ws.send_frame(OP_TEXT, b"a" * 200)
        f = ws.recv_frame()
        assert f.rsv == 0 and f.payload == b"a" * 200

    async def talk(ws):
        await ws.send("x" * 1000)
        return ws.extensions, await ws.recv()

    assert run(gw, talk, "/plain") == ([], "x" * 1000)


def test_rsv1_without_negotiation_closes_1002(gateway):
    gw = gateway(CONFIG)
    with WSClient.connect(gw.port, "/deflate") as ws:
        ws.send_frame(OP_TEXT, compressed(b"a" * 100, raw_deflate()), rsv=RSV1)
        ws.expect_close(1002)


def test_rsv1_on_a_continuation_closes_1002(gateway):
    gw = gateway(CONFIG)
    ws, _ = connect_deflate(gw)
    with ws:
        ws.send(frame(OP_TEXT, b"a", fin=False) + frame(OP_CONT, b"b", rsv=RSV1))
        ws.expect_close(1002)


def test_corrupt_deflate_data_closes_1007(gateway):
    gw = gateway(CONFIG)
    ws, _ = connect_deflate(gw)
    with ws:
        ws.send_frame(OP_BINARY, b"\xff\xff\xff\xff\xff\xff", rsv=RSV1)
        ws.expect_close(1007)


def test_no_context_takeover_is_in_the_response(gateway):
    gw = gateway(CONFIG)
    ws, ext = connect_deflate(gw, "/fresh")
    with ws:
        params = [p.strip() for p in ext.split(";")]
        assert params[0] == "permessage-deflate"
        assert "server_no_context_takeover" in params[1:], ext
        assert "client_no_context_takeover" in params[1:], ext
        # each message from the gateway inflates with a fresh context
        for i in range(3):
            message = f"the same words again and again {i} ".encode() * 20
            ws.send_frame(OP_BINARY, compressed(message, raw_deflate()), rsv=RSV1)
            assert recv_inflated(ws, raw_inflate()) == (OP_BINARY, True, message)


def test_context_takeover_is_not_announced_by_default(gateway):
    gw = gateway(CONFIG)
    ws, ext = connect_deflate(gw)
    ws.close()
    assert "no_context_takeover" not in ext, ext


def vm_kib(pid, field):
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.M).group(1))


def bomb(size):
    """<size> zero bytes compressed as one message (about 1000:1)."""
    deflater = raw_deflate()
    chunk = bytes(1024 * 1024)
    out = [deflater.compress(chunk) for _ in range(size // len(chunk))]
    out.append(deflater.flush(zlib.Z_SYNC_FLUSH))
    data = b"".join(out)
    assert data.endswith(TAIL)
    return data[:-4]


@pytest.mark.parametrize("fragments", [1, 4])
def test_decompression_bomb_closes_1009_with_bounded_memory(gateway, fragments):
    gw = gateway(CONFIG)
    (worker,) = gw.worker_pids()
    payload = bomb(200 * 1024 * 1024)
    assert len(payload) < 300 * 1024
    ws, _ = connect_deflate(gw, "/bomb")
    with ws:
        if fragments == 1:
            ws.send_frame(OP_BINARY, payload, rsv=RSV1)
        else:
            size = len(payload) // fragments + 1
            parts = [payload[i:i + size] for i in range(0, len(payload), size)]
            ws.send(frame(OP_BINARY, parts[0], fin=False, rsv=RSV1)
                    + b"".join(frame(OP_CONT, p, fin=False) for p in parts[1:-1])
                    + frame(OP_CONT, parts[-1]))
        ws.expect_close(1009, timeout=5.0)
    # the peak resident size of the worker, 200 MiB inflated
    assert vm_kib(worker, "VmHWM") < 100 * 1024, f"worker peaked at {vm_kib(worker, 'VmHWM')} kB"

    assert gw.worker_pids() == [worker]
    deflater, inflater = raw_deflate(), raw_inflate()
    ws, _ = connect_deflate(gw, "/bomb")
    with ws:
        message = b"still serving " * 50
        ws.send_frame(OP_TEXT, compressed(message, deflater), rsv=RSV1)
        assert recv_inflated(ws, inflater) == (OP_TEXT, True, message)


def test_inflated_message_of_max_message_is_echoed(gateway):
    gw = gateway(CONFIG)
    message = b"z" * (1024 * 1024)
    ws, _ = connect_deflate(gw, "/bomb")
    with ws:
        ws.send_frame(OP_BINARY, compressed(message, raw_deflate()), rsv=RSV1)
        assert recv_inflated(ws, raw_inflate()) == (OP_BINARY, True, message)
        ws.send_frame(OP_BINARY, compressed(message + b"z", raw_deflate()), rsv=RSV1)
        ws.expect_close(1009)


def test_server_max_window_bits_offer_bounds_the_gateways_window(gateway):
    gw = gateway(CONFIG)
    offer = ("Sec-WebSocket-Extensions", "permessage-deflate; server_max_window_bits=10")
    with WSClient.connect(gw.port, "/deflate", headers=[offer]) as ws:
        ext = ws.response.headers["sec-websocket-extensions"]
        params = [p.strip() for p in ext.split(";")]
        assert params[0] == "permessage-deflate"
        assert "server_max_window_bits=10" in params[1:], ext
        # a block repeated 2000 bytes later: within a 1 KiB window the
        # gateway cannot point back to it
        block = os.urandom(2000)
        ws.send_frame(OP_BINARY, compressed(block * 3, raw_deflate()), rsv=RSV1)
        f = ws.recv_frame()
        assert (f.opcode, f.fin, f.rsv) == (OP_BINARY, True, RSV1), f
        assert inflate_with_window(f.payload + TAIL, 10) == block * 3


@pytest.mark.parametrize("value", ["permessage-deflate; =bad", "permessage-deflate; a=\"b",
                                   "permessage-deflate x"],
                         ids=["empty-parameter-name", "open-quote", "stray-token"])
def test_malformed_extension_header_gets_400(gateway, value):
    gw = gateway(CONFIG)
    with WSClient.open(gw.port) as ws:
        ws.send(upgrade_request("/deflate", headers=[("Sec-WebSocket-Extensions", value)]))
        r = ws.read_head()
    assert r.status == 400, r
    assert r.headers["connection"] == "close"


@pytest.mark.parametrize("value", ["permessage-deflate; unknown_param",
                                   "permessage-deflate; server_max_window_bits=16",
                                   "x-webkit-deflate-frame"],
                         ids=["unknown-parameter", "window-16", "other-extension"])
def test_offer_it_cannot_accept_is_declined(gateway, value):
    gw = gateway(CONFIG)
    with WSClient.connect(gw.port, "/deflate",
                          headers=[("Sec-WebSocket-Extensions", value)]) as ws:
        assert "sec-websocket-extensions" not in ws.response.headers, ws.response
        ws.send_frame(OP_TEXT, b"a" * 200)
        f = ws.recv_frame()
        assert f.rsv == 0 and f.payload == b"a" * 200, f
