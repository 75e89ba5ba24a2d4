"""End-to-end tests of the C engine in HTTP/1.1 reverse-proxy mode (listener
mode "http") over real loopback sockets: routing and prefix rewriting,
balancing keys and sticky cookies, request and response bodies in every
framing, pipelining, 100-continue, WebSocket upgrade, the errors fastlb
answers itself, the headers a backend sees, retries when a server dies under
load, request smuggling attempts, upstream keep-alive and fd hygiene.

Backends are l7_backends.Origin: HTTP/1.1 servers on raw sockets, one thread
per connection, that record every request they receive and answer by path
(a JSON description of the request by default, naming the origin).  Clients
are l7_backends.Client: raw sockets with a response reader, so the tests see
exactly the bytes fastlb sends.  The test_backend_harness_* tests check the
harness itself, without fastlb.  Configs are built as dicts and validated by
fastlb.config.parse_config.  Only 127.0.0.0/8 addresses are used."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import pytest
from l7_backends import (
    HOST,
    WS_GUID,
    Client,
    Origin,
    Response,
    build_request,
    get,
    payload,
    refusing_address,
    sha256,
    wait_for,
)

from fastlb.config import parse_config
from fastlb.engine import Engine

pytestmark = pytest.mark.usefixtures("many_fds")


# ----------------------------------------------------------------- fixtures


@pytest.fixture
def origins() -> Any:
    """origins("a", "b", mode=..., send_continue=...) -> [Origin, ...];
    all stopped at teardown."""
    made: list[Origin] = []

    def make(*names: str, **kw: Any) -> list[Origin]:
        out = [Origin(name, **kw) for name in names]
        made.extend(out)
        return out

    yield make
    for o in made:
        o.stop()


# ----------------------------------------------------------------- configs


def servers(items: Any) -> list[dict[str, Any]]:
    """Server tables from Origins, "host:port" strings or ready dicts."""
    out = []
    for s in items:
        if isinstance(s, Origin):
            out.append({"address": s.address})
        elif isinstance(s, str):
            out.append({"address": s})
        else:
            out.append(dict(s))
    return out


def pool(items: Any, **kw: Any) -> dict[str, Any]:
    """A backend table: round robin, keep-alive, retries unless overridden."""
    return {
        "balance": "round_robin",
        "keepalive": 32,
        "retries": 2,
        **kw,
        "servers": servers(items),
    }


def cfg(
    web: Any = (),
    *,
    listener: dict[str, Any] | None = None,
    routes: list[dict[str, Any]] | None = None,
    web_pool: dict[str, Any] | None = None,
    backends: dict[str, dict[str, Any]] | None = None,
    default: str | None = "web",
    workers: int = 1,
) -> dict[str, Any]:
    """A config with one http listener "web" on an ephemeral port; backend
    "web" made of `web` (when given) plus `backends`; `default` is the
    listener's default backend (None: unmatched requests get 404)."""
    lst: dict[str, Any] = {
        "name": "web",
        "bind": f"{HOST}:0",
        "mode": "http",
        "connect_timeout": "1s",
        "idle_timeout": "1h",
        "header_timeout": "10s",
        "keepalive_timeout": "60s",
        "response_timeout": "10s",
        "max_header_size": "8KiB",
        "forwarded_for": True,
        "forwarded_proto": True,
        "forwarded_host": True,
        "forwarded": False,
        "via": False,
        "request_id": "X-Request-Id",
        "hide_backend": False,
    }
    if default is not None:
        lst["backend"] = default
    if routes is not None:
        lst["routes"] = routes
    lst.update(listener or {})
    bks: dict[str, Any] = {}
    if web:
        bks["web"] = pool(web, **(web_pool or {}))
    bks.update(backends or {})
    return {"global": {"workers": workers}, "listeners": [lst], "backends": bks}


# ----------------------------------------------------------------- helpers


def check_error(resp: Response, code: int, origins: Any = ()) -> None:
    """An error fastlb answered itself: small body with a Content-Type that
    names the code, an X-Request-Id, nothing about the backends."""
    assert resp.status == code, (resp.status, resp.raw_head, resp.body[:300])
    assert len(resp.body) <= 1024, len(resp.body)
    assert resp.header("Content-Type"), resp.raw_head
    assert str(code).encode() in resp.body, resp.body
    rid = resp.header("X-Request-Id")
    assert rid, resp.raw_head
    raw = (resp.raw_head + resp.body).replace(rid.encode(), b"")
    assert b"127.0.0.1" not in raw, raw
    for o in origins:
        port = o.port if isinstance(o, Origin) else int(str(o).rsplit(":", 1)[1])
        assert str(port).encode() not in raw, (port, raw)


def raw(addr: tuple[str, int], data: bytes, method: str = "GET") -> Response:
    """Send raw bytes on a new connection; the response."""
    with Client(addr) as c:
        c.send(data)
        return c.read_response(method)


def raw_then_eof(addr: tuple[str, int], data: bytes, method: str = "GET") -> tuple[Response, bool]:
    """Send raw bytes on a new connection; the response and whether the
    connection was closed after it."""
    with Client(addr) as c:
        c.send(data)
        resp = c.read_response(method)
        return resp, c.eof(2.0)


def open_fds() -> dict[int, str]:
    """This process's descriptors and what they point at (for messages)."""
    out = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            out[int(name)] = os.readlink(f"/proc/self/fd/{name}")
    return out


def total_requests(os_: Any) -> int:
    return sum(o.request_count for o in os_)


# ====================================================== the harness alone


def test_backend_harness_default_json_and_keepalive(origins: Any) -> None:
    (o,) = origins("a")
    conn = http.client.HTTPConnection(HOST, o.port, timeout=5)
    try:
        conn.request("GET", "/x?y=1", headers={"X-One": "1", "x-two": "2"})
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200
        assert r.getheader("Server") == "test-origin"
        assert r.getheader("X-Powered-By") == "test"
        assert r.getheader("X-Backend-Name") == "a"
        d = json.loads(body)
        assert (d["backend"], d["method"], d["target"]) == ("a", "GET", "/x?y=1")
        assert d["body_length"] == 0 and d["conn"] == 1 and d["seq"] == 0
        conn.request("POST", "/echo", body=b"hello")
        r = conn.getresponse()
        assert r.read() == b"hello"
    finally:
        conn.close()
    assert o.accepted == 1
    reqs = o.requests
    assert [(q.method, q.target, q.conn, q.seq) for q in reqs] == [
        ("GET", "/x?y=1", 1, 0),
        ("POST", "/echo", 1, 1),
    ]
    names = [n for n, _ in reqs[0].headers]
    assert names.index("X-One") < names.index("x-two")  # order and case kept
    assert reqs[1].body == b"hello"


def test_backend_harness_request_bodies(origins: Any) -> None:
    (o,) = origins("a")
    body = payload(300_000, seed=3)
    with Client(("127.0.0.1", o.port)) as c:
        d = c.request("POST", "/", body=body).json()
        assert (d["body_length"], d["body_sha256"], d["chunked"]) == (300_000, sha256(body), False)
        d = c.request("POST", "/", body=body, chunked=True, trailers=[("X-T", "1")]).json()
        assert (d["body_length"], d["body_sha256"], d["chunked"]) == (300_000, sha256(body), True)
        assert d["trailers"] == [["X-T", "1"]]
    last = o.requests[-1]
    assert last.body == body and last.trailers == [("X-T", "1")]


@pytest.mark.parametrize("send_continue", [True, False])
def test_backend_harness_expect_continue(origins: Any, send_continue: bool) -> None:
    (o,) = origins("a", send_continue=send_continue)
    body = payload(10_000)
    head = build_request(
        "POST", "/", headers=[("Expect", "100-continue"), ("Content-Length", str(len(body)))]
    )
    with Client(("127.0.0.1", o.port)) as c:
        c.send(head)
        if send_continue:
            assert c.read_response("POST", skip_interim=False).status == 100
        c.send(body)
        r = c.read_response("POST")
        assert r.status == 200 and r.json()["body_sha256"] == sha256(body)


def test_backend_harness_pipelining(origins: Any) -> None:
    (o,) = origins("a")
    with Client(("127.0.0.1", o.port)) as c:
        c.send(
            build_request("GET", "/p1")
            + build_request("POST", "/p2", body=b"x" * 1000)
            + build_request("GET", "/p3")
        )
        got = [c.read_response(m).json()["target"] for m in ("GET", "POST", "GET")]
    assert got == ["/p1", "/p2", "/p3"]
    assert o.accepted == 1


def test_backend_harness_response_framings(origins: Any) -> None:
    (o,) = origins("a")
    with Client(("127.0.0.1", o.port)) as c:
        r = c.request("GET", "/chunked?n=20&size=1000")
        assert r.framing == "chunked" and r.body == payload(20_000, seed=1)
        assert r.trailer("X-Sum") == sha256(r.body) and r.trailer("X-Count") == "20"
        r = c.request("GET", "/big?size=100000")
        assert r.framing == "length" and r.body == payload(100_000)
        r = c.request("HEAD", "/")
        assert r.status == 200 and r.body == b"" and int(r.header("Content-Length") or 0) > 0
        r = c.request("HEAD", "/chunked")
        assert r.status == 200 and r.body == b""
        r = c.request("GET", "/status/204")
        assert (r.status, r.body) == (204, b"")
        r = c.request("GET", "/status/304")
        assert (r.status, r.body, r.header("Content-Length")) == (304, b"", "5")
        r = c.request("GET", "/status/418")
        assert (r.status, r.body) == (418, b"status 418\n")
        assert c.request("GET", "/").backend == "a"
        r = c.request("GET", "/close?size=50000")
        assert r.framing == "close" and r.body == payload(50_000, seed=2)
        assert c.eof()
    assert o.accepted == 1


def test_backend_harness_ws_sleep_reset_drop(origins: Any) -> None:
    (o,) = origins("a")
    addr = ("127.0.0.1", o.port)
    key = base64.b64encode(b"0123456789abcdef").decode()
    with Client(addr) as c:
        c.send(
            build_request(
                "GET",
                "/ws",
                headers=[
                    ("Upgrade", "websocket"),
                    ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Key", key),
                    ("Sec-WebSocket-Version", "13"),
                ],
            )
            + b"early"
        )
        r = c.read_response()
        assert r.status == 101
        want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        assert r.header("Sec-WebSocket-Accept") == want
        assert c.r.read_exact(5) == b"early"
        c.send(b"ping")
        assert c.r.read_exact(4) == b"ping"
        c.sock.shutdown(socket.SHUT_WR)
        assert c.eof()
    t0 = time.monotonic()
    assert get(addr, "/sleep?s=0.3").backend == "a"
    assert 0.25 < time.monotonic() - t0 < 2
    with Client(addr) as c:
        c.send(build_request("GET", "/reset"))
        with pytest.raises(ConnectionResetError):
            c.r.fill()
    with Client(addr) as c:
        c.send(build_request("GET", "/drop"))
        assert c.eof()
    assert o.request_count == 4


def test_backend_harness_modes_and_stop(origins: Any) -> None:
    a, b = origins("a", "b")
    (drop,) = origins("d", mode="drop")
    (rst,) = origins("r", mode="rst")
    with Client(("127.0.0.1", drop.port)) as c:
        assert c.eof()
    try:
        with Client(("127.0.0.1", rst.port)) as c:
            assert c.eof()
    except ConnectionResetError:
        pass  # the reset can beat connect() returning
    with Client(("127.0.0.1", a.port)) as c:
        assert c.request().backend == "a"
        assert a.open_connections == 1
        a.stop()
        assert c.eof()
    with pytest.raises(ConnectionRefusedError):
        Client(("127.0.0.1", a.port))
    assert a.open_connections == 0
    # A sleeping handler is woken by stop().
    with Client(("127.0.0.1", b.port)) as c:
        c.send(build_request("GET", "/sleep?s=30"))
        assert wait_for(lambda: b.request_count == 1)
        t0 = time.monotonic()
        b.stop()
        assert time.monotonic() - t0 < 2
        assert c.eof()


def test_backend_harness_rejects_bad_framing(origins: Any) -> None:
    """The origin records no request whose framing is ambiguous, so a proxy
    that forwarded a smuggling attempt would show in its error count."""
    (o,) = origins("a")
    bad = [
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n",
    ]
    for data in bad:
        with Client(("127.0.0.1", o.port)) as c:
            c.send(data)
            assert c.eof()
    assert o.request_count == 0
    assert wait_for(lambda: o.bad == len(bad))


# ====================================================== through the proxy


def test_basic_get_through_proxy(origins: Any, proxy: Any) -> None:
    (a,) = origins("a")
    addr = proxy(cfg([a]))
    r = get(addr, "/hello?x=1")
    assert r.status == 200 and r.backend == "a"
    d = r.json()
    assert (d["method"], d["target"], d["body_length"]) == ("GET", "/hello?x=1", 0)
    (seen,) = a.requests
    assert seen.header("Host") == "example.com"


# ------------------------------------------------------------------ routing


ROUTE_NAMES = ("web", "api", "wild", "static", "exact", "meth", "hdreq", "hdrhas", "ckeq", "ckhas")


def _routing_setup(origins: Any, proxy: Any) -> tuple[tuple[str, int], list[Origin]]:
    os_ = origins(*ROUTE_NAMES)
    by = dict(zip(ROUTE_NAMES, os_, strict=True))
    routes = [
        {"match": {"host": "api.example.com"}, "backend": "api"},
        {"match": {"host": "*.wild.test"}, "backend": "wild"},
        {"match": {"path_prefix": "/static/"}, "backend": "static"},
        {"match": {"path": "/exact"}, "backend": "exact"},
        {"match": {"methods": ["DELETE", "PATCH"]}, "backend": "meth"},
        {"match": {"headers": {"X-A": "1"}}, "backend": "hdreq"},
        {"match": {"headers": {"X-B": True}}, "backend": "hdrhas"},
        {"match": {"cookies": {"c": "v"}}, "backend": "ckeq"},
        {"match": {"cookies": {"p": True}}, "backend": "ckhas"},
    ]
    backends = {n: pool([by[n]]) for n in ROUTE_NAMES if n != "web"}
    addr = proxy(cfg([by["web"]], routes=routes, backends=backends))
    return addr, os_


def test_routing_each_matcher(origins: Any, proxy: Any) -> None:
    addr, _ = _routing_setup(origins, proxy)
    cases: list[tuple[str, str, str, list[tuple[str, str]], str]] = [
        # method, target, host, headers, expected backend
        ("GET", "/", "example.com", [], "web"),
        ("GET", "/", "api.example.com", [], "api"),
        ("GET", "/", "API.Example.COM", [], "api"),
        ("GET", "/", "api.example.com:8080", [], "api"),
        ("GET", "/", "api.example.com.", [], "api"),
        ("GET", "/", "xapi.example.com", [], "web"),
        ("GET", "/", "x.wild.test", [], "wild"),
        ("GET", "/", "a.b.WILD.test:81", [], "wild"),
        ("GET", "/", "wild.test", [], "web"),
        ("GET", "/static/app.js", "example.com", [], "static"),
        ("GET", "/static/", "example.com", [], "static"),
        ("GET", "/static", "example.com", [], "web"),
        ("GET", "/STATIC/x", "example.com", [], "web"),
        ("GET", "/exact", "example.com", [], "exact"),
        ("GET", "/exact?q=1", "example.com", [], "exact"),
        ("GET", "/exact/", "example.com", [], "web"),
        ("GET", "/exactly", "example.com", [], "web"),
        ("DELETE", "/", "example.com", [], "meth"),
        ("PATCH", "/", "example.com", [], "meth"),
        ("POST", "/", "example.com", [], "web"),
        ("GET", "/", "example.com", [("X-A", "1")], "hdreq"),
        ("GET", "/", "example.com", [("x-a", "1")], "hdreq"),
        ("GET", "/", "example.com", [("X-A", "2")], "web"),
        ("GET", "/", "example.com", [("X-A", "2"), ("X-A", "1")], "hdreq"),
        ("GET", "/", "example.com", [("X-B", "anything")], "hdrhas"),
        ("GET", "/", "example.com", [("X-B", "")], "hdrhas"),
        ("GET", "/", "example.com", [("Cookie", "c=v")], "ckeq"),
        ("GET", "/", "example.com", [("Cookie", "a=1; c=v; z=2")], "ckeq"),
        ("GET", "/", "example.com", [("Cookie", "c=w")], "web"),
        ("GET", "/", "example.com", [("Cookie", "C=v")], "web"),
        ("GET", "/", "example.com", [("Cookie", "p=1")], "ckhas"),
        ("GET", "/", "example.com", [("Cookie", "x=1"), ("Cookie", "p=2")], "ckhas"),
        # First match wins.
        ("DELETE", "/static/x", "api.example.com", [("X-A", "1")], "api"),
        ("DELETE", "/static/x", "x.wild.test", [], "wild"),
        ("DELETE", "/static/x", "example.com", [("X-A", "1")], "static"),
        ("DELETE", "/exact", "example.com", [], "exact"),
        ("GET", "/", "example.com", [("X-B", "1"), ("Cookie", "c=v")], "hdrhas"),
    ]
    wrong = []
    with Client(addr) as c:
        for method, target, host, headers, want in cases:
            body = b"" if method in ("POST", "PATCH") else None
            r = c.request(method, target, host=host, headers=headers, body=body)
            got = r.backend if r.status == 200 else r.status
            if got != want:
                wrong.append((method, target, host, headers, want, got))
    assert not wrong, wrong


def test_routing_all_conditions_of_a_route(origins: Any, proxy: Any) -> None:
    web, api = origins("web", "api")
    match = {
        "host": "api.example.com",
        "path_prefix": "/v1/",
        "methods": ["GET"],
        "headers": {"X-A": "1", "X-B": True},
        "cookies": {"c": "v"},
    }
    addr = proxy(
        cfg([web], routes=[{"match": match, "backend": "api"}], backends={"api": pool([api])})
    )
    full = {
        "method": "GET",
        "target": "/v1/x",
        "host": "api.example.com",
        "headers": [("X-A", "1"), ("X-B", "z"), ("Cookie", "c=v")],
    }
    assert get(addr, **full).backend == "api"
    variants = [
        {"host": "www.example.com"},
        {"target": "/v2/x"},
        {"method": "HEAD"},
        {"headers": [("X-B", "z"), ("Cookie", "c=v")]},
        {"headers": [("X-A", "1"), ("Cookie", "c=v")]},
        {"headers": [("X-A", "1"), ("X-B", "z")]},
        {"headers": [("X-A", "1"), ("X-B", "z"), ("Cookie", "c=vv")]},
    ]
    for change in variants:
        r = get(addr, **{**full, **change})
        assert r.status == 200 and r.header("X-Backend-Name") == "web", change


def test_strip_and_rewrite_prefix(origins: Any, proxy: Any) -> None:
    (o,) = origins("a")
    routes = [
        {"match": {"path_prefix": "/v1/"}, "backend": "web", "strip_prefix": "/v1"},
        {
            "match": {"path_prefix": "/v2/"},
            "backend": "web",
            "strip_prefix": "/v2/",
            "rewrite_prefix": "/",
        },
        {"match": {"path_prefix": "/old/"}, "backend": "web", "rewrite_prefix": "/new/"},
        {"match": {"path_prefix": "/v3"}, "backend": "web", "strip_prefix": "/v3"},
        {
            "match": {"path_prefix": "/api/"},
            "backend": "web",
            "strip_prefix": "/api",
            "rewrite_prefix": "/internal/api",
        },
    ]
    addr = proxy(cfg([o], routes=routes))
    cases = {
        "/v1/users?x=1": "/users?x=1",
        "/v1/": "/",
        "/v2/a/b": "/a/b",
        "/v2/": "/",
        "/old/x?y": "/new/x?y",
        "/v3": "/",
        "/v3?q=1": "/?q=1",
        "/v3/z": "/z",
        "/api/v/1": "/internal/api/v/1",
        "/other/v1/x": "/other/v1/x",
    }
    with Client(addr) as c:
        got = {t: c.request("GET", t).json()["target"] for t in cases}
    assert got == cases


def test_no_route_is_404(origins: Any, proxy: Any) -> None:
    (o,) = origins("a")
    addr = proxy(
        cfg([o], routes=[{"match": {"host": "only.example"}, "backend": "web"}], default=None)
    )
    assert get(addr, "/", host="only.example").backend == "a"
    r = get(addr, "/x", host="other.example")
    check_error(r, 404, [o])
    r = get(addr, "/", host="ONLY.example:8080")
    assert r.backend == "a"
    assert o.request_count == 2


# ---------------------------------------------------------------- balancing


def _keyed(key: str, k: int, variant: int) -> dict[str, Any]:
    """Request arguments whose balancing key is k; variants differ only
    outside the key."""
    if key == "uri":
        return {"target": f"/u/{k}?q={k}"}
    if key == "path":
        return {"target": f"/p/{k}?v={variant}"}
    if key.startswith("header:"):
        name = key.split(":", 1)[1]
        name = name.lower() if variant % 2 else name
        return {"target": f"/h?v={variant}", "headers": [(name, f"user{k}")]}
    return {"target": f"/c?v={variant}", "headers": [("Cookie", f"a={variant}; uid=user{k}; z=2")]}


@pytest.mark.parametrize("key", ["uri", "path", "header:X-User", "cookie:uid"])
@pytest.mark.parametrize("algo", ["maglev", "ring"])
def test_hash_key_affinity(origins: Any, proxy: Any, algo: str, key: str) -> None:
    os_ = origins("a", "b", "c")
    addr = proxy(cfg(os_, web_pool={"balance": algo, "hash_key": key}))
    owner: dict[int, str] = {}
    with Client(addr) as c:
        for k in range(30):
            owner[k] = c.request(**_keyed(key, k, 0)).backend
        # Same key, same server, on the same client connection...
        for k in range(30):
            assert c.request(**_keyed(key, k, 1)).backend == owner[k], k
    # ...and on new ones.
    for k in range(6):
        assert get(addr, **_keyed(key, k, 2)).backend == owner[k], k
    # Different keys spread.
    assert len(set(owner.values())) >= 2, owner


def _sticky_value(resp: Response, name: str) -> str | None:
    for line in resp.header_all("Set-Cookie"):
        first = line.split(";", 1)[0]
        n, _, v = first.partition("=")
        if n.strip() == name:
            return v.strip()
    return None


def test_sticky_cookie(origins: Any, proxy: Any) -> None:
    os_ = origins("a", "b", "c")
    by = {o.name: o for o in os_}
    addr = proxy(cfg(os_, web_pool={"sticky_cookie": "FLBSRV"}))
    cookie_of: dict[str, str] = {}
    for _ in range(6):
        r = get(addr, "/")
        value = _sticky_value(r, "FLBSRV")
        assert value, r.raw_head
        line = " ".join(r.header_all("Set-Cookie"))
        assert "127.0.0.1" not in line
        for o in os_:
            assert str(o.port) not in line, (o.port, line)
        assert cookie_of.setdefault(r.backend, value) == value
    # Round robin without the cookie reached every server, each with its id.
    assert sorted(cookie_of) == ["a", "b", "c"]
    assert len(set(cookie_of.values())) == 3
    first = "b"
    value = cookie_of[first]
    for i in range(9):
        r = get(addr, "/", headers=[("Cookie", f"x={i}; FLBSRV={value}; y=2")])
        assert r.backend == first
    by[first].stop()
    for _ in range(4):
        r = get(addr, "/", headers=[("Cookie", f"FLBSRV={value}")])
        assert r.status == 200 and r.backend != first
    # The other servers' cookies still stick.
    for name in ("a", "c"):
        for _ in range(3):
            assert get(addr, "/", headers=[("Cookie", f"FLBSRV={cookie_of[name]}")]).backend == name


# ------------------------------------------------------------------- bodies


def test_request_bodies_reach_backend_intact(origins: Any, proxy: Any) -> None:
    (o,) = origins("a")
    addr = proxy(cfg([o]))
    body = payload(5 * 1024 * 1024, seed=5)
    digest = sha256(body)
    with Client(addr, timeout=30) as c:
        d = c.request("POST", "/", body=body).json()
        assert (d["body_length"], d["body_sha256"]) == (len(body), digest)
        d = c.request("PUT", "/", body=body, chunked=True, trailers=[("X-Sum", digest)]).json()
        assert (d["body_length"], d["body_sha256"]) == (len(body), digest)
        assert [v for n, v in d["trailers"] if n.lower() == "x-sum"] == [digest]
        # An empty chunked body, and an echo both ways.
        d = c.request("POST", "/", body=b"", chunked=True).json()
        assert d["body_length"] == 0
        small = payload(1_000_000, seed=6)
        assert c.request("POST", "/echo", body=small).body == small
    assert o.accepted == 1


def test_response_framings(origins: Any, proxy: Any) -> None:
    (o,) = origins("a")
    addr = proxy(cfg([o]))
    with Client(addr, timeout=10) as c:
        r = c.request("GET", "/chunked?n=50&size=1000")
        assert r.status == 200 and r.body == payload(50_000, seed=1)
        assert r.framing == "chunked"
        assert r.trailer("X-Sum") == sha256(r.body) and r.trailer("X-Count") == "50"
        r = c.request("GET", "/big?size=3000000")
        assert r.framing == "length" and r.header("Content-Length") == "3000000"
        assert r.body == payload(3_000_000)
        # Bodiless responses, each followed by a request on the same
        # connection: a proxy that waited for a body would hang or desync.
        r = c.request("HEAD", "/")
        assert r.status == 200 and r.body == b"" and int(r.header("Content-Length") or 0) > 0
        assert c.request("GET", "/after-head").json()["target"] == "/after-head"
        r = c.request("HEAD", "/chunked?n=3")
        assert r.status == 200 and r.body == b""
        assert c.request("GET", "/after-head2").json()["target"] == "/after-head2"
        r = c.request("GET", "/status/204")
        assert (r.status, r.body) == (204, b"")
        assert c.request("GET", "/after-204").json()["target"] == "/after-204"
        r = c.request("GET", "/status/304", headers=[("If-None-Match", '"v1"')])
        assert (r.status, r.body) == (304, b"")
        assert c.request("GET", "/after-304").json()["target"] == "/after-304"
        # Close-delimited: the client gets the whole body, whatever framing
        # fastlb chose for it.
        r = c.request("GET", "/close?size=200000")
        assert r.status == 200 and r.body == payload(200_000, seed=2)
        if r.framing == "close":
            assert c.eof()
        else:
            assert c.request("GET", "/after-close").json()["target"] == "/after-close"
    assert get(addr, "/close?size=10").body == payload(10, seed=2)


def test_pipelined_requests_answered_in_order(origins: Any, proxy: Any) -> None:
    a, b = origins("a", "b")
    addr = proxy(cfg([a, b]))
    with Client(addr) as c:
        c.send(
            build_request("GET", "/sleep?s=0.2")
            + build_request("POST", "/p2", body=b"x" * 5000)
            + build_request("GET", "/p3")
        )
        got = [c.read_response(m).json()["target"] for m in ("GET", "POST", "GET")]
        assert got == ["/sleep?s=0.2", "/p2", "/p3"]
        # The connection is still in sync.
        assert c.request("GET", "/p4").json()["target"] == "/p4"


def test_expect_100_continue(origins: Any, proxy: Any) -> None:
    (o,) = origins("a")
    addr = proxy(cfg([o]))
    body = payload(200_000, seed=7)
    head = build_request(
        "POST", "/", headers=[("Expect", "100-continue"), ("Content-Length", str(len(body)))]
    )
    with Client(addr) as c:
        c.send(head)
        interim = c.read_response("POST", skip_interim=False)
        assert interim.status == 100, interim.raw_head
        assert interim.body == b""
        c.send(body)
        r = c.read_response("POST")
        assert r.status == 200
        d = r.json()
        assert (d["body_length"], d["body_sha256"]) == (len(body), sha256(body))
        assert c.request("GET", "/next").json()["target"] == "/next"
    assert o.request_count == 2


def test_expect_100_continue_origin_silent(origins: Any, proxy: Any) -> None:
    """An origin that never sends 100 Continue: the client, like curl,
    sends its body after a short wait (whether or not fastlb answered 100
    itself) and gets the final response; nothing hangs."""
    (o,) = origins("a", send_continue=False)
    addr = proxy(cfg([o]))
    body = payload(200_000, seed=7)
    head = build_request(
        "POST", "/", headers=[("Expect", "100-continue"), ("Content-Length", str(len(body)))]
    )
    with Client(addr) as c:
        c.send(head)
        c.sock.settimeout(1.0)
        try:
            interim = c.read_response("POST", skip_interim=False)
            assert interim.status == 100, interim.raw_head
        except TimeoutError:
            pass
        c.sock.settimeout(c.timeout)
        c.send(body)
        r = c.read_response("POST")
        assert r.status == 200
        d = r.json()
        assert (d["body_length"], d["body_sha256"]) == (len(body), sha256(body))
        assert c.request("GET", "/next").json()["target"] == "/next"


def test_websocket_upgrade_echo(origins: Any, proxy: Any) -> None:
    (o,) = origins("a")
    addr = proxy(cfg([o]))
    key = base64.b64encode(b"fastlb-test-key!").decode()
    with Client(addr) as c:
        c.send(
            build_request(
                "GET",
                "/ws",
                headers=[
                    ("Upgrade", "websocket"),
                    ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Key", key),
                    ("Sec-WebSocket-Version", "13"),
                ],
            )
        )
        r = c.read_response()
        assert r.status == 101, r.raw_head
        assert (r.header("Upgrade") or "").lower() == "websocket"
        assert "upgrade" in (r.header("Connection") or "").lower()
        want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        assert r.header("Sec-WebSocket-Accept") == want
        c.send(b"hello")
        assert c.r.read_exact(5) == b"hello"
        big = payload(500_000, seed=8)
        sender = threading.Thread(target=c.send, args=(big,))
        sender.start()
        assert c.r.read_exact(len(big)) == big
        sender.join(10)
        c.sock.shutdown(socket.SHUT_WR)
        assert c.eof(5)
    (seen,) = o.requests
    assert (seen.header("Upgrade") or "").lower() == "websocket"
    assert "upgrade" in (seen.header("Connection") or "").lower()
    assert seen.header("Sec-WebSocket-Key") == key


# ------------------------------------------------------------------- errors


def test_error_400_malformed_closes(origins: Any, proxy: Any) -> None:
    (o,) = origins("a")
    addr = proxy(cfg([o]))
    r, closed = raw_then_eof(addr, b"GET / HTTP/1.1\r\nHost: a\r\nNoColonHere\r\n\r\n")
    check_error(r, 400, [o])
    assert closed
    # After a good request on the same connection too.
    with Client(addr) as c:
        assert c.request().backend == "a"
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n")
        check_error(c.read_response(), 400, [o])
        assert c.eof()
    assert o.request_count == 1


def test_error_431_head_too_large(origins: Any, proxy: Any) -> None:
    (o,) = origins("a")
    addr = proxy(cfg([o], listener={"max_header_size": "8KiB"}))
    assert get(addr, "/", headers=[("X-Big", "a" * 7000)]).status == 200
    r = raw(addr, build_request(headers=[("X-Big", "a" * 10000)]))
    check_error(r, 431, [o])
    many = [(f"X-H{i}", "v" * 60) for i in range(200)]
    r = raw(addr, build_request(headers=many))
    check_error(r, 431, [o])
    assert o.request_count == 1


def test_error_413_body_too_large(origins: Any, proxy: Any) -> None:
    (o,) = origins("a")
    routes = [{"match": {"path_prefix": "/up"}, "backend": "web", "max_body_size": "1KiB"}]
    addr = proxy(cfg([o], routes=routes))
    assert get(addr, "/up", method="POST", body=b"x" * 1024).status == 200
    r = raw(addr, build_request("POST", "/up", body=b"x" * 2000), "POST")
    check_error(r, 413, [o])
    # Other routes are not limited.
    assert get(addr, "/other", method="POST", body=b"x" * 100_000).status == 200
    assert [len(q.body) for q in o.requests] == [1024, 100_000]


def test_error_413_chunked_body_too_large(origins: Any, proxy: Any) -> None:
    (o,) = origins("a")
    routes = [{"match": {"path_prefix": "/up"}, "backend": "web", "max_body_size": "1KiB"}]
    addr = proxy(cfg([o], routes=routes))
    r = raw(addr, build_request("POST", "/up", body=b"y" * 5000, chunked=True), "POST")
    check_error(r, 413, [o])
    assert o.request_count == 0


def test_error_502_refused(origins: Any, proxy: Any) -> None:
    dead, dead_addr = refusing_address()
    try:
        addr = proxy(cfg([dead_addr]))
        r = raw(addr, build_request())
        check_error(r, 502, [dead_addr])
    finally:
        dead.close()


def test_error_502_server_closes_without_answer(origins: Any, proxy: Any) -> None:
    (drop,) = origins("d", mode="drop")
    (o,) = origins("a")
    # max_fails high: the failures below must not mark "a" down (503).
    addr = proxy(
        cfg(
            [drop],
            backends={"a": pool([o], max_fails=100)},
            routes=[{"match": {"path_prefix": "/a/"}, "backend": "a", "strip_prefix": "/a"}],
        )
    )
    r = raw(addr, build_request())
    check_error(r, 502, [drop])
    # A server that reads the request and closes: a POST is not replayed.
    r = raw(addr, build_request("POST", "/a/drop", body=b"once"), "POST")
    check_error(r, 502, [o])
    assert [(q.method, q.body) for q in o.requests] == [("POST", b"once")]
    r = raw(addr, build_request("GET", "/a/reset"))
    check_error(r, 502, [o])


def test_error_503_no_server_up(origins: Any, proxy: Any) -> None:
    a, b = origins("a", "b")
    addr = proxy(
        cfg([{"address": a.address, "state": "maint"}, {"address": b.address, "state": "down"}])
    )
    r = raw(addr, build_request())
    check_error(r, 503, [a, b])
    assert total_requests([a, b]) == 0


def test_error_504_response_timeout(origins: Any, proxy: Any) -> None:
    (o,) = origins("a")
    routes = [
        {
            "match": {"path": "/sleep", "headers": {"X-Route": "fast"}},
            "backend": "web",
            "response_timeout": "200ms",
        },
        {"backend": "web"},
    ]
    addr = proxy(cfg([o], routes=routes, listener={"response_timeout": "1s"}))

    def timed(headers: list[tuple[str, str]]) -> tuple[Response, float]:
        with Client(addr) as c:
            t0 = time.monotonic()
            c.send(build_request("GET", "/sleep?s=3", headers=headers))
            r = c.read_response()
            return r, time.monotonic() - t0

    r, elapsed = timed([])
    check_error(r, 504, [o])
    assert 0.9 <= elapsed < 2.0, elapsed
    # The route's own response_timeout.
    r, elapsed = timed([("X-Route", "fast")])
    check_error(r, 504, [o])
    assert 0.15 <= elapsed < 0.8, elapsed
    # Within the timeout: answered.
    assert get(addr, "/sleep?s=0.1").status == 200


def test_error_408_header_timeout(origins: Any, proxy: Any) -> None:
    (o,) = origins("a")
    addr = proxy(cfg([o], listener={"header_timeout": "0.5s"}))
    with Client(addr) as c:
        t0 = time.monotonic()
        c.send(b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Partial: ")
        r = c.read_response()
        elapsed = time.monotonic() - t0
        check_error(r, 408, [o])
        assert 0.4 <= elapsed < 2.5, elapsed
        assert c.eof()
    assert o.request_count == 0


def test_error_405_connect(origins: Any, proxy: Any) -> None:
    (o,) = origins("a")
    addr = proxy(cfg([o]))
    r = raw(addr, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    check_error(r, 405, [o])
    assert o.request_count == 0


SMUGGLING = {
    "cl_and_te": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_and_cl": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Length: 5\r\n\r\n0\r\n\r\n",
    "two_cl": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "cl_list": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello",
    "cl_sign": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello",
    "te_identity": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\nhello",
    "te_chunked_gzip": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
    b"0\r\n\r\n",
    "te_chunked_twice": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_syntax": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n",
    "obs_fold": b"GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n",
    "obs_fold_te": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
    "space_before_colon": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n"
    b"0\r\n\r\n",
    "bare_lf": b"GET / HTTP/1.1\nHost: a\r\n\r\n",
    "bare_lf_header": b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n",
    "bare_cr": b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
    "chunk_size_invalid": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"zz\r\nhello\r\n0\r\n\r\n",
    "chunk_size_overflow": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"fffffffffffffffff1\r\nhello\r\n0\r\n\r\n",
    "two_hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "no_host": b"GET / HTTP/1.1\r\nX: y\r\n\r\n",
    "nul_in_value": b"GET / HTTP/1.1\r\nHost: a\r\nX-Bad: a\x00b\r\n\r\n",
    "ctl_in_value": b"GET / HTTP/1.1\r\nHost: a\r\nX-Bad: a\x01b\r\n\r\n",
    "request_line_spaces": b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
}


def test_smuggling_attempts_rejected(origins: Any, proxy: Any) -> None:
    os_ = origins("a", "b")
    addr = proxy(cfg(os_))
    wrong = {}
    for name, data in SMUGGLING.items():
        try:
            r, closed = raw_then_eof(addr, data, "POST" if data.startswith(b"POST") else "GET")
            check_error(r, 400, os_)
            assert closed, "connection left open"
        except (AssertionError, OSError, EOFError) as exc:
            wrong[name] = repr(exc)[:300]
    assert not wrong, wrong
    assert total_requests(os_) == 0, [(o.name, o.requests, o.bad) for o in os_]
    # The proxy still works.
    assert get(addr).status == 200


# ------------------------------------------------------------------ headers


HOP_BY_HOP = [
    ("Connection", "keep-alive, X-Hop"),
    ("X-Hop", "1"),
    ("Keep-Alive", "timeout=5"),
    ("TE", "trailers"),
    ("Trailer", "X-T"),
    ("Proxy-Connection", "keep-alive"),
    ("Upgrade", "h2c"),  # not listed in Connection: no upgrade, dropped
]


def test_request_headers_as_backend_sees_them(origins: Any, proxy: Any) -> None:
    (o,) = origins("a")
    routes = [
        {
            "match": {"path_prefix": "/r/"},
            "backend": "web",
            "request_headers": {
                "set": {"X-Env": "prod"},
                "add": {"X-Add": "1"},
                "remove": ["X-Debug"],
            },
        },
        {"backend": "web"},
    ]
    addr = proxy(cfg([o], routes=routes))
    sent = [
        *HOP_BY_HOP,
        ("X-Forwarded-For", "1.2.3.4"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "evil.example"),
        ("X-Env", "dev"),
        ("X-Add", "0"),
        ("X-Debug", "1"),
        ("X-Keep", "yes"),
    ]
    r = get(addr, "/r/x", host="shop.example.com", headers=sent)
    assert r.status == 200
    (seen,) = o.requests
    names = seen.names()
    for gone in ("x-hop", "keep-alive", "te", "trailer", "proxy-connection", "upgrade", "x-debug"):
        assert gone not in names, (gone, seen.headers)
    conn = {t.strip().lower() for v in seen.header_all("Connection") for t in v.split(",")}
    assert conn <= {"keep-alive", "close"}, conn
    assert seen.header_all("Host") == ["shop.example.com"]
    assert seen.header_all("X-Forwarded-For") == ["1.2.3.4, 127.0.0.1"]
    assert seen.header_all("X-Forwarded-Proto") == ["http"]
    assert seen.header_all("X-Forwarded-Host") == ["shop.example.com"]
    assert seen.header_all("X-Env") == ["prod"]
    assert seen.header_all("X-Add") == ["0", "1"]
    assert seen.header_all("X-Keep") == ["yes"]
    (rid,) = seen.header_all("X-Request-Id")
    assert rid.strip()
    assert "forwarded" not in names and "via" not in names
    # Without an X-Forwarded-For, and with the route ops not applying.
    get(addr, "/plain", headers=[("X-Env", "dev"), ("X-Debug", "1")])
    seen = o.requests[-1]
    assert seen.header_all("X-Forwarded-For") == ["127.0.0.1"]
    assert seen.header_all("X-Env") == ["dev"] and seen.header_all("X-Debug") == ["1"]
    # Request ids differ per request.
    ids = {q.header("X-Request-Id") for q in o.requests}
    assert len(ids) == 2


def test_request_id_kept_renamed_disabled(origins: Any, proxy: Any) -> None:
    (o,) = origins("a")
    addr = proxy(cfg([o]))
    get(addr, "/", headers=[("X-Request-Id", "abc-123")])
    assert o.requests[-1].header_all("X-Request-Id") == ["abc-123"]
    (p,) = origins("p")
    addr = proxy(cfg([p], listener={"request_id": "X-Trace"}))
    get(addr, "/")
    seen = p.requests[-1]
    assert seen.header("X-Trace") and "x-request-id" not in seen.names()
    (q,) = origins("q")
    addr = proxy(cfg([q], listener={"request_id": False}))
    get(addr, "/")
    assert "x-request-id" not in q.requests[-1].names()


def test_forwarded_and_via(origins: Any, proxy: Any) -> None:
    (o,) = origins("a")
    addr = proxy(
        cfg(
            [o],
            listener={
                "forwarded": True,
                "via": True,
                "forwarded_for": False,
                "forwarded_proto": False,
                "forwarded_host": False,
            },
        )
    )
    r = get(addr, "/", host="shop.example.com", headers=[("X-Forwarded-For", "1.2.3.4")])
    seen = o.requests[-1]
    (fwd,) = seen.header_all("Forwarded")
    parts = {
        p.split("=", 1)[0].strip().lower(): p.split("=", 1)[1].strip().strip('"')
        for p in fwd.split(";")
    }
    assert parts["for"] == "127.0.0.1" and parts["proto"] == "http"
    assert parts["host"] == "shop.example.com"
    assert "fastlb" in (seen.header("Via") or "")
    assert "fastlb" in (r.header("Via") or "")
    # The X-Forwarded-* family is off: the client's line passes as is.
    assert seen.header_all("X-Forwarded-For") == ["1.2.3.4"]
    assert "x-forwarded-proto" not in seen.names() and "x-forwarded-host" not in seen.names()


def test_response_headers(origins: Any, proxy: Any) -> None:
    (o,) = origins("a")
    routes = [
        {
            "match": {"path_prefix": "/r"},
            "backend": "web",
            "response_headers": {
                "set": {"X-Frame-Options": "DENY", "X-Backend-Name": "hidden"},
                "remove": ["X-Powered-By"],
            },
        },
        {"backend": "web"},
    ]
    addr = proxy(cfg([o], routes=routes))
    r = get(addr, "/r")
    assert r.header_all("X-Frame-Options") == ["DENY"]
    assert r.header_all("X-Backend-Name") == ["hidden"]
    assert "x-powered-by" not in r.names()
    assert r.header("Server") == "test-origin"  # hide_backend is off
    # Hop-by-hop response headers are dropped.
    r = get(addr, "/hop")
    assert r.status == 200 and r.backend == "a"
    for gone in ("keep-alive", "x-hop-resp", "proxy-connection"):
        assert gone not in r.names(), (gone, r.headers)
    assert r.header("X-Powered-By") == "test" and r.header("X-Backend-Name") == "a"


def test_hide_backend(origins: Any, proxy: Any) -> None:
    (o,) = origins("a")
    addr = proxy(cfg([o], listener={"hide_backend": True}))
    r = get(addr, "/")
    assert r.status == 200 and r.backend == "a"
    assert "server" not in r.names() or r.header("Server") != "test-origin"
    assert "x-powered-by" not in r.names()


# ------------------------------------------------- failover and keep-alive


def test_backend_killed_under_load(origins: Any, proxy: Any) -> None:
    a, b = origins("a", "b")
    addr = proxy(cfg([a, b], web_pool={"retries": 2, "keepalive": 32}))
    end = time.monotonic() + 2.0
    got: Counter[str] = Counter()
    failures: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        c = Client(addr)
        try:
            while time.monotonic() < end:
                try:
                    r = c.request("GET", "/")
                except (OSError, EOFError, ValueError) as exc:
                    with lock:
                        failures.append(repr(exc))
                    c.close()
                    c = Client(addr)
                    continue
                with lock:
                    if r.status == 200:
                        got[r.backend] += 1
                    else:
                        failures.append(f"status {r.status}")
                if "close" in (r.header("Connection") or "").lower():
                    c.close()
                    c = Client(addr)
        finally:
            c.close()

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    b.stop()
    for t in threads:
        t.join(10)
    assert not failures, (len(failures), failures[:5], got)
    assert got["a"] > 0 and got["b"] > 0, got
    assert [get(addr).backend for _ in range(6)] == ["a"] * 6


def test_client_and_upstream_keepalive(origins: Any, proxy: Any) -> None:
    (o,) = origins("a")
    addr = proxy(cfg([o], web_pool={"keepalive": 32}))
    with Client(addr) as c:
        for i in range(50):
            r = c.request("GET", f"/k{i}")
            assert r.status == 200 and r.json()["target"] == f"/k{i}"
    assert o.accepted <= 2, o.accepted
    # Five client connections one after the other: the idle upstream
    # connection is handed on.
    for j in range(5):
        with Client(addr) as c:
            for i in range(10):
                assert c.request("GET", f"/c{j}/{i}").status == 200
    assert o.accepted <= 5, o.accepted
    assert o.request_count == 100


def test_client_connection_close_and_http10(origins: Any, proxy: Any) -> None:
    (o,) = origins("a")
    addr = proxy(cfg([o]))
    with Client(addr) as c:
        r = c.request("GET", "/", headers=[("Connection", "close")])
        assert r.status == 200
        assert c.eof()
    with Client(addr) as c:
        r = c.request("GET", "/", version="HTTP/1.0", host=None)
        assert r.status == 200
        assert c.eof()
    with Client(addr) as c:
        r = c.request("GET", "/", version="HTTP/1.0", headers=[("Connection", "keep-alive")])
        assert r.status == 200
        assert c.request("GET", "/again").json()["target"] == "/again"
    # The upstream request is HTTP/1.1 with a Host even for an HTTP/1.0
    # client without one.
    seen = o.requests[1]
    assert seen.version == "HTTP/1.1" and len(seen.header_all("Host")) == 1


def test_keepalive_timeout_closes_idle_client(origins: Any, proxy: Any) -> None:
    (o,) = origins("a")
    addr = proxy(cfg([o], listener={"keepalive_timeout": "0.5s"}))
    with Client(addr) as c:
        assert c.request().status == 200
        t0 = time.monotonic()
        assert c.eof(3.0)
        assert 0.3 <= time.monotonic() - t0 < 2.5


# ---------------------------------------------------------------- hygiene


def test_no_fd_leak(origins: Any) -> None:
    a, b = origins("a", "b")
    (drop,) = origins("d", mode="drop")
    dead, dead_addr = refusing_address()
    routes = [
        {"match": {"path_prefix": "/dead"}, "backend": "dead"},
        {"match": {"path_prefix": "/drop"}, "backend": "drop"},
        {"match": {"path": "/sleep"}, "backend": "web", "response_timeout": "300ms"},
        {"match": {"path_prefix": "/small"}, "backend": "web", "max_body_size": "1KiB"},
        {"backend": "web"},
    ]
    data = cfg(
        [a, b], routes=routes, workers=2, backends={"dead": pool([dead_addr]), "drop": pool([drop])}
    )
    proc = psutil.Process()
    before = proc.num_fds()
    before_fds = open_fds()
    held: list[Client] = []
    with Engine(parse_config(data)) as e:
        addr = e.addresses()["web"]
        for _ in range(3):
            with Client(addr) as c:
                for i in range(10):
                    assert c.request("GET", f"/x{i}").status == 200
                assert c.request("POST", "/", body=payload(300_000), chunked=True).status == 200
                assert c.request("GET", "/chunked?n=5").status == 200
                assert c.request("GET", "/close?size=1000").status == 200
            # 503 once passive health has marked the server down.
            assert get(addr, "/dead").status in (502, 503)
            assert get(addr, "/drop").status in (502, 503)
            assert get(addr, "/sleep?s=0.6").status == 504
            assert get(addr, "/small", method="POST", body=b"z" * 5000).status == 413
            r = raw(addr, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
            assert r.status == 400
            r = raw(addr, build_request(headers=[("X-Big", "a" * 10000)]))
            assert r.status == 431
            with Client(addr) as c:
                c.send(
                    build_request(
                        "GET",
                        "/ws",
                        headers=[
                            ("Upgrade", "websocket"),
                            ("Connection", "Upgrade"),
                            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                            ("Sec-WebSocket-Version", "13"),
                        ],
                    )
                )
                assert c.read_response().status == 101
                c.send(b"abc")
                assert c.r.read_exact(3) == b"abc"
            for _ in range(5):
                held.append(Client(addr))
                held[-1].send(b"GET / HTTP/1.1\r\nHost: a\r\n")  # half a head
        time.sleep(0.1)
    for c in held:
        c.close()
    # The origins close their ends asynchronously; the sleeping one wakes.
    ok = wait_for(lambda: proc.num_fds() == before, 10)
    now = open_fds()
    assert ok, (
        proc.num_fds(),
        before,
        {fd: t for fd, t in now.items() if before_fds.get(fd) != t},
        {fd: t for fd, t in before_fds.items() if fd not in now},
    )
    dead.close()


# ============================================================ access log


def _log_lines(path: Path, count: int) -> list[str]:
    """The log's lines once it has at least count of them (the writer
    thread drains its rings every 50 ms)."""
    wait_for(lambda: path.exists() and path.read_text().count("\n") >= count, 5)
    return path.read_text().splitlines()


@pytest.mark.parametrize("fmt", ["combined", "json"])
def test_access_log(origins: Any, tmp_path: Path, fmt: str) -> None:
    (o,) = origins("a")
    log = tmp_path / f"access.{fmt}"
    data = cfg([o], listener={"access_log": str(log), "access_log_format": fmt})
    e = Engine(parse_config(data))
    e.start()
    try:
        addr = e.addresses()["web"]
        with Client(addr) as c:
            r = c.request(
                "GET", '/a?q="x"', headers=[("User-Agent", "t\u00e9st/1"), ("Referer", "http://r/")]
            )
            assert r.status == 200
            rid = r.header("X-Request-Id") or ""
            assert c.request("POST", "/p", body=b"z" * 1000).status == 200
        assert raw(addr, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").status == 400
        lines = _log_lines(log, 3)
    finally:
        e.stop()
    assert len(lines) == 3, lines
    if fmt == "json":
        recs = [json.loads(line) for line in lines]
        assert [r["status"] for r in recs] == [200, 200, 400]
        first = recs[0]
        assert first["method"] == "GET" and first["target"] == '/a?q="x"'
        assert first["user_agent"] == "t\u00e9st/1" and first["referer"] == "http://r/"
        assert first["upstream"] == f"{HOST}:{o.port}" and first["backend"] == "web"
        assert first["listener"] == "web" and first["client"] == HOST
        assert first["duration_ms"] >= first["upstream_ms"] >= 0
        assert recs[1]["bytes_in"] >= 1000 and recs[1]["method"] == "POST"
        assert recs[2]["upstream"] == "" and recs[2]["upstream_ms"] is None
        if rid:
            assert first["request_id"] == rid
    else:
        assert lines[0].startswith(f"{HOST} - - [")
        assert '"GET /a?q=\\x22x\\x22 HTTP/1.1" 200 ' in lines[0]
        assert '"http://r/" "t\\xE9st/1"' in lines[0]  # the client sent latin-1
        assert f"upstream={HOST}:{o.port}" in lines[0] and "backend=web" in lines[0]
        assert '"POST /p HTTP/1.1" 200 ' in lines[1]
        assert " 400 " in lines[2] and "upstream=-" in lines[2]


def test_access_log_survives_update_and_bad_path_is_an_error(origins: Any, tmp_path: Path) -> None:
    (o,) = origins("a")
    log = tmp_path / "access.log"
    data = cfg([o], listener={"access_log": str(log)})
    e = Engine(parse_config(data))
    e.start()
    try:
        addr = e.addresses()["web"]
        assert get(addr, "/one").status == 200
        e.update(parse_config(data))
        assert get(addr, "/two").status == 200
        lines = _log_lines(log, 2)
        bad = cfg([o], listener={"access_log": str(tmp_path / "no" / "such" / "dir.log")})
        with pytest.raises((ValueError, OSError), match="access log"):
            e.update(parse_config(bad))
        assert get(addr, "/three").status == 200  # the old config still runs
    finally:
        e.stop()
    assert [line.split('"')[1].split()[1] for line in lines] == ["/one", "/two"]
    assert len(_log_lines(log, 3)) == 3


def test_buffer_shortage_queues_requests_without_deadlock(origins: Any) -> None:
    """With room for only a few transactions' buffers, many concurrent
    clients are served in turn: a transaction reserves its buffers before
    it starts, so none waits for a buffer while holding others."""
    (o,) = origins("a")
    e = Engine(parse_config(cfg([o])), max_bufs=12, max_free_bufs=2)
    e.start()
    errors: list[str] = []

    def client(i: int) -> None:
        try:
            with Client(e.addresses()["web"]) as c:
                for k in range(5):
                    r = c.request("POST", f"/c{i}/{k}", body=payload(20_000, seed=i))
                    if r.status != 200:
                        errors.append(f"{i}/{k}: {r.status}")
        except Exception as exc:  # any failure is reported
            errors.append(f"{i}: {exc!r}")

    try:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors, errors[:5]
        assert o.request_count == 200
        worker = e.stats()["workers"][0]
        assert worker["res_waits"] > 0  # the shortage really happened
        assert wait_for(lambda: e.stats()["workers"][0]["bufs_used"] == 0, 5)
    finally:
        e.stop()


def test_stop_closes_idle_keepalive_and_finishes_in_flight(origins: Any) -> None:
    """A drain does not wait for idle keep-alive clients (closed at once),
    and a request in flight gets its response, with Connection: close."""
    (o,) = origins("a")
    e = Engine(parse_config(cfg([o], listener={"keepalive_timeout": "60s"})))
    e.start()
    addr = e.addresses()["web"]
    idle = Client(addr)
    assert idle.request("GET", "/warm").status == 200
    busy = Client(addr)
    busy.send(build_request("GET", "/sleep?s=0.5"))
    time.sleep(0.1)
    t0 = time.monotonic()
    stopper = threading.Thread(target=e.stop, kwargs={"drain_timeout": 5.0})
    stopper.start()
    r = busy.read_response()
    stopper.join(10)
    elapsed = time.monotonic() - t0
    assert r.status == 200
    assert (r.header("Connection") or "").lower() == "close"
    assert busy.eof(2.0) and idle.eof(2.0)
    assert elapsed < 2.0, elapsed  # not the 5 s drain timeout, not the 60 s keep-alive
    busy.close()
    idle.close()


def test_keepalive_client_follows_config_updates(origins: Any) -> None:
    """A kept-alive client moves onto the new config between two requests:
    its next request follows the new routes; the old snapshot is let go."""
    a, b = origins("a", "b")
    e = Engine(parse_config(cfg([a])))
    e.start()
    try:
        addr = e.addresses()["web"]
        with Client(addr) as c:
            assert c.request("GET", "/x").header("X-Backend-Name") == "a"
            e.update(parse_config(cfg([b])))
            for _ in range(3):
                assert c.request("GET", "/x").header("X-Backend-Name") == "b"
            routes = [{"match": {"path_prefix": "/a"}, "backend": "a"}, {"backend": "web"}]
            e.update(parse_config(cfg([b], routes=routes, backends={"a": pool([a])})))
            assert c.request("GET", "/a/1").header("X-Backend-Name") == "a"
            assert c.request("GET", "/z").header("X-Backend-Name") == "b"
        assert e.stats()["generation"] == 3
    finally:
        e.stop()


def test_access_log_reopen_after_rotation(origins: Any, tmp_path: Path) -> None:
    (o,) = origins("a")
    log = tmp_path / "access.log"
    e = Engine(parse_config(cfg([o], listener={"access_log": str(log)})))
    e.start()
    try:
        addr = e.addresses()["web"]
        assert get(addr, "/before").status == 200
        _log_lines(log, 1)
        rotated = tmp_path / "access.log.1"
        log.rename(rotated)
        assert e.reopen_logs() == 1
        assert wait_for(log.exists, 5)
        assert get(addr, "/after").status == 200
        lines = _log_lines(log, 1)
    finally:
        e.stop()
    assert "/after" in lines[0] and len(lines) == 1
    assert "/before" in rotated.read_text()


def test_twenty_updates_under_load_fail_nothing(origins: Any) -> None:
    """Config swaps (what a reload does to the engine) while clients keep
    requesting, on kept-alive and on new connections: nothing fails."""
    a, b = origins("a", "b")
    configs = [
        parse_config(cfg([a, b])),
        parse_config(cfg([b, a], web_pool={"balance": "least_conn"})),
        parse_config(
            cfg(
                [a, b],
                routes=[{"match": {"path_prefix": "/x"}, "backend": "web"}, {"backend": "web"}],
            )
        ),
    ]
    e = Engine(configs[0])
    e.start()
    stop = threading.Event()
    errors: list[str] = []
    done = [0]

    def client(keepalive: bool) -> None:
        addr = e.addresses()["web"]
        c = Client(addr) if keepalive else None
        try:
            while not stop.is_set():
                if keepalive:
                    assert c is not None
                    r = c.request("GET", "/x/1")
                else:
                    r = get(addr, "/x/2")
                if r.status != 200:
                    errors.append(str(r.status))
                done[0] += 1
        except Exception as exc:  # any failure is reported
            errors.append(repr(exc))
        finally:
            if c is not None:
                c.close()

    threads = [threading.Thread(target=client, args=(i % 2 == 0,)) for i in range(4)]
    try:
        for t in threads:
            t.start()
        for i in range(20):
            time.sleep(0.05)
            e.update(configs[(i + 1) % len(configs)])
        time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        e.stop()
    assert not errors, errors[:5]
    assert done[0] > 100
    assert e.stats()["generation"] == 21


@pytest.mark.parametrize("balance", ["round_robin", "weighted_round_robin", "maglev"])
def test_weight_zero_server_gets_no_requests(origins: Any, balance: str) -> None:
    a, b = origins("a", "b")
    data = cfg(
        backends={
            "web": {
                "balance": balance,
                "servers": [{"address": a.address, "weight": 0}, {"address": b.address}],
            }
        }
    )
    e = Engine(parse_config(data))
    e.start()
    try:
        addr = e.addresses()["web"]
        names = {get(addr, f"/w{i}").header("X-Backend-Name") for i in range(12)}
    finally:
        e.stop()
    assert names == {"b"} and a.request_count == 0
