"""
A reference app server for wsgate's shared-pool protocols, mux and json
(docs/backend-protocol.md). The gateway connects to it with a few long-lived
TCP links and multiplexes its clients over them; this server keeps one table
of the clients it was told about (id -> the open envelope's fields) across
all links, and runs one small app:

  echo  every message goes back to its sender, text as text and binary as
        binary, and every close is echoed, as the doc's plain echo backend
        would; a text message that is exactly "whoami", or a JSON object
        with "whoami": true, is answered instead with a JSON text saying
        where the client landed and what its open said: {"id", "server" (--name), "link" (1, 2, ... in accept order),
        "remote", "path", "query", "subprotocol", "user", "headers"}
  chat  a text {"type":"say","text":T} from X goes to every connection this
        process knows, on every link, as {"type":"say","from":X,"text":T};
        anything else is ignored ("whoami" is answered as in echo)

Usage:
  python3 wsgate_backend.py --listen 127.0.0.1:9001 --protocol mux|json
      [--app echo|chat] [--name NAME] [--ready-file PATH]
      [--pause-after N] [--pause-seconds S] [--max-message BYTES]

Pings are answered with pongs. With --pause-after N, every Nth message from
a connection makes the server send pause for it, then resume S seconds
later (1 by default), to exercise the gateway's flow control. --ready-file
is written (atomically, holding "HOST:PORT\\n") once the socket listens, so
a caller can wait for it, and can pass port 0 and read the port there.

A malformed envelope is logged to stderr. On a mux link it also closes the
link: nothing after a bad header can be trusted to start an envelope. On a
json link the line is skipped, unless it is over the length limit.

Standard library only; SIGTERM and SIGINT stop it with status 0.
"""
import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path

# found beside this file: a script's folder comes first on sys.path
import wsgate_proto as proto

# Output a link may hold for a peer that does not read before broadcasts to
# it are dropped: a slow link must not make the process grow without bound.
LINK_OUTPUT_MAX = 64 * 1024 * 1024
# Reading a mux link pauses with twice this much unprocessed input.
MUX_READ_LIMIT = 1024 * 1024
# How long closing a link may wait for the peer to take its last bytes.
CLOSE_TIMEOUT = 2.0


def log(message):
    """One line on stderr, which is where a test or an operator looks."""
    print(f"wsgate_backend: {message}", file=sys.stderr, flush=True)


class Link:
    """One TCP connection from the gateway: a pool connection."""

    def __init__(self, number, protocol, writer):
        self.number = number  # 1, 2, ... in accept order; shown by whoami
        self.protocol = protocol
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.closed = False

    def send(self, env):
        """Queues <env>; the read loop's drain() applies back-pressure."""
        if self.closed:
            return
        encode = proto.encode_mux if self.protocol == "mux" else proto.encode_json
        self.writer.write(encode(env))

    def backlog(self):
        return self.writer.transport.get_write_buffer_size()

    def __str__(self):
        return f"link {self.number} from {self.peer}"


class Connection:
    """A client session the gateway announced with open."""

    def __init__(self, conn_id, info, link):
        self.id = conn_id
        self.info = info      # the open's fields (proto.OPEN_MEMBERS)
        self.link = link      # the link it was opened on; a reopen moves it
        self.messages = 0     # messages received, for --pause-after
        self.paused = False   # a pause was sent and its resume is pending


class Backend:
    """The server: its links, its connection table and the app."""

    def __init__(self, options):
        self.protocol = options.protocol
        self.app = options.app
        self.name = options.name
        self.pause_after = options.pause_after
        self.pause_seconds = options.pause_seconds
        self.max_message = options.max_message
        # worst case for a line from the gateway: a text message whose
        # every byte JSON escapes as \u00XX, plus the envelope around it
        self.max_line = 6 * options.max_message + 1024
        self.links = set()
        self.conns = {}
        self.link_count = 0

    # ---- links ----

    async def serve_link(self, reader, writer):
        """Runs one link: reads envelopes until EOF, a fatal error or
        shutdown, then forgets the link's connections."""
        self.link_count += 1
        link = Link(self.link_count, self.protocol, writer)
        self.links.add(link)
        log(f"{link} up")
        try:
            await self.read_loop(link, reader)
        except proto.ProtocolError as e:
            log(f"{link}: {e}; closing the link")
        except (ConnectionError, OSError) as e:
            log(f"{link}: {e}")
        finally:
            await self.close_link(link)

    async def read_loop(self, link, reader):
        while True:
            if self.protocol == "mux":
                env = await proto.read_mux(reader, self.max_message)
            else:
                env = await self.read_json(link, reader)
            if env is None:
                return
            self.handle(link, env)
            await link.writer.drain()

    async def read_json(self, link, reader):
        """The next well-formed envelope, skipping (and logging) malformed
        lines; None at EOF."""
        while True:
            line = await proto.read_json_line(reader, self.max_line)
            if line is None:
                return None
            try:
                return proto.decode_json(line)
            except proto.ProtocolError as e:
                log(f"{link}: {e}; line skipped: {line[:200]!r}")

    async def close_link(self, link):
        link.closed = True
        self.links.discard(link)
        # only the connections still bound here: after a reopen elsewhere,
        # an id belongs to its new link
        gone = [c.id for c in self.conns.values() if c.link is link]
        for conn_id in gone:
            del self.conns[conn_id]
        log(f"{link} down, {len(gone)} connection(s) forgotten")
        link.writer.close()
        try:
            await asyncio.wait_for(link.writer.wait_closed(), CLOSE_TIMEOUT)
        except (asyncio.TimeoutError, ConnectionError, OSError):
            pass

    # ---- envelopes ----

    def handle(self, link, env):
        """Acts on one envelope from the gateway."""
        if env.kind == proto.OPEN:
            self.conns[env.id] = Connection(env.id, env.info, link)
        elif env.kind == proto.MESSAGE:
            self.on_message(link, env)
        elif env.kind == proto.CLOSE:
            conn = self.conns.get(env.id)
            if conn is not None and conn.link is link:
                del self.conns[env.id]
            if self.app == "echo":
                link.send(env)
        elif env.kind == proto.PING:
            link.send(proto.Envelope.pong(env.data))
        elif env.kind in (proto.PAUSE, proto.RESUME):
            log(f"{link}: {env.name} for {env.id} ignored: only backends send it")
        # a pong needs nothing: the link is alive, which the read showed

    def on_message(self, link, env):
        conn = self.conns.get(env.id)
        if conn is None:
            # the gateway announces every id before using it, even after a
            # reopen; answer anyway, the gateway ignores ids it does not know
            log(f"{link}: message for id {env.id}, which was never opened")
        if not env.binary and asks_whoami(env.data):
            link.send(proto.Envelope.message(env.id, self.whoami(env.id, conn, link)))
        elif self.app == "echo":
            link.send(env)
        elif not env.binary:
            self.chat(env)
        if conn is not None:
            self.count_message(conn)

    def whoami(self, conn_id, conn, link):
        """The JSON text answering "whoami": this server and what the open
        of <conn_id> said (nulls if there was none)."""
        info = conn.info if conn is not None else {}
        reply = {"id": conn_id, "server": self.name, "link": link.number,
                 "remote": info.get("remote"), "path": info.get("path"),
                 "query": info.get("query"), "subprotocol": info.get("subprotocol"),
                 "user": info.get("user"), "headers": info.get("headers", {})}
        return json.dumps(reply, separators=(",", ":"), ensure_ascii=False)

    def chat(self, env):
        """Broadcasts a say from env.id to every known connection."""
        try:
            said = json.loads(env.text)
        except ValueError:
            return
        if not isinstance(said, dict) or said.get("type") != "say" \
                or not isinstance(said.get("text"), str):
            return
        text = json.dumps({"type": "say", "from": env.id, "text": said["text"]},
                          separators=(",", ":"), ensure_ascii=False)
        for conn in list(self.conns.values()):
            if conn.link.backlog() > LINK_OUTPUT_MAX:
                log(f"{conn.link}: not reading, say to {conn.id} dropped")
                continue
            conn.link.send(proto.Envelope.message(conn.id, text))

    # ---- flow control ----

    def count_message(self, conn):
        """Pauses <conn> at every --pause-after'th message, unless a pause
        is already pending: messages the gateway sent before it saw the
        pause still arrive and must not stack up further pauses."""
        conn.messages += 1
        if not self.pause_after or conn.paused or conn.messages % self.pause_after:
            return
        conn.paused = True
        conn.link.send(proto.Envelope.pause(conn.id))
        asyncio.get_running_loop().call_later(self.pause_seconds, self.resume, conn.id)

    def resume(self, conn_id):
        # on whichever link holds the id now: after a reopen the gateway
        # must not be left with a client paused for good
        conn = self.conns.get(conn_id)
        if conn is None or not conn.paused:
            return
        conn.paused = False
        conn.link.send(proto.Envelope.resume(conn_id))


def asks_whoami(data):
    """Whether a text message is "whoami" or a JSON object with "whoami":
    true (as a gateway's router sends JSON)."""
    if data == b"whoami":
        return True
    if not data.startswith(b"{") or b'"whoami"' not in data:
        return False
    try:
        obj = json.loads(data)
    except ValueError:
        return False
    return isinstance(obj, dict) and obj.get("whoami") is True


def parse_listen(text):
    """(host, port) from "HOST:PORT" or "[V6]:PORT"."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"not HOST:PORT: {text!r}")
    return host.strip("[]"), int(port)


def parse_options(argv):
    p = argparse.ArgumentParser(description="Reference mux/json backend for wsgate.")
    p.add_argument("--listen", required=True, type=parse_listen, metavar="HOST:PORT")
    p.add_argument("--protocol", required=True, choices=("mux", "json"))
    p.add_argument("--app", default="echo", choices=("echo", "chat"))
    p.add_argument("--name", help="the server's name in whoami (default: HOST:PORT)")
    p.add_argument("--ready-file", type=Path, metavar="PATH",
                   help="written with HOST:PORT once listening")
    p.add_argument("--pause-after", type=int, default=0, metavar="N",
                   help="pause a connection after every N of its messages")
    p.add_argument("--pause-seconds", type=float, default=1.0, metavar="S",
                   help="how long a pause lasts (default 1)")
    p.add_argument("--max-message", type=int, default=proto.DEFAULT_MAX_MESSAGE,
                   metavar="BYTES", help="largest message accepted (default 16 MiB)")
    options = p.parse_args(argv)
    if options.pause_after < 0 or options.pause_seconds < 0 or options.max_message < 0:
        p.error("--pause-after, --pause-seconds and --max-message cannot be negative")
    return options


def write_ready_file(path, host, port):
    """Writes HOST:PORT to <path> through a rename, so a reader polling for
    the file never sees it half written."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{host}:{port}\n")
    os.replace(tmp, path)


async def serve(options):
    backend = Backend(options)
    host, port = options.listen
    # json: the StreamReader's limit is the longest line readuntil() takes.
    # mux: readexactly() ignores it, but reading pauses at twice the limit
    # buffered, so a small one keeps a link that floods us from piling up
    limit = backend.max_line if options.protocol == "json" else MUX_READ_LIMIT
    server = await asyncio.start_server(backend.serve_link, host, port, limit=limit)
    bound = server.sockets[0].getsockname()
    backend.name = options.name or f"{host}:{bound[1]}"
    log(f"listening on {host}:{bound[1]} ({options.protocol}, app {options.app}, "
        f"name {backend.name})")
    if options.ready_file:
        write_ready_file(options.ready_file, host, bound[1])

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signo in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signo, stop.set)
    async with server:
        await stop.wait()
        server.close()
        for link in list(backend.links):
            link.writer.close()
    log("stopped")


def main(argv=None):
    options = parse_options(argv)
    try:
        asyncio.run(serve(options))
    except OSError as e:
        log(f"cannot listen on {options.listen[0]}:{options.listen[1]}: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
