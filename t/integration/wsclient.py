"""
A WebSocket client over a raw socket, for tests that need exact bytes on
the wire: the upgrade handshake written by hand, frames built with any
opcode, RSV bits, mask and length encoding (including wrong ones), and the
server's frames read back one by one. Every read is bounded by a timeout.
"""
import base64
import hashlib
import os
import socket
import struct
import time

from support import HOST, Response

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

RSV1 = 0x4
RSV2 = 0x2
RSV3 = 0x1

TIMEOUT = 3.0


def new_key():
    """A fresh Sec-WebSocket-Key: 16 random bytes in base64."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def accept_for(key):
    """The Sec-WebSocket-Accept a server must answer to <key>."""
    digest = hashlib.sha1(key.encode("ascii") + GUID).digest()
    return base64.b64encode(digest).decode("ascii")


def upgrade_request(path="/echo", host=HOST, key=None, headers=(), version="HTTP/1.1",
                    method="GET"):
    """The bytes of an upgrade request.

    <headers> are extra (name, value) pairs sent after the usual ones. Pass
    host=None, key=None with a "Sec-WebSocket-Key" in <headers>, or edit
    the result, to leave something out or send it twice.
    """
    lines = [f"{method} {path} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    lines += ["Upgrade: websocket", "Connection: Upgrade",
              f"Sec-WebSocket-Key: {key or new_key()}",
              "Sec-WebSocket-Version: 13"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def mask_bytes(payload, key):
    """<payload> XORed with the 4-byte masking <key>."""
    if not payload:
        return b""
    n = len(payload)
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def frame_header(opcode, length, fin=True, rsv=0, mask_key=None, length_bits=None):
    """The header of a frame announcing <length> payload bytes.

    <length_bits> forces the length encoding: 7, 16 or 64 (default: the
    shortest form). <mask_key> None means an unmasked frame.
    """
    first = (0x80 if fin else 0) | (rsv & 0x7) << 4 | (opcode & 0xF)
    mask_bit = 0x80 if mask_key is not None else 0
    if length_bits is None:
        length_bits = 7 if length < 126 else 16 if length < 65536 else 64
    if length_bits == 7:
        head = struct.pack("!BB", first, mask_bit | length)
    elif length_bits == 16:
        head = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, length)
    return head + (mask_key or b"")


def frame(opcode, payload=b"", fin=True, rsv=0, masked=True, length_bits=None):
    """A whole frame, masked with a random key unless masked=False."""
    mask_key = os.urandom(4) if masked else None
    head = frame_header(opcode, len(payload), fin, rsv, mask_key, length_bits)
    return head + (mask_bytes(payload, mask_key) if masked else payload)


def close_payload(code=None, reason=b""):
    """The payload of a close frame: nothing, or the code and reason."""
    if code is None:
        return b""
    return struct.pack("!H", code) + reason


class Frame:
    """A frame the server sent."""

    def __init__(self, fin, rsv, opcode, payload, masked):
        self.fin = fin
        self.rsv = rsv
        self.opcode = opcode
        self.payload = payload
        self.masked = masked

    @property
    def code(self):
        """A close frame's status code (None when its payload is empty)."""
        if len(self.payload) < 2:
            return None
        return struct.unpack("!H", self.payload[:2])[0]

    @property
    def reason(self):
        return self.payload[2:]

    def __repr__(self):
        return (f"<Frame op={self.opcode:#x} fin={self.fin} rsv={self.rsv:#x} "
                f"len={len(self.payload)} {self.payload[:40]!r}>")


class WSClient:
    """One connection to the gateway: the handshake, then frames."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.response = None

    @classmethod
    def open(cls, port, timeout=TIMEOUT):
        """A TCP connection to the gateway, nothing sent yet."""
        return cls(socket.create_connection((HOST, port), timeout=timeout))

    @classmethod
    def connect(cls, port, path="/echo", headers=(), key=None, after=b"", timeout=TIMEOUT):
        """Opens a connection and completes the upgrade handshake.

        <after> is sent in the same send() as the request. Fails unless the
        answer is 101 with the right Sec-WebSocket-Accept.
        """
        client = cls.open(port, timeout)
        key = key or new_key()
        client.send(upgrade_request(path, key=key, headers=headers) + after)
        r = client.read_head(timeout)
        assert r.status == 101, r
        assert r.headers.get("sec-websocket-accept") == accept_for(key), r
        return client

    # ---- bytes ----

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        """Reads more bytes into the buffer; False when the peer closed."""
        remaining = deadline - time.monotonic()
        stalled = f"nothing more from the gateway, have {bytes(self.buf[:80])!r}"
        if remaining <= 0:
            raise TimeoutError(stalled)
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            raise TimeoutError(stalled) from None
        except ConnectionResetError:
            return False
        if not chunk:
            return False
        self.buf += chunk
        return True

    def _take(self, n, deadline):
        for _ in range(1 << 20):
            if len(self.buf) >= n:
                break
            if not self._fill(deadline):
                raise EOFError(f"connection closed with {len(self.buf)} of {n} bytes")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_head(self, timeout=TIMEOUT):
        """Reads an HTTP response head; returns it as a Response. For a
        status other than 101 the body is read until the gateway closes."""
        deadline = time.monotonic() + timeout
        for _ in range(1 << 20):
            if b"\r\n\r\n" in self.buf:
                break
            if not self._fill(deadline):
                break
        head, sep, rest = bytes(self.buf).partition(b"\r\n\r\n")
        if not sep:
            raise EOFError(f"no response head, got {bytes(self.buf[:200])!r}")
        self.buf = bytearray(rest)
        if not head.startswith(b"HTTP/1.1 101 "):
            rest = self.read_until_closed(deadline - time.monotonic())
        else:
            rest = b""
        self.response = Response(head + b"\r\n\r\n" + rest)
        return self.response

    def read_until_closed(self, timeout=TIMEOUT):
        """Every byte until the gateway closes the connection."""
        deadline = time.monotonic() + timeout
        for _ in range(1 << 20):
            if not self._fill(deadline):
                break
        data = bytes(self.buf)
        self.buf = bytearray()
        return data

    def closed_by_peer(self, timeout=TIMEOUT):
        """Whether the gateway closed the connection without sending
        anything more. Raises TimeoutError if it is still open after
        <timeout> seconds."""
        return self.read_until_closed(timeout) == b""

    # ---- frames ----

    def send_frame(self, opcode, payload=b"", fin=True, rsv=0, masked=True, length_bits=None):
        self.send(frame(opcode, payload, fin, rsv, masked, length_bits))

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode("utf-8") if isinstance(text, str) else text)

    def send_close(self, code=None, reason=b""):
        self.send_frame(OP_CLOSE, close_payload(code, reason))

    def recv_frame(self, timeout=TIMEOUT):
        """The next frame from the gateway."""
        deadline = time.monotonic() + timeout
        b0, b1 = self._take(2, deadline)
        length = b1 & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._take(2, deadline))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._take(8, deadline))[0]
        key = self._take(4, deadline) if b1 & 0x80 else None
        payload = self._take(length, deadline)
        if key is not None:
            payload = mask_bytes(payload, key)
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 0x7, b0 & 0xF, payload, key is not None)

    def recv_message(self, timeout=TIMEOUT):
        """The next data message as (opcode, payload), its fragments joined.
        Control frames in between are not expected and fail."""
        deadline = time.monotonic() + timeout
        first = self.recv_frame(deadline - time.monotonic())
        assert first.opcode in (OP_TEXT, OP_BINARY), first
        parts = [first.payload]
        fin = first.fin
        for _ in range(1 << 20):
            if fin:
                break
            f = self.recv_frame(deadline - time.monotonic())
            assert f.opcode == OP_CONT, f
            parts.append(f.payload)
            fin = f.fin
        return first.opcode, b"".join(parts)

    def recv_close(self, timeout=TIMEOUT):
        """The next frame, which must be a close frame; returns it."""
        f = self.recv_frame(timeout)
        assert f.opcode == OP_CLOSE, f
        return f

    def expect_close(self, code, timeout=TIMEOUT):
        """Asserts that the gateway sends a close frame with <code> and
        then closes TCP."""
        f = self.recv_close(timeout)
        assert f.code == code, f
        assert self.closed_by_peer(timeout), "gateway kept the connection open"
        return f

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
