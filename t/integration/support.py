"""
Helpers shared by the integration tests: bounded waiting, free ports, raw
HTTP over sockets, and reading processes and sockets from /proc.
"""
import os
import socket
import time
from pathlib import Path

HOST = "127.0.0.1"
POLL_INTERVAL = 0.01


def wait_until(predicate, timeout, what, interval=POLL_INTERVAL):
    """Calls predicate() until it returns something true, and returns that.

    Gives up after <timeout> seconds (and after a bounded number of calls)
    with an AssertionError naming <what>.
    """
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 2):
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def free_port():
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_refuses(port):
    """True when a connection to <port> is refused. A reset while the
    listener is being closed means "not closed yet", not an error."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True
    except (ConnectionResetError, socket.timeout):
        return False


class Response:
    """A parsed HTTP/1.1 response: status, lower-cased headers, body."""

    def __init__(self, raw):
        self.raw = raw
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status_line = lines[0]
        parts = self.status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise AssertionError(f"not an HTTP response: {raw[:200]!r}")
        self.status = int(parts[1])
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()

    def __repr__(self):
        return f"<Response {self.status_line!r} {self.headers!r} {self.body!r}>"


def read_until_closed(sock, timeout):
    """Everything <sock> receives until the peer closes it.

    A reset counts as a close. Raises TimeoutError if the peer keeps the
    connection open longer than <timeout> seconds.
    """
    deadline = time.monotonic() + timeout
    chunks = []
    for _ in range(100000):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return b"".join(chunks)
        except socket.timeout:
            break
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
    raise TimeoutError(f"connection still open after {timeout:g} s, got {b''.join(chunks)[:200]!r}")


def send_raw(port, data, timeout=3.0):
    """Sends <data> on a new connection and returns all bytes until close."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(data)
        return read_until_closed(s, timeout)


def http_get(port, path, timeout=3.0):
    """GET <path> on <port>; returns a Response."""
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode("latin-1")
    return Response(send_raw(port, request, timeout))


def process_state(pid):
    """The state letter of <pid> from /proc (R, S, Z, ...), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # the command name is in parentheses and may hold spaces
    return stat[stat.rindex(")") + 2]


def process_alive(pid):
    """True while <pid> exists and is not a zombie."""
    state = process_state(pid)
    return state is not None and state != "Z"


def process_title(pid):
    """The command line of <pid> as one string (NULs become spaces)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def _ppid(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(stat[stat.rindex(")") + 2:].split()[1])


def children(pid):
    """The live (not zombie) child processes of <pid>, sorted."""
    found = set()
    listing = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        found = {int(p) for p in listing.read_text().split()}
    except FileNotFoundError:
        for entry in os.listdir("/proc"):
            if entry.isdigit() and _ppid(int(entry)) == pid:
                found.add(int(entry))
    except ProcessLookupError:
        return []
    return sorted(p for p in found if process_alive(p))


def open_files(pid):
    """The targets of every descriptor <pid> holds (paths, "socket:[N]")."""
    targets = []
    fd_dir = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fd_dir)
    except (FileNotFoundError, ProcessLookupError):
        return targets
    for name in names:
        try:
            targets.append(os.readlink(f"{fd_dir}/{name}"))
        except OSError:
            pass
    return targets


def server_side_inode(sock):
    """The inode of the server's end of the TCP connection <sock>.

    0 while the server has not accepted the connection yet.
    """
    client_port = sock.getsockname()[1]
    server_port = sock.getpeername()[1]
    local = f":{server_port:04X}"
    remote = f":{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(local) and fields[2].endswith(remote):
            return int(fields[9])
    return 0
