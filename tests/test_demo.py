"""`fastlb demo`: two built-in backends behind fastlb, started as a user
starts it (a subprocess), answering from both backends in turn; the admin
API as printed (stats, metrics, taking a server out with the printed
token); Ctrl-C; --requests; a port in use.  And the pieces in-process: the
built-in backends, the config and its TOML, the port checks."""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from fastlb_cli import SITE, run_fastlb

from fastlb.admin import TOKEN_ENV
from fastlb.config import load_config, parse_config, tomllib
from fastlb.demo import (
    DemoBackend,
    auth_header,
    builtin_backends,
    demo_config,
    port_problem,
    resolve_ports,
    to_toml,
)

# Run children beside the installed package, as tests/test_cli.py does.
GREETING = re.compile(r"hello from backend (\w+) \(127\.0\.0\.1:\d+\)\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _request(
    port: int, path: str = "/", method: str = "GET", body: str | None = None, token: str = ""
) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def _names(port: int, count: int) -> list[str]:
    """Which backend answered each of count requests through the proxy."""
    out = []
    for _ in range(count):
        status, body = _request(port)
        match = GREETING.fullmatch(body)
        assert status == 200 and match, (status, body)
        out.append(match.group(1))
    return out


def _env() -> dict[str, str]:
    """The environment without FASTLB_ADMIN_TOKEN: the demo prints its own."""
    return {k: v for k, v in os.environ.items() if k != TOKEN_ENV}


# ---- the demo as a user runs it --------------------------------------------------


class Demo:
    """`fastlb demo` in a subprocess, its stdout read line by line."""

    def __init__(self, stderr: IO[str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fastlb", "demo", *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=SITE,
            env=_env(),
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def until(self, text: str, timeout: float = 10.0) -> str:
        """The output up to and including the first line holding text."""
        out = ""
        deadline = time.monotonic() + timeout
        while True:
            line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            assert line is not None, f"the demo ended before printing {text!r}:\n{out}"
            out += line
            if text in line:
                return out


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Demo, int, int]]:
    """A running `fastlb demo` on free ports: (it, its port, its admin port)."""
    port, admin_port = _free_port(), _free_port()
    with open(tmp_path / "stderr", "w+") as stderr:
        running = Demo(stderr, "--port", str(port), "--admin-port", str(admin_port))
        try:
            yield running, port, admin_port
        finally:
            if running.proc.poll() is None:
                running.proc.kill()
                running.proc.wait()


def test_demo_balances_and_takes_a_server_out(demo: tuple[Demo, int, int]) -> None:
    running, port, admin_port = demo
    banner = running.until("Ctrl-C stops it.")
    head = re.search(r"proxy on http://127\.0\.0\.1:(\d+) -> backends a \((\S+)\) and b", banner)
    assert head and int(head.group(1)) == port, banner
    assert f"admin API on http://127.0.0.1:{admin_port}" in banner
    assert f"curl -s http://127.0.0.1:{admin_port}/metrics" in banner

    names = _names(port, 4)
    assert Counter(names) == {"a": 2, "b": 2} and names[0] != names[1]

    status, stats = _request(admin_port, "/stats")
    assert status == 200 and "demo" in json.loads(stats)["listeners"]
    status, metrics = _request(admin_port, "/metrics")
    assert status == 200 and 'fastlb_listener_requests_total{listener="demo"} 4.0' in metrics

    take_out = re.search(
        r"take b out: .*Bearer (\S+)' -d '(\{.*\})' http://127\.0\.0\.1:(\d+)(/\S+)", banner
    )
    assert take_out, banner
    token, body, api_port, path = take_out.groups()
    assert int(api_port) == admin_port
    status, answer = _request(admin_port, path, "PATCH", body, token)
    assert status == 200 and json.loads(answer)["state"] == "maint", answer
    assert _names(port, 4) == ["a"] * 4

    running.proc.send_signal(signal.SIGINT)
    assert running.proc.wait(timeout=10) == 0
    assert "fastlb demo: stopped" in running.until("stopped")


def test_demo_requests_prints_a_tally_and_exits_0() -> None:
    port, admin_port = _free_port(), _free_port()
    proc = run_fastlb(
        "demo",
        "--port",
        str(port),
        "--admin-port",
        str(admin_port),
        "--requests",
        "10",
        timeout=30,
        env=_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"fastlb demo: proxy on http://127.0.0.1:{port} -> backends a (")
    answered = [re.search(r"request \d+: backend (\w)", line) for line in lines]
    assert [m.group(1) for m in answered if m] in (["a", "b"] * 5, ["b", "a"] * 5)
    assert lines[-1] == "tally: a 5, b 5"


def test_demo_port_in_use_exits_1_saying_what_to_try() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_fastlb(
            "demo",
            "--port",
            str(port),
            "--admin-port",
            "0",
            "--requests",
            "1",
            timeout=30,
            env=_env(),
        )
    assert proc.returncode == 1
    assert proc.stderr == f"fastlb demo: port {port} is in use; try fastlb demo --port {port + 1}\n"
    assert proc.stdout == ""


def test_demo_bad_options_exit_2() -> None:
    proc = run_fastlb("demo", "--port", "7000", "--admin-port", "7000", timeout=30, env=_env())
    assert proc.returncode == 2
    assert proc.stderr == "fastlb demo: --port and --admin-port must differ\n"


# ---- the pieces ----------------------------------------------------------------------


def test_builtin_backends_answer_and_keep_alive() -> None:
    with builtin_backends() as backends:
        assert [b.name for b in backends] == ["a", "b"]
        a = backends[0]
        conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=5)
        try:
            for path, status, body in (
                ("/", 200, f"hello from backend a (127.0.0.1:{a.port})\n"),
                ("/healthz", 200, "ok\n"),
                ("/elsewhere", 404, "not found\n"),
            ):
                conn.request("GET", path)  # on the same connection each time
                response = conn.getresponse()
                assert (response.status, response.read().decode()) == (status, body)
        finally:
            conn.close()
        assert _request(a.port, "/", "POST", "x")[0] == 404


def test_demo_config_round_trips_through_toml(tmp_path: Path) -> None:
    backends = [DemoBackend("a", 4001), DemoBackend("b", 4002)]
    data = demo_config(8080, 9901, backends, "s3cret-token")
    text = to_toml(data)
    assert tomllib.loads(text) == data
    (tmp_path / "demo.toml").write_text(text)
    config = load_config(tmp_path / "demo.toml")
    assert config == parse_config(data)
    backend = config.backends["demo"]
    assert backend.balance == "round_robin"
    assert [s.address for s in backend.servers] == ["127.0.0.1:4001", "127.0.0.1:4002"]
    check = backend.health_check
    assert check is not None
    assert (check.type, check.path, check.interval, check.fall, check.rise) == (
        "http",
        "/healthz",
        1.0,
        2,
        2,
    )
    assert config.listeners[0].bind == "127.0.0.1:8080" and config.listeners[0].mode == "http"
    assert config.admin.bind == "127.0.0.1:9901" and config.admin.state_file is None
    assert config.admin.token is not None
    assert config.admin.token.get_secret_value() == "s3cret-token"


def test_to_toml_quotes_keys_and_strings() -> None:
    data = {"a b": {"s": 'say "hi"\n', "t": True, "n": [1, 2.5], "e": {}}}
    assert tomllib.loads(to_toml(data)) == data


def test_port_checks() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert port_problem(port, "--admin-port") == (
            f"port {port} is in use; try fastlb demo --admin-port {port + 1}"
        )
    first, second, fixed = resolve_ports(0, 0, 8080)
    assert first != second and 0 not in (first, second) and fixed == 8080
    assert port_problem(first, "--port") is None


def test_auth_header_names_the_environment_token_when_set() -> None:
    assert auth_header("tok", {}) == "'Authorization: Bearer tok'"
    assert auth_header("tok", {TOKEN_ENV: "x"}) == f'"Authorization: Bearer ${TOKEN_ENV}"'
