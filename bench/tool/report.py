"""From raw runs to figures: medians over rounds, ratios to HAProxy and to
direct-to-backend, and the Markdown report."""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.tool import configs, contenders, slowclients
from bench.tool.scenarios import BY_NAME as SCENARIOS
from bench.tool.scenarios import CAPPED_CPUS, Scenario

Entry = dict[str, Any]
Medians = dict[str, dict[str, dict[str, float]]]  # scenario -> contender -> figure -> median
FIGURES = (
    "requests_per_s",
    "bytes_per_s",
    "cpu_us_per_req",
    "achieved_per_s",
    "p50_us",
    "p90_us",
    "p99_us",
    "p99.9_us",
    "late_fraction",
    "bytes_per_conn",
    *slowclients.FIGURES,
)
REFERENCES = ("haproxy", "direct")


# ---------------------------------------------------------------- figures


def values(entries: Sequence[Entry], scenario: str, name: str) -> dict[str, list[float]]:
    """Every figure's per-round values for one contender in one scenario."""
    out: dict[str, list[float]] = {}
    for entry in entries:
        if entry["scenario"] != scenario or entry["contender"] != name or "result" not in entry:
            continue
        for figure in FIGURES:
            value = entry["result"].get(figure)
            if value is not None:
                out.setdefault(figure, []).append(float(value))
    return out


def medians(entries: Sequence[Entry]) -> Medians:
    """The median of every figure over the rounds, per scenario and contender."""
    meds: Medians = {}
    for entry in entries:
        meds.setdefault(entry["scenario"], {}).setdefault(entry["contender"], {})
    for scenario, by_name in meds.items():
        for name in by_name:
            by_name[name] = {
                f: statistics.median(v) for f, v in values(entries, scenario, name).items()
            }
    return meds


def ratio(value: float | None, reference: float | None) -> float | None:
    """value / reference, or None when either is missing or the reference is 0."""
    if value is None or not reference:
        return None
    return value / reference


def ratios(meds: Medians, scenario: str, name: str, figure: str) -> dict[str, float | None]:
    """A figure of contender name beside the same figure of HAProxy and of
    direct in the same scenario (HAProxy in the scenario's mode)."""
    here = meds.get(scenario, {})
    value = here.get(name, {}).get(figure)
    return {ref: ratio(value, here.get(ref, {}).get(figure)) for ref in REFERENCES}


def spread(values_: Sequence[float]) -> float | None:
    """Half the min-to-max range over the median, or None under two values."""
    if len(values_) < 2:
        return None
    mid = statistics.median(values_)
    return (max(values_) - min(values_)) / 2 / mid if mid else None


# ---------------------------------------------------------------- formatting


def fmt_count(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def fmt_bps(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1024**3:.2f} GiB/s" if value >= 1024**3 else f"{value / 1024**2:,.0f} MiB/s"


def fmt_us(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f} µs" if value < 1000 else f"{value / 1000:,.2f} ms"


def fmt_cpu(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f} µs"


def fmt_bytes(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1024:,.1f} KiB" if abs(value) >= 10 * 1024 else f"{value:,.0f} B"


def fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def fmt_pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


@dataclass(frozen=True)
class Column:
    figure: str
    title: str
    fmt: Callable[[float | None], str]
    refs: tuple[str, ...] = REFERENCES  # ratio columns after the value


FORMATS: dict[str, Callable[[float | None], str]] = {
    "requests_per_s": fmt_count,
    "bytes_per_s": fmt_bps,
    "p99_us": fmt_us,
    "bytes_per_conn": fmt_bytes,
    "worst_ratio": fmt_ratio,
}
HEADLINE_UNITS = {
    "requests_per_s": "req/s",
    "bytes_per_s": "bytes/s",
    "p99_us": "p99",
    "bytes_per_conn": "RSS per conn.",
    "worst_ratio": "worst ratio under attack",
}
REF_TITLES = {"haproxy": "vs HAProxy", "direct": "vs direct"}


def label(name: str, mode: str | None = None) -> str:
    c = contenders.BY_NAME[name]
    return c.label if mode is None or name == "direct" else f"{c.label} ({c.modes[mode]})"


def table(meds: Medians, scenario: str, names: Sequence[str], columns: Sequence[Column]) -> str:
    """A Markdown table: one row per contender, each column's value then its
    ratios to the references."""
    mode = SCENARIOS[scenario].mode
    head, align = ["contender"], ["---"]
    for col in columns:
        head.append(col.title)
        head += [REF_TITLES[r] for r in col.refs]
        align += ["---:"] * (1 + len(col.refs))
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    here = meds.get(scenario, {})
    for name in names:
        if name not in here:
            continue
        cells = [label(name, mode)]
        for col in columns:
            cells.append(col.fmt(here[name].get(col.figure)))
            rat = ratios(meds, scenario, name, col.figure)
            cells += [fmt_ratio(rat[r]) for r in col.refs]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def scenario_columns(scenario: Scenario) -> list[Column]:
    cpu = Column("cpu_us_per_req", "CPU per request", fmt_cpu, ("haproxy",))
    if scenario.kind == "latency":
        return [
            Column("achieved_per_s", "achieved req/s", fmt_count, ()),
            Column("p50_us", "p50", fmt_us),
            Column("p99_us", "p99", fmt_us),
            Column("p99.9_us", "p99.9", fmt_us),
            Column("late_fraction", "late sends", fmt_pct, ()),
            cpu,
        ]
    if scenario.kind == "idle":
        return [Column("bytes_per_conn", "RSS per idle connection", fmt_bytes, ("haproxy",))]
    if scenario.headline == "bytes_per_s":
        return [
            Column("bytes_per_s", "bytes/s", fmt_bps),
            Column("requests_per_s", "req/s", fmt_count),
            cpu,
        ]
    return [Column("requests_per_s", "req/s", fmt_count), cpu]


def summary_table(meds: Medians, scenarios: Sequence[str], names: Sequence[str]) -> str:
    """Each scenario's headline figure: one row per contender, one column per
    scenario."""
    head = ["contender"] + [f"{s} {HEADLINE_UNITS[SCENARIOS[s].headline]}" for s in scenarios]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * len(scenarios) + "|"]
    for name in names:
        cells = [contenders.BY_NAME[name].label]
        for s in scenarios:
            figure = SCENARIOS[s].headline
            value = meds.get(s, {}).get(name, {}).get(figure)
            cells.append(FORMATS[figure](value) if name in meds.get(s, {}) else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def spread_table(entries: Sequence[Entry], scenarios: Sequence[str], names: Sequence[str]) -> str:
    """Spread of each headline figure over the rounds, and rounds that worked."""
    lines = [
        "| contender | " + " | ".join(scenarios) + " |",
        "|---" + "|---:" * len(scenarios) + "|",
    ]
    for name in names:
        cells = [contenders.BY_NAME[name].label]
        for s in scenarios:
            mine = [e for e in entries if e["scenario"] == s and e["contender"] == name]
            if not mine:
                cells.append("n/a")
                continue
            got = values(entries, s, name).get(SCENARIOS[s].headline, [])
            sp = spread(got)
            spread_text = "—" if sp is None else f"±{sp * 100:.0f}%"
            cells.append(f"{spread_text} ({len(got)}/{len(mine)} ok)")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the report


def short_version(line: str) -> str:
    """'HAProxy version 2.6.12-1+deb12u4 2026/...' -> '2.6.12-1+deb12u4', and so on."""
    match = re.search(r"(?:version |/|^wrk |^v?)(\d[^\s,]*)", line)
    return match.group(1) if match else line


def method(info: dict[str, Any]) -> str:
    o = info["options"]
    nofile = info["nofile"]
    return (
        f"Method: {o['rounds']} interleaved round(s) (every scenario's contenders in turn, "
        "then the next scenario, then the next round), medians; a fresh contender process "
        f"per run; `wrk -t1 -c{o['connections']} -d{o['duration']:g}s` after a "
        f"{o['warmup']:g} s warm-up on the same process ({o['many_conns']:,} connections in "
        f"`many`); {o['workers']} worker(s) for every contender and for the backend; "
        f"HAProxy maxconn {configs.haproxy_maxconn(nofile)}, NGINX worker_connections "
        f"{configs.nginx_worker_connections(nofile)} (RLIMIT_NOFILE {nofile}); "
        f"CPUs: {o['cpus'] or 'not pinned'}.  CPU per request is the CPU time (user + "
        "system, psutil) of the contender's process tree during the measured run divided by "
        "the requests it served.  Ratios compare with HAProxy in the same mode (`mode http` "
        "for L7, `mode tcp` for L4) and with wrk reaching the backend directly (value / "
        "reference: above 1.00x is better for req/s and bytes/s, worse for latency, CPU and "
        "memory); direct has no proxy, so it has no CPU or memory figure.\n"
    )


def scenario_note(scenario: str, options: dict[str, Any]) -> str:
    """What a scenario does, where its table alone does not say."""
    notes = {
        "l7-close": "wrk sends `Connection: close` with every request, so every request comes "
        "on a new client connection.",
        "l7-capped": "As `l7-small`, but each proxy runs in a cgroup whose CFS quota "
        f"allows it {options.get('cap_cpus', CAPPED_CPUS):g} CPU per worker "
        "(bench/tool/cpucap.py, `--cap-cpus`), the same for every "
        "proxy.  wrk and the backend keep the rest of the machine, so the proxy is the "
        "bottleneck and its requests/s are what it serves with that CPU.  Uncapped, on a "
        "machine this small, wrk and the backend share the CPUs with the proxy and a proxy "
        "that needs less CPU per request leaves the difference idle.",
        "l7-1m": "bytes/s is wrk's Transfer/sec.",
        "l4-1m": "bytes/s is wrk's Transfer/sec.",
        "many": f"wrk opens its {options.get('many_conns', 0):,} connections when the run "
        "starts: the figure includes accepting them and any backend connections the "
        "contender opens for them.",
        "idle": f"The tool opens {options.get('idle_conns', 0):,} connections through the "
        "contender, makes one keep-alive request on each and leaves them open; the figure is "
        "the growth of the resident memory (RSS, psutil) of the contender's processes "
        f"{options.get('settle', 0):g} s later, divided by the connections.  Kernel socket "
        "buffers are not in RSS, for any contender.",
    }
    return notes.get(scenario, "")


def latency_note(info: dict[str, Any]) -> str:
    rate = info["rate"]
    if not rate.get("offered"):
        return f"Latency not measured: {rate.get('skipped', 'no rate')}.\n"
    if rate.get("given"):
        source = "set with --rate"
    elif rate.get("from") and rate["from"] != "direct":
        source = (
            f"half the median `l7-small` req/s of the slowest of fastlb, HAProxy and NGINX, "
            f"{rate['from']}"
        )
    else:
        source = "half the backend's own median req/s: no proxy finished `l7-small`"
    return (
        f"Offered rate: {rate['offered']:,} requests/s to /small ({source}) over "
        f"{info['options']['connections']} keep-alive connections.  wrk has no rate option, "
        "so bench/tool/paced.lua (its `delay()` hook) paces one schedule over all connections: "
        "each request takes the next slot, 1/rate s after the previous one.  wrk's timers "
        "have 1 ms resolution, so requests leave in groups of about rate/1000 per "
        "millisecond.  Latency runs from sending a request to its whole response (exact "
        "percentiles of every request).  A request whose slot passed while all connections "
        "were busy goes at once and counts as a late send; its wait before sending is not in "
        "its latency (coordinated omission), so late sends above ~1% make the percentiles "
        "optimistic.  A run under 95% of the offered rate ran again once on a fresh process.\n"
    )


def header(info: dict[str, Any]) -> list[str]:
    m = info["machine"]
    versions = ", ".join(f"{k} {short_version(v)}" for k, v in info["versions"].items())
    lines = [
        "## fastlb beside HAProxy, NGINX, proxy.py and pproxy\n",
        f"Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs ({m['usable_cpus']} usable), "
        f"{m['kernel']}, Python {m['python']}.  ",
        f"Versions: {versions}.  ",
        f"Backend: {info['backend']}.\n",
        method(info),
    ]
    layer = {"http": "L7", "tcp": "L4"}
    how = [
        f"- {contenders.BY_NAME[n].label}: "
        + "; ".join(f"{layer[m]}: {desc}" for m, desc in contenders.BY_NAME[n].modes.items())
        for n in info["contenders"]
        if n != "direct"
    ]
    lines.append("Configs (generated by bench/tool/configs.py):\n\n" + "\n".join(how) + "\n")
    return lines


def not_run(info: dict[str, Any]) -> list[str]:
    lines = []
    for name, why in info["missing"].items():
        lines.append(f"- {name} skipped: {why}.")
    for name, by_scenario in info["cannot"].items():
        reasons: dict[str, list[str]] = {}
        for scenario, why in by_scenario.items():
            reasons.setdefault(why, []).append(scenario)
        for why, scenarios in reasons.items():
            lines.append(f"- {name} has no `{'`, `'.join(scenarios)}`: {why}.")
    return ["### Not measured\n", "\n".join(lines) + "\n"] if lines else []


def failures(entries: Sequence[Entry]) -> list[str]:
    failed = [e for e in entries if "error" in e]
    if not failed:
        return []
    which = ", ".join(f"{e['contender']} ({e['scenario']} round {e['round']})" for e in failed)
    first_lines = {e["error"].splitlines()[0] for e in failed if e["error"]}
    return [
        "### Failed runs\n",
        f"{len(failed)} run(s) failed: {which}.  First lines: "
        + "; ".join(sorted(first_lines)[:10])
        + ".  The JSON has the whole messages with the contenders' logs.\n",
    ]


def render(
    info: dict[str, Any],
    entries: Sequence[Entry],
    micro_md: str = "",
) -> str:
    """The whole Markdown report."""
    meds = medians(entries)
    names = list(info["contenders"])
    scenarios = [s for s in info["scenarios"] if s in meds]
    text = header(info)
    text += ["### Summary (medians)\n", summary_table(meds, scenarios, names)]
    text.append("n/a: the contender cannot do the scenario or was not measured (see below).\n")
    for s in scenarios:
        scenario = SCENARIOS[s]
        text.append(f"### `{s}`: {scenario.title}\n")
        if scenario.kind == "slow":
            from bench.tool import slowreport  # it imports this module

            text += slowreport.section(meds, s, scenario.capped, names, info)
            continue
        if scenario.kind == "latency":
            text.append(latency_note(info))
        elif note := scenario_note(s, info["options"]):
            text.append(note + "\n")
        text.append(table(meds, s, names, scenario_columns(scenario)))
    if "latency" in info["scenarios"] and "latency" not in meds:
        text += ["### `latency`\n", latency_note(info)]
    text += ["### Spread over rounds\n", spread_table(entries, scenarios, names)]
    text.append(
        "Half the min-to-max range of each headline figure over the rounds, and the rounds "
        "that produced a figure.\n"
    )
    text += not_run(info)
    if micro_md:
        text.append(micro_md)
    text += failures(entries)
    return "\n".join(text).rstrip() + "\n"
