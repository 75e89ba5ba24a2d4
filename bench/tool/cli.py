"""`python -m bench`: fastlb beside HAProxy, NGINX, proxy.py and pproxy in
every scenario, with the micro benchmarks; writes report.md, results.json
and charts/*.png to --out.  See bench/README.md."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.tool import contenders, machine, micro, procs, report, runner
from bench.tool.backends import Backend, start_backend
from bench.tool.contenders import Probe, Tools
from bench.tool.procs import BenchError
from bench.tool.scenarios import CAPPED_CPUS, SCENARIOS, Scenario, Settings

MICRO = ("micro", "c-micro")
# The contenders whose failure fails the run: the subject and the backend.
SUBJECTS = ("fastlb", "direct")
ALL_SCENARIOS = (*(s.name for s in SCENARIOS), *MICRO)


@dataclass(frozen=True)
class Preset:
    rounds: int
    duration: float
    warmup: float
    idle_conns: int
    settle: float
    micro_passes: int
    micro_max_time: float
    attack_conns: int | None  # None: each slow-client attack's own count


PRESETS = {
    "quick": Preset(1, 1.0, 0.0, 200, 0.3, 1, 0.02, 500),
    "default": Preset(3, 5.0, 1.0, 5000, 1.0, 3, 0.5, None),
    "full": Preset(5, 10.0, 2.0, 5000, 1.0, 5, 1.0, None),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="fastlb beside HAProxy, NGINX, proxy.py and pproxy (same worker count, "
        "configs generated), in front of an NGINX backend on 127.0.0.1; plus the micro "
        "benchmarks.  Writes a Markdown report, a JSON file with every raw run and PNG charts.",
    )
    preset = p.add_mutually_exclusive_group()
    preset.add_argument(
        "--quick",
        action="store_true",
        help="CI check, a few minutes: 1 round of 1 s runs, no warm-up, 200 idle "
        "connections, 500 connections per slow-client attack, 1 short micro pass, no C micro "
        "benchmarks",
    )
    preset.add_argument(
        "--full",
        action="store_true",
        help="for people: 5 rounds of 10 s runs after 2 s warm-ups, 5 micro passes",
    )
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 3)")
    p.add_argument("--duration", type=float, help="seconds of each measured wrk run (default 5)")
    p.add_argument("--warmup", type=float, help="seconds of wrk warm-up per run (default 1)")
    p.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    p.add_argument(
        "--many-conns",
        type=int,
        default=5000,
        help="wrk connections of the `many` scenario (default 5000)",
    )
    p.add_argument(
        "--idle-conns", type=int, help="idle connections of the `idle` scenario (default 5000)"
    )
    p.add_argument(
        "--attack-conns",
        type=int,
        help="at most this many connections per attack of `slow-clients` (default: slowloris "
        "5000, stalled-bodies 2000, long-polls 2000; quick 500)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes or threads of every contender and of the backend (default 1)",
    )
    p.add_argument(
        "--rate",
        type=int,
        help="offered req/s of `latency` (default: half the slowest proxy's l7-small req/s)",
    )
    p.add_argument(
        "--cap-cpus",
        type=float,
        default=CAPPED_CPUS,
        help=f"CPUs per worker each proxy gets in l7-capped (default {CAPPED_CPUS:g})",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=1,
        help="reruns of a latency run under 95%% of the offered rate (default 1)",
    )
    p.add_argument(
        "--contenders",
        default=",".join(contenders.NAMES),
        help=f"comma-separated subset of {','.join(contenders.NAMES)} (default: all)",
    )
    p.add_argument(
        "--scenarios",
        help=f"comma-separated subset of {','.join(ALL_SCENARIOS)} (default: all; "
        "--quick leaves c-micro out unless named)",
    )
    p.add_argument(
        "--cpus",
        help="pin like taskset: '0:1' = contenders on CPU 0, backend, wrk and this tool on "
        "CPU 1; '0,1' = everything on those CPUs",
    )
    p.add_argument(
        "--backend",
        choices=("auto", "nginx", "stand-in"),
        default="auto",
        help="what serves /small and /1m: NGINX, the asyncio stand-in "
        "(bench/tool/static_server.py), or auto: NGINX when installed (default)",
    )
    p.add_argument("--micro-passes", type=int, help="pytest-benchmark passes (default 3)")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("bench-results"),
        help="output directory (default bench-results/)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs)")
    return p


def _split(text: str, known: Sequence[str], what: str) -> list[str]:
    wanted = [n.strip() for n in text.split(",") if n.strip()]
    unknown = sorted(set(wanted) - set(known))
    if unknown or not wanted:
        raise SystemExit(f"bench: unknown {what} {unknown}; choose from {','.join(known)}")
    return [n for n in known if n in wanted]  # canonical order


def macro_scenarios(args: argparse.Namespace) -> list[Scenario]:
    """The scenarios named in --scenarios that run contenders (not micro)."""
    return [s for s in SCENARIOS if s.name in args.scenario_names]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    args.preset = "quick" if args.quick else "full" if args.full else "default"
    preset = PRESETS[args.preset]
    for name in ("rounds", "duration", "warmup", "idle_conns", "micro_passes", "attack_conns"):
        if getattr(args, name) is None:
            setattr(args, name, getattr(preset, name))
    args.settle, args.micro_max_time = preset.settle, preset.micro_max_time
    args.names = _split(args.contenders, contenders.NAMES, "contender(s)")
    if args.scenarios is None:  # all; --quick leaves the C micro benchmarks out
        args.scenarios = ",".join(s for s in ALL_SCENARIOS if not (args.quick and s == "c-micro"))
    args.scenario_names = _split(args.scenarios, ALL_SCENARIOS, "scenario(s)")
    small = {
        "--rounds": args.rounds, "--duration": args.duration, "--connections": args.connections,
        "--many-conns": args.many_conns, "--idle-conns": args.idle_conns,
        "--workers": args.workers, "--micro-passes": args.micro_passes,
        "--attack-conns": 1 if args.attack_conns is None else args.attack_conns,
    }  # fmt: skip
    for option, value in small.items():
        if value < 1:
            raise SystemExit(f"bench: {option} must be at least 1")
    if args.warmup < 0 or args.retries < 0 or (args.rate is not None and args.rate < 1):
        raise SystemExit("bench: --warmup and --retries must be >= 0, --rate >= 1")
    if not 0.01 <= args.cap_cpus <= 1024:
        raise SystemExit("bench: --cap-cpus must be between 0.01 and 1024")
    try:
        args.proxy_cpus, args.other_cpus = procs.parse_cpus(args.cpus)
    except ValueError as exc:
        raise SystemExit(f"bench: {exc}") from None
    return args


# ---------------------------------------------------------------- progress


class RichProgress:
    """A rich progress bar on stderr; messages print above it."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("{task.description:<40}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self.task = self.bar.add_task("starting", total=total)

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def start(self, description: str) -> None:
        self.bar.update(self.task, description=description)
        if not self.bar.console.is_terminal:  # a log (CI): no live bar, so say what runs
            self.log(f"[bench] {description}")

    def advance(self, steps: int = 1) -> None:
        self.bar.advance(self.task, steps)

    def log(self, message: str) -> None:
        self.bar.console.print(message, markup=False, highlight=False)


# ---------------------------------------------------------------- main


def describe_backend(backend: Backend, tools: Tools, workers: int) -> str:
    if backend.kind == "nginx":
        version = report.short_version(machine.first_line([tools.nginx or "nginx", "-v"]))
        slow = (
            "; /slow (slow-clients) passed on to one stand-in process, which answers when "
            "the request asks"
            if backend.slow_port
            else ""
        )
        files = "/small (13 B) and /1m (1 MiB) on 2 ports"
        return f"NGINX {version}, {workers} worker(s), {files}{slow}"
    why = "NGINX not found: Debian package nginx"
    if tools.nginx:
        why = "chosen with --backend stand-in"
    return (
        f"the asyncio stand-in bench/tool/static_server.py ({why}; fastlb has no static "
        f"backend), {workers} process(es), /small and /1m on 2 ports: its figures do not "
        "compare with runs in front of NGINX"
    )


def prepare(args: argparse.Namespace) -> tuple[Tools, list[str], dict[str, Any]]:
    """Tools and contenders found, what cannot run, the run's description."""
    info: dict[str, Any] = {"machine": machine.machine_info()}  # before pinning
    probe = Probe()
    macro = macro_scenarios(args)
    tools = contenders.find_tools(probe, need_wrk=bool(macro))
    info["missing"] = contenders.missing(args.names, tools, probe) if macro else {}
    for name, why in info["missing"].items():
        print(f"bench: skipping {name}: {why}", file=sys.stderr)
    if args.backend == "nginx" and tools.nginx is None:
        raise SystemExit("bench: --backend nginx: nginx not found (Debian package nginx)")
    names = [n for n in args.names if n not in info["missing"]]
    if not names and macro:
        raise SystemExit("bench: no contender left to run")
    info["cannot"] = {
        n: {s.name: why for s in macro if (why := runner.why_not(n, s, tools))} for n in names
    }
    info["cannot"] = {n: v for n, v in info["cannot"].items() if v}
    info["versions"] = machine.versions(names, tools)
    info["contenders"] = names
    info["scenarios"] = [s.name for s in macro]
    options = {k: v for k, v in vars(args).items() if k not in ("proxy_cpus", "other_cpus")}
    info["options"] = json.loads(json.dumps(options, default=str))
    return tools, names, info


def make_settings(args: argparse.Namespace, tools: Tools) -> Settings:
    return Settings(
        wrk=tools.wrk, duration=args.duration, warmup=args.warmup,
        connections=args.connections, many_conns=args.many_conns,
        idle_conns=args.idle_conns, settle=args.settle, cap_cpus=args.cap_cpus,
        attack_conns=args.attack_conns,
    )  # fmt: skip


def run_macro(
    args: argparse.Namespace,
    tools: Tools,
    names: list[str],
    info: dict[str, Any],
    progress: RichProgress,
    workdir: Path,
) -> list[runner.Entry]:
    """The backend, then phase one (every scenario but latency), then latency."""
    macro = macro_scenarios(args)
    first = runner.plan(names, [s for s in macro if s.kind != "latency"], args.rounds, tools)
    latency = runner.plan(names, [s for s in macro if s.kind == "latency"], args.rounds, tools)
    settings = make_settings(args, tools)
    *ports, slow_port = procs.free_ports(3)  # slow_port: the slow route behind NGINX
    slow = any(s.kind == "slow" for s in macro)
    progress.start("backend")
    server = None if args.backend == "stand-in" else tools.nginx
    backend = start_backend(
        workdir, server, ports, info["nofile"], args.workers, slow_port if slow else None
    )
    info["backend"] = describe_backend(backend, tools, args.workers)
    ctx = runner.Context(
        tools, tuple(ports), workdir, args.workers, info["nofile"], args.proxy_cpus, settings,
        args.retries,
    )  # fmt: skip
    try:
        entries = runner.run_jobs(ctx, first, progress)
        rate, slowest = (args.rate, None) if args.rate else runner.offered_rate(entries)
        info["rate"] = {"offered": rate, "from": slowest, "given": bool(args.rate)}
        if latency and rate is None:
            info["rate"]["skipped"] = "no contender finished an l7-small run, so no rate"
            progress.advance(len(latency))
        elif latency:
            settings.rate = rate
            slow = runner.too_slow(entries, rate)
            for name, why in slow.items():
                info["cannot"].setdefault(name, {})["latency"] = why
            kept = [job for job in latency if job[2] not in slow]
            progress.advance(len(latency) - len(kept))
            latency = kept
            progress.log(f"[bench] latency at {rate:,} requests/s")
            entries += runner.run_jobs(ctx, latency, progress)
    finally:
        procs.stop_process(backend.proc)
    return entries


def run_micro(args: argparse.Namespace, progress: RichProgress) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if "micro" in args.scenario_names:
        progress.start("micro (pytest-benchmark)")
        try:
            result.update(micro.run_python(args.micro_passes, args.micro_max_time, progress.log))
        except subprocess.CalledProcessError as exc:  # report it, go on
            output = (exc.stdout or b"") + (exc.stderr or b"")
            result["error"] = f"{exc}\n{output.decode(errors='replace')[-2000:]}"
        except (OSError, ValueError, KeyError) as exc:  # no JSON, or not pytest-benchmark's
            result["error"] = f"{type(exc).__name__}: {exc}"
        if "error" in result:
            progress.log(f"[bench] micro benchmarks failed: {result['error']}")
        progress.advance()
    if "c-micro" in args.scenario_names:
        progress.start("micro (C, make -C bench run-c)")
        result["c"] = micro.run_c()
        progress.advance()
    return result


def write_outputs(
    out: Path, info: dict[str, Any], entries: list[runner.Entry], micro_result: dict[str, Any]
) -> str:
    """report.md, results.json and charts/*.png in out; the report's text."""
    from bench.tool import charts  # matplotlib: only when charts are drawn

    out.mkdir(parents=True, exist_ok=True)
    meds = report.medians(entries)
    micro_md = micro.markdown(micro_result) if micro_result else ""
    text = report.render(info, entries, micro_md)
    pngs = charts.write_charts(
        meds, info["scenarios"], info["contenders"], out / "charts", info["rate"].get("offered")
    )
    if pngs:
        text += "\nCharts: " + ", ".join(f"[{p.name}](charts/{p.name})" for p in pngs) + ".\n"
    (out / "report.md").write_text(text, encoding="utf-8")
    data = {**info, "runs": entries, "medians": meds, "micro": micro_result}
    (out / "results.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return text


def stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so that every started process is stopped."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    tools, names, info = prepare(args)
    if args.other_cpus:
        os.sched_setaffinity(0, args.other_cpus)  # inherited by the backend and wrk
    info["nofile"] = procs.raise_nofile()
    if info["nofile"] < 2 * args.many_conns + procs.FD_RESERVE:
        print(f"bench: warning: RLIMIT_NOFILE is only {info['nofile']}", file=sys.stderr)
    info["rate"], info["backend"] = {}, "not started"
    macro = macro_scenarios(args)
    jobs = runner.plan(names, macro, args.rounds, tools)
    total = len(jobs)
    minutes = runner.estimate_seconds(jobs, make_settings(args, tools)) / 60
    print(
        f"bench: {total} runs, about {minutes:.0f} min, then the micro benchmarks", file=sys.stderr
    )
    total += sum(1 for s in MICRO if s in args.scenario_names)
    workdir = Path(tempfile.mkdtemp(prefix="fastlb-bench-"))
    workdir.chmod(0o755)  # nginx workers may run as nobody and must reach www/
    entries: list[runner.Entry] = []
    try:
        with RichProgress(total) as progress:
            if macro and names:
                entries = run_macro(args, tools, names, info, progress, workdir)
            micro_result = run_micro(args, progress)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"bench: files kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    text = write_outputs(args.out, info, entries, micro_result)
    print(text)
    print(f"bench: wrote {args.out}/report.md, results.json and charts/", file=sys.stderr)
    # A peer failing a scenario (proxy.py at 5,000 connections) is a result,
    # in the report; fastlb or the backend itself failing is the tool's failure.
    failed = any("error" in e and e.get("contender") in SUBJECTS for e in entries)
    return 1 if failed or "error" in micro_result else 0
