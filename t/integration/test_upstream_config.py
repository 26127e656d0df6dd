"""
Upstream configuration errors found by `wsgate -t`: each names the file
and line and says what is wrong. A proxy_pass naming no upstream points at
the proxy_pass line, proxy_protocol with a pooled protocol (mux, json) is
refused, and so are a server without a port and a weight outside 1 to
1000. A proxy_pass may name an upstream defined further down the file.
"""
import pytest

TEMPLATE = """\
worker_processes 1;
events {{ worker_connections 64; }}
{upstream}
server {{
    listen 127.0.0.1:8080;
    location /ws {{ proxy_pass {target}; }}
}}
"""


def config_test(wsgate, tmp_path, text):
    path = tmp_path / "upstream.conf"
    path.write_text(text)
    return path, wsgate("-p", f"{tmp_path}/", "-c", str(path), "-t")


def failed_at(r, path, line, message):
    """Checks that the test failed with one [emerg] line naming
    <path>:<line> (a line number or a tuple of acceptable ones) and
    <message>."""
    assert r.returncode == 1, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 2, r.stderr
    lines_ok = line if isinstance(line, tuple) else (line,)
    assert any(lines[0].startswith(f"wsgate: [emerg] {path}:{n}: ") for n in lines_ok), r.stderr
    assert message in lines[0], r.stderr
    assert lines[1] == f"wsgate: configuration file {path} test failed"


def test_proxy_pass_to_unknown_upstream_names_its_line(wsgate, tmp_path):
    text = TEMPLATE.format(upstream="upstream known {\n    server 127.0.0.1:9001;\n}",
                           target="unknown")
    path, r = config_test(wsgate, tmp_path, text)
    failed_at(r, path, 8, '"proxy_pass" names unknown upstream "unknown"')


def test_proxy_pass_may_name_an_upstream_defined_later(wsgate, tmp_path):
    text = ("worker_processes 1;\nevents { worker_connections 64; }\n"
            "server {\n    listen 127.0.0.1:8080;\n    location /ws { proxy_pass later; }\n}\n"
            "upstream later {\n    server 127.0.0.1:9001;\n    protocol mux;\n}\n")
    path, r = config_test(wsgate, tmp_path, text)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("protocol", ["mux", "json"])
@pytest.mark.parametrize("version", ["on", "v2"])
def test_proxy_protocol_with_pooled_protocol_is_an_error(wsgate, tmp_path, protocol, version):
    upstream = (f"upstream u {{\n    server 127.0.0.1:9001;\n    protocol {protocol};\n"
                f"    proxy_protocol {version};\n}}")
    path, r = config_test(wsgate, tmp_path, TEMPLATE.format(upstream=upstream, target="u"))
    # the upstream block (line 3) or its proxy_protocol (line 6)
    failed_at(r, path, (3, 6), '"proxy_protocol" applies to raw, line and length upstreams')
    assert protocol in r.stderr


@pytest.mark.parametrize("protocol", ["raw", "line", "length"])
def test_proxy_protocol_with_per_client_protocol_is_accepted(wsgate, tmp_path, protocol):
    upstream = (f"upstream u {{\n    server 127.0.0.1:9001;\n    protocol {protocol};\n"
                f"    proxy_protocol v2;\n}}")
    path, r = config_test(wsgate, tmp_path, TEMPLATE.format(upstream=upstream, target="u"))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("address", ["127.0.0.1", "localhost", "*:9001"])
def test_server_without_host_and_port_is_an_error(wsgate, tmp_path, address):
    upstream = f"upstream u {{\n    server {address};\n}}"
    path, r = config_test(wsgate, tmp_path, TEMPLATE.format(upstream=upstream, target="u"))
    failed_at(r, path, 4, f'"server" directive address "{address}" needs a host and a port')


@pytest.mark.parametrize("weight", ["0", "1001", "-1", "abc"])
def test_server_with_bad_weight_is_an_error(wsgate, tmp_path, weight):
    upstream = f"upstream u {{\n    server 127.0.0.1:9001 max_fails=2 weight={weight};\n}}"
    path, r = config_test(wsgate, tmp_path, TEMPLATE.format(upstream=upstream, target="u"))
    failed_at(r, path, 4, f'"server" directive has an invalid weight "{weight}", '
                          f'expecting 1 to 1000')


@pytest.mark.parametrize("weight", ["1", "1000"])
def test_server_weight_bounds_are_accepted(wsgate, tmp_path, weight):
    upstream = f"upstream u {{\n    server 127.0.0.1:9001 weight={weight};\n}}"
    path, r = config_test(wsgate, tmp_path, TEMPLATE.format(upstream=upstream, target="u"))
    assert r.returncode == 0, r.stderr


def test_upstream_without_server_is_an_error(wsgate, tmp_path):
    upstream = "upstream u {\n    protocol raw;\n}"
    path, r = config_test(wsgate, tmp_path, TEMPLATE.format(upstream=upstream, target="u"))
    failed_at(r, path, (3, 5), 'upstream "u" has no "server"')
