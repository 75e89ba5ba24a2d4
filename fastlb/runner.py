"""`fastlb run`: load the config, start the engine, serve until a signal.

The main thread handles signals; the admin API (fastlb/admin.py) and the
active health checks (fastlb/health.py) share an asyncio loop in a
background thread (control.LoopThread), so that they go on answering while
the main thread drains.  SIGINT or SIGTERM drains: /ready turns 503, the
listeners close at once and established connections may finish until
global.drain_timeout.  SIGHUP reloads the config file; SIGUSR1 reopens
the access log files (after a rotation).  Events and errors are logged
through Python logging (fastlb/logs.py sets up text or JSON).  Exit status:
0 after a clean stop, 2 for a bad config (nothing was bound), 1 for a
runtime failure such as an address in use (a listener's or the admin
API's)."""

from __future__ import annotations

import logging
import queue
import signal
import sys
import time
from typing import TYPE_CHECKING

from fastlb.config import (
    BackendConfig,
    Config,
    ConfigError,
    ListenerConfig,
    MatchConfig,
    load_config,
)

if TYPE_CHECKING:
    from fastlb.admin import AdminServer
    from fastlb.control import Controller, LoopThread

log = logging.getLogger("fastlb")

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_CONFIG = 2
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1)


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
    lines.append(_describe_admin(config))
    return "\n".join(lines)


def _describe_admin(config: Config) -> str:
    admin = config.admin
    if not admin.enabled:
        return "admin API: disabled"
    token = "token set" if admin.token is not None else "no token in the config"
    state = f"state file {admin.state_file}" if admin.state_file else "changes not persisted"
    return f"admin API: http://{admin.bind} ({token}, {state})"


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
    """Run fastlb on the config at path until SIGINT/SIGTERM (SIGHUP
    reloads, SIGUSR1 reopens the access logs).  Errors are logged, never
    with a traceback for a user error.  Returns the exit status."""
    if workers is not None and workers < 1:
        log.error("--workers must be at least 1", extra={"event": "error"})
        return EXIT_CONFIG
    try:
        config = load_config(path)
    except ConfigError as exc:
        log.error(
            "invalid config, nothing was bound:\n%s",
            exc,
            extra={"event": "error", "config": path, "errors": exc.errors},
        )
        return EXIT_CONFIG
    log.info(
        "starting: config %s, %d listener(s), %d backend(s)",
        path,
        len(config.listeners),
        len(config.backends),
        extra={"event": "startup", "config": path},
    )

    from fastlb.control import Controller, StateError

    # Signals are queued from now on, so that one sent during the start
    # drains cleanly once serving.
    received: queue.SimpleQueue[int] = queue.SimpleQueue()
    previous = {sig: signal.signal(sig, lambda n, _: received.put(n)) for sig in SIGNALS}
    try:
        try:
            controller = Controller(config, path=path, workers=workers)
            controller.start()
        except (OSError, ValueError, StateError) as exc:
            log.error("cannot start: %s", exc, extra={"event": "error"})
            return EXIT_RUNTIME
        return _run(controller, received)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(controller: Controller, received: queue.SimpleQueue[int]) -> int:
    """Serve a started controller: the admin API, the health checks, the
    signals; then drain and stop."""
    from fastlb.control import LoopThread

    loop = LoopThread()
    loop.start()
    admin = None
    try:
        if controller.base.admin.enabled:
            admin = _start_admin(controller, loop)
            if admin is None:
                return EXIT_RUNTIME
        _start_health(controller, loop)
        for name, (host, port) in controller.addresses().items():
            log.info(
                "listener %s bound on %s:%d",
                name,
                host,
                port,
                extra={"event": "startup", "listener": name, "address": f"{host}:{port}"},
            )
        workers = controller.base.global_.workers
        log.info(
            "fastlb running with %d worker(s)",
            workers,
            extra={"event": "startup", "workers": workers},
        )
        _serve(controller, received)
        controller.stop(drain_timeout=controller.base.global_.drain_timeout)
    finally:
        controller.stop()
        if admin is not None:
            admin.stop()
        loop.stop()
    log.info("stopped", extra={"event": "stop"})
    return EXIT_OK


def _start_admin(controller: Controller, loop: LoopThread) -> AdminServer | None:
    """Serve the admin API; None (after saying why) when it cannot bind."""
    from fastlb.admin import AdminServer, resolve_token

    admin = AdminServer(controller)
    try:
        admin.start(loop)
    except OSError as exc:
        bind = controller.base.admin.bind
        log.error("cannot start the admin API on %s: %s", bind, exc, extra={"event": "error"})
        return None
    settings = controller.base.admin
    log.info("admin API on %s", admin.url, extra={"event": "startup", "admin_url": admin.url})
    if resolve_token(controller) is None:
        log.warning(
            "admin API: no token set, changes are refused "
            "(set token in [admin] or the FASTLB_ADMIN_TOKEN environment variable)"
        )
    if settings.state_file is None:
        log.info("admin API: runtime changes are not persisted (no [admin] state_file)")
    return admin


def _start_health(controller: Controller, loop: LoopThread) -> None:
    """Run the active health checks on the control loop; they follow the
    configured servers through admin changes and reloads."""
    from fastlb.health import HealthChecker

    checker = HealthChecker(controller.configured(), controller.set_health, controller.set_weight)
    controller.subscribe(checker.update)
    controller.check_status = checker.status
    loop.submit(checker.run())


def _serve(controller: Controller, received: queue.SimpleQueue[int]) -> None:
    """Handle the queued signals until SIGINT or SIGTERM: SIGHUP reloads,
    SIGUSR1 reopens the access logs; the others return, with fastlb marked
    not ready (/ready says 503)."""
    while True:
        try:
            signum = received.get(timeout=0.5)
        except queue.Empty:
            continue
        if signum == signal.SIGHUP:
            _reload(controller)
            continue
        if signum == signal.SIGUSR1:
            reopen_logs(controller)
            continue
        name = signal.Signals(signum).name
        controller.begin_shutdown()
        _grace(controller, received, name)
        log.info("received %s: draining", name, extra={"event": "stop", "signal": name})
        return


def _grace(controller: Controller, received: queue.SimpleQueue[int], name: str) -> None:
    """Keep the listeners open for global.grace while /ready says 503, so
    that health checks in front take fastlb out before it stops accepting.
    A second SIGINT or SIGTERM ends the wait early; SIGHUP and SIGUSR1 are
    ignored then (no reload while leaving)."""
    grace = controller.base.global_.grace
    if grace <= 0:
        return
    log.info(
        "received %s: not ready, listeners stay open for %gs (global.grace)",
        name,
        grace,
        extra={"event": "stop", "signal": name, "grace": grace},
    )
    deadline = time.monotonic() + grace
    while (left := deadline - time.monotonic()) > 0:
        try:
            signum = received.get(timeout=left)
        except queue.Empty:
            return
        if signum in (signal.SIGINT, signal.SIGTERM):
            log.info("received %s again: grace cut short", signal.Signals(signum).name)
            return


def _reload(controller: Controller) -> None:
    log.info("received SIGHUP: reloading", extra={"event": "reload", "signal": "SIGHUP"})
    try:
        controller.reload()
    except ConfigError as exc:
        log.error(
            "reload refused, nothing changed:\n%s",
            exc,
            extra={"event": "reload", "result": "error", "errors": exc.errors},
        )
    except Exception as exc:  # the engine refused it; keep running the old config
        log.error(
            "reload failed, nothing changed: %s", exc, extra={"event": "reload", "result": "error"}
        )


def reopen_logs(controller: Controller) -> bool:
    """Reopen the access log files (SIGUSR1, after logrotate moved them):
    each listener's access_log is opened again by its path.  Returns whether
    the engine did it."""
    event = {"event": "reopen_logs", "signal": "SIGUSR1"}
    log.info("received SIGUSR1: reopening the access logs", extra=event)
    reopen = getattr(controller.engine, "reopen_logs", None)
    if reopen is None:
        log.warning("the engine cannot reopen its access logs: not supported", extra=event)
        return False
    try:
        reopen()
    except Exception as exc:  # keep serving; the old files stay open
        log.error("reopening the access logs failed: %s", exc, extra=event)
        return False
    log.info("access logs reopened", extra=event)
    return True
