"""Micro benchmarks of the hot paths, beside their Python peers.

    python -m bench.micro [--passes 3] [--json out.json] [--no-c]

Runs the pytest-benchmark files (bench/bench_*.py) several passes in turn, so
that fastlb and its peers are measured interleaved, takes the median of each
benchmark's per-pass medians, prints them with the ratios the targets are
stated in, then builds and runs the C benchmarks (make -C bench run-c)."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
FILES = ["bench_http.py", "bench_hashring.py"]

# (label, fastlb benchmark, peer benchmark, target ratio peer/fastlb)
RATIOS = [
    (
        "parse_request vs httptools",
        "bench_fastlb_parse_request",
        "bench_httptools_parse_request",
        3.0,
    ),
    ("Maglev.lookup vs uhashring", "bench_fastlb_maglev_lookup", "bench_uhashring_get_node", 10.0),
    ("Ring.lookup vs uhashring", "bench_fastlb_ring_lookup", "bench_uhashring_get_node", None),
]
# (label, benchmark, limit in seconds)
LIMITS = [("Maglev build, 100 backends, M=65537", "bench_fastlb_maglev_build_100", 5e-3)]


def _one_pass(json_path: Path) -> dict[str, float]:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        *[str(BENCH_DIR / f) for f in FILES],
        "--benchmark-enable",
        "--benchmark-only",
        "--benchmark-warmup=on",
        "--benchmark-min-time=0.0002",
        "--benchmark-max-time=1.0",
        f"--benchmark-json={json_path}",
        "--benchmark-disable-gc",
    ]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    data = json.loads(json_path.read_text())
    return {b["name"]: b["stats"]["median"] for b in data["benchmarks"]}


def _fmt(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.2f} us"
    return f"{seconds * 1e9:.0f} ns"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the medians here")
    parser.add_argument("--no-c", action="store_true", help="skip the C benchmarks")
    args = parser.parse_args(argv)

    runs: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.passes):
            print(f"pass {i + 1}/{args.passes} ...", file=sys.stderr)
            for name, median in _one_pass(Path(tmp) / f"pass{i}.json").items():
                runs.setdefault(name, []).append(median)
    medians = {name: statistics.median(v) for name, v in runs.items()}

    print(f"\nPython micro benchmarks (median of {args.passes} interleaved passes)")
    for name in sorted(medians):
        print(f"  {name:<36} {_fmt(medians[name]):>10}")
    failed = 0
    print("\nRatios (peer time / fastlb time)")
    for label, ours, peer, target in RATIOS:
        ratio = medians[peer] / medians[ours]
        verdict = (
            ""
            if target is None
            else (f"  target >= {target:.0f}x: {'met' if ratio >= target else 'NOT MET'}")
        )
        failed += target is not None and ratio < target
        print(f"  {label:<30} {ratio:6.1f}x{verdict}")
    for label, name, limit in LIMITS:
        ok = medians[name] <= limit
        failed += not ok
        print(
            f"  {label:<36} {_fmt(medians[name])}  target <= {_fmt(limit)}: "
            f"{'met' if ok else 'NOT MET'}"
        )
    if args.json:
        args.json.write_text(json.dumps({"medians_s": medians, "runs_s": runs}, indent=2))

    if not args.no_c:
        print("\nC micro benchmarks (make -C bench run-c)")
        sys.stdout.flush()
        subprocess.run(["make", "-s", "-C", str(BENCH_DIR), "run-c"], check=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
