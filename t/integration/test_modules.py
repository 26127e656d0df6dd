"""
Modules built as shared objects and loaded with load_module. The example
module in contrib/example-module (reverse) answers with reversed text,
keeps a per-session count and refuses handshakes carrying X-Reverse-Deny,
while the built-in echo keeps working beside it. Small modules built here
check the rest of the API from a loaded module: settings merged from main
to server to location, a block of a module's own statements, process
hooks in every worker, users and rooms, log lines, node-wide token
buckets, hooks in load_module order ahead of the echo, and WSG_ABORT
(1011 on a message, 500 on a handshake, an [error] naming the module).
Every load_module error is a configuration error with its exact message;
a reload can add a module, and a bad one leaves the running configuration
alone. docs/modules.md quotes reverse.c as it is, and make install gives
the header and wsgate.pc with which the example builds out of tree.
"""
import asyncio
import functools
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import websockets

from support import HOST, Response, send_raw, wait_until
from wsclient import new_key

SRCDIR = Path(os.environ.get("WSGATE_SRCDIR") or Path(__file__).resolve().parents[2])
WSGATE_BIN = os.environ.get("WSGATE_BIN") or str(SRCDIR / "src" / "wsgate")
API_DIR = SRCDIR / "src"
EXAMPLE_DIR = SRCDIR / "contrib" / "example-module"

BUILD_TIMEOUT = 60
INSTALL_TIMEOUT = 600
TIMEOUT = 10

# A loaded module that fails on request, for WSG_ABORT and for the order of
# hooks: it aborts a handshake carrying X-Tripwire and a JSON message with
# "fail": true, and answers "who?" with its own name. It also answers "log"
# after logging a line, and "take" with whether a node-wide token bucket of
# two tokens, never refilled, still had one.
TRIPWIRE = r"""
#include <jansson.h>
#include <string.h>

#include "wsgate_module.h"

extern const struct wsg_module wsg_module;

static int
tripwire_on_handshake(struct wsg_session *s)
{
    return wsg_session_header(s, "X-Tripwire").p != NULL ? WSG_ABORT : WSG_NEXT;
}

static int
tripwire_on_message(struct wsg_session *s, struct wsg_msg *m)
{
    json_t *json = wsg_msg_json(m);
    size_t len;
    const void *data = wsg_msg_data(m, &len);

    if (json != NULL && json_is_true(json_object_get(json, "fail"))) {
        return WSG_ABORT;
    }
    if (len == 4 && memcmp(data, "who?", 4) == 0) {
        wsg_session_send(s, WSG_MSG_TEXT, "tripwire", 8);
        return WSG_STOP;
    }
    if (len == 3 && memcmp(data, "log", 3) == 0) {
        wsg_session_log(s, &wsg_module, WSG_LOG_LEVEL_WARN, "asked to log %d",
                        42);
        wsg_session_log(s, &wsg_module, WSG_LOG_LEVEL_DEBUG, "not logged");
        wsg_session_send(s, WSG_MSG_TEXT, "logged", 6);
        return WSG_STOP;
    }
    if (len == 4 && memcmp(data, "take", 4) == 0) {
        bool taken = wsg_counter_take("tripwire", 8, 0.0, 2.0, 1.0);
        wsg_session_send(s, WSG_MSG_TEXT, taken ? "yes" : "no", taken ? 3 : 2);
        return WSG_STOP;
    }
    return WSG_NEXT;
}

const struct wsg_module wsg_module = {
    .abi = WSG_MODULE_ABI,
    .size = sizeof(struct wsg_module),
    .name = "tripwire",
    .on_handshake = tripwire_on_handshake,
    .on_message = tripwire_on_message,
};
"""

# A module with a setting at every level: "greeting" (main, server,
# location) is merged down to each location, where "greet on" answers
# "<greeting>, <address> at <path>: <text>", or what a "greet_replies"
# block (a little language of "IN OUT;" lines) says. Each worker marks its
# start and its exit as files in $GREET_DIR.
GREET = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wsgate_module.h"

struct greet_reply {
    const char *in, *out;
    struct greet_reply *next;
};

struct greet_loc_conf {
    int enabled;    /* flag */
    char *greeting; /* str */
    struct greet_reply *replies;
};

extern const struct wsg_module wsg_module;

static const char *
reply_line(struct wsg_conf *cf, void *data)
{
    struct greet_loc_conf *glcf = data;

    if (wsg_conf_nargs(cf) != 2) {
        return "a reply takes two words";
    }
    struct greet_reply *r = wsg_conf_alloc(cf, sizeof(*r));
    r->in = wsg_conf_arg(cf, 0).p;
    r->out = wsg_conf_arg(cf, 1).p;
    r->next = glcf->replies;
    glcf->replies = r;
    return NULL;
}

static const char *
set_replies(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    (void) d;
    return wsg_conf_parse_lines(cf, reply_line, conf) == 0 ? NULL : "";
}

static const char *
set_greet(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    const char *rv = wsg_conf_set_flag(cf, d, conf);
    const struct greet_loc_conf *glcf = conf;

    if (rv == NULL && glcf->enabled == 1) {
        wsg_conf_websocket_endpoint(cf);
    }
    return rv;
}

static const struct wsg_directive greet_directives[] = {
    {"greet", WSG_CTX_LOCATION, 1, 1, set_greet,
     offsetof(struct greet_loc_conf, enabled), NULL},
    {"greeting", WSG_CTX_MAIN | WSG_CTX_SERVER | WSG_CTX_LOCATION, 1, 1,
     wsg_conf_set_str, offsetof(struct greet_loc_conf, greeting), NULL},
    {"greet_replies", WSG_CTX_LOCATION | WSG_DIR_BLOCK, 0, 0, set_replies, 0,
     NULL},
    {NULL, 0, 0, 0, NULL, 0, NULL},
};

static void *
greet_create_loc_conf(struct wsg_conf *cf)
{
    struct greet_loc_conf *glcf = wsg_conf_alloc(cf, sizeof(*glcf));

    glcf->enabled = WSG_CONF_UNSET;
    return glcf;
}

static const char *
greet_merge_loc_conf(struct wsg_conf *cf, void *parent, void *child)
{
    const struct greet_loc_conf *prev = parent;
    struct greet_loc_conf *glcf = child;

    (void) cf;
    if (glcf->enabled == WSG_CONF_UNSET) {
        glcf->enabled = 0;
    }
    if (glcf->greeting == NULL) {
        glcf->greeting = prev->greeting != NULL ? prev->greeting : "hello";
    }
    if (glcf->greeting[0] == '\0') {
        return "\"greeting\" must not be empty";
    }
    return NULL;
}

static void
mark(const char *what)
{
    const char *dir = getenv("GREET_DIR");
    char path[4096];

    if (dir != NULL) {
        snprintf(path, sizeof(path), "%s/%s.%ld", dir, what, (long) getpid());
        FILE *f = fopen(path, "w");
        if (f != NULL) {
            fclose(f);
        }
    }
}

static int
greet_init_process(struct wsg_cycle *cycle)
{
    (void) cycle;
    mark("init");
    return 0;
}

static void
greet_exit_process(struct wsg_cycle *cycle)
{
    (void) cycle;
    mark("exit");
}

static int
greet_on_message(struct wsg_session *s, struct wsg_msg *m)
{
    const struct greet_loc_conf *glcf = wsg_session_loc_conf(s, &wsg_module);
    char out[512];
    size_t len;

    if (glcf == NULL || glcf->enabled != 1 || !wsg_msg_is_text(m)) {
        return WSG_NEXT;
    }
    const char *text = wsg_msg_data(m, &len);
    for (const struct greet_reply *r = glcf->replies; r != NULL; r = r->next) {
        if (strlen(r->in) == len && memcmp(r->in, text, len) == 0) {
            wsg_session_send(s, WSG_MSG_TEXT, r->out, strlen(r->out));
            return WSG_STOP;
        }
    }
    struct wsg_str path = wsg_session_path(s);
    int n = snprintf(out, sizeof(out), "%s, %s at %.*s: %.*s", glcf->greeting,
                     wsg_session_remote(s), (int) path.len, path.p, (int) len,
                     text);
    if (n < 0 || (size_t) n >= sizeof(out)) {
        return WSG_ABORT;
    }
    wsg_session_send(s, WSG_MSG_TEXT, out, (size_t) n);
    return WSG_STOP;
}

const struct wsg_module wsg_module = {
    .abi = WSG_MODULE_ABI,
    .size = sizeof(struct wsg_module),
    .name = "greet",
    .directives = greet_directives,
    .create_loc_conf = greet_create_loc_conf,
    .merge_loc_conf = greet_merge_loc_conf,
    .init_process = greet_init_process,
    .exit_process = greet_exit_process,
    .on_message = greet_on_message,
};
"""

# Users and rooms from a loaded module: at a "lobby on" location a session
# takes the user name in its X-User header and joins the room "lobby"; "who"
# is answered with the room's members and whether "bob" is online, "@NAME
# TEXT" goes to user NAME, and any other text to the room but the sender.
LOBBY = r"""
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "wsgate_module.h"

struct lobby_loc_conf {
    int enabled; /* flag */
};

extern const struct wsg_module wsg_module;

static const char *
set_lobby(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    const char *rv = wsg_conf_set_flag(cf, d, conf);
    const struct lobby_loc_conf *llcf = conf;

    if (rv == NULL && llcf->enabled == 1) {
        wsg_conf_websocket_endpoint(cf);
    }
    return rv;
}

static const struct wsg_directive lobby_directives[] = {
    {"lobby", WSG_CTX_LOCATION, 1, 1, set_lobby,
     offsetof(struct lobby_loc_conf, enabled), NULL},
    {NULL, 0, 0, 0, NULL, 0, NULL},
};

static void *
lobby_create_loc_conf(struct wsg_conf *cf)
{
    struct lobby_loc_conf *llcf = wsg_conf_alloc(cf, sizeof(*llcf));

    llcf->enabled = WSG_CONF_UNSET;
    return llcf;
}

static bool
enabled(const struct wsg_session *s)
{
    const struct lobby_loc_conf *llcf = wsg_session_loc_conf(s, &wsg_module);

    return llcf != NULL && llcf->enabled == 1;
}

static int
lobby_on_handshake(struct wsg_session *s)
{
    if (!enabled(s)) {
        return WSG_NEXT;
    }
    struct wsg_str user = wsg_session_header(s, "X-User");
    if (user.p != NULL) {
        wsg_session_set_user(s, user.p, user.len);
    }
    return wsg_session_join(s, "lobby", 5) == 0 ? WSG_NEXT : WSG_ABORT;
}

static int
who(struct wsg_session *s)
{
    json_t *members = wsg_room_members("lobby", 5, 10);
    json_t *answer = json_pack("{s:o, s:b}", "members", members, "bob",
                               wsg_user_online("bob", 3));
    char *text = json_dumps(answer, JSON_COMPACT | JSON_SORT_KEYS);

    json_decref(answer);
    if (text == NULL) {
        return WSG_ABORT;
    }
    wsg_session_send(s, WSG_MSG_TEXT, text, strlen(text));
    free(text);
    return WSG_STOP;
}

static int
lobby_on_message(struct wsg_session *s, struct wsg_msg *m)
{
    size_t len;
    const char *text = wsg_msg_data(m, &len);

    if (!enabled(s) || !wsg_msg_is_text(m)) {
        return WSG_NEXT;
    }
    if (len == 3 && memcmp(text, "who", 3) == 0) {
        return who(s);
    }
    const char *space = memchr(text, ' ', len);
    if (len > 0 && text[0] == '@' && space != NULL) {
        size_t ulen = (size_t) (space - text) - 1;
        wsg_user_send(text + 1, ulen, WSG_MSG_TEXT, space + 1, len - ulen - 2);
        return WSG_STOP;
    }
    wsg_room_publish("lobby", 5, WSG_MSG_TEXT, text, len, s);
    return WSG_STOP;
}

const struct wsg_module wsg_module = {
    .abi = WSG_MODULE_ABI,
    .size = sizeof(struct wsg_module),
    .name = "lobby",
    .directives = lobby_directives,
    .create_loc_conf = lobby_create_loc_conf,
    .on_handshake = lobby_on_handshake,
    .on_message = lobby_on_message,
};
"""

# A module with nothing but its header fields, to be built wrong on purpose.
BARE = r"""
#include "wsgate_module.h"

const struct wsg_module %(symbol)s = {
    .abi = %(abi)s,
    .size = %(size)s,
    .name = "%(name)s",
};
"""

# A module without a name.
NAMELESS = r"""
#include "wsgate_module.h"

const struct wsg_module wsg_module = {
    .abi = WSG_MODULE_ABI,
    .size = sizeof(struct wsg_module),
};
"""

# A module declaring a directive the built-in echo module already has.
SHADOW = r"""
#include <stddef.h>

#include "wsgate_module.h"

static void *
create_loc_conf(struct wsg_conf *cf)
{
    int *flag = wsg_conf_alloc(cf, sizeof(*flag));

    *flag = WSG_CONF_UNSET;
    return flag;
}

static const struct wsg_directive directives[] = {
    {"websocket_echo", WSG_CTX_LOCATION, 1, 1, wsg_conf_set_flag, 0, NULL},
    {NULL, 0, 0, 0, NULL, 0, NULL},
};

const struct wsg_module wsg_module = {
    .abi = WSG_MODULE_ABI,
    .size = sizeof(struct wsg_module),
    .name = "shadow",
    .directives = directives,
    .create_loc_conf = create_loc_conf,
};
"""

# Calls a core function that wsgate_module.h does not declare.
OUTSIDE_API = r"""
#include "wsgate_module.h"

const char *wsg_conf_error(struct wsg_conf *cf, const char *fmt, ...);

static void *
create_main_conf(struct wsg_conf *cf)
{
    wsg_conf_error(cf, "unreachable");
    return NULL;
}

const struct wsg_module wsg_module = {
    .abi = WSG_MODULE_ABI,
    .size = sizeof(struct wsg_module),
    .name = "outside",
    .create_main_conf = create_main_conf,
};
"""

SIZEOF = r"""
#include <stdio.h>

#include "wsgate_module.h"

int
main(void)
{
    printf("%zu\n", sizeof(struct wsg_module));
    return 0;
}
"""


def write(path, text):
    path.write_text(text)
    return path


def compile_c(source, out, *flags):
    """Compiles the C file <source> against the module API into <out>."""
    cmd = ["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{API_DIR}",
           *flags, str(source), "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stderr}"
    return out


def build_module(source, out):
    """Builds the C file <source> as a module: no library linked."""
    return compile_c(source, out, "-shared", "-fPIC")


def build_inline(directory, name, text):
    """Writes <text> to <directory>/<name>.c and builds <name>.so from it."""
    source = directory / f"{name}.c"
    source.write_text(text)
    return build_module(source, directory / f"{name}.so")


def bare(directory, name, module="bare", symbol="wsg_module",
         abi="WSG_MODULE_ABI", size="sizeof(struct wsg_module)"):
    """Builds a hook-less module with the given header fields."""
    return build_inline(directory, name, BARE % {"symbol": symbol, "abi": abi,
                                                 "size": size, "name": module})


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    """The example module and the test modules, built once."""
    d = tmp_path_factory.mktemp("modules")
    return {
        "reverse": build_module(EXAMPLE_DIR / "reverse.c", d / "reverse.so"),
        "tripwire": build_inline(d, "tripwire", TRIPWIRE),
        "greet": build_inline(d, "greet", GREET),
        "lobby": build_inline(d, "lobby", LOBBY),
        "no_symbol": bare(d, "no_symbol", symbol="reverse_module"),
        "abi_1": bare(d, "abi_1", abi="1"),
        "big": bare(d, "big", size="sizeof(struct wsg_module) + 8"),
        "echo_named": bare(d, "echo_named", module="echo"),
        "nameless": build_inline(d, "nameless", NAMELESS),
        "shadow": build_inline(d, "shadow", SHADOW),
        "outside": build_inline(d, "outside", OUTSIDE_API),
        "sizeof": compile_c(write(d / "sizeof.c", SIZEOF), d / "sizeof"),
    }


def config(loads=(), locations=""):
    """A configuration loading the modules <loads>, with /echo, /healthz
    and <locations> in its server."""
    lines = "".join(f"load_module {path};\n" for path in loads)
    return f"""\
{lines}worker_processes 1;
error_log logs/error.log info;
pid logs/wsgate.pid;
events {{ worker_connections 1024; }}
server {{
    listen 127.0.0.1:$port;
    location = /healthz {{ return 200 "ok\\n"; }}
    location /echo {{ websocket_echo on; }}
    location /rev {{ reverse on; }}
    {locations}
}}
"""


def config_test(wsgate, tmp_path, text):
    """Runs wsgate -t on <text>; returns (path, CompletedProcess)."""
    path = write(tmp_path / "wsgate.conf", text)
    return path, wsgate("-p", f"{tmp_path}/", "-c", str(path), "-t")


def assert_config_error(r, path, line, message):
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"wsgate: [emerg] {path}:{line}: {message}",
        f"wsgate: configuration file {path} test failed",
    ]
    assert r.stdout == ""


def run(gw, path, talk, **options):
    """Runs talk(ws) with a websockets client connected to <path>; returns
    what it returns."""
    async def session():
        uri = f"ws://{HOST}:{gw.port}{path}"
        async with websockets.connect(uri, open_timeout=3, close_timeout=3, ping_interval=None,
                                      compression=None, **options) as ws:
            return await asyncio.wait_for(talk(ws), TIMEOUT)

    return asyncio.run(session())


def exchange(gw, path, messages):
    """Sends each of <messages> to <path> and returns the answer to each."""
    async def talk(ws):
        answers = []
        for m in messages:
            await ws.send(m)
            answers.append(await ws.recv())
        return answers

    return run(gw, path, talk)


def closed_by(gw, path, messages):
    """Sends <messages> to <path> until the gateway closes the session;
    returns (answers, close code, close reason)."""
    async def talk(ws):
        answers = []
        try:
            for m in messages:
                await ws.send(m)
                answers.append(await ws.recv())
        except websockets.ConnectionClosed as e:
            return answers, e.rcvd.code, e.rcvd.reason
        raise AssertionError(f"session still open after {answers!r}")

    return run(gw, path, talk)


def handshake_status(gw, path, headers=""):
    """Sends an upgrade request to <path> with extra <headers> lines;
    returns the Response."""
    request = (f"GET {path} HTTP/1.1\r\nHost: {HOST}:{gw.port}\r\n"
               f"Upgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {new_key()}\r\nSec-WebSocket-Version: 13\r\n"
               f"{headers}\r\n")
    raw = send_raw(gw.port, request.encode("latin-1"))
    return Response(raw)


def upgrade(gw, path, headers):
    """The status of an upgrade to <path> by a websockets client sending
    <headers>: 101 when the session opens."""
    async def attempt():
        try:
            async with websockets.connect(f"ws://{HOST}:{gw.port}{path}", open_timeout=3,
                                          close_timeout=3, extra_headers=headers):
                return 101
        except websockets.InvalidStatusCode as e:
            return e.status_code

    return asyncio.run(attempt())


# ---- the example module ----------------------------------------------------


def test_example_module_reverses_text_by_code_points(gateway, modules):
    gw = gateway(config([modules["reverse"]]))
    texts = ["hello", "ab", "x", "", "h\u00e9llo w\u00f6rld \u2713 \U0001F600",
             "\u65e5\u672c\u8a9e", "a" * 70000 + "\u00e9"]
    assert exchange(gw, "/rev", texts) == [t[::-1] for t in texts]


def test_count_answers_the_messages_the_session_sent_so_far(gateway, modules):
    gw = gateway(config([modules["reverse"]]))

    async def talk(ws):
        answers = []
        for m in ["one", "two", "count", "three", "count"]:
            await ws.send(m)
            answers.append(await ws.recv())
        # binary messages are counted but not answered
        await ws.send(b"\x00\x01")
        await ws.send(b"")
        await ws.send("count")
        answers.append(await ws.recv())
        return answers

    assert run(gw, "/rev", talk) == ["eno", "owt", "3", "eerht", "5", "8"]
    # the count belongs to the session: a new one starts from 1
    assert exchange(gw, "/rev", ["count", "count"]) == ["1", "2"]


def test_count_is_kept_per_session_while_sessions_interleave(gateway, modules):
    gw = gateway(config([modules["reverse"]]))

    async def session():
        uri = f"ws://{HOST}:{gw.port}/rev"
        async with websockets.connect(uri, open_timeout=3, ping_interval=None) as a, \
                websockets.connect(uri, open_timeout=3, ping_interval=None) as b:
            for m in ["x", "y", "z"]:
                await a.send(m)
                assert await a.recv() == m
            await b.send("count")
            await a.send("count")
            return await b.recv(), await a.recv()

    assert asyncio.run(asyncio.wait_for(session(), TIMEOUT)) == ("1", "4")


@pytest.mark.parametrize("value", ["1", ""], ids=["value", "empty"])
def test_handshake_with_x_reverse_deny_is_refused_with_403(gateway, modules, value):
    gw = gateway(config([modules["reverse"]]))
    assert upgrade(gw, "/rev", {"X-Reverse-Deny": value}) == 403
    r = handshake_status(gw, "/rev", f"x-reverse-deny: {value}\r\n")
    assert r.status == 403
    assert r.headers.get("connection") == "close"
    gw.wait_log(r"\[info\] \d+: \*\d+ handshake refused with 403: refused by a module", count=2)
    assert upgrade(gw, "/rev", {}) == 101


def test_x_reverse_deny_elsewhere_is_not_the_modules_business(gateway, modules):
    gw = gateway(config([modules["reverse"]]))
    assert upgrade(gw, "/echo", {"X-Reverse-Deny": "1"}) == 101


def test_builtin_echo_still_answers_beside_a_loaded_module(gateway, modules):
    gw = gateway(config([modules["reverse"]]))
    assert exchange(gw, "/echo", ["hello", "count"]) == ["hello", "count"]

    async def talk(ws):
        await ws.send(b"\x01\x02")
        return await ws.recv()

    assert run(gw, "/echo", talk) == b"\x01\x02"
    assert exchange(gw, "/rev", ["hello"]) == ["olleh"]


def test_location_without_the_directive_is_no_endpoint(gateway, modules):
    gw = gateway(config([modules["reverse"]], locations="location /off { reverse off; }"))
    assert handshake_status(gw, "/off").status == 404
    assert handshake_status(gw, "/nowhere").status == 404


def test_module_path_is_relative_to_the_prefix(wsgate, tmp_path, modules):
    (tmp_path / "modules").mkdir()
    shutil.copy(modules["reverse"], tmp_path / "modules" / "reverse.so")
    path = write(tmp_path / "wsgate.conf",
                 config(["modules/reverse.so"]).replace("$port", "8080"))
    r = wsgate("-p", f"{tmp_path}/", "-c", str(path), "-t")
    assert r.returncode == 0, r.stderr
    assert r.stderr == f"wsgate: configuration file {path} test is successful\n"


def test_module_can_be_loaded_from_the_command_line(wsgate, tmp_path, modules):
    path = write(tmp_path / "wsgate.conf", config().replace("$port", "8080"))
    r = wsgate("-p", f"{tmp_path}/", "-c", str(path),
               "-g", f"load_module {modules['reverse']};", "-t")
    assert r.returncode == 0, r.stderr


def test_directive_of_a_module_not_loaded_is_unknown(wsgate, tmp_path):
    path = write(tmp_path / "wsgate.conf", config().replace("$port", "8080"))
    r = wsgate("-p", f"{tmp_path}/", "-c", str(path), "-t")
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == f'wsgate: [emerg] {path}:9: unknown directive "reverse"'


# ---- configuration levels and worker hooks ---------------------------------

GREET_CONFIG = """\
load_module {so};
worker_processes 2;
error_log logs/error.log info;
pid logs/wsgate.pid;
events {{ worker_connections 1024; }}
greeting hi;
server {{
    listen 127.0.0.1:$port;
    location = /healthz {{ return 200 "ok\\n"; }}
    location /main {{ greet on; }}
    location /here {{
        greet on;
        greeting hey;
        greet_replies {{
            ping pong;
            "good night" "sleep well";
        }}
    }}
}}
server {{
    listen 127.0.0.1:$port2;
    greeting howdy;
    location = /healthz {{ return 200 "ok\\n"; }}
    location /server {{ greet on; }}
}}
"""


def test_module_settings_are_merged_from_main_to_server_to_location(gateway, modules):
    gw = gateway(GREET_CONFIG.format(so=modules["greet"]))
    assert exchange(gw, "/main?x=1", ["a"]) == ["hi, 127.0.0.1 at /main?x=1: a"]
    assert exchange(gw, "/here", ["b"]) == ["hey, 127.0.0.1 at /here: b"]

    async def talk(ws):
        await ws.send("c")
        return await ws.recv()

    async def session():
        uri = f"ws://{HOST}:{gw.ports['port2']}/server"
        async with websockets.connect(uri, open_timeout=3, ping_interval=None) as ws:
            return await asyncio.wait_for(talk(ws), TIMEOUT)

    assert asyncio.run(session()) == "howdy, 127.0.0.1 at /server: c"


def test_module_block_directive_reads_its_own_statements(gateway, modules):
    gw = gateway(GREET_CONFIG.format(so=modules["greet"]))
    assert exchange(gw, "/here", ["ping", "good night", "pong"]) == [
        "pong", "sleep well", "hey, 127.0.0.1 at /here: pong"]
    assert exchange(gw, "/main", ["ping"]) == ["hi, 127.0.0.1 at /main: ping"]


def test_module_block_statement_error_names_its_line(wsgate, tmp_path, modules):
    text = GREET_CONFIG.format(so=modules["greet"]).replace("ping pong;", "ping pong pang;")
    path, r = config_test(wsgate, tmp_path, text.replace("$port2", "8081").replace("$port", "8080"))
    assert_config_error(r, path, 15, "a reply takes two words")


def test_merge_error_is_reported_at_the_server_block(wsgate, tmp_path, modules):
    text = GREET_CONFIG.format(so=modules["greet"]).replace("greeting hey;", 'greeting "";')
    path, r = config_test(wsgate, tmp_path, text.replace("$port2", "8081").replace("$port", "8080"))
    assert_config_error(r, path, 7, '"greeting" must not be empty')


def test_process_hooks_run_in_every_worker(gateway, modules, sanitizer_env, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    sanitizer_env["GREET_DIR"] = str(marks)
    gw = gateway(GREET_CONFIG.format(so=modules["greet"]))
    workers = gw.worker_pids()
    assert len(workers) == 2
    wait_until(lambda: sorted(p.name for p in marks.iterdir()) ==
               sorted(f"init.{pid}" for pid in workers), 5, "both workers' init_process")
    gw.stop()
    assert sorted(p.name for p in marks.iterdir()) == sorted(
        [f"init.{pid}" for pid in workers] + [f"exit.{pid}" for pid in workers])


def test_loaded_module_reaches_users_and_rooms_on_every_worker(gateway, modules):
    gw = gateway(config([modules["lobby"], modules["reverse"]],
                        locations="location /lobby { lobby on; }")
                 .replace("worker_processes 1;", "worker_processes 2;"))

    async def session():
        uri = f"ws://{HOST}:{gw.port}/lobby"
        connect = functools.partial(websockets.connect, uri, open_timeout=3, ping_interval=None)
        async with connect(extra_headers={"X-User": "alice"}) as alice, \
                connect(extra_headers={"X-User": "bob"}) as bob, connect() as anonymous:
            await alice.send("who")
            answer = json.loads(await alice.recv())
            assert answer["bob"] is True
            assert sorted(answer["members"]) == ["alice", "bob"]
            await alice.send("hello, room")
            assert await bob.recv() == "hello, room"
            assert await anonymous.recv() == "hello, room"
            await anonymous.send("@bob psst")
            assert await bob.recv() == "psst"
            # what alice gets next is the answer: her own message did not come back
            await alice.send("who")
            assert sorted(json.loads(await alice.recv())["members"]) == ["alice", "bob"]
        return True

    assert asyncio.run(asyncio.wait_for(session(), TIMEOUT))


# ---- order of hooks, WSG_ABORT ---------------------------------------------


def test_loaded_modules_hooks_run_in_load_module_order(gateway, modules):
    gw = gateway(config([modules["tripwire"], modules["reverse"]]))
    assert exchange(gw, "/rev", ["who?", "abc"]) == ["tripwire", "cba"]


def test_loaded_module_loaded_last_sees_only_what_others_pass_on(gateway, modules):
    gw = gateway(config([modules["reverse"], modules["tripwire"]]))
    assert exchange(gw, "/rev", ["who?"]) == ["?ohw"]


def test_loaded_modules_see_messages_before_the_builtin_echo(gateway, modules):
    gw = gateway(config([modules["tripwire"], modules["reverse"]]))
    assert exchange(gw, "/echo", ["who?", "abc"]) == ["tripwire", "abc"]


def test_module_log_lines_name_the_module_and_the_connection(gateway, modules):
    gw = gateway(config([modules["tripwire"], modules["reverse"]]))
    assert exchange(gw, "/rev", ["log"]) == ["logged"]
    gw.wait_log(r"\[warn\] \d+: \*\d+ module tripwire: asked to log 42 while [a-zA-Z ]+, "
                r"client: 127\.0\.0\.1:\d+, server: 127\.0\.0\.1:\d+$")
    assert "not logged" not in gw.error_log()


def test_token_bucket_is_shared_by_every_worker(gateway, modules):
    gw = gateway(config([modules["tripwire"], modules["reverse"]])
                 .replace("worker_processes 1;", "worker_processes 2;"))
    answers = [exchange(gw, "/rev", ["take"])[0] for _ in range(4)]
    assert answers == ["yes", "yes", "no", "no"]


def test_message_hook_abort_closes_the_session_with_1011(gateway, modules):
    gw = gateway(config([modules["tripwire"], modules["reverse"]]))
    answers, code, reason = closed_by(gw, "/rev", ["abc", '{"fail": false}', '{"fail": true}'])
    assert answers == ["cba", '}eslaf :"liaf"{']
    assert code == 1011
    assert reason == "module error"
    gw.wait_log(r"\[error\] \d+: \*\d+ module \"tripwire\" failed on a message")
    # the worker lives on: only that session ended
    assert exchange(gw, "/rev", ["count"]) == ["1"]


def test_message_hook_abort_ends_the_session_before_the_echo_answers(gateway, modules):
    gw = gateway(config([modules["tripwire"]],
                        locations='location /plain { websocket_echo on; }'
                        ).replace("location /rev { reverse on; }", ""))
    answers, code, _ = closed_by(gw, "/echo", ["x", '{"fail": true}', "never"])
    assert answers == ["x"]
    assert code == 1011
    gw.wait_log(r"\[error\] \d+: \*\d+ module \"tripwire\" failed on a message")


def test_handshake_hook_abort_refuses_with_500(gateway, modules):
    gw = gateway(config([modules["tripwire"], modules["reverse"]]))
    r = handshake_status(gw, "/rev", "X-Tripwire: on\r\n")
    assert r.status == 500
    gw.wait_log(r"\[error\] \d+: \*\d+ module \"tripwire\" failed on a handshake")
    assert upgrade(gw, "/rev", {}) == 101


# ---- load_module errors ----------------------------------------------------


def sizeof_wsg_module(modules):
    r = subprocess.run([str(modules["sizeof"])], capture_output=True, text=True,
                       timeout=BUILD_TIMEOUT)
    return int(r.stdout)


def test_missing_file_is_refused_with_the_loaders_reason(wsgate, tmp_path):
    missing = tmp_path / "modules" / "absent.so"
    path, r = config_test(wsgate, tmp_path, "worker_processes 1;\nload_module modules/absent.so;\n")
    assert_config_error(r, path, 2, f'"load_module" directive cannot load "{missing}": '
                                    f"{missing}: cannot open shared object file: "
                                    "No such file or directory")


def test_file_that_is_no_shared_object_is_refused(wsgate, tmp_path):
    text = write(tmp_path / "notes.so", "not an ELF file, only text\n" * 8)
    path, r = config_test(wsgate, tmp_path, f"load_module {text};\n")
    assert_config_error(r, path, 1, f'"load_module" directive cannot load "{text}": '
                                    f"{text}: invalid ELF header")


def test_module_calling_outside_the_api_is_refused(wsgate, tmp_path, modules):
    so = modules["outside"]
    path, r = config_test(wsgate, tmp_path, f"load_module {so};\n")
    assert_config_error(r, path, 1, f'"load_module" directive cannot load "{so}": '
                                    f"{so}: undefined symbol: wsg_conf_error")


def test_object_without_wsg_module_symbol_is_refused(wsgate, tmp_path, modules):
    so = modules["no_symbol"]
    path, r = config_test(wsgate, tmp_path, f"load_module {so};\n")
    assert_config_error(r, path, 1,
                        f'"load_module" directive: "{so}" has no "wsg_module" symbol')


def test_module_built_for_another_abi_is_refused(wsgate, tmp_path, modules):
    so = modules["abi_1"]
    path, r = config_test(wsgate, tmp_path, f"worker_processes 1;\n\nload_module {so};\n")
    assert_config_error(r, path, 3, f'"load_module" directive: "{so}" was built for '
                                    "module ABI 1, this wsgate has ABI 3")


def test_module_with_another_struct_size_is_refused(wsgate, tmp_path, modules):
    so = modules["big"]
    size = sizeof_wsg_module(modules)
    path, r = config_test(wsgate, tmp_path, f"load_module {so};\n")
    assert_config_error(r, path, 1, f'"load_module" directive: "{so}" has a struct '
                                    f"wsg_module of {size + 8} bytes, this wsgate "
                                    f"expects {size}")


def test_same_module_twice_is_refused(wsgate, tmp_path, modules):
    so = modules["reverse"]
    path, r = config_test(wsgate, tmp_path, f"load_module {so};\nload_module {so};\n")
    assert_config_error(r, path, 2, '"load_module" directive: module "reverse" is already loaded')


def test_same_module_name_from_another_file_is_refused(wsgate, tmp_path, modules):
    copy = tmp_path / "reverse-copy.so"
    shutil.copy(modules["reverse"], copy)
    path, r = config_test(wsgate, tmp_path,
                          f"load_module {modules['reverse']};\nload_module {copy};\n")
    assert_config_error(r, path, 2, '"load_module" directive: module "reverse" is already loaded')


def test_module_named_like_a_builtin_is_refused(wsgate, tmp_path, modules):
    path, r = config_test(wsgate, tmp_path, f"load_module {modules['echo_named']};\n")
    assert_config_error(r, path, 1, '"load_module" directive: module "echo" is already loaded')


@pytest.mark.parametrize("block", ["server {\n    listen 127.0.0.1:8080;\n}",
                                   "upstream u {\n    server 127.0.0.1:9001;\n}"],
                         ids=["server", "upstream"])
def test_load_module_after_a_block_is_refused(wsgate, tmp_path, modules, block):
    path, r = config_test(wsgate, tmp_path, f"{block}\nload_module {modules['reverse']};\n")
    assert_config_error(r, path, 4, '"load_module" directive must come before any '
                                    '"server" or "upstream" block')


def test_module_without_a_name_is_refused(wsgate, tmp_path, modules):
    so = modules["nameless"]
    path, r = config_test(wsgate, tmp_path, f"load_module {so};\n")
    assert_config_error(r, path, 1, f'"load_module" directive: "{so}" has a module '
                                    'without a name')


def test_module_redefining_a_builtin_directive_is_refused(wsgate, tmp_path, modules):
    so = modules["shadow"]
    path, r = config_test(wsgate, tmp_path, f"load_module {so};\n")
    assert r.returncode == 1
    first = r.stderr.splitlines()[0]
    assert 'defines "websocket_echo", which module "echo" defines already' in first


def test_load_module_inside_a_server_is_not_allowed(wsgate, tmp_path, modules):
    path, r = config_test(wsgate, tmp_path, "server {\n    listen 127.0.0.1:8080;\n"
                                            f"    load_module {modules['reverse']};\n}}\n")
    assert_config_error(r, path, 3,
                        '"load_module" directive is not allowed in the server context')


def test_module_directive_errors_name_the_directive(wsgate, tmp_path, modules):
    path, r = config_test(wsgate, tmp_path, config([modules["reverse"]]).replace(
        "reverse on;", "reverse maybe;").replace("$port", "8080"))
    assert_config_error(r, path, 10, '"reverse" directive invalid value "maybe", '
                                     'expecting "on" or "off"')


# ---- reloads ---------------------------------------------------------------


def test_reload_can_add_a_module(gateway, modules):
    gw = gateway(config().replace("location /rev { reverse on; }", ""))
    old = gw.worker_pids()
    gw.write_config(config([modules["reverse"]]))
    gw.signal(signal.SIGHUP)
    gw.wait_workers(1, gone=old)
    gw.wait_log(r"reconfigured, 1 worker processes$")
    assert exchange(gw, "/rev", ["abc", "count"]) == ["cba", "2"]


def test_reload_with_a_bad_module_keeps_the_running_configuration(gateway, modules):
    gw = gateway(config([modules["reverse"]]),
                 allow=[r'\[emerg\] \d+: \S+:1: "load_module" directive: \S+ was built for '
                        r"module ABI 1, this wsgate has ABI 3$"])
    old = gw.worker_pids()
    gw.write_config(config([modules["abi_1"], modules["reverse"]]))
    gw.signal(signal.SIGHUP)
    gw.wait_log(r"\[error\] \d+: reload failed, still running the previous configuration$")
    assert gw.worker_pids() == old
    assert exchange(gw, "/rev", ["abc"]) == ["cba"]


# ---- the walk-through ------------------------------------------------------


def test_walk_through_quotes_the_example_module_as_it_is():
    doc = (SRCDIR / "docs" / "modules.md").read_text()
    section = doc.split("\n## Example: the reverse module\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```c\n(.*?)```", section, re.S)
    source = (EXAMPLE_DIR / "reverse.c").read_text()
    assert len(blocks) >= 10
    stale = [b for b in blocks if b not in source]
    assert stale == [], "docs/modules.md quotes code that reverse.c no longer has"


# ---- make install and an out-of-tree build ---------------------------------


def make_variables(makefile, names):
    """The values of <names> in an automake Makefile, ${var} expanded."""
    raw = {}
    for line in makefile.read_text().splitlines():
        m = re.match(r"^(\w+) = (.*)$", line)
        if m:
            raw.setdefault(m.group(1), m.group(2).strip())

    def expand(value, depth=0):
        assert depth < 10, f"{value!r} does not expand"
        return re.sub(r"\$[{(](\w+)[})]", lambda m: expand(raw[m.group(1)], depth + 1), value)

    return {name: expand(raw[name]) for name in names}


def test_make_install_gives_out_of_tree_modules_header_and_pkg_config(wsgate, tmp_path):
    builddir = Path(WSGATE_BIN).resolve().parents[1]
    makefile = builddir / "Makefile"
    if not makefile.is_file() or "install-pkgconfigDATA" not in makefile.read_text():
        pytest.skip(f"{builddir} has no make install of wsgate_module.h and wsgate.pc")
    for tool in ("make", "pkg-config"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")

    root = tmp_path / "root"
    r = subprocess.run(["make", "-C", str(builddir), "install", f"DESTDIR={root}"],
                       capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    dirs = make_variables(makefile, ["prefix", "includedir", "libdir", "PACKAGE_VERSION"])
    staged = Path(f"{root}{dirs['prefix']}")
    header = Path(f"{root}{dirs['includedir']}") / "wsgate_module.h"
    pc_dir = Path(f"{root}{dirs['libdir']}") / "pkgconfig"
    assert header.read_bytes() == (API_DIR / "wsgate_module.h").read_bytes()
    assert (pc_dir / "wsgate.pc").is_file()

    # the staged tree stands in for the prefix: pkg-config is told so
    # the suite itself may run under "make -s": its flags must not silence
    # the nested build whose command line is checked below
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PKG_CONFIG", "WSGATE", "MAKE", "MFLAGS"))}
    env["PKG_CONFIG_PATH"] = str(pc_dir)
    pkg_config = f"pkg-config --define-variable=prefix={staged}"
    for query, expected in (("--modversion", dirs["PACKAGE_VERSION"]),
                            ("--cflags", f"-I{header.parent}")):
        r = subprocess.run([*pkg_config.split(), query, "wsgate"], env=env,
                           capture_output=True, text=True, timeout=BUILD_TIMEOUT)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == expected

    build = tmp_path / "build"
    build.mkdir()
    for name in ("Makefile", "reverse.c"):
        shutil.copy(EXAMPLE_DIR / name, build / name)
    r = subprocess.run(["make", "-C", str(build), f"PKG_CONFIG={pkg_config}"], env=env,
                       capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"-I{header.parent}" in r.stdout
    assert "warning" not in r.stderr, r.stderr

    path, r = config_test(wsgate, tmp_path,
                          config([build / "reverse.so"]).replace("$port", "8080"))
    assert r.returncode == 0, r.stderr
