"""Reloads under load: `fastlb run` receives SIGHUP twenty times while wrk
(from Debian's package, which .ci/run installs) keeps requesting through
it; no request may fail.  Named test_real_peer_* like the other tests that
need a Debian program, so a wheel-build test run can deselect it."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from l7_backends import Origin
from test_logging import Fastlb, start  # noqa: F401 - the fixture

WRK = shutil.which("wrk")


def _config(path: Path, servers: list[str], balance: str) -> None:
    listed = ", ".join(f'{{ address = "{s}" }}' for s in servers)
    path.write_text(
        f"""
[global]
workers = 2
drain_timeout = "2s"

[[listeners]]
name = "web"
bind = "127.0.0.1:0"
mode = "http"
backend = "web"

[backends.web]
balance = "{balance}"
servers = [ {listed} ]

[admin]
bind = "127.0.0.1:0"
"""
    )


def test_real_peer_twenty_sighup_reloads_under_wrk_fail_nothing(
    tmp_path: Path,
    start: Callable[..., Fastlb],  # noqa: F811 - the fixture
) -> None:
    assert WRK, "wrk is required (apt-get install wrk; .ci/run installs it)"
    a, b = Origin("a"), Origin("b")
    path = tmp_path / "fastlb.toml"
    _config(path, [a.address, b.address], "round_robin")
    child = start("--config", str(path), "--log-format", "json")
    try:
        child.wait_for(lambda line: "fastlb running" in line)
        web = next(
            json.loads(line)["address"]
            for line in child.lines
            if json.loads(line).get("listener") == "web"
        )
        load = subprocess.Popen(
            [WRK, "-t1", "-c8", "-d4s", f"http://{web}/"],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.3)
        for i in range(20):
            balance = ("least_conn", "round_robin")[i % 2]
            servers = [a.address, b.address] if i % 3 else [b.address, a.address]
            _config(path, servers, balance)
            child.proc.send_signal(signal.SIGHUP)
            child.wait_for(lambda line: json.loads(line)["message"].startswith("reloaded "))
            time.sleep(0.1)
        out, _ = load.communicate(timeout=30)
        assert child.stop() == 0
    finally:
        a.stop()
        b.stop()
    reloads = [line for line in child.lines if json.loads(line)["message"].startswith("reloaded ")]
    assert len(reloads) == 20
    assert not [line for line in child.lines if json.loads(line)["level"] == "error"]
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    assert done > 200, out
    assert "Socket errors" not in out, out
    assert "Non-2xx" not in out, out
    assert a.request_count + b.request_count >= done
