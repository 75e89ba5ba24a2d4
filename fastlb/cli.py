"""The `fastlb` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fastlb import __version__


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastlb",
        description="fastlb: a load balancer and reverse proxy with a C data plane.",
    )
    parser.add_argument("--version", action="version", version=f"fastlb {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run the embedded default: a self-check of the parser and hash rings",
        description="Run the embedded default. Until the engine lands this is a "
        "self-check of the C HTTP parser and consistent-hash rings that prints what it did.",
    )
    demo.add_argument(
        "--keys",
        type=int,
        default=100_000,
        help="keys to spread over the demo backends (default: 100000)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from fastlb.demo import run_selfcheck

        return run_selfcheck(keys=args.keys)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
