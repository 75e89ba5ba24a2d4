"""Micro benchmark: fastlb.http.parse_request beside httptools.

Run with figures: python -m bench --scenarios micro   (or pytest bench --benchmark-enable).
In the normal test run benchmarks are disabled and each runs once, as a
smoke test that checks both sides parsed the same thing."""

from __future__ import annotations

import httptools
import pytest

from bench.samples import BROWSER_REQUEST
from fastlb.http import parse_request


class _Collector:
    """An httptools protocol that collects the url and the headers."""

    __slots__ = ("headers", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []

    def on_message_begin(self) -> None:
        self.headers = []

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))


@pytest.mark.benchmark(group="parse_request")
def bench_fastlb_parse_request(benchmark) -> None:
    req = benchmark(parse_request, BROWSER_REQUEST)
    assert req is not None and len(req.headers) == 9 and req.header_bytes == len(BROWSER_REQUEST)


@pytest.mark.benchmark(group="parse_request")
def bench_httptools_parse_request(benchmark) -> None:
    proto = _Collector()
    parser = httptools.HttpRequestParser(proto)  # reused, its fastest use

    def parse() -> _Collector:
        parser.feed_data(BROWSER_REQUEST)
        return proto

    got = benchmark(parse)
    assert got.url == b"/products/42/reviews?page=2" and len(got.headers) == 9
