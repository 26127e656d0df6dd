"""
The process model: one master and worker_processes workers, a killed worker
replaced at once while the port keeps answering, a crash-looping worker
respawned after a doubling delay, and worker_connections capping each
worker's connections with a 503 for the one over the cap.
"""
import os
import re
import signal
import time

import pytest

from support import process_alive, process_title, read_until_closed, wait_until

CONFIG = """\
worker_processes {workers};
error_log logs/error.log info;
pid logs/wsgate.pid;
events {{ worker_connections 1024; }}
server {{
    listen 127.0.0.1:$port;
    access_log logs/access.log;
    location = /healthz {{ return 200 "ok\\n"; }}
}}
"""

KILLED = r"\[alert\] \d+: worker process \d+ exited on signal 9$"


def workers_by_slot(gw, count):
    """{slot: pid} of the workers, once each has logged that it started
    (after its per-process setup)."""
    started = gw.wait_log(r"\[notice\] (\d+): worker process (\d+) started", count=count)
    return {int(m.group(2)): int(m.group(1)) for m in started}


def cpus_of(pid):
    with open(f"/proc/{pid}/status") as f:
        line = next(line for line in f if line.startswith("Cpus_allowed_list:"))
    return line.split()[1]


def ppid(pid):
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    return int(stat[stat.rindex(")") + 2:].split()[1])


@pytest.mark.parametrize("workers", [2, 3])
def test_master_runs_worker_processes_workers(gateway, workers):
    gw = gateway(CONFIG.format(workers=workers))
    pids = gw.worker_pids()
    assert len(pids) == workers
    # epoll, with libevent's change list (a write event added and removed
    # in one loop pass costs no system call)
    started = gw.wait_log(r"\[notice\] (\d+): worker process (\d+) started, "
                          r"event method epoll \(with changelist\)$", count=workers)
    assert sorted(int(m.group(1)) for m in started) == pids
    assert sorted(int(m.group(2)) for m in started) == list(range(workers))
    assert gw.read_pid() == gw.master_pid
    assert process_title(gw.master_pid) == "wsgate: master process"
    for pid in pids:
        assert ppid(pid) == gw.master_pid
        assert process_title(pid) == "wsgate: worker process"
    assert gw.http_get("/healthz").status == 200


def test_killed_worker_is_respawned_within_1s(gateway):
    gw = gateway(CONFIG.format(workers=2), allow=[KILLED])
    before = gw.worker_pids()
    victim = before[0]
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    after = gw.wait_workers(2, gone=[victim], timeout=1.0)
    assert time.monotonic() - killed_at < 1.0
    assert before[1] in after
    gw.wait_log(rf"\[alert\] \d+: worker process {victim} exited on signal 9$")
    new = [pid for pid in after if pid not in before]
    gw.wait_log(rf"\[notice\] \d+: start worker process {new[0]}$")
    for _ in range(10):
        assert gw.http_get("/healthz").status == 200


def test_port_keeps_answering_while_workers_are_killed(gateway):
    gw = gateway(CONFIG.format(workers=2), allow=[KILLED])
    for _ in range(3):
        victim = gw.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        for _ in range(5):
            r = gw.http_get("/healthz")
            assert (r.status, r.body) == (200, b"ok\n")
        gw.wait_workers(2, gone=[victim], timeout=2.0)


def test_crash_looping_worker_is_respawned_with_doubling_delay(gateway):
    gw = gateway(CONFIG.format(workers=1), allow=[KILLED])
    expected_delays = [100, 200, 400, 800, 1600]
    waited = []
    for delay in expected_delays:
        victim = gw.worker_pids()[0]
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        gw.wait_workers(1, gone=[victim], timeout=delay / 1000 + 2.0)
        waited.append(time.monotonic() - killed_at)

    lines = gw.wait_log(r"\[warn\] \d+: worker process 0 died (\d+) times in a row "
                        r"within 2000 ms of start, respawning in (\d+) ms$",
                        count=len(expected_delays))
    assert [int(m.group(1)) for m in lines] == [1, 2, 3, 4, 5]
    assert [int(m.group(2)) for m in lines] == expected_delays
    for delay, seconds in zip(expected_delays, waited):
        # the master waits the delay it announces, and not much longer
        assert delay / 1000 * 0.9 <= seconds < delay / 1000 + 1.0, (delay, waited)
    gw.wait_ready()
    assert gw.http_get("/healthz").status == 200


def test_worker_that_lived_long_is_respawned_at_once(gateway):
    gw = gateway(CONFIG.format(workers=1), allow=[KILLED])
    victim = gw.worker_pids()[0]
    # older than the 2000 ms a young death is measured by
    time.sleep(2.1)
    os.kill(victim, signal.SIGKILL)
    gw.wait_workers(1, gone=[victim], timeout=1.0)
    gw.wait_log(rf"worker process {victim} exited on signal 9$")
    assert "respawning in" not in gw.error_log()


def test_connection_over_worker_connections_gets_503(gateway):
    gw = gateway("""\
worker_processes 1;
error_log logs/error.log info;
pid logs/wsgate.pid;
events { worker_connections 2; }
server { listen 127.0.0.1:$port; location = /healthz { return 200 "ok\\n"; } }
""")
    held = []
    for _ in range(2):
        sock = gw.connect()
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # a request head not yet ended
        gw.wait_accepted(sock)
        held.append(sock)

    raw = gw.send_raw(b"GET /healthz HTTP/1.1\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 503 "), raw
    assert b"\r\nConnection: close\r\n" in raw
    gw.wait_log(r"\[warn\] \d+: 2 worker_connections are not enough, 1 connections refused$")

    # the held connections are still open and still get their answer
    held[0].sendall(b"\r\n")
    assert read_until_closed(held[0], 3).startswith(b"HTTP/1.1 200 ")
    for sock in held:
        sock.close()

    def healthy():
        try:
            return gw.http_get("/healthz").status == 200
        except OSError:
            return False

    wait_until(healthy, 5, "GET /healthz to answer 200 again")
    assert len(gw.worker_pids()) == 1


def test_workers_exit_when_the_master_is_killed(gateway):
    gw = gateway(CONFIG.format(workers=2))
    workers = sorted(workers_by_slot(gw, 2).values())
    gw.expected_status = -signal.SIGKILL
    os.kill(gw.master_pid, signal.SIGKILL)
    gw.wait_exit(5)
    # orphaned workers are told to quit gracefully; idle, they leave at once
    wait_until(lambda: not any(process_alive(pid) for pid in workers), 5,
               "the orphaned workers to exit")
    assert re.search(r"\[notice\] \d+: gracefully shutting down$", gw.error_log(), re.M)


def test_worker_processes_auto_runs_one_worker_per_cpu(gateway):
    cpus = os.cpu_count()
    gw = gateway(CONFIG.format(workers="auto"), workers=cpus)
    assert len(gw.worker_pids()) == cpus


def test_worker_rlimit_nofile_sets_the_workers_open_files_limit(gateway):
    gw = gateway(CONFIG.format(workers=2).replace("pid ", "worker_rlimit_nofile 512;\npid "))
    for pid in workers_by_slot(gw, 2).values():
        with open(f"/proc/{pid}/limits") as f:
            line = next(line for line in f if line.startswith("Max open files"))
        assert line.split()[3:5] == ["512", "512"], line
    assert gw.http_get("/healthz").status == 200


needs_two_cpus = pytest.mark.skipif(
    os.cpu_count() < 2 or not {0, 1} <= os.sched_getaffinity(0),
    reason="needs CPUs 0 and 1 online and allowed")


@needs_two_cpus
def test_worker_cpu_affinity_auto_pins_each_worker_to_its_cpu(gateway):
    gw = gateway(CONFIG.format(workers=2).replace("pid ", "worker_cpu_affinity auto;\npid "))
    slots = workers_by_slot(gw, 2)
    assert cpus_of(slots[0]) == "0"
    assert cpus_of(slots[1]) == "1"


@needs_two_cpus
def test_worker_cpu_affinity_masks_pin_workers_rightmost_bit_first(gateway):
    gw = gateway(CONFIG.format(workers=2).replace("pid ", "worker_cpu_affinity 10 01;\npid "))
    slots = workers_by_slot(gw, 2)
    assert cpus_of(slots[0]) == "1"
    assert cpus_of(slots[1]) == "0"
