"""
Module services beyond messages: timers (a session timer fires after its
delay and never after the session is gone; a cancelled one never fires)
and per-session string attributes. A small module written against
wsgate_module.h is built and loaded with load_module.
"""
import asyncio
import os
import subprocess
import time

import websockets

MODULE = r"""
#include <stdio.h>
#include <string.h>
#include "wsgate_module.h"

static void later(struct wsg_session *s, void *data) {
    wsg_session_send(s, WSG_MSG_TEXT, (const char *) data, strlen(data));
}

static int on_message(struct wsg_session *s, struct wsg_msg *m) {
    size_t n;
    const char *p = wsg_msg_data(m, &n);
    char cmd[64] = "";
    if (n >= sizeof(cmd)) return WSG_NEXT;
    memcpy(cmd, p, n);
    if (strcmp(cmd, "timer") == 0) {
        wsg_timer_add(s, 200, later, "fired");
    } else if (strcmp(cmd, "cancel") == 0) {
        wsg_timer_cancel(wsg_timer_add(s, 100, later, "should not fire"));
        wsg_timer_add(s, 300, later, "after cancel");
    } else if (strcmp(cmd, "orphan") == 0) {
        wsg_timer_add(s, 300, later, "orphan");
        wsg_session_end(s, 1000, "bye");
    } else if (strncmp(cmd, "set ", 4) == 0) {
        char *eq = strchr(cmd + 4, '=');
        if (eq == NULL) return WSG_NEXT;
        *eq = '\0';
        wsg_session_set_attr(s, cmd + 4, eq[1] ? eq + 1 : NULL);
        wsg_session_send(s, WSG_MSG_TEXT, "ok", 2);
    } else if (strncmp(cmd, "get ", 4) == 0) {
        struct wsg_str v = wsg_session_attr(s, cmd + 4);
        wsg_session_send(s, WSG_MSG_TEXT, v.p ? v.p : "(none)",
                         v.p ? v.len : 6);
    } else {
        return WSG_NEXT;
    }
    return WSG_STOP;
}

const struct wsg_module wsg_module = {
    .abi = WSG_MODULE_ABI, .size = sizeof(struct wsg_module),
    .name = "services", .on_message = on_message,
};
"""


def build(tmp_path):
    src = tmp_path / "services.c"
    src.write_text(MODULE)
    so = tmp_path / "services.so"
    include = os.path.join(os.environ.get("WSGATE_SRCDIR", "."), "src")
    subprocess.run(["cc", "-shared", "-fPIC", "-Wall", "-Werror", "-I", include,
                    str(src), "-o", str(so)], check=True, timeout=60)
    return so


def config(so):
    return f"""\
load_module {so};
worker_processes 1;
error_log logs/error.log info;
pid logs/wsgate.pid;
events {{ worker_connections 64; }}
server {{
    listen 127.0.0.1:$port;
    location /s {{ websocket_echo on; }}
}}
"""


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_a_session_timer_fires_after_its_delay(gateway, tmp_path):
    gw = gateway(config(build(tmp_path)))

    async def scenario():
        async with websockets.connect(f"ws://127.0.0.1:{gw.port}/s") as ws:
            start = time.monotonic()
            await ws.send("timer")
            text = await ws.recv()
            return text, time.monotonic() - start

    text, elapsed = run(scenario())
    assert text == "fired"
    assert 0.15 <= elapsed < 2.0


def test_a_cancelled_timer_never_fires(gateway, tmp_path):
    gw = gateway(config(build(tmp_path)))

    async def scenario():
        async with websockets.connect(f"ws://127.0.0.1:{gw.port}/s") as ws:
            await ws.send("cancel")
            return await ws.recv()

    assert run(scenario()) == "after cancel"


def test_a_timer_dies_with_its_session(gateway, tmp_path):
    gw = gateway(config(build(tmp_path)))

    async def scenario():
        async with websockets.connect(f"ws://127.0.0.1:{gw.port}/s") as ws:
            await ws.send("orphan")
            try:
                await asyncio.wait_for(ws.recv(), 2)
            except websockets.ConnectionClosed:
                return ws.close_code

    assert run(scenario()) == 1000
    time.sleep(0.5)  # past the timer: a use after free would show here
    async def still_serving():
        async with websockets.connect(f"ws://127.0.0.1:{gw.port}/s") as ws:
            await ws.send("hello")
            return await ws.recv()

    assert run(still_serving()) == "hello"


def test_attributes_are_set_read_replaced_and_removed(gateway, tmp_path):
    gw = gateway(config(build(tmp_path)))

    async def scenario():
        out = []
        async with websockets.connect(f"ws://127.0.0.1:{gw.port}/s") as ws:
            for cmd in ["get role", "set role=admin", "get role",
                        "set role=guest", "get role", "set role=", "get role"]:
                await ws.send(cmd)
                out.append(await ws.recv())
        return out

    assert run(scenario()) == ["(none)", "ok", "admin", "ok", "guest", "ok", "(none)"]
