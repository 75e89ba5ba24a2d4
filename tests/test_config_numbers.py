"""Every numeric key of the config, at the edges (nan, inf, negative, past
32 and 64 bits): a value that `fastlb check` accepts is one the engine
runs, and a refused one is an error naming the key path and the value.
Before, `keepalive_timeout = nan` passed `fastlb check` and made `fastlb
run` exit 1."""

from __future__ import annotations

import copy
import math
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastlb_cli import run_fastlb
from pydantic import BaseModel

from fastlb.config import (
    BackendConfig,
    ConfigError,
    GlobalConfig,
    HealthCheckConfig,
    ListenerConfig,
    RouteConfig,
    ServerConfig,
    parse_config,
)
from fastlb.engine import Engine
from fastlb.units import MAX_DURATION, parse_duration

BASE: dict[str, Any] = {
    "global": {"workers": 1},
    "listeners": [
        {
            "name": "web",
            "bind": "127.0.0.1:0",
            "mode": "http",
            "backend": "app",
            "routes": [{"match": {"path_prefix": "/api"}, "backend": "app"}],
        }
    ],
    "backends": {
        "app": {
            "balance": "maglev",
            "health_check": {},
            "servers": [{"address": "127.0.0.1:9"}],
        }
    },
    "admin": {"bind": "127.0.0.1:0"},
}

# Where a table of each model sits in BASE.
TABLES: dict[type[BaseModel], tuple[str | int, ...]] = {
    GlobalConfig: ("global",),
    ListenerConfig: ("listeners", 0),
    RouteConfig: ("listeners", 0, "routes", 0),
    BackendConfig: ("backends", "app"),
    ServerConfig: ("backends", "app", "servers", 0),
    HealthCheckConfig: ("backends", "app", "health_check"),
}

EDGES: list[object] = [
    math.nan,
    math.inf,
    -math.inf,
    -1,
    0,
    0.5,
    2**32 - 1,
    2**32,
    2**64,
    1e300,
]


def _numeric(annotation: object) -> bool:
    """Whether a field's type is (or holds) int or float."""
    if annotation in (int, float):
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _numeric(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_numeric(arg) for arg in typing.get_args(annotation))
    return False


def numeric_keys() -> Iterator[tuple[tuple[str | int, ...], str]]:
    """(table path, key) of every numeric key of the schema."""
    for model, where in TABLES.items():
        for name, field in model.model_fields.items():
            if _numeric(field.annotation):
                yield where, field.alias or name


def _key_path(where: tuple[str | int, ...], key: str) -> str:
    out = ""
    for part in where:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + part
    return f"{out}.{key}"


def _with(where: tuple[str | int, ...], key: str, value: object) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    table: Any = data
    for part in where:
        table = table[part]
    table[key] = value
    return data


def test_every_numeric_key_is_found() -> None:
    paths = {_key_path(where, key) for where, key in numeric_keys()}
    assert {
        "global.grace",
        "listeners[0].keepalive_timeout",
        "listeners[0].routes[0].response_timeout",
        "backends.app.load_factor",
        "backends.app.servers[0].max_conn",
        "backends.app.health_check.interval",
    } <= paths
    assert len(paths) >= 25


@pytest.mark.parametrize(("where", "key"), list(numeric_keys()), ids=lambda p: str(p))
def test_numeric_key_accepted_only_when_the_engine_runs_it(
    where: tuple[str | int, ...], key: str
) -> None:
    path = _key_path(where, key)
    for value in EDGES:
        try:
            config = parse_config(_with(where, key, value))
        except ConfigError as exc:
            lines = [line for line in exc.errors if line.startswith(f"{path}: ")]
            assert lines, (value, exc.errors)
            continue
        assert isinstance(value, int) or math.isfinite(value), (path, value)
        got = getattr(_table_model(config, where), key)
        if isinstance(got, float):
            assert math.isfinite(got), (path, got)
            assert got <= MAX_DURATION or key == "load_factor", (path, got)
        engine = Engine(config)
        engine.start()  # raised before: ValueError "must be a number", "must be in 0..2**32-1"
        engine.stop()


def _table_model(config: Any, where: tuple[str | int, ...]) -> Any:
    node = config
    for part in where:
        if part == "global":
            node = node.global_
        elif isinstance(part, int) or isinstance(node, dict):
            node = node[part]
        else:
            node = getattr(node, part)
    return node


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (math.nan, "nan is not a duration"),
        (math.inf, "inf is not a duration"),
        (-math.inf, "-inf is not a duration"),
        ("50d", "'50d' is too long: a duration is at most 4294967.295s"),
        (-2, "-2: a duration cannot be negative"),
    ],
)
def test_duration_errors_name_the_value(value: object, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        parse_duration(value)


def test_longest_duration_is_the_engines() -> None:
    assert parse_duration("49d") == 49 * 86400
    assert parse_duration(MAX_DURATION) == MAX_DURATION


NAN_TOML = """
[[listeners]]
name = "web"
bind = "127.0.0.1:0"
mode = "http"
backend = "app"
keepalive_timeout = nan

[backends.app]
load_factor = inf
balance = "ring"
servers = [{ address = "127.0.0.1:9", max_conn = 4294967296 }]

[admin]
bind = "127.0.0.1:0"
"""


@pytest.mark.parametrize("command", ["check", "run"])
def test_nan_and_inf_are_config_errors_at_check_and_run(tmp_path: Path, command: str) -> None:
    path = tmp_path / "fastlb.toml"
    path.write_text(NAN_TOML)
    proc = run_fastlb(command, "--config", str(path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    for line in [
        "listeners[0].keepalive_timeout: nan is not a duration",
        "backends.app.load_factor: inf is not a load factor",
        "backends.app.servers[0].max_conn: Input should be less than or equal to 4294967295",
    ]:
        assert f"{path}: {line}" in proc.stderr
    assert "Traceback" not in proc.stderr
    if command == "run":
        assert "invalid config, nothing was bound" in proc.stderr
