"""`fastlb run`: load the config, start the engine, serve until a signal.

SIGINT or SIGTERM drains: the listeners close at once and established
connections may finish until global.drain_timeout.  Exit status: 0 after a
clean stop, 2 for a bad config (nothing was bound), 1 for a runtime failure
such as an address in use."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from fastlb.config import (
    BackendConfig,
    Config,
    ConfigError,
    ListenerConfig,
    MatchConfig,
    load_config,
)

log = logging.getLogger("fastlb")

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_CONFIG = 2


def describe(config: Config) -> str:
    """A one-screen summary of a config: listeners (and their routes),
    backends and servers."""
    lines = [f"workers: {config.global_.workers}"]
    for listener in config.listeners:
        lines += _describe_listener(listener)
    for name, backend in config.backends.items():
        lines.append(f"backend {name}: {_describe_backend(backend)}")
        for server in backend.servers:
            lines.append(f"  server {server.address} weight={server.weight} state={server.state}")
    return "\n".join(lines)


def _describe_listener(listener: ListenerConfig) -> list[str]:
    default = listener.backend or "404 (no default backend)"
    lines = [f"listener {listener.name}: {listener.bind} ({listener.mode}) -> {default}"]
    for i, route in enumerate(listener.routes):
        rewrite = "".join(
            f" {key}={value}"
            for key, value in (
                ("strip_prefix", route.strip_prefix),
                ("rewrite_prefix", route.rewrite_prefix),
            )
            if value is not None
        )
        lines.append(f"  route {i}: {_describe_match(route.match)} -> {route.backend}{rewrite}")
    return lines


def _describe_match(match: MatchConfig) -> str:
    if match.matches_all:
        return "any request"
    parts = [
        f"{key}={value}"
        for key, value in (
            ("host", match.host),
            ("path", match.path),
            ("path_prefix", match.path_prefix),
            ("methods", ",".join(match.methods or ())),
            ("headers", ",".join(match.headers)),
            ("cookies", ",".join(match.cookies)),
        )
        if value
    ]
    return " ".join(parts)


def _describe_backend(backend: BackendConfig) -> str:
    text = f"{backend.balance}, {len(backend.servers)} server(s)"
    if backend.hash_key != "client_ip":
        text += f", hash_key={backend.hash_key}"
    if backend.sticky_cookie:
        text += f", sticky_cookie={backend.sticky_cookie}"
    return text


def check(path: str) -> int:
    """Validate a config file without binding anything; print the summary or
    the errors.  Returns the exit status."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    print(describe(config))
    print(f"{path}: OK")
    return EXIT_OK


def run(path: str, workers: int | None = None) -> int:
    """Run the engine on the config at path until SIGINT/SIGTERM.  Returns
    the exit status."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    if workers is not None:
        if workers < 1:
            print("--workers must be at least 1", file=sys.stderr)
            return EXIT_CONFIG
        config = config.with_workers(workers)

    from fastlb.engine import Engine

    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        log.info("received %s: draining", signal.Signals(signum).name)
        stop.set()

    engine = Engine(config)
    try:
        engine.start()
    except (OSError, ValueError) as exc:
        print(f"fastlb: cannot start: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for name, (host, port) in engine.addresses().items():
            log.info("listener %s bound on %s:%d", name, host, port)
        log.info("fastlb running with %d worker(s)", config.global_.workers)
        while not stop.wait(0.5):
            pass
    finally:
        engine.stop(drain_timeout=config.global_.drain_timeout)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped")
    return EXIT_OK
