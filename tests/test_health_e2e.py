"""Active health checks through a running `fastlb run`: a stopped server is
taken out within interval x fall and gets no more requests; when it comes
back it is let in after rise checks and its weight ramps up (slow start),
as /metrics shows."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from l7_backends import HOST, Client, Origin
from prometheus_client.parser import text_string_to_metric_families
from test_logging import Fastlb, start  # noqa: F401 - the fixture

INTERVAL, FALL, RISE = 0.2, 2, 2


def _config(path: Path, a: str, b: str) -> None:
    path.write_text(
        f"""
[global]
workers = 1
drain_timeout = "1s"

[[listeners]]
name = "web"
bind = "127.0.0.1:0"
mode = "http"
backend = "web"

[backends.web]
balance = "round_robin"
slow_start = "1s"
servers = [ {{ address = "{a}", weight = 10 }}, {{ address = "{b}", weight = 10 }} ]

  [backends.web.health_check]
  type = "http"
  path = "/healthz"
  interval = "{INTERVAL}s"
  timeout = "0.5s"
  fall = {FALL}
  rise = {RISE}

[admin]
bind = "127.0.0.1:0"
"""
    )


def _weight(admin: str, server: str) -> float:
    with urllib.request.urlopen(f"{admin}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == "fastlb_server_weight":
            for sample in family.samples:
                if sample.labels.get("server") == server:
                    return sample.value
    raise AssertionError(f"no weight for {server}")


def _names(addr: tuple[str, int], n: int) -> list[str]:
    with Client(addr) as c:
        return [c.request("GET", f"/n{i}").header("X-Backend-Name") or "" for i in range(n)]


def test_health_check_takes_a_server_out_and_slow_start_brings_it_back(
    tmp_path: Path,
    start: Callable[..., Fastlb],  # noqa: F811 - the fixture
) -> None:
    a, b = Origin("a"), Origin("b")
    port_b = b.port
    path = tmp_path / "fastlb.toml"
    _config(path, a.address, b.address)
    child = start("--config", str(path), "--log-format", "json")
    try:
        child.wait_for(lambda line: "fastlb running" in line)
        admin_url = next(
            json.loads(line)["admin_url"] for line in child.lines if "admin_url" in json.loads(line)
        )
        web_host, _, web_port = next(
            json.loads(line)["address"]
            for line in child.lines
            if json.loads(line).get("listener") == "web"
        ).rpartition(":")
        addr = (web_host, int(web_port))
        assert set(_names(addr, 6)) == {"a", "b"}

        t0 = time.monotonic()
        b.stop()
        child.wait_for(lambda line: "is DOWN" in line and str(port_b) in line, timeout=10)
        took = time.monotonic() - t0
        # FALL failures, INTERVAL apart, plus the first check's phase.
        assert took <= INTERVAL * (FALL + 1) + 1.0, took
        assert _names(addr, 10) == ["a"] * 10

        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port_b))
        b = Origin("b", sock=sock)
        child.wait_for(lambda line: "is UP" in line and str(port_b) in line, timeout=10)
        weights = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            weights.append(_weight(admin_url, b.address))
            if weights[-1] == 10:
                break
            time.sleep(0.05)
        assert weights[0] < 10 and weights[-1] == 10, weights
        assert weights == sorted(weights), weights  # ramps up, never down
        assert "b" in _names(addr, 6)
        assert child.stop() == 0
    finally:
        a.stop()
        b.stop()
