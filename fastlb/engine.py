"""The data-plane engine, embeddable: C worker threads relaying TCP
connections to backends (see csrc/engine.c).

    with Engine(config) as eng:          # start() on enter, stop() on exit
        host, port = eng.addresses()["web"]
        ...
        eng.update(new_config)           # no dropped connection
        print(eng.stats()["listeners"]["web"]["conn_total"])

`config` is the validated configuration object of fastlb.config (duck-typed:
`global_.workers`, `global_.max_connections`, `listeners`, `backends`); the
engine reads it once per start()/update() and keeps no reference to it.
"""

from __future__ import annotations

import os
import warnings
from types import TracebackType
from typing import Any

from fastlb import _engine

__all__ = ["Engine"]


class Engine:
    """A running (or not yet started) engine for one configuration.

    The number of workers is fixed by the config given to __init__ (0: one
    per CPU); updates that change `global_.workers` keep the running number
    (with a warning)."""

    def __init__(self, config: Any, **params: int | bool) -> None:
        """Prepare an engine; nothing is bound before start().

        params: optional C engine bounds per worker (max_pipes,
        max_free_pipes, max_bufs, max_free_bufs, max_conns, accept_batch,
        backlog) and no_splice=True to relay through buffers only."""
        self._config = config
        # 0 (or less) means one worker per CPU.
        self._workers = (
            int(config.global_.workers) if config.global_.workers > 0 else (os.cpu_count() or 1)
        )
        budget = getattr(config.global_, "buffers_per_worker", None)
        if budget is not None:
            params = {"max_bufs": int(budget), **params}
        self._c = _engine._Engine(self._workers, **params)
        self._running = False

    @property
    def running(self) -> bool:
        """Whether start() succeeded and stop() has not been called."""
        return self._running

    def start(self) -> None:
        """Bind every listener and start the workers.  Raises OSError when a
        listener cannot bind, ValueError on a config the engine cannot run."""
        if self._running:
            raise RuntimeError("engine already started")
        self._c.start(self._config)
        self._config = None
        self._running = True

    def update(self, config: Any) -> None:
        """Swap in a new configuration without blocking or dropping
        connections.  On error (OSError from binding a new listener,
        ValueError) the running configuration is unchanged."""
        if not self._running:
            raise RuntimeError("engine not running")
        if 0 < int(config.global_.workers) != self._workers:
            warnings.warn(
                f"global.workers changed to {config.global_.workers}: the engine keeps "
                f"{self._workers} workers until restarted",
                RuntimeWarning,
                stacklevel=2,
            )
        self._c.update(config)

    def stats(self) -> dict[str, Any]:
        """Counters summed over workers (also readable after stop()):
        {"active", "generation", "workers", "total", "listeners", "backends"}."""
        return self._c.stats()

    def addresses(self) -> dict[str, tuple[str, int]]:
        """Listener name -> (host, port) as bound (port 0 resolved); empty
        when not running."""
        return self._c.addresses() if self._running else {}

    def reopen_logs(self) -> int:
        """Reopen the access-log files (after a log rotation renamed them);
        the writer threads reopen at their next turn.  Returns how many
        logs were asked."""
        return int(self._c.reopen_logs())

    def stop(self, drain_timeout: float | None = None) -> None:
        """Stop accepting, let open connections finish for up to
        drain_timeout seconds (None or 0: close them at once), then close
        the rest and join the workers.  Idempotent."""
        if not self._running:
            return
        self._running = False
        self._c.stop(drain_timeout or 0.0)

    def __enter__(self) -> Engine:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
