"""The HTTP mode against real peers from Debian's packages, which .ci/run
installs: NGINX as the backend (keep-alive, sendfile, its own framing) and
curl as the client (Expect: 100-continue on large uploads, its own parser).

The tests are named test_real_peer_* so that a wheel-build test run, whose
image has neither program, can deselect them (pyproject.toml)."""

from __future__ import annotations

import hashlib
import http.client
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from l7_backends import HOST, Origin

from bench.tool import backends, procs
from fastlb.config import parse_config
from fastlb.engine import Engine

NGINX = procs.which("nginx", "/usr/sbin/nginx")
CURL = shutil.which("curl")


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {HOST}:{port}")


@pytest.fixture(scope="module")
def nginx_backends() -> Iterator[list[int]]:
    """Two ports served by one NGINX (/small and /1m, keep-alive).  Its files
    live in a world-readable directory of their own: NGINX's workers drop
    root, and pytest's temporary directories are private."""
    assert NGINX, "nginx is required (apt-get install nginx; .ci/run installs it)"
    run_dir = Path(tempfile.mkdtemp(prefix="fastlb-nginx-"))
    run_dir.chmod(0o755)
    ports = procs.free_ports(2)
    conf = backends.write_backend_conf(run_dir, ports, nofile=4096)
    proc = subprocess.Popen(
        [NGINX, "-c", str(conf), "-e", str(run_dir / "stderr.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for port in ports:
            _wait_port(port)
        yield ports
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(run_dir, ignore_errors=True)


def _engine(servers: list[str], **listener: Any) -> Engine:
    data = {
        "global": {"workers": 1},
        "listeners": [
            {"name": "web", "bind": f"{HOST}:0", "mode": "http", "backend": "web", **listener}
        ],
        "backends": {"web": {"servers": [{"address": a} for a in servers], "keepalive": 8}},
    }
    engine = Engine(parse_config(data))
    engine.start()
    return engine


def _large_body() -> bytes:
    return bytes(range(256)) * (procs.LARGE_BODY_SIZE // 256)


def test_real_peer_nginx_backend_keepalive_and_large_bodies(nginx_backends: list[int]) -> None:
    engine = _engine([f"{HOST}:{p}" for p in nginx_backends])
    try:
        host, port = engine.addresses()["web"]
        conn = http.client.HTTPConnection(host, port, timeout=10)
        for _ in range(100):
            conn.request("GET", "/small")
            r = conn.getresponse()
            assert (r.status, r.read()) == (200, procs.SMALL_BODY)
        for _ in range(5):
            conn.request("GET", "/1m")
            r = conn.getresponse()
            body = r.read()
            assert r.status == 200
            assert hashlib.sha256(body).digest() == hashlib.sha256(_large_body()).digest()
        conn.request("HEAD", "/1m")
        r = conn.getresponse()
        assert r.status == 200 and r.getheader("Content-Length") == str(len(_large_body()))
        assert r.read() == b""
        conn.request("GET", "/missing")
        r = conn.getresponse()
        assert r.status == 404
        r.read()
        conn.close()
        stats = engine.stats()
        assert stats["listeners"]["web"]["requests"] == 107
        assert stats["listeners"]["web"]["resp_2xx"] == 106
        assert stats["listeners"]["web"]["resp_4xx"] == 1
        # One client connection: the upstream connections were reused.
        assert stats["total"]["upconns_idle"] >= 1
    finally:
        engine.stop()


def test_real_peer_curl_client(nginx_backends: list[int], tmp_path: Path) -> None:
    assert CURL, "curl is required (apt-get install curl; .ci/run installs it)"
    origin = Origin("a")
    engine = _engine([f"{HOST}:{origin.port}"])
    try:
        host, port = engine.addresses()["web"]
        url = f"http://{host}:{port}"
        upload = tmp_path / "upload.bin"
        data = bytes(range(251)) * 8000  # ~2 MB: curl sends Expect: 100-continue
        upload.write_bytes(data)
        out = subprocess.run(
            [CURL, "-sS", "-v", "--data-binary", f"@{upload}", f"{url}/echo-json"],
            capture_output=True,
            check=True,
            timeout=30,
            text=True,
        )
        assert "Expect: 100-continue" in out.stderr
        assert "HTTP/1.1 100 Continue" in out.stderr
        assert origin.requests[-1].body == data
        # Keep-alive across requests on one curl run, chunked upload.
        out = subprocess.run(
            [
                CURL,
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{num_connects}\\n",
                "-H",
                "Transfer-Encoding: chunked",
                "--data-binary",
                f"@{upload}",
                f"{url}/a",
                "-o",
                "/dev/null",
                f"{url}/b",
            ],
            capture_output=True,
            check=True,
            timeout=30,
            text=True,
        )
        codes = out.stdout.split()
        assert codes[0] == "200" and codes[2] == "200", out.stdout
        assert codes[3] == "0", "the second request reused the connection"
    finally:
        engine.stop()
        origin.stop()
