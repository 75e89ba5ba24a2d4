"""The report's `slow-clients` section: for each proxy and attack, req/s
with no attack and under it, their ratio against the bar, wrk's errors, the
connections the attacker held, RSS before, during and after, and req/s
after the attack."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.tool import configs, contenders, slowclients
from bench.tool.report import Medians, fmt_count, fmt_ratio
from bench.tool.slowclients import ATTACKS, BAR

HEAD = (
    "| contender | attack | connections held | req/s, no attack | req/s under attack | ratio "
    f"| ≥ {BAR:.2f} | errors under attack | RSS before → during → after "
    "| proxy closed them in | req/s after (ratio) |"
)


def fmt_mib(value: float | None) -> str:
    return "—" if value is None else f"{value / 1024**2:,.1f} MiB"


def fmt_errors(errors: float | None, requests: float | None) -> str:
    """wrk's errors; wrk counts no error for requests that never got an answer."""
    if requests == 0:
        return f"{fmt_count(errors)} (no response at all)"
    return fmt_count(errors)


def fmt_release(seconds: float | None, unreleased: float | None) -> str:
    """How long the proxy took to close the attack's connections once the
    attacker had (the median over rounds)."""
    if unreleased is None:
        return "—"
    if unreleased >= 0.5 or seconds is None:
        return f"not in {slowclients.RELEASE_TIMEOUT_S:g} s"
    return f"{seconds:.2f} s"


def verdict(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    return "yes" if ratio >= BAR else "**no**"


def rows(meds: Medians, scenario: str, names: Sequence[str], cap: int | None) -> list[str]:
    here = meds.get(scenario, {})
    lines = [HEAD, "|---|---|" + "---:|" * 9]
    for name in names:
        if name not in here:
            continue
        m = here[name]
        for a in ATTACKS:
            got = {f: m.get(f"{a.name}.{f}") for f in slowclients.PER_ATTACK}
            held = got["held_at_stop"]
            rss = " → ".join(fmt_mib(got[f]) for f in ("rss_before", "rss_during", "rss_after"))
            cells = [
                contenders.BY_NAME[name].label,
                f"`{a.name}`",
                f"{fmt_count(held)} of {slowclients.connections(a, cap):,}",
                fmt_count(m.get("ok_per_s")),
                fmt_count(got["ok_per_s"]),
                fmt_ratio(got["ratio"]),
                verdict(got["ratio"]),
                fmt_errors(got["errors"], got["requests"]),
                rss,
                fmt_release(got["release_s"], got["unreleased"]),
                f"{fmt_count(got['after_ok_per_s'])} ({fmt_ratio(got['recovery'])})",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def fastlb_line(meds: Medians, scenario: str) -> str:
    """Whether fastlb meets the bar under every attack."""
    m = meds.get(scenario, {}).get("fastlb")
    if not m:
        return ""
    got = {a.name: m.get(f"{a.name}.ratio") for a in ATTACKS}
    shown = ", ".join(f"`{n}` {fmt_ratio(r)}" for n, r in got.items())
    met = all(r is not None and r >= BAR for r in got.values())
    word = "meets" if met else "does **not** meet"
    return f"fastlb {word} the bar (≥ {BAR:.2f} under every attack): {shown}.\n"


def note(options: dict[str, Any], nofile: int) -> str:
    cap = options.get("attack_conns")
    attacks = "; ".join(
        f"`{a.name}`: {slowclients.connections(a, cap):,} {a.what}" for a in ATTACKS
    )
    return (
        "One fresh proxy process per run: wrk (as in `l7-small`, keep-alive to /small) with no "
        "attack, then under each attack in turn.  "
        f"Attacks (bench/tool/attack.py, one non-blocking process, {slowclients.OPEN_RATE:,.0f} "
        f"connections opened per second, closed ones reopened): {attacks}.  "
        "wrk runs once the attack's connections are up and while they stay open; then the "
        "attacker closes them (RST) and a "
        f"{slowclients.RECOVERY_S} s wrk run gives req/s after.  req/s count 2xx/3xx "
        "responses only; the ratio is req/s under attack over req/s with no attack on the "
        "same process (the median of each round's ratio, not the ratio of the medians "
        f"shown), and the bar (≥ {BAR:.2f}) is fastlb's.  Errors are wrk's socket "
        "errors (connect, read, write, timeout) and non-2xx responses under attack.  RSS is "
        "the proxy's process tree (psutil) before the attack, at the end of wrk's run under "
        "it, and after the run that follows once the proxy has closed the attack's "
        f"connections (or {slowclients.RELEASE_TIMEOUT_S:g} s later, when it had not).  "
        "The slow route, /slow, is answered by the backend only after the attack.  "
        "Configs as in the other L7 scenarios, timeouts at each proxy's defaults or its "
        f"example configs': HAProxy `timeout http-request 10s`, `timeout client "
        f"{configs.IDLE_TIMEOUT_S}s`, maxconn {configs.haproxy_maxconn(nofile):,}; NGINX "
        "`client_header_timeout` and `client_body_timeout` at their default 60 s, "
        f"worker_connections {configs.nginx_worker_connections(nofile):,}; fastlb with no "
        "timeout or buffer key set (its defaults); each with RLIMIT_NOFILE "
        f"{nofile:,}.\n"
    )


def section(
    meds: Medians, scenario: str, capped: bool, names: Sequence[str], info: dict[str, Any]
) -> list[str]:
    """The scenario's note, its table and the fastlb verdict."""
    options = info["options"]
    table = "\n".join(rows(meds, scenario, names, options.get("attack_conns"))) + "\n"
    out = [note(options, info["nofile"])]
    if capped:
        out.append(
            f"Each proxy's process tree is held to {options.get('cap_cpus')} CPU per worker "
            "(a cgroup CFS quota, as in `l7-capped`); wrk, the backend and the attacker are "
            "not.\n"
        )
    out.append(table)
    if line := fastlb_line(meds, scenario):
        out.append(line)
    return out
