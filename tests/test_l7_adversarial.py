"""Regression tests for defects of the HTTP/1.1 proxy (listener mode
"http") found with misbehaving backends (tests/adversarial), issue 12.

  D1  bytes a backend sends past the end of a response (extra bytes after
      a Content-Length body, a body after a 204 / 304 / HEAD answer) must
      never reach a client: an upstream connection with bytes waiting past
      its response is not pooled (or is dropped when taken from the pool).
  D3  a non-idempotent request sent on a pooled connection that the server
      closes (FIN or RST) before any response byte is not replayed: the
      backend sees it once, the client gets a 502.  A GET may be retried.
  D4  1xx responses: big 103 Early Hints pass intact; a flood of 102 is cut
      short with a well-formed 502 after at most 32 interim responses.
  D5  an absolute-form target's authority replaces Host (RFC 9112 3.2.2)
      for routing, the forwarded Host and X-Forwarded-Host; the backend
      gets the origin form.
  D6  a request Transfer-Encoding other than the single coding "chunked"
      (any case) is refused with 501 and the connection closed; "chunked"
      in any case is forwarded as exactly "Transfer-Encoding: chunked".

Every response of the adversarial backends names its request
(X-Answer-To: the request's X-Req-Id, else its target), so a response that
went to the wrong request or the wrong client shows.  Only 127.0.0.1."""

from __future__ import annotations

import os
import random
import threading
import time
from typing import Any

import pytest
from adversarial import (
    EVIL,
    Backend,
    CloseAfterRequest,
    ExtraAfterBody,
    Interim,
    LateBody,
    early_hints,
    stray,
)
from l7_backends import Bad, Client, Response, build_request
from test_engine_l7 import cfg, check_error, pool

# How long the many-clients stray-bytes test runs (seconds); 15 by hand.
STRAY_SECONDS = float(os.environ.get("FASTLB_STRAY_SECONDS", "3"))


@pytest.fixture
def backend() -> Any:
    """backend(name, **kw) -> a started adversarial Backend; all stopped at
    teardown."""
    made: list[Backend] = []

    def make(name: str = "adv", **kw: Any) -> Backend:
        b = Backend(name, **kw)
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


def one(b: Backend, **kw: Any) -> dict[str, Any]:
    """A config whose default backend "web" is b alone (one worker, so every
    request shares one upstream pool)."""
    return cfg([b.address], **kw)


def answers(resp: Response, rid: str, method: str = "GET") -> bool:
    """Whether resp is the backend's own answer to the request rid."""
    return resp.status == 200 and resp.header("X-Answer-To") == rid and b"EVIL" not in resp.body


def show(resp: Response) -> tuple[int, str | None, bytes]:
    return (resp.status, resp.header("X-Answer-To"), resp.body[:200])


# ====================================================================== D1


def test_d1_extra_response_after_body_not_given_to_next_request(backend: Any, proxy: Any) -> None:
    """GET /1 is answered "Content-Length: 5", then 50 ms later, in one
    write, "hello" and a whole second response (body EVIL).  A client that
    pipelined /1, /2, /3 gets hello, then the real answers to /2 and /3."""
    b = backend(paths={"/1": ExtraAfterBody(b"hello", extra=EVIL, delay=0.05)})
    addr = proxy(one(b))
    with Client(addr) as c:
        c.send(build_request("GET", "/1") + build_request("GET", "/2") + build_request("GET", "/3"))
        got = [c.read_response() for _ in range(3)]
    assert (got[0].status, got[0].body) == (200, b"hello"), show(got[0])
    assert answers(got[1], "/2"), [show(r) for r in got]
    assert answers(got[2], "/3"), [show(r) for r in got]
    assert sorted(q.target for q in b.requests) == ["/1", "/2", "/3"]


@pytest.mark.parametrize(
    ("status", "method"), [(204, "GET"), (304, "GET"), (200, "HEAD")], ids=["204", "304", "HEAD"]
)
def test_d1_late_body_on_bodiless_response_not_given_to_next_request(
    backend: Any, proxy: Any, status: int, method: str
) -> None:
    """/1 is answered with a response that has no body (204, 304, or the
    answer to HEAD), then 50 ms later "hello" and a whole response (body
    EVIL) arrive on the same connection.  Once they have been written, the
    client pipelines /2 and /3 on its connection: they get their own
    answers, and EVIL reaches no one."""
    b = backend(paths={"/1": LateBody(status=status, delay=0.05)})
    addr = proxy(one(b))
    with Client(addr) as c:
        first = c.request(method, "/1")
        assert (first.status, first.body, first.header("X-Answer-To")) == (status, b"", "/1")
        assert b.wait_event("late", conn=1)
        c.send(build_request("GET", "/2") + build_request("GET", "/3"))
        got = [c.read_response() for _ in range(2)]
    assert answers(got[0], "/2"), [show(r) for r in got]
    assert answers(got[1], "/3"), [show(r) for r in got]
    assert sorted(q.target for q in b.requests) == ["/1", "/2", "/3"]


@pytest.mark.parametrize("extra", [stray(17), "evil"], ids=["17-bytes", "whole-response"])
def test_d1_stray_bytes_never_reach_other_clients(
    backend: Any, proxy: Any, extra: bytes | str
) -> None:
    """One client keeps asking a path whose answers are followed by stray
    bytes (17: "HTTP/1.1 200 OK\\r\\n"; or a whole response naming the
    attacker's request); 16 victims on keep-alive connections ask another
    path for STRAY_SECONDS.  Every response, the attacker's included,
    answers its own request (a unique id per request); none is a 502 or
    carries the stray bytes."""
    # The head goes alone, the body and the stray bytes 5 ms later in one
    # write (what a proxy reads while it pumps the body).
    b = backend(paths={"/stray": ExtraAfterBody(body=None, extra=extra, delay=0.005)})
    addr = proxy(one(b))
    end = time.monotonic() + STRAY_SECONDS
    wrong: list[Any] = []
    counts: list[int] = []
    lock = threading.Lock()

    def run(name: str, path: str) -> None:
        n = 0
        c = Client(addr, timeout=10)
        try:
            while time.monotonic() < end and len(wrong) < 20:
                rid = f"{name}-{n}"
                n += 1
                try:
                    r = c.request("GET", f"{path}?{rid}", headers=[("X-Req-Id", rid)])
                    ok = r.status == 200 and r.header("X-Answer-To") == rid
                    ok = ok and r.body == f"adv GET {path}?{rid} id={rid} len=0\n".encode()
                    if not ok:
                        with lock:
                            wrong.append((rid, show(r)))
                except (OSError, EOFError, Bad) as exc:
                    with lock:
                        wrong.append((rid, repr(exc)[:200]))
                    c.close()
                    c = Client(addr, timeout=10)
        finally:
            c.close()
            with lock:
                counts.append(n)

    threads = [threading.Thread(target=run, args=("attacker", "/stray"))]
    threads += [threading.Thread(target=run, args=(f"v{i}", "/v")) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(STRAY_SECONDS + 30)
    assert not any(t.is_alive() for t in threads)
    print(f"stray bytes: {sum(counts)} responses in {STRAY_SECONDS} s, {len(wrong)} wrong")
    assert not wrong, (len(wrong), sum(counts), wrong[:10])
    assert sum(counts) > 17, counts


# ====================================================================== D3


@pytest.mark.parametrize("rst", [False, True], ids=["fin", "rst"])
def test_d3_post_on_pooled_connection_closed_before_answer_is_not_replayed(
    backend: Any, proxy: Any, rst: bool
) -> None:
    """The server answers the first request of a connection, then closes it
    right after reading the second.  A POST that went on that pooled
    connection reached the server once: the client gets a 502, the POST is
    not sent again."""
    b = backend(policy=lambda req: CloseAfterRequest(rst=rst) if req.seq == 1 else None)
    addr = proxy(one(b))
    with Client(addr) as c:
        assert answers(c.request("GET", "/warm"), "/warm")
        r = c.request("POST", "/pay", body=b"once", headers=[("X-Req-Id", "pay-1")])
    posts = [(q.conn, q.seq) for q in b.requests if q.method == "POST"]
    assert posts[:1] == [(1, 1)], posts  # it did go on the pooled connection
    assert posts == [(1, 1)], f"POST replayed: seen on (conn, seq) {posts}"
    check_error(r, 502, [b.address])


@pytest.mark.parametrize("rst", [False, True], ids=["fin", "rst"])
def test_d3_get_on_pooled_connection_closed_before_answer_is_retried(
    backend: Any, proxy: Any, rst: bool
) -> None:
    b = backend(policy=lambda req: CloseAfterRequest(rst=rst) if req.seq == 1 else None)
    addr = proxy(one(b))
    with Client(addr) as c:
        assert answers(c.request("GET", "/warm"), "/warm")
        r = c.request("GET", "/again")
    assert answers(r, "/again"), show(r)
    seen = [(q.conn, q.seq) for q in b.requests if q.target == "/again"]
    assert seen == [(1, 1), (2, 0)], seen


# ====================================================================== D4


def test_d4_big_early_hints_pass_intact(backend: Any, proxy: Any) -> None:
    """Three 103 Early Hints, each with a 5900-byte Link header, then 200."""
    hints = early_hints(3, 5900)
    b = backend(paths={"/eh": hints})
    link = dict(hints.headers)["Link"]
    addr = proxy(one(b))
    with Client(addr) as c:
        c.send(build_request("GET", "/eh"))
        got = []
        for _ in range(4):
            got.append(c.read_response(skip_interim=False))
            if got[-1].status >= 200:
                break
    assert [r.status for r in got] == [103, 103, 103, 200], [r.raw_head[:100] for r in got]
    assert all(r.header("Link") == link for r in got[:3])
    assert answers(got[3], "/eh") and got[3].body == b"adv GET /eh id=/eh len=0\n"


def test_d4_interim_flood_ends_in_clean_502(backend: Any, proxy: Any) -> None:
    """700 x 102 Processing, then 200: the client gets at most 32 interim
    responses, then a well-formed 502 from fastlb, not a reset or a cut
    stream."""
    b = backend(paths={"/flood": Interim(count=700)})
    addr = proxy(one(b))
    interim: list[int] = []
    with Client(addr) as c:
        c.send(build_request("GET", "/flood"))
        try:
            for _ in range(702):  # bounded: 700 interim + the final
                r = c.read_response(skip_interim=False)
                if r.status >= 200:
                    break
                interim.append(r.status)
        except (OSError, EOFError, Bad) as exc:
            pytest.fail(f"stream broken after {len(interim)} interim responses: {exc!r}")
    assert set(interim) <= {102}
    assert len(interim) <= 32, f"{len(interim)} interim responses passed"
    check_error(r, 502, [b.address])


# ====================================================================== D5


def test_d5_absolute_form_authority_replaces_host(backend: Any, proxy: Any) -> None:
    a = backend("a")
    p = backend("p")
    routes = [
        {"match": {"host": "admin.example"}, "backend": "admin"},
        {"match": {"host": "public.example"}, "backend": "public"},
    ]
    addr = proxy(
        cfg(
            routes=routes,
            backends={"admin": pool([a.address]), "public": pool([p.address])},
            default=None,
        )
    )
    with Client(addr) as c:
        c.send(b"GET http://admin.example/x HTTP/1.1\r\nHost: public.example\r\n\r\n")
        r = c.read_response()
    assert r.status == 200 and r.header("X-Backend-Name") == "a", show(r)
    assert p.requests == []
    (seen,) = a.requests
    assert seen.raw.startswith(b"GET /x HTTP/1.1\r\n"), seen.raw[:80]
    assert seen.header_all("Host") == ["admin.example"], seen.headers
    assert seen.header_all("X-Forwarded-Host") == ["admin.example"], seen.headers


# ====================================================================== D6

TE_ACCEPTED = ["chunked", "cHuNkEd", "CHUNKED"]
TE_REFUSED = ["chunked;x=1", "identity, chunked", "gzip, chunked", "chunked, chunked"]


def te_request(te: str) -> bytes:
    return (
        b"POST /te HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: %s\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n" % te.encode()
    )


@pytest.mark.parametrize("te", TE_ACCEPTED)
def test_d6_chunked_in_any_case_forwarded_as_chunked(backend: Any, proxy: Any, te: str) -> None:
    """The strict backend understands only exactly "chunked"."""
    b = backend()
    addr = proxy(one(b))
    with Client(addr) as c:
        c.send(te_request(te))
        r = c.read_response("POST")
    assert b.bad == [], b.bad
    assert answers(r, "/te"), show(r)
    (seen,) = b.requests
    assert seen.header_all("Transfer-Encoding") == ["chunked"], seen.headers
    assert seen.body == b"hello world"


@pytest.mark.parametrize("te", TE_REFUSED)
def test_d6_other_transfer_encodings_refused_501(backend: Any, proxy: Any, te: str) -> None:
    b = backend()
    addr = proxy(one(b))
    with Client(addr) as c:
        c.send(te_request(te))
        r = c.read_response("POST")
        closed = c.eof()
    assert b.raw() == b"" and b.requests == [] and b.bad == [], (b.raw()[:200], b.bad)
    # "chunked" twice is malformed (RFC 9112 6.1) rather than unsupported:
    # the parser's 400 is as good as a 501 there.
    check_error(r, r.status if te == "chunked, chunked" and r.status == 400 else 501, [b.address])
    assert closed, "connection left open"


def test_d6_random_case_chunked(backend: Any, proxy: Any) -> None:
    """A few more spellings of chunked (seeded)."""
    rng = random.Random(12)
    b = backend()
    addr = proxy(one(b))
    spellings = {
        "".join(rng.choice((ch.lower(), ch.upper())) for ch in "chunked") for _ in range(8)
    }
    for te in sorted(spellings):
        with Client(addr) as c:
            c.send(te_request(te))
            r = c.read_response("POST")
        assert answers(r, "/te"), (te, show(r))
    assert [q.header_all("Transfer-Encoding") for q in b.requests] == [["chunked"]] * len(spellings)
    assert b.bad == []


@pytest.mark.parametrize(
    "lines",
    [["5", "5"], ["0005"], ["05", "5"]],
    ids=["repeated", "leading-zeros", "both"],
)
def test_d6_content_length_relayed_once_in_plain_decimal(
    backend: Any, proxy: Any, lines: list[str]
) -> None:
    """The same class as D6: Content-Length spellings the parser accepts
    (repeated equal lines, leading zeros) reach the server as one plain
    value, so no server can read another length."""
    b = backend()
    addr = proxy(one(b))
    head = "POST /cl HTTP/1.1\r\nHost: example.com\r\n"
    head += "".join(f"Content-Length: {v}\r\n" for v in lines)
    with Client(addr) as c:
        c.send(head.encode() + b"\r\nhello")
        r = c.read_response("POST")
    assert b.bad == [], b.bad
    assert answers(r, "/cl"), show(r)
    (seen,) = b.requests
    assert seen.header_all("Content-Length") == ["5"], seen.headers
    assert seen.body == b"hello"
