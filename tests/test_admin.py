"""The admin API over HTTP (fastlb.admin): every endpoint, every error
status, auth with and without a token, persistence through the API, a
PATCH to maint that really stops traffic through a running http listener,
and `fastlb run` with the admin API as a subprocess."""

from __future__ import annotations

import hmac
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from aiohttp.test_utils import make_mocked_request
from control_helpers import (
    AdminClient,
    Backend,
    free_port,
    get,
    make_config,
    toml_config,
    wait_for,
)

import fastlb
from fastlb import admin as admin_mod
from fastlb.admin import TOKEN_ENV, AdminServer, ApiError, build_app, is_loopback
from fastlb.control import Controller

TOKEN = "s3cret-token"
SITE = os.path.dirname(os.path.dirname(os.path.abspath(fastlb.__file__)))


class Running:
    """A started Controller with its admin API."""

    def __init__(self, ctl: Controller, server: AdminServer, backends: list[Backend]) -> None:
        self.ctl = ctl
        self.server = server
        self.backends = backends
        self.api = AdminClient(server.url, TOKEN)
        host, port = ctl.addresses()["web"]
        self.web = f"http://{host}:{port}"

    def names(self, n: int) -> list[bytes]:
        """The backends n fresh requests through the listener reached."""
        return [get(self.web + "/")[1] for _ in range(n)]


@pytest.fixture
def backends() -> Iterator[list[Backend]]:
    servers = [Backend("a"), Backend("b"), Backend("c")]
    yield servers
    for server in servers:
        server.close()


def _start(backends: list[Backend], tmp_path: Path, **admin: Any) -> Running:
    config = make_config([b.address for b in backends[:2]], **admin)
    ctl = Controller(config, path=str(tmp_path / "fastlb.toml"))
    ctl.start()
    server = AdminServer(ctl)
    server.start()
    return Running(ctl, server, backends)


@pytest.fixture
def running(
    backends: list[Backend], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Running]:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    run = _start(backends, tmp_path, token=TOKEN, state_file=str(tmp_path / "state.json"))
    yield run
    run.server.stop()
    run.ctl.stop()


# ---- reads --------------------------------------------------------------------


def test_healthz_and_ready(running: Running) -> None:
    assert running.api.get("/healthz", token=None) == (200, {"status": "ok"})
    assert running.api.get("/ready", token=None) == (200, {"ready": True})
    running.ctl.begin_shutdown()
    assert running.api.get("/ready", token=None) == (503, {"ready": False, "reason": "draining"})


def test_stats(running: Running) -> None:
    running.names(3)

    def counted() -> bool:
        status, stats = running.api.get("/stats", token=None)
        assert status == 200
        return stats["listeners"]["web"]["resp_2xx"] == 3

    assert wait_for(counted)  # a worker counts a request as it ends
    stats = running.api.get("/stats", token=None)[1]
    assert stats["listeners"]["web"]["requests"] == 3
    assert set(stats["backends"]["web"]["servers"]) == {b.address for b in running.backends[:2]}


def test_metrics_endpoint(running: Running) -> None:
    status, text, headers = running.api.request("GET", "/metrics", token=None)
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=")
    assert "# HELP fastlb_listener_requests_total" in text


def test_backends(running: Running) -> None:
    a, b = (s.address for s in running.backends[:2])
    status, body = running.api.get("/backends", token=None)
    assert status == 200
    assert [s["address"] for s in body["backends"]["web"]["servers"]] == [a, b]
    status, body = running.api.get("/backends/web", token=None)
    assert status == 200 and body["name"] == "web" and body["balance"] == "round_robin"
    entry = body["servers"][0]
    assert {k: entry[k] for k in ("address", "weight", "state", "admin_state", "health")} == {
        "address": a,
        "weight": 1,
        "state": "up",
        "admin_state": "ready",
        "health": "unknown",
    }
    assert entry["source"] == "config" and entry["stats"]["requests"] == 0
    status, body = running.api.get(f"/backends/web/servers/{b}", token=None)
    assert status == 200 and body["address"] == b
    assert running.api.get("/backends/nope", token=None) == (
        404,
        {"error": "no backend named 'nope'"},
    )
    assert running.api.get("/backends/web/servers/127.0.0.1:1", token=None)[0] == 404


def test_config_is_redacted(running: Running) -> None:
    status, body = running.api.get("/config", token=None)
    assert status == 200
    assert body["admin"]["token"] == "<redacted>"
    assert TOKEN not in json.dumps(body)
    assert body["listeners"][0]["name"] == "web"
    running.api.request("PATCH", f"/backends/web/servers/{running.backends[0].address}",
                        {"weight": 9})  # fmt: skip
    effective = running.api.get("/config")[1]
    from_file = running.api.get("/config?view=file")[1]
    assert effective["backends"]["web"]["servers"][0]["weight"] == 9
    assert from_file["backends"]["web"]["servers"][0]["weight"] == 1
    assert running.api.get("/config?view=nope")[0] == 400


# ---- auth -----------------------------------------------------------------------


def test_changes_need_the_token(running: Running) -> None:
    path = f"/backends/web/servers/{running.backends[0].address}"
    status, body, headers = running.api.request("PATCH", path, {"weight": 2}, token=None)
    assert status == 401 and "Bearer" in body["error"]
    assert headers["WWW-Authenticate"] == 'Bearer realm="fastlb"'
    status, body, _ = running.api.request("PATCH", path, {"weight": 2}, token="wrong")
    assert (status, body) == (401, {"error": "wrong admin token"})
    status, _, _ = running.api.request(
        "PATCH", path, {"weight": 2}, token=None, headers={"Authorization": f"Basic {TOKEN}"}
    )
    assert status == 401
    assert running.ctl.overrides().kind(("web", running.backends[0].address)) is None
    assert running.api.request("PATCH", path, {"weight": 2})[0] == 200


def test_token_compared_in_constant_time(running: Running) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    with mock.patch.object(admin_mod.hmac, "compare_digest", spy):
        running.api.request("POST", "/reload", token="guess")
    assert calls == [(b"guess", TOKEN.encode())]


def test_no_token_refuses_changes(
    backends: list[Backend], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    run = _start(backends, tmp_path)
    try:
        status, body, _ = run.api.request("POST", "/reload", token="anything")
        assert status == 403
        assert "no admin token is set" in body["error"] and TOKEN_ENV in body["error"]
        assert run.api.get("/stats", token=None)[0] == 200  # reads stay open on loopback
        monkeypatch.setenv(TOKEN_ENV, "from-env")
        path = f"/backends/web/servers/{backends[0].address}"
        assert run.api.request("PATCH", path, {"weight": 2}, token="from-env")[0] == 200
    finally:
        run.server.stop()
        run.ctl.stop()


def test_env_token_overrides_the_config(running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    path = f"/backends/web/servers/{running.backends[0].address}"
    assert running.api.request("PATCH", path, {"weight": 2})[0] == 401
    assert running.api.request("PATCH", path, {"weight": 2}, token="from-env")[0] == 200


def test_reads_from_other_hosts_need_the_token() -> None:
    app, api = build_app(Controller(make_config(["127.0.0.1:7001"])), token=lambda: TOKEN)

    def request(path: str, peer: str, auth: str | None = None) -> Any:
        transport = mock.Mock()
        transport.get_extra_info.side_effect = lambda name, default=None: (
            (peer, 4000) if name == "peername" else default
        )
        headers = {"Authorization": auth} if auth else {}
        return make_mocked_request("GET", path, headers=headers, transport=transport, app=app)

    api.authorize(request("/stats", "127.0.0.1"), change=False)
    api.authorize(request("/ready", "192.0.2.7"), change=False)
    api.authorize(request("/healthz", "192.0.2.7"), change=False)
    api.authorize(request("/stats", "192.0.2.7", f"Bearer {TOKEN}"), change=False)
    with pytest.raises(ApiError) as info:
        api.authorize(request("/stats", "192.0.2.7"), change=False)
    assert info.value.status == 401
    assert is_loopback("::1") and is_loopback("::ffff:127.0.0.1") and is_loopback("127.8.0.1")
    assert not is_loopback("192.0.2.7") and not is_loopback(None)


# ---- errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        ("POST", "/backends/web/servers", b"{nope", 400, "the body is not valid JSON"),
        ("POST", "/backends/web/servers", b"[1]", 400, "the body must be a JSON object"),
        ("POST", "/backends/web/servers", {"weight": 1}, 400, "missing key 'address'"),
        ("POST", "/backends/web/servers", {"address": 5}, 400, "address must be a string, not 5"),
        (
            "POST",
            "/backends/web/servers",
            {"address": "127.0.0.1:9", "wieght": 2},
            400,
            "unknown key 'wieght' (did you mean 'weight'?); allowed: address, max_conn, state, "
            "weight",
        ),
        (
            "POST",
            "/backends/web/servers",
            {"address": "127.0.0.1:9", "weight": True},
            400,
            "weight must be an integer, not true",
        ),
        (
            "POST",
            "/backends/web/servers",
            {"address": "127.0.0.1:9", "weight": -1},
            400,
            "weight: Input should be greater than or equal to 0",
        ),
        (
            "POST",
            "/backends/web/servers",
            {"address": "127.0.0.1:9", "state": "up"},
            400,
            "state 'up' is not one of: ready, drain, maint",
        ),
        (
            "POST",
            "/backends/web/servers",
            {"address": "0.0.0.0:0"},
            400,
            "address: '0.0.0.0:0': a server's port must be in 1..65535",
        ),
        (
            "POST",
            "/backends/web/servers",
            {"address": "0.0.0.0:80"},
            400,
            "address: '0.0.0.0:80': 0.0.0.0 is the unspecified address",
        ),
        ("POST", "/backends/nope/servers", {"address": "127.0.0.1:9"}, 404, "no backend named"),
        ("PATCH", "/backends/web/servers/127.0.0.1:9", {"weight": 2}, 404, "has no server"),
        ("DELETE", "/backends/web/servers/127.0.0.1:9", None, 404, "has no server"),
        ("PATCH", "/backends/web/servers/{a}", {}, 400, "nothing to change"),
        ("POST", "/backends/web/servers", {"address": "{a}"}, 409, "already has server"),
        ("POST", "/stats", None, 405, "POST is not allowed on /stats"),
        ("PUT", "/backends/web/servers/{a}", {"weight": 2}, 405, "PUT is not allowed"),
        ("GET", "/nowhere", None, 404, "no such endpoint: /nowhere"),
    ],
)
def test_errors(
    running: Running, method: str, path: str, body: Any, status: int, error: str
) -> None:
    a = running.backends[0].address
    path = path.replace("{a}", a)
    if isinstance(body, dict) and body.get("address") == "{a}":
        body = {"address": a}
    raw = body if isinstance(body, bytes) else None
    got, answer, headers = running.api.request(method, path, None if raw else body, raw=raw)
    assert got == status
    assert error in answer["error"]
    assert headers["Content-Type"].startswith("application/json")
    if status == 405:
        assert "Allow" in headers


def test_body_size_is_bounded(running: Running) -> None:
    raw = b'{"address": "' + b"x" * 100_000 + b'"}'
    status, body, _ = running.api.request("POST", "/backends/web/servers", raw=raw)
    assert status == 413 and body == {"error": "the body is too large (the limit is 64 KiB)"}


def test_a_bug_is_a_json_500_with_the_traceback_logged(
    running: Running, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(running.ctl, "stats", broken)
    with caplog.at_level(logging.ERROR, logger="fastlb.admin"):
        status, body, headers = running.api.request("GET", "/stats")
    assert (status, body) == (500, {"error": "internal error: see fastlb's log"})
    assert headers["Content-Type"].startswith("application/json")
    assert any(r.exc_info and "a bug" in str(r.exc_info[1]) for r in caplog.records)


def _chunked(url: str, path: str, method: str, chunks: list[bytes]) -> tuple[int, Any]:
    """A request whose body is sent chunked (no Content-Length)."""
    import http.client
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(
            method,
            path,
            body=iter(chunks),
            headers={"Authorization": f"Bearer {TOKEN}"},
            encode_chunked=True,
        )
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_chunked_body_size_is_bounded(running: Running) -> None:
    chunks = [b'{"address": "'] + [b"x" * 8192] * 10 + [b'"}']
    status, body = _chunked(running.server.url, "/backends/web/servers", "POST", chunks)
    assert status == 413 and body == {"error": "the body is too large (the limit is 64 KiB)"}


# Bodies no endpoint takes; each was a 500 (or an aiohttp text page) or could be.
HOSTILE: list[tuple[str, bytes, dict[str, str], str]] = [
    ("empty", b"", {}, "the body is not valid JSON"),
    ("null", b"null", {}, "the body must be a JSON object"),
    ("string", b'"weight"', {}, "the body must be a JSON object"),
    (
        "deep array",
        b"[" * 20_000 + b"]" * 20_000,
        {},
        "the body is not valid JSON: it nests too deeply",
    ),
    ("deep object", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, {}, "it nests too deeply"),
    (
        "deep value",
        b'{"weight": ' + b"[" * 500 + b"]" * 500 + b"}",
        {},
        "weight must be an integer, not a list",
    ),
    ("NaN", b'{"weight": NaN}', {}, "NaN is not a JSON value"),
    ("Infinity", b'{"weight": -Infinity}', {}, "-Infinity is not a JSON value"),
    ("1e999", b'{"weight": 1e999}', {}, "1e999 is out of range"),
    ("5000 digits", b'{"weight": ' + b"7" * 5000 + b"}", {}, "the body is not valid JSON"),
    ("float", b'{"weight": 2.0}', {}, "weight must be an integer, not 2.0"),
    ("object", b'{"weight": {"x": 1}}', {}, "weight must be an integer, not an object"),
    ("huge int", b'{"weight": 1099511627776}', {}, "less than or equal to 256"),
    ("not UTF-8", b'{"weight": "\xff"}', {}, "it is not UTF-8"),
    ("Latin-1", '{"weight": "\u00e9"}'.encode("latin-1"), {}, "it is not UTF-8"),
    ("BOM", b"\xef\xbb\xbf{}", {}, "the body is not valid JSON"),
    (
        "bogus charset",
        b'{"weight": 2}',
        {"Content-Type": "application/json; charset=no-such-charset"},
        "",
    ),
    ("long key", b'{"' + b"k" * 10_000 + b'": 1}', {}, "unknown key 'kkkk"),
]


@pytest.mark.parametrize(("what", "raw", "headers", "error"), HOSTILE, ids=[h[0] for h in HOSTILE])
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_hostile_bodies_get_a_4xx_json_error(
    running: Running, method: str, what: str, raw: bytes, headers: dict[str, str], error: str
) -> None:
    a = running.backends[0].address
    path = "/backends/web/servers" if method == "POST" else f"/backends/web/servers/{a}"
    if method == "POST" and raw.startswith(b'{"weight"'):  # with the address it requires
        raw = b'{"address": "127.0.0.1:1", ' + raw[1:]
    status, body, got = running.api.request(method, path, raw=raw, headers=headers)
    if what == "bogus charset":  # the charset is not ours to follow: JSON is UTF-8
        assert (status, body["weight"]) == (201 if method == "POST" else 200, 2), body
        return
    assert 400 <= status < 500 and got["Content-Type"].startswith("application/json"), body
    assert error in body["error"] and len(body["error"]) < 300
    assert running.ctl.overrides().kind(("web", a)) is None


@pytest.mark.parametrize(("what", "raw", "headers", "error"), HOSTILE, ids=[h[0] for h in HOSTILE])
@pytest.mark.parametrize("method", ["POST /reload", "DELETE"])
def test_bodies_of_endpoints_that_take_none_are_ignored(
    running: Running, method: str, what: str, raw: bytes, headers: dict[str, str], error: str
) -> None:
    verb, _, path = method.partition(" ")
    path = path or "/backends/web/servers/127.0.0.1:1"
    status, body, got = running.api.request(verb, path, raw=raw, headers=headers)
    assert got["Content-Type"].startswith("application/json"), body
    assert (status, body["error"]) in [
        (400, "the config file is invalid: nothing changed"),  # the fixture's file is missing
        (404, "backend 'web' has no server 127.0.0.1:1"),
    ]


def test_last_server_cannot_go(running: Running) -> None:
    a, b = (s.address for s in running.backends[:2])
    assert running.api.request("DELETE", f"/backends/web/servers/{a}?wait=1")[0] == 200
    status, body, _ = running.api.request("DELETE", f"/backends/web/servers/{b}")
    assert (status, body) == (409, {"error": f"server {b} is the last one of backend 'web'"})


# ---- changes through a running listener ------------------------------------------


def test_patch_to_maint_stops_new_requests(running: Running) -> None:
    a = running.backends[0].address
    assert set(running.names(6)) == {b"a", b"b"}
    status, body, _ = running.api.request("PATCH", f"/backends/web/servers/{a}", {"state": "maint"})
    assert status == 200
    assert (body["state"], body["admin_state"], body["overridden"]) == ("maint", "maint", True)
    hits = running.backends[0].hits
    assert running.names(10) == [b"b"] * 10
    assert running.backends[0].hits == hits
    status, body, _ = running.api.request(
        "PATCH", f"/backends/web/servers/{a}", {"state": "ready", "weight": 3}
    )
    assert (status, body["state"], body["weight"], body["stats"]["weight"]) == (200, "up", 3, 3)
    assert set(running.names(4)) == {b"a", b"b"}


def test_add_and_remove_a_server(running: Running) -> None:
    c = running.backends[2].address
    status, body, headers = running.api.request(
        "POST", "/backends/web/servers", {"address": c, "weight": 2, "max_conn": 100}
    )
    assert status == 201
    assert (body["address"], body["weight"], body["max_conn"], body["source"]) == (
        c,
        2,
        100,
        "runtime",
    )
    assert headers["Location"] == f"/backends/web/servers/{c}"
    assert b"c" in running.names(8)
    status, body, _ = running.api.request("DELETE", f"/backends/web/servers/{c}")
    assert status == 202
    assert body == {"address": c, "state": "drain", "removing": True, "drain_timeout": 2.0}
    assert wait_for(
        lambda: c not in {s["address"] for s in running.api.get("/backends/web")[1]["servers"]}
    )
    assert b"c" not in running.names(6)


def test_one_endpoint_is_added_once_whatever_its_spelling(running: Running) -> None:
    port = running.backends[2].address.rpartition(":")[2]
    localhost = socket.getaddrinfo("localhost", None, type=socket.SOCK_STREAM)[0][4][0]
    answers = {}
    for host in ["127.0.0.1", "localhost", "127.000.000.001", "[::1]"]:
        status, body, headers = running.api.request(
            "POST", "/backends/web/servers", {"address": f"{host}:{port}"}
        )
        answers[host] = (status, body.get("address") or body["error"], headers.get("Location"))
    v4, v6 = f"127.0.0.1:{port}", f"[::1]:{port}"
    assert answers["127.0.0.1"] == (201, v4, f"/backends/web/servers/{v4}")
    assert answers["127.000.000.001"] == (409, f"backend 'web' already has server {v4}", None)
    if localhost == "127.0.0.1":  # localhost is 127.0.0.1; [::1] is another endpoint
        assert answers["localhost"] == (
            409,
            f"backend 'web' has server {v4}: localhost:{port} is the same server as {v4} "
            f"(both are {v4})",
            None,
        )
        assert answers["[::1]"] == (201, v6, f"/backends/web/servers/{v6}")
    else:
        assert answers["localhost"][:2] == (201, f"localhost:{port}")
        assert answers["[::1]"][0] == 409
    servers = [s["address"] for s in running.api.get("/backends/web")[1]["servers"]]
    assert len(servers) == 4 and v4 in servers
    # Any spelling names the server it added.
    status, body, _ = running.api.request(
        "PATCH", f"/backends/web/servers/127.000.000.001:{port}", {"weight": 3}
    )
    assert (status, body["address"], body["weight"]) == (200, v4, 3)
    status, body = running.api.get(f"/backends/web/servers/127.1:{port}")
    assert (status, body["address"]) == (200, v4)
    status, body, _ = running.api.request("DELETE", f"/backends/web/servers/127.1:{port}?wait=1")
    assert (status, body) == (200, {"address": v4, "removed": True})


def test_changes_are_persisted_and_replayed(running: Running, tmp_path: Path) -> None:
    a, b = (s.address for s in running.backends[:2])
    c = running.backends[2].address
    running.api.request("PATCH", f"/backends/web/servers/{a}", {"state": "maint"})
    running.api.request("POST", "/backends/web/servers", {"address": c, "state": "drain"})
    running.api.request("DELETE", f"/backends/web/servers/{b}?wait=true")
    saved = json.loads((tmp_path / "state.json").read_text())
    assert {e["address"]: e["op"] for e in saved["servers"]} == {
        a: "patch",
        b: "remove",
        c: "add",
    }
    # A new controller (a restart) on the same config replays the changes.
    again = Controller(running.ctl.base)
    servers = {s.address: s.state for s in again.effective().backends["web"].servers}
    assert servers == {a: "maint", c: "drain"}


def test_reload(running: Running, tmp_path: Path) -> None:
    a, b = (s.address for s in running.backends[:2])
    c = running.backends[2].address
    path = tmp_path / "fastlb.toml"
    state_file = str(tmp_path / "state.json")
    path.write_text(toml_config([a, b, c], token=TOKEN, state_file=state_file))
    status, body, _ = running.api.request("POST", "/reload")
    assert status == 200 and body["reloaded"] is True and body["warnings"] == []
    assert b"c" in running.names(9)
    generation = body["generation"]
    path.write_text("[[listeners]]\nname = 1\n")
    status, body, _ = running.api.request("POST", "/reload")
    assert status == 400
    assert body["error"] == "the config file is invalid: nothing changed"
    assert any("listeners[0].name" in line for line in body["errors"])
    assert running.api.get("/stats")[1]["generation"] == generation
    assert b"c" in running.names(9)


# ---- fastlb run ---------------------------------------------------------------------


def _run(config: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "fastlb", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=SITE,
        env={**os.environ, **env},
    )


def test_fastlb_run_with_the_admin_api(backends: list[Backend], tmp_path: Path) -> None:
    a, b = (s.address for s in backends[:2])
    port = free_port()
    path = tmp_path / "fastlb.toml"
    path.write_text(
        toml_config([a, b], bind=f"127.0.0.1:{port}", state_file=str(tmp_path / "state.json"))
    )
    proc = _run(path, **{TOKEN_ENV: TOKEN})
    try:
        api = AdminClient(f"http://127.0.0.1:{port}", TOKEN)

        def ready() -> bool:
            assert proc.poll() is None, proc.communicate()
            try:
                return api.get("/ready", token=None)[0] == 200
            except OSError:
                return False

        assert wait_for(ready, 30)
        status, body, _ = api.request("PATCH", f"/backends/web/servers/{a}", {"state": "maint"})
        assert status == 200 and body["state"] == "maint"
        assert (
            api.request("PATCH", f"/backends/web/servers/{a}", {"weight": 2}, token=None)[0] == 401
        )
        # SIGHUP reloads the file: a new weight for b.
        path.write_text(
            toml_config(
                [a, b],
                weights={b: 7},
                bind=f"127.0.0.1:{port}",
                state_file=str(tmp_path / "state.json"),
            )
        )
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: api.get(f"/backends/web/servers/{b}")[1]["weight"] == 7, 10)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert f"admin API on http://127.0.0.1:{port}" in err
        assert "draining" in err and "stopped" in err and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert json.loads((tmp_path / "state.json").read_text())["servers"][0]["state"] == "maint"


def test_fastlb_run_admin_port_in_use_exits_1(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        path = tmp_path / "fastlb.toml"
        path.write_text(toml_config(["127.0.0.1:7001"], bind=f"127.0.0.1:{port}"))
        proc = _run(path)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert f"cannot start the admin API on 127.0.0.1:{port}" in err
    assert "Traceback" not in err


def test_fastlb_run_bad_admin_table_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "fastlb.toml"
    path.write_text(toml_config(["127.0.0.1:7001"], tokn="x"))
    proc = _run(path)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "admin.tokn: unknown key (did you mean 'token'?)" in err


def test_changes_are_logged_with_who_sent_them(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    path = f"/backends/web/servers/{running.backends[0].address}"
    with caplog.at_level(logging.INFO, logger="fastlb.admin"):
        assert running.api.request("PATCH", path, {"weight": 2}, token="wrong")[0] == 401
        assert running.api.request("PATCH", path, {"weight": 3})[0] == 200
        assert running.api.request("GET", "/stats")[0] == 200
    audit = [r for r in caplog.records if getattr(r, "event", "") == "admin_change"]
    assert [(r.levelno, r.status, r.method) for r in audit] == [
        (logging.WARNING, 401, "PATCH"),
        (logging.INFO, 200, "PATCH"),
    ]
    assert all(r.client == "127.0.0.1" and r.path == path for r in audit)
