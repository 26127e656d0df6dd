"""
The router's "upstream NAME [hash KEY]" action, over wsg_msg_to_upstream():
single messages go to a mux or json upstream's backend, which answers the
session through the connection id it was opened with. A key picks one
server for every message that carries it, and keeps their order; without
a key a session keeps to one server. The backend sees an open (path,
query, address and the authenticated user) before the first message of a
session on each server, and a close when the session ends. A dead server's
lanes move to another server; an upstream with no live server drops the
message and the session goes on. A name that is not a mux or json
upstream is a configuration error at its line.
"""
import json
import socket
import sys
import time

import pytest

from backends import REFERENCE, Listener, backend_processes, dead_port
from support import HOST
from wsclient import OP_TEXT, WSClient

sys.path.insert(0, str(REFERENCE.parent))
import wsgate_proto as proto  # noqa: E402  (found through the line above)

TIMEOUT = 10.0
TOKEN = "t0k3n-alice-5b1f0c"

CONFIG = """\
worker_processes 1;
error_log logs/error.log info;
pid logs/wsgate.pid;
events { worker_connections 1024; }
server {
    listen 127.0.0.1:$port;
    location = /healthz { return 200 "ok\\n"; }
    location /r {
        auth_tokens_file tokens.txt;
        auth_token_from query;
        route $json.type {
            who     upstream svc hash $json.room;
            echo    upstream svc hash "room-$json.room";
            sticky  upstream svc;
            jwho    upstream js;
            tap     upstream tap;
            lost    upstream gone;
            ping    reply pong;
        }
    }
}
upstream svc { server %(a)s; server %(b)s; protocol mux; pool_size 1; }
upstream js { server %(c)s; protocol json; pool_size 1; }
upstream tap { server %(tap)s; protocol mux; pool_size 1; }
upstream gone { server 127.0.0.1:%(dead)d; protocol mux; pool_size 1; }
"""


@pytest.fixture
def backends(tmp_path, tmp_path_factory):
    yield from backend_processes(tmp_path, tmp_path_factory)


@pytest.fixture
def setup(gateway, backends, tmp_path):
    """The gateway of CONFIG with its backends: reference servers "a" and
    "b" (mux) and "c" (json), the test's own mux listener "tap", and a dead
    port. Returns (gateway, {name: backend}, the tap's link socket)."""
    (tmp_path / "tokens.txt").write_text(f"{TOKEN} alice\n")
    ref = {"a": backends.reference("mux", "a"), "b": backends.reference("mux", "b"),
           "c": backends.reference("json", "c")}
    dead_sock, dead = dead_port()
    with Listener() as tap, dead_sock:
        gw = gateway(CONFIG % {"a": ref["a"].address, "b": ref["b"].address,
                               "c": ref["c"].address, "tap": tap.address, "dead": dead})
        link = tap.accept()
        gw.wait_log(r'upstream "svc" server \S+ connected', count=2)
        gw.wait_log(r'upstream "js" server \S+ connected')
        yield gw, ref, link


def connect(gw, query=f"access_token={TOKEN}"):
    return WSClient.connect(gw.port, path=f"/r?{query}", timeout=TIMEOUT)


def ask(ws, **fields):
    """Sends the JSON object <fields> and returns the JSON reply."""
    ws.send_text(json.dumps(fields))
    opcode, payload = ws.recv_message(TIMEOUT)
    assert opcode == OP_TEXT
    return json.loads(payload)


def who(ws, room):
    return ask(ws, type="who", room=room, whoami=True)


# ---- the tap: the test as a mux backend --------------------------------------


class Tap:
    """Reads mux envelopes from the gateway's link to the test."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def recv(self, timeout=TIMEOUT):
        """The next envelope other than a heartbeat ping (answered)."""
        deadline = time.monotonic() + timeout
        while True:
            env, used = proto.decode_mux(self.buf)
            if env is not None:
                self.buf = self.buf[used:]
                if env.kind == proto.PING:
                    self.sock.sendall(proto.encode_mux(proto.Envelope.pong(env.data)))
                    continue
                return env
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no envelope within {timeout:g} s"
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            assert chunk, "the gateway closed the link"
            self.buf += chunk

    def send(self, env):
        self.sock.sendall(proto.encode_mux(env))


# ---- tests -------------------------------------------------------------------


def test_a_key_picks_one_server_and_the_backend_answers_the_session(setup):
    gw, _, _ = setup
    with connect(gw) as one, connect(gw) as two:
        placed = {}
        for i in range(24):
            room = f"room-{i}"
            first, second = who(one, room), who(two, room)
            assert first["server"] == second["server"], room
            placed[room] = first["server"]
            # what the open of the session's id said
            assert first["user"] == "alice"
            assert first["path"] == "/r"
            assert first["query"] == f"access_token={TOKEN}"
            assert first["remote"].startswith("127.0.0.1:")
        # 24 keys on a ring of two servers: both get some (1 - 2^-23)
        assert set(placed.values()) == {"a", "b"}
        # one id per server the session reaches, kept for its life
        ids = {}
        for room, server in placed.items():
            ids.setdefault(server, set()).add(who(one, room)["id"])
        assert all(len(v) == 1 for v in ids.values()), ids
        assert ids["a"] != ids["b"]


def test_messages_with_one_key_arrive_in_order(setup):
    gw, _, _ = setup
    with connect(gw) as ws:
        for n in range(200):
            ws.send_text(json.dumps({"type": "echo", "room": "lobby", "n": n}))
        for n in range(200):
            opcode, payload = ws.recv_message(TIMEOUT)
            assert opcode == OP_TEXT
            assert json.loads(payload) == {"type": "echo", "room": "lobby", "n": n}


def test_without_a_key_a_session_keeps_to_one_server(setup):
    gw, _, _ = setup
    servers = set()
    for _ in range(4):
        with connect(gw) as ws:
            seen = {(r["server"], r["id"])
                    for r in (ask(ws, type="sticky", whoami=True) for _ in range(8))}
            assert len(seen) == 1, seen
            servers |= {s for s, _ in seen}
    # round robin over the sessions: each server got some
    assert servers == {"a", "b"}


def test_a_json_upstream_takes_routed_messages(setup):
    gw, _, _ = setup
    with connect(gw) as ws:
        r = ask(ws, type="jwho", whoami=True)
        assert r["server"] == "c"
        assert r["user"] == "alice"
        assert ask(ws, type="jwho", text="h\u00e9llo") == {"type": "jwho", "text": "h\u00e9llo"}


def test_the_backend_sees_open_message_and_close_and_can_answer(setup):
    gw, _, link = setup
    tap = Tap(link)
    with connect(gw) as ws:
        ws.send_text('{"type":"tap","n":1}')
        opened = tap.recv()
        assert opened.kind == proto.OPEN
        assert opened.info["user"] == "alice"
        assert opened.info["path"] == "/r"
        msg = tap.recv()
        assert (msg.kind, msg.id, msg.data) == (proto.MESSAGE, opened.id, b'{"type":"tap","n":1}')
        tap.send(proto.Envelope.message(opened.id, "from the backend"))
        assert ws.recv_message(TIMEOUT) == (OP_TEXT, b"from the backend")
        # a second message: the same id, no second open
        ws.send_text('{"type":"tap","n":2}')
        msg = tap.recv()
        assert (msg.kind, msg.id) == (proto.MESSAGE, opened.id)
        ws.send_close(1000)
        ws.recv_close(TIMEOUT)
        closed = tap.recv()
        assert (closed.kind, closed.id, closed.code) == (proto.CLOSE, opened.id, 1000)


def test_a_dead_upstream_drops_the_message_and_the_session_goes_on(setup):
    gw, _, _ = setup
    with connect(gw) as ws:
        ws.send_text('{"type":"lost"}')
        ws.send_text('{"type":"ping"}')
        assert ws.recv_message(TIMEOUT) == (OP_TEXT, b"pong")
    gw.wait_log(r'upstream "gone" server \S+: 1 messages dropped '
                r'\(no server has a live connection\)')


def test_a_dead_servers_keys_move_to_the_other(setup):
    gw, ref, _ = setup
    with connect(gw) as ws:
        placed = {f"k{i}": who(ws, f"k{i}")["server"] for i in range(16)}
        assert set(placed.values()) == {"a", "b"}
        ref["a"].stop()
        gw.wait_log(r'upstream "svc" server \S+: closed the connection')
        for room in placed:
            assert who(ws, room)["server"] == "b", room


def test_the_upstream_block_may_follow_its_route(wsgate, tmp_path):
    path = tmp_path / "wsgate.conf"
    path.write_text("events { worker_connections 64; }\nserver {\n"
                    "    listen 127.0.0.1:8080;\n    location /r {\n"
                    "        route $json.type { a upstream later hash $json.k; }\n"
                    "    }\n}\n"
                    "upstream later { server 127.0.0.1:9; protocol json; }\n")
    r = wsgate("-p", f"{tmp_path}/", "-c", str(path), "-t")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("action, message", [
    ("upstream nowhere", 'unknown upstream "nowhere"'),
    ("upstream perclient", 'upstream "perclient" speaks line; messages are routed '
     'only to mux and json upstreams'),
    ("upstream pooled hash", 'invalid arguments of "upstream" in route "a", '
     'expecting "upstream NAME [hash KEY]"'),
    ("upstream pooled ring $json.k", 'invalid arguments of "upstream" in route "a", '
     'expecting "upstream NAME [hash KEY]"'),
    ("upstream pooled hash $json.", 'expression "$json." in route "a" needs a path '
     'after "$json"'),
    ("upstream", 'invalid number of arguments of "upstream" in route "a"'),
])
def test_configuration_errors_name_the_routes_line(wsgate, tmp_path, action, message):
    path = tmp_path / "wsgate.conf"
    path.write_text("events { worker_connections 64; }\n"
                    "upstream perclient { server 127.0.0.1:9; protocol line; }\n"
                    "upstream pooled { server 127.0.0.1:9; protocol mux; }\n"
                    "server {\n    listen 127.0.0.1:8080;\n    location /r {\n"
                    "        route $json.type {\n"
                    f"            a {action};\n"
                    "        }\n    }\n}\n")
    r = wsgate("-p", f"{tmp_path}/", "-c", str(path), "-t")
    assert r.returncode == 1, r.stderr
    assert r.stderr.splitlines()[0] == f"wsgate: [emerg] {path}:8: {message}", r.stderr
