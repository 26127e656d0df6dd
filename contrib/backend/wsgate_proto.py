"""
Envelopes of wsgate's shared-pool backend protocols, mux and json
(docs/backend-protocol.md, "Shared pools: mux and json").

Both protocols carry the same seven kinds of envelope, so one Envelope
class serves both, and each protocol has an encoder and a decoder. Encoders
write exactly what they are given, as long as the wire can represent it, so
tests can also build envelopes the gateway must refuse (a text message that
is not UTF-8, a close code that may not be sent). Decoders are strict: they
accept only what the document allows, so a backend built on them notices a
gateway that strays from it.

Standard library only, so any Python 3.11 can import it without installing
anything.
"""
import asyncio
import base64
import binascii
import json
import struct
from dataclasses import dataclass, field

OPEN = 0x01
MESSAGE = 0x02
CLOSE = 0x03
PING = 0x04
PONG = 0x05
PAUSE = 0x06
RESUME = 0x07

KIND_NAMES = {
    OPEN: "open",
    MESSAGE: "message",
    CLOSE: "close",
    PING: "ping",
    PONG: "pong",
    PAUSE: "pause",
    RESUME: "resume",
}
KINDS_BY_NAME = {name: kind for kind, name in KIND_NAMES.items()}

FLAG_BINARY = 0x01

# kind (1), flags (1), connection id (8), payload length (4), big-endian
MUX_HEADER = struct.Struct(">BBQI")
MUX_HEADER_SIZE = MUX_HEADER.size

# The payload limit of every kind but message.
CONTROL_MAX = 16 * 1024 * 1024
# What a backend accepts as a message when told nothing else: the limit
# the gateway's own tests configure (websocket_max_message 16m).
DEFAULT_MAX_MESSAGE = 16 * 1024 * 1024
# A ping's payload is echoed in a pong, like a WebSocket ping's.
PING_MAX = 125
# json ids are JSON integers, which many JSON libraries hold in a double.
JSON_ID_LIMIT = 2 ** 53
MUX_ID_LIMIT = 2 ** 64

# The members of an open envelope, in the order they are written.
OPEN_MEMBERS = ("path", "query", "remote", "subprotocol", "user", "headers")


class ProtocolError(ValueError):
    """A malformed envelope or line. The message says what was wrong."""


@dataclass
class Envelope:
    """One envelope of either protocol.

    <kind> is one of OPEN ... RESUME and <id> the connection id (0 for ping
    and pong). <data> holds the bytes of a message (UTF-8 for text) or of a
    ping or pong. A close has <code> (None when it carries none) and
    <reason>. An open has <info>: a dict of OPEN_MEMBERS (path, query and
    remote strings, subprotocol and user strings or None, headers a dict of
    lower-cased names to strings).

    Build envelopes with the class methods (Envelope.message(7, "hi")),
    which fill in the members each kind needs.
    """

    kind: int
    id: int = 0
    data: bytes = b""
    binary: bool = False
    code: int | None = None
    reason: str = ""
    info: dict | None = field(default=None)

    @classmethod
    def open(cls, conn_id, path="/", query="", remote="127.0.0.1:1",
             subprotocol=None, user=None, headers=None):
        """An open for <conn_id>, with the gateway's defaults for a plain
        request to "/"."""
        info = {"path": path, "query": query, "remote": remote,
                "subprotocol": subprotocol, "user": user,
                "headers": dict(headers or {})}
        return cls(OPEN, conn_id, info=info)

    @classmethod
    def message(cls, conn_id, payload, binary=None):
        """A message for <conn_id>: a str is sent as text, bytes as binary,
        unless <binary> says otherwise (bytes sent as text need not be
        UTF-8, so tests can send what the gateway must drop)."""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
            binary = bool(binary)
        elif binary is None:
            binary = True
        return cls(MESSAGE, conn_id, bytes(payload), binary)

    @classmethod
    def close(cls, conn_id, code=None, reason=""):
        """A close for <conn_id>; no code means an empty payload."""
        return cls(CLOSE, conn_id, code=code, reason=reason)

    @classmethod
    def ping(cls, data=b""):
        return cls(PING, 0, _as_bytes(data))

    @classmethod
    def pong(cls, data=b""):
        return cls(PONG, 0, _as_bytes(data))

    @classmethod
    def pause(cls, conn_id):
        return cls(PAUSE, conn_id)

    @classmethod
    def resume(cls, conn_id):
        return cls(RESUME, conn_id)

    @property
    def name(self):
        """The kind's name as the json protocol spells it ("message")."""
        return KIND_NAMES.get(self.kind, f"kind 0x{self.kind:02x}")

    @property
    def text(self):
        """A text message's payload as a str (strict UTF-8)."""
        return self.data.decode("utf-8")


def _as_bytes(data):
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


# ---- mux ----------------------------------------------------------------


def mux_header(kind, flags, conn_id, length):
    """The 14 header bytes of a mux envelope, packed as given.

    Any kind and flags go through, so tests can build envelopes the gateway
    must refuse; raises struct.error only when a field does not fit.
    """
    return MUX_HEADER.pack(kind, flags, conn_id, length)


def _mux_payload(env):
    if env.kind == OPEN:
        return _open_payload(env.info)
    if env.kind == CLOSE:
        if env.code is None:
            if env.reason:
                raise ValueError("a close reason needs a close code")
            return b""
        return struct.pack(">H", env.code) + env.reason.encode("utf-8")
    if env.kind in (PAUSE, RESUME):
        return b""
    return env.data


def _open_payload(info):
    """The JSON object of an open, compact, members in OPEN_MEMBERS order
    then any others, UTF-8 unescaped (as the gateway writes it)."""
    info = dict(info or {})
    ordered = {name: info.pop(name) for name in OPEN_MEMBERS if name in info}
    ordered.update(info)
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode_mux(env):
    """The bytes of <env> as a mux envelope: header and payload.

    The payload of an open is its info as compact JSON; of a close, the
    2-byte code and the UTF-8 reason (nothing when code is None); of pause
    and resume, nothing; of the others, env.data. Raises ValueError for a
    close with a reason but no code, struct.error for an id or length that
    does not fit its field.
    """
    payload = _mux_payload(env)
    flags = FLAG_BINARY if env.kind == MESSAGE and env.binary else 0
    return mux_header(env.kind, flags, env.id, len(payload)) + payload


def decode_mux_header(head, max_message=DEFAULT_MAX_MESSAGE):
    """Checks the 14-byte header <head>; returns (kind, flags, id, length).

    Raises ProtocolError for an unknown kind, flags other than a message's
    binary bit, or a length over its limit (<max_message> for messages,
    CONTROL_MAX for the rest). Called before reading the payload, so a bad
    length is refused before anything waits for or stores its bytes.
    """
    if len(head) != MUX_HEADER_SIZE:
        raise ProtocolError(f"a mux header is {MUX_HEADER_SIZE} bytes, not {len(head)}")
    kind, flags, conn_id, length = MUX_HEADER.unpack(head)
    if kind not in KIND_NAMES:
        raise ProtocolError(f"unknown envelope kind 0x{kind:02x}")
    allowed = FLAG_BINARY if kind == MESSAGE else 0
    if flags & ~allowed:
        raise ProtocolError(f"{KIND_NAMES[kind]} with flags 0x{flags:02x}")
    limit = max_message if kind == MESSAGE else CONTROL_MAX
    if length > limit:
        raise ProtocolError(f"{KIND_NAMES[kind]} of {length} bytes, over the limit of {limit}")
    return kind, flags, conn_id, length


def decode_mux_payload(kind, flags, conn_id, payload):
    """The Envelope of a header already checked by decode_mux_header() and
    its <payload>.

    Raises ProtocolError for a text message that is not UTF-8, an open that
    is not a JSON object of the documented members, a close of 1 byte or
    with a reason that is not UTF-8, a ping or pong with a connection id or
    over PING_MAX bytes, and a pause or resume with a payload.
    """
    name = KIND_NAMES[kind]
    payload = bytes(payload)
    if kind == MESSAGE:
        binary = bool(flags & FLAG_BINARY)
        if not binary:
            _check_utf8(payload, "text message")
        return Envelope(MESSAGE, conn_id, payload, binary)
    if kind == OPEN:
        try:
            info = json.loads(_check_utf8(payload, "open"),
                              parse_constant=_refuse_constant)
        except ValueError as e:
            raise ProtocolError(f"open payload is not JSON: {e}") from None
        return Envelope(OPEN, conn_id, info=_check_open(info))
    if kind == CLOSE:
        if len(payload) == 0:
            return Envelope(CLOSE, conn_id)
        if len(payload) == 1:
            raise ProtocolError("close payload of 1 byte")
        (code,) = struct.unpack(">H", payload[:2])
        reason = _check_utf8(payload[2:], "close reason")
        return Envelope(CLOSE, conn_id, code=code, reason=reason)
    if kind in (PING, PONG):
        if conn_id != 0:
            raise ProtocolError(f"{name} with connection id {conn_id}, not 0")
        if len(payload) > PING_MAX:
            raise ProtocolError(f"{name} of {len(payload)} bytes, over {PING_MAX}")
        return Envelope(kind, 0, payload)
    if payload:
        raise ProtocolError(f"{name} with a payload of {len(payload)} bytes")
    return Envelope(kind, conn_id)


def decode_mux(buf, max_message=DEFAULT_MAX_MESSAGE):
    """Decodes the envelope at the start of <buf>.

    Returns (envelope, bytes consumed), or (None, 0) when <buf> does not
    hold a whole envelope yet. Raises ProtocolError as decode_mux_header()
    and decode_mux_payload() do; after that the stream cannot be resynced.
    """
    if len(buf) < MUX_HEADER_SIZE:
        return None, 0
    kind, flags, conn_id, length = decode_mux_header(buf[:MUX_HEADER_SIZE], max_message)
    end = MUX_HEADER_SIZE + length
    if len(buf) < end:
        return None, 0
    return decode_mux_payload(kind, flags, conn_id, buf[MUX_HEADER_SIZE:end]), end


async def read_mux(reader, max_message=DEFAULT_MAX_MESSAGE):
    """Reads one mux envelope from the asyncio StreamReader <reader>.

    Returns the Envelope, or None at end of stream between envelopes.
    Raises ProtocolError for a malformed envelope or an end of stream
    inside one.
    """
    try:
        head = await reader.readexactly(MUX_HEADER_SIZE)
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise ProtocolError("end of stream inside an envelope header") from None
    kind, flags, conn_id, length = decode_mux_header(head, max_message)
    try:
        payload = await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise ProtocolError(f"end of stream inside a {KIND_NAMES[kind]} payload") from None
    return decode_mux_payload(kind, flags, conn_id, payload)


# ---- json ---------------------------------------------------------------


def json_line_limit(max_message):
    """The longest line the gateway accepts from a backend when its
    websocket_max_message is <max_message>: room for the base64 of a
    binary message, plus 1 KiB for the rest of the envelope."""
    return max_message * 4 // 3 + 1024


def _dumps(obj):
    # compact and UTF-8 unescaped: the form the doc's examples show and
    # the gateway writes; json.dumps escapes newlines inside strings, so
    # the line never holds a raw one
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def encode_json(env):
    """The line (ending in b"\\n") that carries <env> in the json protocol.

    Members follow the doc's examples in order: kind, id, then the kind's
    own (text or binary in base64; code and reason, only when there is a
    code; data for ping and pong, as UTF-8). Ping and pong have no id.
    Raises ValueError for what JSON cannot carry: text or ping data that
    is not UTF-8, an id not below 2^53, a reason without a code.
    """
    obj = {"kind": env.name}
    if env.kind not in (PING, PONG):
        if not 0 <= env.id < JSON_ID_LIMIT:
            raise ValueError(f"json ids are below 2^53, not {env.id}")
        obj["id"] = env.id
    if env.kind == OPEN:
        info = dict(env.info or {})
        for name in OPEN_MEMBERS:
            if name in info:
                obj[name] = info.pop(name)
        obj.update((k, v) for k, v in info.items() if k not in ("kind", "id"))
    elif env.kind == MESSAGE:
        if env.binary:
            obj["binary"] = base64.b64encode(env.data).decode("ascii")
        else:
            obj["text"] = env.data.decode("utf-8")
    elif env.kind == CLOSE:
        if env.code is not None:
            obj["code"] = env.code
            obj["reason"] = env.reason
        elif env.reason:
            raise ValueError("a close reason needs a close code")
    elif env.kind in (PING, PONG):
        obj["data"] = env.data.decode("utf-8")
    return (_dumps(obj) + "\n").encode("utf-8")


def decode_json(line):
    """The Envelope on one json <line> (bytes, with or without its "\\n").

    Unknown members are ignored. Raises ProtocolError for a line that is
    not UTF-8 or not one JSON object, an unknown kind, and a missing or
    ill-typed member: an id that is not an integer in [0, 2^53); a message
    without exactly one of text (a string) and binary (canonical base64
    with padding); a close whose code is not an integer in [0, 65535] or
    whose reason is not a string or comes without a code; ping or pong
    data that is not a string of at most PING_MAX bytes; an open without
    every member of OPEN_MEMBERS, well typed.
    """
    text = _check_utf8(bytes(line), "line")
    try:
        obj = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as e:
        raise ProtocolError(f"not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"not a JSON object but {type(obj).__name__}")
    name = obj.get("kind")
    if not isinstance(name, str) or name not in KINDS_BY_NAME:
        raise ProtocolError(f"unknown kind {name!r}")
    kind = KINDS_BY_NAME[name]
    if kind in (PING, PONG):
        data = obj.get("data", "")
        if not isinstance(data, str):
            raise ProtocolError(f"{name} data is not a string")
        data = _encode_utf8(data, f"{name} data")
        if len(data) > PING_MAX:
            raise ProtocolError(f"{name} of {len(data)} bytes, over {PING_MAX}")
        return Envelope(kind, 0, data)
    conn_id = obj.get("id")
    if not _is_int(conn_id) or not 0 <= conn_id < JSON_ID_LIMIT:
        raise ProtocolError(f"{name} id {conn_id!r} is not an integer in [0, 2^53)")
    if kind == MESSAGE:
        return _json_message(obj, conn_id)
    if kind == CLOSE:
        return _json_close(obj, conn_id)
    if kind == OPEN:
        info = {member: obj[member] for member in OPEN_MEMBERS if member in obj}
        return Envelope(OPEN, conn_id, info=_check_open(info))
    return Envelope(kind, conn_id)


def _json_message(obj, conn_id):
    has_text, has_binary = "text" in obj, "binary" in obj
    if has_text == has_binary:
        raise ProtocolError("a message needs exactly one of text and binary")
    if has_text:
        if not isinstance(obj["text"], str):
            raise ProtocolError("message text is not a string")
        return Envelope(MESSAGE, conn_id, _encode_utf8(obj["text"], "message text"), False)
    b64 = obj["binary"]
    if not isinstance(b64, str):
        raise ProtocolError("message binary is not a string")
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("message binary is not base64") from None
    # one spelling per payload (padding present, unused bits zero), so an
    # echo is byte for byte what was sent
    if base64.b64encode(data).decode("ascii") != b64:
        raise ProtocolError("message binary is not canonical padded base64")
    return Envelope(MESSAGE, conn_id, data, True)


def _json_close(obj, conn_id):
    code = obj.get("code")
    reason = obj.get("reason", "")
    if code is not None and (not _is_int(code) or not 0 <= code <= 0xFFFF):
        raise ProtocolError(f"close code {code!r} is not an integer in [0, 65535]")
    if not isinstance(reason, str):
        raise ProtocolError("close reason is not a string")
    if reason and code is None:
        raise ProtocolError("close reason without a code")
    _encode_utf8(reason, "close reason")
    return Envelope(CLOSE, conn_id, code=code, reason=reason)


async def read_json_line(reader, max_line):
    """Reads one line, with its b"\\n", from the asyncio StreamReader
    <reader>, whose own limit must be at least <max_line>.

    Returns None at end of stream between lines. Raises ProtocolError for
    a line over <max_line> bytes or an end of stream inside a line: either
    way the stream cannot be trusted any more.
    """
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise ProtocolError("end of stream inside a line") from None
    except asyncio.LimitOverrunError:
        raise ProtocolError(f"a line longer than {max_line} bytes") from None
    if len(line) > max_line:
        raise ProtocolError(f"a line of {len(line)} bytes, over {max_line}")
    return line


# ---- shared checks ------------------------------------------------------


def _is_int(value):
    # bool is a subclass of int, but true is not an id
    return isinstance(value, int) and not isinstance(value, bool)


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


def _check_utf8(data, what):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(f"{what} is not UTF-8") from None


def _encode_utf8(text, what):
    # JSON's \ud800 escapes can name lone surrogates, which UTF-8 cannot
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ProtocolError(f"{what} is not valid Unicode") from None


def _check_open(info):
    """<info> if it is an open's object of OPEN_MEMBERS, well typed."""
    if not isinstance(info, dict):
        raise ProtocolError("open payload is not a JSON object")
    for name in OPEN_MEMBERS:
        if name not in info:
            raise ProtocolError(f"open without {name}")
    for name in ("path", "query", "remote"):
        if not isinstance(info[name], str):
            raise ProtocolError(f"open {name} is not a string")
    for name in ("subprotocol", "user"):
        if info[name] is not None and not isinstance(info[name], str):
            raise ProtocolError(f"open {name} is neither a string nor null")
    headers = info["headers"]
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ProtocolError("open headers is not an object of strings")
    return {name: info[name] for name in OPEN_MEMBERS}
