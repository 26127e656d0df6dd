"""
The status module: /status answers the node's counters as JSON and
/metrics as Prometheus text, summed over every worker; the counters match
the traffic a test sends exactly, and a location without "status" is not a
status page.
"""
import asyncio
import json
import re

import websockets

from support import free_port, http_get

CONFIG = """\
worker_processes 3;
error_log logs/error.log info;
pid logs/wsgate.pid;
events { worker_connections 1024; }
server {
    listen 127.0.0.1:$port;
    location = /status { status json; }
    location = /metrics { status prometheus; }
    location = /plain { return 200 "plain\\n"; }
    location /echo { websocket_echo on; }
}
"""

SAMPLE = re.compile(r'^([a-z_]+)(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? (-?\d+(\.\d+)?)$')


def sessions(port, clients, messages, size):
    """<clients> sessions, each echoing <messages> texts of <size> bytes and
    closing with 1000; spread over the workers by the kernel."""
    async def one():
        async with websockets.connect(f"ws://127.0.0.1:{port}/echo",
                                      compression=None) as ws:
            for _ in range(messages):
                await ws.send("x" * size)
                assert await ws.recv() == "x" * size
            await ws.close(1000)

    async def all_of_them():
        await asyncio.gather(*(one() for _ in range(clients)))

    asyncio.run(asyncio.wait_for(all_of_them(), 20))


def status(gw):
    r = http_get(gw.port, "/status")
    assert r.status == 200
    assert r.headers["content-type"] == "application/json"
    return json.loads(r.body)


def parse_prometheus(text):
    """Every line a comment or a sample; returns {name{labels}: value}."""
    samples = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = SAMPLE.match(line)
        assert m, f"not Prometheus text: {line!r}"
        samples[m.group(1) + (m.group(2) or "")] = float(m.group(4))
    return samples


def test_status_counts_every_workers_traffic_exactly(gateway):
    gw = gateway(CONFIG)
    before = status(gw)
    sessions(gw.port, clients=12, messages=25, size=10)
    after = status(gw)
    assert after["workers"] == 3
    assert after["handshakes"] - before["handshakes"] == 12
    assert after["messages_in"] - before["messages_in"] == 12 * 25
    assert after["messages_out"] - before["messages_out"] == 12 * 25
    assert after["bytes_in"] - before["bytes_in"] == 12 * 25 * 10
    code_before = before["close_codes"].get("1000", 0)
    assert after["close_codes"]["1000"] - code_before == 12
    # only the request asking is open now
    assert after["connections"] == 1


def test_metrics_parse_as_prometheus_text_and_match_the_traffic(gateway):
    gw = gateway(CONFIG)
    sessions(gw.port, clients=5, messages=4, size=3)
    r = http_get(gw.port, "/metrics")
    assert r.status == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    m = parse_prometheus(r.body.decode())
    assert m['wsgate_messages_total{direction="in"}'] == 20
    assert m['wsgate_messages_total{direction="out"}'] == 20
    assert m['wsgate_bytes_total{direction="in"}'] == 60
    assert m["wsgate_handshakes_total"] == 5
    assert m['wsgate_closes_total{code="1000"}'] == 5
    assert m["wsgate_workers"] == 3
    assert m["wsgate_uptime_seconds"] >= 0


def test_status_lists_upstream_servers(gateway):
    # a port nothing listens on (not a placeholder: those are probed)
    dead = free_port()
    gw = gateway(CONFIG.replace(
        "server {", f"upstream u {{ server 127.0.0.1:{dead}; protocol mux; }}\nserver {{")
        .replace("location /echo", "location /ws { proxy_pass u; }\n    location /echo"))
    st = status(gw)
    servers = st["upstreams"]["u"]["servers"]
    assert st["upstreams"]["u"]["protocol"] == "mux"
    assert [s["address"] for s in servers] == [f"127.0.0.1:{dead}"]
    assert servers[0]["connections"] == 0


def test_a_location_without_status_is_not_a_status_page(gateway):
    gw = gateway(CONFIG)
    assert http_get(gw.port, "/plain").body == b"plain\n"
    assert http_get(gw.port, "/status/extra").status == 404
