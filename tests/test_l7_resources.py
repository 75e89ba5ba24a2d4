"""Resource accounting of the HTTP mode under slow peers (issue 12, D2):
slow clients and slow upstreams must not starve the others.

Each test gives the worker a small buffer budget (global.buffers_per_worker)
and opens many more slow connections than the budget could hold if each
kept its buffers: partial heads (slowloris), request bodies that stall
after one byte, and long polls waiting on their backend.  Requests on
another route must then still be served, and once the slow connections are
gone, no 16 KiB buffer stays taken.  Before the rework, a transaction
reserved four buffers from its first head byte to its end, so 16 slow
connections took a 64-buffer budget and every other request waited.

The timeouts that bound what a slow peer holds are tested here too:
request_body_timeout (408 for a stalled body) and send_timeout (a client
that does not read its response is closed).  Only 127.0.0.1 is used."""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from l7_backends import HOST, Client, Origin, build_request, wait_for

from fastlb.config import parse_config
from fastlb.engine import Engine

BUDGET = 64  # 16 KiB buffers per worker: 16 transactions' worth before the rework
SLOW = 200  # slow connections per test: 12 times what the budget held before


pytestmark = pytest.mark.usefixtures("many_fds")


@pytest.fixture
def origin() -> Iterator[Origin]:
    o = Origin("fast")
    yield o
    o.stop()


def config(fast: Origin, slow: Origin | None = None, **listener: Any) -> dict[str, Any]:
    """One http listener "web": /slow/ goes to backend "slow" (when given),
    everything else to "fast"; header_timeout is long, so a starved request
    would hang rather than be rescued by a 408."""
    backends: dict[str, Any] = {"fast": {"servers": [{"address": fast.address}]}}
    routes = []
    if slow is not None:
        backends["slow"] = {"servers": [{"address": slow.address}]}
        routes.append(
            {"match": {"path_prefix": "/slow/"}, "backend": "slow", "strip_prefix": "/slow"}
        )
    return {
        "global": {"workers": 1, "buffers_per_worker": BUDGET},
        "listeners": [
            {
                "name": "web",
                "bind": f"{HOST}:0",
                "mode": "http",
                "backend": "fast",
                "header_timeout": "60s",
                "response_timeout": "60s",
                "routes": routes,
                **listener,
            }
        ],
        "backends": backends,
    }


@contextlib.contextmanager
def engine(data: dict[str, Any]) -> Iterator[Engine]:
    e = Engine(parse_config(data))
    e.start()
    try:
        yield e
    finally:
        e.stop()


@contextlib.contextmanager
def slow_clients(e: Engine, first: bytes, heads: int = 0) -> Iterator[list[socket.socket]]:
    """SLOW connections to e's listener that each send `first` and then
    nothing more, held inside fastlb (every one accepted, `heads` request
    heads parsed) for the with block; then closed, after which every
    connection and 16 KiB buffer must be released."""
    addr = e.addresses()["web"]
    socks: list[socket.socket] = []
    try:
        for _ in range(SLOW):
            s = socket.create_connection(addr, timeout=5)
            s.sendall(first)
            socks.append(s)
        assert wait_for(lambda: e.stats()["total"]["conn_active"] >= SLOW, 10)
        if heads:
            assert wait_for(lambda: e.stats()["total"]["requests"] >= heads, 10)
        yield socks
    finally:
        for s in socks:
            s.close()
    assert wait_for(lambda: e.stats()["total"]["conn_active"] == 0, 5)
    assert buffers_used(e) == 0


def served(addr: tuple[str, int], n: int = 40) -> list[int]:
    """n requests to the fast route, each on a new connection: statuses.
    A starved request hangs and fails with a timeout."""
    out = []
    for i in range(n):
        with Client(addr, timeout=5) as c:
            out.append(c.request("GET", f"/fast/{i}").status)
    return out


def buffers_used(e: Engine) -> int:
    return int(e.stats()["total"]["bufs_used"])


def test_slowloris_partial_heads_do_not_starve(origin: Origin) -> None:
    partial = b"GET /x HTTP/1.1\r\nHost: a\r\nX-Slow: "
    with engine(config(origin)) as e, slow_clients(e, partial) as socks:
        assert served(e.addresses()["web"]) == [200] * 40
        # A parked head holds no 16 KiB buffer.
        assert wait_for(lambda: buffers_used(e) == 0, 5)
        # The parked heads are intact: completing them gets answers.
        for s in socks[:20]:
            s.sendall(b"1\r\n\r\n")
        for s in socks[:20]:
            assert s.recv(64).startswith(b"HTTP/1.1 200 ")


def test_single_byte_heads_do_not_starve(origin: Origin) -> None:
    with engine(config(origin)) as e, slow_clients(e, b"G"):
        assert served(e.addresses()["web"]) == [200] * 40


def test_stalled_request_bodies_do_not_starve(origin: Origin) -> None:
    head = build_request("POST", "/upload", headers=[("Content-Length", "1000")])
    with engine(config(origin)) as e, slow_clients(e, head + b"x", heads=SLOW):
        assert served(e.addresses()["web"]) == [200] * 40
        assert wait_for(lambda: buffers_used(e) == 0, 5)


def test_long_polls_do_not_starve_another_route(origin: Origin) -> None:
    slow = Origin("slow")
    try:
        poll = build_request("GET", "/slow/sleep?s=30")
        with engine(config(origin, slow)) as e, slow_clients(e, poll, heads=SLOW):
            assert wait_for(lambda: slow.request_count >= SLOW, 10)
            assert served(e.addresses()["web"]) == [200] * 40
            # Waiting for a response head holds no 16 KiB buffer.
            assert wait_for(lambda: buffers_used(e) == 0, 5)
    finally:
        slow.stop()


def _read_head(conn: socket.socket) -> bytes:
    got = b""
    while not got.endswith(b"\r\n\r\n"):
        chunk = conn.recv(4096)
        assert chunk, "closed inside a head"
        got += chunk
    return got


def test_long_poll_retried_after_backend_dies_from_side_copy(origin: Origin) -> None:
    """The request kept for a retry leaves its 16 KiB buffers while the
    response is awaited; a GET whose server closes before answering is
    still sent again whole, from that side copy, to the other server."""
    lsocks = []
    for _ in range(2):
        ls = socket.socket()
        ls.bind((HOST, 0))
        ls.listen(8)
        lsocks.append(ls)
    data = config(origin)
    data["backends"]["fast"]["servers"] = [
        {"address": f"{HOST}:{ls.getsockname()[1]}"} for ls in lsocks
    ]
    try:
        with engine(data) as e, Client(e.addresses()["web"], timeout=10) as c:
            c.send(build_request("GET", "/poll", headers=[("X-Probe", "kept")]))
            ready, _, _ = select.select(lsocks, [], [], 10)
            assert ready, "no connection to either server"
            first = ready[0]
            conn, _ = first.accept()
            with conn:
                sent_first = _read_head(conn)
                # Waiting on this server holds no 16 KiB buffer.
                assert wait_for(lambda: buffers_used(e) == 0, 5)
            # Closed before any response byte: the retry goes to the other.
            other = lsocks[1] if first is lsocks[0] else lsocks[0]
            other.settimeout(10)
            conn, _ = other.accept()
            with conn:
                sent_again = _read_head(conn)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                r = c.read_response()
            assert (r.status, r.body) == (200, b"ok")
            assert sent_first == sent_again  # resent byte for byte
            assert b"X-Probe: kept" in sent_again
    finally:
        for ls in lsocks:
            ls.close()


def test_request_body_timeout_answers_408(origin: Origin) -> None:
    head = build_request("POST", "/upload", headers=[("Content-Length", "100")])
    with engine(config(origin, request_body_timeout="300ms")) as e:
        with Client(e.addresses()["web"], timeout=10) as c:
            c.send(head + b"abc")
            start = time.monotonic()
            r = c.read_response("POST")
            assert r.status == 408
            assert time.monotonic() - start < 8  # the 1 h idle timeout did not apply
            assert c.eof()
        assert wait_for(lambda: e.stats()["total"]["conn_active"] == 0, 5)


def test_send_timeout_closes_a_client_that_does_not_read(origin: Origin) -> None:
    with engine(config(origin, send_timeout="300ms")) as e:
        s = socket.create_connection(e.addresses()["web"], timeout=5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            s.sendall(build_request("GET", "/big?size=50000000"))
            # Never read: fastlb's writes block; after send_timeout it closes.
            assert wait_for(lambda: e.stats()["total"]["bytes_out"] > 0, 10)
            assert wait_for(lambda: e.stats()["total"]["conn_active"] == 0, 10)
            assert buffers_used(e) == 0
        finally:
            s.close()
