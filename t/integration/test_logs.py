"""
The error log (level filtering, the "TIME [level] PID: message" line,
connection context "*ID ... client: ADDR, server: ADDR") and the access log
(text and JSON lines with the request's status, path and sizes; bytes of
the path that could forge a line are escaped).
"""
import json
import os
import re
import signal
import socket

from support import process_alive, wait_until

LINE = re.compile(r"^(\d{4})/(\d{2})/(\d{2}) (\d{2}):(\d{2}):(\d{2}) "
                  r"\[(emerg|alert|crit|error|warn|notice|info|debug)\] (\d+): (.+)$")

TEXT_ACCESS = re.compile(r'^(127\.0\.0\.1:\d+) - \[(\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} '
                         r'[+-]\d{4})\] "(\S+) (\S+)" (\d+) (\d+) (\d+) (\d+\.\d{3}) '
                         r'(\d+) (\d+) (\d+|-)$')


def config(level="info", access="access_log logs/access.log;", workers=1):
    return f"""\
worker_processes {workers};
error_log logs/error.log {level};
pid logs/wsgate.pid;
events {{ worker_connections 1024; }}
server {{
    listen 127.0.0.1:$port;
    {access}
    location = /healthz {{ return 200 "ok\\n"; }}
    location /ws {{ websocket_echo on; }}
}}
"""


def connect_and_close(gw):
    """A client that connects and leaves without sending a request;
    returns its address as the gateway prints it."""
    sock = gw.connect()
    gw.wait_accepted(sock)
    address = "%s:%d" % sock.getsockname()
    sock.close()
    return address


def test_error_log_at_warn_omits_notice_and_info_lines(gateway):
    gw = gateway(config(level="warn"),
                 allow=[r"\[alert\] \d+: worker process \d+ exited on signal 9$"])
    connect_and_close(gw)
    assert gw.http_get("/healthz").status == 200
    # a crash writes an alert and a warning, which do pass the filter
    victim = gw.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    gw.wait_workers(1, gone=[victim])
    gw.wait_log(r"\[warn\] \d+: worker process 0 died 1 times in a row")
    gw.stop()
    levels = {LINE.match(line).group(7) for line in gw.error_lines()}
    assert levels == {"alert", "warn"}, gw.error_log()


def test_error_log_at_info_has_notice_and_info_lines(gateway):
    gw = gateway(config(level="info"))
    connect_and_close(gw)
    gw.wait_log(r"\[info\] \d+: \*\d+ client closed connection")
    gw.wait_log(r"\[notice\] \d+: start worker process \d+$")
    gw.stop()
    levels = {LINE.match(line).group(7) for line in gw.error_lines()}
    assert levels == {"notice", "info"}, gw.error_log()


def test_error_log_at_error_writes_nothing_on_a_quiet_run(gateway):
    gw = gateway(config(level="error"))
    connect_and_close(gw)
    assert gw.http_get("/healthz").status == 200
    gw.stop()
    assert gw.error_log() == ""


def test_every_error_log_line_has_time_level_and_pid(gateway):
    gw = gateway(config(level="info", workers=2))
    workers = gw.worker_pids()
    for _ in range(3):
        connect_and_close(gw)
    assert gw.http_get("/healthz").status == 200
    gw.signal(signal.SIGHUP)
    new = gw.wait_workers(2, gone=workers)
    gw.stop()
    lines = gw.error_lines()
    assert len(lines) > 10
    pids = set()
    for line in lines:
        m = LINE.match(line)
        assert m, f"malformed error log line: {line!r}"
        year, month, day, hour, minute, second = map(int, m.groups()[:6])
        assert 2000 < year and 1 <= month <= 12 and 1 <= day <= 31
        assert hour < 24 and minute < 60 and second < 61
        pids.add(int(m.group(8)))
    assert pids == {gw.master_pid, *workers, *new}


def test_connection_info_line_names_connection_client_and_server(gateway):
    gw = gateway(config(level="info"))
    client = connect_and_close(gw)
    line = gw.wait_log(r"\[info\] (\d+): \*(\d+) client closed connection while reading "
                       r"client request, client: (\S+), server: (\S+)$")[0]
    assert int(line.group(1)) in gw.worker_pids()
    assert int(line.group(2)) >= 1
    assert line.group(3) == client
    assert line.group(4) == f"127.0.0.1:{gw.port}"


def test_connection_ids_differ_per_connection(gateway):
    gw = gateway(config(level="info"))
    for _ in range(3):
        connect_and_close(gw)
    found = gw.wait_log(r"\*(\d+) client closed connection", count=3)
    ids = [int(m.group(1)) for m in found]
    assert len(set(ids)) == 3


def access_lines(gw, count, name="access.log"):
    path = gw.logs / name

    def enough():
        try:
            lines = path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return None
        return lines if len(lines) >= count else None

    return wait_until(enough, 5, f"{count} line(s) in {name}")


def request(gw, raw):
    """Sends <raw>; returns (client address, response bytes)."""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=3) as s:
        s.sendall(raw)
        address = "%s:%d" % s.getsockname()
        chunks = []
        for _ in range(1000):
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        return address, b"".join(chunks)


CASES = [
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "/healthz", 200),
    (b"GET /chat?room=1 HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "/chat?room=1", 404),
    (b"GET /ws/room HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "/ws/room", 426),
    (b"POST /ws HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "POST", "/ws", 405),
    (b"nonsense\r\n\r\n", "-", "-", 400),
]


def test_access_log_text_line_per_request(gateway):
    gw = gateway(config())
    # the readiness probe wrote the first line
    first = len(access_lines(gw, 1))
    sent = [(request(gw, raw), raw, method, path, status) for raw, method, path, status in CASES]
    lines = access_lines(gw, first + len(CASES))[first:]
    assert len(lines) == len(CASES)
    for line, ((client, response), raw, method, path, status) in zip(lines, sent):
        m = TEXT_ACCESS.match(line)
        assert m, f"malformed access log line: {line!r}"
        assert m.group(1) == client
        assert (m.group(3), m.group(4), int(m.group(5))) == (method, path, status)
        assert int(m.group(6)) == len(raw)
        assert int(m.group(7)) == len(response)
        assert float(m.group(8)) < 1.0
        assert (m.group(9), m.group(10), m.group(11)) == ("0", "0", "-")


def test_access_log_json_object_per_request(gateway):
    gw = gateway(config(access="access_log logs/access.json json;"))
    first = len(access_lines(gw, 1, "access.json"))
    sent = [(request(gw, raw), raw, method, path, status) for raw, method, path, status in CASES]
    lines = access_lines(gw, first + len(CASES), "access.json")[first:]
    assert len(lines) == len(CASES)
    for line, ((client, response), raw, method, path, status) in zip(lines, sent):
        entry = json.loads(line)
        assert set(entry) == {"time", "remote", "server", "method", "path", "status",
                              "bytes_in", "bytes_out", "duration_ms", "messages_in",
                              "messages_out", "close_code"}
        assert (entry["messages_in"], entry["messages_out"], entry["close_code"]) == (0, 0, None)
        assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{4}$", entry["time"])
        assert entry["remote"] == client
        assert entry["server"] == f"127.0.0.1:{gw.port}"
        assert (entry["method"], entry["path"], entry["status"]) == (method, path, status)
        assert entry["bytes_in"] == len(raw)
        assert entry["bytes_out"] == len(response)
        assert isinstance(entry["duration_ms"], int) and 0 <= entry["duration_ms"] < 1000


def test_access_log_records_a_client_that_sent_no_request(gateway):
    gw = gateway(config())
    first = len(access_lines(gw, 1))
    client = connect_and_close(gw)
    line = access_lines(gw, first + 1)[first]
    m = TEXT_ACCESS.match(line)
    assert m, line
    assert m.group(1) == client
    assert m.groups()[2:7] == ("-", "-", "0", "0", "0")


def test_access_log_off_writes_no_file(gateway):
    gw = gateway(config(access="access_log off;"))
    assert gw.http_get("/healthz").status == 200
    gw.stop()
    assert not (gw.logs / "access.log").exists()


def test_access_log_escapes_quote_and_backslash_in_path(gateway):
    gw = gateway(config(access="access_log logs/access.log;"))
    first = len(access_lines(gw, 1))
    # a quote would end the field early and let the path forge the rest
    path = b'/a"b\\c"_200_0_0_0.000'
    _, response = request(gw, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 404 ")
    lines = access_lines(gw, first + 1)
    assert len(lines) == first + 1, lines
    m = TEXT_ACCESS.match(lines[first])
    assert m, lines[first]
    assert m.group(4) == r"/a\x22b\x5Cc\x22_200_0_0_0.000"
    assert lines[first].count('"') == 2


def test_access_log_never_writes_control_bytes_of_a_bad_request(gateway):
    gw = gateway(config(access="access_log logs/access.log;"))
    first = len(access_lines(gw, 1))
    _, response = request(gw, b"GET /a\x1b[31m\x7f\xff\nFORGED HTTP/1.1\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 400 ")
    lines = access_lines(gw, first + 1)
    assert len(lines) == first + 1, lines
    m = TEXT_ACCESS.match(lines[first])
    assert m, lines[first]
    assert (m.group(3), m.group(4), m.group(5)) == ("-", "-", "400")
    text = (gw.logs / "access.log").read_bytes()
    assert all(0x20 <= b < 0x7f or b == 0x0a for b in text), text


def test_access_log_json_keeps_the_path_exact(gateway):
    gw = gateway(config(access="access_log logs/access.json json;"))
    first = len(access_lines(gw, 1, "access.json"))
    path = '/a"b\\c/%00?x="y"'
    _, response = request(gw, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 404 ")
    lines = access_lines(gw, first + 1, "access.json")
    assert len(lines) == first + 1, lines
    assert json.loads(lines[first])["path"] == path


def test_error_log_lines_stay_whole_with_many_writers(gateway):
    gw = gateway(config(level="info", workers=3))
    for _ in range(30):
        connect_and_close(gw)
    gw.wait_log(r"client closed connection", count=30)
    gw.stop()
    for line in gw.error_lines():
        assert LINE.match(line), line
    assert not any(process_alive(pid) for pid in gw.seen_workers)


def websocket_session(gw, messages):
    """Echoes <messages> over /ws and closes with 1000; returns the client
    address."""
    import asyncio
    import websockets

    async def run():
        async with websockets.connect(f"ws://127.0.0.1:{gw.port}/ws",
                                      compression=None) as ws:
            address = "%s:%d" % ws.local_address[:2]
            for text in messages:
                await ws.send(text)
                assert await ws.recv() == text
            await ws.close(1000)
            return address

    return asyncio.run(asyncio.wait_for(run(), 10))


def test_access_log_counts_websocket_messages_and_close_code(gateway):
    gw = gateway(config())
    first = len(access_lines(gw, 1))
    client = websocket_session(gw, ["one", "two", "three"])
    line = access_lines(gw, first + 1)[first]
    m = TEXT_ACCESS.match(line)
    assert m, line
    assert m.group(1) == client
    assert (m.group(3), m.group(4), m.group(5)) == ("GET", "/ws", "101")
    assert (m.group(9), m.group(10), m.group(11)) == ("3", "3", "1000")


def test_access_log_json_counts_websocket_messages_and_close_code(gateway):
    gw = gateway(config(access="access_log logs/access.json json;"))
    first = len(access_lines(gw, 1, "access.json"))
    websocket_session(gw, ["a", "b"])
    entry = json.loads(access_lines(gw, first + 1, "access.json")[first])
    assert entry["status"] == 101
    assert (entry["messages_in"], entry["messages_out"], entry["close_code"]) == (2, 2, 1000)
