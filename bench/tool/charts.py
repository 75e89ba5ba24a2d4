"""PNG charts of the medians, drawn with matplotlib's Agg canvas (no display
needed): requests/s (or bytes/s) per scenario, latency percentiles, CPU per
request, and memory per idle connection."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench.tool import contenders
from bench.tool.report import Medians
from bench.tool.scenarios import BY_NAME as SCENARIOS

PERCENTILES = (("p50_us", "p50"), ("p99_us", "p99"), ("p99.9_us", "p99.9"))
DPI = 110


def short(value: float) -> str:
    """A bar's label: 20.7k, 1.51M, 0.95."""
    if abs(value) >= 1e6:
        return f"{value / 1e6:.2f}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:.1f}k"
    return f"{value:.3g}"


def _colors(names: Sequence[str]) -> dict[str, str]:
    return {n: f"C{i}" for i, n in enumerate(contenders.NAMES) if n in names}


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI)
    return path


def _bars_per_scenario(
    meds: Medians,
    scenarios: Sequence[str],
    names: Sequence[str],
    figure_of: dict[str, tuple[str, float, str]],  # scenario -> (figure, scale, unit)
    title: str,
) -> Figure | None:
    """One small bar chart per scenario (each on its own scale), bars per
    contender, each labelled with its value."""
    shown = [s for s in scenarios if s in figure_of and meds.get(s)]
    if not shown:
        return None
    cols = min(3, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows), layout="constrained")
    fig.suptitle(title)
    colors = _colors(names)
    for i, s in enumerate(shown):
        ax = fig.add_subplot(rows, cols, i + 1)
        figure, scale, unit = figure_of[s]
        here = [n for n in names if meds[s].get(n, {}).get(figure) is not None]
        heights = [meds[s][n][figure] / scale for n in here]
        ax.bar(range(len(here)), heights, color=[colors[n] for n in here])
        ax.set_xticks(range(len(here)), here, rotation=30, ha="right", fontsize=8)
        ax.set_title(f"{s}: {SCENARIOS[s].title}", fontsize=9)
        ax.set_ylabel(unit, fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        for x, h in enumerate(heights):
            ax.annotate(short(h), (x, h), ha="center", va="bottom", fontsize=7)
    return fig


def throughput_chart(
    meds: Medians, scenarios: Sequence[str], names: Sequence[str]
) -> Figure | None:
    figure_of = {}
    for s in scenarios:
        sc = SCENARIOS[s]
        if sc.kind == "wrk":
            figure_of[s] = (
                ("bytes_per_s", 1024**3, "GiB/s")
                if sc.headline == "bytes_per_s"
                else ("requests_per_s", 1.0, "requests/s")
            )
    return _bars_per_scenario(meds, scenarios, names, figure_of, "Throughput (median)")


def cpu_chart(meds: Medians, scenarios: Sequence[str], names: Sequence[str]) -> Figure | None:
    figure_of = {
        s: ("cpu_us_per_req", 1.0, "µs CPU per request")
        for s in scenarios
        if SCENARIOS[s].kind in ("wrk", "latency")
    }
    return _bars_per_scenario(
        meds,
        scenarios,
        names,
        figure_of,
        "Contender CPU time per request (median, lower is better)",
    )


def latency_chart(meds: Medians, names: Sequence[str], rate: int | None) -> Figure | None:
    here = meds.get("latency", {})
    shown = [n for n in names if here.get(n, {}).get("p99_us") is not None]
    if not shown:
        return None
    fig = Figure(figsize=(max(6.0, 1.4 * len(shown) + 2), 4.2), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / len(PERCENTILES)
    for i, (figure, title) in enumerate(PERCENTILES):
        xs = [x + (i - 1) * width for x in range(len(shown))]
        ax.bar(xs, [here[n].get(figure) or 0 for n in shown], width, label=title)
    ax.set_xticks(range(len(shown)), shown, rotation=20, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("latency, µs (log scale)")
    offered = f" at {rate:,} requests/s" if rate else ""
    ax.set_title(f"Latency percentiles{offered} (median of rounds, lower is better)")
    ax.legend()
    return fig


def memory_chart(meds: Medians, names: Sequence[str]) -> Figure | None:
    here = meds.get("idle", {})
    shown = [n for n in names if here.get(n, {}).get("bytes_per_conn") is not None]
    if not shown:
        return None
    colors = _colors(names)
    fig = Figure(figsize=(max(5.0, 1.2 * len(shown) + 2), 4.0), layout="constrained")
    ax = fig.add_subplot()
    heights = [here[n]["bytes_per_conn"] / 1024 for n in shown]
    ax.bar(range(len(shown)), heights, color=[colors[n] for n in shown])
    ax.set_xticks(range(len(shown)), shown, rotation=20, ha="right")
    ax.set_ylabel("KiB of RSS per idle keep-alive connection")
    ax.set_title("Memory per idle connection (median, lower is better)")
    for x, h in enumerate(heights):
        ax.annotate(short(h), (x, h), ha="center", va="bottom", fontsize=8)
    return fig


def write_charts(
    meds: Medians,
    scenarios: Sequence[str],
    names: Sequence[str],
    out_dir: Path,
    rate: int | None = None,
) -> list[Path]:
    """Every chart that has data, as out_dir/*.png; the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = {
        "throughput.png": throughput_chart(meds, scenarios, names),
        "latency.png": latency_chart(meds, names, rate),
        "cpu.png": cpu_chart(meds, scenarios, names),
        "memory.png": memory_chart(meds, names),
    }
    return [_save(fig, out_dir / name) for name, fig in figures.items() if fig is not None]
