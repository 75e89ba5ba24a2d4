"""Helpers of the control-plane tests (test_control, test_admin,
test_metrics): tiny named HTTP backends, configs, and an admin API client.
Only 127.0.0.1 is used."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from fastlb.config import Config, parse_config

HOST = "127.0.0.1"


class Backend:
    """An HTTP/1.1 server in threads that answers every GET with its name
    (and /slow after `hold` is set)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.hits = 0
        self.release = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                owner.hits += 1
                if self.path == "/slow":
                    owner.release.wait(10)
                body = owner.name.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.address = f"{HOST}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def config_data(servers: list[str], **admin: Any) -> dict[str, Any]:
    """A config with one http listener "web" (port 0) on backend "web"."""
    return {
        "global": {"workers": 1, "drain_timeout": "2s"},
        "listeners": [{"name": "web", "bind": f"{HOST}:0", "mode": "http", "backend": "web"}],
        "backends": {"web": {"servers": [{"address": a} for a in servers]}},
        "admin": {"bind": f"{HOST}:0", **admin},
    }


def make_config(servers: list[str], **admin: Any) -> Config:
    return parse_config(config_data(servers, **admin))


def toml_config(servers: list[str], weights: dict[str, int] | None = None, **admin: Any) -> str:
    """config_data as a TOML file's text."""
    weights = weights or {}
    lines = [
        "[global]",
        "workers = 1",
        'drain_timeout = "2s"',
        "[admin]",
        *(f"{k} = {json.dumps(v)}" for k, v in {"bind": f"{HOST}:0", **admin}.items()),
        "[[listeners]]",
        'name = "web"',
        f'bind = "{HOST}:0"',
        'mode = "http"',
        'backend = "web"',
        "[backends.web]",
        "servers = [",
        *(f'  {{ address = "{a}", weight = {weights.get(a, 1)} }},' for a in servers),
        "]",
    ]
    return "\n".join(lines) + "\n"


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """A GET on a fresh connection: (status, body)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class AdminClient:
    """JSON requests to the admin API."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url
        self.token = token

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        token: str | None = "",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        """(status, decoded JSON body or text, headers).  token "" means
        the client's own, None none at all."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.url + path, data=data, method=method)
        token = self.token if token == "" else token
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, text, hdrs = resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            status, text, hdrs = exc.code, exc.read(), dict(exc.headers)
        try:
            return status, json.loads(text), hdrs
        except ValueError:
            return status, text.decode(), hdrs

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        status, body, _ = self.request("GET", path, **kw)
        return status, body


def wait_for(pred: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()
