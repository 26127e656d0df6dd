"""
WebSocket over TLS: two servers share one `listen ... ssl` address and SNI
picks each one's certificate; ALPN selects http/1.1 (and a client offering
only h2 goes on without ALPN); TLS 1.1 is refused; `-t` names a key that
does not match its certificate; a reload (HUP) serves renewed certificate
files to new connections; and plain HTTP, garbage or silence on the TLS
port only costs that connection.
"""
import asyncio
import shutil
import signal
import socket
import ssl
import subprocess
import time
import warnings

import pytest
import websockets

from support import HOST, free_port, read_until_closed, wait_until
from wsclient import (OP_BINARY, OP_TEXT, WSClient, accept_for, frame, new_key,
                      upgrade_request)

# The listen lines put a tab before "ssl": the fixture's readiness probe
# speaks plain HTTP to every address written "IP:PORT " or "IP:PORT;", and
# a TLS port cannot answer it. tls_ready() probes these ports instead.
CONFIG = """\
worker_processes 1;
error_log logs/error.log info;
pid logs/wsgate.pid;
events { worker_connections 1024; }
server {
    listen 127.0.0.1:$port\tssl;
    server_name a.test;
    client_header_timeout 1s;
    ssl_certificate a.crt;
    ssl_certificate_key a.key;
    location = /healthz { return 200 "a\\n"; }
    location /echo { websocket_echo on; }
}
server {
    listen 127.0.0.1:$port\tssl;
    server_name b.test;
    ssl_certificate b.crt;
    ssl_certificate_key b.key;
    location = /healthz { return 200 "b\\n"; }
    location /echo { websocket_echo on; }
}
"""


def make_cert(directory, name, stem):
    """A self-signed certificate for <name>: <stem>.crt and <stem>.key."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name}", "-days", "2",
         "-keyout", str(directory / f"{stem}.key"), "-out", str(directory / f"{stem}.crt")],
        check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """Certificates for a.test and b.test, and a renewed one for a.test."""
    directory = tmp_path_factory.mktemp("certs")
    make_cert(directory, "a.test", "a")
    make_cert(directory, "b.test", "b")
    make_cert(directory, "a.test", "a-renewed")
    return directory


def install(certs, target, *stems):
    for stem in stems:
        for ext in ("crt", "key"):
            shutil.copy(certs / f"{stem}.{ext}", target / f"{stem}.{ext}")


def client_context(cafile):
    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def tls_connect(port, ctx, name, timeout=3.0):
    sock = socket.create_connection((HOST, port), timeout=timeout)
    try:
        return ctx.wrap_socket(sock, server_hostname=name)
    except BaseException:
        sock.close()
        raise


def tls_ready(gw, cafile):
    """Waits until the TLS port completes a handshake."""
    def check():
        try:
            with tls_connect(gw.port, client_context(cafile), "a.test", timeout=1.0):
                return True
        except OSError:
            return False

    wait_until(check, 5.0, "the TLS port to complete a handshake")


@pytest.fixture
def tls_gateway(gateway, certs, tmp_path):
    install(certs, tmp_path, "a", "b")
    gw = gateway(CONFIG)
    tls_ready(gw, certs / "a.crt")
    return gw


def wss_echo(port, ctx, name, message):
    """Echoes <message> over wss; returns (echo, the server's certificate
    in DER, the TLS version)."""
    async def talk():
        uri = f"wss://127.0.0.1:{port}/echo"
        async with websockets.connect(uri, ssl=ctx, server_hostname=name, open_timeout=3,
                                      close_timeout=3, ping_interval=None) as ws:
            await ws.send(message)
            echo = await asyncio.wait_for(ws.recv(), 3)
            tls = ws.transport.get_extra_info("ssl_object")
            return echo, tls.getpeercert(binary_form=True), tls.version()

    return asyncio.run(talk())


def der(path):
    return ssl.PEM_cert_to_DER_cert(path.read_text())


@pytest.mark.parametrize("name", ["a.test", "b.test"])
def test_each_server_name_gets_its_own_certificate(tls_gateway, certs, name):
    stem = name[0]
    echo, cert, version = wss_echo(tls_gateway.port, client_context(certs / f"{stem}.crt"),
                                   name, f"hello {name}")
    assert echo == f"hello {name}"
    assert cert == der(certs / f"{stem}.crt")
    assert version in ("TLSv1.2", "TLSv1.3")


def test_certificate_of_the_other_name_fails_verification(tls_gateway, certs):
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_connect(tls_gateway.port, client_context(certs / "a.crt"), "b.test").close()


def test_sni_selects_the_server_for_requests_too(tls_gateway, certs):
    for name in ("a.test", "b.test"):
        with tls_connect(tls_gateway.port, client_context(certs / f"{name[0]}.crt"), name) as s:
            s.sendall(f"GET /healthz HTTP/1.1\r\nHost: {name}\r\n\r\n".encode())
            answer = read_until_closed(s, 3.0)
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        assert answer.endswith(f"{name[0]}\n".encode()), answer


def test_alpn_selects_http_1_1(tls_gateway, certs):
    ctx = client_context(certs / "a.crt")
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with tls_connect(tls_gateway.port, ctx, "a.test") as s:
        assert s.selected_alpn_protocol() == "http/1.1"


def test_alpn_with_only_h2_goes_on_without_alpn(tls_gateway, certs):
    ctx = client_context(certs / "a.crt")
    ctx.set_alpn_protocols(["h2"])
    with tls_connect(tls_gateway.port, ctx, "a.test") as s:
        assert s.selected_alpn_protocol() is None
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert read_until_closed(s, 3.0).startswith(b"HTTP/1.1 200 ")


def test_frames_in_the_handshakes_tls_record_are_echoed(tls_gateway, certs):
    s = tls_connect(tls_gateway.port, client_context(certs / "b.crt"), "b.test")
    with WSClient(s) as ws:
        key = new_key()
        ws.send(upgrade_request("/echo", host="b.test", key=key)
                + frame(OP_TEXT, b"inside TLS") + frame(OP_BINARY, bytes(20000)))
        r = ws.read_head()
        assert r.status == 101, r
        assert r.headers["sec-websocket-accept"] == accept_for(key)
        assert ws.recv_message() == (OP_TEXT, b"inside TLS")
        assert ws.recv_message() == (OP_BINARY, bytes(20000))
        ws.send_close(1000)
        assert ws.recv_close().code == 1000


def test_tls_1_1_is_refused(tls_gateway, certs):
    ctx = client_context(certs / "a.crt")
    # let the client really offer TLS 1.1, so the refusal is the gateway's
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError) as e:
        tls_connect(tls_gateway.port, ctx, "a.test").close()
    assert e.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", e.value
    # and the next client is served
    echo, _, _ = wss_echo(tls_gateway.port, client_context(certs / "a.crt"), "a.test", "after")
    assert echo == "after"


def test_config_test_names_a_mismatched_key(wsgate, certs, tmp_path):
    install(certs, tmp_path, "a", "b")
    conf = tmp_path / "mismatch.conf"
    conf.write_text(CONFIG.replace("$port", str(free_port()))
                    .replace("ssl_certificate_key a.key", "ssl_certificate_key b.key"))
    r = wsgate("-t", "-p", f"{tmp_path}/", "-c", str(conf))
    assert r.returncode == 1, r
    assert "[emerg]" in r.stderr, r.stderr
    assert "b.key" in r.stderr, r.stderr
    assert f"configuration file {conf} test failed" in r.stderr


def test_reload_serves_renewed_certificate_files(tls_gateway, certs):
    gw = tls_gateway
    (old_worker,) = gw.worker_pids()
    _, cert, _ = wss_echo(gw.port, client_context(certs / "a.crt"), "a.test", "old")
    assert cert == der(certs / "a.crt")

    shutil.copy(certs / "a-renewed.crt", gw.dir / "a.crt")
    shutil.copy(certs / "a-renewed.key", gw.dir / "a.key")
    gw.signal(signal.SIGHUP)
    gw.wait_workers(1, gone=[old_worker])

    echo, cert, _ = wss_echo(gw.port, client_context(certs / "a-renewed.crt"), "a.test", "new")
    assert echo == "new"
    assert cert == der(certs / "a-renewed.crt")
    # b.test is unchanged
    _, cert, _ = wss_echo(gw.port, client_context(certs / "b.crt"), "b.test", "b")
    assert cert == der(certs / "b.crt")


@pytest.mark.parametrize("data", [
    b"GET /healthz HTTP/1.1\r\nHost: a.test\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    b"\x16\x03\x01\x00\x05hello",
    b"\x16\x03\x01\xff\xff" + b"\x00" * 100,
], ids=["plain-get", "plain-upgrade", "short-record", "bad-client-hello"])
def test_non_tls_bytes_on_tls_port_only_close_that_connection(tls_gateway, certs, data):
    gw = tls_gateway
    workers = gw.worker_pids()
    with socket.create_connection((HOST, gw.port), timeout=3.0) as s:
        s.sendall(data)
        answer = read_until_closed(s, 3.0)
    # nothing in clear text, at most a TLS alert record
    assert not answer.startswith(b"HTTP/"), answer
    assert answer == b"" or answer[0] == 0x15, answer
    assert gw.worker_pids() == workers
    echo, _, _ = wss_echo(gw.port, client_context(certs / "a.crt"), "a.test", "still here")
    assert echo == "still here"


def test_silent_client_is_closed_at_client_header_timeout(tls_gateway):
    with socket.create_connection((HOST, tls_gateway.port), timeout=3.0) as s:
        start = time.monotonic()
        answer = read_until_closed(s, 3.0)
        elapsed = time.monotonic() - start
    assert answer == b""
    assert 0.8 <= elapsed <= 1.8, elapsed
