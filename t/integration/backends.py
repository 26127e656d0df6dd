"""
Backends for the upstream tests, and a fast client.

As a module it gives the tests:
  - Backends, behind each test module's `backends` fixture: it starts
    backend processes and stops each one by PID at teardown (TERM, then
    KILL after a bound): this file run as a script (modes below),
    contrib/echo-server and the reference mux/json server
    contrib/backend/wsgate_backend.py;
  - Listener: a listening socket in the test's own process, for backends
    that must do one precise thing (read a PROXY header, stay silent, never
    read, flood, reset);
  - AsyncClient: a WebSocket client over asyncio streams, light enough to
    open thousands of connections;
  - small readers of /proc: a process's resident memory and how many
    established connections a local port holds.

As a script it is a raw TCP backend:
  python3 backends.py --listen HOST:PORT --ready-file PATH --mode MODE [--name NAME]
  modes:
    echo       every byte read is written back
    name       writes NAME and a newline on each connection, then echoes
    mux-flood  a mux echo server; a text message "flood S" makes it send
               64 KiB binary messages to the sender for S seconds, to an
               id the gateway may already have closed, as a backend that
               has not yet seen the close would
The ready file gets "HOST:PORT" once the socket listens (port 0 picks one).
SIGTERM stops it with status 0.

Backend ports go into a gateway's configuration as numbers, never as
"$port..." placeholders: the gateway fixture waits until every placeholder
port answers an HTTP request, which a backend does not.
"""
import argparse
import asyncio
import os
import random
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from support import HOST, free_port, wait_until
from wsclient import (OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT,
                      close_payload, frame, upgrade_request)

SRCDIR = Path(os.environ.get("WSGATE_SRCDIR") or Path(__file__).resolve().parents[2])
PYTHON = "/usr/bin/python3"
THIS = Path(__file__).resolve()
REFERENCE = SRCDIR / "contrib" / "backend" / "wsgate_backend.py"
ECHO_SOURCE = SRCDIR / "contrib" / "echo-server.c"

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
TIMEOUT = 5.0

sys.path.insert(0, str(REFERENCE.parent))
import wsgate_proto as proto  # noqa: E402  (found through the line above)


# ---- processes --------------------------------------------------------------


class BackendProcess:
    """One backend process, started with a ready file and stopped by PID.

    The port is given, or chosen by the process the first time (port 0),
    and kept, so start() after stop() or kill() listens on the same port
    again.
    """

    def __init__(self, tmp_path, label, argv_for, ready, port=0):
        self.dir = Path(tmp_path)
        self.label = label
        self.argv_for = argv_for  # port -> argv
        self.ready = ready        # (process) -> port or None
        self.port = port
        self.proc = None
        self.stderr_path = self.dir / f"backend-{label}.err"
        self.ready_file = self.dir / f"backend-{label}.ready"

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, f"{self.label} already runs"
        self.ready_file.unlink(missing_ok=True)
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(self.argv_for(self.port), stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err, start_new_session=True)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"backend {self.label} exited with "
                                     f"{self.proc.returncode}:\n{self.stderr()}")
            return self.ready(self)

        self.port = wait_until(up, START_TIMEOUT, f"backend {self.label} to listen")
        return self

    @property
    def address(self):
        return f"{HOST}:{self.port}"

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """TERM, then KILL after STOP_TIMEOUT; returns the exit status."""
        if self.running():
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(STOP_TIMEOUT)
        return None if self.proc is None else self.proc.returncode

    def kill(self):
        """Kills the process at once (SIGKILL): its sockets close without
        any goodbye from the program."""
        if self.running():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT)

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def _ready_file_port(b):
    try:
        text = b.ready_file.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text.rpartition(":")[2]) if text else None


def _echo_server_port(b):
    m = re.search(r"listening on [\d.]+:(\d+)", b.stderr())
    return int(m.group(1)) if m else None


_echo_server_bin = None


def echo_server_bin(tmp_path_factory):
    """contrib/echo-server: a build beside the tested binary or in the
    source tree when no older than its source, else one built now (once
    per test run)."""
    global _echo_server_bin
    if _echo_server_bin is None:
        _echo_server_bin = build_echo_server(tmp_path_factory)
    return _echo_server_bin


def build_echo_server(tmp_path_factory):
    candidates = []
    wsgate_bin = os.environ.get("WSGATE_BIN")
    if wsgate_bin:
        candidates.append(Path(wsgate_bin).resolve().parents[1] / "contrib" / "echo-server")
    candidates.append(SRCDIR / "contrib" / "echo-server")
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK) \
                and path.stat().st_mtime >= ECHO_SOURCE.stat().st_mtime:
            return path
    out = tmp_path_factory.mktemp("echo-server") / "echo-server"
    cmd = ["gcc", "-std=c11", "-D_GNU_SOURCE", "-O2", str(ECHO_SOURCE), "-levent", "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stderr}"
    return out


class Backends:
    """Starts backend processes for one test and stops them all after it."""

    def __init__(self, tmp_path, tmp_path_factory):
        self.dir = Path(tmp_path)
        self.factory = tmp_path_factory
        self.started = []

    def _add(self, label, argv_for, ready, port=0):
        b = BackendProcess(self.dir, label, argv_for, ready, port)
        self.started.append(b)
        return b.start()

    def raw(self, mode="echo", name="backend"):
        """This file as a script, in <mode> (echo, name or mux-flood)."""
        label = f"{len(self.started) + 1}-{name}"

        def argv(port):
            return [PYTHON, str(THIS), "--listen", f"{HOST}:{port}", "--mode", mode,
                    "--name", name, "--ready-file", str(self.dir / f"backend-{label}.ready")]

        return self._add(label, argv, _ready_file_port)

    def echo(self):
        """contrib/echo-server, the fast C echo (which wants a port of
        its own: it does not take port 0)."""
        binary = echo_server_bin(self.factory)
        return self._add(f"{len(self.started) + 1}-echo-server",
                         lambda port: [str(binary), "-l", f"{HOST}:{port}"],
                         _echo_server_port, port=free_port())

    def reference(self, protocol, name, *args):
        """contrib/backend/wsgate_backend.py speaking <protocol> (mux or
        json) as <name>, app echo unless <args> say otherwise."""
        label = f"{len(self.started) + 1}-{name}"

        def argv(port):
            return [PYTHON, str(REFERENCE), "--listen", f"{HOST}:{port}",
                    "--protocol", protocol, "--name", name,
                    "--ready-file", str(self.dir / f"backend-{label}.ready"), *args]

        return self._add(label, argv, _ready_file_port)

    def stop_all(self):
        """Stops every process; returns what went wrong."""
        problems = []
        for b in self.started:
            b.stop()
            if "Traceback" in b.stderr():
                problems.append(f"backend {b.label} raised:\n{b.stderr()}")
        return problems


def backend_processes(tmp_path, tmp_path_factory):
    """The body of a test module's `backends` fixture: yields a Backends,
    then stops every process it started by PID, and fails the test if one
    of them raised."""
    b = Backends(tmp_path, tmp_path_factory)
    try:
        yield b
    finally:
        problems = b.stop_all()
    assert not problems, "\n".join(problems)


def dead_port():
    """A port of 127.0.0.1 that refuses connections: bound, never listening,
    so no other test can take it meanwhile. Returns (socket, port); keep the
    socket open while the port must stay dead."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, 0))
    return s, s.getsockname()[1]


# ---- a backend in the test's process ----------------------------------------


class Listener:
    """A listening socket; accept() returns the gateway's connections."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.accepted = []

    @property
    def address(self):
        return f"{HOST}:{self.port}"

    def accept(self, timeout=TIMEOUT):
        self.sock.settimeout(timeout)
        try:
            conn, _ = self.sock.accept()
        except socket.timeout:
            raise AssertionError(f"the gateway did not connect within {timeout:g} s") from None
        conn.settimeout(timeout)
        self.accepted.append(conn)
        return conn

    def close(self):
        for s in self.accepted:
            s.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def recv_exactly(sock, n, timeout=TIMEOUT):
    """<n> bytes from <sock>, within <timeout> seconds."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while len(data) < n:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"got {len(data)} of {n} bytes: {bytes(data[:80])!r}")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(n - len(data))
        except socket.timeout:
            continue
        if not chunk:
            raise AssertionError(f"closed after {len(data)} of {n} bytes: {bytes(data[:80])!r}")
        data += chunk
    return bytes(data)


def send_until_blocked(sock, chunk, stall=1.0, limit=200 << 20, timeout=20.0):
    """Writes <chunk> on the non-blocking <sock> again and again until the
    socket stays unwritable for <stall> seconds; returns the bytes written.
    Fails past <limit> bytes or <timeout> seconds: the peer never pushed
    back."""
    sock.setblocking(False)
    sent = 0
    view = memoryview(chunk)
    offset = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            n = sock.send(view[offset:])
        except BlockingIOError:
            _, writable, _ = select.select([], [sock], [], stall)
            if not writable:
                return sent
            continue
        sent += n
        offset = (offset + n) % len(chunk)
        if sent > limit:
            raise AssertionError(f"{sent} bytes went out and the peer still reads")
    raise AssertionError(f"still writing after {timeout:g} s ({sent} bytes)")


# ---- /proc ------------------------------------------------------------------


def vm_rss_kib(pid):
    """The resident memory of <pid> in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def established(port):
    """How many established TCP connections have <port> as local port."""
    n = 0
    local = f":{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(local) and fields[3] == "01":
            n += 1
    return n


# ---- a light WebSocket client over asyncio ----------------------------------


class AsyncClient:
    """One WebSocket connection over asyncio streams, built on the frames
    of wsclient. Every read is bounded by <timeout>."""

    def __init__(self, reader, writer, status, timeout):
        self.reader = reader
        self.writer = writer
        self.status = status
        self.timeout = timeout

    @classmethod
    async def connect(cls, port, path="/", headers=(), timeout=TIMEOUT):
        """Opens a connection and sends the upgrade; the status is kept
        (101, or e.g. 502, in which case the connection is closed)."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
        writer.write(upgrade_request(path, headers=headers))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        status = int(head.split(b" ", 2)[1])
        client = cls(reader, writer, status, timeout)
        if status != 101:
            writer.close()
        return client

    @property
    def local_port(self):
        return self.writer.get_extra_info("sockname")[1]

    async def send(self, payload):
        """Sends str as text, bytes as binary."""
        if isinstance(payload, str):
            self.writer.write(frame(OP_TEXT, payload.encode("utf-8")))
        else:
            self.writer.write(frame(OP_BINARY, payload))
        await asyncio.wait_for(self.writer.drain(), self.timeout)

    async def recv_frame(self):
        """(fin, opcode, payload) of the next frame."""
        async def read():
            b0, b1 = await self.reader.readexactly(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            return bool(b0 & 0x80), b0 & 0x0F, await self.reader.readexactly(n)
        return await asyncio.wait_for(read(), self.timeout)

    async def recv(self):
        """The next message: str for text, bytes for binary. A close frame
        raises Closed with its code."""
        parts = []
        opcode = None
        while True:
            fin, op, payload = await self.recv_frame()
            if op == OP_CLOSE:
                raise Closed(struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None)
            if op == OP_PING:
                self.writer.write(frame(OP_PONG, payload))
                continue
            if op == OP_PONG:
                continue
            opcode = opcode or op
            parts.append(payload)
            if fin:
                data = b"".join(parts)
                return data.decode("utf-8") if opcode == OP_TEXT else data

    async def recv_close(self):
        """Reads until the close frame; returns its code."""
        try:
            while True:
                await self.recv()
        except Closed as c:
            return c.code

    async def close(self, code=1000):
        """The close handshake, then TCP close; a connection already gone
        is closed quietly."""
        try:
            self.writer.write(frame(OP_CLOSE, close_payload(code)))
            await asyncio.wait_for(self.writer.drain(), self.timeout)
            await self.recv_close()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.writer.close()

    def abort(self):
        self.writer.transport.abort()


class Closed(Exception):
    """The gateway sent a close frame."""

    def __init__(self, code):
        super().__init__(f"closed with {code}")
        self.code = code


# ---- the script: raw backends -----------------------------------------------


FLOOD_CHUNK = 64 * 1024


async def serve_echo(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def name_server(name):
    async def serve(reader, writer):
        writer.write(name.encode() + b"\n")
        await serve_echo(reader, writer)
    return serve


async def flood(writer, conn_id, seconds):
    payload = random.randbytes(FLOOD_CHUNK)
    envelope = proto.encode_mux(proto.Envelope.message(conn_id, payload))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        writer.write(envelope)
        await writer.drain()


async def serve_mux_flood(reader, writer):
    tasks = set()
    try:
        while True:
            env = await proto.read_mux(reader)
            if env is None:
                break
            if env.kind == proto.PING:
                writer.write(proto.encode_mux(proto.Envelope.pong(env.data)))
            elif env.kind == proto.MESSAGE and not env.binary \
                    and env.data.startswith(b"flood "):
                task = asyncio.create_task(flood(writer, env.id, float(env.data[6:])))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            elif env.kind in (proto.MESSAGE, proto.CLOSE):
                writer.write(proto.encode_mux(env))
            await writer.drain()
    except (ConnectionError, proto.ProtocolError):
        pass
    finally:
        for task in tasks:
            task.cancel()
        writer.close()


async def serve(options):
    handler = {"echo": serve_echo, "name": name_server(options.name),
               "mux-flood": serve_mux_flood}[options.mode]
    host, _, port = options.listen.rpartition(":")
    server = await asyncio.start_server(handler, host, int(port), backlog=1024)
    bound = server.sockets[0].getsockname()
    tmp = options.ready_file.with_name(options.ready_file.name + ".tmp")
    tmp.write_text(f"{host}:{bound[1]}\n")
    os.replace(tmp, options.ready_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signo in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signo, stop.set)
    async with server:
        await stop.wait()


def main(argv=None):
    p = argparse.ArgumentParser(description="raw test backends")
    p.add_argument("--listen", required=True, metavar="HOST:PORT")
    p.add_argument("--mode", required=True, choices=("echo", "name", "mux-flood"))
    p.add_argument("--name", default="backend")
    p.add_argument("--ready-file", required=True, type=Path)
    asyncio.run(serve(p.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
