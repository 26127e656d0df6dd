#!/usr/bin/python3
"""Compare wsgate with nginx proxying the same WebSocket load, on one machine.

    bench.py --builddir DIR [--out docs/performance.md]

Everything runs on 127.0.0.1 with free ports: a TCP echo backend
(contrib/echo-server) for wsgate's raw, length and mux paths, a WebSocket
echo backend (contrib/ws-echo-server) for nginx and for the direct run,
wsgate and nginx with generated configurations, and contrib/wsbench as the
load. The proxy under test runs on CPU 0; the load generator and the
backends share CPU 1, so the proxy's CPU time is not blurred by theirs.

Each scenario runs wsgate and nginx in A/B/A/B order (so a slow drift of
the machine hits both alike) and reports the median of the two runs, plus
one direct run from the load generator to the WebSocket echo backend.

Only the standard library is used, so the script runs wherever wsgate
builds. Every process it starts is stopped by its pid when it ends,
whether normally, on an exception or on Ctrl-C.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

DURATION_S = 3
WARMUP_S = 1
IDLE_CONNECTIONS = 10000
IDLE_HOLD_S = 5
ROOM_MEMBERS = 1000
ROOM_INTERVAL_S = 0.001
ROOM_TARGET = 500000  # deliveries/s on the whole machine
ROOM_WORKERS = 2  # (g) is a whole-machine figure: two workers, no pinning

CLK_TCK = os.sysconf("SC_CLK_TCK")
PROXY_CPU = 0  # worker_cpu_affinity 01 in both generated configurations
LOAD_CPU = 1

# the scenario letters of the issue, for the table
SCENARIOS = {
    "a": "(a) echo 64 B binary, -c 100, pipeline 16",
    "b": "(b) latency at 20,000 msg/s, -c 100, 64 B",
    "c": "(c) 64 KiB binary, -c 10, pipeline 4",
    "d": "(d) idle connections",
    "e": "(e) handshakes, --connect-rate -c 50",
    "f": "(f) TLS",
    "g": f"(g) room fan-out, {ROOM_MEMBERS:,} members, "
         f"one say per {ROOM_INTERVAL_S * 1000:g} ms",
}


class BenchError(Exception):
    """A setup step failed: the benchmark cannot go on."""


# ---------------------------------------------------------------- /proc ---


def read_stat(pid):
    """Fields of /proc/PID/stat after the command name, or None if gone.

    The name is in parentheses and may itself hold spaces and parentheses,
    so the fields are split after the last ')'."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(")") + 2:].split()


def process_tree(root):
    """The pid of root and of all its descendants, from a scan of /proc.

    A master forks its workers, so the proxy's cost is the whole tree."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = read_stat(name)
        if st is not None:
            children.setdefault(int(st[1]), []).append(int(name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def tree_cpu_s(root):
    """User + system CPU seconds of a process tree so far.

    cutime/cstime count children that have exited and been reaped, so a
    worker that dies and is respawned mid-run is not lost."""
    ticks = 0
    for pid in process_tree(root):
        st = read_stat(pid)
        if st is not None:
            # utime, stime, cutime, cstime are fields 14-17 of stat;
            # st starts at field 3
            ticks += sum(int(x) for x in st[11:15])
    return ticks / CLK_TCK


def task_cpu_s(pids):
    """User + system CPU seconds of these processes themselves (not of
    their reaped children, which ran before the window)."""
    ticks = 0
    for pid in pids:
        st = read_stat(pid)
        if st is not None:
            ticks += int(st[11]) + int(st[12])
    return ticks / CLK_TCK


def machine_cpu_s():
    """User + system CPU seconds of the whole machine, from /proc/stat.

    Interrupt time is left out on both sides of the comparison with the
    processes' own times, which do not include it either."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return sum(int(x) for x in fields[1:4]) / CLK_TCK


def machine_busy(seconds=1.0):
    """Fraction of all CPUs busy over a short interval."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    return 1 - (i1 - i0) / max(t1 - t0, 1)


def tree_rss_kib(root):
    """Sum of VmRSS of a process tree, in KiB."""
    total = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def socket_fds(pid):
    """How many sockets a process has open (0 if it is gone)."""
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    n += 1
            except OSError:
                pass
    except OSError:
        pass
    return n


# ------------------------------------------------------------ processes ---


class Processes:
    """Every process the benchmark started, so that all are stopped by pid.

    Children get their own session: a Ctrl-C in the terminal reaches only
    this script, which then stops them in order instead of leaving a
    half-stopped proxy behind."""

    def __init__(self):
        self.procs = []

    def start(self, cmd, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(cmd, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def stop(self, p, timeout=10):
        """TERM, then KILL; then any descendant left over, by its pid.

        Masters stop their workers on TERM; a worker that outlives its
        master (it would be re-parented) is killed too, after checking by
        its start time that the pid was not reused."""
        if p not in self.procs:
            return
        self.procs.remove(p)
        descendants = []
        if p.poll() is None:
            for pid in process_tree(p.pid)[1:]:
                st = read_stat(pid)
                if st is not None:
                    descendants.append((pid, st[19]))
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for pid, start in descendants:
            st = read_stat(pid)
            if st is not None and st[19] == start and st[0] != "Z":
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        for stream in (p.stdout, p.stderr):
            if stream is not None:
                stream.close()

    def stop_all(self):
        for p in reversed(list(self.procs)):
            self.stop(p)


def free_port():
    """A port that is free on 127.0.0.1 now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_tcp(port, proc, what, timeout=10):
    """Wait until something accepts on the port; fail if proc died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{what} is not listening on port {port}")


def upgrade_status(port, path, tls):
    """Status code of one WebSocket upgrade request, or 0 on failure.

    Used to know a location is ready: a mux location answers 502 until its
    pool connection to the backend is up."""
    req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n").encode()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s = ctx.wrap_socket(s)
        with s:
            s.sendall(req)
            head = s.recv(4096).decode("latin-1")
        return int(head.split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def wait_upgrade(port, path, tls, proc, what, timeout=10):
    deadline = time.monotonic() + timeout
    status = 0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with status {proc.returncode}")
        status = upgrade_status(port, path, tls)
        if status == 101:
            return
        time.sleep(0.05)
    raise BenchError(f"{what}: {path} answers {status}, not 101")


def sleep_until(t):
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


# ---------------------------------------------------------------- proxies ---


class Proxy:
    """One running proxy instance: its master, ports and logs."""

    def __init__(self, name, proc, port, tls_port, error_log, conf_path):
        self.name = name
        self.proc = proc
        self.port = port
        self.tls_port = tls_port
        self.error_log = error_log
        self.conf_path = conf_path
        self.log_seen = 0
        self.workers = set(process_tree(proc.pid)[1:])

    @property
    def pid(self):
        return self.proc.pid

    def url(self, path, tls=False):
        if tls:
            return f"wss://127.0.0.1:{self.tls_port}{path}"
        return f"ws://127.0.0.1:{self.port}{path}"

    def new_log_lines(self, levels=("alert", "crit", "emerg")):
        """Log lines at these levels written since the last call."""
        try:
            with open(self.error_log, errors="replace") as f:
                f.seek(self.log_seen)
                text = f.read()
                self.log_seen = f.tell()
        except OSError:
            return []
        return [line for line in text.splitlines()
                if any(f"[{lv}]" in line for lv in levels)]

    def health(self):
        """What went wrong with the process itself, or None.

        A master that exited, or workers that are not the ones it started
        with, mean a crash (the master respawns a dead worker)."""
        if self.proc.poll() is not None:
            return (f"{self.name} master exited with status "
                    f"{self.proc.returncode}")
        now = set(process_tree(self.pid)[1:])
        if now != self.workers:
            self.workers = now
            return (f"{self.name} workers changed (a worker died and was "
                    "respawned)")
        return None


class Bench:
    """The whole run: binaries, backends, proxies and the results."""

    def __init__(self, args, tmp, procs):
        self.args = args
        self.tmp = tmp
        self.procs = procs
        self.srcdir = os.path.dirname(os.path.dirname(
            os.path.dirname(os.path.abspath(__file__))))
        b = args.builddir
        self.wsgate_bin = os.path.join(b, "src", "wsgate")
        self.wsbench_bin = os.path.join(b, "contrib", "wsbench", "wsbench")
        self.echo_bin = os.path.join(b, "contrib", "echo-server")
        self.wsecho_bin = os.path.join(b, "contrib", "ws-echo-server")
        for path in (self.wsgate_bin, self.wsbench_bin, self.echo_bin,
                     self.wsecho_bin):
            if not os.access(path, os.X_OK):
                raise BenchError(f"{path} not found: build first (make)")
        self.nginx_bin = self.find_nginx(args.nginx)
        self.has_chat = self.find_chat()
        self.instances = 0
        self.workers = 1  # wsgate's; more only for the whole-machine (g)
        self.rows = []
        self.runs = []
        self.problems = []
        self.notes = []
        self.configs = {}
        self.cert = self.key = None
        self.tcp_port = self.ws_port = None

    def find_chat(self):
        """Whether wsgate has the chat module (`chat on;`) built in."""
        module_c = os.path.join(self.srcdir, "src", "core", "module.c")
        try:
            with open(module_c) as f:
                return "wsg_chat" in f.read()
        except OSError:
            return False

    @staticmethod
    def find_nginx(given):
        if given:
            return given if os.access(given, os.X_OK) else None
        found = shutil.which("nginx")
        if found is None and os.access("/usr/sbin/nginx", os.X_OK):
            found = "/usr/sbin/nginx"
        return found

    # ------------------------------------------------------------ setup ---

    def start_backends(self):
        """The two echo backends, on the load generator's CPU."""
        self.tcp_port = free_port()
        p = self.procs.start(
            ["taskset", "-c", str(LOAD_CPU), self.echo_bin,
             "-l", f"127.0.0.1:{self.tcp_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_tcp(self.tcp_port, p, "echo-server")
        self.tcp_proc = p
        self.ws_port = free_port()
        p = self.procs.start(
            ["taskset", "-c", str(LOAD_CPU), self.wsecho_bin,
             "-l", f"127.0.0.1:{self.ws_port}", "-t", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_tcp(self.ws_port, p, "ws-echo-server")
        self.ws_proc = p

    def check_backends(self):
        for p, what in ((self.tcp_proc, "echo-server"),
                        (self.ws_proc, "ws-echo-server")):
            if p.poll() is not None:
                raise BenchError(f"{what} exited with status {p.returncode}")

    def make_cert(self):
        """A self-signed certificate for both proxies' TLS listeners."""
        self.cert = os.path.join(self.tmp, "cert.pem")
        self.key = os.path.join(self.tmp, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
             "-keyout", self.key, "-out", self.cert, "-days", "2",
             "-subj", "/CN=127.0.0.1"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wsgate_conf(self, port, tls_port, error_log, pid_file):
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        backend = f"127.0.0.1:{self.tcp_port}"
        locations = [f"location /raw    {{ proxy_pass raw {backend}; }}",
                     f"location /length {{ proxy_pass length {backend}; }}",
                     f"location /mux    {{ proxy_pass mux {backend}; }}",
                     "location /echo   { websocket_echo on; }"]
        if self.has_chat:
            locations.append("location /chat   { chat on; }")
        locations = "".join("\n    " + line for line in locations)
        # one worker shares the machine with the load as nginx does; more
        # workers (room fan-out) spread over the whole machine
        workers = ("worker_processes 1;\nworker_cpu_affinity 01;"
                   if self.workers == 1
                   else f"worker_processes {self.workers};")
        return f"""{workers}
daemon off;
pid {pid_file};
error_log {error_log} warn;

events {{
    worker_connections {nofile};
}}

server {{
    listen 127.0.0.1:{port};{locations}
}}

server {{
    listen 127.0.0.1:{tls_port} ssl;
    ssl_certificate {self.cert};
    ssl_certificate_key {self.key};{locations}
}}
"""

    def nginx_conf(self, port, tls_port, error_log, pid_file, prefix):
        location = f"""
        location / {{
            proxy_pass http://127.0.0.1:{self.ws_port};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 3600s;
        }}"""
        temp = "".join(f"\n    {d}_temp_path {prefix}/{d};"
                       for d in ("client_body", "proxy", "fastcgi", "uwsgi",
                                 "scgi"))
        # as root, nginx's workers would switch to nobody; wsgate's stay
        # root (no user directive), so both run alike
        user = "user root;\n" if os.geteuid() == 0 else ""
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        return f"""worker_processes 1;
worker_cpu_affinity 01;
worker_rlimit_nofile {nofile};
daemon off;
master_process on;
{user}pid {pid_file};
error_log {error_log} warn;

events {{
    worker_connections {nofile};
}}

http {{
    access_log off;{temp}

    server {{
        listen 127.0.0.1:{port};{location}
    }}

    server {{
        listen 127.0.0.1:{tls_port} ssl;
        ssl_certificate {self.cert};
        ssl_certificate_key {self.key};{location}
    }}
}}
"""

    def start_proxy(self, name):
        """A fresh wsgate or nginx, ready on every location it serves.

        Fresh instances per scenario keep one scenario's buffers (and the
        allocator's retained memory) out of the next one's numbers."""
        self.instances += 1
        d = os.path.join(self.tmp, f"{name}-{self.instances}")
        os.mkdir(d)
        port, tls_port = free_port(), free_port()
        error_log = os.path.join(d, "error.log")
        pid_file = os.path.join(d, f"{name}.pid")
        conf_path = os.path.join(d, f"{name}.conf")
        if name == "wsgate":
            conf = self.wsgate_conf(port, tls_port, error_log, pid_file)
            cmd = [self.wsgate_bin, "-p", d, "-c", conf_path]
            ready = ["/raw", "/length", "/mux", "/echo"]
            if self.has_chat:
                ready.append("/chat")
        else:
            conf = self.nginx_conf(port, tls_port, error_log, pid_file, d)
            cmd = [self.nginx_bin, "-p", d, "-e", error_log, "-c", conf_path]
            ready = ["/ws"]
        with open(conf_path, "w") as f:
            f.write(conf)
        self.configs.setdefault(name, conf)
        with open(os.path.join(d, "stderr"), "w") as stderr:
            p = self.procs.start(cmd, stdout=subprocess.DEVNULL, stderr=stderr)
        for path in ready:
            wait_upgrade(port, path, False, p, name)
            wait_upgrade(tls_port, path, True, p, name)
        return Proxy(name, p, port, tls_port, error_log, conf_path)

    def stop_proxy(self, proxy):
        self.check_proxy(proxy, "at the end of the scenario")
        self.procs.stop(proxy.proc)

    def check_proxy(self, proxy, when, cmd=None):
        """Record a crash or a serious log line of wsgate as a problem."""
        if proxy.name != "wsgate":
            return
        found = []
        h = proxy.health()
        if h:
            found.append(h)
        found += proxy.new_log_lines()
        if found:
            self.problem(f"wsgate {when}: " + "; ".join(found[:5])
                         + (f" (and {len(found) - 5} more lines)"
                            if len(found) > 5 else ""), cmd, proxy)

    def problem(self, what, cmd, proxy):
        """Keep a wsgate failure with what it takes to see it again."""
        text = what
        if cmd:
            name = f"wsgate of the problems on port {proxy.port}"
            with open(proxy.conf_path) as f:
                self.configs.setdefault(name, f.read())
            text += (f"\n    reproduce: {' '.join(cmd)}"
                     f"\n    against: wsgate -F -c wsgate.conf (\"{name}\" "
                     "under Configurations) and contrib/echo-server -l "
                     f"127.0.0.1:{self.tcp_port}")
        self.problems.append(text)
        print(f"  PROBLEM: {text}", file=sys.stderr)

    # ------------------------------------------------------------- runs ---

    def wsbench_cmd(self, url, opts):
        cmd = [self.wsbench_bin, "--json"]
        if self.workers == 1:
            cmd = ["taskset", "-c", str(LOAD_CPU)] + cmd
        if url.startswith("wss:"):
            cmd.append("--insecure")
        return cmd + opts + [url]

    def wsbench(self, url, opts, proxy=None, idle=0):
        """One wsbench run; the proxy's CPU over the measured window.

        wsbench measures from WARMUP_S after its start for DURATION_S, so
        the proxy's CPU is sampled at those two moments. In idle mode the
        proxy's RSS is sampled instead, while every connection is held.
        Returns (result, stderr); the result is None when wsbench printed
        none (it could not start, e.g. nothing listens)."""
        cmd = self.wsbench_cmd(url, opts)
        p = self.procs.start(cmd, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        t0 = time.monotonic()
        cpu = rss = other = None
        try:
            if idle:
                rss = self.held_rss(p, proxy, idle)
            else:
                sleep_until(t0 + WARMUP_S)
                s0 = self.cpu_sample(p, proxy)
                sleep_until(t0 + WARMUP_S + DURATION_S)
                s1 = self.cpu_sample(p, proxy)
                if proxy is not None:
                    cpu = s1[0] - s0[0]
                known = (s1[0] - s0[0]) + (s1[1] - s0[1])
                other = max(0.0, s1[2] - s0[2] - known) / DURATION_S
            out, err = p.communicate(timeout=WARMUP_S + DURATION_S + 120)
        finally:
            self.procs.stop(p)
        try:
            res = json.loads(out)
        except ValueError:
            return None, err.strip()
        res["proxy_cpu_s"] = cpu
        res["proxy_rss_kib"] = rss
        res["other_cpu"] = other
        res["cmd"] = cmd
        return res, err.strip()

    def cpu_sample(self, p, proxy):
        """(proxy tree, benchmark's own processes, whole machine) CPU-s.

        What the machine spent beyond the proxy and the benchmark's own
        processes is other load, which makes a run less trustworthy."""
        own = [p.pid, self.tcp_proc.pid, self.ws_proc.pid, os.getpid()]
        proxy_s = tree_cpu_s(proxy.pid) if proxy is not None else 0.0
        return proxy_s, task_cpu_s(own), machine_cpu_s()

    def held_rss(self, p, proxy, n):
        """The proxy tree's RSS while all n idle connections are held.

        wsbench starts holding once every connection is up; the moment is
        seen from its socket count reaching n (or no longer growing, when
        some connections fail). The RSS is then sampled for two seconds of
        the hold and the median taken."""
        deadline = time.monotonic() + 60
        last, last_change = -1, time.monotonic()
        while p.poll() is None and time.monotonic() < deadline:
            count = socket_fds(p.pid)
            if count >= n:
                break
            if count != last:
                last, last_change = count, time.monotonic()
            elif count > 0 and time.monotonic() - last_change > 1.5:
                break
            time.sleep(0.2)
        time.sleep(1.0)
        samples = []
        end = time.monotonic() + 2.0
        while time.monotonic() < end and p.poll() is None:
            samples.append(tree_rss_kib(proxy.pid))
            time.sleep(0.2)
        return statistics.median(samples) if samples else None

    def run(self, key, label, proxy, url, opts, idle=0):
        """One measured run, recorded for the appendix and checked.

        Errors seen by wsgate's client, a crash or an [alert]/[crit]/[emerg]
        line in its log are problems, reported with the command."""
        print(f"  {label:<28} {url}", flush=True)
        res, err = self.wsbench(url, opts, proxy, idle)
        if res is None:
            what = f"{label}: wsbench gave no result ({err or 'no message'})"
            if proxy is not None and proxy.name == "wsgate":
                self.problem(f"wsgate {what}", self.wsbench_cmd(url, opts),
                             proxy)
                self.check_proxy(proxy, label)
            else:
                print(f"  bench: {what}", file=sys.stderr)
                self.notes.append(f"({key}) {what}")
            return None
        res["key"], res["label"] = key, label
        self.runs.append(res)
        errors = res["errors"]["total"]
        if proxy is not None and proxy.name == "wsgate":
            if errors:
                detail = ", ".join(f"{k} {v}" for k, v in res["errors"].items()
                                   if k != "total" and v)
                self.problem(f"wsgate {label}: {errors} client errors "
                             f"({detail})", res["cmd"], proxy)
            self.check_proxy(proxy, label, res["cmd"])
        return res

    # -------------------------------------------------------- scenarios ---

    def ab(self, key, variants, opts, tls=False, idle=0):
        """Run the variants in A/B/A/B order: every variant, then again.

        variants: (label, side, path) with side "wsgate" or "nginx". Each
        run uses a fresh proxy when idle memory is measured (so the
        baseline is a proxy that never held a connection), else one proxy
        of each kind serves both rounds, replaced only if it died.
        Returns {label: [results]}."""
        results = {label: [] for label, _, _ in variants}
        proxies = {}
        try:
            for _round in range(2):
                for label, side, path in variants:
                    if side == "nginx" and not self.nginx_bin:
                        continue
                    old = proxies.get(side)
                    dead = old is not None and old.proc.poll() is not None
                    if idle or dead or old is None:
                        if side in proxies:
                            self.stop_proxy(proxies.pop(side))
                        proxies[side] = self.start_proxy(side)
                    proxy = proxies[side]
                    if idle:
                        time.sleep(0.3)
                        base = tree_rss_kib(proxy.pid)
                    res = self.run(key, label, proxy,
                                   proxy.url(path, tls), opts, idle)
                    if res is None:
                        continue
                    if idle:
                        res["proxy_base_kib"] = base
                    results[label].append(res)
        finally:
            for proxy in proxies.values():
                self.stop_proxy(proxy)
        self.check_backends()
        return results

    def direct(self, key, opts):
        """The load generator straight to the WebSocket echo backend."""
        res = self.run(key, "direct", None,
                       f"ws://127.0.0.1:{self.ws_port}/ws", opts)
        return [res] if res is not None else []

    # ------------------------------------------------------------- rows ---

    def add_row(self, key, metric, values, unit_fmt, target=None, notes=""):
        """One table row: values maps side -> list of per-run numbers."""
        med = {}
        for side, vals in values.items():
            vals = [v for v in vals if v is not None]
            med[side] = statistics.median(vals) if vals else None
        self.rows.append({"key": key, "metric": metric, "med": med,
                          "runs": values, "fmt": unit_fmt, "target": target,
                          "notes": notes})

    def echo_rows(self, key, res, paths, tls=False, targets=None):
        """msgs/s and CPU-s per million messages of an echo scenario."""
        targets = targets or {}
        ng = res.get("nginx", [])
        dr = res.get("direct", [])
        for label in paths:
            runs = res[label]
            self.add_row(key, f"msgs/s via {label}", {
                "wsgate": [r["messages_per_s"] for r in runs],
                "nginx": [r["messages_per_s"] for r in ng],
                "direct": [r["messages_per_s"] for r in dr]},
                "int", targets.get((label, "rate")),
                errors_note(runs, ng))
            self.add_row(key, f"proxy CPU-s per Mmsg via {label}", {
                "wsgate": [cpu_per_mmsg(r) for r in runs],
                "nginx": [cpu_per_mmsg(r) for r in ng]},
                "f2", targets.get((label, "cpu")))

    def scenario_a(self):
        opts = ["-c", "100", "-s", "64", "--binary", "--pipeline", "16",
                "-d", str(DURATION_S), "--warmup", str(WARMUP_S)]
        res = self.ab("a", [("/length", "wsgate", "/length"),
                            ("/mux", "wsgate", "/mux"),
                            ("/echo", "wsgate", "/echo"),
                            ("nginx", "nginx", "/ws")], opts)
        res["direct"] = self.direct("a", opts)
        self.echo_rows("a", res, ["/length", "/mux"], targets={
            ("/length", "rate"): ("nginx", ">=", 1.0),
            ("/length", "cpu"): ("nginx", "<=", 0.8),
            ("/mux", "rate"): ("nginx", ">=", 1.0),
            ("/mux", "cpu"): ("nginx", "<=", 0.5)})
        runs = res["/echo"]
        self.add_row("a", "msgs/s via /echo (no backend)", {
            "wsgate": [r["messages_per_s"] for r in runs],
            "direct": [r["messages_per_s"] for r in res["direct"]]},
            "int", None, "the gateway answers itself: compare with direct")
        self.add_row("a", "proxy CPU-s per Mmsg via /echo", {
            "wsgate": [cpu_per_mmsg(r) for r in runs]}, "f2")

    def scenario_b(self):
        opts = ["-c", "100", "-s", "64", "--binary", "--rate", "20000",
                "-d", str(DURATION_S), "--warmup", str(WARMUP_S)]
        res = self.ab("b", [("/length", "wsgate", "/length"),
                            ("/mux", "wsgate", "/mux"),
                            ("nginx", "nginx", "/ws")], opts)
        res["direct"] = self.direct("b", opts)
        ng, dr = res.get("nginx", []), res["direct"]
        for label in ("/length", "/mux"):
            runs = res[label]
            note = errors_note(runs, ng)
            unsent = sum(r["unsent"] for r in runs + ng)
            if unsent:
                note = join_notes(note, f"{unsent} messages not sent on time")
            for pct, target in (("p50", None), ("p99", ("nginx", "<=", 0.5))):
                self.add_row("b", f"{pct} latency µs via {label}", {
                    "wsgate": [r["latency_us"][pct] for r in runs],
                    "nginx": [r["latency_us"][pct] for r in ng],
                    "direct": [r["latency_us"][pct] for r in dr]},
                    "int", target, note if pct == "p50" else "")

    def scenario_c(self):
        opts = ["-c", "10", "-s", "64k", "--binary", "--pipeline", "4",
                "-d", str(DURATION_S), "--warmup", str(WARMUP_S)]
        res = self.ab("c", [("/length", "wsgate", "/length"),
                            ("/mux", "wsgate", "/mux"),
                            ("nginx", "nginx", "/ws")], opts)
        res["direct"] = self.direct("c", opts)
        ng, dr = res.get("nginx", []), res["direct"]
        for label in ("/length", "/mux"):
            runs = res[label]
            self.add_row("c", f"MB/s via {label}", {
                "wsgate": [r["mb_per_s"] for r in runs],
                "nginx": [r["mb_per_s"] for r in ng],
                "direct": [r["mb_per_s"] for r in dr]},
                "f1", ("direct", ">=", 0.6), errors_note(runs, ng))
            self.add_row("c", f"proxy CPU-s per GB via {label}", {
                "wsgate": [cpu_per_gb(r) for r in runs],
                "nginx": [cpu_per_gb(r) for r in ng]}, "f2")

    def idle_count(self):
        """How many idle connections fit the open-files limit.

        A proxy with one backend connection per client (wsgate raw, nginx)
        needs two descriptors per client, plus a few of its own; the limit
        cannot be raised past the hard one. nginx's worker_connections
        cannot usefully pass that limit, and once fewer than 1/16 of them
        are free nginx closes connections still waiting for their request,
        so only 15/16 of them can be held."""
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        if hard == resource.RLIM_INFINITY:
            return IDLE_CONNECTIONS
        n = min(IDLE_CONNECTIONS, (hard * 15 // 16 - 256) // 2 // 1000 * 1000)
        if n < IDLE_CONNECTIONS:
            self.notes.append(
                f"(d) holds {n:,} connections, not {IDLE_CONNECTIONS:,}: a "
                "proxy with one backend connection per client needs two "
                f"descriptors per client, the open-files limit is {hard:,} "
                "(nginx's worker_connections are set to it), and nginx "
                "starts closing connections that have not sent their "
                "request once fewer than 1/16 of its worker_connections "
                "are free.")
        return n

    def scenario_d(self):
        n = self.idle_count()
        opts = ["--idle", str(n), "--hold", str(IDLE_HOLD_S)]
        res = self.ab("d", [("/raw", "wsgate", "/raw"),
                            ("/mux", "wsgate", "/mux"),
                            ("nginx", "nginx", "/ws")], opts, idle=n)
        ng = res.get("nginx", [])
        for label, limit in (("/raw", 2.5), ("/mux", 1.0)):
            runs = res[label]
            note = errors_note(runs, ng)
            short = [r for r in runs + ng if r["idle"]["held"] < n]
            if short:
                note = join_notes(note, "not every connection was held: "
                                  + ", ".join(str(r["idle"]["held"])
                                              for r in short))
            metric = f"proxy KiB per connection via {label} ({n:,} held)"
            self.add_row("d", metric, {
                "wsgate": [kib_per_conn(r) for r in runs],
                "nginx": [kib_per_conn(r) for r in ng]},
                "f2", ("abs", "<=", limit), note)

    def connect_rows(self, key, res, paths, rate_target, cpu_target):
        ng, dr = res.get("nginx", []), res.get("direct", [])
        for label in paths:
            runs = res[label]
            self.add_row(key, f"handshakes/s via {label}", {
                "wsgate": [r["handshakes_per_s"] for r in runs],
                "nginx": [r["handshakes_per_s"] for r in ng],
                "direct": [r["handshakes_per_s"] for r in dr]},
                "int", rate_target, errors_note(runs, ng))
            self.add_row(key, f"proxy CPU-ms per 1k conns via {label}", {
                "wsgate": [cpu_per_kconn(r) for r in runs],
                "nginx": [cpu_per_kconn(r) for r in ng]},
                "f1", cpu_target)

    def scenario_e(self):
        opts = ["--connect-rate", "-c", "50", "-s", "64", "--binary",
                "-d", str(DURATION_S), "--warmup", str(WARMUP_S)]
        res = self.ab("e", [("/raw", "wsgate", "/raw"),
                            ("/mux", "wsgate", "/mux"),
                            ("nginx", "nginx", "/ws")], opts)
        res["direct"] = self.direct("e", opts)
        self.connect_rows("e", res, ["/raw", "/mux"], None,
                          ("nginx", "<=", 0.8))

    def scenario_f(self):
        opts = ["-c", "100", "-s", "64", "--binary", "--pipeline", "16",
                "-d", str(DURATION_S), "--warmup", str(WARMUP_S)]
        res = self.ab("f", [("wss /length", "wsgate", "/length"),
                            ("wss /mux", "wsgate", "/mux"),
                            ("nginx", "nginx", "/ws")], opts, tls=True)
        self.echo_rows("f", res, ["wss /length", "wss /mux"], targets={
            ("wss /length", "cpu"): ("nginx", "<=", 0.9),
            ("wss /mux", "cpu"): ("nginx", "<=", 0.9)})
        opts = ["--connect-rate", "-c", "50", "-s", "64", "--binary",
                "-d", str(DURATION_S), "--warmup", str(WARMUP_S)]
        res = self.ab("f", [("wss /raw", "wsgate", "/raw"),
                            ("wss /mux", "wsgate", "/mux"),
                            ("nginx", "nginx", "/ws")], opts, tls=True)
        self.connect_rows("f", res, ["wss /raw", "wss /mux"],
                          ("nginx", ">=", 1.0), None)

    def other_load_note(self):
        """A note when something besides the benchmark used the machine."""
        loads = [r["other_cpu"] for r in self.runs
                 if r.get("other_cpu") is not None]
        busy = [x for x in loads if x >= 0.1]
        if busy:
            self.notes.append(
                f"Other processes used 10% of a CPU or more during "
                f"{len(busy)} of {len(loads)} timed runs (up to "
                f"{max(busy):.0%}); those runs, marked in the list below, "
                "are less trustworthy.")

    def room_skip_reason(self):
        """Why room fan-out cannot be measured here, or None.

        It needs wsgate's chat module, and a load tool whose members say
        hello and join the room first: the chat passes a say on only from
        a member, to the other members."""
        if not self.has_chat:
            return "skipped: needs the chat module (not built into wsgate)"
        usage = subprocess.run([self.wsbench_bin, "-h"], text=True,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT).stdout
        if "--join" not in usage:
            return ("skipped: wsbench's room mode cannot join its members "
                    "to the room, and the chat passes on a say only from "
                    "members")
        return None

    def scenario_g(self):
        """One sender, ROOM_MEMBERS members, through wsgate's chat.

        nginx has no rooms of its own (it would need an application behind
        it), so only wsgate is measured. Member 0 says its send time every
        ROOM_INTERVAL_S; every other member receives it."""
        reason = self.room_skip_reason()
        if reason:
            print(f"  {reason}")
            self.rows.append({"key": "g",
                              "metric": f"--room R --members {ROOM_MEMBERS:,}",
                              "med": {}, "runs": {}, "fmt": "int",
                              "target": None, "notes": reason})
            return
        opts = ["--room", "bench", "--members", str(ROOM_MEMBERS), "--join",
                "--interval", str(ROOM_INTERVAL_S),
                "-d", str(DURATION_S), "--warmup", str(WARMUP_S)]
        self.workers = ROOM_WORKERS
        try:
            runs = self.ab("g", [("/chat", "wsgate", "/chat")], opts)["/chat"]
        finally:
            self.workers = 1
        note = join_notes("nginx has no rooms of its own",
                          errors_note(runs))
        self.add_row("g", "deliveries/s via /chat", {
            "wsgate": [r["room"]["deliveries_per_s"] for r in runs]},
            "int", ("rate", ">=", ROOM_TARGET), note)
        for pct in ("p50", "p99"):
            self.add_row("g", f"{pct} delivery latency µs via /chat", {
                "wsgate": [r["latency_us"].get(pct) for r in runs]}, "int")
        self.add_row("g", "proxy CPU-s per M deliveries via /chat", {
            "wsgate": [cpu_per_mmsg(r) for r in runs]}, "f2")


# ------------------------------------------------------------- numbers ---


def cpu_per_mmsg(r):
    n = r["messages"]
    if r["proxy_cpu_s"] is None or not n:
        return None
    return r["proxy_cpu_s"] / (n / 1e6)


def cpu_per_gb(r):
    b = r["bytes"]
    if r["proxy_cpu_s"] is None or not b:
        return None
    return r["proxy_cpu_s"] / (b / 1e9)


def cpu_per_kconn(r):
    """CPU milliseconds per 1,000 connections over the window.

    In --connect-rate mode handshakes_per_s counts only the window."""
    n = r["handshakes_per_s"] * r["duration_s"]
    if r["proxy_cpu_s"] is None or not n:
        return None
    return r["proxy_cpu_s"] * 1000 / (n / 1000)


def kib_per_conn(r):
    held = r["idle"]["held"]
    if r["proxy_rss_kib"] is None or not held:
        return None
    return (r["proxy_rss_kib"] - r["proxy_base_kib"]) / held


def errors_note(*groups):
    total = sum(r["errors"]["total"] for g in groups for r in g)
    return f"{total} client errors" if total else ""


def join_notes(a, b):
    return f"{a}; {b}" if a and b else a or b


def fmt(v, kind):
    if v is None:
        return "—"
    if kind == "int":
        return f"{v:,.0f}"
    if kind == "f1":
        return f"{v:,.1f}"
    return f"{v:,.2f}"


def target_text(row, nginx_ran):
    """The target and whether it is met, e.g. '≤ 0.8× nginx: met'."""
    t = row["target"]
    if t is None:
        return ""
    ref, op, factor = t
    sign = "≤" if op == "<=" else "≥"
    if ref in ("abs", "rate"):
        want = (f"{sign} {factor:g} KiB" if ref == "abs"
                else f"{sign} {factor:,.0f}/s")
        ref_value = factor
        factor = 1.0
    else:
        want = f"{sign} {factor:g}× {ref}"
        ref_value = row["med"].get(ref)
    v = row["med"].get("wsgate")
    if ref == "nginx" and not nginx_ran:
        return f"{want}: n/a (nginx not run)"
    if v is None or ref_value is None:
        return f"{want}: n/a"
    ok = v <= factor * ref_value if op == "<=" else v >= factor * ref_value
    extra = ""
    if ref == "direct":
        extra = f" ({v / ref_value:.2f}× direct)" if ref_value else ""
    return f"{want}: {'met' if ok else 'not met'}{extra}"


def table_lines(rows, nginx_ran, markdown):
    head = ["scenario", "metric", "wsgate", "nginx", "direct",
            "wsgate/nginx", "target", "notes"]
    body = []
    for row in rows:
        med = row["med"]
        w, n = med.get("wsgate"), med.get("nginx")
        ratio = f"{w / n:.2f}×" if w is not None and n else "—"
        spread = []
        for side in ("wsgate", "nginx"):
            vals = [v for v in row["runs"].get(side, []) if v is not None]
            if len(vals) == 2 and statistics.median(vals):
                d = abs(vals[0] - vals[1]) / 2 / statistics.median(vals)
                if d >= 0.05:
                    spread.append(f"{side} runs ±{d:.0%}")
        notes = join_notes(row["notes"], ", ".join(spread))
        body.append([SCENARIOS[row["key"]].split(" ")[0], row["metric"],
                     fmt(w, row["fmt"]),
                     fmt(n, row["fmt"]) if nginx_ran else "not run",
                     fmt(med.get("direct"), row["fmt"]), ratio,
                     target_text(row, nginx_ran), notes])
    if markdown:
        out = ["| " + " | ".join(head) + " |",
               "|" + "|".join("---" for _ in head) + "|"]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |"
                for r in body]
        return out
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    out = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(head)).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip()
            for r in body]
    return out


# ------------------------------------------------------------- report ---


def command_output(cmd):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=10)
        return p.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_report(bench, path, started, elapsed, load_before):
    nginx_ran = bool(bench.nginx_bin)
    wsgate_v = command_output([bench.wsgate_bin, "-V"]).splitlines()
    nginx_v = (command_output([bench.nginx_bin, "-v"]) if nginx_ran
               else "not installed")
    lines = [
        "# Performance: wsgate and nginx",
        "",
        "Generated by `make bench` (`contrib/bench/bench.py`); rerun it to",
        "refresh this page. Numbers from one machine are a comparison of the",
        "two proxies under the same load there, not absolute capacities.",
        "",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC (the run took {elapsed:.0f} s)",
        f"- Machine: {os.cpu_count()} CPUs ({cpu_model()}), "
        f"{mem_total_gib():.0f} GiB, Linux {platform.release()}; "
        f"load average before the run {load_before}",
        f"- wsgate: {'; '.join(wsgate_v)}",
        f"- nginx: {nginx_v.replace('nginx version: ', '')}",
        f"- {command_output(['openssl', 'version'])} (the `openssl` CLI "
        "that made the RSA 2048 test certificate)",
        "",
        "## Method",
        "",
        "- Everything runs on 127.0.0.1. The proxy under test has one worker "
        "pinned to CPU 0 (`worker_cpu_affinity 01`); the load generator "
        "(`contrib/wsbench`, one thread) and the echo backends "
        "(`contrib/echo-server` for wsgate, `contrib/ws-echo-server -t 1` for "
        "nginx and the direct run) share CPU 1 (`taskset -c 1`). The direct "
        "column is wsbench talking to ws-echo-server with no proxy; both then "
        "share one CPU, so it is a reference, not a ceiling.",
        "- wsgate proxies to the TCP echo backend: `/length` (`proxy_pass "
        "length`, one backend connection per client, message boundaries "
        "kept), `/mux` (`proxy_pass mux`, one shared pool connection), `/raw` "
        "(`proxy_pass raw`) and `/echo` (`websocket_echo on`, no backend). "
        "nginx proxies the WebSocket itself to ws-echo-server (`proxy_pass "
        "http://`, HTTP/1.1 upgrade), so it relays frames without parsing "
        "them while wsgate decodes each message and re-frames it.",
        "- `raw` carries a byte stream: pipelined messages are merged and "
        "split by TCP reads on the way back, so the echo no longer matches "
        "message for message. It is measured only where boundaries do not "
        "matter (idle connections, and handshakes with one message each); "
        "`length` stands for the one-connection-per-client path in the "
        "message scenarios (raw also works there with `--pipeline 1`).",
        f"- Each scenario measures {DURATION_S} s after a {WARMUP_S} s "
        "warm-up. "
        "wsgate and nginx run in A/B/A/B order (each wsgate path, then nginx, "
        "twice) and each cell is the median of the two runs; the direct run "
        "is done once. Notes give the spread between the two runs when it is "
        "5% or more.",
        "- Proxy CPU: user + system time of the proxy's whole process tree "
        "(master and workers, and reaped children) from `/proc/PID/stat`, "
        "sampled at the start and end of the measured window; reported per "
        "million echoed messages (each message crosses the proxy twice), per "
        "GB echoed, or per 1,000 connections.",
        "- Idle memory: a fresh proxy per run; the sum of `VmRSS` of its "
        "process tree while wsbench holds the connections (median of "
        "samples over 2 s of the hold), minus the same sum before any "
        "connection, divided by the connections held.",
        "- TLS: the same self-signed certificate on both proxies, wsbench "
        "`wss://` with `--insecure`; every connection makes a full "
        "handshake (no resumption).",
        "- Latency at a fixed rate is open loop: each message's latency "
        "counts from when it was due, so a stall is not hidden.",
        f"- Room fan-out uses wsgate's chat (`chat on;`): {ROOM_MEMBERS:,} "
        "members say hello and join one room (`wsbench --room --join`), "
        f"member 0 says its send time every {ROOM_INTERVAL_S * 1000:g} ms and "
        "the latency of each delivery to the other members is measured. "
        f"It is a whole-machine figure: wsgate runs {ROOM_WORKERS} workers "
        "and nothing is pinned (the members are spread over the workers by "
        "the kernel, and a say reaches the other workers' members through "
        "the worker bus). "
        "nginx has no rooms of its own, so this row is wsgate's alone.",
        "",
        "## Results",
        "",
    ]
    lines += table_lines(bench.rows, nginx_ran, markdown=True)
    lines += ["", "Targets: (a) CPU per message ≤ 0.8× nginx on the "
              "one-connection-per-client path, ≤ 0.5× via mux, messages/s ≥ "
              "nginx; (b) p99 ≤ 0.5× nginx; (c) MB/s ≥ 0.6× direct; (d) ≤ 2.5 "
              "KiB per connection via raw, ≤ 1 KiB via mux; (e) CPU per 1,000 "
              "connections ≤ 0.8× nginx; (f) over TLS, CPU per message ≤ 0.9× "
              "nginx and handshakes/s ≥ nginx; (g) ≥ "
              f"{ROOM_TARGET:,} room deliveries/s on the whole machine with "
              f"{ROOM_WORKERS} workers.", ""]
    if not nginx_ran:
        lines += ["nginx was not installed for this run (install it with "
                  "`contrib/deps.sh --bench`): only wsgate and direct were "
                  "measured.", ""]
    if bench.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in bench.notes] + [""]
    lines += ["## Problems seen in wsgate", ""]
    if bench.problems:
        lines += ["```"] + bench.problems + ["```", ""]
    else:
        lines += ["None: no client errors, crashes or `[alert]`, `[crit]` or "
                  "`[emerg]` log lines.", ""]
    lines += ["## Runs", "", "| scenario | run | url | result |",
              "|---|---|---|---|"]
    for r in bench.runs:
        lines.append(f"| {r['key']} | {r['label']} | `{path_of(r['url'])}` | "
                     f"{run_summary(r)} |")
    lines += ["", "## Configurations", "",
              "As generated for this run: each scenario starts fresh "
              "instances on new ports, and the first of each kind is shown. "
              "BENCHDIR is the run's temporary directory.", ""]
    for name, conf in bench.configs.items():
        conf = conf.replace(bench.tmp, "BENCHDIR").rstrip()
        lines += [f"{name}:", "", "```", conf, "```", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def path_of(url):
    scheme, rest = url.split("://", 1)
    return scheme + "://…/" + rest.split("/", 1)[1]


def run_summary(r):
    """The figures of one run for the appendix."""
    parts = []
    if r["mode"] == "idle":
        parts.append(f"held {r['idle']['held']:,}/{r['idle']['requested']:,}")
        if r.get("proxy_rss_kib") is not None:
            parts.append(f"RSS {r['proxy_base_kib']:,.0f} → "
                         f"{r['proxy_rss_kib']:,.0f} KiB")
    elif r["mode"] == "connect-rate":
        parts.append(f"{r['handshakes_per_s']:,.0f} handshakes/s")
    elif r["mode"] == "room":
        lat = r["latency_us"]
        parts.append(f"{r['room']['sent']:,} says, "
                     f"{r['room']['deliveries_per_s']:,.0f} deliveries/s")
        if lat.get("samples"):
            parts.append(f"p50/p99/max {lat['p50']:,.0f}/{lat['p99']:,.0f}/"
                         f"{lat['max']:,.0f} µs")
    else:
        parts.append(f"{r['messages_per_s']:,.0f} msg/s, "
                     f"{r['mb_per_s']:,.1f} MB/s")
        lat = r["latency_us"]
        if lat.get("samples"):
            parts.append(f"p50/p99/max {lat['p50']:,.0f}/{lat['p99']:,.0f}/"
                         f"{lat['max']:,.0f} µs")
    if r.get("proxy_cpu_s") is not None:
        parts.append(f"proxy CPU {r['proxy_cpu_s']:.2f} s")
    if r.get("other_cpu") is not None and r["other_cpu"] >= 0.05:
        parts.append(f"other load {r['other_cpu']:.0%} of a CPU")
    if r["errors"]["total"]:
        parts.append(f"{r['errors']['total']} errors")
    return ", ".join(parts)


def mem_total_gib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0


# --------------------------------------------------------------- main ---


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--builddir", default=os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))),
        help="where wsgate and contrib were built (default: the source tree)")
    ap.add_argument("--out", help="write the Markdown report here")
    ap.add_argument("--nginx", help="nginx binary (default: from PATH or "
                    "/usr/sbin/nginx)")
    ap.add_argument("--only", default="abcdefg", metavar="LETTERS",
                    help="run only these scenarios, e.g. --only ad")
    return ap.parse_args()


def on_sigterm(signum, frame):
    """Turn TERM into an exception so the finally blocks stop everything."""
    raise KeyboardInterrupt


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)
    if not {PROXY_CPU, LOAD_CPU} <= os.sched_getaffinity(0):
        print(f"bench: needs CPUs {PROXY_CPU} and {LOAD_CPU}", file=sys.stderr)
        return 1
    # this script and the masters it starts stay off the proxy's CPU
    os.sched_setaffinity(0, {LOAD_CPU})
    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.monotonic()
    with open("/proc/loadavg") as f:
        load_before = " ".join(f.read().split()[:3])
    busy = machine_busy()
    if busy > 0.1:
        print(f"bench: warning: the machine is {busy:.0%} busy before the "
              "start; results will be noisy", file=sys.stderr)
    procs = Processes()
    with tempfile.TemporaryDirectory(prefix="wsgate-bench-") as tmp:
        try:
            bench = Bench(args, tmp, procs)
            if not bench.nginx_bin:
                print("nginx not found: install it with contrib/deps.sh "
                      "--bench (running the wsgate and direct columns only)")
            bench.make_cert()
            bench.start_backends()
            if busy > 0.1:
                bench.notes.append(
                    f"The machine was {busy:.0%} busy with other work just "
                    "before the run.")
            for key in "abcdefg":
                if key not in args.only:
                    continue
                print(SCENARIOS[key], flush=True)
                getattr(bench, f"scenario_{key}")()
            bench.other_load_note()
        except BenchError as e:
            print(f"bench: {e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("bench: interrupted", file=sys.stderr)
            return 130
        finally:
            procs.stop_all()
    elapsed = time.monotonic() - t_start
    print()
    for line in table_lines(bench.rows, bool(bench.nginx_bin), markdown=False):
        print(line)
    for n in bench.notes:
        print(f"note: {n}")
    if bench.problems:
        print("\nproblems seen in wsgate:")
        for p in bench.problems:
            print(f"  {p}")
    print(f"\n{elapsed:.0f} s")
    if args.out:
        write_report(bench, args.out, started, elapsed, load_before)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
