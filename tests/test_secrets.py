"""Secrets stay out of what fastlb shows: GET /config (whoever asks, with
or without the token), config errors from `fastlb check`, `fastlb run` and
POST /reload, and the admin API's audit log.  Before, /config showed a
route's `request_headers.set.Authorization` to any loopback client, and a
bad header value was quoted in the error."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from control_helpers import AdminClient
from fastlb_cli import run_fastlb

from fastlb.admin import TOKEN_ENV, AdminServer
from fastlb.config import load_config
from fastlb.control import Controller
from fastlb.redact import redacted_query, secret_header, secret_key

SECRETS = """
[[listeners]]
name = "web"
bind = "127.0.0.1:0"
mode = "http"
backend = "app"

[[listeners.routes]]
backend = "app"

[listeners.routes.match]
path_prefix = "/api"
headers = { "X-Api-Key" = "SECRET-1", "X-Env" = "prod", "X-Auth-Token" = true }
cookies = { session = "SECRET-2", canary = true }

[listeners.routes.request_headers]
set = { Authorization = "Bearer SECRET-3", "X-Env" = "prod", "x-upstream-token" = "SECRET-4" }
add = { Cookie = "c=SECRET-5", "Proxy-Authorization" = "Basic SECRET-6" }
remove = ["X-Session-Id"]

[listeners.routes.response_headers]
set = { "Set-Cookie" = "s=SECRET-7", "X-Hmac-Key" = "SECRET-8", "X-Served-By" = "fastlb" }

[backends.app]
servers = [{ address = "127.0.0.1:9" }]
health_check = { type = "http", path = "/health?full=1&access_token=SECRET-9" }

[admin]
bind = "127.0.0.1:0"
token = "SECRET-10"
"""


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("Authorization", True),
        ("proxy-authorization", True),
        ("COOKIE", True),
        ("Set-Cookie", True),
        ("X-Api-Key", True),
        ("X-Apikey", True),
        ("X-Auth-Token", True),
        ("X-Client-Secret", True),
        ("X-Session-Id", True),
        ("X-Amz-Signature", True),
        ("X-Password", True),
        ("X-Env", False),
        ("X-Forwarded-For", False),
        ("Accept", False),
        ("X-Request-Id", False),
    ],
)
def test_secret_header_names(name: str, secret: bool) -> None:
    assert secret_header(name) is secret


def test_secret_keys() -> None:
    assert secret_key("token") and secret_key("client_secret") and secret_key("db_password")
    assert not any(secret_key(k) for k in ("hash_key", "sticky_cookie", "request_id", "path"))


def test_redacted_query() -> None:
    assert redacted_query("/h?token=abc&full=1") == "/h?token=<redacted>&full=1"
    assert redacted_query("/h?full=1&API_KEY=x;sig=y") == "/h?full=1&API_KEY=<redacted>;sig=y"
    assert redacted_query("/h?x-auth=1#frag") == "/h?x-auth=<redacted>#frag"
    assert redacted_query("/plain/token=abc") == "/plain/token=abc"  # no query


@pytest.fixture
def admin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AdminClient]:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    path = tmp_path / "fastlb.toml"
    path.write_text(SECRETS)
    server = AdminServer(Controller(load_config(path), path=str(path)))
    server.start()
    yield AdminClient(server.url, "SECRET-10")
    server.stop()


def _find(data: Any, text: str) -> list[str]:
    """Where text occurs in a JSON value: the key paths."""
    if isinstance(data, dict):
        return [f"{k}.{p}" for k, v in data.items() for p in _find(v, text)] + [
            str(k) for k in data if text in str(k)
        ]
    if isinstance(data, list):
        return [f"[{i}].{p}" for i, v in enumerate(data) for p in _find(v, text)]
    return ["="] if text in str(data) else []


@pytest.mark.parametrize("view", ["", "?view=file"])
@pytest.mark.parametrize("token", [None, ""])  # loopback reads are open; with the token too
def test_config_shows_no_secret(admin: AdminClient, view: str, token: str | None) -> None:
    status, body = admin.get("/config" + view, token=token)
    assert status == 200
    assert _find(body, "SECRET") == []
    route = body["listeners"][0]["routes"][0]
    assert route["match"]["headers"] == {
        "X-Api-Key": "<redacted>",
        "X-Env": "prod",
        "X-Auth-Token": True,
    }
    assert route["match"]["cookies"] == {"session": "<redacted>", "canary": True}
    assert route["request_headers"] == {
        "set": {"Authorization": "<redacted>", "X-Env": "prod", "x-upstream-token": "<redacted>"},
        "add": {"Cookie": "<redacted>", "Proxy-Authorization": "<redacted>"},
        "remove": ["X-Session-Id"],
    }
    assert route["response_headers"]["set"] == {
        "Set-Cookie": "<redacted>",
        "X-Hmac-Key": "<redacted>",
        "X-Served-By": "fastlb",
    }
    check = body["backends"]["app"]["health_check"]
    assert check["path"] == "/health?full=1&access_token=<redacted>"
    assert body["admin"]["token"] == "<redacted>"
    assert body["backends"]["app"]["hash_key"] == "client_ip"  # a "key" key, no secret


BAD = (
    SECRETS.replace('"Bearer SECRET-3"', '"Bearer SECRET-3 "')
    .replace('session = "SECRET-2"', 'session = "SECRET-2;x"')
    .replace("access_token=SECRET-9", "access_token=SECRET-9 x")
    .replace('token = "SECRET-10"', 'token = "SECRET 10"')
)
BAD_LINES = [
    "listeners[0].routes[0].match.cookies.session: a cookie value cannot hold ';'",
    "listeners[0].routes[0].request_headers.set.Authorization: a header value cannot start or "
    "end with whitespace",
    "backends.app.health_check.path: '/health?full=1&access_token=<redacted>' may hold visible "
    "ASCII only",
    "admin.token: may hold visible ASCII only",
]


@pytest.mark.parametrize("command", ["check", "run"])
def test_config_errors_quote_no_secret(tmp_path: Path, command: str) -> None:
    path = tmp_path / "fastlb.toml"
    path.write_text(BAD)
    proc = run_fastlb(command, "--config", str(path))
    assert proc.returncode == 2, proc.stderr
    for line in BAD_LINES:
        assert f"{path}: {line}" in proc.stderr, proc.stderr
    assert "SECRET" not in proc.stdout + proc.stderr


def test_reload_errors_quote_no_secret(admin: AdminClient, tmp_path: Path) -> None:
    (tmp_path / "fastlb.toml").write_text(BAD)
    status, body, _ = admin.request("POST", "/reload")
    assert status == 400
    assert [e for e in body["errors"] if any(e.startswith(line) for line in BAD_LINES)]
    assert len(body["errors"]) == len(BAD_LINES)
    assert "SECRET" not in json.dumps(body)


def test_audit_log_redacts_secret_query_values(
    admin: AdminClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="fastlb.admin"):
        admin.request("POST", "/reload?token=SECRET-11&dry=1", token="wrong")
    (record,) = [r for r in caplog.records if getattr(r, "event", "") == "admin_change"]
    assert record.path == "/reload?token=<redacted>&dry=1"
    assert "SECRET" not in record.getMessage()
