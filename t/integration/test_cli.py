"""
The command line: -t tests a configuration and names the file and line of
each error, -V names the libraries and the event method, -h prints usage,
bad options exit 2, -g adds main-context directives, and -s sends stop,
quit, reload or reopen to the master named by the pid file.
"""
import os
import re
import signal

import pytest

from support import (children, free_port, http_get, open_files, process_alive,
                     process_title, wait_until)

GOOD = """\
worker_processes 2;
error_log logs/error.log info;
pid logs/wsgate.pid;
worker_shutdown_timeout 1s;
events { worker_connections 1024; }
server {
    listen 127.0.0.1:$port;
    access_log logs/access.log;
    location = /healthz { return 200 "ok\\n"; }
}
"""

# the same without worker_processes, for -g to set it
NO_WORKERS = "\n".join(line for line in GOOD.splitlines() if "worker_processes" not in line)


def config_test(wsgate, tmp_path, text, name="wsgate.conf"):
    path = tmp_path / name
    path.write_text(text)
    return path, wsgate("-p", f"{tmp_path}/", "-c", str(path), "-t")


def test_config_test_of_good_file_succeeds(wsgate, tmp_path):
    path, r = config_test(wsgate, tmp_path, GOOD.replace("$port", "8080"))
    assert r.returncode == 0, r.stderr
    assert r.stderr == f"wsgate: configuration file {path} test is successful\n"
    assert r.stdout == ""


def test_config_test_resolves_relative_file_against_prefix(wsgate, tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "gw.conf").write_text("worker_processes 1;\n")
    r = wsgate("-p", str(tmp_path), "-c", "conf/gw.conf", "-t")
    assert r.returncode == 0, r.stderr
    assert r.stderr == f"wsgate: configuration file {tmp_path}/conf/gw.conf test is successful\n"


BAD_CONFIGS = {
    "unknown_directive": (
        "worker_processes 1;\nno_such_directive on;\n",
        2, 'unknown directive "no_such_directive"'),
    "wrong_context": (
        "worker_processes 1;\n\nworker_connections 10;\n",
        3, '"worker_connections" directive is not allowed in the main context'),
    "missing_semicolon": (
        "worker_processes 1;\npid logs/x.pid\n",
        2, 'unexpected end of file, expecting ";" or "}"'),
    "missing_semicolon_before_next_directive": (
        "worker_processes 1\npid logs/x.pid;\n",
        1, 'invalid number of arguments in "worker_processes" directive'),
    "missing_semicolon_before_brace": (
        "worker_processes 1;\nevents {\n    worker_connections 10\n}\n",
        3, 'unexpected "}", expecting ";" after "worker_connections"'),
    "block_directive_without_brace": (
        "events;\n",
        1, 'directive "events" has no opening "{"'),
    "unclosed_block": (
        "events {\n    worker_connections 10;\n",
        3, 'unexpected end of file, expecting "}"'),
    "bad_number": (
        "events {\n    worker_connections 10k;\n}\n",
        2, '"worker_connections" directive invalid number "10k"'),
    "number_out_of_range": (
        "events {\n    worker_connections 0;\n}\n",
        2, '"worker_connections" directive value "0" is out of range (1 to 1000000)'),
    "bad_size": (
        "server {\n    listen 127.0.0.1:8080;\n    client_max_header_size 12q;\n}\n",
        3, '"client_max_header_size" directive invalid size "12q", '
           'expecting a number with an optional k, m or g'),
    "bad_time": (
        "worker_shutdown_timeout 5parsecs;\n",
        1, '"worker_shutdown_timeout" directive invalid time "5parsecs", '
           'expecting a number with a unit: ms, s, m, h or d'),
    "bad_worker_count": (
        "worker_processes many;\n",
        1, '"worker_processes" directive invalid value "many", expecting "auto" or a number'),
    "duplicate": (
        "pid a.pid;\npid b.pid;\n",
        2, '"pid" directive is duplicate'),
    "too_many_arguments": (
        "daemon on off;\n",
        1, 'invalid number of arguments in "daemon" directive'),
    "bad_listen_port": (
        "server {\n    listen 127.0.0.1:70000;\n}\n",
        2, '"listen" directive address "127.0.0.1:70000" has an invalid port'),
    "server_without_listen": (
        "server {\n    access_log off;\n}\n",
        1, '"server" block has no "listen" directive'),
    "fewer_affinity_masks_than_workers": (
        "worker_processes 2;\nworker_cpu_affinity 01;\n",
        2, '"worker_cpu_affinity" gives 1 masks for 2 worker processes'),
    "bad_log_level": (
        "error_log logs/error.log loud;\n",
        1, '"error_log" directive invalid level "loud"'),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_config_test_names_file_line_and_reason(wsgate, tmp_path, case):
    text, line, message = BAD_CONFIGS[case]
    path, r = config_test(wsgate, tmp_path, text)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert len(lines) == 2, r.stderr
    assert lines[0].startswith(f"wsgate: [emerg] {path}:{line}: {message}"), r.stderr
    assert lines[1] == f"wsgate: configuration file {path} test failed"
    assert r.stdout == ""


def test_config_test_names_the_included_file_and_its_line(wsgate, tmp_path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "a.conf").write_text("pid logs/a.pid;\n")
    (tmp_path / "conf.d" / "b.conf").write_text("# second\n\nbogus_directive 1;\n")
    path, r = config_test(wsgate, tmp_path, "worker_processes 1;\ninclude conf.d/*.conf;\n")
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f'wsgate: [emerg] {tmp_path}/conf.d/b.conf:3: unknown directive "bogus_directive"',
        f"wsgate: configuration file {path} test failed",
    ]


def test_config_test_of_missing_include_names_the_including_line(wsgate, tmp_path):
    path, r = config_test(wsgate, tmp_path, "worker_processes 1;\n\ninclude missing.conf;\n")
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines[0].startswith(
        f'wsgate: [emerg] {path}:3: open() "{tmp_path}/missing.conf" failed'), r.stderr
    assert lines[1] == f"wsgate: configuration file {path} test failed"


def test_config_test_of_missing_file_fails(wsgate, tmp_path):
    path = tmp_path / "absent.conf"
    r = wsgate("-p", f"{tmp_path}/", "-c", str(path), "-t")
    assert r.returncode == 1
    assert f'open() "{path}" failed' in r.stderr
    assert r.stderr.endswith(f"wsgate: configuration file {path} test failed\n")


def test_g_directive_duplicated_in_file_is_reported_at_its_line(wsgate, tmp_path):
    path = tmp_path / "wsgate.conf"
    path.write_text("pid logs/x.pid;\nworker_processes 2;\n")
    r = wsgate("-p", f"{tmp_path}/", "-c", str(path), "-g", "worker_processes 3;", "-t")
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == \
        f'wsgate: [emerg] {path}:2: "worker_processes" directive is duplicate'


def test_version_names_libraries_and_event_method(wsgate):
    r = wsgate("-V")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert re.search(r"^wsgate version \d+\.\d+\.\d+", out, re.M), out
    assert re.search(r"^libevent \S+, event method epoll$", out, re.M), out
    assert re.search(r"^OpenSSL \d", out, re.M), out
    assert re.search(r"^jansson \d", out, re.M), out
    assert re.search(r"^zlib \d", out, re.M), out


def test_help_prints_usage_and_exits_0(wsgate):
    r = wsgate("-h")
    assert r.returncode == 0
    assert r.stdout.startswith("Usage: wsgate ")
    for option in ("-t", "-V", "-c file", "-p prefix", "-g directives", "-s signal"):
        assert option in r.stdout


@pytest.mark.parametrize("args, message", [
    (["-x"], 'invalid option "-x"'),
    (["-c"], 'option "-c" requires an argument'),
    (["-s", "bogus"], 'invalid signal "bogus", expecting stop, quit, reload or reopen'),
    (["-t", "extra"], 'unexpected argument "extra"'),
])
def test_bad_command_line_exits_2_with_usage(wsgate, args, message):
    r = wsgate(*args)
    assert r.returncode == 2
    assert r.stderr.startswith(f"wsgate: {message}\n"), r.stderr
    assert "Usage: wsgate" in r.stderr


def test_signal_without_running_master_names_pid_file_and_exits_1(wsgate, tmp_path):
    (tmp_path / "wsgate.conf").write_text(GOOD.replace("$port", "8080"))
    r = wsgate("-p", f"{tmp_path}/", "-c", "wsgate.conf", "-s", "reload")
    assert r.returncode == 1
    assert f'"{tmp_path}/logs/wsgate.pid"' in r.stderr, r.stderr
    assert "No such file or directory" in r.stderr


def test_signal_with_stale_pid_file_exits_1(wsgate, tmp_path):
    (tmp_path / "wsgate.conf").write_text(GOOD.replace("$port", "8080"))
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "wsgate.pid").write_text("2147483646\n")
    r = wsgate("-p", f"{tmp_path}/", "-c", "wsgate.conf", "-s", "stop")
    assert r.returncode == 1
    assert "kill(2147483646, stop) failed" in r.stderr, r.stderr


def test_signal_stop_makes_master_exit_and_remove_pid_file(gateway):
    gw = gateway(GOOD)
    workers = gw.worker_pids()
    r = gw.cli("-s", "stop")
    assert r.returncode == 0, r.stderr
    assert gw.wait_exit(5) == 0
    assert not gw.pid_path.exists()
    assert not any(process_alive(pid) for pid in workers)
    gw.wait_log(r"\[notice\] \d+: stopping$")
    gw.wait_log(r"\[notice\] \d+: exit$")


def test_signal_quit_makes_master_exit_gracefully(gateway):
    gw = gateway(GOOD)
    r = gw.cli("-s", "quit")
    assert r.returncode == 0, r.stderr
    assert gw.wait_exit(5) == 0
    assert not gw.pid_path.exists()
    gw.wait_log(r"\[notice\] \d+: gracefully shutting down$", count=3)


def test_signal_reload_starts_new_workers(gateway):
    gw = gateway(GOOD)
    old = gw.worker_pids()
    r = gw.cli("-s", "reload")
    assert r.returncode == 0, r.stderr
    new = gw.wait_workers(2, gone=old)
    assert not set(new) & set(old)
    gw.wait_log(r"\[notice\] \d+: reconfigured, 2 worker processes$")
    assert gw.http_get("/healthz").status == 200
    assert gw.alive()


def test_signal_reopen_reopens_logs(gateway):
    gw = gateway(GOOD)
    error_log = gw.logs / "error.log"
    rotated = gw.logs / "error.log.old"
    error_log.rename(rotated)
    r = gw.cli("-s", "reopen")
    assert r.returncode == 0, r.stderr
    wait_until(error_log.exists, 5, "a fresh error.log")
    # the master and each worker say so in the old file, then switch
    gw.wait_log(r"\[notice\] \d+: reopening logs$", count=3, name="error.log.old")
    wait_until(lambda: str(rotated) not in held_files(gw), 5,
               "every process to close error.log.old")
    sock = gw.connect()
    sock.close()
    gw.wait_log(r"client closed connection while reading client request")


def held_files(gw):
    """Every file the master and its workers hold, as one string."""
    pids = [gw.master_pid, *gw.worker_pids()]
    return "\n".join(target for pid in pids for target in open_files(pid))


def test_g_worker_processes_gives_three_workers(gateway):
    gw = gateway(NO_WORKERS, args=["-g", "worker_processes 3;"])
    workers = gw.worker_pids()
    assert len(workers) == 3
    assert gw.http_get("/healthz").status == 200


def test_master_started_again_after_stop_serves_the_same_port(gateway):
    gw = gateway(GOOD)
    first = gw.master_pid
    assert gw.cli("-s", "stop").returncode == 0
    assert gw.wait_exit(5) == 0
    gw.start()
    assert gw.master_pid != first
    assert gw.http_get("/healthz").status == 200


def test_daemon_on_detaches_and_serves_until_stopped(wsgate, tmp_path):
    port = free_port()
    conf = tmp_path / "wsgate.conf"
    conf.write_text(f"""\
daemon on;
worker_processes 1;
error_log logs/error.log info;
pid logs/wsgate.pid;
server {{ listen 127.0.0.1:{port}; location = /healthz {{ return 200 "ok\\n"; }} }}
""")
    (tmp_path / "logs").mkdir()
    pid_file = tmp_path / "logs" / "wsgate.pid"
    r = wsgate("-p", f"{tmp_path}/", "-c", str(conf))
    master = None
    try:
        assert r.returncode == 0, r.stderr
        master = wait_until(lambda: pid_file.exists() and int(pid_file.read_text()), 5,
                            "the pid file")
        assert process_title(master) == "wsgate: master process"
        assert os.getsid(master) == master  # a session of its own
        wait_until(lambda: len(children(master)) == 1, 5, "the worker")
        assert http_get(port, "/healthz").status == 200
        stop = wsgate("-p", f"{tmp_path}/", "-c", str(conf), "-s", "stop")
        assert stop.returncode == 0, stop.stderr
        wait_until(lambda: not process_alive(master), 5, "the daemon to exit")
        assert not pid_file.exists()
    finally:
        if master is not None and process_alive(master):
            for pid in children(master):
                os.kill(pid, signal.SIGKILL)
            os.kill(master, signal.SIGKILL)
    log = (tmp_path / "logs" / "error.log").read_text()
    assert not re.search(r"\[(alert|crit|emerg)\]", log), log
