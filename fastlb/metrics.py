"""Prometheus metrics: a collector that reads Engine.stats() (and the
controller's state) at scrape time, so no request runs any Python.

    metrics = Metrics(controller)
    body = metrics.render()        # the text exposition format, as bytes

Families: fastlb_listener_* (label listener), fastlb_server_* (labels
backend, server: the address), fastlb_worker_* (label worker) and
fastlb_engine_* / fastlb_config_*.  Counters are summed over workers; a
server's survive config updates (by backend and address).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from fastlb.config import Config

__all__ = ["CONTENT_TYPE", "FastlbCollector", "Metrics", "Source"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
STATES = ("up", "down", "drain", "maint")
CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
# Upper bounds of the C histograms' buckets (csrc/stats-t.h FLB_HIST_BOUNDS_US),
# in seconds; the last C bucket is +Inf.
HIST_BOUNDS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class Source(Protocol):
    """What the collector reads (fastlb.control.Controller is one)."""

    reloads: Mapping[str, int]

    def stats(self) -> dict[str, Any]: ...

    def effective(self) -> Config: ...

    def health(self) -> Mapping[tuple[str, str], bool]: ...

    @property
    def ready(self) -> bool: ...


@dataclass(frozen=True)
class _Spec:
    key: str  # the Engine.stats() key
    name: str  # the metric name after the scope prefix, without _total
    help: str
    counter: bool = True
    scale: float = 1.0


_LISTENER = (
    _Spec("conn_total", "connections", "Client connections accepted."),
    _Spec("conn_active", "connections_active", "Client connections open now.", counter=False),
    _Spec("bytes_in", "bytes_in", "Bytes relayed from clients to servers."),
    _Spec("bytes_out", "bytes_out", "Bytes relayed from servers to clients."),
    _Spec("connect_fails", "connect_failures", "Failed connect attempts to servers."),
    _Spec("retries", "retries", "Connect attempts that were retries."),
    _Spec(
        "rejected_noserver",
        "rejected_no_server",
        "Clients closed because no server took them (none eligible, or all attempts failed).",
    ),
    _Spec("limit_pauses", "limit_pauses", "Times accepting paused at a connection limit."),
    _Spec("accept_errors", "accept_errors", "accept(2) failures other than EAGAIN."),
    _Spec("requests", "requests", "HTTP request heads parsed, valid or not (mode http)."),
    _Spec(
        "local_responses",
        "local_responses",
        "Responses fastlb answered itself: 400, 404, 502, 503, 504... (mode http).",
    ),
)
_SERVER = (
    _Spec("conn_total", "connections", "Connections established to the server."),
    _Spec(
        "conn_active", "connections_active", "Connections to the server open now.", counter=False
    ),
    _Spec(
        "active",
        "active",
        "Connections (mode tcp) or in-flight requests (mode http) counted against max_conn.",
        counter=False,
    ),
    _Spec("bytes_in", "bytes_in", "Bytes relayed to the server."),
    _Spec("bytes_out", "bytes_out", "Bytes relayed from the server."),
    _Spec("connect_fails", "connect_failures", "Failed connect attempts to the server."),
    _Spec("retries", "retries", "Attempts on the server that retried another's failure."),
    _Spec("connect_count", "connects", "Connects whose time is in connect_time_seconds."),
    _Spec(
        "connect_time_us",
        "connect_time_seconds",
        "Sum of the connect times of established connections.",
        scale=1e-6,
    ),
    _Spec("health_downs", "passive_health_downs", "Times passive health took the server out."),
    _Spec("fails", "consecutive_failures", "Consecutive failed connects now.", counter=False),
    _Spec("requests", "requests", "HTTP requests sent to the server (mode http)."),
    _Spec("reuses", "keepalive_reuses", "Requests sent on a pooled keep-alive connection."),
    _Spec(
        "dirty_closes",
        "upstream_dirty_closes",
        "Keep-alive connections closed, never reused, because bytes came past a response.",
    ),
    _Spec("weight", "weight", "The server's balancing weight.", counter=False),
)
_WORKER = (
    _Spec("conn_total", "connections", "Client connections accepted by the worker."),
    _Spec("conn_active", "connections_active", "Client connections open now.", counter=False),
    _Spec("bytes_in", "bytes_in", "Bytes relayed from clients to servers."),
    _Spec("bytes_out", "bytes_out", "Bytes relayed from servers to clients."),
    _Spec("connect_fails", "connect_failures", "Failed connect attempts to servers."),
    _Spec("retries", "retries", "Connect attempts that were retries."),
    _Spec("rejected_noserver", "rejected_no_server", "Clients closed because no server took them."),
    _Spec("accept_errors", "accept_errors", "accept(2) failures other than EAGAIN."),
    _Spec("loops", "loops", "Event-loop iterations."),
    _Spec("snapshots", "snapshots", "Config snapshots adopted."),
    _Spec("requests", "requests", "HTTP requests parsed."),
    _Spec("res_waits", "resource_waits", "Times a connection waited for a pipe or buffer."),
    _Spec("limit_pauses", "limit_pauses", "Listener pauses at connection limits."),
    _Spec("emfile_pauses", "emfile_pauses", "Listener pauses because accept ran out of fds."),
    _Spec("pipes_used", "pipes_used", "Pipes holding bytes in flight now.", counter=False),
    _Spec("bufs_used", "buffers_used", "16 KiB buffers holding bytes now.", counter=False),
    _Spec(
        "upconns_idle",
        "upstream_idle_connections",
        "Idle pooled upstream connections now.",
        counter=False,
    ),
)


def _family(prefix: str, spec: _Spec, labels: list[str]) -> CounterMetricFamily | GaugeMetricFamily:
    name = f"fastlb_{prefix}_{spec.name}"
    if spec.counter:
        return CounterMetricFamily(name, spec.help, labels=labels)
    return GaugeMetricFamily(name, spec.help, labels=labels)


def _table(
    prefix: str,
    specs: Iterable[_Spec],
    labels: list[str],
    rows: Iterable[tuple[list[str], Mapping[str, Any]]],
) -> Iterator[Metric]:
    """One family per spec, one sample per row (label values, stats)."""
    rows = list(rows)
    for spec in specs:
        family = _family(prefix, spec, labels)
        for values, stats in rows:
            if spec.key in stats:
                family.add_metric(values, float(stats[spec.key]) * spec.scale)
        yield family


class FastlbCollector(Collector):
    """Reads one Engine.stats() per scrape and turns it into families."""

    def __init__(self, source: Source) -> None:
        self._source = source

    def describe(self) -> Iterable[Metric]:
        return []  # nothing to check at registration: collect() reads live stats

    def collect(self) -> Iterable[Metric]:
        stats = self._source.stats()
        config = self._source.effective()
        yield from self._engine(stats)
        yield from self._listeners(stats.get("listeners", {}), config)
        yield from self._servers(stats.get("backends", {}), config)
        workers = [([str(i)], w) for i, w in enumerate(stats.get("workers", []))]
        yield from _table("worker", _WORKER, ["worker"], workers)
        yield from _standard(stats)
        yield _health_checks(getattr(self._source, "check_status", None))

    def _engine(self, stats: Mapping[str, Any]) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "fastlb_engine_connections_active",
            "Client connections open now, over all listeners.",
            value=float(stats.get("active", 0)),
        )
        yield GaugeMetricFamily(
            "fastlb_engine_workers", "Data-plane worker threads.", len(stats.get("workers", []))
        )
        yield GaugeMetricFamily(
            "fastlb_engine_config_generation",
            "The generation of the config snapshot running (1 at start, +1 per update).",
            value=float(stats.get("generation", 0)),
        )
        yield GaugeMetricFamily(
            "fastlb_engine_ready",
            "1 when the listeners are bound and fastlb is not draining.",
            value=1.0 if self._source.ready else 0.0,
        )
        reloads = CounterMetricFamily(
            "fastlb_config_reloads", "Config reloads, by result.", labels=["result"]
        )
        for result in ("ok", "error"):
            reloads.add_metric([result], float(self._source.reloads.get(result, 0)))
        yield reloads

    def _listeners(self, stats: Mapping[str, Any], config: Config) -> Iterator[Metric]:
        rows = [([name], values) for name, values in stats.items()]
        yield from _table("listener", _LISTENER, ["listener"], rows)
        responses = CounterMetricFamily(
            "fastlb_listener_responses",
            "Final responses sent to clients, by status class (mode http; fastlb's own included).",
            labels=["listener", "code_class"],
        )
        for name, values in stats.items():
            for cls in ("1xx", "2xx", "3xx", "4xx", "5xx"):
                responses.add_metric([name, cls], float(values.get(f"resp_{cls}", 0)))
        yield responses
        info = GaugeMetricFamily(
            "fastlb_listener_info",
            "A listener's mode, bound address and default backend (always 1).",
            labels=["listener", "mode", "address", "backend"],
        )
        modes = {listener.name: listener.mode for listener in config.listeners}
        for name, values in stats.items():
            host, port = values.get("address", ("", 0))
            address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            labels = [name, modes.get(name, ""), address, values.get("backend") or ""]
            info.add_metric(labels, 1.0)
        yield info

    def _servers(self, stats: Mapping[str, Any], config: Config) -> Iterator[Metric]:
        labels = ["backend", "server"]
        rows = [
            ([backend, address], values)
            for backend, entry in stats.items()
            for address, values in entry.get("servers", {}).items()
        ]
        yield from _table("server", _SERVER, labels, rows)
        up = GaugeMetricFamily(
            "fastlb_server_up",
            "1 when the server takes new traffic: state up and not out by passive health.",
            labels=labels,
        )
        state = GaugeMetricFamily(
            "fastlb_server_state",
            "The server's state (1 for the current one): up, down (config or failing health "
            "checks), drain or maint.",
            labels=[*labels, "state"],
        )
        out = GaugeMetricFamily(
            "fastlb_server_passive_health_out",
            "1 while passive health keeps the server out (max_fails reached, fail_timeout).",
            labels=labels,
        )
        for values, server in rows:
            taking = server.get("state") == "up" and not server.get("health_out")
            up.add_metric(values, 1.0 if taking else 0.0)
            out.add_metric(values, 1.0 if server.get("health_out") else 0.0)
            for name in STATES:
                state.add_metric([*values, name], 1.0 if server.get("state") == name else 0.0)
        yield up
        yield state
        yield out
        yield from self._config_gauges(config, labels)

    def _config_gauges(self, config: Config, labels: list[str]) -> Iterator[Metric]:
        limit = GaugeMetricFamily(
            "fastlb_server_max_connections",
            "The server's max_conn (0: no limit).",
            labels=labels,
        )
        for name, backend in config.backends.items():
            for server in backend.servers:
                limit.add_metric([name, server.address], float(server.max_conn))
        yield limit
        checks = GaugeMetricFamily(
            "fastlb_server_health_check_up",
            "1 when the server passes its active health checks, 0 when it fails them "
            "(absent while unchecked).",
            labels=labels,
        )
        present = {(n, s.address) for n, b in config.backends.items() for s in b.servers}
        for key, healthy in sorted(self._source.health().items()):
            if key in present:
                checks.add_metric(list(key), 1.0 if healthy else 0.0)
        yield checks


class Metrics:
    """A private registry holding the fastlb collector (and the process's
    CPU, memory and fd metrics)."""

    def __init__(self, source: Source, *, process: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(FastlbCollector(source))
        if process:
            ProcessCollector(registry=self.registry)

    def render(self) -> bytes:
        """The text exposition of every metric, read now."""
        return generate_latest(self.registry)


def _histogram(
    name: str,
    help_text: str,
    labels: list[str],
    rows: Iterable[tuple[list[str], Mapping[str, Any] | None]],
) -> HistogramMetricFamily:
    """A Prometheus histogram from C per-bucket counts (made cumulative here)."""
    family = HistogramMetricFamily(name, help_text, labels=labels)
    for values, hist in rows:
        if not hist:
            continue
        counts, total = list(hist["b"]), 0
        buckets = []
        for bound, count in zip((*[str(b) for b in HIST_BOUNDS], "+Inf"), counts, strict=True):
            total += count
            buckets.append((bound, float(total)))
        family.add_metric(values, buckets, float(hist["sum_us"]) * 1e-6)
    return family


def _standard(stats: Mapping[str, Any]) -> Iterator[Metric]:
    """The families the issue names (fastlb_requests_total and friends),
    beside the fastlb_listener_* / fastlb_server_* tables above."""
    listeners = stats.get("listeners", {})
    servers = [
        (backend, address, values)
        for backend, entry in stats.get("backends", {}).items()
        for address, values in entry.get("servers", {}).items()
    ]
    requests = CounterMetricFamily(
        "fastlb_requests",
        "HTTP responses sent to clients by status class: per server for responses that "
        "came from it (listener empty), per listener for those fastlb answered itself "
        "(backend and server empty).  The series add up to every response.",
        labels=["listener", "backend", "server", "code"],
    )
    for backend, address, values in servers:
        for cls in CLASSES:
            requests.add_metric(["", backend, address, cls], float(values.get(f"resp_{cls}", 0)))
    for name, values in listeners.items():
        for cls in ("4xx", "5xx"):
            requests.add_metric([name, "", "", cls], float(values.get(f"local_{cls}", 0)))
    yield requests
    conns = CounterMetricFamily(
        "fastlb_connections", "Client connections accepted.", labels=["listener"]
    )
    active = GaugeMetricFamily(
        "fastlb_connections_active", "Client connections open now.", labels=["listener"]
    )
    received = CounterMetricFamily(
        "fastlb_bytes_received", "Bytes received from clients and relayed.", labels=["listener"]
    )
    sent = CounterMetricFamily("fastlb_bytes_sent", "Bytes sent to clients.", labels=["listener"])
    for name, values in listeners.items():
        conns.add_metric([name], float(values.get("conn_total", 0)))
        active.add_metric([name], float(values.get("conn_active", 0)))
        received.add_metric([name], float(values.get("bytes_in", 0)))
        sent.add_metric([name], float(values.get("bytes_out", 0)))
    yield from (conns, active, received, sent)
    fails = CounterMetricFamily(
        "fastlb_upstream_connect_failures",
        "Failed connect attempts to a server.",
        labels=["backend", "server"],
    )
    retries = CounterMetricFamily(
        "fastlb_retries", "Attempts that retried another's failure.", labels=["backend"]
    )
    per_backend: dict[str, float] = {}
    for backend, address, values in servers:
        fails.add_metric([backend, address], float(values.get("connect_fails", 0)))
        per_backend[backend] = per_backend.get(backend, 0.0) + float(values.get("retries", 0))
    for backend, count in per_backend.items():
        retries.add_metric([backend], count)
    yield from (fails, retries)
    yield _histogram(
        "fastlb_request_duration_seconds",
        "HTTP request duration, from the first byte of the head to the last byte of the "
        "response (mode http).",
        ["listener"],
        [([name], values.get("duration")) for name, values in listeners.items()],
    )
    yield _histogram(
        "fastlb_upstream_response_seconds",
        "Time from the request sent whole to the response head received (mode http).",
        ["backend", "server"],
        [([b, a], values.get("upstream")) for b, a, values in servers],
    )


def _health_checks(status: Any) -> CounterMetricFamily:
    """fastlb_health_checks_total{backend,server,result} from the health
    checker's status (no samples when no checker runs)."""
    family = CounterMetricFamily(
        "fastlb_health_checks",
        "Active health checks done, by result (ok, fail).",
        labels=["backend", "server", "result"],
    )
    for (backend, address), entry in sorted((status() if status else {}).items()):
        passed = float(entry.get("passed", 0))
        family.add_metric([backend, address, "ok"], passed)
        family.add_metric([backend, address, "fail"], float(entry.get("checks", 0)) - passed)
    return family
