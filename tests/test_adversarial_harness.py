"""The adversarial backends (tests/adversarial) on their own, without
fastlb: each misbehaviour does exactly what its docstring says, so a test
that uses it through the proxy knows what the proxy was given."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from adversarial import (
    EVIL,
    Answer,
    Backend,
    CloseAfterRequest,
    ExtraAfterBody,
    Interim,
    LateBody,
    LongPoll,
    ResetDuringHead,
    ResetMidBody,
    Trickle,
    early_hints,
    evil_for,
    stray,
)
from l7_backends import Client, build_request


@pytest.fixture
def backend() -> Any:
    """backend(**kw) -> a started Backend; all stopped at teardown."""
    made: list[Backend] = []

    def make(**kw: Any) -> Backend:
        b = Backend(**kw)
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


def addr(b: Backend) -> tuple[str, int]:
    return ("127.0.0.1", b.port)


def test_adversarial_harness_answer_records_and_names_requests(backend: Any) -> None:
    b = backend(name="a", paths={"/418": Answer(status=418, body=b"tea")})
    with Client(addr(b)) as c:
        r = c.request("GET", "/x?q=1", headers=[("X-Req-Id", "r1")])
        assert r.status == 200
        assert r.body == b"a GET /x?q=1 id=r1 len=0\n"
        assert (r.header("X-Answer-To"), r.header("X-Conn"), r.header("X-Seq")) == ("r1", "1", "0")
        r = c.request("POST", "/y", body=b"hello")
        assert r.body == b"a POST /y id=/y len=5\n" and r.header("X-Answer-To") == "/y"
        assert c.request("GET", "/418").body == b"tea"
        r = c.request("HEAD", "/")
        assert r.body == b"" and r.header("Content-Length") == str(len(b"a HEAD / id=/ len=0\n"))
        assert c.request("GET", "/c", headers=[("Connection", "close")]).status == 200
        # Answer(close=...) is off: the backend keeps the connection even
        # for "Connection: close" requests; the client closes.
    reqs = b.requests
    assert [(q.method, q.target, q.conn, q.seq) for q in reqs] == [
        ("GET", "/x?q=1", 1, 0),
        ("POST", "/y", 1, 1),
        ("GET", "/418", 1, 2),
        ("HEAD", "/", 1, 3),
        ("GET", "/c", 1, 4),
    ]
    assert reqs[1].body == b"hello"
    assert reqs[1].raw == build_request("POST", "/y", body=b"hello")
    assert b.raw(1) == b"".join(q.raw for q in reqs)
    assert b.accepted == 1 and b.bad == []


def test_adversarial_harness_policy_per_connection(backend: Any) -> None:
    """The policy sees conn and seq; None falls back to paths, then default."""
    b = backend(
        paths={"/p": Answer(status=201)},
        policy=lambda req: Answer(status=202) if req.conn == 2 and req.seq == 1 else None,
    )
    with Client(addr(b)) as c1:
        assert [c1.request("GET", "/p").status for _ in range(2)] == [201, 201]
    with Client(addr(b)) as c2:
        assert [c2.request("GET", "/").status for _ in range(3)] == [200, 202, 200]


@pytest.mark.parametrize("delay", [0.0, 0.05])
def test_adversarial_harness_extra_after_body(backend: Any, delay: float) -> None:
    b = backend(paths={"/1": ExtraAfterBody(b"hello", delay=delay)})
    with Client(addr(b)) as c:
        c.send(build_request("GET", "/1"))
        head = c.r.read_until(b"\r\n\r\n")
        assert b"Content-Length: 5" in head and b"X-Answer-To: /1" in head
        assert b.wait_event("late", conn=1)
        assert c.r.read_exact(5 + len(EVIL)) == b"hello" + EVIL
        # The connection is kept: the next request is answered after the junk.
        assert c.request("GET", "/2").header("X-Answer-To") == "/2"


def test_adversarial_harness_extra_variants(backend: Any) -> None:
    assert stray(17) == b"HTTP/1.1 200 OK\r\n" and len(stray(40)) == 40
    b = backend(
        paths={
            "/s": ExtraAfterBody(body=None, extra=stray(17)),
            "/e": ExtraAfterBody(extra="evil"),
        }
    )
    with Client(addr(b)) as c:
        r = c.request("GET", "/s", headers=[("X-Req-Id", "s1")])
        assert r.body == b"adv GET /s id=s1 len=0\n"
        assert c.r.read_exact(17) == stray(17)
        c.send(build_request("GET", "/e", headers=[("X-Req-Id", "e1")]))
        assert c.read_response().body == b"hello"
        evil = c.read_response()
        assert (evil.header("X-Answer-To"), evil.body) == ("EVIL-e1", b"EVIL for e1")
    req = b.requests[-1]
    assert evil_for(req).endswith(b"EVIL for e1")


@pytest.mark.parametrize(("status", "method"), [(204, "GET"), (304, "GET"), (200, "HEAD")])
def test_adversarial_harness_late_body_on_bodiless(backend: Any, status: int, method: str) -> None:
    b = backend(paths={"/1": LateBody(status=status, delay=0.05)})
    with Client(addr(b)) as c:
        r = c.request(method, "/1")
        assert (r.status, r.body, r.header("X-Answer-To")) == (status, b"", "/1")
        assert b.wait_event("late", conn=1)
        assert c.r.read_exact(5) == b"hello"
        assert c.read_response().body == b"EVIL"
        assert c.request("GET", "/2").header("X-Answer-To") == "/2"


def test_adversarial_harness_late_body_same_write(backend: Any) -> None:
    b = backend(paths={"/1": LateBody(status=204, late=b"junk!", delay=0)})
    with Client(addr(b)) as c:
        c.send(build_request("GET", "/1"))
        assert b.wait_event("late")
        data = c.r.read_until(b"\r\n\r\n") + b"|" + c.r.read_exact(5)
        assert data.startswith(b"HTTP/1.1 204 ") and data.endswith(b"|junk!")


def test_adversarial_harness_interim_floods(backend: Any) -> None:
    b = backend(paths={"/102": Interim(count=700), "/103": early_hints(3, 5900)})
    with Client(addr(b)) as c:
        r = c.request("GET", "/102")
        assert len(r.interim) == 700 and {i.status for i in r.interim} == {102}
        assert r.status == 200 and r.header("X-Answer-To") == "/102"
        r = c.request("GET", "/103")
        assert [i.status for i in r.interim] == [103, 103, 103]
        for i in r.interim:
            link = i.header("Link") or ""
            assert len(link) == 5900 and link.startswith("</static/asset-00000.css>")
        assert r.status == 200 and r.header("X-Answer-To") == "/103"


@pytest.mark.parametrize("rst", [False, True])
def test_adversarial_harness_close_after_request(backend: Any, rst: bool) -> None:
    b = backend(
        policy=lambda req: CloseAfterRequest(rst=rst) if req.seq == 1 else None,
    )
    with Client(addr(b)) as c:
        assert c.request("GET", "/a").status == 200
        c.send(build_request("POST", "/b", body=b"once"))
        assert c.eof()
        assert c.r.buf == b""
    assert [(q.method, q.seq, q.body) for q in b.requests] == [
        ("GET", 0, b""),
        ("POST", 1, b"once"),
    ]
    assert b.wait_event("closed", conn=1)


def test_adversarial_harness_resets(backend: Any) -> None:
    b = backend(
        paths={
            "/head": ResetDuringHead(nbytes=12),
            "/body": ResetMidBody(nbytes=10, total=1000),
            "/fin": ResetMidBody(nbytes=10, total=1000, rst=False),
        }
    )
    with Client(addr(b)) as c:
        c.send(build_request("GET", "/head"))
        got = bytearray()
        with pytest.raises(ConnectionResetError):
            while True:  # bounded: the peer resets after 12 bytes
                data = c.sock.recv(65536)
                assert data, "FIN instead of RST"
                got += data
        assert got == b"HTTP/1.1 200"
    with Client(addr(b)) as c:
        c.send(build_request("GET", "/body", headers=[("X-Req-Id", "B")]))
        head = c.r.read_until(b"\r\n\r\n")
        assert b"Content-Length: 1000" in head
        with pytest.raises(ConnectionResetError):
            c.r.read_exact(1000)
        assert bytes(c.r.buf) in (b"", b"[B][B][B]["[: len(c.r.buf)])
    with Client(addr(b)) as c:
        c.send(build_request("GET", "/fin"))
        c.r.read_until(b"\r\n\r\n")
        with pytest.raises(EOFError):
            c.r.read_exact(1000)
        assert bytes(c.r.buf) == b"[/fin][/fi"


def test_adversarial_harness_trickle_and_long_poll(backend: Any) -> None:
    b = backend(
        paths={
            "/t": Trickle(interval=0.002, then=Answer(body=b"slow")),
            "/lp": LongPoll(delay=0.3),
            "/forever": LongPoll(delay=60),
        }
    )
    with Client(addr(b)) as c:
        c.send(build_request("GET", "/t"))
        first = c.sock.recv(65536)
        assert len(first) == 1  # one byte, not the whole response
        c.r.buf += first
        r = c.read_response()
        assert r.body == b"slow" and r.header("X-Answer-To") == "/t"
        t0 = time.monotonic()
        assert c.request("GET", "/lp").header("X-Answer-To") == "/lp"
        assert 0.25 < time.monotonic() - t0 < 5
    with Client(addr(b)) as c:
        c.send(build_request("GET", "/forever"))
        assert b.wait_requests(3)
        t0 = time.monotonic()
        b.stop()
        assert time.monotonic() - t0 < 3
        assert c.eof()


@pytest.mark.parametrize(
    "te", ["chunked;x=1", "cHuNkEd", "identity, chunked", "gzip, chunked", "chunked, chunked"]
)
def test_adversarial_harness_strict_transfer_encoding(backend: Any, te: str) -> None:
    """Only the exact value "chunked" is understood; anything else is
    recorded as bad and the connection closed, unanswered."""
    b = backend()
    data = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: %s\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    with Client(addr(b)) as c:
        c.send(data % b"chunked")
        assert c.read_response("POST").body == b"adv POST / id=/ len=5\n"
        c.send(data % te.encode())
        assert c.eof()
    assert len(b.requests) == 1 and b.requests[0].chunked
    (bad,) = b.bad
    assert "not exactly chunked" in bad.reason and bad.conn == 1


def test_adversarial_harness_lenient_transfer_encoding(backend: Any) -> None:
    b = backend(strict=False)
    data = (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: cHuNkEd\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    with Client(addr(b)) as c:
        c.send(data)
        assert c.read_response("POST").status == 200
    assert b.requests[0].body == b"hello"


@pytest.mark.parametrize(
    "data",
    [
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n z\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n",
    ],
)
def test_adversarial_harness_rejects_bad_requests(backend: Any, data: bytes) -> None:
    b = backend()
    with Client(addr(b)) as c:
        c.send(data)
        assert c.eof()
    assert b.requests == []
    assert len(b.bad) == 1
    assert b.raw(1) == data


def test_adversarial_harness_stop_refuses_and_closes(backend: Any) -> None:
    b = backend()
    with Client(addr(b)) as c:
        assert c.request().status == 200
        assert b.open_connections == 1
        b.stop()
        assert c.eof()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(addr(b), timeout=2)
    assert b.open_connections == 0
