"""Running wrk and reading its output: plain runs (requests/s, bytes/s) and
runs paced to a fixed rate by paced.lua (latency percentiles)."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.tool.procs import LOOPBACK, BenchError

PACED_SCRIPT = Path(__file__).with_name("paced.lua")
PERCENTILES = (50.0, 90.0, 99.0, 99.9)
LATE_MS = 1.0  # a paced request sent this much after its slot counts as late
ERROR_SHARE = 0.01  # a run with more failed requests than this share fails


@dataclass(frozen=True)
class WrkRun:
    """One wrk invocation: wrk -t1 -cN -dS [-H ...] [-s SCRIPT] URL."""

    wrk: str
    port: int
    path: str
    seconds: float
    connections: int
    headers: tuple[str, ...] = ()
    script: Path | None = None

    @property
    def duration(self) -> int:
        """wrk takes whole seconds only."""
        return max(1, round(self.seconds))

    def command(self) -> list[str]:
        cmd = [self.wrk, "-t1", f"-c{self.connections}", f"-d{self.duration}s"]
        for header in self.headers:
            cmd += ["-H", header]
        if self.script is not None:
            cmd += ["--latency", "-s", str(self.script)]
        return [*cmd, f"http://{LOOPBACK}:{self.port}{self.path}"]


def _binary_amount(number: str, prefix: str) -> float:
    """wrk's Transfer/sec amounts use powers of 1024: '1.50', 'G' -> bytes."""
    return float(number) * 1024 ** ("KMGTP".find(prefix) + 1) if prefix else float(number)


def parse_wrk(text: str) -> dict[str, Any]:
    """The figures of one wrk run: requests/s, bytes/s, requests and errors."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)([KMGTP]?)B", text)
    if not rps or not transfer:
        raise BenchError(f"cannot read wrk's output:\n{text}")
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    requests = re.search(r"(\d+) requests in", text)
    return {
        "requests_per_s": float(rps.group(1)),
        "bytes_per_s": _binary_amount(*transfer.groups()),
        "requests": int(requests.group(1)) if requests else 0,
        "socket_errors": [int(n) for n in errors.groups()] if errors else [0, 0, 0, 0],
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def errors(result: dict[str, Any]) -> int:
    """Socket errors (connect, read, write, timeout) and non-2xx/3xx responses."""
    return int(sum(result["socket_errors"]) + result["non_2xx"])


def ok_per_s(result: dict[str, Any]) -> float:
    """Requests/s answered 2xx or 3xx: wrk's Requests/sec counts every response."""
    if not result["requests"]:
        return 0.0
    good = max(0, result["requests"] - result["non_2xx"])
    return float(result["requests_per_s"]) * good / result["requests"]


def parse_paced(text: str) -> dict[str, Any]:
    """wrk's usual figures plus paced.lua's: percentiles (µs), late sends."""
    result = parse_wrk(text)
    summary = re.search(
        r"^PACED requests=(\d+) duration_us=(\d+) late=(\d+) sent=(\d+) max_us=(\d+)$", text, re.M
    )
    if not summary:
        raise BenchError(f"cannot read paced.lua's output:\n{text}")
    requests, duration_us, late, sent, max_us = (int(n) for n in summary.groups())
    result.update(
        achieved_per_s=requests / duration_us * 1e6 if duration_us else 0.0,
        late=late,
        sent=sent,
        late_fraction=late / sent if sent else None,
        max_us=max_us,
    )
    for pct in PERCENTILES:
        match = re.search(rf"^PACED p{pct:g}=(\d+)$", text, re.M)
        result[f"p{pct:g}_us"] = int(match.group(1)) if match else None
    return result


def too_many_errors(result: dict[str, Any]) -> bool:
    """No request done, or more than ERROR_SHARE of them failed (10 are allowed)."""
    bad = errors(result)
    return result["requests"] == 0 or bad > max(10, int(result["requests"] * ERROR_SHARE))


def run(spec: WrkRun, env: dict[str, str] | None = None, check: bool = True) -> dict[str, Any]:
    """Run wrk and return its parsed figures; BenchError when it fails or,
    with check, sees too many errors (without: the errors are figures)."""
    cmd = spec.command()
    limit = spec.duration + 30
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=limit, check=False, env=env
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{' '.join(cmd)} did not finish in {limit} s") from exc
    if done.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    result = parse_paced(done.stdout) if spec.script else parse_wrk(done.stdout)
    if check and too_many_errors(result):
        raise BenchError(f"wrk saw errors through port {spec.port}:\n{done.stdout}")
    result["command"] = " ".join(cmd)
    return result


def run_paced(spec: WrkRun, rate: int) -> dict[str, Any]:
    """A wrk run paced by paced.lua to rate requests/s in all."""
    env = dict(os.environ, BENCH_RATE=str(rate), BENCH_LATE_MS=f"{LATE_MS:g}")
    result = run(spec, env)
    result["offered_per_s"] = rate
    return result
