"""
Which backend server a client reaches. Round robin honours weights over
10,000 connections; least_conn sends new clients to the server with fewer
live ones; `balance hash $arg_room` sends a room to the same server every
time, spreads rooms over the servers, and when a server stops moves only
that server's rooms (which come back when it returns). A dead server is
skipped: with one dead and one live server every client succeeds, a client
gets 502 only when no server it may try can be reached, and after
max_fails failed connects (passive health) the dead server is not tried
again for fail_timeout. Active health checks mark a stopped server down
within about a second, so clients never try it, and bring it back when it
listens again.

Each backend here is a raw server that writes its name on every new
connection (or, for mux, the reference server answering "whoami").
"""
import asyncio
import json
import signal
import re
import time
from collections import Counter

import pytest

from backends import AsyncClient, backend_processes, dead_port, established
from support import wait_until

PRELUDE = """\
worker_processes {workers};
error_log logs/error.log info;
pid logs/wsgate.pid;
events {{ worker_connections 4096; }}
"""

SERVER = """\
server {
    listen 127.0.0.1:$port;
    location = /healthz { return 200 "ok\\n"; }
    location /ws { proxy_pass u; %s }
}
"""

TIMEOUT = 5.0


@pytest.fixture
def backends(tmp_path, tmp_path_factory):
    """Backend processes, stopped by PID after the test."""
    yield from backend_processes(tmp_path, tmp_path_factory)


def config(servers, balance="", extra="", location="", workers=1, protocol="raw"):
    """A gateway proxying /ws to upstream u made of <servers> (lines after
    "server", e.g. "127.0.0.1:9001 weight=3")."""
    lines = "".join(f"    server {s};\n" for s in servers)
    upstream = (f"upstream u {{\n{lines}    protocol {protocol};\n"
                f"{'    balance ' + balance + ';' if balance else ''}\n{extra}}}\n")
    return PRELUDE.format(workers=workers) + upstream + SERVER % location


async def reach(port, path="/ws"):
    """Connects and returns the name of the server reached, or the HTTP
    status when the handshake failed."""
    client = await AsyncClient.connect(port, path, timeout=TIMEOUT)
    if client.status != 101:
        return client.status
    greeting = await client.recv()
    await client.close()
    return greeting.decode().strip()


async def ask(port, path="/ws"):
    """Like reach() for a mux upstream: asks the server its name."""
    client = await AsyncClient.connect(port, path, timeout=TIMEOUT)
    if client.status != 101:
        return client.status
    await client.send("whoami")
    info = json.loads(await client.recv())
    await client.close()
    return info["server"]


def reach_all(port, paths, how=reach, concurrency=100):
    """Runs how(port, path) for every path, <concurrency> at a time;
    returns the results in order."""
    async def run():
        limit = asyncio.Semaphore(concurrency)

        async def one(path):
            async with limit:
                return await how(port, path)

        return await asyncio.gather(*(one(p) for p in paths))

    return asyncio.run(run())


def connect_failures(gw, address):
    rx = re.compile(rf"connect\(\) to {re.escape(address)} of upstream \"u\" failed")
    return sum(1 for line in gw.error_lines() if rx.search(line))


# ---- round robin ------------------------------------------------------------


def test_round_robin_honours_weights_over_10000_connections(gateway, backends):
    a = backends.raw("name", "a")
    b = backends.raw("name", "b")
    gw = gateway(config([f"{a.address} weight=3", f"{b.address} weight=1"], workers=2))
    started = time.monotonic()
    results = reach_all(gw.port, ["/ws"] * 10000, concurrency=200)
    elapsed = time.monotonic() - started
    counts = Counter(results)
    assert set(counts) == {"a", "b"}, counts
    # 3:1 exactly per worker; each worker's share is what it accepted
    assert 0.9 * 7500 <= counts["a"] <= 1.1 * 7500, counts
    assert 0.9 * 2500 <= counts["b"] <= 1.1 * 2500, counts
    assert elapsed < 60, f"10,000 connections took {elapsed:.1f} s"


def test_round_robin_alternates_equal_servers(gateway, backends):
    a = backends.raw("name", "a")
    b = backends.raw("name", "b")
    gw = gateway(config([a.address, b.address]))
    results = reach_all(gw.port, ["/ws"] * 10, concurrency=1)
    assert Counter(results) == {"a": 5, "b": 5}
    assert all(x != y for x, y in zip(results, results[1:])), results


def test_down_server_gets_no_clients(gateway, backends):
    a = backends.raw("name", "a")
    b = backends.raw("name", "b")
    gw = gateway(config([a.address, f"{b.address} down"]))
    assert set(reach_all(gw.port, ["/ws"] * 10)) == {"a"}


def test_backup_server_is_used_only_while_no_primary_is_up(gateway, backends):
    a = backends.raw("name", "a")
    b = backends.raw("name", "backup")
    gw = gateway(config([a.address, f"{b.address} backup"]))
    assert set(reach_all(gw.port, ["/ws"] * 10)) == {"a"}
    a.stop()
    assert set(reach_all(gw.port, ["/ws"] * 10)) == {"backup"}


# ---- least_conn -------------------------------------------------------------


def test_least_conn_sends_new_clients_to_the_server_with_fewer(gateway, backends):
    a = backends.raw("name", "a")
    b = backends.raw("name", "b")
    gw = gateway(config([a.address, b.address], balance="least_conn", workers=2))

    async def scenario():
        held = []
        for _ in range(6):
            c = await AsyncClient.connect(gw.port, "/ws", timeout=TIMEOUT)
            assert c.status == 101
            held.append((c, (await c.recv()).decode().strip()))
        split = Counter(name for _, name in held)
        on_a = [c for c, name in held if name == "a"]
        for c in on_a:
            await c.close()
        # the gateway has let go of a's connections once a sees them end
        await asyncio.to_thread(wait_until, lambda: established(a.port) == 0, TIMEOUT,
                                "the gateway to close its connections to a")
        again = []
        for _ in range(3):
            c = await AsyncClient.connect(gw.port, "/ws", timeout=TIMEOUT)
            again.append((c, (await c.recv()).decode().strip()))
        for c, _ in held + again:
            if c not in on_a:
                await c.close()
        return split, [name for _, name in again]

    split, again = asyncio.run(scenario())
    assert split == {"a": 3, "b": 3}
    assert again == ["a", "a", "a"]


def test_least_conn_counts_survive_a_reload(gateway, backends):
    """The counts live in memory shared by all workers and generations:
    clients held by retiring workers still weigh on their server."""
    a = backends.raw("name", "a")
    b = backends.raw("name", "b")
    text = config([a.address, b.address], balance="least_conn", workers=2)
    gw = gateway(text.replace("events {", "worker_shutdown_timeout 30s;\nevents {"))

    async def scenario():
        held = []
        for _ in range(4):
            c = await AsyncClient.connect(gw.port, "/ws", timeout=TIMEOUT)
            held.append((c, (await c.recv()).decode().strip()))
        on_b = [c for c, name in held if name == "b"]
        for c in on_b:
            await c.close()
        await asyncio.to_thread(wait_until, lambda: established(b.port) == 0, TIMEOUT,
                                "the gateway to close its connections to b")
        # a new generation of workers: a's two clients stay on the old one
        old = set(gw.worker_pids())
        gw.signal(signal.SIGHUP)
        await asyncio.to_thread(wait_until,
                                lambda: len(set(gw.worker_pids()) - old) >= 2,
                                TIMEOUT, "two workers of the new generation")
        await asyncio.to_thread(gw.wait_log, r"reconfigured")
        fresh = []
        for _ in range(2):
            c = await AsyncClient.connect(gw.port, "/ws", timeout=TIMEOUT)
            fresh.append((c, (await c.recv()).decode().strip()))
        for c, _ in held + fresh:
            if c not in on_b:
                await c.close()
        return Counter(name for _, name in held), [name for _, name in fresh]

    split, fresh = asyncio.run(scenario())
    assert split == {"a": 2, "b": 2}
    assert fresh == ["b", "b"]


def test_least_conn_honours_weights(gateway, backends):
    a = backends.raw("name", "a")
    b = backends.raw("name", "b")
    gw = gateway(config([f"{a.address} weight=2", b.address], balance="least_conn"))

    async def scenario():
        held = []
        for _ in range(9):
            c = await AsyncClient.connect(gw.port, "/ws", timeout=TIMEOUT)
            held.append((c, (await c.recv()).decode().strip()))
        for c, _ in held:
            await c.close()
        return Counter(name for _, name in held)

    assert asyncio.run(scenario()) == {"a": 6, "b": 3}


# ---- hash -------------------------------------------------------------------

ROOMS = [f"/ws?room=r{i}" for i in range(200)]


def test_hash_keeps_rooms_and_moves_only_a_stopped_servers_rooms(gateway, backends):
    servers = [backends.raw("name", name) for name in "abcd"]
    gw = gateway(config([f"{s.address} fail_timeout=1s" for s in servers],
                        balance="hash $arg_room", workers=2))
    before = dict(zip(ROOMS, reach_all(gw.port, ROOMS)))
    spread = Counter(before.values())
    assert set(spread) == set("abcd"), spread
    # 160 points per server on the ring: no server is far from a quarter
    assert min(spread.values()) >= 20, spread
    assert dict(zip(ROOMS, reach_all(gw.port, ROOMS))) == before, "a room changed server"

    servers[3].stop()
    after = dict(zip(ROOMS, reach_all(gw.port, ROOMS)))
    moved = {room for room in ROOMS if after[room] != before[room]}
    assert moved == {room for room in ROOMS if before[room] == "d"}
    assert set(after.values()) == set("abc"), Counter(after.values())

    # back after fail_timeout, d gets exactly its rooms again
    servers[3].start()
    time.sleep(1.2)
    assert dict(zip(ROOMS, reach_all(gw.port, ROOMS))) == before


def test_hash_spreads_rooms_over_servers_of_a_mux_upstream(gateway, backends):
    servers = [backends.reference("mux", name) for name in "abc"]
    gw = gateway(config([s.address for s in servers], balance="hash $arg_room",
                        protocol="mux", extra="    pool_size 1;\n"))
    gw.wait_log(r'upstream "u" server \S+ connected', count=3)
    rooms = ROOMS[:60]
    first = reach_all(gw.port, rooms, how=ask)
    second = reach_all(gw.port, rooms, how=ask)
    assert first == second, "a room changed server"
    spread = Counter(first)
    assert set(spread) == set("abc"), spread


# ---- failures -------------------------------------------------------------------


def test_dead_upstream_answers_handshake_with_502(gateway):
    hold, port = dead_port()
    with hold:
        gw = gateway(config([f"127.0.0.1:{port}"]))
        assert reach_all(gw.port, ["/ws"] * 3) == [502] * 3
    gw.wait_log(r'no server of upstream "u" could be reached')


def test_dead_single_server_proxy_pass_answers_502(gateway):
    hold, port = dead_port()
    with hold:
        gw = gateway(PRELUDE.format(workers=1) + SERVER.replace(
            "proxy_pass u;", f"proxy_pass line 127.0.0.1:{port};") % "")
        assert reach_all(gw.port, ["/ws"]) == [502]


def test_mux_upstream_without_live_connection_answers_502(gateway):
    hold, port = dead_port()
    with hold:
        gw = gateway(config([f"127.0.0.1:{port}"], protocol="mux"))
        gw.wait_log(rf'upstream "u" server 127.0.0.1:{port}: connect\(\) failed')
        assert reach_all(gw.port, ["/ws"] * 3, how=ask) == [502] * 3
    gw.wait_log(r'no server of upstream "u" has a live connection')


def test_every_client_succeeds_with_one_dead_server(gateway, backends):
    live = backends.raw("name", "live")
    hold, port = dead_port()
    with hold:
        # max_fails=0: the dead server stays in the rotation, every pick of
        # it must fall through to the live one
        gw = gateway(config([f"127.0.0.1:{port} max_fails=0", f"{live.address} max_fails=0"]))
        results = reach_all(gw.port, ["/ws"] * 20, concurrency=1)
    assert results == ["live"] * 20
    assert connect_failures(gw, f"127.0.0.1:{port}") >= 5


def test_next_upstream_tries_1_gives_502_when_the_pick_is_dead(gateway, backends):
    live = backends.raw("name", "live")
    hold, port = dead_port()
    with hold:
        gw = gateway(config([f"127.0.0.1:{port} max_fails=0", f"{live.address} max_fails=0"],
                            location="proxy_next_upstream_tries 1;"))
        results = reach_all(gw.port, ["/ws"] * 20, concurrency=1)
    assert Counter(results) == {"live": 10, 502: 10}


def test_passive_health_stops_trying_a_server_after_max_fails(gateway, backends):
    live = backends.raw("name", "live")
    hold, port = dead_port()
    dead = f"127.0.0.1:{port}"
    with hold:
        gw = gateway(config([f"{dead} max_fails=2 fail_timeout=1s", live.address]))
        assert reach_all(gw.port, ["/ws"] * 30, concurrency=1) == ["live"] * 30
        assert connect_failures(gw, dead) == 2
        # still within fail_timeout: not tried at all
        assert reach_all(gw.port, ["/ws"] * 10, concurrency=1) == ["live"] * 10
        assert connect_failures(gw, dead) == 2
        # after fail_timeout it is tried again, and marked down again
        time.sleep(1.2)
        assert reach_all(gw.port, ["/ws"] * 30, concurrency=1) == ["live"] * 30
        assert connect_failures(gw, dead) == 4


# ---- active health ------------------------------------------------------------------


def test_health_check_marks_a_stopped_server_down_and_back_up(gateway, backends):
    a = backends.raw("name", "a")
    b = backends.raw("name", "b")
    # max_fails=0: only the checks can take a server out of the rotation
    gw = gateway(config([f"{a.address} max_fails=0", f"{b.address} max_fails=0"],
                        extra="    health_check interval=200ms fails=1 passes=1;\n",
                        workers=2))
    # each worker alternates on its own: at least 4 of 10 for either
    split = Counter(reach_all(gw.port, ["/ws"] * 10, concurrency=1))
    assert split["a"] >= 4 and split["b"] >= 4, split

    a.stop()
    stopped = time.monotonic()
    gw.wait_log(rf'upstream "u" server {re.escape(a.address)} is down \(health check\)',
                timeout=2.0)
    assert time.monotonic() - stopped < 1.0, "the check took over a second"
    assert reach_all(gw.port, ["/ws"] * 10, concurrency=1) == ["b"] * 10
    assert connect_failures(gw, a.address) == 0, "a client was sent to the down server"

    a.start()
    gw.wait_log(rf'upstream "u" server {re.escape(a.address)} is up again \(health check\)',
                timeout=2.0)
    assert Counter(reach_all(gw.port, ["/ws"] * 10, concurrency=1))["a"] >= 4
