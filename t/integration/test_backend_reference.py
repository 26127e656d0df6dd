"""
The reference backends in contrib/. wsgate_proto writes the mux and json
envelopes byte for byte as docs/backend-protocol.md lays them out, and
refuses malformed ones. wsgate_backend.py, driven over raw TCP as the
gateway would drive it, echoes every message back in the envelope it came
in, answers ping with pong, says who it is to "whoami", broadcasts chat
lines to every connection it knows on every link, keeps an id reopened on
another link, pauses and resumes a connection with --pause-after, names
its port in --ready-file, and drops a mux link (or skips a json line) on a
malformed envelope. echo-server echoes 1 MiB intact, holds 100
connections, stops reading a peer that does not read, and flushes before
closing.
"""
import json
import os
import re
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import HOST, free_port, read_until_closed, wait_until

SRCDIR = Path(os.environ.get("WSGATE_SRCDIR") or Path(__file__).resolve().parents[2])
BACKEND = SRCDIR / "contrib" / "backend" / "wsgate_backend.py"
ECHO_SOURCE = SRCDIR / "contrib" / "echo-server.c"
PYTHON = "/usr/bin/python3"

sys.path.insert(0, str(BACKEND.parent))
import wsgate_proto as proto  # noqa: E402  (found through the line above)
from wsgate_proto import Envelope  # noqa: E402

TIMEOUT = 5.0       # any single wait for the peer
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
QUIET = 0.3         # how long "nothing arrives" is watched
MIB = 1024 * 1024


# ---- processes ------------------------------------------------------------


def stop_process(proc):
    """TERM, then KILL after STOP_TIMEOUT; returns the exit status."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(STOP_TIMEOUT)
    return proc.returncode


class Backend:
    """One wsgate_backend.py process."""

    def __init__(self, tmp_path, protocol, args):
        self.protocol = protocol
        self.port = free_port()
        self.ready_file = tmp_path / f"ready-{self.port}"
        self.stderr_path = tmp_path / f"backend-{self.port}.err"
        self.links = []
        argv = [PYTHON, str(BACKEND), "--listen", f"{HOST}:{self.port}",
                "--protocol", protocol, "--ready-file", str(self.ready_file), *args]
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err,
                                         stderr=err, start_new_session=True)
        wait_until(self.ready, START_TIMEOUT, "the backend's ready file")

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"backend exited with {self.proc.returncode}:\n{self.stderr()}")
        return self.ready_file.exists()

    def stderr(self):
        return self.stderr_path.read_text(errors="replace")

    def link(self):
        """A new link to this backend, closed at teardown."""
        link = Link(self.port, self.protocol)
        self.links.append(link)
        return link


@pytest.fixture(params=["mux", "json"])
def protocol(request):
    return request.param


@pytest.fixture
def backend(tmp_path, protocol):
    """Starts wsgate_backend.py: backend(*args). At teardown each one is
    stopped by PID and must have exited 0 on TERM, without a traceback."""
    started = []

    def start(*args):
        b = Backend(tmp_path, protocol, args)
        started.append(b)
        return b

    yield start

    problems = []
    for b in started:
        for link in b.links:
            link.close()
        status = stop_process(b.proc)
        if status != 0:
            problems.append(f"backend on port {b.port} exited with {status}")
        if "Traceback" in b.stderr():
            problems.append(f"backend on port {b.port} raised:\n{b.stderr()}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# ---- a gateway's end of a link ----------------------------------------------


class Link:
    """A raw TCP connection to a backend, speaking as the gateway."""

    def __init__(self, port, protocol):
        self.protocol = protocol
        self.sock = socket.create_connection((HOST, port), timeout=TIMEOUT)
        self.buf = b""

    def encode(self, env):
        return proto.encode_mux(env) if self.protocol == "mux" else proto.encode_json(env)

    def send(self, *envs):
        self.sock.sendall(b"".join(self.encode(e) for e in envs))

    def _unit_end(self):
        """Where the first whole envelope in the buffer ends, or 0."""
        if self.protocol == "json":
            return self.buf.find(b"\n") + 1
        if len(self.buf) < proto.MUX_HEADER_SIZE:
            return 0
        (length,) = struct.unpack_from(">I", self.buf, 10)
        end = proto.MUX_HEADER_SIZE + length
        return end if len(self.buf) >= end else 0

    def recv_raw(self, timeout=TIMEOUT):
        """The bytes of the next envelope (a json line with its newline)."""
        deadline = time.monotonic() + timeout
        while not self._unit_end():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no whole envelope within {timeout:g} s: {self.buf[:200]!r}")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            if not chunk:
                raise AssertionError(f"link closed inside or before an envelope: "
                                     f"{self.buf[:200]!r}")
            self.buf += chunk
        end = self._unit_end()
        unit, self.buf = self.buf[:end], self.buf[end:]
        return unit

    def recv(self, timeout=TIMEOUT):
        raw = self.recv_raw(timeout)
        if self.protocol == "mux":
            env, used = proto.decode_mux(raw)
            assert used == len(raw)
            return env
        return proto.decode_json(raw)

    def expect(self, env, timeout=TIMEOUT):
        """Receives the next envelope and checks it is <env> byte for byte."""
        assert self.recv_raw(timeout) == self.encode(env)

    def expect_nothing(self, seconds=QUIET):
        self.sock.settimeout(seconds)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            chunk = None
        assert not self.buf and chunk is None, f"unexpected bytes: {self.buf + (chunk or b'')!r}"

    def expect_closed(self, timeout=TIMEOUT):
        """Waits until the backend closes the link."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            pass

    def close(self):
        self.sock.close()


# ---- wsgate_proto: mux ------------------------------------------------------


def mux_bytes(kind, flags, conn_id, payload):
    """A mux envelope packed by hand, to check the encoder against."""
    return (bytes([kind, flags]) + conn_id.to_bytes(8, "big")
            + len(payload).to_bytes(4, "big") + payload)


def mux_header_only(kind, length):
    """The header of an envelope announcing <length> bytes, alone."""
    return mux_bytes(kind, 0, 0 if kind in (4, 5) else 1, b"")[:10] + length.to_bytes(4, "big")


OPEN_JSON = (b'{"path":"/chat","query":"room=1","remote":"203.0.113.7:51812",'
             b'"subprotocol":"chat","user":null,"headers":{"origin":"https://chat.example.com"}}')
OPEN_ENV = Envelope.open(42, "/chat", "room=1", "203.0.113.7:51812", "chat",
                         headers={"origin": "https://chat.example.com"})

MUX_VECTORS = [
    (OPEN_ENV, mux_bytes(1, 0, 42, OPEN_JSON)),
    (Envelope.message(42, "hello"), mux_bytes(2, 0, 42, b"hello")),
    (Envelope.message(42, "h\u00e9"), mux_bytes(2, 0, 42, b"h\xc3\xa9")),
    (Envelope.message(42, b"\x00\xff"), mux_bytes(2, 1, 42, b"\x00\xff")),
    (Envelope.message(2 ** 64 - 1, b""), mux_bytes(2, 1, 2 ** 64 - 1, b"")),
    (Envelope.close(42, 1000, "bye"), mux_bytes(3, 0, 42, b"\x03\xe8bye")),
    (Envelope.close(42, 1006), mux_bytes(3, 0, 42, b"\x03\xee")),
    (Envelope.close(42), mux_bytes(3, 0, 42, b"")),
    (Envelope.ping(b"x"), mux_bytes(4, 0, 0, b"x")),
    (Envelope.pong(b"x" * 125), mux_bytes(5, 0, 0, b"x" * 125)),
    (Envelope.pause(42), mux_bytes(6, 0, 42, b"")),
    (Envelope.resume(42), mux_bytes(7, 0, 42, b"")),
]
MUX_IDS = ["open", "text", "text-utf8", "binary", "max-id", "close", "close-1006",
           "close-empty", "ping", "pong-125", "pause", "resume"]


@pytest.mark.parametrize("env,wire", MUX_VECTORS, ids=MUX_IDS)
def test_mux_envelopes_encode_and_decode_byte_for_byte(env, wire):
    assert proto.encode_mux(env) == wire
    assert proto.decode_mux(wire) == (env, len(wire))
    # every proper prefix is "need more", never an error
    for cut in range(len(wire)):
        assert proto.decode_mux(wire[:cut]) == (None, 0)


def test_mux_stream_decodes_envelope_after_envelope():
    stream = b"".join(wire for _, wire in MUX_VECTORS)
    decoded = []
    while stream:
        env, used = proto.decode_mux(stream)
        decoded.append(env)
        stream = stream[used:]
    assert decoded == [env for env, _ in MUX_VECTORS]


MUX_BAD = [
    (mux_bytes(0, 0, 1, b""), "unknown envelope kind 0x00"),
    (mux_bytes(8, 0, 1, b""), "unknown envelope kind 0x08"),
    (mux_bytes(2, 2, 1, b"x"), "message with flags 0x02"),
    (mux_bytes(3, 1, 1, b""), "close with flags 0x01"),
    (mux_bytes(2, 0, 1, b"\xc3("), "text message is not UTF-8"),
    (mux_bytes(3, 0, 1, b"\x03"), "close payload of 1 byte"),
    (mux_bytes(3, 0, 1, b"\x03\xe8\xff"), "close reason is not UTF-8"),
    (mux_bytes(4, 0, 1, b""), "ping with connection id 1"),
    (mux_bytes(5, 0, 0, b"x" * 126), "pong of 126 bytes"),
    (mux_bytes(6, 0, 1, b"x"), "pause with a payload"),
    (mux_bytes(1, 0, 1, b"[]"), "open payload is not a JSON object"),
    (mux_bytes(1, 0, 1, b"{"), "open payload is not JSON"),
    (mux_bytes(1, 0, 1, OPEN_JSON.replace(b',"user":null', b"")), "open without user"),
    (mux_bytes(1, 0, 1, OPEN_JSON.replace(b'"https://chat.example.com"', b"1")), "open headers"),
    # only the header is needed to refuse a length over the limit
    (mux_header_only(2, proto.DEFAULT_MAX_MESSAGE + 1), "over the limit"),
    (mux_header_only(4, proto.CONTROL_MAX + 1), "over the limit"),
]


@pytest.mark.parametrize("wire,why", MUX_BAD, ids=[why for _, why in MUX_BAD])
def test_mux_decoder_refuses_malformed_envelopes(wire, why):
    with pytest.raises(proto.ProtocolError, match=re.escape(why)):
        proto.decode_mux(wire)


# ---- wsgate_proto: json -----------------------------------------------------


def doc_json_examples():
    """The lines of the json example block in docs/backend-protocol.md."""
    doc = (SRCDIR / "docs" / "backend-protocol.md").read_text()
    section = doc[doc.index("### json envelopes"):]
    block = section[section.index("```json") + len("```json"):]
    block = block[:block.index("```")]
    return [line for line in block.splitlines() if line.strip()]


def test_json_examples_of_the_doc_decode_and_encode_back_byte_for_byte():
    lines = doc_json_examples()
    assert len(lines) == 8
    for line in lines:
        env = proto.decode_json(line.encode())
        assert proto.encode_json(env) == line.encode() + b"\n"


JSON_VECTORS = [
    (Envelope.open(42, "/chat", "room=1", "203.0.113.7:51812"),
     b'{"kind":"open","id":42,"path":"/chat","query":"room=1","remote":"203.0.113.7:51812",'
     b'"subprotocol":null,"user":null,"headers":{}}\n'),
    (Envelope.message(42, "h\u00e9\n\""), b'{"kind":"message","id":42,"text":"h\xc3\xa9\\n\\""}\n'),
    (Envelope.message(42, b"\x89PNG\r\n\x1a\n"),
     b'{"kind":"message","id":42,"binary":"iVBORw0KGgo="}\n'),
    (Envelope.message(42, b""), b'{"kind":"message","id":42,"binary":""}\n'),
    (Envelope.close(42, 1000, "bye"), b'{"kind":"close","id":42,"code":1000,"reason":"bye"}\n'),
    (Envelope.close(42), b'{"kind":"close","id":42}\n'),
    (Envelope.ping("x"), b'{"kind":"ping","data":"x"}\n'),
    (Envelope.pong(), b'{"kind":"pong","data":""}\n'),
    (Envelope.pause(2 ** 53 - 1), b'{"kind":"pause","id":9007199254740991}\n'),
    (Envelope.resume(0), b'{"kind":"resume","id":0}\n'),
]


@pytest.mark.parametrize("env,wire", JSON_VECTORS,
                         ids=["open", "text", "binary", "empty-binary", "close",
                              "close-empty", "ping", "pong", "pause-max-id", "resume"])
def test_json_envelopes_encode_and_decode_byte_for_byte(env, wire):
    assert proto.encode_json(env) == wire
    assert proto.decode_json(wire) == env


def test_json_decoder_ignores_unknown_members():
    line = b'{"kind":"message","id":7,"text":"hi","future":[1,{"x":null}]}'
    assert proto.decode_json(line) == Envelope.message(7, "hi")


JSON_BAD = [
    (b"[1]", "not a JSON object"),
    (b"{", "not JSON"),
    (b'{"kind":"message","id":1,"text":"\xff"}', "line is not UTF-8"),
    (b'{"kind":"hello","id":1}', "unknown kind"),
    (b'{"id":1,"text":"x"}', "unknown kind None"),
    (b'{"kind":"message","text":"x"}', "id None"),
    (b'{"kind":"message","id":true,"text":"x"}', "id True"),
    (b'{"kind":"message","id":1.0,"text":"x"}', "id 1.0"),
    (b'{"kind":"message","id":-1,"text":"x"}', "id -1"),
    (b'{"kind":"message","id":9007199254740992,"text":"x"}', "id 9007199254740992"),
    (b'{"kind":"message","id":1}', "exactly one of text and binary"),
    (b'{"kind":"message","id":1,"text":"x","binary":""}', "exactly one of text and binary"),
    (b'{"kind":"message","id":1,"text":5}', "text is not a string"),
    (b'{"kind":"message","id":1,"text":"\\ud800"}', "not valid Unicode"),
    (b'{"kind":"message","id":1,"binary":"iVBORw0KGgo"}', "not base64"),
    (b'{"kind":"message","id":1,"binary":"iV BORw0KGgo="}', "not base64"),
    (b'{"kind":"message","id":1,"binary":"iVBORw0KGgp="}', "not canonical"),
    (b'{"kind":"close","id":1,"code":"1000"}', "close code"),
    (b'{"kind":"close","id":1,"code":65536}', "close code"),
    (b'{"kind":"close","id":1,"reason":"bye"}', "reason without a code"),
    (b'{"kind":"ping","data":1}', "ping data is not a string"),
    (b'{"kind":"ping","data":"' + b"x" * 126 + b'"}', "ping of 126 bytes"),
    (b'{"kind":"open","id":1,"path":"/"}', "open without query"),
    (b'{"kind":"message","id":NaN,"text":"x"}', "NaN is not JSON"),
]


@pytest.mark.parametrize("line,why", JSON_BAD, ids=[why for _, why in JSON_BAD])
def test_json_decoder_refuses_malformed_lines(line, why):
    with pytest.raises(proto.ProtocolError, match=re.escape(why)):
        proto.decode_json(line)


# ---- wsgate_backend.py ------------------------------------------------------


def test_backend_echoes_every_message_in_the_envelope_it_came_in(backend):
    link = backend().link()
    link.send(Envelope.open(1, "/echo"))
    messages = [Envelope.message(1, "hello"), Envelope.message(1, ""),
                Envelope.message(1, "\u00e9\u20ac\U0001f600"), Envelope.message(1, b""),
                Envelope.message(1, bytes(range(256))), Envelope.message(1, os.urandom(MIB))]
    for env in messages:
        link.send(env)
        link.expect(env)
    # a burst comes back in order
    burst = [Envelope.message(1, f"m{i}") for i in range(200)]
    link.send(*burst)
    for env in burst:
        link.expect(env)
    link.expect_nothing()


def test_backend_answers_ping_with_pong_and_echoes_close(backend):
    link = backend().link()
    link.send(Envelope.ping("beat"))
    link.expect(Envelope.pong("beat"))
    link.send(Envelope.ping())
    link.expect(Envelope.pong())
    link.send(Envelope.open(3), Envelope.close(3, 4001, "gone"))
    link.expect(Envelope.close(3, 4001, "gone"))
    link.send(Envelope.pong("unasked"))
    link.expect_nothing()


def test_backend_whoami_reports_its_name_and_the_open(backend):
    link = backend("--name", "alpha").link()
    link.send(Envelope.open(77, "/chat", "room=1", "203.0.113.7:51812", "chat",
                            headers={"origin": "https://x.example", "user-agent": "t/1"}),
              Envelope.message(77, "whoami"))
    reply = link.recv()
    assert reply.kind == proto.MESSAGE and reply.id == 77 and not reply.binary
    assert json.loads(reply.text) == {
        "id": 77, "server": "alpha", "link": 1, "remote": "203.0.113.7:51812",
        "path": "/chat", "query": "room=1", "subprotocol": "chat", "user": None,
        "headers": {"origin": "https://x.example", "user-agent": "t/1"}}
    # only the exact text asks; binary "whoami" is echoed
    link.send(Envelope.message(77, b"whoami"), Envelope.message(77, "whoami "))
    link.expect(Envelope.message(77, b"whoami"))
    link.expect(Envelope.message(77, "whoami "))


def test_backend_keeps_an_id_reopened_on_another_link_when_the_first_dies(backend):
    b = backend()
    first, second = b.link(), b.link()
    first.send(Envelope.open(5, "/old"))
    first.send(Envelope.ping())
    first.expect(Envelope.pong())
    second.send(Envelope.open(5, "/new"))
    first.close()
    wait_until(lambda: re.search(r"link 1 from \S+ down", b.stderr()), TIMEOUT,
               "the backend to see link 1 go")
    second.send(Envelope.message(5, "whoami"))
    reply = json.loads(second.recv().text)
    assert (reply["path"], reply["link"]) == ("/new", 2)


def say(text):
    return json.dumps({"type": "say", "text": text})


def said(sender, text):
    return json.dumps({"type": "say", "from": sender, "text": text}, separators=(",", ":"),
                      ensure_ascii=False)


def test_chat_broadcasts_to_every_connection_on_every_link(backend):
    b = backend("--app", "chat")
    a_link, b_link = b.link(), b.link()
    a_link.send(Envelope.open(1), Envelope.open(3))
    b_link.send(Envelope.open(2))
    b_link.send(Envelope.ping())
    b_link.expect(Envelope.pong())

    a_link.send(Envelope.message(1, say("hi all")))
    got = sorted((a_link.recv() for _ in range(2)), key=lambda env: env.id)
    assert got == [Envelope.message(1, said(1, "hi all")), Envelope.message(3, said(1, "hi all"))]
    b_link.expect(Envelope.message(2, said(1, "hi all")))

    # a closed id hears nothing more; what is not a say is ignored
    a_link.send(Envelope.close(3, 1000))
    b_link.send(Envelope.message(2, "plain text"), Envelope.message(2, b"\x01"),
                Envelope.message(2, '{"type":"shout","text":"x"}'),
                Envelope.message(2, say("\u00e9 back")))
    a_link.expect(Envelope.message(1, said(2, "\u00e9 back")))
    b_link.expect(Envelope.message(2, said(2, "\u00e9 back")))
    a_link.expect_nothing()
    b_link.expect_nothing()


def test_pause_after_n_messages_then_resume_a_second_later(backend):
    link = backend("--pause-after", "3").link()
    link.send(Envelope.open(1), Envelope.open(2))
    for i in range(3):
        link.send(Envelope.message(1, f"a{i}"))
        link.expect(Envelope.message(1, f"a{i}"))
    link.expect(Envelope.pause(1))
    paused = time.monotonic()
    # other ids are not paused; messages already in flight are still
    # echoed and do not stack another pause
    for i in range(3):
        link.send(Envelope.message(2, f"b{i}"), Envelope.message(1, f"c{i}"))
        link.expect(Envelope.message(2, f"b{i}"))
        if i == 2:
            link.expect(Envelope.pause(2))
        link.expect(Envelope.message(1, f"c{i}"))
    link.expect(Envelope.resume(1), timeout=3.0)
    assert 0.8 <= time.monotonic() - paused <= 2.5
    link.expect(Envelope.resume(2), timeout=3.0)
    # the next third message pauses again
    link.send(*[Envelope.message(1, f"d{i}") for i in range(3)])
    for i in range(3):
        link.expect(Envelope.message(1, f"d{i}"))
    link.expect(Envelope.pause(1))


def test_ready_file_names_the_port_even_when_asked_for_port_0(tmp_path, protocol):
    ready = tmp_path / "ready"
    proc = subprocess.Popen([PYTHON, str(BACKEND), "--listen", f"{HOST}:0", "--protocol", protocol,
                             "--ready-file", str(ready)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_until(ready.exists, START_TIMEOUT, "the ready file")
        host, _, port = ready.read_text().strip().rpartition(":")
        assert host == HOST and int(port) > 0
        link = Link(int(port), protocol)
        link.send(Envelope.ping("up"))
        link.expect(Envelope.pong("up"))
        link.close()
    finally:
        assert stop_process(proc) == 0


@pytest.mark.parametrize("protocol", ["mux"])
def test_mux_malformed_envelope_closes_that_link_only(backend):
    b = backend("--max-message", "1000")
    good, bad = b.link(), b.link()
    bad.sock.sendall(mux_bytes(9, 0, 1, b"x"))
    bad.expect_closed()
    # a length over the limit is refused from the header alone
    bad = b.link()
    bad.sock.sendall(mux_header_only(2, 1001))
    bad.expect_closed()
    good.send(Envelope.ping("still"))
    good.expect(Envelope.pong("still"))
    err = b.stderr()
    assert "unknown envelope kind 0x09; closing the link" in err
    assert "message of 1001 bytes, over the limit of 1000; closing the link" in err


@pytest.mark.parametrize("protocol", ["json"])
def test_json_malformed_line_is_skipped_and_long_line_closes_the_link(backend):
    b = backend("--max-message", "1000")
    link = b.link()
    link.sock.sendall(b"not json\n" + b'{"kind":"message","id":1}\n' + b"\n")
    link.send(Envelope.ping("after"))
    link.expect(Envelope.pong("after"))
    err = b.stderr()
    assert "line skipped: b'not json\\n'" in err
    assert "exactly one of text and binary; line skipped" in err
    # the limit for --max-message 1000 is 6 * 1000 + 1024 bytes
    long_link = b.link()
    long_link.sock.sendall(b"x" * 8000)
    long_link.expect_closed()
    link.send(Envelope.ping("alive"))
    link.expect(Envelope.pong("alive"))
    assert "closing the link" in b.stderr()


# ---- echo-server --------------------------------------------------------------


def echo_server_candidates():
    """Where a build may have put echo-server: beside the tested binary's
    build tree, then in the source tree."""
    found = []
    wsgate_bin = os.environ.get("WSGATE_BIN")
    if wsgate_bin:
        found.append(Path(wsgate_bin).resolve().parents[1] / "contrib" / "echo-server")
    found.append(SRCDIR / "contrib" / "echo-server")
    return found


@pytest.fixture(scope="module")
def echo_server_bin(tmp_path_factory):
    """A built echo-server no older than its source, else one built now."""
    for path in echo_server_candidates():
        if path.is_file() and os.access(path, os.X_OK) \
                and path.stat().st_mtime >= ECHO_SOURCE.stat().st_mtime:
            return path
    out = tmp_path_factory.mktemp("echo-server") / "echo-server"
    cmd = ["gcc", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-O2",
           str(ECHO_SOURCE), "-levent", "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stderr}"
    return out


@pytest.fixture
def echo_server(echo_server_bin, tmp_path):
    """Starts echo-server on a free port; returns the port. Stopped by PID
    at teardown, where it must exit 0 on TERM."""
    port = free_port()
    err_path = tmp_path / "echo-server.err"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen([str(echo_server_bin), "-l", f"{HOST}:{port}"],
                                stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                start_new_session=True)

    def listening():
        if proc.poll() is not None:
            raise AssertionError(f"echo-server exited with {proc.returncode}: "
                                 f"{err_path.read_text(errors='replace')}")
        return f"listening on {HOST}:{port}" in err_path.read_text(errors="replace")

    try:
        wait_until(listening, START_TIMEOUT, "echo-server to listen")
        yield port
    finally:
        status = stop_process(proc)
    assert status == 0, err_path.read_text(errors="replace")


def exchange(socks, outgoing, timeout, already_sent=0):
    """Writes outgoing[s] on each socket of <socks> while reading the echo,
    non-blocking, until each has received as many bytes as it sent (plus
    <already_sent> written before); returns {sock: bytes received}."""
    sel = selectors.DefaultSelector()
    received = {s: bytearray() for s in socks}
    sent = dict.fromkeys(socks, 0)
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    deadline = time.monotonic() + timeout
    try:
        while sel.get_map():
            if time.monotonic() >= deadline:
                raise AssertionError(f"{len(sel.get_map())} of {len(socks)} sockets "
                                     f"unfinished after {timeout:g} s")
            for key, events in sel.select(0.05):
                s = key.fileobj
                if events & selectors.EVENT_WRITE:
                    sent[s] += s.send(outgoing[s][sent[s]:sent[s] + 262144])
                    if sent[s] == len(outgoing[s]):
                        sel.modify(s, selectors.EVENT_READ)
                        continue
                if events & selectors.EVENT_READ:
                    chunk = s.recv(1 << 20)
                    assert chunk, "echo-server closed a connection"
                    received[s] += chunk
                    if len(received[s]) >= already_sent + len(outgoing[s]):
                        sel.unregister(s)
    finally:
        sel.close()
    for s in socks:
        s.setblocking(True)
    return {s: bytes(b) for s, b in received.items()}


def send_until_stalled(sock, data, stall, timeout):
    """Writes <data> on <sock> without reading anything, until all is
    written or nothing could be written for <stall> seconds; returns the
    number of bytes written."""
    sel = selectors.DefaultSelector()
    sock.setblocking(False)
    sel.register(sock, selectors.EVENT_WRITE)
    sent = 0
    deadline = time.monotonic() + timeout
    last_progress = time.monotonic()
    try:
        while sent < len(data) and time.monotonic() - last_progress < stall:
            assert time.monotonic() < deadline, f"still writing after {timeout:g} s"
            if sel.select(0.05):
                n = sock.send(data[sent:sent + 262144])
                if n:
                    sent += n
                    last_progress = time.monotonic()
    finally:
        sel.close()
        sock.setblocking(True)
    return sent


def test_echo_server_echoes_1mib_intact(echo_server):
    data = os.urandom(MIB)
    with socket.create_connection((HOST, echo_server), timeout=TIMEOUT) as s:
        received = exchange([s], {s: data}, timeout=10.0)
    assert received[s] == data


def test_echo_server_holds_100_connections_at_once(echo_server):
    socks = [socket.create_connection((HOST, echo_server), timeout=TIMEOUT) for _ in range(100)]
    try:
        outgoing = {s: f"connection {i}: ".encode() + os.urandom(20000)
                    for i, s in enumerate(socks)}
        received = exchange(socks, outgoing, timeout=10.0)
        assert all(received[s] == outgoing[s] for s in socks)
        # all 100 still open: a second round on each
        outgoing = {s: os.urandom(100) for s in socks}
        received = exchange(socks, outgoing, timeout=10.0)
        assert all(received[s] == outgoing[s] for s in socks)
    finally:
        for s in socks:
            s.close()


def test_echo_server_is_a_mux_echo_backend(echo_server):
    envs = [Envelope.open(9, "/m"), Envelope.message(9, "hi"), Envelope.message(9, b"\x00" * 70000),
            Envelope.ping("p"), Envelope.close(9, 1000, "bye")]
    link = Link(echo_server, "mux")
    try:
        link.send(*envs)
        for env in envs:
            link.expect(env)
    finally:
        link.close()


def tcp_queues(sock, server_end):
    """(send queue, receive queue) in bytes of one end of the connection
    <sock>, ours or the server's, from /proc/net/tcp. The send queue holds
    what was written and not yet acknowledged, the receive queue what
    arrived and was not read."""
    ours, theirs = sock.getsockname()[1], sock.getpeername()[1]
    local, remote = (theirs, ours) if server_end else (ours, theirs)
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{local:04X}") and fields[2].endswith(f":{remote:04X}"):
            tx, rx = fields[4].split(":")
            return int(tx, 16), int(rx, 16)
    raise AssertionError(f"port {local} to {remote} is not in /proc/net/tcp")


def small_buffer_socket(port):
    """A connection whose own buffers are small, so that what piles up
    when we do not read sits in the server."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.settimeout(TIMEOUT)
    s.connect((HOST, port))
    return s


def test_echo_server_stops_reading_a_peer_that_does_not_read(echo_server):
    data = os.urandom(64 * MIB)
    with small_buffer_socket(echo_server) as s:
        sent = send_until_stalled(s, data, stall=0.5, timeout=20.0)
        # an unbounded server would have read all 64 MiB
        assert sent < len(data)
        assert tcp_queues(s, server_end=True)[1] > 0
        # once we read, everything comes back in order, the rest too
        received = exchange([s], {s: data[sent:]}, timeout=30.0, already_sent=sent)
    assert received[s] == data


def test_echo_server_sends_all_it_holds_before_closing_on_eof(echo_server):
    data = os.urandom(8 * MIB)
    chunk = 65536
    with small_buffer_socket(echo_server) as s:
        # write without reading until the server holds at least 256 KiB of
        # echo that its socket could not take (and so still reads us: its
        # bound is 1 MiB); the kernel's queues tell where each byte is
        sent = held = 0
        while held < 256 * 1024:
            assert sent < len(data), "the server never held any echo"
            s.sendall(data[sent:sent + chunk])
            sent += chunk

            def settled():
                # everything we sent has been read by the server
                return tcp_queues(s, False)[0] == 0 and tcp_queues(s, True)[1] == 0

            wait_until(settled, TIMEOUT, "the server to read what was sent")
            held = sent - tcp_queues(s, True)[0] - tcp_queues(s, False)[1]
        s.shutdown(socket.SHUT_WR)
        assert read_until_closed(s, 10.0) == data[:sent]
