"""A proxy.py reverse-proxy plugin for the benchmark: every path goes to the
backends in BENCH_UPSTREAMS ('127.0.0.1:8001,127.0.0.1:8002'), round robin,
with the request's path kept.

proxy.py loads it by name (`--plugins bench_proxypy_plugin.BenchReverseProxy`)
from a copy in the run directory, which is on PYTHONPATH (see
contenders.py); it imports nothing from bench."""

from __future__ import annotations

import itertools
import os
import re

from proxy.http import Url
from proxy.http.parser import HttpParser
from proxy.http.server import ReverseProxyBasePlugin


def _upstreams() -> itertools.cycle[tuple[bytes, int]]:
    pairs = []
    for item in os.environ["BENCH_UPSTREAMS"].split(","):
        host, _, port = item.rpartition(":")
        pairs.append((host.encode(), int(port)))
    return itertools.cycle(pairs)


_NEXT = _upstreams()


class BenchReverseProxy(ReverseProxyBasePlugin):
    """Route everything to the next backend."""

    def routes(self) -> list[str | tuple[str, list[bytes]]]:
        return [r"/.*$"]

    def handle_route(self, request: HttpParser, pattern: re.Pattern[str]) -> Url:
        host, port = next(_NEXT)
        return Url(scheme=b"http", hostname=host, port=port, remainder=request.path)
