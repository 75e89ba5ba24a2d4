"""The micro benchmarks: the pytest-benchmark files bench/bench_*.py run in
several passes (fastlb and its Python peers interleaved), the median of each
benchmark's per-pass medians, the ratios their targets are stated in; and
the C benchmarks of bench/c (make -C bench run-c), whose output is quoted."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent.parent
FILES = ("bench_http.py", "bench_hashring.py")


@dataclass(frozen=True)
class Ratio:
    label: str
    fastlb: str  # benchmark names
    peer: str
    target: float | None  # peer time / fastlb time at least this


@dataclass(frozen=True)
class Limit:
    label: str
    name: str
    seconds: float  # at most


RATIOS = (
    Ratio(
        "parse_request vs httptools",
        "bench_fastlb_parse_request",
        "bench_httptools_parse_request",
        3.0,
    ),
    Ratio(
        "Maglev.lookup vs uhashring", "bench_fastlb_maglev_lookup", "bench_uhashring_get_node", 10.0
    ),
    Ratio("Ring.lookup vs uhashring", "bench_fastlb_ring_lookup", "bench_uhashring_get_node", None),
)
LIMITS = (Limit("Maglev build, 100 backends, M=65537", "bench_fastlb_maglev_build_100", 5e-3),)


def pytest_command(json_path: Path, max_time: float) -> list[str]:
    return [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
        *[str(BENCH_DIR / f) for f in FILES],
        "--benchmark-enable", "--benchmark-only", "--benchmark-warmup=on",
        "--benchmark-min-time=0.0002", f"--benchmark-max-time={max_time:g}",
        f"--benchmark-json={json_path}", "--benchmark-disable-gc",
    ]  # fmt: skip


def read_medians(data: dict[str, Any]) -> dict[str, float]:
    """{benchmark name: median seconds} from pytest-benchmark's JSON."""
    return {b["name"]: float(b["stats"]["median"]) for b in data["benchmarks"]}


def run_python(passes: int, max_time: float, log: Callable[[str], None]) -> dict[str, Any]:
    """passes runs of the pytest-benchmark files; every pass's medians and
    the median of those.  Raises subprocess.CalledProcessError on failure."""
    runs: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(passes):
            log(f"[bench] micro pass {i + 1}/{passes}")
            path = Path(tmp) / f"pass{i}.json"
            subprocess.run(
                pytest_command(path, max_time),
                check=True,
                capture_output=True,
                cwd=BENCH_DIR.parent,
            )
            for name, median in read_medians(json.loads(path.read_text())).items():
                runs.setdefault(name, []).append(median)
    return {"runs_s": runs, "medians_s": {n: statistics.median(v) for n, v in runs.items()}}


def run_c() -> str:
    """The C benchmarks' output, or why they did not run."""
    if not shutil.which("make") or not shutil.which("cc"):
        return "not run: make or cc not found (Debian packages make gcc)"
    done = subprocess.run(
        ["make", "-s", "-C", str(BENCH_DIR), "run-c"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return f"failed ({done.returncode}):\n{done.stdout}{done.stderr}"
    return done.stdout.strip()


def fmt_time(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.2f} µs"
    return f"{seconds * 1e9:.0f} ns"


def markdown(micro: dict[str, Any]) -> str:
    """The micro section of the report."""
    out = ["### Micro benchmarks\n"]
    meds = micro.get("medians_s")
    if meds:
        passes = len(next(iter(micro["runs_s"].values())))
        out.append(
            f"pytest-benchmark, bench/bench_http.py and bench/bench_hashring.py, median of "
            f"{passes} interleaved pass(es):\n"
        )
        lines = ["| benchmark | median |", "|---|---:|"]
        lines += [f"| `{n}` | {fmt_time(meds[n])} |" for n in sorted(meds)]
        out.append("\n".join(lines) + "\n")
        lines = ["| comparison | figure | target | met |", "|---|---:|---:|---|"]
        for r in RATIOS:
            if r.fastlb in meds and r.peer in meds:
                got = meds[r.peer] / meds[r.fastlb]
                target = "—" if r.target is None else f">= {r.target:g}x"
                met = "—" if r.target is None else ("yes" if got >= r.target else "NO")
                lines.append(
                    f"| {r.label} (peer time / fastlb time) | {got:.1f}x | {target} | {met} |"
                )
        for lim in LIMITS:
            if lim.name in meds:
                got, limit = fmt_time(meds[lim.name]), fmt_time(lim.seconds)
                ok = "yes" if meds[lim.name] <= lim.seconds else "NO"
                lines.append(f"| {lim.label} | {got} | <= {limit} | {ok} |")
        out.append("\n".join(lines) + "\n")
    elif micro.get("error"):
        out.append(f"pytest-benchmark failed: {micro['error']}\n")
    if micro.get("c"):
        out.append("C hot paths (`make -C bench run-c`):\n")
        out.append("```\n" + micro["c"] + "\n```\n")
    return "\n".join(out)
