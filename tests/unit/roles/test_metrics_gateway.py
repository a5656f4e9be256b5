# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""The metrics gateway of meetops.jitsi (roles/_common/files/meetops-metrics-gateway), imported and run on
loopback: the upstream listens on 127.0.0.1, the gateway on 127.0.0.2 (same port), clients connect from
127.0.0.3 (allowed) or 127.0.0.1 (not)."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from role_program import load_program

SCRIPT = Path(__file__).resolve().parents[3] / "roles" / "_common" / "files" / "meetops-metrics-gateway"


GATEWAY = load_program("_common", "meetops-metrics-gateway")


class Upstream(BaseHTTPRequestHandler):
    """A stand-in REST API: /metrics answers in the format the Accept header asks for; every request is
    recorded."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Upstream.seen.append(f"GET {self.path}")
        if self.path != "/metrics":
            self.send_response(404)
            self.end_headers()
            return
        openmetrics = "application/openmetrics-text" in self.headers.get("Accept", "")
        body = b"upstream_up 1\n# EOF\n" if openmetrics else b"upstream_up 1\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/openmetrics-text" if openmetrics else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        Upstream.seen.append(f"POST {self.path}")
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        return


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def ports():
    """An upstream on 127.0.0.1:P, one gateway with routes to it (up) and to a closed port (down)."""
    up, down = free_port(), free_port()
    upstream = ThreadingHTTPServer(("127.0.0.1", up), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    config = GATEWAY.parse_config(
        {
            "address": "127.0.0.2",
            "allow": ["127.0.0.3/32"],
            "upstream_host": "127.0.0.1",
            "ports": {"up": up, "down": down},
        }
    )
    servers = GATEWAY.serve(config)
    yield {"up": up, "down": down}
    for server in [upstream, *servers]:
        server.shutdown()
        server.server_close()


def request(port: int, method: str = "GET", path: str = "/metrics", source: str = "127.0.0.3", **headers):
    connection = http.client.HTTPConnection("127.0.0.2", port, timeout=15, source_address=(source, 0))
    try:
        connection.request(method, path, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.getheader("Content-Type"), answer.read().decode()
    finally:
        connection.close()


def test_metrics_are_passed_through_with_the_negotiated_format(ports):
    assert request(ports["up"]) == (200, "text/plain", "upstream_up 1\n")
    status, content_type, body = request(ports["up"], Accept="application/openmetrics-text; version=1.0.0")
    assert (status, content_type, body) == (200, "application/openmetrics-text", "upstream_up 1\n# EOF\n")
    # A query string is dropped, not passed on.
    Upstream.seen.clear()
    assert request(ports["up"], path="/metrics?debug=true")[0] == 200
    assert Upstream.seen == ["GET /metrics"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/colibri/shutdown", 405),
        ("GET", "/colibri/drain", 404),
        ("GET", "/move-endpoints/move-fraction", 404),
        ("PUT", "/metrics", 405),
        ("GET", "/metrics/../colibri/stats", 404),
    ],
)
def test_nothing_but_get_metrics_reaches_the_api(ports, method, path, status):
    Upstream.seen.clear()
    assert request(ports["up"], method, path)[0] == status
    assert Upstream.seen == []


def test_a_client_outside_the_allowed_networks_is_refused(ports):
    Upstream.seen.clear()
    status, _content_type, body = request(ports["up"], source="127.0.0.1")
    assert (status, body) == (403, "this address may not read the metrics\n")
    assert Upstream.seen == []


def test_an_upstream_that_does_not_answer_is_a_bad_gateway(ports):
    status, _content_type, body = request(ports["down"])
    assert status == 502
    assert body.startswith(f"down: the upstream http://127.0.0.1:{ports['down']}/metrics did not answer")


@pytest.mark.parametrize(
    ("client", "allowed"),
    [
        ("127.0.0.3", True),
        ("127.0.0.4", False),
        ("::ffff:127.0.0.3", True),
        ("2001:db8::1", False),
        ("bogus", False),
    ],
)
def test_is_allowed(client, allowed):
    assert GATEWAY.is_allowed(client, (GATEWAY.ipaddress.ip_network("127.0.0.3/32"),)) is allowed


GOOD = {
    "address": "10.0.0.5",
    "allow": ["10.0.0.0/24"],
    "upstream_host": "127.0.0.1",
    "ports": {"jvb1": 8080},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"address": "jvb1.example.com"}, "address:"),
        ({"address": "0.0.0.0"}, "is every address"),
        ({"allow": []}, "allow: a non-empty list"),
        ({"allow": ["10.0.0.0/33"]}, "allow:"),
        ({"upstream_host": "10.0.0.5"}, "is the address the gateway listens on"),
        ({"ports": {}}, "ports: a non-empty object"),
        ({"ports": {"jvb1": 70000}}, "ports.jvb1: 70000"),
        ({"ports": {"jvb1": True}}, "ports.jvb1: True"),
        ({"ports": {"a": 8080, "b": 8080}}, "share one port"),
    ],
)
def test_a_bad_configuration_is_refused_naming_the_key(tmp_path, change, message):
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps({**GOOD, **change}))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(path), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_a_good_configuration_passes_the_check(tmp_path):
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(GOOD))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(path), "--check"], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stderr) == (0, "")
