"""The `fastlb` command line: --version, help, and `fastlb demo --selfcheck`
(the demo itself: tests/test_demo.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys

from fastlb_cli import SITE, run_fastlb

import fastlb
from fastlb.cli import main


def _fastlb(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("fastlb")
    cmd = [exe, *args] if exe else [sys.executable, "-m", "fastlb", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=SITE)


def test_version() -> None:
    proc = _fastlb("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"fastlb {fastlb.__version__}"


def test_no_command_prints_help_and_exits_2(capsys) -> None:
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_demo_help() -> None:
    proc = _fastlb("demo", "--help")
    assert proc.returncode == 0
    for option in ("--port", "--admin-port", "--requests", "--selfcheck", "--keys"):
        assert option in proc.stdout
    assert "127.0.0.1:8080" in proc.stdout


def test_demo_selfcheck_runs_every_check() -> None:
    proc = _fastlb("demo", "--selfcheck", "--keys", "20000")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "FAIL" not in out
    assert out.count("[ok]") >= 12
    assert "refused Content-Length with Transfer-Encoding" in out
    assert "Maglev: removing" in out and "Ring: removing" in out
    assert "All checks passed" in out


def test_python_dash_m() -> None:
    proc = run_fastlb("--version")
    assert proc.returncode == 0 and "fastlb" in proc.stdout
