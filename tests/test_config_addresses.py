"""Server and listener addresses in the config: what a server's address
may be (not port 0, not the unspecified address), what port 0 means for a
listener, and that `fastlb check` refuses what `fastlb run` would."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from fastlb_cli import run_fastlb

from fastlb.config import ConfigError, parse_config


def _config(*servers: str, bind: str = "127.0.0.1:0") -> dict[str, Any]:
    return {
        "listeners": [{"name": "web", "bind": bind, "backend": "app"}],
        "backends": {"app": {"servers": [{"address": a} for a in servers]}},
        "admin": {"bind": "127.0.0.1:0"},
    }


def _errors(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.errors


@pytest.mark.parametrize(
    ("address", "error"),
    [
        ("127.0.0.1:0", "'127.0.0.1:0': a server's port must be in 1..65535"),
        ("[::1]:0", "'[::1]:0': a server's port must be in 1..65535"),
        ("0.0.0.0:80", "'0.0.0.0:80': 0.0.0.0 is the unspecified address"),
        ("[::]:80", "'[::]:80': :: is the unspecified address"),
    ],
)
def test_server_address_cannot_be_port_0_or_unspecified(address: str, error: str) -> None:
    errors = _errors(_config("127.0.0.1:80", address))
    assert len(errors) == 1 and errors[0].startswith(f"backends.app.servers[1].address: {error}")


def test_listener_at_port_0_gets_a_free_port() -> None:
    config = parse_config(_config("127.0.0.1:80", bind="0.0.0.0:0"))
    assert (config.listeners[0].host, config.listeners[0].port) == ("0.0.0.0", 0)


SERVER_AT_PORT_0 = """
[[listeners]]
name = "web"
bind = "127.0.0.1:0"
backend = "app"

[backends.app]
servers = [{ address = "127.0.0.1:0" }]

[admin]
bind = "127.0.0.1:0"
"""


@pytest.mark.parametrize("command", ["check", "run"])
def test_server_at_port_0_is_a_config_error(tmp_path: Path, command: str) -> None:
    path = tmp_path / "fastlb.toml"
    path.write_text(SERVER_AT_PORT_0)
    proc = run_fastlb(command, "--config", str(path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert (
        f"{path}: backends.app.servers[0].address: '127.0.0.1:0': a server's port must be in "
        "1..65535" in proc.stderr
    )
    assert "Traceback" not in proc.stderr


# ---- one server, one spelling ---------------------------------------------------------

LOCALHOST = socket.getaddrinfo("localhost", None, type=socket.SOCK_STREAM)[0][4][0]


def test_server_addresses_are_canonical() -> None:
    config = parse_config(_config("127.000.000.001:80", "[0::1]:80", "LocalHost:81"))
    assert [s.address for s in config.backends["app"].servers] == [
        "127.0.0.1:80",
        "[::1]:80",
        "localhost:81",
    ]
    assert config.backends["app"].servers[2].host == LOCALHOST


def test_listener_bind_is_kept_as_written() -> None:
    config = parse_config(_config("127.0.0.1:80", bind="127.000.000.001:0"))
    assert (config.listeners[0].bind, config.listeners[0].host) == (
        "127.000.000.001:0",
        "127.0.0.1",
    )


def test_one_endpoint_four_spellings() -> None:
    """[::1] is another address family than 127.0.0.1, so another endpoint;
    localhost is the endpoint it resolves to."""
    errors = _errors(
        _config("127.0.0.1:8080", "localhost:8080", "127.000.000.001:8080", "[::1]:8080")
    )
    twice = "backends.app.servers[2].address: server 127.0.0.1:8080 is listed twice"
    if LOCALHOST == "127.0.0.1":
        assert errors == [
            "backends.app.servers[1].address: localhost:8080 is the same server as "
            "127.0.0.1:8080 (both are 127.0.0.1:8080)",
            twice,
        ]
    else:
        assert LOCALHOST == "::1"
        assert errors == [
            twice,
            "backends.app.servers[3].address: [::1]:8080 is the same server as "
            "localhost:8080 (both are [::1]:8080)",
        ]


def test_two_names_of_one_host_are_one_server() -> None:
    errors = _errors(_config("localhost:80", f"{LOCALHOST}:80" if "." in LOCALHOST else "[::1]:80"))
    assert len(errors) == 1 and errors[0].startswith("backends.app.servers[1].address: ")
    assert "is the same server as localhost:80" in errors[0]


@pytest.mark.parametrize(
    ("address", "error"),
    [
        ("010.0.0.1:80", "'010.0.0.1:80': '010' is ambiguous"),
        ("[db]:80", "'[db]:80': brackets hold an IPv6 address, like [::1]:80"),
    ],
)
def test_bad_spellings_are_errors(address: str, error: str) -> None:
    errors = _errors(_config(address))
    assert len(errors) == 1 and errors[0].startswith(f"backends.app.servers[0].address: {error}")
