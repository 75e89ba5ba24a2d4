"""Active health checks: asyncio tasks in the control plane.

Interface (wired by `fastlb run` and the controller)::

    checker = HealthChecker(config, on_change, on_weight=None)
    task = asyncio.create_task(checker.run())   # checks until cancelled
    checker.update(new_config)                  # after a reload or a server add/remove
    checker.status()                            # {(backend, address): {...}}

- ``on_change(backend, address, up, reason)`` is called exactly once per
  verdict change (the controller's set_health).  ``reason`` is the last
  check's result: "connect refused", "HTTP 503, expected 200-399",
  "timeout after 1s waiting for the response", "HTTP 200", "connected".
  Each change is also logged: ``server web/10.0.0.1:80 is DOWN (fall 3):
  connect refused`` (WARNING), ``... is UP (rise 2): HTTP 200`` (INFO).
- ``on_weight(backend, address, weight)`` (the controller's set_weight)
  carries slow start: when a server of a backend with ``slow_start`` comes
  back up, it is called with 10% of the configured weight (at least 1)
  *before* on_change(up=True), then with 20%, ..., 100% in equal steps over
  ``slow_start``, only when the value changes, ending with the configured
  weight.  The ramp stops when the server goes down again (the next
  recovery starts it over) and follows weight changes made by update().
- Callbacks run on the event loop's thread; an exception in one is logged
  and does not stop the checks.

Which servers are checked: those of backends with a ``health_check`` whose
state is not "maint"; one task per server, keyed (backend, address) with
the address as written in the config.  A check connects to the server's
resolved host and to ``health_check.port`` or the server's port.

Verdicts: a server starts UP, as in HAProxy (whose servers start at the
lowest "up" health level): it takes ``fall`` consecutive failed checks to
mark it DOWN, then ``rise`` consecutive good ones to mark it UP again.
Starting DOWN would take every server out of rotation for ``rise`` checks
at each start; the data plane's passive health already steers around a
dead server meanwhile.  The initial UP is not reported (the engine starts
with its servers up).

update() keeps the verdict and counters of the servers that stay (a check
whose settings changed restarts at once with them).  A server that is no
longer checked while DOWN (now in maint, or its backend lost its
health_check) is reported up with reason "no longer checked", and a
weight left reduced by slow start is restored, so that no server stays
held down by a check that no longer runs.  Removed servers are dropped
without a callback.  update() may be called from another thread: it then
runs on the loop's.

Timing: the first check of each server waits a random 0..min(interval, 1s)
so that they don't all fire at once; then a check starts every
``interval`` (at once if the previous one took longer: checks of one
server never overlap), and each is bounded by ``timeout`` as a whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastlb.config import Config, HealthCheckConfig
from fastlb.http import ChunkedDecoder, ParseError, Response, parse_response

log = logging.getLogger("fastlb.health")

OnChange = Callable[[str, str, bool, str], None]
OnWeight = Callable[[str, str, int], None]
Key = tuple[str, str]
T = TypeVar("T")

MAX_HEAD = 64 * 1024  # bytes of a response head
MAX_BODY = 64 * 1024  # bytes of a body searched for expect_body
READ_SIZE = 16 * 1024
MAX_JITTER = 1.0  # seconds, bound of the delay of a server's first check
SLOW_START_STEPS = 10
USER_AGENT = "fastlb-health-check"
_BODY_METHODS = ("POST", "PUT", "PATCH")


class CheckFailed(Exception):
    """A failed check; the message is the reason ("connect refused")."""


# ---- one check --------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """What a server's check does: the check settings, where it connects
    (host is an IP literal) and the Host header of an http check."""

    check: HealthCheckConfig
    host: str
    port: int
    host_header: str


def _seconds(value: float) -> str:
    """A duration as a config would write it: "1s", "50ms", "1.5s"."""
    return f"{value * 1000:g}ms" if value < 1 else f"{value:g}s"


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


class _Deadline:
    """The end of a check: every step of it awaits within the same timeout."""

    def __init__(self, timeout: float) -> None:
        self._loop = asyncio.get_running_loop()
        self.timeout = timeout
        self.end = self._loop.time() + timeout

    async def within(self, step: Awaitable[T], doing: str) -> T:
        try:
            if sys.version_info >= (3, 11):
                async with asyncio.timeout_at(self.end):
                    return await step
            # Python 3.10: wait_for may swallow a cancel that races with the
            # step's completion; the loops below stop on their own then.
            return await asyncio.wait_for(step, max(0.0, self.end - self._loop.time()))
        except asyncio.TimeoutError:
            raise CheckFailed(f"timeout after {_seconds(self.timeout)} {doing}") from None


async def _connect(
    probe: Probe, deadline: _Deadline
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        return await deadline.within(asyncio.open_connection(probe.host, probe.port), "connecting")
    except ConnectionRefusedError:
        raise CheckFailed("connect refused") from None
    except OSError as exc:
        raise CheckFailed(f"connect failed: {_os_reason(exc)}") from None


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close at once, whatever is unsent (abort never waits on the peer)."""
    writer.transport.abort()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


def _request(probe: Probe) -> bytes:
    check = probe.check
    lines = [
        f"{check.method} {check.path} HTTP/1.1",
        f"Host: {probe.host_header}",
        f"User-Agent: {USER_AGENT}",
        "Accept: */*",
        "Connection: close",
    ]
    if check.method in _BODY_METHODS:
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii", "replace")


async def _read_head(
    reader: asyncio.StreamReader, method: str, deadline: _Deadline
) -> tuple[Response, bytes]:
    """The final response head (interim 1xx heads are skipped) and the
    bytes read after it."""
    buf = b""
    while True:
        chunk = await deadline.within(reader.read(READ_SIZE), "waiting for the response")
        if not chunk:
            where = "inside the response head" if buf else "before the response"
            raise CheckFailed(f"the connection closed {where}")
        buf += chunk
        while (head := _parse_head(buf, method)) is not None:
            buf = buf[head.header_bytes :]
            if head.status >= 200 or head.status == 101:
                return head, buf


def _parse_head(data: bytes, method: str) -> Response | None:
    return parse_response(data, request_method=method, max_header_bytes=MAX_HEAD)


async def _read_body(
    reader: asyncio.StreamReader, head: Response, rest: bytes, needle: bytes, deadline: _Deadline
) -> bytes:
    """Up to MAX_BODY bytes of the body; stops early once needle is seen."""
    if not head.has_body:
        return b""
    if head.chunked:
        return await _read_chunked(reader, rest, needle, deadline)
    limit = MAX_BODY if head.content_length is None else min(head.content_length, MAX_BODY)
    body = rest[:limit]
    while len(body) < limit and needle not in body:
        chunk = await deadline.within(reader.read(READ_SIZE), "reading the body")
        if not chunk:
            break
        body += chunk
    return body[:limit]


async def _read_chunked(
    reader: asyncio.StreamReader, data: bytes, needle: bytes, deadline: _Deadline
) -> bytes:
    decoder = ChunkedDecoder()
    body = b""
    while True:
        if data:
            out, done = decoder.feed(data)
            body += out
            if done or len(body) >= MAX_BODY or needle in body:
                return body[:MAX_BODY]
        data = await deadline.within(reader.read(READ_SIZE), "reading the body")
        if not data:
            return body


async def _tcp_check(probe: Probe, deadline: _Deadline) -> str:
    _, writer = await _connect(probe, deadline)
    await _close(writer)
    return "connected"


async def _http_check(probe: Probe, deadline: _Deadline) -> str:
    check = probe.check
    reader, writer = await _connect(probe, deadline)
    try:
        writer.write(_request(probe))
        await deadline.within(writer.drain(), "sending the request")
        head, rest = await _read_head(reader, check.method, deadline)
        if not check.expects(head.status):
            raise CheckFailed(f"HTTP {head.status}, expected {check.expect_text}")
        if check.expect_body is not None:
            needle = check.expect_body.encode("utf-8")
            if needle not in await _read_body(reader, head, rest, needle, deadline):
                raise CheckFailed(
                    f"HTTP {head.status}, but the body does not contain {check.expect_body!r}"
                )
        return f"HTTP {head.status}"
    finally:
        await _close(writer)


async def probe(target: Probe) -> tuple[bool, str]:
    """Run one check: (passed, reason).  Never raises for a failed check."""
    deadline = _Deadline(target.check.timeout)
    run = _tcp_check if target.check.type == "tcp" else _http_check
    try:
        return True, await run(target, deadline)
    except CheckFailed as exc:
        return False, str(exc)
    except ParseError as exc:
        return False, f"bad response: {exc}"
    except OSError as exc:
        return False, _os_reason(exc)


# ---- the checked servers ----------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    """A checked server as the current config describes it."""

    backend: str
    address: str
    probe: Probe
    weight: int
    slow_start: float | None

    @property
    def name(self) -> str:
        return f"{self.backend}/{self.address}"


@dataclass
class _Server:
    """A checked server's spec, verdict and counters, and its tasks."""

    spec: _Spec
    up: bool = True
    successes: int = 0  # consecutive
    failures: int = 0  # consecutive
    checks: int = 0
    passed: int = 0  # checks that passed, in all
    last_ok: bool | None = None
    last_error: str | None = None
    last_check: float | None = None  # time.time()
    last_duration: float | None = None
    since: float = field(default_factory=time.time)  # of the current verdict
    weight_set: int | None = None  # the last weight given to on_weight
    task: asyncio.Task[None] | None = None
    ramp: asyncio.Task[None] | None = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "up": self.up,
            "type": self.spec.probe.check.type,
            "successes": self.successes,
            "failures": self.failures,
            "checks": self.checks,
            "passed": self.passed,
            "last_ok": self.last_ok,
            "last_error": self.last_error,
            "last_check": self.last_check,
            "last_duration": self.last_duration,
            "since": self.since,
            "weight": self.spec.weight if self.weight_set is None else self.weight_set,
            "slow_start": self.ramp is not None,
        }


def _host_header(address: str, port: int) -> str:
    """The server's host as written in its address, with the checked port."""
    return f"{address.rpartition(':')[0]}:{port}"


def _checked(config: Config) -> dict[Key, _Spec]:
    """The servers that config has checked: not in maint, in a backend
    with a health_check."""
    out: dict[Key, _Spec] = {}
    for name, backend in config.backends.items():
        check = backend.health_check
        if check is None:
            continue
        for server in backend.servers:
            if server.state == "maint":
                continue
            port = check.port or server.port
            host = check.host or _host_header(server.address, port)
            target = Probe(check, server.host, port, host)
            spec = _Spec(name, server.address, target, server.weight, backend.slow_start)
            out[(name, server.address)] = spec
    return out


def _weights(config: Config) -> dict[Key, int]:
    """The configured weight of every server of config."""
    return {
        (name, server.address): server.weight
        for name, backend in config.backends.items()
        for server in backend.servers
    }


def ramp_weight(weight: int, step: int) -> int:
    """The weight at slow-start step 1..SLOW_START_STEPS: step/10 of it, at
    least 1 (a server configured with weight 0 stays at 0)."""
    if weight <= 0:
        return 0
    return max(1, weight * step // SLOW_START_STEPS)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class HealthChecker:
    """Runs the active health checks of a config; see the module docstring."""

    def __init__(
        self, config: Config, on_change: OnChange, on_weight: OnWeight | None = None
    ) -> None:
        self._on_change = on_change
        self._on_weight = on_weight
        self._servers: dict[Key, _Server] = {
            key: _Server(spec) for key, spec in _checked(config).items()
        }
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rng = random.Random()

    async def run(self) -> None:
        """Check every checked server until cancelled."""
        if self._loop is not None:
            raise RuntimeError("HealthChecker.run() is already running")
        self._loop = asyncio.get_running_loop()
        try:
            for server in self._servers.values():
                self._start(server)
            await self._loop.create_future()  # until cancelled
        finally:
            tasks = [task for server in self._servers.values() for task in self._stop(server)]
            self._loop = None
            await asyncio.gather(*tasks, return_exceptions=True)

    def update(self, config: Config) -> None:
        """Check what config says, keeping the verdicts of the servers that stay."""
        loop = self._loop
        if loop is not None and _running_loop() is not loop:
            loop.call_soon_threadsafe(self._apply, config)
        else:
            self._apply(config)

    def status(self) -> dict[Key, dict[str, Any]]:
        """{(backend, address): {up, type, successes, failures (consecutive),
        checks, last_ok, last_error, last_check, last_duration (seconds),
        since (time.time() of the current verdict), weight, slow_start}} of
        the checked servers."""
        return {key: server.snapshot() for key, server in self._servers.copy().items()}

    # ---- tasks ----------------------------------------------------------

    def _start(self, server: _Server) -> None:
        if self._loop is not None:
            server.task = self._loop.create_task(
                self._check_loop(server), name=f"health check {server.spec.name}"
            )

    def _stop(self, server: _Server) -> list[asyncio.Task[None]]:
        tasks = [task for task in (server.task, server.ramp) if task is not None]
        for task in tasks:
            task.cancel()
        server.task = server.ramp = None
        return tasks

    async def _check_loop(self, server: _Server) -> None:
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        interval = server.spec.probe.check.interval
        await asyncio.sleep(self._rng.uniform(0.0, min(interval, MAX_JITTER)))
        while server.task is me:  # else stopped or replaced, even if a cancel got lost
            target = server.spec.probe
            started = loop.time()
            ok, reason = await self._probe(target)
            if server.task is not me:
                return
            self._record(server, ok, reason, loop.time() - started)
            await asyncio.sleep(max(0.0, started + target.check.interval - loop.time()))

    async def _probe(self, target: Probe) -> tuple[bool, str]:
        try:
            return await probe(target)
        except Exception as exc:  # a bug must not end the server's checks
            log.exception("health check of %s:%d failed", target.host, target.port)
            return False, f"check error: {exc!r}"

    # ---- verdicts -------------------------------------------------------

    def _record(self, server: _Server, ok: bool, reason: str, duration: float) -> None:
        check = server.spec.probe.check
        server.checks += 1
        server.passed += 1 if ok else 0
        server.last_ok = ok
        server.last_check = time.time()
        server.last_duration = duration
        if ok:
            server.successes += 1
            server.failures = 0
            if not server.up and server.successes >= check.rise:
                self._mark_up(server, reason)
        else:
            server.failures += 1
            server.successes = 0
            server.last_error = reason
            log.debug("server %s: check failed: %s", server.spec.name, reason)
            if server.up and server.failures >= check.fall:
                self._mark_down(server, reason)

    def _mark_down(self, server: _Server, reason: str) -> None:
        server.up = False
        server.since = time.time()
        self._cancel_ramp(server)
        spec = server.spec
        log.warning("server %s is DOWN (fall %d): %s", spec.name, spec.probe.check.fall, reason)
        self._call(self._on_change, spec.backend, spec.address, False, reason)

    def _mark_up(self, server: _Server, reason: str) -> None:
        server.up = True
        server.since = time.time()
        spec = server.spec
        ramp = spec.slow_start is not None and self._on_weight is not None
        log.info(
            "server %s is UP (rise %d): %s%s",
            spec.name,
            spec.probe.check.rise,
            reason,
            f"; slow start over {_seconds(spec.slow_start or 0)}" if ramp else "",
        )
        if ramp:
            self._set_weight(server, ramp_weight(spec.weight, 1))
        elif server.weight_set not in (None, spec.weight):
            self._set_weight(server, spec.weight)
        self._call(self._on_change, spec.backend, spec.address, True, reason)
        if ramp and self._loop is not None:
            server.ramp = self._loop.create_task(self._ramp(server), name=f"slow start {spec.name}")

    async def _ramp(self, server: _Server) -> None:
        """Steps 2..10 of a slow start (step 1 was set when it came up)."""
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        start = loop.time()
        for step in range(2, SLOW_START_STEPS + 1):
            duration = server.spec.slow_start or 0.0
            delay = start + duration * (step - 1) / (SLOW_START_STEPS - 1) - loop.time()
            await asyncio.sleep(max(0.0, delay))
            if server.ramp is not me:
                return
            weight = ramp_weight(server.spec.weight, step)
            if weight != server.weight_set:
                self._set_weight(server, weight)
        server.ramp = None

    def _cancel_ramp(self, server: _Server) -> None:
        if server.ramp is not None:
            server.ramp.cancel()
            server.ramp = None

    def _set_weight(self, server: _Server, weight: int) -> None:
        server.weight_set = weight
        if self._on_weight is not None:
            self._call(self._on_weight, server.spec.backend, server.spec.address, weight)

    def _call(self, callback: Callable[..., None], *args: object) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("health callback %r%r failed", callback, args)

    # ---- update ---------------------------------------------------------

    def _apply(self, config: Config) -> None:
        wanted = _checked(config)
        weights = _weights(config)
        for key in [key for key in self._servers if key not in wanted]:
            server = self._servers.pop(key)
            self._stop(server)
            if key in weights:
                self._unchecked(server, weights[key])
        for key, spec in wanted.items():
            server = self._servers.get(key)
            if server is None:
                server = self._servers[key] = _Server(spec)
                self._start(server)
            else:
                self._respec(server, spec)

    def _unchecked(self, server: _Server, weight: int) -> None:
        """A server that stays but is no longer checked: not held down by
        the check nor by a slow start."""
        spec = server.spec
        if server.weight_set not in (None, weight):
            server.weight_set = weight
            if self._on_weight is not None:
                self._call(self._on_weight, spec.backend, spec.address, weight)
        if not server.up:
            log.info("server %s is no longer checked: counted as up", spec.name)
            self._call(self._on_change, spec.backend, spec.address, True, "no longer checked")

    def _respec(self, server: _Server, spec: _Spec) -> None:
        old, server.spec = server.spec, spec
        if spec.probe != old.probe and server.task is not None:
            server.task.cancel()
            self._start(server)
        if server.ramp is not None and spec.slow_start is None:
            self._cancel_ramp(server)
            self._set_weight(server, spec.weight)
