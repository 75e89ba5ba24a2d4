"""The scenarios and how each is measured on a running contender.

Every wrk scenario runs `wrk -t1` for --duration seconds after a --warmup
run on the same process; the contender's CPU time (user + system of its
process tree, from psutil) over that run divided by the requests done is its
CPU per request.  The latency scenario paces wrk with paced.lua at a fixed
rate; the idle scenario measures resident memory per idle connection; the
slow-clients scenario measures req/s under slow-client attacks
(slowclients.py)."""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bench.tool import slowclients, wrk
from bench.tool.configs import Mode
from bench.tool.procs import LOOPBACK, SMALL_BODY, BenchError, tree_cpu, tree_rss

Kind = Literal["wrk", "latency", "idle", "slow"]
LINGER_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a RST


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    mode: Mode
    kind: Kind
    path: str = "/small"
    close: bool = False  # `Connection: close` on every request: a new connection each
    many: bool = False  # --many-conns connections instead of --connections
    headline: str = "requests_per_s"  # the figure of the summary table and charts
    capped: bool = False  # each proxy held to Settings.cap_cpus per worker (cpucap)


CAPPED_CPUS = 0.5  # l7-capped's default budget: under a CPU, so that the proxy is the bottleneck

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("l7-small", "L7, 13 B body, keep-alive", "http", "wrk"),
    Scenario("l7-close", "L7, 13 B body, new connection per request", "http", "wrk", close=True),
    Scenario(
        "l7-capped",
        "L7, 13 B body, keep-alive, proxy CPU capped",
        "http",
        "wrk",
        capped=True,
    ),
    Scenario("l7-1m", "L7, 1 MiB body", "http", "wrk", path="/1m", headline="bytes_per_s"),
    Scenario("l4-small", "L4, 13 B body, keep-alive", "tcp", "wrk"),
    Scenario("l4-1m", "L4, 1 MiB body", "tcp", "wrk", path="/1m", headline="bytes_per_s"),
    Scenario("many", "L7, many concurrent connections", "http", "wrk", many=True),
    Scenario("latency", "L7 latency at a fixed rate", "http", "latency", headline="p99_us"),
    Scenario(
        "idle",
        "L7 memory per idle keep-alive connection",
        "http",
        "idle",
        headline="bytes_per_conn",
    ),
    Scenario(
        slowclients.NAME,
        "L7 req/s under slow-client attacks, over req/s with none",
        "http",
        "slow",
        headline="worst_ratio",
    ),
    # The same with each proxy held to a CPU budget (as l7-capped): then the
    # proxy, not wrk, the backend and the attacker sharing the machine, sets
    # the rate, and what the attack costs the proxy shows in the ratio.
    Scenario(
        slowclients.NAME + "-capped",
        "L7 req/s under slow-client attacks, over req/s with none, proxy CPU capped",
        "http",
        "slow",
        headline="worst_ratio",
        capped=True,
    ),
)
BY_NAME = {s.name: s for s in SCENARIOS}
NAMES = tuple(BY_NAME)
RATE_SOURCE = "l7-small"  # the latency rate is half the slowest proxy's req/s here
NO_PROXY = "there is no proxy process to measure"
NO_PROXY_TO_ATTACK = "no proxy to attack: the attack would hit the backend all runs share"
RATE_TOLERANCE = 0.05  # a latency run this far below the offered rate is "short"


def direct_cannot(scenario: Scenario) -> str | None:
    """Why "direct" (no proxy) has no figure for a scenario, or None."""
    if scenario.kind == "slow":
        return NO_PROXY_TO_ATTACK
    return NO_PROXY if scenario.kind == "idle" or scenario.capped else None


@dataclass
class Settings:
    """The measurement options every run shares."""

    wrk: str
    duration: float
    warmup: float
    connections: int
    many_conns: int
    idle_conns: int
    settle: float  # seconds the idle connections sit before RSS is read
    rate: int | None = None  # offered requests/s of the latency scenario
    cap_cpus: float = CAPPED_CPUS  # CPUs per worker of each proxy in capped scenarios
    attack_conns: int | None = None  # at most this many connections per slow-client attack


def wrk_run(s: Settings, scenario: Scenario, port: int, seconds: float, paced: bool) -> wrk.WrkRun:
    return wrk.WrkRun(
        wrk=s.wrk,
        port=port,
        path=scenario.path,
        seconds=seconds,
        connections=s.many_conns if scenario.many else s.connections,
        headers=("Connection: close",) if scenario.close else (),
        script=wrk.PACED_SCRIPT if paced else None,
    )


def _per_request(result: dict[str, Any], pids: Sequence[int], cpu0: float) -> None:
    if pids and result["requests"]:
        result["cpu_us_per_req"] = (tree_cpu(pids) - cpu0) / result["requests"] * 1e6


def measure_wrk(s: Settings, scenario: Scenario, port: int, pids: Sequence[int]) -> dict[str, Any]:
    """Warm-up, then the measured run with the contender's CPU per request."""
    if s.warmup > 0:
        wrk.run(wrk_run(s, scenario, port, s.warmup, paced=False))
    cpu0 = tree_cpu(pids) if pids else 0.0
    result = wrk.run(wrk_run(s, scenario, port, s.duration, paced=False))
    _per_request(result, pids, cpu0)
    return result


def measure_latency(
    s: Settings, scenario: Scenario, port: int, pids: Sequence[int]
) -> dict[str, Any]:
    """A paced warm-up, then the paced run: percentiles at s.rate, with the
    contender's CPU per request at that rate."""
    if not s.rate:
        raise BenchError("no offered rate for the latency scenario")
    if s.warmup > 0:
        wrk.run_paced(wrk_run(s, scenario, port, s.warmup, paced=True), s.rate)
    cpu0 = tree_cpu(pids) if pids else 0.0
    result = wrk.run_paced(wrk_run(s, scenario, port, s.duration, paced=True), s.rate)
    _per_request(result, pids, cpu0)
    result["short"] = result["achieved_per_s"] < (1 - RATE_TOLERANCE) * s.rate
    return result


# ---------------------------------------------------------------- idle connections


def keepalive_get(sock: socket.socket, path: str = "/small") -> bytes:
    """One keep-alive GET on an open connection; the body (checked whole)."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise BenchError("the connection closed before a response")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    if not head.startswith(b"HTTP/1.1 200") or not length:
        raise BenchError(f"unexpected response {head[:80]!r}")
    while len(body) < int(length.group(1)):
        chunk = sock.recv(65536)
        if not chunk:
            raise BenchError("the connection closed inside a response")
        body += chunk
    return body


def idle_budget(count: int) -> float:
    """Seconds allowed to open count idle connections: 5 ms each, 10 s at
    least (the C proxies need well under 1 ms)."""
    return max(10.0, count * 0.005)


def open_idle(port: int, count: int) -> list[socket.socket]:
    """count keep-alive connections to port that each made one request and
    now sit idle; closing them sends a RST (SO_LINGER 0), so that no
    TIME_WAIT piles up between runs.  BenchError past idle_budget(count)."""
    socks: list[socket.socket] = []
    budget = idle_budget(count)
    deadline = time.monotonic() + budget
    for _ in range(count):
        problem = None
        if time.monotonic() > deadline:
            problem = f"opened only {len(socks)} of {count} idle connections in {budget:.0f} s"
        else:
            index = len(socks) + 1
            try:
                sock = socket.create_connection((LOOPBACK, port), timeout=10)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
                socks.append(sock)
                if keepalive_get(sock) != SMALL_BODY:
                    problem = f"idle connection {index}: wrong body"
            except (OSError, BenchError) as exc:
                problem = f"idle connection {index} to port {port}: {exc}"
        if problem:
            close_all(socks)
            raise BenchError(problem)
    return socks


def close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.close()
    socks.clear()


def measure_idle(s: Settings, scenario: Scenario, port: int, pids: Sequence[int]) -> dict[str, Any]:
    """RSS growth of the contender's process tree while s.idle_conns
    keep-alive connections, each after one request, sit idle through it."""
    if not pids:
        raise BenchError(NO_PROXY)
    time.sleep(0.2)
    rss_before = tree_rss(pids)
    started = time.monotonic()
    socks = open_idle(port, s.idle_conns)
    try:
        took = time.monotonic() - started
        time.sleep(s.settle)
        rss_after = tree_rss(pids)
    finally:
        close_all(socks)
    time.sleep(0.2)
    return {
        "connections": s.idle_conns,
        "seconds_to_open": round(took, 3),
        "rss_before": rss_before,
        "rss_after": rss_after,
        "bytes_per_conn": (rss_after - rss_before) / s.idle_conns,
    }


def measure_slow(s: Settings, scenario: Scenario, port: int, pids: Sequence[int]) -> dict[str, Any]:
    return slowclients.measure(s, port, pids)


MEASURES = {
    "wrk": measure_wrk,
    "latency": measure_latency,
    "idle": measure_idle,
    "slow": measure_slow,
}


def measure(s: Settings, scenario: Scenario, port: int, pids: Sequence[int]) -> dict[str, Any]:
    """Run scenario against port; pids are the contender's processes (none: direct)."""
    return MEASURES[scenario.kind](s, scenario, port, pids)
