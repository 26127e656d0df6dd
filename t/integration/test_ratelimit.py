"""
The ratelimit module: message and byte budgets per session and per client
address (shared by every worker), drop or close 1008 over them, and a cap
on concurrent sessions per address answered with 429.
"""
import asyncio
import time

import websockets

CONFIG = """\
worker_processes 2;
error_log logs/error.log info;
pid logs/wsgate.pid;
events { worker_connections 1024; }
server {
    listen 127.0.0.1:$port reuseport;
    location /drop  { websocket_echo on; ratelimit_messages 20/s burst=5; }
    location /close { websocket_echo on; ratelimit_messages 20/s burst=5;
                      ratelimit_action close; }
    location /bytes { websocket_echo on; ratelimit_bytes 1k/s burst=2k; }
    location /conns { websocket_echo on; ratelimit_connections 3; }
    location /addr  { websocket_echo on;
                      ratelimit_messages 10/s burst=10 per=address; }
}
"""


def url(gw, path):
    return f"ws://127.0.0.1:{gw.port}{path}"


async def echoes(ws, timeout=0.5):
    """Echoes that come back until the line goes quiet."""
    got = 0
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
            got += 1
    except asyncio.TimeoutError:
        return got


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_messages_over_the_rate_are_dropped_at_the_configured_rate(gateway):
    gw = gateway(CONFIG)

    async def scenario():
        async with websockets.connect(url(gw, "/drop")) as ws:
            start = time.monotonic()
            # 100 messages/s for 2 s against 20/s with a burst of 5
            for i in range(200):
                await ws.send(str(i))
                await asyncio.sleep(max(0, start + (i + 1) / 100 - time.monotonic()))
            elapsed = time.monotonic() - start
            return await echoes(ws), elapsed

    got, elapsed = run(scenario())
    expected = 5 + 20 * elapsed
    assert abs(got - expected) <= 0.2 * expected, (got, expected)
    gw.wait_log(r"module ratelimit: \d+ messages over the rate limit \(dropped\)")


def test_close_action_closes_1008(gateway):
    gw = gateway(CONFIG)

    async def scenario():
        async with websockets.connect(url(gw, "/close")) as ws:
            for i in range(20):
                await ws.send(str(i))
            got = 0
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 2)
                    got += 1
            except websockets.ConnectionClosed:
                return got, ws.close_code

    assert run(scenario()) == (5, 1008)


def test_bytes_budget_counts_payload_bytes(gateway):
    gw = gateway(CONFIG)

    async def scenario():
        async with websockets.connect(url(gw, "/bytes")) as ws:
            for _ in range(10):
                await ws.send("x" * 512)
            return await echoes(ws)

    # a 2 KiB burst holds four 512-byte messages (plus a little refill)
    assert run(scenario()) in (4, 5)


def test_concurrent_sessions_per_address_are_capped_with_429(gateway):
    gw = gateway(CONFIG)

    async def scenario():
        held = [await websockets.connect(url(gw, "/conns")) for _ in range(3)]
        try:
            await websockets.connect(url(gw, "/conns"))
            refused = None
        except websockets.InvalidStatusCode as e:
            refused = e.status_code
        await held[0].close()
        await asyncio.sleep(0.3)
        again = await websockets.connect(url(gw, "/conns"))
        await again.send("ok")
        echoed = await again.recv()
        for ws in held[1:] + [again]:
            await ws.close()
        return refused, echoed

    assert run(scenario()) == (429, "ok")


def test_per_address_budget_is_shared_by_all_sessions_and_workers(gateway):
    gw = gateway(CONFIG)

    async def scenario():
        conns = [await websockets.connect(url(gw, "/addr")) for _ in range(6)]
        for ws in conns:
            for _ in range(10):
                await ws.send("m")
        total = sum([await echoes(ws, 0.3) for ws in conns])
        for ws in conns:
            await ws.close()
        return total

    # one budget of 10 (plus the refill while the test runs), not 6 x 10
    assert 10 <= run(scenario()) <= 20
