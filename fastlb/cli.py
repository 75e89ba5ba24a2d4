"""The `fastlb` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fastlb import __version__
from fastlb.logs import FORMATS, LEVELS, setup

CONFIG_HELP = "the config file: TOML (.toml) or YAML (.yaml, .yml); see docs/CONFIG.md"


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastlb",
        description="fastlb: a load balancer and reverse proxy with a C data plane.",
    )
    parser.add_argument("--version", action="version", version=f"fastlb {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run a demo: two built-in backends behind fastlb on 127.0.0.1:8080",
        description="Start two small built-in HTTP backends and fastlb in front of them on "
        "127.0.0.1:8080 (round robin, an HTTP health check, the admin API on 127.0.0.1:9901), "
        "print what to try, and run until Ctrl-C. It needs no config file. Exit status 1 when "
        "a port is in use.",
    )
    demo.add_argument(
        "--port",
        type=int,
        default=8080,
        help="the proxy's port on 127.0.0.1 (default: 8080; 0 picks a free one)",
    )
    demo.add_argument(
        "--admin-port",
        type=int,
        default=9901,
        metavar="PORT",
        help="the admin API's port on 127.0.0.1 (default: 9901; 0 picks a free one)",
    )
    demo.add_argument(
        "--requests",
        type=int,
        metavar="N",
        help="send N requests through the proxy, print which backend answered each and a "
        "tally, then exit (0 when every request was answered and, from 2 on, both backends "
        "answered)",
    )
    demo.add_argument(
        "--selfcheck",
        action="store_true",
        help="instead, run the self-check of the C HTTP parser and hash rings",
    )
    demo.add_argument(
        "--keys",
        type=int,
        default=100_000,
        help="with --selfcheck: keys to spread over the ring backends (default: 100000)",
    )
    run = commands.add_parser(
        "run",
        help="run the load balancer in the foreground",
        description="Run fastlb in the foreground on a config file. SIGINT or SIGTERM drains "
        "gracefully, SIGHUP reloads the config, SIGUSR1 reopens the access logs. Events and "
        "errors are logged on stderr. Exit status: 2 for a bad config (nothing binds), 1 for a "
        "runtime failure.",
    )
    run.add_argument("--config", "-c", required=True, help=CONFIG_HELP)
    run.add_argument("--workers", type=int, help="data-plane threads (overrides the config)")
    run.add_argument(
        "--log-level",
        default="info",
        choices=LEVELS,
        help="the least severe level logged (default: info)",
    )
    run.add_argument(
        "--log-format",
        default="text",
        choices=FORMATS,
        help="text lines, or one JSON object per line (default: text)",
    )
    check = commands.add_parser(
        "check",
        help="validate a config file without binding anything",
        description="Validate a config file and print a summary. Exit status 0 when valid, "
        "2 with the errors when not.",
    )
    check.add_argument("--config", "-c", required=True, help=CONFIG_HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from fastlb.demo import run_demo, run_selfcheck

        if args.selfcheck:
            return run_selfcheck(keys=args.keys)
        return run_demo(port=args.port, admin_port=args.admin_port, requests=args.requests)
    if args.command == "check":
        from fastlb.runner import check

        return check(args.config)
    if args.command == "run":
        from fastlb.runner import run

        setup(args.log_level, args.log_format)
        return run(args.config, workers=args.workers)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
