"""The config loader: valid files load, and each kind of mistake gets an
error naming the file, the key path and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastlb.config import ConfigError, load_config, parse_config, split_address
from fastlb.units import parse_duration, parse_size

GOOD = """
[global]
workers = 2
max_connections = 100000

[[listeners]]
name = "pg"
bind = "127.0.0.1:5433"
mode = "tcp"
backend = "pg"
connect_timeout = "3s"
idle_timeout = "1h"

[backends.pg]
balance = "least_conn"
retries = 2
servers = [
  { address = "127.0.0.1:5432", weight = 2 },
  { address = "localhost:5434", max_conn = 500 },
]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fastlb.toml"
    path.write_text(text)
    return path


def _errors(tmp_path: Path, text: str) -> list[str]:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    for line in str(info.value).splitlines():
        assert line.startswith(f"{path}: ")
    return info.value.errors


def test_the_issue_example_loads(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, GOOD))
    assert config.global_.workers == 2
    listener = config.listeners[0]
    assert (listener.host, listener.port, listener.mode) == ("127.0.0.1", 5433, "tcp")
    assert listener.connect_timeout == 3.0 and listener.idle_timeout == 3600.0
    backend = config.backends["pg"]
    assert backend.balance == "least_conn" and backend.retries == 2
    assert [s.weight for s in backend.servers] == [2, 1]
    assert backend.servers[1].host == "127.0.0.1" and backend.servers[1].max_conn == 500
    assert backend.servers[0].state == "up"


def test_defaults() -> None:
    config = parse_config(
        {
            "listeners": [{"name": "a", "bind": "127.0.0.1:1", "backend": "b"}],
            "backends": {"b": {"servers": [{"address": "127.0.0.1:2"}]}},
        }
    )
    assert config.global_.workers >= 1
    assert config.backends["b"].balance == "round_robin"
    assert config.backends["b"].retries == 2
    assert config.backends["b"].max_fails == 3 and config.backends["b"].fail_timeout == 10.0
    assert config.with_workers(1).global_.workers == 1


def test_config_is_immutable() -> None:
    config = parse_config(
        {
            "listeners": [{"name": "a", "bind": "127.0.0.1:1", "backend": "b"}],
            "backends": {"b": {"servers": [{"address": "127.0.0.1:2"}]}},
        }
    )
    with pytest.raises(Exception, match="frozen"):
        config.listeners[0].name = "x"  # type: ignore[misc]


def test_unknown_key_suggests(tmp_path: Path) -> None:
    errors = _errors(tmp_path, GOOD.replace("workers = 2", "wokers = 2"))
    assert errors == ["global.wokers: unknown key (did you mean 'workers'?)"]


def test_unknown_server_key(tmp_path: Path) -> None:
    errors = _errors(tmp_path, GOOD.replace("weight = 2", "wieght = 2"))
    assert errors == ["backends.pg.servers[0].wieght: unknown key (did you mean 'weight'?)"]


def test_bad_port_names_the_server(tmp_path: Path) -> None:
    errors = _errors(tmp_path, GOOD.replace("localhost:5434", "127.0.0.1:99999"))
    assert errors == [
        "backends.pg.servers[1].address: '127.0.0.1:99999': the port must be a number in 0..65535"
    ]


def test_bad_duration(tmp_path: Path) -> None:
    errors = _errors(tmp_path, GOOD.replace('"3s"', '"3 parsecs"'))
    assert errors == [
        "listeners[0].connect_timeout: '3 parsecs' is not a duration: "
        "write it like '2s', '150ms', '1h'"
    ]


def test_missing_backend_reference_with_other_errors(tmp_path: Path) -> None:
    text = GOOD.replace('backend = "pg"', 'backend = "pgg"').replace("least_conn", "least_con")
    errors = _errors(tmp_path, text)
    assert "listeners[0].backend: no backend named 'pgg' (did you mean 'pg'?)" in errors
    assert any(e.startswith("backends.pg.balance: Input should be") for e in errors)
    assert len(errors) == 2


def test_two_listeners_on_one_address(tmp_path: Path) -> None:
    text = GOOD + '\n[[listeners]]\nname = "pg2"\nbind = "127.0.0.1:5433"\nbackend = "pg"\n'
    errors = _errors(tmp_path, text)
    assert errors == ["listeners[1].bind: 127.0.0.1:5433 is already bound by listener 'pg'"]


def test_duplicate_server(tmp_path: Path) -> None:
    errors = _errors(tmp_path, GOOD.replace("localhost:5434", "127.0.0.1:5432"))
    assert errors == ["backends.pg.servers[1].address: server 127.0.0.1:5432 is listed twice"]


def test_no_servers(tmp_path: Path) -> None:
    errors = _errors(tmp_path, GOOD.split("servers = [")[0] + "servers = []\n")
    assert errors == [
        "backends.pg.servers: List should have at least 1 item after validation, not 0"
    ]


def test_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    errors = _errors(tmp_path, GOOD.replace("workers = 2", "workers = = 2"))
    assert len(errors) == 1
    assert errors[0].startswith("TOML syntax error:") and "line 3" in errors[0]
    assert "column" in errors[0]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:80", ("127.0.0.1", 80)),
        ("[::1]:8080", ("::1", 8080)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("localhost:5", ("127.0.0.1", 5)),
    ],
)
def test_split_address(address: str, expected: tuple[str, int]) -> None:
    assert split_address(address) == expected


@pytest.mark.parametrize(
    "address", ["127.0.0.1", ":80", "1.2.3.4:x", "1.2.3.4:70000", "no.such.host.invalid:1"]
)
def test_split_address_rejects(address: str) -> None:
    with pytest.raises(ValueError):
        split_address(address)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("150ms", 0.15),
        ("2s", 2.0),
        ("1.5s", 1.5),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        (3, 3.0),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "2", "2 sec", "-1s", True, None, "1.s"])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [("64KiB", 65536), ("1MiB", 1 << 20), ("512", 512), (100, 100), ("1KB", 1000), ("2G", 2 << 30)],
)
def test_parse_size(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["64 kibibytes", "-1", "1.5MiB", True, None])
def test_parse_size_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_size(text)
