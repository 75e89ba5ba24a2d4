"""`fastlb demo`: the embedded default.

Until the engine lands, the demo is a self-check of the two hot paths that
exist: it parses requests with the C parser (including smuggling attempts it
must refuse), decodes a chunked body, and spreads keys over backends with
Maglev and the ring, printing what it did and whether each check held."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from fastlb.hashring import Maglev, Ring
from fastlb.http import ChunkedDecoder, ParseError, parse_request

SAMPLE_REQUEST = (
    b"GET /api/v1/items?page=2 HTTP/1.1\r\n"
    b"Host: shop.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36\r\n"
    b"Accept: application/json\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Cookie: session=4f1c2a; theme=dark\r\n"
    b"Connection: keep-alive\r\n"
    b"\r\n"
)

SMUGGLING_ATTEMPTS = {
    "Content-Length with Transfer-Encoding": (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
    ),
    "two different Content-Lengths": (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n"
    ),
    "space before the colon": b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  continued\r\n\r\n",
    "bare LF": b"GET / HTTP/1.1\nHost: a\n\n",
}

BACKENDS = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"]


class _Report:
    """Prints each check and remembers whether all held."""

    def __init__(self) -> None:
        self.failures = 0

    def check(self, ok: bool, text: str) -> None:
        if not ok:
            self.failures += 1
        print(f"  [{'ok' if ok else 'FAIL'}] {text}")


def _per_call_ns(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - start) / calls


def _check_parser(report: _Report) -> None:
    print("HTTP/1.1 parser (C, strict RFC 9112):")
    req = parse_request(SAMPLE_REQUEST)
    assert req is not None
    report.check(
        req.method == b"GET" and req.target == b"/api/v1/items?page=2" and req.keep_alive,
        f"parsed {req.method.decode()} {req.target.decode()} with {len(req.headers)} headers, "
        f"{req.header_bytes} bytes, keep-alive={req.keep_alive}",
    )
    report.check(parse_request(SAMPLE_REQUEST[:-3]) is None, "a partial head asks for more bytes")
    for name, raw in SMUGGLING_ATTEMPTS.items():
        try:
            parse_request(raw)
        except ParseError as exc:
            report.check(True, f"refused {name}: {exc}")
        else:
            report.check(False, f"accepted {name}")
    decoder = ChunkedDecoder()
    body, done = decoder.feed(b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n")
    report.check(body == b"hello world" and done, f"decoded a chunked body to {body!r}")
    ns = _per_call_ns(lambda: parse_request(SAMPLE_REQUEST), 20_000)
    print(f"  parse_request from Python: {ns:.0f} ns per {len(SAMPLE_REQUEST)}-byte request")


def _check_ring(
    report: _Report, name: str, table: Maglev | Ring, smaller: Maglev | Ring, keys: list[bytes]
) -> None:
    counts = Counter(table.lookup(k) for k in keys)
    shares = ", ".join(f"{node} {100 * counts[node] / len(keys):.1f}%" for node in table.nodes)
    spread = max(counts.values()) / min(counts.values())
    report.check(
        spread < 1.2, f"{name}: {len(keys)} keys over {len(table.nodes)} backends: {shares}"
    )
    moved = sum(1 for k in keys if table.lookup(k) != smaller.lookup(k))
    removed = table.nodes[-1]
    report.check(
        moved / len(keys) <= 2 / len(table.nodes),
        f"{name}: removing {removed} moved {100 * moved / len(keys):.1f}% of keys "
        f"(its share was {100 * counts[removed] / len(keys):.1f}%)",
    )
    loads = [0] * len(table.nodes)
    for k in keys[:1000]:
        loads[table.nodes.index(table.lookup_bounded(k, loads, 1.25))] += 1
    report.check(
        max(loads) <= -(-1.25 * 1000 // len(loads)),
        f"{name}: bounded loads (c=1.25) kept every backend <= {max(loads)} of 1000",
    )
    ns = _per_call_ns(lambda: table.lookup(b"client-203.0.113.7"), 100_000)
    print(f"  {name}.lookup from Python: {ns:.0f} ns")


def run_selfcheck(keys: int = 100_000) -> int:
    """Run the self-check and print it.  Returns 0 when every check held."""
    report = _Report()
    _check_parser(report)
    key_list = [f"client-{i}".encode() for i in range(max(keys, 1000))]
    print("Consistent hashing (C):")
    _check_ring(report, "Maglev", Maglev(BACKENDS), Maglev(BACKENDS[:-1]), key_list)
    _check_ring(report, "Ring", Ring(BACKENDS), Ring(BACKENDS[:-1]), key_list)
    if report.failures:
        print(f"{report.failures} check(s) failed")
        return 1
    print("All checks passed. The load-balancing engine arrives with the next milestone.")
    return 0
