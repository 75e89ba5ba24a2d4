"""Runtime control of a running engine: the one place that changes it.

A Controller owns the Engine and the base Config (the file's).  Over the
base it keeps

- the admin API's server overrides (fastlb/state.py: weight and state
  patches, added and removed servers), persisted to `[admin] state_file`
  and replayed on start;
- the servers draining on their way out;
- the health checker's verdicts and slow-start weights (not persisted): a
  server whose checks fail runs as "down" while its admin state is "up".

configured() is base + overrides (what the operator asked for);
effective() adds the health checker's view, and is what the engine runs.
Every change builds them, swaps the effective config into the engine with
Engine.update (no connection is dropped) and, for admin changes, persists
the overrides; all of it under one lock, since changes come from the admin
API, the health checker and signal handling, on different threads.

Nothing here knows HTTP: errors are NotFound, Conflict and Invalid, which
the admin API maps onto status codes.  LoopThread is the asyncio loop that
the admin API and the health checks share.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from pydantic import ValidationError

from fastlb import state
from fastlb.addresses import lookup_key
from fastlb.config import BackendConfig, Config, ServerConfig, load_config, same_server
from fastlb.engine import Engine
from fastlb.state import Key, Overrides, StateError, describe

__all__ = [
    "ADMIN_STATES",
    "Conflict",
    "ControlError",
    "Controller",
    "Invalid",
    "LoopThread",
    "NotFound",
    "StateError",
]

log = logging.getLogger("fastlb.control")
T = TypeVar("T")

# Admin API state -> config state, and back.
ADMIN_STATES = {"ready": "up", "drain": "drain", "maint": "maint"}
_API_STATE = {"up": "ready", "drain": "drain", "maint": "maint", "down": "down"}
_HEALTH = {True: "up", False: "down", None: "unknown"}


class ControlError(Exception):
    """A change that cannot be made; nothing was changed."""

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class NotFound(ControlError):
    """No such backend or server."""


class Conflict(ControlError):
    """The change contradicts the current state (a server exists already,
    is being removed, is a backend's last one; fastlb is stopping)."""


class Invalid(ControlError):
    """A value out of range, an unknown state."""


@dataclass(frozen=True)
class _State:
    """Everything the effective config is made of; replaced whole."""

    base: Config
    overrides: Overrides
    draining: Mapping[Key, ServerConfig] = field(default_factory=dict)
    health: Mapping[Key, bool] = field(default_factory=dict)
    weights: Mapping[Key, int] = field(default_factory=dict)  # slow start

    def build(self) -> tuple[Config, Config]:
        """(configured, effective)."""
        try:
            configured = state.apply(self.base, self.overrides, self.draining)
            down = [key for key, up in self.health.items() if not up]
            return configured, state.with_runtime(configured, down, self.weights)
        except ValidationError as exc:
            messages = state.validation_messages(exc)
            raise Invalid("the change makes an invalid config", messages) from None


class Controller:
    """The running engine, its base config and the runtime overrides."""

    def __init__(
        self,
        config: Config,
        *,
        path: str | None = None,
        workers: int | None = None,
        engine_params: Mapping[str, int | bool] | None = None,
    ) -> None:
        """config: the file's (path, for reload()).  workers: the --workers
        override, kept across reloads.  Reads and replays the state file;
        raises StateError when it exists but cannot be read."""
        self._lock = threading.RLock()
        self._path = path
        self._workers = workers
        self._params = dict(engine_params or {})
        self._state_file = config.admin.state_file
        base = self._with_workers(config)
        loaded, dropped = state.load(self._state_file) if self._state_file else (Overrides(), [])
        overrides, conflicts = state.reconcile(base, loaded)
        self.warnings = dropped + conflicts
        for warning in self.warnings:
            log.warning("state file %s: %s", self._state_file, warning)
        self._state = _State(base, overrides)
        self._configured, self._effective = self._state.build()
        self._reasons: dict[Key, str] = {}
        self._engine: Engine | None = None
        self._stopping = False
        self._subscribers: list[Callable[[Config], None]] = []
        self.reloads = {"ok": 0, "error": 0}
        # The health checker's per-server status (HealthChecker.status), set by
        # whoever runs one; the metrics read it.
        self.check_status: Callable[[], Mapping[Key, Mapping[str, Any]]] | None = None

    # ---- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Start the engine on the effective config.  Raises OSError (an
        address in use) or ValueError like Engine.start."""
        with self._lock:
            if self._engine is not None:
                raise RuntimeError("already started")
            engine = Engine(self._effective, **self._params)
            engine.start()
            self._engine = engine

    def begin_shutdown(self) -> None:
        """Mark fastlb as stopping: not ready, no more changes."""
        with self._lock:
            self._stopping = True

    def stop(self, drain_timeout: float | None = None) -> None:
        """Stop the engine, letting connections finish for drain_timeout."""
        self.begin_shutdown()
        engine = self._engine
        if engine is not None:
            engine.stop(drain_timeout=drain_timeout)

    @property
    def engine(self) -> Engine | None:
        return self._engine

    @property
    def ready(self) -> bool:
        """Whether the listeners are bound and fastlb is not stopping."""
        return self._engine is not None and self._engine.running and not self._stopping

    @property
    def stopping(self) -> bool:
        return self._stopping

    def subscribe(self, callback: Callable[[Config], None]) -> None:
        """Call callback(configured()) after each change of it (the health
        checker follows added and removed servers and reloads this way)."""
        self._subscribers.append(callback)

    # ---- reads ------------------------------------------------------------------

    @property
    def base(self) -> Config:
        """The config as the file has it (with the --workers override)."""
        return self._state.base

    def configured(self) -> Config:
        """base + the admin overrides (draining servers in state drain)."""
        return self._configured

    def effective(self) -> Config:
        """configured() + the health checker's verdicts and weights: what
        the engine runs."""
        return self._effective

    def overrides(self) -> Overrides:
        return self._state.overrides

    def health(self) -> dict[Key, bool]:
        """The health checker's verdicts: (backend, address) -> up."""
        return dict(self._state.health)

    def stats(self) -> dict[str, Any]:
        """Engine.stats(), or {} before start."""
        engine = self._engine
        return engine.stats() if engine is not None else {}

    def addresses(self) -> dict[str, tuple[str, int]]:
        engine = self._engine
        return engine.addresses() if engine is not None else {}

    def servers(self, backend: str, stats: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Each server of a backend as the admin API shows it: its config,
        the states (effective, admin, health), where it comes from, and the
        engine's counters (from `stats`, an Engine.stats(), else read now).
        Raises NotFound."""
        stats = self.stats() if stats is None else stats
        counters = stats.get("backends", {}).get(backend, {}).get("servers", {})
        with self._lock:
            st = self._state
            configured = {s.address: s for s in _backend(self._configured, backend).servers}
            base = {s.address for s in _backend(st.base, backend).servers}
            out = []
            for server in _backend(self._effective, backend).servers:
                key = (backend, server.address)
                entry = {
                    "address": server.address,
                    "weight": server.weight,
                    "max_conn": server.max_conn,
                    "state": server.state,
                    "admin_state": _API_STATE[configured[server.address].state],
                    "health": _HEALTH[st.health.get(key)],
                    "source": "config" if server.address in base else "runtime",
                    "overridden": st.overrides.kind(key) is not None,
                    "removing": key in st.draining,
                    "stats": counters.get(server.address, {}),
                }
                if key in self._reasons:
                    entry["health_reason"] = self._reasons[key]
                out.append(entry)
            return out

    def server(self, backend: str, address: str) -> dict[str, Any]:
        """One entry of servers(); raises NotFound.  The address may be
        spelled any way that names the server (fastlb/addresses.py)."""
        address = lookup_key(address)
        for entry in self.servers(backend):
            if entry["address"] == address:
                return entry
        raise NotFound(f"backend '{backend}' has no server {address}")

    # ---- admin changes (persisted) -------------------------------------------------

    def add_server(
        self,
        backend: str,
        address: str,
        *,
        weight: int = 1,
        max_conn: int = 0,
        state: str = "ready",
    ) -> ServerConfig:
        """Add a server to a backend.  state: ready, drain or maint.  The
        address is made canonical; one at the endpoint of a server the
        backend has, under any spelling, is a Conflict.  Returns the server
        as added: a server of the config file that was removed comes back
        under the file's address."""
        values = {"weight": weight, "max_conn": max_conn, "state": _config_state(state)}
        server = _validated(address, values)
        with self._lock:
            st = self._open()
            for other in _backend(self._configured, backend).servers:
                if other.endpoint == server.endpoint:
                    raise Conflict(self._taken(backend, server, other))
            base_server = next(
                (s for s in _backend(st.base, backend).servers if s.endpoint == server.endpoint),
                None,
            )
            if base_server is not None:  # a config server removed, now back
                key = (backend, base_server.address)
                overrides = st.overrides.without(key).with_patch(key, base_server, values)
                server = base_server.model_copy(update=values)
            else:
                key = (backend, server.address)
                overrides = st.overrides.with_added(key, server)
            self._commit(replace(st, overrides=overrides), persist=True)
        log.info("admin: added server %s %s", describe(key), _fields(values))
        return server

    def _taken(self, backend: str, server: ServerConfig, other: ServerConfig) -> str:
        """Why `server` cannot be added beside `other`, at its endpoint."""
        if (backend, other.address) in self._state.draining:
            return f"server {other.address} of backend '{backend}' is being removed"
        if other.address == server.address:
            return f"backend '{backend}' already has server {server.address}"
        return f"backend '{backend}' has server {other.address}: {same_server(server, other)}"

    def patch_server(
        self, backend: str, address: str, *, weight: int | None = None, state: str | None = None
    ) -> None:
        """Set a server's weight and/or state (ready, drain or maint)."""
        address = lookup_key(address)
        key = (backend, address)
        values: dict[str, Any] = {}
        if weight is not None:
            values["weight"] = weight
        if state is not None:
            values["state"] = _config_state(state)
        if not values:
            raise Invalid("nothing to change: give weight and/or state")
        _validated(address, values)
        with self._lock:
            st = self._open()
            self._find(key)
            if key in st.draining:
                raise Conflict(f"server {address} of backend '{backend}' is being removed")
            added = st.overrides.added.get(key)
            if added is not None:
                overrides = st.overrides.with_added(key, added.model_copy(update=values))
            else:
                base_server = _server(st.base, key)
                assert base_server is not None
                overrides = st.overrides.with_patch(key, base_server, values)
            self._commit(replace(st, overrides=overrides), persist=True)
        log.info("admin: patched server %s %s", describe(key), _fields(values))

    def begin_remove(self, backend: str, address: str) -> bool:
        """Start removing a server: state drain now (persisted as removed),
        gone at finish_remove().  False when it is already draining."""
        address = lookup_key(address)
        key = (backend, address)
        with self._lock:
            st = self._open()
            self._find(key)
            if key in st.draining:
                return False
            others = [
                s
                for s in _backend(self._configured, backend).servers
                if s.address != address and (backend, s.address) not in st.draining
            ]
            if not others:
                raise Conflict(f"server {address} is the last one of backend '{backend}'")
            leaving = _server(self._configured, key)
            assert leaving is not None
            draining = {**st.draining, key: leaving.model_copy(update={"state": "drain"})}
            if _server(st.base, key) is not None:
                overrides = st.overrides.with_removed(key)
            else:
                overrides = st.overrides.without(key)
            self._commit(replace(st, overrides=overrides, draining=draining), persist=True)
        log.info("admin: draining server %s before removing it", describe(key))
        return True

    def finish_remove(self, backend: str, address: str) -> None:
        """Take out a server begin_remove() drains.  No-op otherwise."""
        address = lookup_key(address)
        key = (backend, address)
        with self._lock:
            st = self._state
            if key not in st.draining or self._stopping:
                return
            self._commit(
                replace(
                    st,
                    draining=_without(st.draining, key),
                    health=_without(st.health, key),
                    weights=_without(st.weights, key),
                )
            )
            self._reasons.pop(key, None)
        log.info("admin: removed server %s", describe(key))

    def active(self, backend: str, address: str) -> int:
        """The server's active connections (in-flight requests in http
        mode) as the engine counts them; 0 when it has none or is gone."""
        servers = self.stats().get("backends", {}).get(backend, {}).get("servers", {})
        return int(servers.get(lookup_key(address), {}).get("active", 0))

    async def wait_drained(self, backend: str, address: str, poll: float = 0.05) -> bool:
        """Wait until the server has no active connection, or until
        global.drain_timeout.  True when it drained in time."""
        deadline = time.monotonic() + self._state.base.global_.drain_timeout
        while await asyncio.to_thread(self.active, backend, address) > 0:
            if time.monotonic() >= deadline:
                log.warning("server %s/%s still busy after the drain timeout", backend, address)
                return False
            await asyncio.sleep(poll)
        return True

    async def drain_then_remove(self, backend: str, address: str, poll: float = 0.05) -> None:
        """Drain a server (state drain) until its active connections reach 0
        or global.drain_timeout passes, then remove it."""
        await asyncio.to_thread(self.begin_remove, backend, address)
        await self.wait_drained(backend, address, poll)
        await asyncio.to_thread(self.finish_remove, backend, address)

    # ---- the health checker's (not persisted) -----------------------------------------

    def set_health(self, backend: str, address: str, up: bool, reason: str = "") -> bool:
        """Record the health checker's verdict on a server.  A failing
        server whose admin state is up runs as "down".  Returns whether the
        verdict changed."""
        key = (backend, address)
        with self._lock:
            if reason:
                self._reasons[key] = reason
            st = self._state
            if st.health.get(key) == up:
                return False
            self._commit(replace(st, health={**st.health, key: up}))
        log.info("health: server %s is %s", describe(key), "up" if up else "down")
        return True

    def set_weight(self, backend: str, address: str, weight: int) -> None:
        """The weight a server runs with for now (slow start), over its
        configured one; the configured weight itself ends the override."""
        key = (backend, address)
        with self._lock:
            st = self._state
            current = _server(self._configured, key)
            if current is None or weight == current.weight:
                weights = _without(st.weights, key)
            else:
                weights = {**st.weights, key: max(1, min(weight, 256))}
            if weights != st.weights:
                self._commit(replace(st, weights=weights))

    # ---- reload ----------------------------------------------------------------------

    def reload(self) -> list[str]:
        """Re-read the config file, reapply the overrides (the config wins
        where it contradicts them) and update the engine.  Returns the
        warnings.  Raises ConfigError for a bad file, OSError or ValueError
        when the engine refuses the config; nothing changes then."""
        if self._path is None:
            raise Invalid("there is no config file to reload")
        try:
            config = load_config(self._path)
            with self._lock:
                st = self._open()
                base = self._with_workers(config)
                overrides, warnings = state.reconcile(base, st.overrides)
                warnings += _restart_keys(st.base, base)
                draining = {k: v for k, v in st.draining.items() if k[0] in base.backends}
                self._commit(replace(st, base=base, overrides=overrides, draining=draining))
        except Exception:
            self.reloads["error"] += 1
            raise
        self.reloads["ok"] += 1
        for warning in warnings:
            log.warning("reload: %s", warning)
        log.info("reloaded %s", self._path)
        return warnings

    # ---- internals ---------------------------------------------------------------------

    def _commit(self, new: _State, persist: bool = False) -> None:
        """Make `new` the state: build the configs, update the engine, then
        persist (admin changes).  Called with the lock held; on an error
        nothing changed."""
        old = (self._state, self._configured, self._effective)
        configured, effective = new.build()
        if effective != self._effective:
            self._update_engine(effective)
        self._state, self._configured, self._effective = new, configured, effective
        if persist and self._state_file:
            try:
                state.save(self._state_file, new.overrides)
            except StateError:
                self._state, self._configured, self._effective = old
                self._update_engine(self._effective)
                raise
        if configured != old[1]:
            for callback in self._subscribers:
                try:
                    callback(configured)
                except Exception:
                    log.exception("config subscriber %r failed", callback)

    def _update_engine(self, config: Config) -> None:
        if self._engine is not None and self._engine.running:
            self._engine.update(config)

    def _open(self) -> _State:
        """The state, unless fastlb is stopping (then no more changes)."""
        if self._stopping:
            raise Conflict("fastlb is stopping")
        return self._state

    def _with_workers(self, config: Config) -> Config:
        return config if self._workers is None else config.with_workers(self._workers)

    def _find(self, key: Key) -> ServerConfig:
        server = _server(_backend(self._configured, key[0]), key)
        if server is None:
            raise NotFound(f"backend '{key[0]}' has no server {key[1]}")
        return server


class LoopThread:
    """An asyncio event loop in a daemon thread: the control plane's async
    side (the admin API, the health checks), off the main thread, which
    handles signals and blocks in Engine.stop() while draining."""

    def __init__(self, name: str = "fastlb-control") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        # asyncio keeps only weak references to tasks: these keep the
        # submitted ones alive until they end.
        self._running: set[concurrent.futures.Future[Any]] = set()

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run coro on the loop; its future."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        self._running.add(future)
        future.add_done_callback(self._running.discard)
        return future

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run coro on the loop and wait for its result."""
        return self.submit(coro).result(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel what still runs on the loop, stop it, join the thread."""
        if not self._thread.is_alive():
            return
        try:
            self.call(_cancel_all(), timeout)
        except (TimeoutError, concurrent.futures.TimeoutError):
            log.warning("control tasks did not stop within %.0fs", timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()


async def _cancel_all() -> None:
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _backend(config: Config, name: str) -> BackendConfig:
    backend = config.backends.get(name)
    if backend is None:
        raise NotFound(f"no backend named '{name}'")
    return backend


def _server(config: Config | BackendConfig, key: Key) -> ServerConfig | None:
    if isinstance(config, Config):
        backend = config.backends.get(key[0])
        if backend is None:
            return None
        config = backend
    return next((s for s in config.servers if s.address == key[1]), None)


def _without(mapping: Mapping[Key, T], key: Key) -> dict[Key, T]:
    return {k: v for k, v in mapping.items() if k != key}


def _config_state(admin_state: str) -> str:
    if admin_state not in ADMIN_STATES:
        raise Invalid(f"state {admin_state!r} is not one of: ready, drain, maint")
    return ADMIN_STATES[admin_state]


def _validated(address: str, values: Mapping[str, Any]) -> ServerConfig:
    try:
        return ServerConfig.model_validate({"address": address, **values})
    except ValidationError as exc:
        messages = state.validation_messages(exc)
        raise Invalid("; ".join(messages), messages if len(messages) > 1 else None) from None


def _fields(values: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={_API_STATE.get(v, v) if k == 'state' else v}" for k, v in values.items())


def _restart_keys(old: Config, new: Config) -> list[str]:
    """Warnings for the keys a reload cannot apply."""
    return [
        f"admin.{key} changed: restart fastlb to apply it"
        for key in ("enabled", "bind", "state_file")
        if getattr(old.admin, key) != getattr(new.admin, key)
    ]
