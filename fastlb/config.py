"""The config file: TOML in, a validated, immutable Config out.

Validation is pydantic's; this module adds what an operator needs from the
errors: each one names the file, the key path (``backends.pg.servers[1].address``)
and the problem, all errors are reported together, and an unknown key gets a
"did you mean" suggestion.  Nothing binds until a Config exists."""

from __future__ import annotations

import difflib
import ipaddress
import os
import socket
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from fastlb.units import parse_duration

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

Duration = Annotated[float, BeforeValidator(parse_duration)]
Balance = Literal[
    "round_robin", "weighted_round_robin", "least_conn", "random_two", "maglev", "ring"
]


class ConfigError(Exception):
    """A config that cannot be used; `errors` holds one line per problem."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__("\n".join(f"{source}: {e}" for e in errors))


def split_address(address: str) -> tuple[str, int]:
    """(host, port) of "host:port" or "[v6]:port"; the host is resolved to an
    IP literal.  Raises ValueError naming what is wrong."""
    if not isinstance(address, str) or ":" not in address:
        raise ValueError(f"'{address}' is not host:port")
    host, _, port_text = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"'{address}': the port must be a number in 0..65535")
    if not host:
        raise ValueError(f"'{address}': the host is missing")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ValueError(f"'{address}': cannot resolve '{host}': {exc.strerror}") from None
        host = str(infos[0][4][0])
    return host, int(port_text)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Addressed(_Model):
    """A model with a host:port field; host (resolved) and port are derived
    from it once, when the model is built."""

    _host: str = PrivateAttr("")
    _port: int = PrivateAttr(0)

    def model_post_init(self, context: Any, /) -> None:
        self._host, self._port = split_address(self._address())

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    def _address(self) -> str:
        raise NotImplementedError


class ServerConfig(_Addressed):
    address: str
    weight: int = Field(1, ge=1, le=256)
    max_conn: int = Field(0, ge=0)
    state: Literal["up", "down", "drain", "maint"] = "up"

    @field_validator("address")
    @classmethod
    def _valid_address(cls, value: str) -> str:
        split_address(value)
        return value

    def _address(self) -> str:
        return self.address


class BackendConfig(_Model):
    balance: Balance = "round_robin"
    retries: int = Field(2, ge=0, le=16)
    load_factor: float | None = Field(None, ge=1.0)
    max_fails: int = Field(3, ge=1)
    fail_timeout: Duration = 10.0
    servers: list[ServerConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_servers(self) -> BackendConfig:
        seen: set[str] = set()
        for server in self.servers:
            if server.address in seen:
                raise ValueError(f"server {server.address} is listed twice")
            seen.add(server.address)
        return self


class ListenerConfig(_Addressed):
    name: str = Field(min_length=1)
    bind: str
    mode: Literal["tcp"] = "tcp"
    backend: str
    connect_timeout: Duration = 3.0
    idle_timeout: Duration = 3600.0
    max_connections: int = Field(0, ge=0)

    @field_validator("bind")
    @classmethod
    def _valid_bind(cls, value: str) -> str:
        split_address(value)
        return value

    def _address(self) -> str:
        return self.bind


class GlobalConfig(_Model):
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=256)
    max_connections: int = Field(100_000, ge=0)
    drain_timeout: Duration = 30.0


class Config(_Model):
    global_: GlobalConfig = Field(default_factory=GlobalConfig, alias="global")
    listeners: list[ListenerConfig] = Field(min_length=1)
    backends: dict[str, BackendConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _cross_references(self) -> Config:
        names: set[str] = set()
        binds: dict[tuple[str, int], str] = {}
        problems = []
        for i, listener in enumerate(self.listeners):
            where = f"listeners[{i}]"
            if listener.name in names:
                problems.append(f"{where}.name: listener name '{listener.name}' is used twice")
            names.add(listener.name)
            if listener.backend not in self.backends:
                hint = _did_you_mean(listener.backend, self.backends)
                problems.append(f"{where}.backend: no backend named '{listener.backend}'{hint}")
            key = (listener.host, listener.port)
            if listener.port and key in binds:
                problems.append(
                    f"{where}.bind: {listener.bind} is already bound by listener '{binds[key]}'"
                )
            binds[key] = listener.name
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def with_workers(self, workers: int) -> Config:
        """A copy with global.workers replaced (the --workers override)."""
        return self.model_copy(
            update={"global_": self.global_.model_copy(update={"workers": workers})}
        )


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


# Which model a key leads into, for "did you mean" on unknown keys.
_CHILDREN: dict[tuple[type[BaseModel], str], type[BaseModel]] = {
    (Config, "global"): GlobalConfig,
    (Config, "listeners"): ListenerConfig,
    (Config, "backends"): BackendConfig,
    (BackendConfig, "servers"): ServerConfig,
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


def _missing_backends(data: dict[str, Any]) -> list[str]:
    """Listener backends that name no backend, checked on the raw data so the
    problem is reported with the others even when validation failed."""
    backends = data.get("backends")
    listeners = data.get("listeners")
    if not isinstance(backends, dict) or not isinstance(listeners, list):
        return []
    out = []
    for i, listener in enumerate(listeners):
        name = listener.get("backend") if isinstance(listener, dict) else None
        if isinstance(name, str) and name not in backends:
            hint = _did_you_mean(name, backends)
            out.append(f"listeners[{i}].backend: no backend named '{name}'{hint}")
    return out


def _format(error: dict[str, Any]) -> str:
    loc = tuple(error["loc"])
    path = _key_path(loc)
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown key{_did_you_mean(str(loc[-1]), _fields_at(loc))}"
    if error["type"] == "missing":
        return f"{path}: required key is missing"
    msg = str(error["msg"]).removeprefix("Value error, ")
    if not loc:  # Config's cross-reference checks name their own key paths
        return msg
    return f"{path}: {msg}"


def parse_config(data: dict[str, Any], source: str = "<config>") -> Config:
    """Validate a config mapping.  Raises ConfigError listing every problem."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        lines: list[str] = []
        for error in exc.errors():
            text = _format(error)
            lines.extend(text.split("; ") if not error["loc"] else [text])
        lines += [line for line in _missing_backends(data) if line not in lines]
        raise ConfigError(source, lines) from None


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a TOML config file.  Raises ConfigError naming the
    file (and the line and column of a syntax error)."""
    source = os.fspath(path)
    try:
        raw = Path(source).read_bytes()
    except OSError as exc:
        raise ConfigError(source, [f"cannot read the file: {exc.strerror}"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(source, ["the file is not UTF-8"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"TOML syntax error: {exc}"]) from None
    return parse_config(data, source)
