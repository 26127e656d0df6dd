"""
The auth module: a handshake to a location with auth on opens (101, and
the echo answers) with a valid HS256 or RS256 token found in the
Authorization header, the access_token query argument, a cookie or a
subprotocol, or with a static token from auth_tokens_file; it is refused
with 401 when the token is missing, malformed, forged, unsigned, signed
for the other algorithm or out of its time, and with 403 when a genuine
token names another audience or issuer; the body never says why. The
first place holding a credential decides. The user id reaches other
modules (a test module answers with wsg_session_user()). Bad key and
token files, and auth on with nothing to check against, fail `wsgate -t`
naming the file or the server block.
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import websockets

from support import HOST, Response, send_raw
from wsclient import new_key

SRCDIR = Path(os.environ.get("WSGATE_SRCDIR") or Path(__file__).resolve().parents[2])
API_DIR = SRCDIR / "src"

TIMEOUT = 10
BUILD_TIMEOUT = 60
OPENSSL_TIMEOUT = 30

SECRET = b"integration-secret-0123456789abcdef-0123"

STATIC_TOKENS = """\
# service accounts
s3cr3t-backup-token   svc-backup
  s3cr3t-metrics-token	svc-metrics
"""

CONFIG = """\
worker_processes 1;
error_log logs/error.log info;
pid logs/wsgate.pid;
events { worker_connections 1024; }
server {
    listen 127.0.0.1:$port;
    client_max_header_size 32k;
    location = /healthz { return 200 "ok\\n"; }
    location /chat {
        websocket_echo on;
        websocket_subprotocols chat;
        auth_jwt_secret_file secret.key;
        auth_jwt_audience chat;
        auth_token_from header query cookie subprotocol;
    }
    location /default { websocket_echo on; auth_jwt_secret_file secret.key; }
    location /cookie {
        websocket_echo on;
        auth_jwt_secret_file secret.key;
        auth_token_from cookie:session header:X-Token query:t;
    }
    location /rs {
        websocket_echo on;
        auth_jwt_public_key_file rsa.pub;
        auth_jwt_issuer https://id.example.com;
    }
    location /static { websocket_echo on; auth_tokens_file tokens.txt; }
    location /open { websocket_echo on; }
}
"""

# A loaded module that answers every message with the session's user id.
WHOAMI = r"""
#include <stddef.h>

#include "wsgate_module.h"

struct whoami_loc_conf {
    int enabled;
};

extern const struct wsg_module wsg_module;

static const char *
set_whoami(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    const char *rv = wsg_conf_set_flag(cf, d, conf);

    if (rv == NULL && ((struct whoami_loc_conf *) conf)->enabled == 1) {
        wsg_conf_websocket_endpoint(cf);
    }
    return rv;
}

static const struct wsg_directive whoami_directives[] = {
    {"whoami", WSG_CTX_LOCATION, 1, 1, set_whoami,
     offsetof(struct whoami_loc_conf, enabled), NULL},
    {NULL, 0, 0, 0, NULL, 0, NULL},
};

static void *
whoami_create_loc_conf(struct wsg_conf *cf)
{
    struct whoami_loc_conf *c = wsg_conf_alloc(cf, sizeof(*c));

    c->enabled = WSG_CONF_UNSET;
    return c;
}

static int
whoami_on_message(struct wsg_session *s, struct wsg_msg *m)
{
    const struct whoami_loc_conf *c = wsg_session_loc_conf(s, &wsg_module);
    struct wsg_str user = wsg_session_user(s);

    (void) m;
    if (c == NULL || c->enabled != 1) {
        return WSG_NEXT;
    }
    wsg_session_send(s, WSG_MSG_TEXT, user.p, user.len);
    return WSG_STOP;
}

const struct wsg_module wsg_module = {
    .abi = WSG_MODULE_ABI,
    .size = sizeof(struct wsg_module),
    .name = "whoami",
    .directives = whoami_directives,
    .create_loc_conf = whoami_create_loc_conf,
    .on_message = whoami_on_message,
};
"""


# ---- tokens ----------------------------------------------------------------

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def signing_input(claims, header):
    return (b64url(json.dumps(header).encode()) + "." +
            b64url(json.dumps(claims).encode()))


def hs256(claims, secret=SECRET, header=None):
    """A compact JWS of <claims> signed with HMAC-SHA256."""
    data = signing_input(claims, header or {"alg": "HS256", "typ": "JWT"})
    mac = hmac.new(secret, data.encode("ascii"), hashlib.sha256).digest()
    return data + "." + b64url(mac)


def rs256(claims, key_path, header=None):
    """A compact JWS of <claims> signed with RSA-SHA256 by `openssl dgst`."""
    data = signing_input(claims, header or {"alg": "RS256", "typ": "JWT"})
    r = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key_path)],
                       input=data.encode("ascii"), capture_output=True,
                       timeout=OPENSSL_TIMEOUT, check=True)
    return data + "." + b64url(r.stdout)


def unsigned(claims):
    return signing_input(claims, {"alg": "none", "typ": "JWT"}) + "."


def claims(exp_in=300, **extra):
    """Claims for user alice of audience chat, expiring in <exp_in> s."""
    c = {"sub": "alice", "aud": "chat", "exp": int(time.time()) + exp_in}
    c.update(extra)
    return c


def forge(token):
    """<token> with a character of its signature changed."""
    head, _, sig = token.rpartition(".")
    return head + "." + sig[:5] + ("B" if sig[5] == "A" else "A") + sig[6:]


# ---- fixtures --------------------------------------------------------------

def openssl(*args):
    subprocess.run(["openssl", *args], capture_output=True, timeout=OPENSSL_TIMEOUT,
                   check=True)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """RSA key pairs made with the openssl command: the configured one and
    another, plus an EC key and a short RSA key for the errors."""
    d = tmp_path_factory.mktemp("keys")
    for name, opts in (("rsa", ["-pkeyopt", "rsa_keygen_bits:2048"]),
                       ("other", ["-pkeyopt", "rsa_keygen_bits:2048"]),
                       ("short", ["-pkeyopt", "rsa_keygen_bits:1024"])):
        openssl("genpkey", "-algorithm", "RSA", *opts, "-out", str(d / f"{name}.pem"))
        openssl("pkey", "-in", str(d / f"{name}.pem"), "-pubout", "-out", str(d / f"{name}.pub"))
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", str(d / "ec.pem"))
    openssl("pkey", "-in", str(d / "ec.pem"), "-pubout", "-out", str(d / "ec.pub"))
    return d


@pytest.fixture(scope="module")
def whoami(tmp_path_factory):
    """The whoami test module, built as a shared object."""
    d = tmp_path_factory.mktemp("whoami")
    source = d / "whoami.c"
    source.write_text(WHOAMI)
    out = d / "whoami.so"
    cmd = ["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{API_DIR}",
           "-shared", "-fPIC", str(source), "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stderr}"
    return out


def write_files(directory, keys, secret=SECRET + b"\n", tokens=STATIC_TOKENS):
    """The secret, public key and tokens files the configurations name."""
    (directory / "secret.key").write_bytes(secret)
    (directory / "rsa.pub").write_bytes((keys / "rsa.pub").read_bytes())
    (directory / "tokens.txt").write_text(tokens)


@pytest.fixture
def gw(gateway, tmp_path, keys):
    """A gateway running CONFIG, its files in place."""
    write_files(tmp_path, keys)
    return gateway(CONFIG)


# ---- clients ---------------------------------------------------------------

def session(gw, path, message="hello", **options):
    """Opens a session to <path> with websockets, sends <message>; returns
    (answer, chosen subprotocol)."""
    async def talk():
        uri = f"ws://{HOST}:{gw.port}{path}"
        async with websockets.connect(uri, open_timeout=3, close_timeout=3, ping_interval=None,
                                      compression=None, **options) as ws:
            await ws.send(message)
            answer = await asyncio.wait_for(ws.recv(), TIMEOUT)
            return answer, ws.subprotocol

    return asyncio.run(talk())


def refused(gw, path, headers=()):
    """Sends an upgrade to <path> with extra (name, value) <headers>;
    returns the refusal, after checking that its body says nothing but
    the status."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{gw.port}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {new_key()}",
             "Sec-WebSocket-Version: 13", *(f"{n}: {v}" for n, v in headers)]
    r = Response(send_raw(gw.port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")))
    assert r.status != 101, r
    assert r.headers["connection"] == "close", r
    # the body repeats the status line's code and reason, nothing more
    assert r.body.decode() == r.status_line.split(" ", 1)[1] + "\n", r
    return r.status


def bearer(token):
    return [("Authorization", f"Bearer {token}")]


# ---- where the token is found ----------------------------------------------

def test_valid_token_in_authorization_header_opens_and_echoes(gw):
    token = hs256(claims())
    assert session(gw, "/chat", extra_headers=bearer(token)) == ("hello", None)


def test_bearer_scheme_is_case_insensitive(gw):
    token = hs256(claims())
    headers = [("Authorization", f"bearer   {token}")]
    assert session(gw, "/chat", extra_headers=headers)[0] == "hello"


def test_valid_token_in_query_opens_and_echoes(gw):
    token = hs256(claims())
    assert session(gw, f"/chat?room=1&access_token={token}&x=y")[0] == "hello"


def test_query_token_is_percent_decoded(gw):
    token = hs256(claims())
    encoded = "".join(f"%{b:02X}" for b in token.encode())
    assert session(gw, f"/chat?access_token={encoded}")[0] == "hello"


def test_valid_token_in_cookie_opens_and_echoes(gw):
    token = hs256(claims())
    headers = [("Cookie", f"theme=dark; access_token={token}; lang=en")]
    assert session(gw, "/chat", extra_headers=headers)[0] == "hello"


def test_valid_token_in_subprotocol_opens_and_the_real_one_is_chosen(gw):
    token = hs256(claims())
    answer, chosen = session(gw, "/chat", subprotocols=["chat", f"access_token.{token}"])
    assert (answer, chosen) == ("hello", "chat")


def test_default_sources_are_authorization_then_query(gw):
    token = hs256({k: v for k, v in claims().items() if k != "aud"})
    assert session(gw, "/default", extra_headers=bearer(token))[0] == "hello"
    assert session(gw, f"/default?access_token={token}")[0] == "hello"
    assert refused(gw, "/default", [("Cookie", f"access_token={token}")]) == 401
    assert refused(gw, "/default", [("Sec-WebSocket-Protocol",
                                      f"chat, access_token.{token}")]) == 401


def test_named_sources_are_used_and_the_defaults_are_not(gw):
    token = hs256({k: v for k, v in claims().items() if k != "aud"})
    assert session(gw, "/cookie", extra_headers=[("Cookie", f"session=\"{token}\"")])[0] == "hello"
    assert session(gw, "/cookie", extra_headers=[("X-Token", token)])[0] == "hello"
    assert session(gw, f"/cookie?t={token}")[0] == "hello"
    assert refused(gw, "/cookie", bearer(token)) == 401
    assert refused(gw, f"/cookie?access_token={token}") == 401


def test_another_authorization_scheme_falls_through_to_the_query(gw):
    token = hs256(claims())
    headers = [("Authorization", "Basic YWxpY2U6c2VjcmV0")]
    assert session(gw, f"/chat?access_token={token}", extra_headers=headers)[0] == "hello"


def test_first_place_with_a_token_decides(gw):
    good = hs256(claims())
    bad = forge(good)
    assert refused(gw, f"/chat?access_token={good}", bearer(bad)) == 401
    assert session(gw, f"/chat?access_token={bad}", extra_headers=bearer(good))[0] == "hello"


# ---- refusals --------------------------------------------------------------

def test_missing_token_is_refused_with_401(gw):
    assert refused(gw, "/chat") == 401
    assert refused(gw, "/chat?access_token=") == 401
    assert refused(gw, "/chat", [("Authorization", "Bearer ")]) == 401
    gw.wait_log(r"\[info\] .*module auth: handshake refused with 401: no credential", count=3)


def test_expired_token_is_refused_with_401_and_the_reason_logged(gw):
    token = hs256(claims(exp_in=-3600))
    assert refused(gw, "/chat", bearer(token)) == 401
    gw.wait_log(r'\[info\] .*module auth: handshake refused with 401: expired '
                r'in the header "Authorization"')
    # the reason, never the token
    assert token.rpartition(".")[2] not in gw.error_log()


def test_token_expired_within_the_leeway_is_accepted(gw):
    token = hs256(claims(exp_in=-10))
    assert session(gw, "/chat", extra_headers=bearer(token))[0] == "hello"


def test_token_not_valid_yet_is_refused_with_401(gw):
    token = hs256(claims(nbf=int(time.time()) + 3600))
    assert refused(gw, "/chat", bearer(token)) == 401


def test_token_without_exp_is_refused_with_401(gw):
    token = hs256({"sub": "alice", "aud": "chat"})
    assert refused(gw, "/chat", bearer(token)) == 401


def test_forged_token_is_refused_with_401(gw):
    assert refused(gw, "/chat", bearer(forge(hs256(claims())))) == 401
    gw.wait_log(r"module auth: handshake refused with 401: bad signature")
    other = hs256(claims(), secret=b"another-secret-0123456789abcdef-0123")
    assert refused(gw, "/chat", bearer(other)) == 401


def test_unsigned_token_is_refused_with_401(gw):
    assert refused(gw, "/chat", bearer(unsigned(claims()))) == 401


def test_malformed_tokens_are_refused_with_401(gw):
    token = hs256(claims())
    for bad in (token.rpartition(".")[0], token + "=", token.replace(".", "..", 1),
                "not-a-token", token[:-10]):
        assert refused(gw, "/chat", bearer(bad)) == 401, bad


def test_token_over_8k_is_refused_with_401(gw):
    token = hs256(claims(pad="p" * 9000))
    assert len(token) > 8192
    assert refused(gw, "/chat", bearer(token)) == 401


def test_bad_percent_encoding_in_query_is_refused_with_401(gw):
    assert refused(gw, "/chat?access_token=abc%zz") == 401
    assert refused(gw, "/chat?access_token=abc%0A") == 401
    gw.wait_log(r'module auth: handshake refused with 401: unusable credential '
                r'in the query argument "access_token"', count=2)


def test_wrong_audience_is_refused_with_403(gw):
    assert refused(gw, f"/chat?access_token={hs256(claims(aud='billing'))}") == 403
    gw.wait_log(r'module auth: handshake refused with 403: wrong audience '
                r'in the query argument "access_token"')
    assert refused(gw, "/chat", bearer(hs256(claims(aud="billing")))) == 403
    assert refused(gw, "/chat", bearer(hs256(claims(aud=["billing", "ops"])))) == 403
    no_aud = {k: v for k, v in claims().items() if k != "aud"}
    assert refused(gw, "/chat", bearer(hs256(no_aud))) == 403


def test_audience_array_holding_ours_is_accepted(gw):
    token = hs256(claims(aud=["billing", "chat"]))
    assert session(gw, "/chat", extra_headers=bearer(token))[0] == "hello"


def test_token_with_audience_where_none_is_configured_is_refused_with_403(gw):
    assert refused(gw, "/default", bearer(hs256(claims()))) == 403


def test_forged_token_with_wrong_audience_is_still_401(gw):
    token = forge(hs256(claims(aud="billing")))
    assert refused(gw, "/chat", bearer(token)) == 401


def test_location_without_auth_needs_no_token(gw):
    assert session(gw, "/open")[0] == "hello"


# ---- RS256 -----------------------------------------------------------------

def rs_claims(**extra):
    c = {"sub": "bob", "iss": "https://id.example.com", "exp": int(time.time()) + 300}
    c.update(extra)
    return c


def test_rs256_token_opens_and_echoes(gw, keys):
    token = rs256(rs_claims(), keys / "rsa.pem")
    assert session(gw, "/rs", extra_headers=bearer(token))[0] == "hello"


def test_rs256_token_of_another_key_is_refused_with_401(gw, keys):
    token = rs256(rs_claims(), keys / "other.pem")
    assert refused(gw, "/rs", bearer(token)) == 401


def test_rs256_wrong_issuer_is_refused_with_403(gw, keys):
    token = rs256(rs_claims(iss="https://evil.example"), keys / "rsa.pem")
    assert refused(gw, "/rs", bearer(token)) == 403


def test_hs256_token_keyed_with_the_public_key_is_refused_with_401(gw, keys):
    # algorithm confusion: the public key is public, so it must not work
    # as an HMAC secret
    token = hs256(rs_claims(), secret=(keys / "rsa.pub").read_bytes())
    assert refused(gw, "/rs", bearer(token)) == 401


# ---- static tokens ---------------------------------------------------------

def test_static_tokens_open_and_echo(gw):
    for token in ("s3cr3t-backup-token", "s3cr3t-metrics-token"):
        assert session(gw, "/static", extra_headers=bearer(token))[0] == "hello"
    assert session(gw, "/static?access_token=s3cr3t-backup-token")[0] == "hello"


def test_unknown_static_token_is_refused_with_401(gw):
    for token in ("s3cr3t-backup-toke", "s3cr3t-backup-tokenX", "svc-backup",
                  hs256(claims())):
        assert refused(gw, "/static", bearer(token)) == 401, token
    gw.wait_log(r"module auth: handshake refused with 401: unknown token", count=4)


# ---- the user id -----------------------------------------------------------

WHOAMI_CONFIG = """\
load_module {so};
worker_processes 1;
error_log logs/error.log info;
pid logs/wsgate.pid;
events {{ worker_connections 1024; }}
server {{
    listen 127.0.0.1:$port;
    location = /healthz {{ return 200 "ok\\n"; }}
    location /me-jwt {{ whoami on; auth_jwt_secret_file secret.key; auth_jwt_user_claim uid; }}
    location /me-static {{ whoami on; auth_tokens_file tokens.txt; }}
    location /me-open {{ whoami on; }}
}}
"""


def test_user_id_reaches_other_modules(gateway, tmp_path, keys, whoami):
    write_files(tmp_path, keys)
    g = gateway(WHOAMI_CONFIG.format(so=whoami))
    token = hs256({"sub": "alice", "uid": "u-42", "exp": int(time.time()) + 300})
    assert session(g, "/me-jwt", extra_headers=bearer(token))[0] == "u-42"
    token = hs256({"sub": "alice", "uid": 1234, "exp": int(time.time()) + 300})
    assert session(g, "/me-jwt", extra_headers=bearer(token))[0] == "1234"
    assert session(g, "/me-static", extra_headers=bearer("s3cr3t-metrics-token"))[0] == \
        "svc-metrics"
    assert session(g, "/me-open")[0] == ""
    no_uid = hs256({"sub": "alice", "exp": int(time.time()) + 300})
    assert refused(g, "/me-jwt", bearer(no_uid)) == 403


# ---- inheritance -----------------------------------------------------------

INHERIT_CONFIG = """\
worker_processes 1;
error_log logs/error.log info;
pid logs/wsgate.pid;
events { worker_connections 1024; }
auth_jwt_leeway 0;
server {
    listen 127.0.0.1:$port;
    auth_jwt_secret_file secret.key;
    location = /healthz { return 200 "ok\\n"; }
    location /private { websocket_echo on; }
    location /public { websocket_echo on; auth off; }
}
"""


def test_settings_are_inherited_and_auth_off_opens_a_location(gateway, tmp_path, keys):
    write_files(tmp_path, keys)
    g = gateway(INHERIT_CONFIG)
    token = hs256({"sub": "alice", "exp": int(time.time()) + 300})
    assert session(g, "/private", extra_headers=bearer(token))[0] == "hello"
    assert refused(g, "/private") == 401
    # leeway 0 from the main level: a token a few seconds old is expired
    assert refused(g, "/private", bearer(hs256({"sub": "a", "exp": int(time.time()) - 5}))) == 401
    assert session(g, "/public")[0] == "hello"


# ---- reloads ---------------------------------------------------------------

def test_reload_reads_a_rotated_secret(gw, tmp_path):
    old_token = hs256(claims())
    assert session(gw, "/chat", extra_headers=bearer(old_token))[0] == "hello"
    rotated = b"rotated-secret-0123456789abcdef-0123456789"
    (tmp_path / "secret.key").write_bytes(rotated)
    old = gw.worker_pids()
    gw.signal(signal.SIGHUP)
    gw.wait_workers(1, gone=old)
    token = hs256(claims(), secret=rotated)
    assert session(gw, "/chat", extra_headers=bearer(token))[0] == "hello"
    assert refused(gw, "/chat", bearer(old_token)) == 401


def test_reload_with_a_bad_key_keeps_the_running_configuration(gateway, tmp_path, keys):
    write_files(tmp_path, keys)
    gw = gateway(CONFIG, allow=[r'\[emerg\] .*"auth_jwt_public_key_file" directive cannot '
                                r'load public key'])
    (tmp_path / "rsa.pub").write_text("not a key\n")
    old = gw.worker_pids()
    gw.signal(signal.SIGHUP)
    gw.wait_log(r'\[emerg\] .*"auth_jwt_public_key_file" directive cannot load public key')
    assert gw.worker_pids() == old
    token = rs256(rs_claims(), keys / "rsa.pem")
    assert session(gw, "/rs", extra_headers=bearer(token))[0] == "hello"


# ---- configuration errors --------------------------------------------------

def config_test(wsgate, tmp_path, location):
    """Runs wsgate -t on a configuration whose /ws location holds
    <location>; returns (path, CompletedProcess)."""
    text = f"""\
events {{ worker_connections 64; }}
server {{
    listen 127.0.0.1:1;
    location /ws {{
        websocket_echo on;
        {location}
    }}
}}
"""
    path = tmp_path / "wsgate.conf"
    path.write_text(text)
    return path, wsgate("-p", f"{tmp_path}/", "-c", str(path), "-t")


def assert_config_error(r, path, line, message):
    assert r.returncode == 1, r
    lines = r.stderr.splitlines()
    assert len(lines) == 2, r.stderr
    assert lines[0].startswith(f"wsgate: [emerg] {path}:{line}: {message}"), r.stderr
    assert lines[1] == f"wsgate: configuration file {path} test failed"


def test_good_auth_configuration_passes_the_test(wsgate, tmp_path, keys):
    write_files(tmp_path, keys)
    path, r = config_test(wsgate, tmp_path, "auth_jwt_secret_file secret.key; "
                          "auth_jwt_public_key_file rsa.pub; auth_tokens_file tokens.txt; "
                          "auth_jwt_leeway 1m; auth_token_from subprotocol:bearer. cookie;")
    assert r.returncode == 0, r.stderr
    assert f"configuration file {path} test is successful" in r.stderr


def test_bad_public_key_file_is_a_config_error_naming_it(wsgate, tmp_path):
    (tmp_path / "bad.pub").write_text("-----BEGIN PUBLIC KEY-----\nnot base64\n"
                                      "-----END PUBLIC KEY-----\n")
    path, r = config_test(wsgate, tmp_path, "auth_jwt_public_key_file bad.pub;")
    assert_config_error(r, path, 6, '"auth_jwt_public_key_file" directive cannot load '
                        f'public key "{tmp_path}/bad.pub": ')


def test_missing_key_file_is_a_config_error_naming_it(wsgate, tmp_path):
    path, r = config_test(wsgate, tmp_path, "auth_jwt_public_key_file nowhere.pub;")
    assert_config_error(r, path, 6, '"auth_jwt_public_key_file" directive open() '
                        f'"{tmp_path}/nowhere.pub" failed (2: No such file or directory)')


@pytest.mark.parametrize("name, message", [
    ("ec.pub", 'is not an RSA key'),
    ("short.pub", 'has 1024 bits, fewer than the 2048 RS256 needs'),
    ("rsa.pem", 'cannot load public key'),
])
def test_unfit_public_key_is_a_config_error(wsgate, tmp_path, keys, name, message):
    key = tmp_path / name
    key.write_bytes((keys / name).read_bytes())
    path, r = config_test(wsgate, tmp_path, f"auth_jwt_public_key_file {name};")
    assert r.returncode == 1, r
    assert f'{path}:6: "auth_jwt_public_key_file" directive' in r.stderr
    assert str(key) in r.stderr and message in r.stderr, r.stderr


def test_short_secret_is_a_config_error(wsgate, tmp_path):
    (tmp_path / "short.key").write_bytes(b"0123456789abcdef0123456789abcde\n")
    path, r = config_test(wsgate, tmp_path, "auth_jwt_secret_file short.key;")
    assert_config_error(r, path, 6, '"auth_jwt_secret_file" directive secret '
                        f'"{tmp_path}/short.key" is shorter than 32 bytes')


@pytest.mark.parametrize("tokens, message", [
    ("tok-1 alice\ntok-2\n", 'invalid line 2 in "{f}", expecting "TOKEN USERID"'),
    ("tok-1 alice extra\n", 'invalid line 1 in "{f}"'),
    ("# only a comment\n\n", '"{f}" holds no tokens'),
    ("tok-1 alice\n# x\ntok-1 bob\n", '"{f}" has the same token on lines 1 and 3'),
])
def test_bad_tokens_file_is_a_config_error_naming_it(wsgate, tmp_path, tokens, message):
    f = tmp_path / "tokens.txt"
    f.write_text(tokens)
    path, r = config_test(wsgate, tmp_path, "auth_tokens_file tokens.txt;")
    assert_config_error(r, path, 6, '"auth_tokens_file" directive ' + message.format(f=f))


def test_bad_token_source_is_a_config_error(wsgate, tmp_path):
    path, r = config_test(wsgate, tmp_path, "auth_token_from header body;")
    assert_config_error(r, path, 6, '"auth_token_from" directive invalid source "body"')
    path, r = config_test(wsgate, tmp_path, "auth_token_from header:;")
    assert_config_error(r, path, 6, '"auth_token_from" directive invalid name in "header:"')


def test_auth_on_without_credentials_is_a_config_error(wsgate, tmp_path):
    path, r = config_test(wsgate, tmp_path, "auth on;")
    # merge errors are reported at the server block
    assert_config_error(r, path, 2, '"auth" is on but none of "auth_jwt_secret_file", '
                        '"auth_jwt_public_key_file" or "auth_tokens_file" is set')


def test_leeway_over_an_hour_is_a_config_error(wsgate, tmp_path, keys):
    write_files(tmp_path, keys)
    path, r = config_test(wsgate, tmp_path, "auth_jwt_secret_file secret.key; "
                          "auth_jwt_leeway 2h;")
    assert r.returncode == 1, r
    assert f'{path}:6: "auth_jwt_leeway" directive' in r.stderr
