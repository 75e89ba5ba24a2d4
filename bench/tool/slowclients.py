"""The `slow-clients` scenario: small-request throughput on the fast route
(`wrk` to /small, as in l7-small) first with no attack, then under each
slow-client attack of bench/tool/attack.py, all on the same fresh proxy
process.

For each attack: the attacker opens its connections (at OPEN_RATE per
second) and reports them held; wrk runs for --duration while they stay
open; the proxy's RSS and descriptors are read; the attacker closes them;
the tool waits until the proxy has released their descriptors; then the
RSS is read again and a RECOVERY_S wrk run shows whether the proxy serves
as before.  The figures: req/s answered 2xx/3xx under attack over the same
with no attack (the ratio; the bar is BAR for fastlb), wrk's errors, RSS
before, during and after, the recovery ratio, and the attacker's counts."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.tool import attack, wrk
from bench.tool.procs import BenchError, alive, tree_cpu, tree_fds, tree_rss

if TYPE_CHECKING:
    from bench.tool.scenarios import Settings

ATTACK_SCRIPT = Path(attack.__file__)
NAME = "slow-clients"
BAR = 0.90  # fastlb's req/s under attack over its req/s with none
OPEN_RATE = 2000.0  # attack connections opened per second
TRICKLE_S = 3.0  # slowloris: one byte every 3 s
BUILD_GRACE_S = 5.0  # beyond conns / OPEN_RATE for the attack to be up
HOLD_SLACK_S = 10.0  # the attacker outlives wrk's run by this much, then stops alone
SLOW_AFTER_MIN_S = 15.0  # the backend answers a long poll after this (or later)
RECOVERY_S = 1  # the wrk run after each attack
RELEASE_TIMEOUT_S = 5.0  # for the proxy to close the attack's connections
RELEASED_SHARE = 0.95  # of the connections held, closed on the proxy's side: released
MIN_WARMUP_S = 1.0  # the baseline is the reference of every ratio: warmed up even in --quick
POLL_S = 0.05


@dataclass(frozen=True)
class Attack:
    name: str
    conns: int  # the numbers; --attack-conns caps them
    what: str


ATTACKS: tuple[Attack, ...] = (
    Attack(
        "slowloris",
        5000,
        "connections that each send one byte of a request head every 3 s and never finish it",
    ),
    Attack(
        "stalled-bodies",
        2000,
        "POSTs to the slow route with a complete head (Content-Length: 1000) and 1 body "
        "byte, then nothing",
    ),
    Attack(
        "long-polls",
        2000,
        "GETs of the slow route, which the backend answers only after the attack",
    ),
)
ATTACK_NAMES = tuple(a.name for a in ATTACKS)
PER_ATTACK = (
    "ratio",
    "ok_per_s",
    "errors",
    "requests",
    "held_at_stop",
    "rss_before",
    "rss_during",
    "rss_after",
    "recovery",
    "after_ok_per_s",
    "release_s",
    "unreleased",
)
FIGURES = (
    "worst_ratio",
    "ok_per_s",
    *(f"{a}.{f}" for a in ATTACK_NAMES for f in PER_ATTACK),
)


def connections(a: Attack, cap: int | None) -> int:
    """The attack's connections, at most cap (--attack-conns) when given."""
    return min(a.conns, cap) if cap else a.conns


def plan_for(a: Attack, port: int, conns: int, duration: float) -> attack.Plan:
    """The attacker's plan: up within build_timeout, held through a wrk run
    of duration seconds, stopped by then plus HOLD_SLACK_S at the latest;
    long polls and stalled bodies are answered by the backend only after
    that (SLOW_AFTER_MIN_S at least)."""
    build = conns / OPEN_RATE + BUILD_GRACE_S
    max_seconds = build + wrk.WrkRun("", 0, "", duration, 1).duration + HOLD_SLACK_S
    return attack.Plan(
        kind=a.name,
        port=port,
        conns=conns,
        open_rate=OPEN_RATE,
        trickle=TRICKLE_S,
        max_seconds=max_seconds,
        build_timeout=build,
        slow_after=max(SLOW_AFTER_MIN_S, max_seconds + 5),
    )


def command(plan: attack.Plan) -> list[str]:
    return [
        sys.executable, str(ATTACK_SCRIPT), "--kind", plan.kind, "--port", str(plan.port),
        "--conns", str(plan.conns), "--open-rate", f"{plan.open_rate:g}",
        "--trickle", f"{plan.trickle:g}", "--max-seconds", f"{plan.max_seconds:g}",
        "--build-timeout", f"{plan.build_timeout:g}", "--slow-after", f"{plan.slow_after:g}",
    ]  # fmt: skip


# ---------------------------------------------------------------- the attacker process


class Running:
    """A started attacker: its held report, then its final counts."""

    def __init__(self, popen: subprocess.Popen[bytes], plan: attack.Plan) -> None:
        self.popen = popen
        self.plan = plan
        self.buffer = b""

    def _line(self, timeout: float) -> dict[str, Any]:
        """The next JSON line of its stdout; BenchError past timeout or at EOF."""
        assert self.popen.stdout is not None
        fd = self.popen.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self.buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise BenchError(f"the {self.plan.kind} attacker said nothing in {timeout:g} s")
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise BenchError(f"the {self.plan.kind} attacker exited: {self._stderr()}")
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return dict(json.loads(line))

    def _stderr(self) -> str:
        assert self.popen.stderr is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        return self.popen.stderr.read().decode(errors="replace").strip() or "(no output)"

    def wait_held(self) -> dict[str, Any]:
        """Its report once every connection is up (or its build time passed)."""
        got = self._line(self.plan.build_timeout + BUILD_GRACE_S)
        if got.get("event") != "held":
            raise BenchError(f"the {self.plan.kind} attacker said {got}")
        return got

    def stop(self) -> dict[str, Any]:
        """Close its stdin (it closes every connection and exits); its counts."""
        assert self.popen.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.popen.stdin.close()
        got = self._line(30.0)
        if got.get("event") != "done":
            raise BenchError(f"the {self.plan.kind} attacker said {got}")
        self.popen.wait(timeout=30)
        return got


@contextlib.contextmanager
def attacking(plan: attack.Plan) -> Iterator[Running]:
    """The attacker running plan; killed on the way out if it still runs."""
    popen = subprocess.Popen(
        command(plan),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        yield Running(popen, plan)
    finally:
        if popen.poll() is None:
            popen.kill()
            popen.wait()
        for pipe in (popen.stdin, popen.stdout, popen.stderr):
            if pipe is not None:
                pipe.close()


# ---------------------------------------------------------------- measuring


def fast_route(
    s: Settings, port: int, pids: Sequence[int], seconds: float, check: bool
) -> dict[str, Any]:
    """wrk keep-alive to /small, as l7-small, with the proxy's CPU per
    request (JSON only); with check a run with errors fails."""
    spec = wrk.WrkRun(s.wrk, port, "/small", seconds, s.connections)
    cpu0 = tree_cpu(pids)
    result = wrk.run(spec, check=check)
    if result["requests"]:
        result["cpu_us_per_req"] = (tree_cpu(pids) - cpu0) / result["requests"] * 1e6
    result["ok_per_s"] = wrk.ok_per_s(result)
    result["errors"] = wrk.errors(result)
    return result


def wait_released(pids: Sequence[int], fds_during: int, held: int) -> float | None:
    """Seconds until the proxy has closed RELEASED_SHARE of the held attack
    connections (its descriptors down by that many from fds_during), or
    None past RELEASE_TIMEOUT_S.  Counted from fds_during, not from before
    the attack: idle backend connections the proxy keeps may have grown."""
    target = fds_during - int(RELEASED_SHARE * held)
    started = time.monotonic()
    while (took := time.monotonic() - started) < RELEASE_TIMEOUT_S:
        if tree_fds(pids) <= target:
            return round(took, 3)
        time.sleep(POLL_S)
    return None


def _ratio(value: float, reference: float) -> float | None:
    return value / reference if reference else None


def one_attack(
    s: Settings, a: Attack, port: int, pids: Sequence[int], baseline_ok: float
) -> dict[str, Any]:
    """One attack on the running proxy: its figures (see the module doc)."""
    conns = connections(a, s.attack_conns)
    plan = plan_for(a, port, conns, s.duration)
    rss_before, fds_before = tree_rss(pids), tree_fds(pids)
    with attacking(plan) as running:
        held = running.wait_held()
        under = fast_route(s, port, pids, s.duration, check=False)
        rss_during, fds_during = tree_rss(pids), tree_fds(pids)
        stats = running.stop()
    if not alive(pids):
        raise BenchError(f"the proxy exited during the {a.name} attack")
    released = wait_released(pids, fds_during, stats["held_at_stop"])
    fds_after = tree_fds(pids)
    after = fast_route(s, port, pids, RECOVERY_S, check=False)
    rss_after = tree_rss(pids)  # once the run after it is over: memory fell back or not
    return {
        "connections": conns,
        "held": held["held"],
        "held_at_stop": stats["held_at_stop"],
        "attacker": {k: v for k, v in stats.items() if k != "event"},
        "under": under,
        "after": after,
        "ok_per_s": under["ok_per_s"],
        "ratio": _ratio(under["ok_per_s"], baseline_ok),
        "errors": under["errors"],
        "requests": under["requests"],
        "recovery": _ratio(after["ok_per_s"], baseline_ok),
        "after_ok_per_s": after["ok_per_s"],
        "rss_before": rss_before,
        "rss_during": rss_during,
        "rss_after": rss_after,
        "fds_before": fds_before,
        "fds_during": fds_during,
        "fds_after": fds_after,
        "release_s": released,
        "unreleased": 0 if released is not None else 1,
    }


def flatten(attacks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The per-attack figures as 'attack.figure' keys (what the medians take)."""
    flat = {
        f"{name}.{figure}": got[figure]
        for name, got in attacks.items()
        for figure in PER_ATTACK
        if got.get(figure) is not None
    }
    ratios = [got["ratio"] for got in attacks.values() if got.get("ratio") is not None]
    if ratios:
        flat["worst_ratio"] = min(ratios)
    return flat


def measure(s: Settings, port: int, pids: Sequence[int]) -> dict[str, Any]:
    """Baseline (after a warm-up), then every attack in turn on one proxy process."""
    if not pids:
        raise BenchError("there is no proxy process to attack")
    fast_route(s, port, pids, max(MIN_WARMUP_S, s.warmup), check=True)
    baseline = fast_route(s, port, pids, s.duration, check=True)
    attacks = {a.name: one_attack(s, a, port, pids, baseline["ok_per_s"]) for a in ATTACKS}
    return {
        "requests_per_s": baseline["requests_per_s"],
        "ok_per_s": baseline["ok_per_s"],
        "baseline": baseline,
        "attacks": attacks,
        **flatten(attacks),
    }


def estimate_seconds(s: Settings) -> float:
    """About how long one run takes."""
    seconds = 0.5 + max(MIN_WARMUP_S, s.warmup) + max(1, round(s.duration))
    for a in ATTACKS:
        seconds += connections(a, s.attack_conns) / OPEN_RATE + max(1, round(s.duration))
        seconds += RECOVERY_S + 0.5
    return seconds
