"""
Fixtures for the integration tests.

`gateway(config)` starts the real binary in the foreground from an inline
configuration written to the test's tmp_path, waits until it is ready, and
returns a Gateway. At teardown the master is stopped by PID (TERM, then KILL
after a bound) along with any worker it left behind, and the test fails on
any [alert], [crit] or [emerg] line it did not declare, and on any
AddressSanitizer or UndefinedBehaviorSanitizer report.

In a configuration, "$port" (and "$port2", "$port_admin", ...) stands for a
free 127.0.0.1 port, the same one each time the name appears.
"""
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from support import (HOST, children, free_port, http_get, open_files,
                     process_alive, process_title, send_raw,
                     server_side_inode, wait_until)

SRCDIR = Path(os.environ.get("WSGATE_SRCDIR") or Path(__file__).resolve().parents[2])
WSGATE_BIN = os.environ.get("WSGATE_BIN") or str(SRCDIR / "src" / "wsgate")

READY_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
CLI_TIMEOUT = 10.0

SEVERE = re.compile(r"\[(alert|crit|emerg)\]")
# a sanitizer that writes to stderr instead of its log_path still fails
SANITIZER = re.compile(r"runtime error:|ERROR: (Address|Leak|UndefinedBehavior)Sanitizer")
PLACEHOLDER = re.compile(r"\$(port\w*)")


def run_wsgate(args, env, cwd, timeout=CLI_TIMEOUT):
    """Runs the binary to completion; returns the CompletedProcess (text)."""
    return subprocess.run([WSGATE_BIN, *args], env=env, cwd=cwd,
                          stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, errors="replace", timeout=timeout)


def expected_workers(config, args):
    """The worker count a configuration (and -g directives) asks for."""
    text = " ".join(args) + "\n" + config
    m = re.search(r"(?:^|[;\s])worker_processes\s+(\w+)\s*;", text)
    if m is None:
        return 1
    if m.group(1) == "auto":
        return os.cpu_count() or 1
    return int(m.group(1))


class Gateway:
    """One wsgate master running in the foreground under tmp_path."""

    def __init__(self, tmp_path, env, config, workers=None, allow=(), args=()):
        self.dir = Path(tmp_path)
        self.env = env
        self.conf_path = self.dir / "wsgate.conf"
        self.logs = self.dir / "logs"
        self.logs.mkdir(exist_ok=True)
        self.stderr_path = self.dir / "stderr.txt"
        self.pid_path = self.logs / "wsgate.pid"
        self.ports = {}
        self.allowed = [re.compile(p) for p in allow]
        self.args = list(args)
        self.proc = None
        self.expected_status = 0
        self.seen_workers = set()
        self.problems = []  # found while stopping, reported at teardown
        self.config = self.write_config(config)
        self.workers = workers if workers is not None else expected_workers(self.config, self.args)

    # ---- configuration ----

    def write_config(self, text):
        """Writes <text> as the configuration, with its ports filled in."""
        def port_for(m):
            name = m.group(1)
            if name not in self.ports:
                self.ports[name] = free_port()
            return str(self.ports[name])

        self.config = PLACEHOLDER.sub(port_for, text)
        self.conf_path.write_text(self.config)
        return self.config

    @property
    def port(self):
        return self.ports["port"]

    def config_ports(self):
        """The ports the current configuration listens on."""
        return [p for p in self.ports.values()
                if f":{p};" in self.config or f":{p} " in self.config]

    def cli(self, *args, timeout=CLI_TIMEOUT):
        """Runs the binary against this gateway's prefix and configuration."""
        return run_wsgate(["-p", f"{self.dir}/", "-c", str(self.conf_path), *args],
                          self.env, self.dir, timeout)

    # ---- life cycle ----

    def start(self):
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [WSGATE_BIN, "-p", f"{self.dir}/", "-c", str(self.conf_path), "-F", *self.args],
                env=self.env, cwd=self.dir, stdin=subprocess.DEVNULL,
                stdout=err, stderr=err, start_new_session=True)
        self.wait_ready()
        return self

    def _ready(self, workers):
        if self.proc.poll() is not None:
            raise AssertionError(f"wsgate exited with {self.proc.returncode} while starting:\n"
                                 f"{self.stderr()}{self.error_log()}")
        if self.read_pid() != self.proc.pid:
            return False
        if len(self.worker_pids()) != workers:
            return False
        for port in self.config_ports():
            try:
                http_get(port, "/healthz", timeout=1.0)
            except (OSError, AssertionError):
                return False
        return True

    def wait_ready(self, workers=None, timeout=READY_TIMEOUT):
        """Waits until the pid file names the master, the workers are up and
        every port answers an HTTP request."""
        workers = self.workers if workers is None else workers
        wait_until(lambda: self._ready(workers), timeout,
                   f"wsgate to be ready with {workers} workers", interval=0.02)

    @property
    def master_pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def read_pid(self):
        try:
            return int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def worker_pids(self):
        """The master's live children, sorted."""
        if not self.alive():
            return []
        pids = children(self.master_pid)
        self.seen_workers.update(pids)
        return pids

    def wait_workers(self, count, gone=(), timeout=5.0):
        """Waits until exactly <count> workers live and none of <gone> does;
        returns their pids."""
        gone = set(gone)

        def check():
            pids = self.worker_pids()
            if len(pids) == count and not gone & set(pids):
                return pids
            return None

        return wait_until(check, timeout, f"{count} workers, none of {sorted(gone)}")

    def signal(self, signo):
        os.kill(self.master_pid, signo)

    def wait_exit(self, timeout):
        """Waits for the master to exit; returns its exit status."""
        return self.proc.wait(timeout)

    def stop(self):
        """Stops the master (TERM, then KILL) and any worker it left; what
        went wrong is kept in self.problems."""
        if self.proc is None:
            return
        problems = self.problems
        if self.alive():
            self.worker_pids()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
                problems.append(f"master {self.master_pid} ignored TERM for "
                                f"{STOP_TIMEOUT:g} s, killed")
        status = f"master exited with status {self.proc.returncode}"
        if self.proc.returncode != self.expected_status and status not in problems:
            problems.append(status)
        for pid in sorted(self.seen_workers):
            if process_alive(pid) and process_title(pid).startswith("wsgate"):
                os.kill(pid, signal.SIGKILL)
                problems.append(f"worker {pid} outlived its master, killed")

    # ---- logs ----

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def error_log(self, name="error.log"):
        try:
            return (self.logs / name).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def error_lines(self, name="error.log"):
        return self.error_log(name).splitlines()

    def wait_log(self, pattern, timeout=5.0, count=1, name="error.log"):
        """Waits until <pattern> matches <count> lines of a log; returns
        the matches."""
        rx = re.compile(pattern)

        def check():
            found = [m for m in map(rx.search, self.error_lines(name)) if m]
            return found if len(found) >= count else None

        return wait_until(check, timeout, f"{count} line(s) matching {pattern!r} in {name}")

    def unexpected_lines(self):
        """[alert]/[crit]/[emerg] lines of every error log and of stderr
        that no allowed pattern covers."""
        sources = sorted(p for p in self.logs.glob("error*") if p.is_file())
        sources.append(self.stderr_path)
        bad = []
        for path in sources:
            if not path.exists():
                continue
            for line in path.read_text(errors="replace").splitlines():
                if SANITIZER.search(line):
                    bad.append(f"{path.name}: {line}")
                elif SEVERE.search(line) and not any(rx.search(line) for rx in self.allowed):
                    bad.append(f"{path.name}: {line}")
        return bad

    # ---- clients ----

    def http_get(self, path, port=None, timeout=3.0):
        return http_get(port or self.port, path, timeout)

    def send_raw(self, data, port=None, timeout=3.0):
        return send_raw(port or self.port, data, timeout)

    def connect(self, port=None, timeout=3.0):
        return socket.create_connection((HOST, port or self.port), timeout=timeout)

    def wait_accepted(self, sock, timeout=5.0):
        """Waits until a worker holds the server end of <sock>."""
        def check():
            inode = server_side_inode(sock)
            if inode == 0:
                return False
            target = f"socket:[{inode}]"
            return any(target in open_files(pid) for pid in self.worker_pids())

        wait_until(check, timeout, "a worker to accept the connection")


@pytest.fixture
def sanitizer_env(tmp_path):
    """The environment for the binary: sanitizer reports of the master and
    of every worker land in tmp_path, and fail the test."""
    env = dict(os.environ)
    asan = f"log_path={tmp_path}/asan:abort_on_error=0"
    ubsan = f"log_path={tmp_path}/ubsan:print_stacktrace=1"
    env["ASAN_OPTIONS"] = f"{env['ASAN_OPTIONS']}:{asan}" if env.get("ASAN_OPTIONS") else asan
    env["UBSAN_OPTIONS"] = f"{env['UBSAN_OPTIONS']}:{ubsan}" if env.get("UBSAN_OPTIONS") else ubsan
    yield env
    reports = sorted(tmp_path.glob("asan.*")) + sorted(tmp_path.glob("ubsan.*"))
    if reports:
        text = "\n".join(f"==> {p.name}\n{p.read_text(errors='replace')}" for p in reports)
        pytest.fail(f"sanitizer reports:\n{text}", pytrace=False)


@pytest.fixture
def wsgate(tmp_path, sanitizer_env):
    """Runs the binary with the given arguments, in tmp_path, to completion."""
    def run(*args, timeout=CLI_TIMEOUT):
        return run_wsgate(list(args), sanitizer_env, tmp_path, timeout)

    return run


@pytest.fixture
def gateway(tmp_path, sanitizer_env):
    """Starts a Gateway: gateway(config, workers=None, allow=(), args=()).

    <allow> lists regular expressions of [alert]/[crit]/[emerg] lines the
    test expects; any other such line fails the test at teardown.
    """
    started = []

    def start(config, workers=None, allow=(), args=()):
        assert not started, "one gateway per test: they share tmp_path"
        gw = Gateway(tmp_path, sanitizer_env, config, workers, allow, args)
        started.append(gw)
        return gw.start()

    yield start

    problems = []
    for gw in started:
        gw.stop()
        problems += gw.problems + gw.unexpected_lines()
    if problems:
        pytest.fail("after the test:\n" + "\n".join(problems), pytrace=False)
