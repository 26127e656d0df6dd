"""
The router module's "route" block: each action (deliver user, subscribe,
unsubscribe, publish, reply, drop, close) on two workers; the default
route, "\\default" for the value "default", and values with no route going
on to the next module (the echo, or chat), or discarded where a route is
all the location has; expressions over nested fields, array elements,
numbers, booleans, $user, $remote_addr and several parts; non-JSON messages going
on, or dropped with route_non_json drop; and every configuration error
placed at its line.
"""
import asyncio
import json

import pytest
import websockets

CONFIG = r"""
worker_processes 2;
error_log logs/error.log info;
pid logs/wsgate.pid;
events { worker_connections 1024; }
server {
    listen 127.0.0.1:$port reuseport;
    location = /healthz { return 200 "ok\n"; }
    location /r {
        route $json.type {
            join    subscribe $json.room;
            leave   unsubscribe $json.room;
            say     publish $json.room;
            ping    reply '{"type":"pong"}';
            spam    drop;
            quit    close 4000 "bye now";
            \default reply "the value default";
            default reply '{"type":"error","error":"unknown type"}';
        }
    }
    location /chat {
        route $json.type {
            dm      deliver user $json.to;
            fanout  deliver user "$json.prefix$json.n";
            ping    reply pong;
        }
        chat on;
    }
    location /echo {
        route "${json.a.b}" {
            x       reply 'a.b is x';
            42      reply 'forty-two';
            1.5     reply 'one and a half';
            true    reply 'yes';
            first   reply 'first element';
        }
        websocket_echo on;
    }
    location /items {
        route $json.items.0 { first reply 'first element'; }
        websocket_echo on;
    }
    location /who {
        route "$remote_addr/$json.op" { 127.0.0.1/where reply 'local'; }
        websocket_echo on;
    }
    location /me {
        route $user { alice reply 'hi alice'; }
        chat on;
    }
    location /bare {
        route $json.type { ping reply pong; }
    }
    location /strict {
        route $json.type { ping reply pong; }
        route_non_json drop;
        websocket_echo on;
    }
}
"""

TIMEOUT = 10
QUIET = 0.4


async def connect(gw, path):
    return await websockets.connect(f"ws://127.0.0.1:{gw.port}{path}", open_timeout=5,
                                    close_timeout=3, ping_interval=None, compression=None,
                                    max_size=None)


async def recv(ws):
    return await asyncio.wait_for(ws.recv(), TIMEOUT)


async def ask(ws, msg):
    await ws.send(msg if isinstance(msg, (str, bytes)) else json.dumps(msg))
    return await recv(ws)


async def quiet(ws, seconds=QUIET):
    try:
        m = await asyncio.wait_for(ws.recv(), seconds)
    except asyncio.TimeoutError:
        return
    raise AssertionError(f"unexpected message {m[:200]!r}")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def close_all(clients):
    await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)


# ---- actions ----

def test_reply_sends_the_configured_text(gateway):
    gw = gateway(CONFIG)

    async def talk():
        ws = await connect(gw, "/r")
        assert await ask(ws, {"type": "ping"}) == '{"type":"pong"}'
        assert await ask(ws, {"type": "ping", "extra": [1, 2]}) == '{"type":"pong"}'
        await ws.close()

    run(talk())


def test_drop_swallows_the_message_and_keeps_the_session(gateway):
    gw = gateway(CONFIG)

    async def talk():
        ws = await connect(gw, "/r")
        await ws.send(json.dumps({"type": "spam"}))
        # messages are handled in order: the pong proves the spam is gone
        assert await ask(ws, {"type": "ping"}) == '{"type":"pong"}'
        await quiet(ws)
        await ws.close()

    run(talk())


def test_close_ends_the_session_with_its_code_and_reason(gateway):
    gw = gateway(CONFIG)

    async def talk():
        ws = await connect(gw, "/r")
        await ws.send(json.dumps({"type": "quit"}))
        with pytest.raises(websockets.ConnectionClosed):
            await recv(ws)
        return ws.close_code, ws.close_reason

    assert run(talk()) == (4000, "bye now")


def test_default_route_and_the_value_default(gateway):
    gw = gateway(CONFIG)

    async def talk():
        ws = await connect(gw, "/r")
        unknown = '{"type":"error","error":"unknown type"}'
        assert await ask(ws, {"type": "shout"}) == unknown
        # no value at all (no field, null, an object) takes the default too
        assert await ask(ws, {"kind": "ping"}) == unknown
        assert await ask(ws, {"type": None}) == unknown
        assert await ask(ws, {"type": {"a": 1}}) == unknown
        assert await ask(ws, {"type": "default"}) == "the value default"
        await ws.close()

    run(talk())


def test_subscribe_publish_unsubscribe_across_workers(gateway):
    gw = gateway(CONFIG)

    async def talk():
        clients = [await connect(gw, "/r") for _ in range(8)]
        for ws in clients:
            await ws.send(json.dumps({"type": "join", "room": "r1"}))
        # a join is not answered: a ping after it proves it was handled
        for ws in clients:
            assert await ask(ws, {"type": "ping"}) == '{"type":"pong"}'
        sender = clients[0]
        said = json.dumps({"type": "say", "room": "r1", "text": "hi", "n": 1})
        await sender.send(said)
        for ws in clients[1:]:
            assert await recv(ws) == said  # the message as sent, byte for byte
        await quiet(sender)

        leaver = clients[1]
        await leaver.send(json.dumps({"type": "leave", "room": "r1"}))
        assert await ask(leaver, {"type": "ping"}) == '{"type":"pong"}'
        await sender.send(said)
        for ws in clients[2:]:
            assert await recv(ws) == said
        await quiet(leaver)
        await close_all(clients)

    run(talk())


def test_deliver_sends_the_message_to_a_users_sessions(gateway):
    gw = gateway(CONFIG)

    async def talk():
        # users come from chat's hello: "hello" has no route, so it goes on
        alice = await connect(gw, "/chat")
        bobs = [await connect(gw, "/chat") for _ in range(2)]
        assert json.loads(await ask(alice, {"type": "hello", "user": "alice"}))["type"] == "welcome"
        assert json.loads(await ask(bobs[0], {"type": "hello", "user": "bob"}))["type"] == "welcome"
        # a second "bob" session is refused by chat: make bob2 instead
        assert json.loads(await ask(bobs[1], {"type": "hello", "user": "bob2"}))["type"] == "welcome"
        dm = json.dumps({"type": "dm", "to": "bob", "text": "hi", "from": "anyone"})
        await alice.send(dm)
        assert await recv(bobs[0]) == dm
        await quiet(bobs[1])

        # a target built from two fields
        await alice.send(json.dumps({"type": "fanout", "prefix": "bob", "n": 2}))
        assert json.loads(await recv(bobs[1]))["type"] == "fanout"

        # an offline user, a missing target: dropped, and nothing else
        await alice.send(json.dumps({"type": "dm", "to": "ghost"}))
        await alice.send(json.dumps({"type": "dm"}))
        await alice.send(json.dumps({"type": "fanout", "prefix": "bob"}))
        assert await ask(alice, {"type": "ping"}) == "pong"
        await quiet(alice)
        await quiet(bobs[0])
        await close_all([alice, *bobs])

    run(talk())


def test_what_could_not_be_done_is_logged_at_debug_level(gateway):
    gw = gateway(CONFIG.replace("error_log logs/error.log info;",
                                "error_log logs/error.log debug;"))

    async def talk():
        alice = await connect(gw, "/chat")
        assert json.loads(await ask(alice, {"type": "hello", "user": "alice"}))["type"] == "welcome"
        await alice.send(json.dumps({"type": "dm", "to": "ghost"}))
        await alice.send(json.dumps({"type": "dm"}))
        assert await ask(alice, {"type": "ping"}) == "pong"
        r = await connect(gw, "/r")
        await r.send(json.dumps({"type": "say", "room": "nobody-here"}))
        await r.send(json.dumps({"type": "join", "room": "x" * 121}))
        assert await ask(r, {"type": "ping"}) == '{"type":"pong"}'
        await close_all([alice, r])

    run(talk())
    for what in ['route "dm" names a user online nowhere',
                 'route "dm" has no target',
                 'route "say" names a room without members',
                 'route "join" names a room the session cannot join']:
        gw.wait_log(rf"\[debug\] .*module router: {what}, message dropped")


# ---- what goes on to the next module ----

def test_values_without_a_route_go_on_to_the_next_module(gateway):
    gw = gateway(CONFIG)

    async def talk():
        ws = await connect(gw, "/echo")
        for msg in [{"a": {"b": "y"}}, {"a": "b"}, {"x": 1}, {"a": {"b": [1]}}]:
            text = json.dumps(msg)
            assert await ask(ws, text) == text
        chat = await connect(gw, "/chat")
        answer = json.loads(await ask(chat, {"type": "who", "room": "r"}))
        assert answer == {"type": "error", "error": "say hello first"}
        await close_all([ws, chat])

    run(talk())


def test_non_json_goes_on_by_default(gateway):
    gw = gateway(CONFIG)

    async def talk():
        ws = await connect(gw, "/echo")
        for msg in ["not json", "[1,2]", "42", '"a string"', b"\x00binary"]:
            assert await ask(ws, msg) == msg
        await ws.close()

    run(talk())


def test_route_non_json_drop(gateway):
    gw = gateway(CONFIG)

    async def talk():
        ws = await connect(gw, "/strict")
        for msg in ["not json", "[1,2]", "null", b"\x00binary"]:
            await ws.send(msg)
        assert await ask(ws, {"type": "ping"}) == "pong"
        await quiet(ws)
        # JSON objects without a route still go on
        text = json.dumps({"type": "other"})
        assert await ask(ws, text) == text
        await ws.close()

    run(talk())


def test_a_route_alone_makes_an_endpoint_that_discards_the_rest(gateway):
    gw = gateway(CONFIG)

    async def talk():
        ws = await connect(gw, "/bare")
        for msg in [json.dumps({"type": "other"}), "not json", b"\x01"]:
            await ws.send(msg)
        assert await ask(ws, {"type": "ping"}) == "pong"
        await quiet(ws)
        await ws.close()

    run(talk())


# ---- expressions ----

def test_expressions_over_nested_fields_numbers_and_booleans(gateway):
    gw = gateway(CONFIG)

    async def talk():
        ws = await connect(gw, "/echo")
        cases = [({"a": {"b": "x"}}, "a.b is x"),
                 ({"a": {"b": 42}}, "forty-two"),
                 ({"a": {"b": 1.5}}, "one and a half"),
                 ({"a": {"b": True}}, "yes")]
        for msg, answer in cases:
            assert await ask(ws, msg) == answer, msg
        items = await connect(gw, "/items")
        assert await ask(items, {"items": ["first", "second"]}) == "first element"
        other = json.dumps({"items": ["second", "first"]})
        assert await ask(items, other) == other
        await close_all([ws, items])

    run(talk())


def test_user_routes_once_the_session_has_one(gateway):
    gw = gateway(CONFIG)

    async def talk():
        ws = await connect(gw, "/me")
        # no user yet: no value, no default, so chat gets the hello
        welcome = json.loads(await ask(ws, {"type": "hello", "user": "alice"}))
        assert welcome == {"type": "welcome", "user": "alice"}
        assert await ask(ws, {"type": "who", "room": "r"}) == "hi alice"
        await ws.close()

    run(talk())


def test_remote_addr_and_parts_in_one_expression(gateway):
    gw = gateway(CONFIG)

    async def talk():
        ws = await connect(gw, "/who")
        assert await ask(ws, {"op": "where"}) == "local"
        other = json.dumps({"op": "else"})
        assert await ask(ws, other) == other
        await ws.close()

    run(talk())


# ---- configuration ----

def config_test(wsgate, tmp_path, body, location="location /r"):
    path = tmp_path / "router.conf"
    path.write_text("events { worker_connections 64; }\n"
                    "server {\n"
                    "    listen 127.0.0.1:8080;\n"
                    f"    {location} {{\n"
                    f"{body}"
                    "    }\n"
                    "}\n")
    return path, wsgate("-p", f"{tmp_path}/", "-c", str(path), "-t")


def failed_at(r, path, line, message):
    assert r.returncode == 1, r.stderr
    first = r.stderr.splitlines()[0]
    assert first == f"wsgate: [emerg] {path}:{line}: {message}", r.stderr


@pytest.mark.parametrize("body, line, message", [
    ("route $json.type {\n ping frobnicate;\n}\n", 6,
     'unknown action "frobnicate" in route "ping"'),
    ("route $json.type {\n ping;\n}\n", 6, 'route "ping" has no action'),
    ("route $json.type {\n ping reply;\n}\n", 6,
     'invalid number of arguments of "reply" in route "ping"'),
    ("route $json.type {\n spam drop now;\n}\n", 6,
     'invalid number of arguments of "drop" in route "spam"'),
    ("route $json.type {\n dm deliver $json.to;\n}\n", 6,
     'invalid number of arguments of "deliver" in route "dm"'),
    ("route $json.type {\n dm deliver room $json.to;\n}\n", 6,
     'unknown target "room" of "deliver" in route "dm", expecting "user"'),
    ("route $json.type {\n a drop;\n b drop;\n a reply x;\n}\n", 8,
     'duplicate route "a"'),
    ("route $json.type {\n default drop;\n default drop;\n}\n", 7,
     'duplicate route "default"'),
    ("route $json.type {\n q close 999;\n}\n", 6,
     'invalid close code "999" in route "q", expecting 1000-1003, 1007-1014 '
     'or 3000-4999'),
    ("route $json.type {\n q close 1005;\n}\n", 6,
     'invalid close code "1005" in route "q", expecting 1000-1003, 1007-1014 '
     'or 3000-4999'),
    ("route $json.type {\n q close 4000x;\n}\n", 6,
     'invalid close code "4000x" in route "q", expecting 1000-1003, 1007-1014 '
     'or 3000-4999'),
    ("route $json.type {\n q close 4000 '" + "r" * 124 + "';\n}\n", 6,
     'close reason in route "q" is over 123 bytes or not UTF-8'),
    ("route $json.type {\n j subscribe $json.;\n}\n", 6,
     'expression "$json." in route "j" needs a path after "$json"'),
    ("route $json.type {\n j subscribe '${json.room';\n}\n", 6,
     'expression "${json.room" in route "j" has a "${" without its "}"'),
    ("route $typ {\n}\n", 5, '"route" directive expression "$typ" has an unknown variable'),
    ("route $json.type {\n}\nroute $json.kind {\n}\n", 7, '"route" directive is duplicate'),
    ("route $json.type;\n", 5, 'directive "route" has no opening "{"'),
    ("route $json.type {\n ping reply pong { }\n}\n", 6, 'unexpected "{" after "ping"'),
    ("route $json.type {\n ping reply pong;\n", 9, 'unexpected end of file, expecting "}"'),
    ("route_non_json maybe;\n", 5,
     '"route_non_json" directive invalid value "maybe", expecting "next" or "drop"'),
])
def test_configuration_errors_name_their_line(wsgate, tmp_path, body, line, message):
    path, r = config_test(wsgate, tmp_path, body)
    failed_at(r, path, line, message)


@pytest.mark.parametrize("line, message", [
    (b" p reply '\xff';\n", 'reply in route "p" is not UTF-8'),
    (b" q close 1000 '\xc3';\n", 'close reason in route "q" is over 123 bytes or not UTF-8'),
])
def test_text_that_is_not_utf8_is_refused(wsgate, tmp_path, line, message):
    path = tmp_path / "router.conf"
    path.write_bytes(b"events { worker_connections 64; }\nserver {\n"
                     b"    listen 127.0.0.1:8080;\n    location /r {\n"
                     b"route $json.type {\n" + line + b"}\n    }\n}\n")
    r = wsgate("-p", f"{tmp_path}/", "-c", str(path), "-t")
    failed_at(r, path, 6, message)


def test_route_is_not_allowed_in_server(wsgate, tmp_path):
    path = tmp_path / "router.conf"
    path.write_text("events { worker_connections 64; }\n"
                    "server {\n    listen 127.0.0.1:8080;\n"
                    "    route $json.type {\n    }\n}\n")
    r = wsgate("-p", f"{tmp_path}/", "-c", str(path), "-t")
    failed_at(r, path, 4, '"route" directive is not allowed in the server context')


def test_a_route_with_every_action_is_accepted(wsgate, tmp_path):
    body = ("route \"$json.type:$user\" {\n"
            " dm deliver user '${json.to}';\n j subscribe room-$json.room;\n"
            " l unsubscribe room-$json.room;\n s publish $json.room;\n"
            " p reply '{\"type\":\"pong\"}';\n x drop;\n q close 1000;\n"
            " q2 close 4999 'gone \u00e9';\n \\default drop;\n default drop;\n}\n"
            "route_non_json drop;\n")
    path, r = config_test(wsgate, tmp_path, body)
    assert r.returncode == 0, r.stderr
