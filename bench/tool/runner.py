"""Interleaved rounds: every (scenario, contender) run on a fresh contender
process, in the order round 1: scenario 1: A B C, scenario 2: A B C, ...,
round 2: ...; then the latency scenario the same way at the rate the first
phase gave.  Each run becomes a JSON-able entry with its result or error."""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bench.tool import contenders, cpucap, procs, report, slowclients
from bench.tool.configs import Target
from bench.tool.contenders import Tools
from bench.tool.procs import BenchError
from bench.tool.scenarios import RATE_SOURCE, Scenario, Settings, direct_cannot, measure

Entry = dict[str, Any]
Job = tuple[int, Scenario, str]  # round, scenario, contender


class Progress(Protocol):
    def start(self, description: str) -> None: ...  # a run begins
    def advance(self) -> None: ...  # a run ended
    def log(self, message: str) -> None: ...


@dataclass
class Context:
    """What every run needs besides its scenario and contender."""

    tools: Tools
    backend_ports: tuple[int, ...]
    workdir: Path
    workers: int
    nofile: int
    proxy_cpus: set[int] | None
    settings: Settings
    retries: int = 1  # reruns of a latency run that could not hold the rate


def why_not(name: str, scenario: Scenario, tools: Tools) -> str | None:
    """Why contender name has no run in scenario, or None when it has."""
    if name == "direct":
        return direct_cannot(scenario)
    if scenario.capped and (why := cap_unusable()):
        return why
    return contenders.cannot(name, scenario.mode, tools)


@functools.cache
def cap_unusable() -> str | None:
    """Why the capped scenarios cannot run here (None: they can); probed once."""
    return cpucap.usable()


def plan(
    names: Sequence[str], scenarios: Sequence[Scenario], rounds: int, tools: Tools
) -> list[Job]:
    """The runs in interleaved order: rounds, then scenarios, then contenders."""
    return [
        (round_no, scenario, name)
        for round_no in range(1, rounds + 1)
        for scenario in scenarios
        for name in names
        if why_not(name, scenario, tools) is None
    ]


def estimate_seconds(jobs: Sequence[Job], s: Settings) -> float:
    """About how long the jobs take: wrk's whole seconds, warm-ups, starts."""
    total = 0.0
    for _, scenario, _ in jobs:
        if scenario.kind == "idle":
            total += 1.0 + s.settle + s.idle_conns * 0.001
        elif scenario.kind == "slow":
            total += slowclients.estimate_seconds(s)
        else:
            warmup = max(1, round(s.warmup)) if s.warmup > 0 else 0
            total += 0.5 + warmup + max(1, round(s.duration))
    return total


def measure_contender(ctx: Context, name: str, scenario: Scenario, run_dir: Path) -> Entry:
    """Start a fresh contender, check that it serves, measure, stop it.
    On failure the BenchError carries the tail of its logs."""
    if name == "direct":
        return measure(ctx.settings, scenario, ctx.backend_ports[0], [])
    port = procs.free_port()
    target = Target(run_dir, port, ctx.backend_ports, ctx.workers, ctx.nofile)
    how = contenders.launch(name, scenario.mode, target, ctx.tools)
    with proxy_cgroup(ctx, name, scenario) as cgroup:
        result = run_started(ctx, name, scenario, run_dir, port, how, cgroup)
    result["proxy_command"] = " ".join(how.cmds[0])
    return result


@contextlib.contextmanager
def proxy_cgroup(ctx: Context, name: str, scenario: Scenario) -> Iterator[Path | None]:
    """The cgroup.procs file of a cgroup holding the proxy to
    settings.cap_cpus per worker in a capped scenario (None in the others)."""
    if not scenario.capped:
        yield None
        return
    try:
        cap = cpucap.make(name, ctx.settings.cap_cpus * ctx.workers)
    except OSError as exc:
        raise BenchError(f"no CPU cap for {name}: {exc}") from exc
    try:
        yield cap.procs_file
    finally:
        cpucap.remove(cap)


def run_started(
    ctx: Context,
    name: str,
    scenario: Scenario,
    run_dir: Path,
    port: int,
    how: contenders.Launch,
    cgroup: Path | None,
) -> Entry:
    """Start the contender as how says (inside cgroup when given), check
    that it serves on port, measure scenario, stop it."""
    proc = procs.start_process(name, how.cmds, run_dir, ctx.proxy_cpus, how.env, cgroup)
    try:
        try:
            procs.wait_listening(proc, port)
            procs.check_serves(port, name)
            result = measure(ctx.settings, scenario, port, proc.pids)
            if proc.exited() is not None:
                raise BenchError(f"{name} exited during the run")
        except BenchError as exc:
            raise BenchError(f"{exc}\n{procs.logs_of(run_dir)}") from exc
    finally:
        procs.stop_process(proc)
    return result


def run_once(ctx: Context, job: Job, progress: Progress) -> Entry:
    """One run as an entry: its result or its error, and the 1-minute load
    average when it started (the machine's other work shows there)."""
    round_no, scenario, name = job
    entry: Entry = {"scenario": scenario.name, "contender": name, "round": round_no}
    entry["loadavg"] = round(os.getloadavg()[0], 2)
    run_dir = ctx.workdir / f"{scenario.name}-{name}-round{round_no}"
    rerun = 0
    while run_dir.exists():
        rerun += 1
        run_dir = ctx.workdir / f"{scenario.name}-{name}-round{round_no}-rerun{rerun}"
    run_dir.mkdir(mode=0o755)
    started = time.monotonic()
    try:
        entry["result"] = measure_contender(ctx, name, scenario, run_dir)
    except BenchError as exc:
        progress.log(f"[bench] {name}, {scenario.name} round {round_no} failed: {exc}")
        entry["error"] = str(exc)
    entry["seconds"] = round(time.monotonic() - started, 2)
    return entry


def run_jobs(ctx: Context, jobs: Sequence[Job], progress: Progress) -> list[Entry]:
    """Every job in order.  A latency run that fell short of the offered rate
    (the contender, or the shared machine, could not keep up) runs again,
    ctx.retries times at most; the runs it replaces stay in its "discarded"."""
    entries = []
    for job in jobs:
        round_no, scenario, name = job
        progress.start(f"{scenario.name} · {name} · round {round_no}")
        discarded: list[Entry] = []
        entry = run_once(ctx, job, progress)
        while entry.get("result", {}).get("short") and len(discarded) < ctx.retries:
            progress.log(
                f"[bench] {name}, latency round {round_no}: "
                f"{entry['result']['achieved_per_s']:,.0f} of {ctx.settings.rate:,} req/s offered "
                f"(load average {entry['loadavg']}); running it again"
            )
            discarded.append(entry)
            entry = run_once(ctx, job, progress)
        if discarded:
            entry["discarded"] = discarded
        entries.append(entry)
        progress.advance()
    return entries


# The latency rate comes from the production proxies: half of what the
# slowest of them sustains.  A contender far slower than that (proxy.py)
# cannot hold the rate and is left out of `latency` rather than overloaded,
# and it does not drag the rate down to where every other figure is noise.
RATE_POOL = ("fastlb", "haproxy", "nginx")


def offered_rate(entries: Sequence[Entry]) -> tuple[int | None, str | None]:
    """Half the median requests/s of the slowest of RATE_POOL in the
    RATE_SOURCE scenario, and which contender that is; from the other
    proxies when none of RATE_POOL has a figure, then from direct."""
    have = source_medians(entries)
    pool = (
        {n: v for n, v in have.items() if n in RATE_POOL}
        or {n: v for n, v in have.items() if n != "direct"}
        or have
    )
    if not pool:
        return None, None
    slowest = min(pool, key=lambda n: pool[n])
    return max(1, int(pool[slowest] / 2)), slowest


def source_medians(entries: Sequence[Entry]) -> dict[str, float]:
    """Each contender's median requests/s in the RATE_SOURCE scenario."""
    meds = report.medians(entries).get(RATE_SOURCE, {})
    return {n: m["requests_per_s"] for n, m in meds.items() if m.get("requests_per_s")}


def too_slow(entries: Sequence[Entry], rate: int) -> dict[str, str]:
    """The contenders whose RATE_SOURCE median is under rate, each with why
    it is left out of the latency runs."""
    return {
        name: f"its `{RATE_SOURCE}` maximum ({value:,.0f} req/s) is below the offered rate "
        f"({rate:,} req/s)"
        for name, value in source_medians(entries).items()
        if value < rate
    }
