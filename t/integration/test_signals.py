"""
Signals to the master: HUP reloads the configuration gracefully (new
workers, old ones retired, no request lost, WebSocket sessions kept until
worker_shutdown_timeout and then closed with 1001; a broken file or a busy
port changes nothing; listen addresses are opened and closed), QUIT lets
open connections finish until worker_shutdown_timeout, TERM stops at once,
and USR1 reopens the log files after rotation.
"""
import asyncio
import json
import signal
import socket
import threading
import time

import pytest
import websockets

from support import (http_get, open_files, port_refuses, process_alive,
                     process_title, read_until_closed, wait_until)

HEALTHZ = 'location = /healthz { return 200 "ok\\n"; }'


def conf(workers=1, timeout="1s", servers=None, pid="logs/wsgate.pid", extra=""):
    """A configuration; <servers> lists each server's directives."""
    servers = servers or ["listen 127.0.0.1:$port;"]
    blocks = "".join(f"server {{ {body} {HEALTHZ} }}\n" for body in servers)
    return f"""\
worker_processes {workers};
error_log logs/error.log info;
pid {pid};
worker_shutdown_timeout {timeout};
events {{ worker_connections 1024; }}
{extra}{blocks}"""


class Poller(threading.Thread):
    """Sends GET /healthz in a loop and counts what comes back."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.ok = 0
        self.failures = []
        self.done = threading.Event()

    def run(self):
        for _ in range(100000):
            if self.done.is_set():
                return
            try:
                r = http_get(self.port, "/healthz", timeout=3.0)
                if r.status == 200:
                    self.ok += 1
                else:
                    self.failures.append(r.status_line)
            except (OSError, AssertionError) as e:
                self.failures.append(repr(e))

    def stop(self):
        self.done.set()
        self.join(10)
        assert not self.is_alive()


def poll_during(port, action, pollers=4):
    """Runs action(traffic) while <pollers> clients send GET /healthz in a
    loop; traffic() waits until each of them got a few more answers.
    Returns (answered, failures)."""
    threads = [Poller(port) for _ in range(pollers)]

    def traffic():
        counts = [t.ok for t in threads]
        wait_until(lambda: all(t.ok >= n + 3 for t, n in zip(threads, counts)), 5,
                   "more answers")

    for t in threads:
        t.start()
    try:
        traffic()
        action(traffic)
        traffic()
    finally:
        for t in threads:
            t.stop()
    return sum(t.ok for t in threads), [f for t in threads for f in t.failures]


def test_hup_with_more_workers_replaces_them_all_without_failed_requests(gateway):
    gw = gateway(conf(workers=1))
    old = gw.worker_pids()
    new = []

    def reload(traffic):
        gw.write_config(conf(workers=3))
        gw.signal(signal.SIGHUP)
        new.extend(gw.wait_workers(3, gone=old))

    answered, failures = poll_during(gw.port, reload)
    assert failures == []
    assert answered > 0
    assert not set(new) & set(old)
    gw.wait_log(r"\[notice\] \d+: reconfiguring$")
    gw.wait_log(r"\[notice\] \d+: reconfigured, 3 worker processes$")
    gw.wait_log(rf"\[notice\] {old[0]}: gracefully shutting down$")
    gw.wait_log(rf"\[notice\] \d+: worker process {old[0]} exited with code 0$")


@pytest.mark.parametrize("listen", ["", " reuseport"], ids=["shared-socket", "reuseport"])
def test_repeated_hup_changing_worker_count_loses_no_request(gateway, listen):
    servers = [f"listen 127.0.0.1:$port{listen};"]
    gw = gateway(conf(workers=3, servers=servers))

    def reloads(traffic):
        for count in [1, 3] * 20:
            old = gw.worker_pids()
            gw.write_config(conf(workers=count, servers=servers))
            gw.signal(signal.SIGHUP)
            gw.wait_workers(count, gone=old)
            traffic()

    answered, failures = poll_during(gw.port, reloads, pollers=8)
    assert failures == [], f"{len(failures)} of {answered + len(failures)} requests failed"


def test_hup_with_fewer_workers_retires_the_extra_ones(gateway):
    gw = gateway(conf(workers=3))
    old = gw.worker_pids()
    gw.write_config(conf(workers=1))
    gw.signal(signal.SIGHUP)
    new = gw.wait_workers(1, gone=old)
    assert new[0] not in old
    assert gw.http_get("/healthz").status == 200


def test_hup_with_broken_config_keeps_the_old_workers_serving(gateway):
    gw = gateway(conf(), allow=[r"\[emerg\] \d+: \S+/wsgate\.conf:3: unknown directive \"bogus\"$"])
    old = gw.worker_pids()
    gw.write_config("\n\nbogus on;\n" + conf(workers=3))
    gw.signal(signal.SIGHUP)
    gw.wait_log(r"\[error\] \d+: reload failed, still running the previous configuration$")
    emerg = gw.wait_log(r"\[emerg\] \d+: (\S+):(\d+): unknown directive \"bogus\"$")[0]
    assert emerg.group(1) == str(gw.conf_path)
    assert emerg.group(2) == "3"
    assert gw.worker_pids() == old
    for _ in range(5):
        assert gw.http_get("/healthz").status == 200
    assert gw.alive()


def test_hup_with_busy_new_port_keeps_the_old_configuration(gateway):
    gw = gateway(conf(), allow=[r"\[emerg\] \d+: bind\(\) to 127\.0\.0\.1:\d+ failed \(98: "])
    old = gw.worker_pids()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        taken = busy.getsockname()[1]
        gw.write_config(conf(servers=["listen 127.0.0.1:$port;", f"listen 127.0.0.1:{taken};"]))
        gw.signal(signal.SIGHUP)
        gw.wait_log(r"\[error\] \d+: reload failed, still running the previous configuration$")
    assert gw.worker_pids() == old
    assert gw.http_get("/healthz").status == 200


def test_hup_adding_a_listen_opens_it_and_removing_it_closes_it(gateway):
    gw = gateway(conf())
    two_ports = conf(servers=["listen 127.0.0.1:$port; listen 127.0.0.1:$port2;"])
    old = gw.worker_pids()
    gw.write_config(two_ports)
    second = gw.ports["port2"]
    assert port_refuses(second)
    gw.signal(signal.SIGHUP)
    old = gw.wait_workers(1, gone=old)
    gw.wait_log(r"reconfigured, 1 worker processes$")
    assert gw.http_get("/healthz", port=second).status == 200
    assert gw.http_get("/healthz").status == 200

    gw.write_config(conf())
    gw.signal(signal.SIGHUP)
    gw.wait_workers(1, gone=old)
    wait_until(lambda: port_refuses(second), 5, f"port {second} to be closed")
    assert gw.http_get("/healthz").status == 200


def test_hup_with_new_pid_path_moves_the_pid_file(gateway):
    gw = gateway(conf())
    gw.write_config(conf(pid="logs/moved.pid"))
    gw.signal(signal.SIGHUP)
    gw.wait_log(r"reconfigured, 1 worker processes$")
    assert (gw.logs / "moved.pid").read_text() == f"{gw.master_pid}\n"
    assert not gw.pid_path.exists()


def test_reloads_leak_no_descriptors_in_the_master(gateway):
    gw = gateway(conf(servers=["listen 127.0.0.1:$port; access_log logs/access.log;"]))
    before = sorted(open_files(gw.master_pid))
    for n in range(1, 4):
        old = gw.worker_pids()
        gw.signal(signal.SIGHUP)
        gw.wait_workers(1, gone=old)
        gw.wait_log(r"reconfigured, 1 worker processes$", count=n)
    assert sorted(open_files(gw.master_pid)) == before


def test_quit_lets_a_held_connection_run_until_shutdown_timeout(gateway):
    gw = gateway(conf())
    worker = gw.worker_pids()[0]
    held = gw.connect()
    held.sendall(b"GET /healthz HTTP/1.1\r\n")  # the request head is not ended
    gw.wait_accepted(held)

    quit_at = time.monotonic()
    gw.signal(signal.SIGQUIT)
    time.sleep(0.5)
    assert gw.alive(), "the master left before worker_shutdown_timeout"
    assert process_alive(worker)
    assert process_title(worker) == "wsgate: worker process is shutting down"
    # no new connection is taken while shutting down
    assert port_refuses(gw.port)

    assert gw.wait_exit(4) == 0
    elapsed = time.monotonic() - quit_at
    assert 0.9 <= elapsed < 4, elapsed
    assert read_until_closed(held, 1) == b""
    held.close()
    assert not gw.pid_path.exists()
    gw.wait_log(rf"\[notice\] {worker}: worker_shutdown_timeout expired, closing 1 connections$")
    gw.wait_log(r"\[notice\] \d+: exit$")


def test_quit_lets_a_request_in_progress_finish(gateway):
    gw = gateway(conf(timeout="10s"))
    held = gw.connect()
    held.sendall(b"GET /healthz HTTP/1.1\r\n")
    gw.wait_accepted(held)
    gw.signal(signal.SIGQUIT)
    gw.wait_log(r"\[notice\] \d+: gracefully shutting down$", count=2)
    time.sleep(0.2)
    assert gw.alive()
    held.sendall(b"\r\n")
    assert read_until_closed(held, 3).startswith(b"HTTP/1.1 200 ")
    held.close()
    # the last connection gone, the worker and then the master leave
    assert gw.wait_exit(2) == 0


def test_quit_without_connections_exits_within_2s(gateway):
    gw = gateway(conf(workers=2))
    workers = gw.worker_pids()
    quit_at = time.monotonic()
    gw.signal(signal.SIGQUIT)
    assert gw.wait_exit(2) == 0
    assert time.monotonic() - quit_at < 2
    assert not any(process_alive(pid) for pid in workers)
    assert not gw.pid_path.exists()


def test_term_closes_held_connections_and_exits_at_once(gateway):
    gw = gateway(conf(timeout="30s"))
    workers = gw.worker_pids()
    held = gw.connect()
    held.sendall(b"GET /healthz HTTP/1.1\r\n")
    gw.wait_accepted(held)
    term_at = time.monotonic()
    gw.signal(signal.SIGTERM)
    assert gw.wait_exit(2) == 0
    assert time.monotonic() - term_at < 1.5
    assert read_until_closed(held, 1) == b""
    held.close()
    assert not any(process_alive(pid) for pid in workers)
    assert not gw.pid_path.exists()
    gw.wait_log(r"\[notice\] \d+: stopping$")


def test_usr1_after_rotation_writes_to_fresh_files(gateway):
    gw = gateway(conf(workers=2, servers=[
        "listen 127.0.0.1:$port; access_log logs/access.log;",
        "listen 127.0.0.1:$port2; access_log logs/access.json json;"]))
    assert gw.http_get("/before").status == 404
    assert gw.http_get("/before", port=gw.ports["port2"]).status == 404
    wait_until(lambda: "/before" in read(gw.logs / "access.log"), 5, "the first access line")
    wait_until(lambda: "/before" in read(gw.logs / "access.json"), 5, "the first json line")

    for name in ("error.log", "access.log", "access.json"):
        (gw.logs / name).rename(gw.logs / f"{name}.1")
    gw.signal(signal.SIGUSR1)
    for name in ("error.log", "access.log", "access.json"):
        wait_until((gw.logs / name).exists, 5, f"a fresh {name}")
    wait_until(lambda: not any(name.endswith(".1") for name in held_logs(gw)), 5,
               "every process to close the rotated files")

    assert gw.http_get("/after").status == 404
    assert gw.http_get("/after", port=gw.ports["port2"]).status == 404
    sock = gw.connect()
    sock.close()
    gw.wait_log(r"\[info\] \d+: \*\d+ client closed connection while reading client request")
    wait_until(lambda: '"GET /after" 404' in read(gw.logs / "access.log"), 5, "the text line")
    wait_until(lambda: "/after" in read(gw.logs / "access.json"), 5, "the json line")
    entry = json.loads(read(gw.logs / "access.json").splitlines()[0])
    assert (entry["path"], entry["status"]) == ("/after", 404)

    assert "/after" not in read(gw.logs / "access.log.1")
    assert "/after" not in read(gw.logs / "access.json.1")
    assert "client closed connection" not in read(gw.logs / "error.log.1")
    gw.wait_log(r"\[notice\] \d+: reopening logs$", count=3, name="error.log.1")


def read(path):
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def held_logs(gw):
    """The paths of the log files the master and its workers hold."""
    pids = [gw.master_pid, *gw.worker_pids()]
    return [t for pid in pids for t in open_files(pid) if t.startswith(str(gw.logs))]


def test_hup_keeps_websocket_sessions_until_shutdown_timeout_then_closes_1001(gateway):
    servers = ["listen 127.0.0.1:$port; location /ws { websocket_echo on; }"]
    gw = gateway(conf(workers=1, timeout="1s", servers=servers))
    old = gw.worker_pids()
    uri = f"ws://127.0.0.1:{gw.port}/ws"

    async def scenario():
        async with websockets.connect(uri, open_timeout=3, close_timeout=3,
                                      ping_interval=None) as before:
            await before.send("one")
            assert await asyncio.wait_for(before.recv(), 3) == "one"

            gw.signal(signal.SIGHUP)
            await wait_async(lambda: len(gw.worker_pids()) == 2, 5, "the new worker")
            # the old worker keeps its session; new sessions go to the new one
            await before.send("two")
            assert await asyncio.wait_for(before.recv(), 3) == "two"
            async with websockets.connect(uri, open_timeout=3, close_timeout=3,
                                          ping_interval=None) as after:
                await after.send("three")
                assert await asyncio.wait_for(after.recv(), 3) == "three"

            started = time.monotonic()
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(before.recv(), 5)
            waited = time.monotonic() - started
        return closed.value.rcvd, waited

    rcvd, waited = asyncio.run(scenario())
    assert rcvd is not None and rcvd.code == 1001, rcvd
    assert waited < 2.0, waited
    gw.wait_workers(1, gone=old)
    assert gw.http_get("/healthz").status == 200


async def wait_async(predicate, timeout, what):
    """wait_until for coroutines: sleeps without blocking the loop."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.01) + 2):
        if predicate():
            return
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
