"""
The chat module ("chat on;") with four workers, so users land on
different workers and everything crosses the worker bus: every pair of 40
users exchanges one dm and each is delivered exactly once; a room of 200
members gets every message of each sender once and in order, and the
sender none of its own; who and online see users of every worker; errors
name what is wrong (no such user, not in room, say hello first, invalid
field, not a JSON object) and never end the session, even after 1000
random messages; a 100 KiB image is delivered byte-exact after a notice,
to a user and to a room, and one of chat_max_message bytes to every
worker while one byte more is refused; the "from" of every delivery is
the sender's user, whatever the client wrote; names, anonymous use and
the directives' inheritance and errors are checked.
"""
import asyncio
import json
import os
import random
import signal

import pytest
import websockets

from support import open_files, server_side_inode, wait_until

CONFIG = """\
worker_processes 4;
error_log logs/error.log info;
pid logs/wsgate.pid;
events { worker_connections 4096; }
server {
    listen 127.0.0.1:$port reuseport;
    location = /healthz { return 200 "ok\\n"; }
    location /chat { chat on; }
    location /closed { chat on; chat_anonymous off; }
    location /echo { websocket_echo on; }
}
"""

TIMEOUT = 20
QUIET = 0.5  # seconds without a message that count as "nothing more"


async def connect(gw, path="/chat"):
    return await websockets.connect(f"ws://127.0.0.1:{gw.port}{path}", open_timeout=5,
                                    close_timeout=3, ping_interval=None, compression=None,
                                    max_size=None, max_queue=None)


async def send(ws, **msg):
    await ws.send(json.dumps(msg))


async def recv(ws, timeout=TIMEOUT):
    """The next message: a dict for text (JSON), bytes for binary."""
    m = await asyncio.wait_for(ws.recv(), timeout)
    return json.loads(m) if isinstance(m, str) else m


async def ask(ws, **msg):
    """Sends <msg> and returns the answer."""
    await send(ws, **msg)
    return await recv(ws)


async def quiet(ws, seconds=QUIET):
    """Asserts that nothing arrives for <seconds>."""
    try:
        m = await asyncio.wait_for(ws.recv(), seconds)
    except asyncio.TimeoutError:
        return
    raise AssertionError(f"unexpected message {m[:200]!r}")


async def user(gw, name, path="/chat"):
    ws = await connect(gw, path)
    assert await ask(ws, type="hello", user=name) == {"type": "welcome", "user": name}
    return ws


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


def workers_holding(gw, clients):
    """The set of worker pids holding the server side of <clients>."""
    files = {pid: set(open_files(pid)) for pid in gw.worker_pids()}
    held = set()
    for ws in clients:
        sock = ws.transport.get_extra_info("socket")
        target = f"socket:[{server_side_inode(sock)}]"
        held.update(pid for pid, fds in files.items() if target in fds)
    return held


async def close_all(clients):
    await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)


# ---- identity ----

def test_hello_names_the_session_once(gateway):
    gw = gateway(CONFIG)

    async def talk():
        ws = await connect(gw)
        assert await ask(ws, type="dm", to="bob", text="hi") == {
            "type": "error", "error": "say hello first"}
        await ws.send(b"\x00\x01")
        assert await recv(ws) == {"type": "error", "error": "say hello first"}
        for bad in ["", "x" * 65, "a b", "\u00e9", "a/b", 7, None]:
            assert await ask(ws, type="hello", user=bad) == {
                "type": "error", "error": "invalid field", "field": "user"}, bad
        assert await ask(ws, type="hello") == {
            "type": "error", "error": "invalid field", "field": "user"}
        name = "A-z_0.9" + "x" * 57
        assert await ask(ws, type="hello", user=name) == {"type": "welcome", "user": name}
        assert await ask(ws, type="hello", user="other") == {
            "type": "error", "error": "already identified"}

        twin = await connect(gw)
        assert await ask(twin, type="hello", user=name) == {
            "type": "error", "error": "user name taken", "user": name}
        await close_all([ws, twin])

    run(talk())


def test_a_name_is_free_again_when_its_session_ends(gateway):
    gw = gateway(CONFIG)

    async def talk():
        first = await user(gw, "alice")
        await first.close()
        second = await connect(gw)

        async def welcomed():
            answer = await ask(second, type="hello", user="alice")
            return answer if answer["type"] == "welcome" else None

        deadline = asyncio.get_running_loop().time() + 5
        while await welcomed() is None:
            assert asyncio.get_running_loop().time() < deadline, "alice stayed online"
            await asyncio.sleep(0.05)
        await second.close()

    run(talk())


def test_chat_anonymous_off_refuses_hello(gateway):
    gw = gateway(CONFIG)

    async def talk():
        ws = await connect(gw, "/closed")
        assert await ask(ws, type="hello", user="alice") == {
            "type": "error", "error": "anonymous users not allowed"}
        assert await ask(ws, type="who", room="r") == {
            "type": "error", "error": "say hello first"}
        await ws.close()

    run(talk())


# ---- direct messages across workers ----

def test_every_pair_of_40_users_exchanges_one_dm_exactly_once(gateway):
    gw = gateway(CONFIG)
    names = [f"user{i:02d}" for i in range(40)]

    async def talk():
        clients = await asyncio.gather(*(user(gw, n) for n in names))
        assert len(workers_holding(gw, clients)) >= 2, "all users on one worker"

        async def send_all(i, ws):
            for j, to in enumerate(names):
                if j != i:
                    await send(ws, type="dm", to=to, text=f"{names[i]}->{to}")

        async def receive_all(ws):
            return [await recv(ws) for _ in range(len(names) - 1)]

        receivers = [asyncio.ensure_future(receive_all(ws)) for ws in clients]
        await asyncio.gather(*(send_all(i, ws) for i, ws in enumerate(clients)))
        received = await asyncio.gather(*receivers)
        for i, msgs in enumerate(received):
            me = names[i]
            expected = sorted((n, f"{n}->{me}") for n in names if n != me)
            assert all(m["type"] == "dm" and set(m) == {"type", "from", "text"} for m in msgs)
            assert sorted((m["from"], m["text"]) for m in msgs) == expected
        # exactly once: nothing more arrives anywhere
        await asyncio.gather(*(quiet(ws) for ws in clients))
        await close_all(clients)

    run(talk())


def test_dms_from_one_sender_arrive_in_order(gateway):
    gw = gateway(CONFIG)

    async def talk():
        clients = [await user(gw, f"u{i}") for i in range(8)]
        sender, targets = clients[0], clients[1:]
        for n in range(100):
            for t in range(1, 8):
                await send(sender, type="dm", to=f"u{t}", text=str(n))
        for ws in targets:
            got = [await recv(ws) for _ in range(100)]
            assert [int(m["text"]) for m in got] == list(range(100))
        await close_all(clients)

    run(talk())


# ---- rooms ----

def test_room_of_200_gets_each_senders_messages_once_in_order(gateway):
    gw = gateway(CONFIG)
    count = 50

    async def talk():
        clients = []
        for batch in range(4):
            clients += await asyncio.gather(
                *(user(gw, f"m{batch * 50 + i:03d}") for i in range(50)))
        answers = await asyncio.gather(*(ask(ws, type="join", room="big") for ws in clients))
        assert all(a == {"type": "joined", "room": "big"} for a in answers)
        assert len(workers_holding(gw, clients)) >= 2, "all members on one worker"
        senders = clients[:2]

        async def say_all(ws, who):
            for n in range(count):
                await send(ws, type="say", room="big", text=f"{who}:{n}")

        async def receive(ws, expected):
            return [await recv(ws) for _ in range(expected)]

        receivers = [asyncio.ensure_future(receive(ws, count if i < 2 else 2 * count))
                     for i, ws in enumerate(clients)]
        await asyncio.gather(say_all(senders[0], "m000"), say_all(senders[1], "m001"))
        received = await asyncio.gather(*receivers)
        for i, msgs in enumerate(received):
            assert all(m["type"] == "say" and m["room"] == "big" for m in msgs)
            for who in ("m000", "m001"):
                mine = [m["text"] for m in msgs if m["from"] == who]
                if who == f"m{i:03d}":
                    assert mine == [], "a sender got its own message back"
                else:
                    assert mine == [f"{who}:{n}" for n in range(count)], (i, who)
        await asyncio.gather(*(quiet(ws) for ws in clients))
        await close_all(clients)

    run(talk())


def test_join_leave_and_say(gateway):
    gw = gateway(CONFIG)

    async def talk():
        alice, bob, carol = [await user(gw, n) for n in ("alice", "bob", "carol")]
        for ws in (alice, bob, carol):
            assert await ask(ws, type="join", room="r1") == {"type": "joined", "room": "r1"}
        # joining twice is one membership
        assert await ask(bob, type="join", room="r1") == {"type": "joined", "room": "r1"}
        await send(alice, type="say", room="r1", text="one")
        for ws in (bob, carol):
            assert await recv(ws) == {"type": "say", "room": "r1", "from": "alice",
                                      "text": "one"}
        assert await ask(carol, type="leave", room="r1") == {"type": "left", "room": "r1"}
        # leaving a room one is not in is answered the same
        assert await ask(carol, type="leave", room="r1") == {"type": "left", "room": "r1"}
        await send(alice, type="say", room="r1", text="two")
        assert (await recv(bob))["text"] == "two"
        await quiet(carol)
        await quiet(alice)
        await close_all([alice, bob, carol])

    run(talk())


def test_who_and_online_see_every_worker(gateway):
    gw = gateway(CONFIG)

    async def talk():
        names = [f"w{i}" for i in range(12)]
        clients = [await user(gw, n) for n in names]
        assert len(workers_holding(gw, clients)) >= 2
        for ws in clients[:8]:
            assert (await ask(ws, type="join", room="lobby"))["type"] == "joined"
        observer = clients[11]
        answer = await ask(observer, type="who", room="lobby")
        assert answer["type"] == "who" and answer["room"] == "lobby"
        assert sorted(answer["users"]) == names[:8]
        assert await ask(observer, type="who", room="empty") == {
            "type": "who", "room": "empty", "users": []}
        for n in names:
            assert await ask(observer, type="online", user=n) == {
                "type": "online", "user": n, "online": True}
        assert await ask(observer, type="online", user="nobody") == {
            "type": "online", "user": "nobody", "online": False}

        await clients[0].close()

        async def gone():
            a = await ask(observer, type="online", user="w0")
            w = await ask(observer, type="who", room="lobby")
            return not a["online"] and sorted(w["users"]) == names[1:8]

        deadline = asyncio.get_running_loop().time() + 5
        while not await gone():
            assert asyncio.get_running_loop().time() < deadline, "w0 stayed listed"
            await asyncio.sleep(0.05)
        await close_all(clients[1:])

    run(talk())


# ---- errors ----

def test_errors_name_the_problem_and_keep_the_session(gateway):
    gw = gateway(CONFIG)

    async def talk():
        alice = await user(gw, "alice")
        bob = await user(gw, "bob")
        assert await ask(alice, type="dm", to="ghost", text="hi") == {
            "type": "error", "error": "no such user", "to": "ghost"}
        assert await ask(alice, type="say", room="r1", text="hi") == {
            "type": "error", "error": "not in room", "room": "r1"}
        assert await ask(alice, type="image", room="r1") == {
            "type": "error", "error": "not in room", "room": "r1"}
        await alice.send("not json")
        assert await recv(alice) == {"type": "error", "error": "not a JSON object"}
        await alice.send("[1, 2]")
        assert await recv(alice) == {"type": "error", "error": "not a JSON object"}
        await alice.send('{"type": "dm", "type": "say"}')
        assert await recv(alice) == {"type": "error", "error": "not a JSON object"}
        assert await ask(alice, type=5) == {
            "type": "error", "error": "invalid field", "field": "type"}
        assert await ask(alice, kind="dm") == {
            "type": "error", "error": "invalid field", "field": "type"}
        assert await ask(alice, type="shout") == {"type": "error", "error": "unknown type"}
        for msg, field in [({"type": "dm", "to": "bob"}, "text"),
                           ({"type": "dm", "to": "bob", "text": 5}, "text"),
                           ({"type": "dm", "text": "hi"}, "to"),
                           ({"type": "dm", "to": "b b", "text": "hi"}, "to"),
                           ({"type": "dm", "to": "b" * 65, "text": "hi"}, "to"),
                           ({"type": "join"}, "room"),
                           ({"type": "join", "room": ""}, "room"),
                           ({"type": "join", "room": "r" * 121}, "room"),
                           ({"type": "join", "room": "a\nb"}, "room"),
                           ({"type": "join", "room": ["r"]}, "room"),
                           ({"type": "say", "room": "r1"}, "text"),
                           ({"type": "who"}, "room"),
                           ({"type": "online"}, "user"),
                           ({"type": "image"}, "room"),
                           ({"type": "image", "to": 1}, "to")]:
            assert await ask(alice, **msg) == {
                "type": "error", "error": "invalid field", "field": field}, msg
        await alice.send(b"\x89PNG")
        assert await recv(alice) == {"type": "error", "error": "no image target"}
        assert await ask(alice, type="join", room="r" * 120) == {
            "type": "joined", "room": "r" * 120}
        for n in range(63):
            assert (await ask(alice, type="join", room=f"room{n}"))["type"] == "joined"
        assert await ask(alice, type="join", room="one-too-many") == {
            "type": "error", "error": "too many rooms", "room": "one-too-many"}
        # the session is fine after all of that
        await send(alice, type="dm", to="bob", text="still here")
        assert await recv(bob) == {"type": "dm", "from": "alice", "text": "still here"}
        await quiet(bob)
        await close_all([alice, bob])

    run(talk())


def test_random_messages_get_answers_and_never_break_the_session(gateway):
    gw = gateway(CONFIG)
    rng = random.Random(6455)
    values = [None, True, 0, -1, 1.5, "", "bob", "r1", "x" * 300, "\u00e9", [], ["bob"],
              {}, {"to": "bob"}]
    keys = ["type", "to", "room", "text", "user", "from"]
    types = ["hello", "dm", "join", "leave", "say", "who", "online", "image", "x"]

    def message():
        msg = {k: rng.choice(values) for k in rng.sample(keys, rng.randint(0, len(keys)))}
        if rng.random() < 0.8:
            msg["type"] = rng.choice(types)
        return json.dumps(msg)

    async def talk():
        alice, bob = await user(gw, "alice"), await user(gw, "bob")
        await ask(bob, type="join", room="r1")
        for _ in range(1000):
            await alice.send(message() if rng.random() < 0.9 else os.urandom(rng.randint(0, 64)))
        # whatever those did, the session still works: the answer to this
        # comes after at most one answer per message before it
        await send(alice, type="online", user="bob")
        probe = {"type": "online", "user": "bob", "online": True}
        for _ in range(1001):
            answer = await recv(alice)
            if answer == probe:
                break
            assert isinstance(answer, dict) and answer["type"] in (
                "error", "welcome", "joined", "left", "who", "online"), answer
        else:
            raise AssertionError("no answer to the probe")
        await close_all([alice, bob])

    run(talk())


# ---- images ----

def test_image_is_delivered_byte_exact_to_a_user_and_a_room(gateway):
    gw = gateway(CONFIG)
    image = os.urandom(100 * 1024)

    async def talk():
        names = [f"p{i}" for i in range(10)]
        clients = [await user(gw, n) for n in names]
        assert len(workers_holding(gw, clients)) >= 2
        alice, bob = clients[0], clients[1]

        await send(alice, type="image", to="p1")
        await alice.send(image)
        assert await recv(bob) == {"type": "image", "from": "p0", "to": "p1",
                                   "size": len(image)}
        got = await recv(bob)
        assert isinstance(got, bytes) and got == image

        for ws in clients:
            assert (await ask(ws, type="join", room="pics"))["type"] == "joined"
        await send(alice, type="image", room="pics")
        await alice.send(image)
        for ws in clients[1:]:
            assert await recv(ws) == {"type": "image", "from": "p0", "room": "pics",
                                      "size": len(image)}
            got = await recv(ws)
            assert isinstance(got, bytes) and got == image
        await quiet(alice)

        # the target serves one binary message only
        await alice.send(image)
        assert await recv(alice) == {"type": "error", "error": "no image target"}
        # a target gone offline is an error
        await send(alice, type="image", to="ghost")
        await alice.send(b"\x00")
        assert await recv(alice) == {"type": "error", "error": "no such user", "to": "ghost"}
        # a room left before the data is an error
        await send(alice, type="image", room="pics")
        assert (await ask(alice, type="leave", room="pics"))["type"] == "left"
        await alice.send(b"\x00")
        assert await recv(alice) == {"type": "error", "error": "not in room", "room": "pics"}
        await asyncio.gather(*(quiet(ws) for ws in clients))
        await close_all(clients)

    run(talk())


def test_messages_over_chat_max_message_are_refused(gateway):
    gw = gateway(CONFIG)
    limit = 256 * 1024
    image = os.urandom(limit)

    async def talk():
        clients = [await user(gw, f"q{i}") for i in range(10)]
        assert len(workers_holding(gw, clients)) >= 2
        for ws in clients:
            assert (await ask(ws, type="join", room="big"))["type"] == "joined"
        sender = clients[0]
        # the largest image reaches members on every worker
        await send(sender, type="image", room="big")
        await sender.send(image)
        for ws in clients[1:]:
            assert (await recv(ws))["size"] == limit
            assert await recv(ws) == image
        # one byte more is refused, and uses the target up
        await send(sender, type="image", room="big")
        await sender.send(image + b"!")
        assert await recv(sender) == {"type": "error", "error": "message too large",
                                      "max": limit}
        await sender.send(b"small")
        assert await recv(sender) == {"type": "error", "error": "no image target"}
        await sender.send(json.dumps({"type": "say", "room": "big", "text": "x" * limit}))
        assert await recv(sender) == {"type": "error", "error": "message too large",
                                      "max": limit}
        await asyncio.gather(*(quiet(ws) for ws in clients))
        await close_all(clients)

    run(talk())


# ---- spoofing and escaping ----

def test_from_is_always_the_senders_user(gateway):
    gw = gateway(CONFIG)

    async def talk():
        alice, bob = await user(gw, "alice"), await user(gw, "bob")
        await send(alice, type="dm", to="bob", text="hi", **{"from": "carol"}, admin=True)
        assert await recv(bob) == {"type": "dm", "from": "alice", "text": "hi"}
        for ws in (alice, bob):
            await ask(ws, type="join", room="r")
        await send(alice, type="say", room="r", text="x", **{"from": "bob"})
        assert await recv(bob) == {"type": "say", "room": "r", "from": "alice", "text": "x"}
        await send(alice, type="image", to="bob", size=1, **{"from": "bob"})
        await alice.send(b"abc")
        assert await recv(bob) == {"type": "image", "from": "alice", "to": "bob", "size": 3}
        assert await recv(bob) == b"abc"
        await close_all([alice, bob])

    run(talk())


def test_text_is_passed_on_exactly_and_escaped(gateway):
    gw = gateway(CONFIG)
    texts = ['quote " backslash \\ slash /', "line\nbreak\ttab", "\u00e9\u4e2d\U0001f600",
             "</script>", "", "x" * 100000]

    async def talk():
        alice, bob = await user(gw, "alice"), await user(gw, "bob")
        for text in texts:
            await send(alice, type="dm", to="bob", text=text)
            raw = await asyncio.wait_for(bob.recv(), TIMEOUT)
            assert json.loads(raw) == {"type": "dm", "from": "alice", "text": text}
        await close_all([alice, bob])

    run(talk())


def test_locations_without_chat_are_untouched(gateway):
    gw = gateway(CONFIG)

    async def talk():
        ws = await connect(gw, "/echo")
        msg = json.dumps({"type": "dm", "to": "bob", "text": "hi"})
        await ws.send(msg)
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == msg
        await ws.close()

    run(talk())


# ---- configuration ----

def config_test(wsgate, tmp_path, location):
    path = tmp_path / "chat.conf"
    path.write_text("events { worker_connections 64; }\n"
                    "server {\n"
                    "    listen 127.0.0.1:8080;\n"
                    f"    location /chat {{ {location} }}\n"
                    "}\n")
    return path, wsgate("-p", f"{tmp_path}/", "-c", str(path), "-t")


@pytest.mark.parametrize("location, message", [
    ("chat maybe;", '"chat" directive invalid value "maybe"'),
    ("chat on; chat on;", '"chat" directive is duplicate'),
    ("chat;", 'invalid number of arguments in "chat" directive'),
    ("chat_anonymous yes;", '"chat_anonymous" directive invalid value "yes"'),
    ("chat_max_message 513k;",
     '"chat_max_message" directive value "513k" is out of range (1 to 524288)'),
    ("chat_max_message 0;",
     '"chat_max_message" directive value "0" is out of range (1 to 524288)'),
])
def test_directive_errors_name_the_line(wsgate, tmp_path, location, message):
    path, r = config_test(wsgate, tmp_path, location)
    assert r.returncode == 1, r.stderr
    assert f"{path}:4: " in r.stderr and message in r.stderr, r.stderr


def test_chat_is_not_allowed_in_server(wsgate, tmp_path):
    path = tmp_path / "chat.conf"
    path.write_text("events { worker_connections 64; }\n"
                    "server {\n    listen 127.0.0.1:8080;\n    chat on;\n}\n")
    r = wsgate("-p", f"{tmp_path}/", "-c", str(path), "-t")
    assert r.returncode == 1
    assert f'{path}:4: "chat" directive is not allowed in the server context' in r.stderr


def test_chat_max_message_is_inherited_by_locations(gateway):
    gw = gateway("""\
worker_processes 1;
error_log logs/error.log info;
pid logs/wsgate.pid;
chat_max_message 10;
events { worker_connections 64; }
server {
    listen 127.0.0.1:$port;
    location = /healthz { return 200 "ok\\n"; }
    location /small { chat on; }
    location /large { chat on; chat_max_message 512k; }
}
""")

    async def talk():
        small = await connect(gw, "/small")
        assert await ask(small, type="hello", user="alice") == {
            "type": "error", "error": "message too large", "max": 10}
        large = await user(gw, "alice", "/large")
        await close_all([small, large])

    run(talk())


def test_chat_anonymous_is_inherited_by_locations(gateway):
    gw = gateway("""\
worker_processes 1;
error_log logs/error.log info;
pid logs/wsgate.pid;
chat_anonymous off;
events { worker_connections 64; }
server {
    listen 127.0.0.1:$port;
    location = /healthz { return 200 "ok\\n"; }
    location /closed { chat on; }
    location /open { chat on; chat_anonymous on; }
}
""")

    async def talk():
        closed = await connect(gw, "/closed")
        assert await ask(closed, type="hello", user="alice") == {
            "type": "error", "error": "anonymous users not allowed"}
        opened = await user(gw, "alice", "/open")
        await close_all([closed, opened])

    run(talk())


def test_a_dead_workers_users_leave_presence(gateway):
    """A worker killed with its sessions takes them out of presence: the
    others no longer see its users online or in their rooms."""
    gw = gateway(CONFIG, allow=(r"exited on signal 9",))

    async def scenario():
        ghosts = [await user(gw, f"ghost{i}") for i in range(8)]
        for ws in ghosts:
            assert (await ask(ws, type="join", room="hall"))["type"] == "joined"
        victim = workers_holding(gw, ghosts[:1]).pop()
        on_victim = [i for i, ws in enumerate(ghosts)
                     if workers_holding(gw, [ws]) == {victim}]
        observer = await user(gw, "observer")
        # the observer must not sit on the worker about to die
        while workers_holding(gw, [observer]) == {victim}:
            await observer.close()
            observer = await user(gw, "observer")
        before = await ask(observer, type="online", user="ghost0")
        os.kill(victim, signal.SIGKILL)
        await asyncio.to_thread(wait_until, lambda: victim not in gw.worker_pids(),
                                5, "the killed worker to be reaped")
        after = [(await ask(observer, type="online", user=f"ghost{i}"))["online"]
                 for i in range(8)]
        who = await ask(observer, type="who", room="hall")
        await close_all(ghosts + [observer])
        return before, on_victim, after, who

    before, on_victim, after, who = run(scenario())
    assert before["online"] is True
    assert on_victim, "ghost0 was on the victim"
    assert [i for i, online in enumerate(after) if not online] == on_victim
    assert sorted(who["users"]) == sorted(f"ghost{i}" for i in range(8)
                                          if i not in on_victim)
