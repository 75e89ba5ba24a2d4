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
    run = commands.add_parser(
        "run",
        help="run the load balancer in the foreground",
        description="Run fastlb in the foreground on a config file. SIGINT or SIGTERM drains "
        "gracefully. Exit status: 2 for a bad config (nothing binds), 1 for a runtime failure.",
    )
    run.add_argument("--config", "-c", required=True, help="the TOML config file")
    run.add_argument("--workers", type=int, help="data-plane threads (overrides the config)")
    run.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log level (default: info)",
    )
    check = commands.add_parser(
        "check",
        help="validate a config file without binding anything",
        description="Validate a config file and print a summary. Exit status 0 when valid, "
        "2 with the errors when not.",
    )
    check.add_argument("--config", "-c", required=True, help="the TOML config file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from fastlb.demo import run_selfcheck

        return run_selfcheck(keys=args.keys)
    if args.command == "check":
        from fastlb.runner import check

        return check(args.config)
    if args.command == "run":
        import logging

        from fastlb.runner import run

        logging.basicConfig(
            level=args.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        return run(args.config, workers=args.workers)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
