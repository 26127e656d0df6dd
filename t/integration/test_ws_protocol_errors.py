"""
Frames that break RFC 6455 fail the connection with the documented close
code, and then the gateway closes TCP: 1002 for framing errors (mask, RSV
bits, opcodes, control frames, fragmentation, length encoding, bad close
frames), 1007 for text or a close reason that is not UTF-8 (found at the
first bad byte, before the rest of the frame arrives), and 1009 for a frame
over websocket_max_frame (refused from its header) or a message over
websocket_max_message.
"""
import struct

import pytest

from wsclient import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                      RSV1, RSV2, RSV3, WSClient, close_payload, frame,
                      frame_header, mask_bytes)

CONFIG = """\
worker_processes 1;
error_log logs/error.log info;
pid logs/wsgate.pid;
events { worker_connections 1024; }
server {
    listen 127.0.0.1:$port;
    location = /healthz { return 200 "ok\\n"; }
    location /echo { websocket_echo on; websocket_max_message 16m; }
    location /limited { websocket_echo on; websocket_max_frame 1k; websocket_max_message 4k; }
    location /small { websocket_echo on; websocket_max_message 4k; }
}
"""

MASK = b"\x11\x22\x33\x44"


def masked_header(opcode, length, fin=True, rsv=0, length_bits=None):
    return frame_header(opcode, length, fin, rsv, MASK, length_bits)


def fails_with(gw, data, code, path="/echo"):
    """Sends <data> on an open session and checks that the gateway answers
    with a close frame carrying <code> and then closes TCP."""
    with WSClient.connect(gw.port, path) as ws:
        ws.send(data)
        f = ws.expect_close(code)
        assert f.fin and not f.masked and f.rsv == 0, f
        return f


FRAMING_ERRORS = {
    "unmasked-text": frame(OP_TEXT, b"hello", masked=False),
    "unmasked-close": frame(OP_CLOSE, close_payload(1000), masked=False),
    "rsv1-without-deflate": frame(OP_TEXT, b"hello", rsv=RSV1),
    "rsv2": frame(OP_BINARY, b"hello", rsv=RSV2),
    "rsv3": frame(OP_TEXT, b"hello", rsv=RSV3),
    "rsv1-on-ping": frame(OP_PING, b"p", rsv=RSV1),
    "opcode-3": frame(0x3, b"hello"),
    "opcode-7": frame(0x7, b""),
    "opcode-0xb": frame(0xB, b""),
    "opcode-0xf": frame(0xF, b"x"),
    "fragmented-ping": frame(OP_PING, b"p", fin=False) + frame(OP_CONT, b"q"),
    "fragmented-close": frame(OP_CLOSE, b"\x03\xe8", fin=False),
    "ping-126-bytes": frame(OP_PING, b"p" * 126),
    "pong-126-bytes": frame(OP_PONG, b"p" * 126),
    "continuation-without-message": frame(OP_CONT, b"orphan"),
    "text-inside-fragmented-message":
        frame(OP_TEXT, b"one", fin=False) + frame(OP_TEXT, b"two"),
    "binary-inside-fragmented-message":
        frame(OP_BINARY, b"one", fin=False) + frame(OP_BINARY, b"two", fin=False),
    "16-bit-length-for-5-bytes": frame(OP_TEXT, b"hello", length_bits=16),
    "16-bit-length-for-125-bytes": frame(OP_BINARY, b"x" * 125, length_bits=16),
    "64-bit-length-for-200-bytes": frame(OP_BINARY, b"x" * 200, length_bits=64),
    "64-bit-length-for-65535-bytes": masked_header(OP_BINARY, 65535, length_bits=64),
    "64-bit-length-top-bit": struct.pack("!BBQ", 0x82, 0xFF, 1 << 63) + MASK,
    "close-code-1005": frame(OP_CLOSE, close_payload(1005)),
    "close-code-1006": frame(OP_CLOSE, close_payload(1006)),
    "close-code-1004": frame(OP_CLOSE, close_payload(1004)),
    "close-code-1015": frame(OP_CLOSE, close_payload(1015)),
    "close-code-2999": frame(OP_CLOSE, close_payload(2999)),
    "close-code-999": frame(OP_CLOSE, close_payload(999)),
    "close-code-0": frame(OP_CLOSE, close_payload(0)),
    "close-code-5000": frame(OP_CLOSE, close_payload(5000)),
    "close-1-byte-payload": frame(OP_CLOSE, b"\x03"),
}


@pytest.mark.parametrize("data", FRAMING_ERRORS.values(), ids=FRAMING_ERRORS.keys())
def test_framing_error_closes_1002(gateway, data):
    gw = gateway(CONFIG)
    fails_with(gw, data, 1002)


def test_unmasked_frame_closes_1002_and_is_logged(gateway):
    gw = gateway(CONFIG)
    fails_with(gw, frame(OP_TEXT, b"hello", masked=False), 1002)
    gw.wait_log(r"\[info\] \d+: \*\d+ client sent an invalid frame, closing with 1002 ")


def test_error_after_valid_traffic_closes_1002(gateway):
    gw = gateway(CONFIG)
    with WSClient.connect(gw.port) as ws:
        ws.send_text("fine")
        assert ws.recv_message() == (OP_TEXT, b"fine")
        ws.send_frame(OP_TEXT, b"not fine", masked=False)
        ws.expect_close(1002)


def test_close_code_arrives_although_more_data_was_sent_behind_the_error(gateway):
    gw = gateway(CONFIG)
    with WSClient.connect(gw.port) as ws:
        data = frame(OP_TEXT, b"bad", masked=False) + frame(OP_BINARY, b"z" * (1024 * 1024))
        try:
            ws.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        ws.expect_close(1002)


UTF8_ERRORS = {
    "lone-continuation-byte": frame(OP_TEXT, b"abc\x80def"),
    "overlong-slash": frame(OP_TEXT, b"\xc0\xaf"),
    "surrogate": frame(OP_TEXT, b"\xed\xa0\x80"),
    "above-u10ffff": frame(OP_TEXT, b"\xf4\x90\x80\x80"),
    "byte-ff": frame(OP_TEXT, b"\xff"),
    "truncated-at-message-end": frame(OP_TEXT, b"ok \xe2\x82"),
    "split-across-fragments":
        frame(OP_TEXT, b"ok \xe2\x82", fin=False) + frame(OP_CONT, b"\x28 tail"),
    "truncated-across-fragments":
        frame(OP_TEXT, b"ok", fin=False) + frame(OP_CONT, b"\xf0\x9f", fin=False)
        + frame(OP_CONT, b"\x98"),
    "close-reason": frame(OP_CLOSE, close_payload(1000, b"bad \xff reason")),
    "close-reason-truncated": frame(OP_CLOSE, close_payload(1000, b"\xe2\x82")),
}


@pytest.mark.parametrize("data", UTF8_ERRORS.values(), ids=UTF8_ERRORS.keys())
def test_invalid_utf8_closes_1007(gateway, data):
    gw = gateway(CONFIG)
    fails_with(gw, data, 1007)


def test_valid_utf8_split_across_fragments_is_echoed(gateway):
    gw = gateway(CONFIG)
    with WSClient.connect(gw.port) as ws:
        ws.send(frame(OP_TEXT, b"ok \xf0\x9f", fin=False) + frame(OP_CONT, b"\x98", fin=False)
                + frame(OP_CONT, b"\x80 \xe2\x82\xac"))
        assert ws.recv_message() == (OP_TEXT, "ok \U0001f600 \u20ac".encode())


def test_invalid_utf8_fails_before_the_rest_of_the_frame_arrives(gateway):
    gw = gateway(CONFIG)
    length = 1024 * 1024
    payload = b"\xff\xfe" + b"a" * (length - 2)
    with WSClient.connect(gw.port) as ws:
        # the header announces 1 MiB, only its first 64 bytes follow
        ws.send(masked_header(OP_TEXT, length) + mask_bytes(payload[:64], MASK))
        f = ws.expect_close(1007, timeout=2.0)
        assert f.fin and not f.masked


def test_frame_over_max_frame_closes_1009_from_its_header(gateway):
    gw = gateway(CONFIG)
    with WSClient.connect(gw.port, "/limited") as ws:
        # only the header: the payload is never sent
        ws.send(masked_header(OP_BINARY, 1025))
        ws.expect_close(1009, timeout=2.0)


def test_frame_of_max_frame_is_echoed(gateway):
    gw = gateway(CONFIG)
    with WSClient.connect(gw.port, "/limited") as ws:
        ws.send_frame(OP_BINARY, b"m" * 1024)
        assert ws.recv_message() == (OP_BINARY, b"m" * 1024)


def test_control_frame_does_not_count_against_an_open_message(gateway):
    gw = gateway(CONFIG)
    with WSClient.connect(gw.port, "/limited") as ws:
        ws.send(frame(OP_TEXT, b"a" * 1000, fin=False) + frame(OP_PING, b"p" * 125)
                + frame(OP_CONT, b"b" * 1000))
        assert ws.recv_frame().opcode == OP_PONG
        assert ws.recv_message() == (OP_TEXT, b"a" * 1000 + b"b" * 1000)


def test_message_over_max_message_through_fragments_closes_1009(gateway):
    gw = gateway(CONFIG)
    # 4 x 1000 bytes fit in 4k; the fifth fragment does not
    data = frame(OP_BINARY, b"x" * 1000, fin=False)
    data += b"".join(frame(OP_CONT, b"x" * 1000, fin=False) for _ in range(3))
    data += frame(OP_CONT, b"x" * 1000, fin=True)
    fails_with(gw, data, 1009, "/limited")


def test_message_of_max_message_through_fragments_is_echoed(gateway):
    gw = gateway(CONFIG)
    with WSClient.connect(gw.port, "/limited") as ws:
        ws.send(frame(OP_BINARY, b"x" * 1024, fin=False)
                + b"".join(frame(OP_CONT, b"x" * 1024, fin=False) for _ in range(2))
                + frame(OP_CONT, b"x" * 1024))
        assert ws.recv_message() == (OP_BINARY, b"x" * 4096)


def test_single_frame_over_max_message_closes_1009(gateway):
    gw = gateway(CONFIG)
    fails_with(gw, frame(OP_TEXT, b"y" * 4097), 1009, "/small")


def test_single_frame_of_max_message_is_echoed(gateway):
    gw = gateway(CONFIG)
    with WSClient.connect(gw.port, "/small") as ws:
        ws.send_frame(OP_TEXT, b"y" * 4096)
        assert ws.recv_message() == (OP_TEXT, b"y" * 4096)


def test_huge_declared_length_closes_1009(gateway):
    gw = gateway(CONFIG)
    with WSClient.connect(gw.port, "/small") as ws:
        ws.send(masked_header(OP_BINARY, 1 << 40) + b"z" * 100)
        ws.expect_close(1009, timeout=2.0)
