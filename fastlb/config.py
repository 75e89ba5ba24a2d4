"""The config file: TOML or YAML in (one schema; fastlb/formats.py reads
them), a validated, immutable Config out.  docs/CONFIG.md documents it.

Validation is pydantic's; this module adds what an operator needs from the
errors: each one names the file, the key path (``backends.pg.servers[1].address``)
and the problem, all errors are reported together, and an unknown key gets a
"did you mean" suggestion.  Nothing binds until a Config exists.

A listener runs in mode "tcp" (an L4 relay to one backend) or "http" (an
HTTP/1.1 reverse proxy that picks a backend per request by its routes).  The
bounds below are the C side's (csrc/router-t.h, csrc/h1rewrite-t.h), checked
here so that a config the engine would refuse is an error with a key path."""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
import string
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from fastlb import addresses, formats
from fastlb.formats import tomllib as tomllib  # re-exported (tests read TOML with it)
from fastlb.redact import redacted_query
from fastlb.units import parse_duration, parse_size

Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Balance = Literal[
    "round_robin", "weighted_round_robin", "least_conn", "random_two", "maglev", "ring"
]

MAX_STR = 4096  # bytes in one route host, path, method, condition name or value
MAX_CONDS = 16  # header conditions, and cookie conditions, per route
MAX_METHODS = 16  # methods per route
MAX_NAME = 64  # header-operation, request-id, hash-key and sticky cookie names
MAX_OPS = 32  # header operations per list
MAX_ROUTES = 4096  # routes per listener (csrc/router-t.h FLB_ROUTER_MAX_ROUTES)
OPS_STORE = 4096  # bytes of names and values per header-operation list
MIN_HEAD, MAX_HEAD = 1024, 16384  # max_header_size bounds
HASH_BALANCES = ("maglev", "ring")
U32_MAX = 2**32 - 1  # connection counts and max_fails are 32-bit in C

# Keys that only a listener in mode "http" takes.
HTTP_ONLY = (
    "header_timeout",
    "keepalive_timeout",
    "response_timeout",
    "request_body_timeout",
    "send_timeout",
    "max_header_size",
    "forwarded_for",
    "forwarded_proto",
    "forwarded_host",
    "forwarded",
    "via",
    "request_id",
    "hide_backend",
    "access_log",
    "access_log_format",
    "routes",
)

_TCHAR = frozenset("!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits)
# Framing and hop-by-hop headers: the proxy's own, never a route's to change.
_FIXED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
    }
)
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})*\.?")
_KEYED = "fastlb_keyed"


class ConfigError(Exception):
    """A config that cannot be used; `errors` holds one line per problem."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__("\n".join(f"{source}: {e}" for e in errors))


def split_address(address: str) -> tuple[str, int]:
    """(host, port) of "host:port" or "[v6]:port"; the host is resolved to an
    IP literal (fastlb/addresses.py).  Raises ValueError naming what is wrong."""
    parsed = addresses.parse(address)
    return addresses.resolve(parsed), parsed.port


# ---- problems reported under several keys ---------------------------------


def _raise_problems(problems: list[tuple[str, str]]) -> None:
    """Raise the problems a model validator found, each as (key relative to
    the model, "" for the model itself; message), so that every one is
    reported with its own key path (see _format)."""
    if problems:
        summary = "; ".join(f"{key}: {msg}" if key else msg for key, msg in problems)
        raise PydanticCustomError(_KEYED, "{summary}", {"summary": summary, "problems": problems})


# ---- value checks of the http keys ----------------------------------------


def _no_controls(value: str, what: str) -> None:
    if any((c < " " and c != "\t") or c == "\x7f" for c in value):
        raise ValueError(f"{what} cannot hold control characters (tab is allowed)")
    if len(value.encode("utf-8")) > MAX_STR:
        raise ValueError(f"{what} is longer than {MAX_STR} bytes")


def _token(value: object, what: str, limit: int = MAX_NAME) -> str:
    """value if it is an HTTP token (RFC 9110 tchar) of 1..limit bytes."""
    if not isinstance(value, str):
        raise ValueError(f"a {what} must be a string")
    if not value:
        raise ValueError(f"a {what} cannot be empty")
    bad = [c for c in value if c not in _TCHAR]
    if bad:
        raise ValueError(
            f"'{value}' is not a valid {what}: {bad[0]!r} is not allowed "
            "(letters, digits and !#$%&'*+-.^_`|~ are)"
        )
    if len(value) > limit:
        raise ValueError(f"'{value[:16]}...' is too long: a {what} has at most {limit} bytes")
    return value


def _proxy_header_name(value: object) -> str:
    """A header name a route may set, add or remove (also the request-id
    header): a token of 1..64 bytes, not a framing or hop-by-hop header."""
    name = _token(value, "header name")
    if name.lower() in _FIXED_HEADERS:
        raise ValueError(
            f"'{name}' is not allowed: Host, Content-Length, Transfer-Encoding and the "
            "hop-by-hop headers (Connection, Keep-Alive, TE, Trailer, Upgrade, "
            "Proxy-Connection) are managed by the proxy"
        )
    return name


def _header_value(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("a header value must be a string")
    _no_controls(value, "a header value")
    if value != value.strip(" \t"):  # the value is not quoted: it may be a secret
        raise ValueError("a header value cannot start or end with whitespace")
    return value


def _request_id(value: object) -> str | bool:
    if value is False:
        return False
    if not isinstance(value, str):
        raise ValueError("write a header name such as 'X-Request-Id', or false for none")
    return _proxy_header_name(value)


def _route_host(value: object) -> str:
    """A route host: "api.example.com", "*.example.com" or "[v6]"; no port."""
    if not isinstance(value, str):
        raise ValueError("a host must be a string")
    if value.startswith("[") and value.endswith("]"):
        try:
            ipaddress.IPv6Address(value[1:-1])
        except ValueError:
            raise ValueError(f"'{value}' is not an IPv6 address like '[::1]'") from None
        return value
    if ":" in value:
        raise ValueError(f"'{value}': write the host without a port")
    if len(value) > 254 or not _HOST.fullmatch(value):
        raise ValueError(f"'{value}' is not a host name like 'api.example.com' or '*.example.com'")
    return value


def _visible_path(value: object) -> str:
    """A string that starts with '/' and holds visible ASCII only.  Errors
    quote it with the values of sensitive query parameters redacted."""
    if not isinstance(value, str):
        raise ValueError("a path must be a string")
    if not value.startswith("/"):
        raise ValueError(f"'{redacted_query(value)}' must start with '/'")
    if any(not "!" <= c <= "~" for c in value):
        raise ValueError(
            f"{redacted_query(value)!r} may hold visible ASCII only "
            "(no spaces; percent-encode other bytes)"
        )
    return value


def _route_path(value: object) -> str:
    """A path, path prefix or rewrite: '/' then visible ASCII, no query."""
    value = _visible_path(value)
    if "?" in value or "#" in value:
        raise ValueError(
            f"'{redacted_query(value)}': routes see the path only, without '?query' or '#'"
        )
    if len(value) > MAX_STR:
        raise ValueError(f"a path has at most {MAX_STR} bytes")
    return value


def _header_condition(value: object) -> str | bool:
    if value is True:
        return True
    if not isinstance(value, str):
        raise ValueError("write the value to compare with, or true for 'is present'")
    return _header_value(value)


def _cookie_condition(value: object) -> str | bool:
    if value is True:
        return True
    if not isinstance(value, str):
        raise ValueError("write the value to compare with, or true for 'is present'")
    _no_controls(value, "a cookie value")
    if ";" in value:  # the value is not quoted: it may be a secret
        raise ValueError("a cookie value cannot hold ';'")
    return value


def _load_factor(value: object) -> float:
    """A finite number, at least 1.0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("a load factor must be a number like 1.25")
    if not math.isfinite(value) or value < 1.0:
        raise ValueError(f"{value} is not a load factor: it must be a finite number, at least 1.0")
    return float(value)


def _hash_key(value: object) -> str:
    """client_ip, path, uri, header:NAME or cookie:NAME."""
    if isinstance(value, str):
        kind, sep, name = value.partition(":")
        if not sep and kind in ("client_ip", "path", "uri"):
            return value
        if sep and kind in ("header", "cookie"):
            try:
                _token(name, f"{kind} name")
            except ValueError as exc:
                raise ValueError(f"hash key '{value}': {exc}") from None
            return value
    raise ValueError(
        f"{value!r} is not a hash key: use client_ip, path, uri, header:NAME or cookie:NAME"
    )


ProxyHeaderName = Annotated[str, BeforeValidator(_proxy_header_name)]
HeaderValue = Annotated[str, BeforeValidator(_header_value)]
RequestId = Annotated[str | Literal[False], BeforeValidator(_request_id)]
RouteHost = Annotated[str, BeforeValidator(_route_host)]
RoutePath = Annotated[str, BeforeValidator(_route_path)]
Method = Annotated[str, BeforeValidator(lambda v: _token(v, "method", MAX_STR))]
CondHeaderName = Annotated[str, BeforeValidator(lambda v: _token(v, "header name", MAX_STR))]
CookieName = Annotated[str, BeforeValidator(lambda v: _token(v, "cookie name", MAX_STR))]
HeaderCondition = Annotated[str | Literal[True], BeforeValidator(_header_condition)]
CookieCondition = Annotated[str | Literal[True], BeforeValidator(_cookie_condition)]
HashKey = Annotated[str, BeforeValidator(_hash_key)]
LoadFactor = Annotated[float, BeforeValidator(_load_factor)]
StickyCookie = Annotated[str, BeforeValidator(lambda v: _token(v, "cookie name"))]


# ---- models ---------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Addressed(_Model):
    """A model with a host:port field (ADDRESS_KEY), checked without DNS by
    a field validator; host (resolved) and port are derived from it once,
    when the model is built."""

    ADDRESS_KEY: ClassVar[str]
    _host: str = PrivateAttr("")
    _port: int = PrivateAttr(0)

    @model_validator(mode="after")
    def _resolve(self) -> _Addressed:
        parsed = addresses.parse(getattr(self, self.ADDRESS_KEY))
        try:
            self._host = addresses.resolve(parsed)
        except ValueError as exc:
            _raise_problems([(self.ADDRESS_KEY, str(exc))])
        self._port = parsed.port
        _raise_problems([(self.ADDRESS_KEY, msg) for msg in self._resolved_problems()])
        return self

    def _resolved_problems(self) -> list[str]:
        """What is wrong with the resolved address."""
        return []

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def endpoint(self) -> addresses.Endpoint:
        """The resolved IP and the port: what two addresses are compared by."""
        return addresses.endpoint(self._host, self._port)


class ServerConfig(_Addressed):
    """A server; its address is canonical (fastlb/addresses.py)."""

    ADDRESS_KEY = "address"
    address: str
    weight: int = Field(1, ge=0, le=256)  # 0: takes no new connections
    max_conn: int = Field(0, ge=0, le=U32_MAX)
    state: Literal["up", "down", "drain", "maint"] = "up"

    @field_validator("address")
    @classmethod
    def _canonical_address(cls, value: str) -> str:
        parsed = addresses.parse(value)
        if parsed.port == 0:
            raise ValueError(
                f"'{value}': a server's port must be in 1..65535 "
                "(port 0 is a listener's: it picks a free port)"
            )
        return str(parsed)

    def _resolved_problems(self) -> list[str]:
        ip = self.endpoint[0]
        if ip.is_unspecified:
            return [
                f"'{self.address}': {self.host} is the unspecified address, which a listener "
                "binds to mean 'every address'; a server needs its own address, such as 127.0.0.1"
            ]
        return []


# ---- active health checks ---------------------------------------------------

# Keys of a health check that only type = "http" takes.
HEALTH_HTTP_ONLY = ("method", "path", "host", "expect_status", "expect_body")
_STATUS = re.compile(r"\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?")
_AUTHORITY = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(?::\d{1,5})?")


def _status_range(item: object) -> tuple[int, int]:
    """(low, high) of 200, "200", "200-399" or [200, 399]."""
    if isinstance(item, int) and not isinstance(item, bool):
        low = high = item
    elif isinstance(item, str) and (match := _STATUS.fullmatch(item)):
        low, high = int(match.group(1)), int(match.group(2) or match.group(1))
    elif (
        isinstance(item, list | tuple)
        and len(item) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) for n in item)
    ):
        low, high = item
    else:
        raise ValueError(f'{item!r} is not a status: write it like 200, "200-399" or [200, 204]')
    if not 100 <= low <= high <= 599:
        raise ValueError(f"{item!r}: statuses are in 100..599, the low one first")
    return low, high


def _expect_status(value: object) -> tuple[tuple[int, int], ...]:
    """The status ranges a check accepts: one status or range, or a list."""
    items = value if isinstance(value, list | tuple) else [value]
    if not items:
        raise ValueError("give at least one status")
    return tuple(_status_range(item) for item in items)


def _check_path(value: object) -> str:
    """A health-check request target: '/' then visible ASCII (a query is allowed)."""
    value = _visible_path(value)
    if "#" in value:
        raise ValueError(f"'{redacted_query(value)}': a request target cannot hold '#'")
    if len(value) > MAX_STR:
        raise ValueError(f"a path has at most {MAX_STR} bytes")
    return value


def _check_host(value: object) -> str:
    """A Host header value: host, host:port or [v6]:port."""
    if not isinstance(value, str):
        raise ValueError("a host must be a string")
    if len(value) > 255 or not _AUTHORITY.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a Host header value like 'example.com' or 'example.com:8080'"
        )
    return value


ExpectStatus = Annotated[tuple[tuple[int, int], ...], BeforeValidator(_expect_status)]
CheckPath = Annotated[str, BeforeValidator(_check_path)]
CheckHost = Annotated[str, BeforeValidator(_check_host)]


class HealthCheckConfig(_Model):
    """A backend's active health check, run on each of its servers that is
    not in maint (fastlb/health.py)."""

    type: Literal["tcp", "http"] = "tcp"
    interval: Duration = 2.0
    timeout: Duration = 1.0
    rise: int = Field(2, ge=1, le=1000)
    fall: int = Field(3, ge=1, le=1000)
    port: int | None = Field(None, ge=1, le=65535)
    # type = "http" only (HEALTH_HTTP_ONLY).
    method: Method = "GET"
    path: CheckPath = "/"
    host: CheckHost | None = None
    expect_status: ExpectStatus = ((200, 399),)
    expect_body: str | None = Field(None, min_length=1, max_length=MAX_STR)

    @field_validator("interval", "timeout")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be more than 0")
        return value

    @field_validator("expect_body")
    @classmethod
    def _body_text(cls, value: str | None) -> str | None:
        if value is not None:
            _no_controls(value, "expect_body")
        return value

    @model_validator(mode="after")
    def _type_keys(self) -> HealthCheckConfig:
        if self.type == "tcp":
            _raise_problems(
                [
                    (key, 'only valid with type = "http" (this check is type = "tcp")')
                    for key in HEALTH_HTTP_ONLY
                    if key in self.model_fields_set
                ]
            )
        return self

    def expects(self, status: int) -> bool:
        """Whether an http check accepts this response status."""
        return any(low <= status <= high for low, high in self.expect_status)

    @property
    def expect_text(self) -> str:
        """expect_status as written in a config: "200-399" or "200, 204"."""
        return ", ".join(
            str(low) if low == high else f"{low}-{high}" for low, high in self.expect_status
        )


def same_server(server: ServerConfig, other: ServerConfig) -> str:
    """Why `server` is refused beside `other`, which has its endpoint."""
    if server.address == other.address:
        return f"server {server.address} is listed twice"
    ip, port = server.endpoint
    where = f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
    return f"{server.address} is the same server as {other.address} (both are {where})"


def same_servers(servers: list[ServerConfig]) -> Iterator[tuple[int, str]]:
    """(index, message) of each server whose endpoint an earlier one has."""
    seen: dict[addresses.Endpoint, ServerConfig] = {}
    for i, server in enumerate(servers):
        if server.endpoint in seen:
            yield i, same_server(server, seen[server.endpoint])
        else:
            seen[server.endpoint] = server


class BackendConfig(_Model):
    balance: Balance = "round_robin"
    retries: int = Field(2, ge=0, le=16)
    load_factor: LoadFactor | None = None
    max_fails: int = Field(3, ge=0, le=U32_MAX)  # 0: passive health off
    fail_timeout: Duration = 10.0
    servers: list[ServerConfig] = Field(min_length=1)
    # Used by http listeners only.
    hash_key: HashKey = "client_ip"
    sticky_cookie: StickyCookie | None = None
    keepalive: int = Field(32, ge=0, le=10_000)
    # Idle pooled connections close after this: below the 5 s keep-alive of
    # common servers (Node.js, Apache, uvicorn), so that fastlb closes first.
    keepalive_timeout: Duration = 4.0
    # Resend a non-idempotent request (POST...) whose connection failed
    # before any response byte.  RFC 9112 9.3.1 forbids it by default: the
    # server may have acted on it.  Only for backends known to be safe.
    retry_non_idempotent: bool = False
    # Active health checks (fastlb/health.py).
    health_check: HealthCheckConfig | None = None
    slow_start: Duration | None = None

    @field_validator("keepalive_timeout")
    @classmethod
    def _positive_keepalive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be more than 0 (keepalive = 0 keeps no idle connection)")
        return value

    @field_validator("slow_start")
    @classmethod
    def _positive_slow_start(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("must be more than 0 (leave it out for no slow start)")
        return value

    @model_validator(mode="after")
    def _checks(self) -> BackendConfig:
        problems = [(f"servers[{i}].address", message) for i, message in same_servers(self.servers)]
        if self.hash_key != "client_ip" and self.balance not in HASH_BALANCES:
            problems.append(
                (
                    "hash_key",
                    f'hash_key \'{self.hash_key}\' needs balance = "maglev" or "ring" '
                    f'(this backend uses "{self.balance}")',
                )
            )
        if self.slow_start is not None and self.health_check is None:
            problems.append(
                (
                    "slow_start",
                    "needs a health_check: the weight ramps up when a server's checks recover",
                )
            )
        _raise_problems(problems)
        return self

    @property
    def hash_kind(self) -> str:
        """The kind of hash key: client_ip, path, uri, header or cookie."""
        return self.hash_key.partition(":")[0]

    @property
    def hash_name(self) -> str | None:
        """The header or cookie name of a header:/cookie: hash key."""
        return self.hash_key.partition(":")[2] or None


class HeaderOpsConfig(_Model):
    """A route's header operations, applied as: set, then add, then remove."""

    set: dict[ProxyHeaderName, HeaderValue] = Field(default_factory=dict)
    add: dict[ProxyHeaderName, HeaderValue] = Field(default_factory=dict)
    remove: list[ProxyHeaderName] = Field(default_factory=list)

    @model_validator(mode="after")
    def _bounds(self) -> HeaderOpsConfig:
        problems: list[tuple[str, str]] = []
        if self.count() > MAX_OPS:
            problems.append(("", f"{self.count()} header operations: at most {MAX_OPS}"))
        used = sum(len(k.encode()) + len(v.encode()) for k, v in self.pairs())
        if used > OPS_STORE:
            problems.append(("", f"names and values take {used} bytes: at most {OPS_STORE}"))
        removed = {name.lower() for name in self.remove}
        problems += [
            (f"set.{name}", f"'{name}' is also in remove (set already replaces it)")
            for name in self.set
            if name.lower() in removed
        ]
        _raise_problems(problems)
        return self

    def count(self) -> int:
        return len(self.set) + len(self.add) + len(self.remove)

    def pairs(self) -> Iterator[tuple[str, str]]:
        """(name, value) of every operation in order; "" for a remove."""
        yield from self.set.items()
        yield from self.add.items()
        yield from ((name, "") for name in self.remove)


class MatchConfig(_Model):
    """A route's conditions; all must hold.  None at all: every request."""

    host: RouteHost | None = None
    path_prefix: RoutePath | None = None
    path: RoutePath | None = None
    methods: Annotated[list[Method], Field(min_length=1, max_length=MAX_METHODS)] | None = None
    headers: dict[CondHeaderName, HeaderCondition] = Field(
        default_factory=dict, max_length=MAX_CONDS
    )
    cookies: dict[CookieName, CookieCondition] = Field(default_factory=dict, max_length=MAX_CONDS)

    @model_validator(mode="after")
    def _one_path(self) -> MatchConfig:
        if self.path is not None and self.path_prefix is not None:
            _raise_problems([("path", "give path or path_prefix, not both")])
        return self

    @property
    def matches_all(self) -> bool:
        """Whether there is no condition (a default route)."""
        return not (
            self.host
            or self.path
            or self.path_prefix
            or self.methods
            or self.headers
            or self.cookies
        )


class RouteConfig(_Model):
    match: MatchConfig = Field(default_factory=MatchConfig)
    backend: str = Field(min_length=1)
    strip_prefix: RoutePath | None = None
    rewrite_prefix: RoutePath | None = None
    max_body_size: Size | None = None
    connect_timeout: Duration | None = None
    response_timeout: Duration | None = None
    request_headers: HeaderOpsConfig = Field(default_factory=HeaderOpsConfig)
    response_headers: HeaderOpsConfig = Field(default_factory=HeaderOpsConfig)

    @field_validator("max_body_size")
    @classmethod
    def _some_body(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError("must be at least 1 byte (leave it out for no limit)")
        return value

    @field_validator("connect_timeout", "response_timeout")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("must be more than 0 (leave it out to use the listener's)")
        return value

    @model_validator(mode="after")
    def _rewrite_needs_prefix(self) -> RouteConfig:
        if (
            self.rewrite_prefix is not None
            and self.strip_prefix is None
            and self.match.path is None
            and self.match.path_prefix is None
        ):
            _raise_problems(
                [
                    (
                        "rewrite_prefix",
                        "needs strip_prefix, or match.path or match.path_prefix, "
                        "to say which prefix it replaces",
                    )
                ]
            )
        return self


class ListenerConfig(_Addressed):
    ADDRESS_KEY = "bind"
    name: str = Field(min_length=1)
    bind: str
    mode: Literal["tcp", "http"] = "tcp"
    backend: str | None = None  # required in mode tcp; mode http: the default route's
    connect_timeout: Duration = 3.0
    idle_timeout: Duration = 3600.0
    max_connections: int = Field(0, ge=0, le=U32_MAX)
    # Mode http only (HTTP_ONLY).
    header_timeout: Duration = 10.0
    keepalive_timeout: Duration = 60.0
    response_timeout: Duration = 60.0
    # Between two reads of a request body (408), and a client that does not
    # read its response (closed): NGINX's client_body_timeout, send_timeout.
    request_body_timeout: Duration = 60.0
    send_timeout: Duration = 60.0
    max_header_size: Size = 8192
    forwarded_for: bool = True
    forwarded_proto: bool = True
    forwarded_host: bool = True
    forwarded: bool = False
    via: bool = False
    request_id: RequestId = "X-Request-Id"
    hide_backend: bool = False
    access_log: str | None = Field(None, min_length=1)  # a file path, or "-": stdout
    access_log_format: Literal["combined", "json"] = "combined"
    routes: list[RouteConfig] = Field(default_factory=list, max_length=MAX_ROUTES)

    @field_validator("bind")
    @classmethod
    def _valid_bind(cls, value: str) -> str:
        addresses.parse(value)  # kept as written: a bind names nothing
        return value

    @field_validator("max_header_size")
    @classmethod
    def _head_bounds(cls, value: int) -> int:
        if not MIN_HEAD <= value <= MAX_HEAD:
            raise ValueError(f"{value} bytes is out of range: it must be in 1KiB..16KiB")
        return value

    @model_validator(mode="after")
    def _mode_keys(self) -> ListenerConfig:
        _raise_problems(_mode_problems(self.mode, self.model_fields_set, self.backend, self.routes))
        return self


def _mode_problems(
    mode: object, given: Collection[str], backend: object, routes: object
) -> list[tuple[str, str]]:
    """What a listener's mode forbids or requires, as (key, message); used
    on the model and, so that it is reported with other errors, on raw data."""
    if mode == "tcp":
        problems = [(key, 'only valid with mode = "http"') for key in HTTP_ONLY if key in given]
        if backend is None:
            problems.insert(0, ("backend", "required key is missing"))
        return problems
    if mode == "http" and backend is None and not routes:
        return [
            (
                "backend",
                'mode "http" needs a backend (for requests no route matches) or at least one route',
            )
        ]
    return []


class GlobalConfig(_Model):
    workers: int = Field(default_factory=lambda: min(os.cpu_count() or 1, 256), ge=1, le=256)
    max_connections: int = Field(100_000, ge=0, le=U32_MAX)
    # 16 KiB buffers per worker that connections move bytes through (HTTP
    # heads and bodies, the TCP relay's copies): 16 MiB by default.  Slow
    # clients and upstreams hold none while they wait (docs/ARCHITECTURE.md).
    buffers_per_worker: int = Field(1024, ge=16, le=1_048_576)
    drain_timeout: Duration = 30.0
    # On SIGTERM/SIGINT, /ready answers 503 this long while the listeners
    # still accept (HAProxy's `grace`), so that a load balancer in front
    # sees fastlb leave before its sockets close.
    grace: Duration = 0.0


def _admin_token(value: object) -> object:
    """A bearer token: visible ASCII, no spaces (it travels in a header)."""
    if isinstance(value, str):
        if not value:
            raise ValueError("cannot be empty (leave it out for no token)")
        if any(not "!" <= c <= "~" for c in value):
            raise ValueError("may hold visible ASCII only: no spaces or control characters")
    return value


AdminToken = Annotated[SecretStr, BeforeValidator(_admin_token)]


class AdminConfig(_Addressed):
    """The admin API (fastlb/admin.py): its address, the bearer token that
    changes need (FASTLB_ADMIN_TOKEN in the environment overrides it) and
    the file that runtime changes are persisted to."""

    ADDRESS_KEY = "bind"
    enabled: bool = True
    bind: str = "127.0.0.1:9901"
    token: AdminToken | None = None
    state_file: str | None = Field(None, min_length=1)

    @field_validator("bind")
    @classmethod
    def _valid_bind(cls, value: str) -> str:
        addresses.parse(value)  # kept as written: a bind names nothing
        return value


class Config(_Model):
    global_: GlobalConfig = Field(default_factory=GlobalConfig, alias="global")
    listeners: list[ListenerConfig] = Field(min_length=1)
    backends: dict[str, BackendConfig] = Field(min_length=1)
    admin: AdminConfig = Field(default_factory=AdminConfig)

    @model_validator(mode="after")
    def _cross_references(self) -> Config:
        names: set[str] = set()
        binds: dict[tuple[str, int], str] = {}
        problems: list[tuple[str, str]] = []
        for i, listener in enumerate(self.listeners):
            where = f"listeners[{i}]"
            if listener.name in names:
                problems.append((f"{where}.name", f"listener name '{listener.name}' is used twice"))
            names.add(listener.name)
            problems += _reference_problems(where, listener, self.backends)
            key = (listener.host, listener.port)
            if listener.port and key in binds:
                problems.append(
                    (
                        f"{where}.bind",
                        f"{listener.bind} is already bound by listener '{binds[key]}'",
                    )
                )
            binds[key] = listener.name
        problems += _http_keys_unused(self.listeners, self.backends)
        admin = (self.admin.host, self.admin.port)
        if self.admin.enabled and admin[1] and admin in binds:
            problems.append(
                ("admin.bind", f"{self.admin.bind} is already bound by listener '{binds[admin]}'")
            )
        _raise_problems(problems)
        return self

    def with_workers(self, workers: int) -> Config:
        """A copy with global.workers replaced (the --workers override)."""
        return self.model_copy(
            update={"global_": self.global_.model_copy(update={"workers": workers})}
        )


# ---- cross-references, on models and on raw data ---------------------------

# Backend keys that only an http listener uses.
BACKEND_HTTP_ONLY = (
    "hash_key",
    "sticky_cookie",
    "keepalive",
    "keepalive_timeout",
    "retry_non_idempotent",
)


def _http_keys_unused(
    listeners: list[ListenerConfig], backends: Mapping[str, BackendConfig]
) -> list[tuple[str, str]]:
    """http-only keys set on a backend that only tcp listeners use: they
    would do nothing there, so they are an error."""
    used: dict[str, set[str]] = {}
    for listener in listeners:
        for _, name in _backend_refs(listener):
            if isinstance(name, str):
                used.setdefault(name, set()).add(listener.mode)
    problems = []
    for name, backend in backends.items():
        if used.get(name) != {"tcp"}:
            continue
        for key in BACKEND_HTTP_ONLY:
            if key in backend.model_fields_set:
                problems.append(
                    (
                        f"backends.{name}.{key}",
                        'only used by mode = "http" listeners, and only tcp listeners '
                        "use this backend",
                    )
                )
    return problems


def _field(obj: Any, key: str) -> Any:
    """obj[key] of a raw table, obj.key of a model; None when absent."""
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def _backend_refs(listener: Any) -> Iterator[tuple[str, Any]]:
    """(key, backend name) of a listener and of each of its routes."""
    yield "backend", _field(listener, "backend")
    routes = _field(listener, "routes")
    if isinstance(routes, list):
        for j, route in enumerate(routes):
            yield f"routes[{j}].backend", _field(route, "backend")


def _reference_problems(
    where: str, listener: Any, backends: Collection[str]
) -> list[tuple[str, str]]:
    return [
        (f"{where}.{key}", f"no backend named '{name}'{_did_you_mean(name, backends)}")
        for key, name in _backend_refs(listener)
        if isinstance(name, str) and name not in backends
    ]


def _raw_problems(data: dict[str, Any]) -> list[str]:
    """Backend references and mode rules checked on the raw data, so that
    they are reported with the other errors even when validation failed."""
    backends = data.get("backends")
    listeners = data.get("listeners")
    if not isinstance(listeners, list):
        return []
    out: list[tuple[str, str]] = []
    for i, listener in enumerate(listeners):
        if not isinstance(listener, dict):
            continue
        where = f"listeners[{i}]"
        mode = listener.get("mode", "tcp")
        problems = _mode_problems(mode, listener, listener.get("backend"), listener.get("routes"))
        out += [(f"{where}.{key}", msg) for key, msg in problems]
        if isinstance(backends, dict):
            out += _reference_problems(where, listener, backends)
    return [f"{key}: {msg}" for key, msg in out]


# ---- error formatting -----------------------------------------------------


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part != "[key]":  # pydantic's marker of a bad dict key
            out += ("." if out else "") + (str(part) or '""')
    return out or "(top level)"


# Which model a key leads into, for "did you mean" on unknown keys.
_CHILDREN: dict[tuple[type[BaseModel], str], type[BaseModel]] = {
    (Config, "global"): GlobalConfig,
    (Config, "listeners"): ListenerConfig,
    (Config, "backends"): BackendConfig,
    (Config, "admin"): AdminConfig,
    (BackendConfig, "servers"): ServerConfig,
    (BackendConfig, "health_check"): HealthCheckConfig,
    (ListenerConfig, "routes"): RouteConfig,
    (RouteConfig, "match"): MatchConfig,
    (RouteConfig, "request_headers"): HeaderOpsConfig,
    (RouteConfig, "response_headers"): HeaderOpsConfig,
}


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed in the table that loc's last key was found in."""
    model: type[BaseModel] = Config
    parts = iter(loc[:-1])
    for part in parts:
        if isinstance(part, int):
            continue
        child = _CHILDREN.get((model, part))
        if child is None:
            return []
        if (model, part) == (Config, "backends"):
            next(parts, None)  # the backend's name
        model = child
    return [field.alias or name for name, field in model.model_fields.items()]


def _format(error: Mapping[str, Any]) -> list[str]:
    """The lines of one pydantic error: "key.path: problem"."""
    loc = tuple(error["loc"])
    path = _key_path(loc)
    if error["type"] == _KEYED:  # problems under keys relative to loc
        base = path if loc else ""
        return [
            f"{base}.{key}: {msg}" if base and key else f"{base or key}: {msg}"
            for key, msg in error["ctx"]["problems"]
        ]
    if error["type"] == "extra_forbidden":
        return [f"{path}: unknown key{_did_you_mean(str(loc[-1]), _fields_at(loc))}"]
    if error["type"] == "missing":
        return [f"{path}: required key is missing"]
    msg = str(error["msg"]).removeprefix("Value error, ")
    return [f"{path}: {msg}"]


def parse_config(data: dict[str, Any], source: str = "<config>") -> Config:
    """Validate a config mapping.  Raises ConfigError listing every problem."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        lines: list[str] = []
        for error in exc.errors():
            lines += [line for line in _format(error) if line not in lines]
        lines += [line for line in _raw_problems(data) if line not in lines]
        raise ConfigError(source, lines) from None


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a config file: TOML or YAML, by its name (see
    fastlb/formats.py).  Raises ConfigError naming the file (and the line
    and column of a syntax error)."""
    source = os.fspath(path)
    try:
        raw = Path(source).read_bytes()
    except OSError as exc:
        raise ConfigError(source, [f"cannot read the file: {exc.strerror}"]) from None
    try:
        data = formats.loads(raw.decode("utf-8"), source)
    except UnicodeDecodeError:
        raise ConfigError(source, ["the file is not UTF-8"]) from None
    except formats.FormatError as exc:
        raise ConfigError(source, [str(exc)]) from None
    return parse_config(data, source)
