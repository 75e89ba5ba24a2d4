"""The config of listener mode "http" (the L7 reverse proxy): routes, their
matchers, rewrites and header operations, the http-only listener keys and
the backends' http keys.  Each mistake is an error naming the key path and
the problem; the engine part checks that the binding hands a validated
config to the C builder and surfaces what C refuses as ValueError."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastlb_cli import run_fastlb

from fastlb.config import (
    HTTP_ONLY,
    Config,
    ConfigError,
    HeaderOpsConfig,
    load_config,
    parse_config,
)

GOOD = """
[global]
workers = 1

[[listeners]]
name = "web"
bind = "127.0.0.1:0"
mode = "http"
backend = "app"
header_timeout = "5s"
keepalive_timeout = "30s"
response_timeout = "20s"
max_header_size = "16KiB"
forwarded = true
via = true
request_id = "X-Trace-Id"
hide_backend = true

[[listeners.routes]]
match = { host = "api.example.com", path_prefix = "/v1", methods = ["GET", "POST"] }
backend = "api"
strip_prefix = "/v1"
rewrite_prefix = "/"
max_body_size = "1MiB"
connect_timeout = "1s"
response_timeout = "5s"
request_headers = { set = { X-Env = "prod" }, add = { X-Tag = "a b" }, remove = ["X-Debug"] }
response_headers = { remove = ["Server"] }

[[listeners.routes]]
match = { host = "*.example.com", path = "/health", headers = { X-Probe = true, X-Env = "prod" } }
backend = "api"

[[listeners.routes]]
match = { cookies = { canary = "1", session = true } }
backend = "canary"

[[listeners.routes]]
backend = "app"

[backends.app]
servers = [{ address = "127.0.0.1:9001" }]

[backends.api]
balance = "maglev"
hash_key = "header:X-User"
sticky_cookie = "srv"
keepalive = 8
keepalive_timeout = "15s"
servers = [{ address = "127.0.0.1:9002" }, { address = "127.0.0.1:9003" }]

[backends.canary]
balance = "ring"
hash_key = "cookie:session"
servers = [{ address = "127.0.0.1:9004" }]
"""

SERVERS = [{"address": "127.0.0.1:9001"}]


def _data(listener: dict[str, Any] | None = None, **backends: dict[str, Any]) -> dict[str, Any]:
    """A config with one listener (http, backend "app" unless overridden)
    and backends app and api plus the given ones."""
    lsn = {"name": "web", "bind": "127.0.0.1:0", "mode": "http", "backend": "app"}
    lsn.update(listener or {})
    tables = {"app": {"servers": SERVERS}, "api": {"servers": SERVERS}}
    tables.update(backends)
    return {"global": {"workers": 1}, "listeners": [lsn], "backends": tables}


def _route(**route: Any) -> dict[str, Any]:
    """A listener override with one route (backend "api" unless given)."""
    return {"routes": [{"backend": "api", **route}]}


def _errors(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.errors


def _one_error(data: dict[str, Any], path: str, problem: str) -> None:
    errors = _errors(data)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{path}: "), errors
    assert problem in errors[0], errors


# ---- valid configs ----------------------------------------------------------


def test_full_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "fastlb.toml"
    path.write_text(GOOD)
    config = load_config(path)
    web = config.listeners[0]
    assert web.mode == "http" and web.backend == "app"
    assert (web.header_timeout, web.keepalive_timeout, web.response_timeout) == (5, 30, 20)
    assert web.max_header_size == 16384
    assert (web.forwarded_for, web.forwarded_proto, web.forwarded_host) == (True, True, True)
    assert (web.forwarded, web.via, web.hide_backend) == (True, True, True)
    assert web.request_id == "X-Trace-Id"
    assert len(web.routes) == 4
    api = web.routes[0]
    assert api.match.host == "api.example.com" and api.match.path_prefix == "/v1"
    assert api.match.path is None and api.match.methods == ["GET", "POST"]
    assert (api.backend, api.strip_prefix, api.rewrite_prefix) == ("api", "/v1", "/")
    assert api.max_body_size == 1 << 20
    assert (api.connect_timeout, api.response_timeout) == (1.0, 5.0)
    assert api.request_headers.set == {"X-Env": "prod"}
    assert api.request_headers.add == {"X-Tag": "a b"}
    assert api.request_headers.remove == ["X-Debug"]
    assert api.response_headers.remove == ["Server"] and not api.response_headers.set
    health = web.routes[1].match
    assert health.host == "*.example.com" and health.path == "/health"
    assert health.headers == {"X-Probe": True, "X-Env": "prod"}
    assert web.routes[2].match.cookies == {"canary": "1", "session": True}
    assert web.routes[3].match.matches_all and not api.match.matches_all
    backend = config.backends["api"]
    assert (backend.hash_key, backend.hash_kind, backend.hash_name) == (
        "header:X-User",
        "header",
        "X-User",
    )
    assert backend.sticky_cookie == "srv"
    assert (backend.keepalive, backend.keepalive_timeout) == (8, 15.0)
    assert config.backends["canary"].hash_name == "session"


def test_http_defaults() -> None:
    config = parse_config(_data())
    web = config.listeners[0]
    assert (web.header_timeout, web.keepalive_timeout, web.response_timeout) == (10, 60, 60)
    assert (web.request_body_timeout, web.send_timeout) == (60, 60)
    assert web.max_header_size == 8192
    assert (web.forwarded_for, web.forwarded_proto, web.forwarded_host) == (True, True, True)
    assert (web.forwarded, web.via, web.hide_backend) == (False, False, False)
    assert web.request_id == "X-Request-Id" and web.routes == []
    assert (web.access_log, web.access_log_format) == (None, "combined")
    # the existing keys keep their defaults in both modes
    assert (web.connect_timeout, web.idle_timeout, web.max_connections) == (3.0, 3600.0, 0)
    backend = config.backends["app"]
    assert (backend.hash_key, backend.hash_kind, backend.hash_name) == (
        "client_ip",
        "client_ip",
        None,
    )
    assert backend.sticky_cookie is None
    # Idle upstream connections close before common servers' 5 s keep-alive.
    assert (backend.keepalive, backend.keepalive_timeout) == (32, 4.0)
    assert backend.retry_non_idempotent is False
    assert config.global_.buffers_per_worker == 1024


def test_tcp_is_still_the_default_mode() -> None:
    data = _data()
    del data["listeners"][0]["mode"]
    assert parse_config(data).listeners[0].mode == "tcp"


def test_http_listener_without_backend_needs_routes() -> None:
    config = parse_config(_data({"backend": None, **_route()}))
    assert config.listeners[0].backend is None
    data = _data()
    del data["listeners"][0]["backend"]
    data["listeners"][0]["routes"] = [{"backend": "api"}]
    assert parse_config(data).listeners[0].backend is None
    del data["listeners"][0]["routes"]
    _one_error(data, "listeners[0].backend", "needs a backend")
    data["listeners"][0]["routes"] = []
    _one_error(data, "listeners[0].backend", "or at least one route")


def test_request_id_can_be_disabled() -> None:
    assert parse_config(_data({"request_id": False})).listeners[0].request_id is False


def test_flags_parse() -> None:
    keys = ("forwarded_for", "forwarded_proto", "forwarded_host", "forwarded", "via")
    web = parse_config(_data({k: k.startswith("forwarded_") is False for k in keys}))
    web = web.listeners[0]
    assert (web.forwarded_for, web.forwarded_proto, web.forwarded_host) == (False,) * 3
    assert (web.forwarded, web.via) == (True, True)


@pytest.mark.parametrize(
    ("text", "size"), [("1KiB", 1024), (1024, 1024), ("12KiB", 12288), ("16KiB", 16384)]
)
def test_max_header_size_bounds_ok(text: object, size: int) -> None:
    config = parse_config(_data({"max_header_size": text}))
    assert config.listeners[0].max_header_size == size


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (1023, "out of range: it must be in 1KiB..16KiB"),
        ("17KiB", "out of range"),
        ("1MiB", "out of range"),
        (0, "out of range"),
        ("lots", "is not a size"),
    ],
)
def test_max_header_size_bounds_refused(text: object, problem: str) -> None:
    _one_error(_data({"max_header_size": text}), "listeners[0].max_header_size", problem)


@pytest.mark.parametrize(
    ("key", "value"),
    [("header_timeout", "1 hour"), ("keepalive_timeout", "2 weeks"), ("response_timeout", -1)],
)
def test_http_durations(key: str, value: object) -> None:
    _one_error(_data({key: value}), f"listeners[0].{key}", "duration")


# ---- mode rules ---------------------------------------------------------------

HTTP_VALUES: dict[str, Any] = {
    "header_timeout": "5s",
    "keepalive_timeout": "5s",
    "response_timeout": "5s",
    "request_body_timeout": "5s",
    "send_timeout": "5s",
    "max_header_size": "4KiB",
    "forwarded_for": False,
    "forwarded_proto": False,
    "forwarded_host": False,
    "forwarded": True,
    "via": True,
    "request_id": False,
    "hide_backend": True,
    "access_log": "-",
    "access_log_format": "json",
    "routes": [{"backend": "api"}],
}


def test_every_http_key_is_covered() -> None:
    assert set(HTTP_VALUES) == set(HTTP_ONLY)


@pytest.mark.parametrize("key", HTTP_ONLY)
def test_tcp_listener_refuses_http_keys(key: str) -> None:
    data = _data({"mode": "tcp", key: HTTP_VALUES[key]})
    _one_error(data, f"listeners[0].{key}", 'only valid with mode = "http"')
    assert parse_config(_data({key: HTTP_VALUES[key]})).listeners[0].mode == "http"


def test_tcp_listener_errors_come_with_the_others() -> None:
    data = _data({"mode": "tcp", "via": True, "bind": "127.0.0.1:x", "backend": None})
    errors = _errors(data)
    assert 'listeners[0].via: only valid with mode = "http"' in errors
    assert "listeners[0].backend: required key is missing" in errors
    assert any(e.startswith("listeners[0].bind: ") for e in errors)
    assert len(errors) == 3, errors


def test_tcp_listener_needs_a_backend() -> None:
    data = _data({"mode": "tcp"})
    del data["listeners"][0]["backend"]
    assert _errors(data) == ["listeners[0].backend: required key is missing"]


def test_unknown_mode() -> None:
    _one_error(_data({"mode": "udp"}), "listeners[0].mode", "'tcp' or 'http'")


# ---- routes: cross-references and unknown keys ---------------------------------


def test_route_backend_must_exist() -> None:
    data = _data({"routes": [{"backend": "api"}, {"backend": "apis"}]})
    assert _errors(data) == [
        "listeners[0].routes[1].backend: no backend named 'apis' (did you mean 'api'?)"
    ]


def test_route_backend_reported_with_other_errors() -> None:
    data = _data({"backend": "ap", "routes": [{"backend": "nope", "match": {"path": "x"}}]})
    errors = _errors(data)
    assert "listeners[0].backend: no backend named 'ap' (did you mean 'app'?)" in errors
    assert "listeners[0].routes[0].backend: no backend named 'nope'" in errors
    assert "listeners[0].routes[0].match.path: 'x' must start with '/'" in errors
    assert len(errors) == 3, errors


def test_route_backend_is_required() -> None:
    _one_error(_data({"routes": [{}]}), "listeners[0].routes[0].backend", "required key")


@pytest.mark.parametrize(
    ("route", "path", "hint"),
    [
        ({"bakend": "api"}, "routes[0].bakend", "backend"),
        ({"strip_prefx": "/a"}, "routes[0].strip_prefx", "strip_prefix"),
        ({"match": {"path_prefx": "/a"}}, "routes[0].match.path_prefx", "path_prefix"),
        ({"match": {"method": ["GET"]}}, "routes[0].match.method", "methods"),
        ({"request_headers": {"sett": {}}}, "routes[0].request_headers.sett", "set"),
        ({"response_headers": {"remov": []}}, "routes[0].response_headers.remov", "remove"),
    ],
)
def test_unknown_route_keys_suggest(route: dict[str, Any], path: str, hint: str) -> None:
    data = _data({"routes": [{"backend": "api", **route}]})
    assert _errors(data) == [f"listeners[0].{path}: unknown key (did you mean '{hint}'?)"]


def test_unknown_http_listener_key_suggests() -> None:
    data = _data({"header_timout": "1s"})
    assert _errors(data) == [
        "listeners[0].header_timout: unknown key (did you mean 'header_timeout'?)"
    ]


def test_unknown_backend_key_suggests() -> None:
    data = _data(api={"servers": SERVERS, "hashkey": "path"})
    errors = _errors(data)
    assert errors == ["backends.api.hashkey: unknown key (did you mean 'hash_key'?)"]


# ---- routes: the matcher ---------------------------------------------------------


@pytest.mark.parametrize(
    "match",
    [
        {},
        {"host": "API.Example.com"},
        {"host": "*.example.com"},
        {"host": "localhost."},
        {"host": "[::1]"},
        {"host": "10.0.0.1"},
        {"path_prefix": "/"},
        {"path": "/a/b%20c"},
        {"methods": ["GET", "PURGE", "M-SEARCH"]},
        {"methods": [f"M{i}" for i in range(16)]},
        {"headers": {f"X-{i}": str(i) for i in range(16)}},
        {"cookies": {f"c{i}": True for i in range(16)}},
        {"headers": {"Accept": "text/html;\tq=0.9"}},
    ],
)
def test_match_ok(match: dict[str, Any]) -> None:
    route = parse_config(_data(_route(match=match))).listeners[0].routes[0]
    assert route.match.matches_all == (match == {})


@pytest.mark.parametrize(
    ("match", "key", "problem"),
    [
        ({"host": "api.example.com:443"}, "host", "without a port"),
        ({"host": "a.*.com"}, "host", "is not a host name"),
        ({"host": "*"}, "host", "is not a host name"),
        ({"host": "exa mple.com"}, "host", "is not a host name"),
        ({"host": "[zz]"}, "host", "is not an IPv6 address"),
        ({"host": 5}, "host", "must be a string"),
        ({"path_prefix": "api"}, "path_prefix", "must start with '/'"),
        ({"path": ""}, "path", "must start with '/'"),
        ({"path": "/a b"}, "path", "visible ASCII only"),
        ({"path": "/caf\u00e9"}, "path", "visible ASCII only"),
        ({"path": "/a?b=1"}, "path", "without '?query'"),
        ({"path": "/a", "path_prefix": "/b"}, "path", "not both"),
        ({"methods": []}, "methods", "at least 1 item"),
        ({"methods": [f"M{i}" for i in range(17)]}, "methods", "at most 16 items"),
        ({"methods": ["GET", "BAD METHOD"]}, "methods[1]", "not a valid method"),
        ({"methods": "GET"}, "methods", "valid list"),
        ({"headers": {f"X-{i}": True for i in range(17)}}, "headers", "at most 16 items"),
        ({"cookies": {f"c{i}": True for i in range(17)}}, "cookies", "at most 16 items"),
        ({"headers": {"X-A": False}}, "headers.X-A", "true for 'is present'"),
        ({"headers": {"X-A": 3}}, "headers.X-A", "true for 'is present'"),
        ({"headers": {"X A": "1"}}, "headers.X A", "not a valid header name"),
        ({"headers": {"X-A": "a\nb"}}, "headers.X-A", "control characters"),
        ({"headers": {"X-A": " a"}}, "headers.X-A", "start or end with whitespace"),
        ({"cookies": {"s": "a;b"}}, "cookies.s", "cannot hold ';'"),
        ({"cookies": {"a=b": "1"}}, "cookies.a=b", "not a valid cookie name"),
        ({"headers": {"X-A": "v" * 4097}}, "headers.X-A", "longer than 4096 bytes"),
    ],
)
def test_match_refused(match: dict[str, Any], key: str, problem: str) -> None:
    _one_error(_data(_route(match=match)), f"listeners[0].routes[0].match.{key}", problem)


# ---- routes: rewrites, limits, timeouts --------------------------------------------


@pytest.mark.parametrize(
    "route",
    [
        {"strip_prefix": "/api"},
        {"strip_prefix": "/api", "rewrite_prefix": "/v2"},
        {"rewrite_prefix": "/v2", "match": {"path_prefix": "/v1"}},
        {"rewrite_prefix": "/v2", "match": {"path": "/v1"}},
    ],
)
def test_rewrites_ok(route: dict[str, Any]) -> None:
    parsed = parse_config(_data(_route(**route))).listeners[0].routes[0]
    assert parsed.rewrite_prefix == route.get("rewrite_prefix")


@pytest.mark.parametrize(
    ("route", "key", "problem"),
    [
        ({"rewrite_prefix": "/v2"}, "rewrite_prefix", "needs strip_prefix, or match.path"),
        ({"strip_prefix": "api"}, "strip_prefix", "must start with '/'"),
        ({"rewrite_prefix": "v2", "strip_prefix": "/a"}, "rewrite_prefix", "start with '/'"),
        ({"max_body_size": 0}, "max_body_size", "at least 1 byte"),
        ({"max_body_size": "big"}, "max_body_size", "is not a size"),
        ({"connect_timeout": 0}, "connect_timeout", "more than 0"),
        ({"response_timeout": "0s"}, "response_timeout", "more than 0"),
        ({"response_timeout": "soon"}, "response_timeout", "is not a duration"),
    ],
)
def test_route_keys_refused(route: dict[str, Any], key: str, problem: str) -> None:
    _one_error(_data(_route(**route)), f"listeners[0].routes[0].{key}", problem)


def test_route_optional_keys_default_to_none() -> None:
    route = parse_config(_data(_route())).listeners[0].routes[0]
    assert route.max_body_size is None
    assert route.connect_timeout is None and route.response_timeout is None
    assert route.strip_prefix is None and route.rewrite_prefix is None
    assert route.request_headers.count() == route.response_headers.count() == 0


# ---- routes: header operations -----------------------------------------------------

FIXED = [
    "Host",
    "content-length",
    "Transfer-Encoding",
    "CONNECTION",
    "Keep-Alive",
    "TE",
    "Trailer",
    "Upgrade",
    "Proxy-Connection",
]


@pytest.mark.parametrize("name", FIXED)
@pytest.mark.parametrize("side", ["request_headers", "response_headers"])
def test_framing_and_hop_by_hop_headers_refused(side: str, name: str) -> None:
    for ops, key in (
        ({"set": {name: "x"}}, f"set.{name}"),
        ({"add": {name: "x"}}, f"add.{name}"),
        ({"remove": [name]}, "remove[0]"),
    ):
        path = f"listeners[0].routes[0].{side}.{key}"
        _one_error(_data(_route(**{side: ops})), path, "managed by the proxy")


@pytest.mark.parametrize(
    ("ops", "key", "problem"),
    [
        ({"set": {"Bad Name": "x"}}, "set.Bad Name", "not a valid header name"),
        ({"add": {"X-\u00e9": "x"}}, "add.X-\u00e9", "not a valid header name"),
        ({"set": {"": "x"}}, 'set.""', "cannot be empty"),
        ({"set": {"X" * 65: "x"}}, f"set.{'X' * 65}", "at most 64 bytes"),
        ({"remove": ["X:Y"]}, "remove[0]", "not a valid header name"),
        ({"set": {"X-A": "a\rb"}}, "set.X-A", "control characters"),
        ({"set": {"X-A": "a\x7f"}}, "set.X-A", "control characters"),
        ({"add": {"X-A": "a "}}, "add.X-A", "start or end with whitespace"),
        ({"add": {"X-A": "\tb"}}, "add.X-A", "start or end with whitespace"),
        ({"set": {"X-A": "v" * 4097}}, "set.X-A", "longer than 4096 bytes"),
        ({"set": {"X-A": 1}}, "set.X-A", "must be a string"),
        ({"remove": "X-A"}, "remove", "valid list"),
        ({"set": {"X-A": "1"}, "remove": ["x-a"]}, "set.X-A", "also in remove"),
    ],
)
def test_header_ops_refused(ops: dict[str, Any], key: str, problem: str) -> None:
    path = f"listeners[0].routes[0].request_headers.{key}"
    errors = _errors(_data(_route(request_headers=ops)))
    assert len(errors) == 1, errors
    assert errors[0].startswith(path), errors
    assert problem in errors[0], errors


def test_header_ops_limits() -> None:
    at_limit = {
        "set": {f"X-S{i}": "v" for i in range(16)},
        "remove": [f"X-R{i}" for i in range(16)],
    }
    parse_config(_data(_route(request_headers=at_limit)))
    over = {**at_limit, "add": {"X-A": "v"}}
    _one_error(
        _data(_route(response_headers=over)),
        "listeners[0].routes[0].response_headers",
        "33 header operations: at most 32",
    )
    big = {"set": {"X-A": "a" * 4000, "X-B": "b" * 100}}
    _one_error(
        _data(_route(request_headers=big)),
        "listeners[0].routes[0].request_headers",
        "at most 4096",
    )


def test_header_value_may_hold_tabs_and_utf8() -> None:
    ops = {"set": {"X-A": "a\tb", "X-B": "caf\u00e9"}, "add": {"X-C": ""}}
    route = parse_config(_data(_route(request_headers=ops))).listeners[0].routes[0]
    assert route.request_headers.set == {"X-A": "a\tb", "X-B": "caf\u00e9"}


def test_header_ops_order_is_set_add_remove() -> None:
    ops = HeaderOpsConfig.model_validate(
        {"remove": ["X-R"], "add": {"X-A": "2"}, "set": {"X-S": "1", "X-T": "3"}}
    )
    assert list(ops.pairs()) == [("X-S", "1"), ("X-T", "3"), ("X-A", "2"), ("X-R", "")]
    assert ops.count() == 4


# ---- request_id ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (True, "or false for none"),
        ("", "cannot be empty"),
        ("X Request", "not a valid header name"),
        ("Host", "managed by the proxy"),
        ("connection", "managed by the proxy"),
        ("X" * 65, "at most 64 bytes"),
    ],
)
def test_request_id_refused(value: object, problem: str) -> None:
    _one_error(_data({"request_id": value}), "listeners[0].request_id", problem)


# ---- backends ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hash_key", "kind", "name"),
    [
        ("client_ip", "client_ip", None),
        ("path", "path", None),
        ("uri", "uri", None),
        ("header:X-User", "header", "X-User"),
        ("cookie:session_id", "cookie", "session_id"),
    ],
)
@pytest.mark.parametrize("balance", ["maglev", "ring"])
def test_hash_keys(balance: str, hash_key: str, kind: str, name: str | None) -> None:
    data = _data(api={"servers": SERVERS, "balance": balance, "hash_key": hash_key})
    backend = parse_config(data).backends["api"]
    assert (backend.hash_key, backend.hash_kind, backend.hash_name) == (hash_key, kind, name)


@pytest.mark.parametrize(
    ("hash_key", "problem"),
    [
        ("source_ip", "is not a hash key: use client_ip, path, uri, header:NAME or cookie:NAME"),
        ("header", "is not a hash key"),
        ("path:x", "is not a hash key"),
        ("Header:X", "is not a hash key"),
        ("header:", "header name cannot be empty"),
        ("cookie:a b", "not a valid cookie name"),
        ("header:" + "X" * 65, "at most 64 bytes"),
        (3, "is not a hash key"),
    ],
)
def test_hash_keys_refused(hash_key: object, problem: str) -> None:
    data = _data(api={"servers": SERVERS, "balance": "maglev", "hash_key": hash_key})
    _one_error(data, "backends.api.hash_key", problem)


@pytest.mark.parametrize(
    "balance", ["round_robin", "weighted_round_robin", "least_conn", "random_two"]
)
def test_hash_key_needs_a_hash_balance(balance: str) -> None:
    data = _data(api={"servers": SERVERS, "balance": balance, "hash_key": "path"})
    _one_error(data, "backends.api.hash_key", 'needs balance = "maglev" or "ring"')
    data = _data(api={"servers": SERVERS, "balance": balance, "hash_key": "client_ip"})
    assert parse_config(data).backends["api"].hash_key == "client_ip"


def test_hash_key_error_comes_with_duplicate_server() -> None:
    servers = SERVERS * 2
    data = _data(api={"servers": servers, "hash_key": "uri"})
    assert _errors(data) == [
        "backends.api.servers[1].address: server 127.0.0.1:9001 is listed twice",
        'backends.api.hash_key: hash_key \'uri\' needs balance = "maglev" or "ring" '
        '(this backend uses "round_robin")',
    ]


@pytest.mark.parametrize(
    ("table", "key", "problem"),
    [
        ({"sticky_cookie": "a;b"}, "sticky_cookie", "not a valid cookie name"),
        ({"sticky_cookie": ""}, "sticky_cookie", "cannot be empty"),
        ({"sticky_cookie": "c" * 65}, "sticky_cookie", "at most 64 bytes"),
        ({"keepalive": -1}, "keepalive", "greater than or equal to 0"),
        ({"keepalive": 10001}, "keepalive", "less than or equal to 10000"),
        ({"keepalive_timeout": 0}, "keepalive_timeout", "more than 0"),
        ({"keepalive_timeout": "forever"}, "keepalive_timeout", "is not a duration"),
    ],
)
def test_backend_http_keys_refused(table: dict[str, Any], key: str, problem: str) -> None:
    _one_error(_data(api={"servers": SERVERS, **table}), f"backends.api.{key}", problem)


def test_backend_http_keys_bounds_ok() -> None:
    data = _data(
        api={"servers": SERVERS, "keepalive": 0, "sticky_cookie": "S" * 64},
        app={"servers": SERVERS, "keepalive": 10000, "keepalive_timeout": "250ms"},
    )
    config = parse_config(data)
    assert config.backends["api"].keepalive == 0
    assert config.backends["app"].keepalive_timeout == 0.25


# ---- fastlb check ------------------------------------------------------------------


def _check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "fastlb.toml"
    path.write_text(text)
    return run_fastlb("check", "--config", str(path))


def test_check_prints_routes(tmp_path: Path) -> None:
    proc = _check(tmp_path, GOOD)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert "listener web: 127.0.0.1:0 (http) -> app" in out
    assert (
        "  route 0: host=api.example.com path_prefix=/v1 methods=GET,POST -> api "
        "strip_prefix=/v1 rewrite_prefix=/"
    ) in out
    assert "  route 1: host=*.example.com path=/health headers=X-Probe,X-Env -> api" in out
    assert "  route 2: cookies=canary,session -> canary" in out
    assert "  route 3: any request -> app" in out
    assert "backend api: maglev, 2 server(s), hash_key=header:X-User, sticky_cookie=srv" in out
    assert "backend app: round_robin, 1 server(s)" in out
    assert out[-1].endswith("fastlb.toml: OK")


def test_check_without_default_backend(tmp_path: Path) -> None:
    text = GOOD.replace('backend = "app"\nheader_timeout', "header_timeout")
    proc = _check(tmp_path, text)
    assert proc.returncode == 0, proc.stderr
    assert "listener web: 127.0.0.1:0 (http) -> 404 (no default backend)" in proc.stdout


def test_check_reports_route_errors(tmp_path: Path) -> None:
    text = GOOD.replace('backend = "canary"', 'backend = "canery"').replace(
        'X-Env = "prod" }, add', 'Host = "x" }, add'
    )
    proc = _check(tmp_path, text)
    assert proc.returncode == 2 and proc.stdout == ""
    err = proc.stderr
    assert (
        "listeners[0].routes[2].backend: no backend named 'canery' (did you mean 'canary'?)" in err
    )
    assert "listeners[0].routes[0].request_headers.set.Host: 'Host' is not allowed" in err
    assert "Traceback" not in err


# ---- the engine takes it ---------------------------------------------------------------


def _good() -> Config:
    return parse_config(
        {
            "global": {"workers": 1},
            "listeners": [
                {
                    "name": "web",
                    "bind": "127.0.0.1:0",
                    "mode": "http",
                    "backend": "app",
                    "request_id": False,
                    "via": True,
                    "routes": [
                        {
                            "match": {
                                "host": "*.example.com",
                                "path_prefix": "/v1",
                                "methods": ["GET"],
                                "headers": {"X-A": "1", "X-B": True},
                                "cookies": {"s": True, "t": "2"},
                            },
                            "backend": "api",
                            "strip_prefix": "/v1",
                            "rewrite_prefix": "/v2",
                            "max_body_size": "1MiB",
                            "connect_timeout": "1s",
                            "response_timeout": "2s",
                            "request_headers": {
                                "set": {"X-S": "1"},
                                "add": {"X-A": "2"},
                                "remove": ["X-R"],
                            },
                            "response_headers": {"remove": ["Server"]},
                        },
                        {"match": {"path": "/health"}, "backend": "app"},
                    ],
                },
                {
                    "name": "nodefault",
                    "bind": "127.0.0.1:0",
                    "mode": "http",
                    "routes": [{"backend": "app"}],
                },
                {"name": "tcp", "bind": "127.0.0.1:0", "backend": "app"},
            ],
            "backends": {
                "app": {"servers": SERVERS},
                "api": {
                    "balance": "maglev",
                    "hash_key": "cookie:s",
                    "sticky_cookie": "srv",
                    "keepalive": 0,
                    "servers": SERVERS,
                },
            },
        }
    )


def test_engine_starts_an_http_config() -> None:
    from fastlb.engine import Engine

    engine = Engine(_good())
    engine.start()
    try:
        addresses = engine.addresses()
        assert set(addresses) == {"web", "nodefault", "tcp"}
        assert all(port > 0 for _, port in addresses.values())
        listeners = engine.stats()["listeners"]
        assert listeners["web"]["backend"] == "app"
        assert listeners["nodefault"]["backend"] is None
        engine.update(_good())
    finally:
        engine.stop()


def test_engine_surfaces_what_c_refuses_as_value_error() -> None:
    from fastlb.engine import Engine

    config = _good()
    # Bypass validation (model_copy does not validate): a head size C refuses.
    web = config.listeners[0].model_copy(update={"max_header_size": 1 << 20})
    bad = config.model_copy(update={"listeners": [web]})
    with pytest.raises(ValueError, match="web"):
        Engine(bad).start()


def test_engine_takes_duck_typed_http_listener_with_defaults() -> None:
    """The binding reads the http keys with defaults: an object with only
    the tcp-era attributes plus mode "http" (and routes) still starts."""
    from types import SimpleNamespace as NS

    from fastlb.engine import Engine

    server = NS(
        address="127.0.0.1:9001", host="127.0.0.1", port=9001, weight=1, max_conn=0, state="up"
    )
    backend = NS(
        balance="round_robin",
        retries=1,
        load_factor=None,
        max_fails=3,
        fail_timeout=1.0,
        servers=[server],
    )
    listener = NS(
        name="web",
        host="127.0.0.1",
        port=0,
        mode="http",
        backend=None,
        connect_timeout=1.0,
        idle_timeout=10.0,
        max_connections=0,
        routes=[NS(match=NS(path_prefix="/a"), backend="b")],
    )
    config = NS(
        global_=NS(workers=1, max_connections=0), listeners=[listener], backends={"b": backend}
    )
    engine = Engine(config)
    engine.start()
    try:
        assert engine.stats()["listeners"]["web"]["backend"] is None
    finally:
        engine.stop()


def test_readme_config_blocks_are_valid() -> None:
    """Every TOML block of the README validates (the http one gets the
    listener-less parts it leaves out from the tcp one)."""
    import re

    from fastlb.config import tomllib

    readme = Path(__file__).resolve().parent.parent / "README.md"
    blocks = re.findall(r"```toml\n(.*?)```", readme.read_text(), re.S)
    assert len(blocks) >= 2
    for text in blocks:
        data = tomllib.loads(text)
        config = parse_config(data, "README.md")
        assert config.listeners
    http = parse_config(tomllib.loads(blocks[1]), "README.md")
    assert http.listeners[0].mode == "http"
    assert http.listeners[0].routes[0].backend == "api"


def test_access_log_keys() -> None:
    web = parse_config(_data({"access_log": "/var/log/x.log", "access_log_format": "json"}))
    assert web.listeners[0].access_log == "/var/log/x.log"
    assert web.listeners[0].access_log_format == "json"
    _one_error(_data({"access_log_format": "clf"}), "listeners[0].access_log_format", "combined")
    _one_error(_data({"access_log": ""}), "listeners[0].access_log", "at least 1")


def test_max_fails_zero_turns_passive_health_off_and_routes_are_bounded() -> None:
    config = parse_config(_data(None, app={"servers": SERVERS, "max_fails": 0}))
    assert config.backends["app"].max_fails == 0
    _one_error(
        _data(None, app={"servers": SERVERS, "max_fails": -1}),
        "backends.app.max_fails",
        "greater than or equal to 0",
    )
    routes = [{"backend": "api"}] * 4097
    _one_error(_data({"routes": routes}), "listeners[0].routes", "at most 4096")


def test_weight_zero_takes_no_new_connections() -> None:
    servers = [{"address": "127.0.0.1:9001", "weight": 0}, {"address": "127.0.0.1:9002"}]
    config = parse_config(_data(None, app={"servers": servers}))
    assert config.backends["app"].servers[0].weight == 0
    bad = [{"address": "127.0.0.1:9001", "weight": -1}]
    _one_error(_data(None, app={"servers": bad}), "backends.app.servers[0].weight", "0")


def test_http_backend_keys_on_a_tcp_only_backend_are_errors() -> None:
    data = _data({"mode": "tcp"}, app={"servers": SERVERS, "sticky_cookie": "S", "keepalive": 4})
    errors = _errors(data)
    assert errors == [
        'backends.app.sticky_cookie: only used by mode = "http" listeners, '
        "and only tcp listeners use this backend",
        'backends.app.keepalive: only used by mode = "http" listeners, '
        "and only tcp listeners use this backend",
    ]
    # Used by an http listener too (or by nobody): fine.
    assert parse_config(_data(None, app={"servers": SERVERS, "keepalive": 4}))
    assert parse_config(_data(None, api={"servers": SERVERS, "keepalive": 4}))
