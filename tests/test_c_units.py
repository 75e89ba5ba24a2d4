"""Build the C unit tests in tests/c/ under ASan + UBSan and run them.

Each tests/c/test_*.c links every csrc/*.c and prints "N passed, N failed";
a sanitizer report or a failed check fails this test."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

C_DIR = Path(__file__).parent / "c"
C_TESTS = sorted(p.stem for p in C_DIR.glob("test_*.c"))


@pytest.fixture(scope="module")
def built() -> Path:
    """Compile every C test once; returns the build directory."""
    assert shutil.which("make") and shutil.which(os.environ.get("CC", "cc")), "needs make and cc"
    targets = [f"build/{name}" for name in C_TESTS]
    proc = subprocess.run(
        ["make", "-s", "-C", str(C_DIR), *targets], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return C_DIR / "build"


def test_there_are_c_tests() -> None:
    assert "test_http1" in C_TESTS and "test_chash" in C_TESTS


@pytest.mark.parametrize("name", C_TESTS)
def test_c_unit(built: Path, name: str) -> None:
    env = dict(
        os.environ,
        ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1",
    )
    proc = subprocess.run([str(built / name)], capture_output=True, text=True, timeout=300, env=env)
    summary = re.search(r"^(\d+) passed, (\d+) failed$", proc.stdout, re.M)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert summary, proc.stdout[-2000:]
    assert int(summary.group(1)) > 0 and int(summary.group(2)) == 0
    assert "runtime error" not in proc.stderr, proc.stderr[-4000:]
