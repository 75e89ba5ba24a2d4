"""Every `fastlb` command with each exit status it can end with, in one
table: 0 for success, 2 for a usage or config error (nothing was bound),
1 for a runtime failure (an address in use).  The messages are checked to
name the problem, and no user error prints a traceback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastlb_cli import run_fastlb

import fastlb

GOOD = """
[[listeners]]
name = "web"
bind = "127.0.0.1:{port}"
mode = "http"
backend = "web"

[backends.web]
servers = [ {{ address = "127.0.0.1:9" }} ]

[admin]
bind = "127.0.0.1:0"
"""


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something else listens on (for as long as the test runs)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock.getsockname()[1]
    sock.close()


def _write(tmp_path: Path, text: str, name: str = "fastlb.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_exit_status_table(tmp_path: Path, busy_port: int) -> None:
    good = _write(tmp_path, GOOD.format(port=0))
    bad = _write(tmp_path, GOOD.format(port=0).replace("mode =", "mdoe ="), "bad.toml")
    busy = _write(tmp_path, GOOD.format(port=busy_port), "busy.toml")
    deep = _write(tmp_path, "x = " + "[" * 20_000 + "]" * 20_000, "deep.toml")
    cases = [
        (["--version"], 0, fastlb.__version__),
        (["--help"], 0, "demo"),
        ([], 2, "usage"),
        (["bogus"], 2, "invalid choice"),
        (["check", "--config", good], 0, "web"),
        (["check", "--config", bad], 2, "listeners[0].mdoe: unknown key (did you mean 'mode'?)"),
        (["check", "--config", str(tmp_path / "missing.toml")], 2, "cannot read the file"),
        (["check"], 2, "--config"),
        (["check", "--config", deep], 2, "nests lists or tables too deeply"),
        (["run", "--config", bad], 2, "mdoe"),
        (["run", "--config", deep], 2, "nests lists or tables too deeply"),
        (["run", "--config", good, "--workers", "0"], 2, "--workers"),
        (["run", "--config", busy], 1, "in use"),
        (["demo", "--port", "70000"], 2, "port"),
        (["demo", "--port", str(busy_port)], 1, f"port {busy_port} is in use"),
        (["demo", "--selfcheck"], 0, ""),
    ]
    for args, status, text in cases:
        proc = run_fastlb(*args)
        out = proc.stdout + proc.stderr
        assert proc.returncode == status, (args, proc.returncode, out)
        assert text in out, (args, out)
        assert "Traceback" not in out, (args, out)
