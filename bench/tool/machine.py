"""The machine the benchmark ran on and the versions of everything in it."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.tool.contenders import Tools


def first_line(cmd: Sequence[str]) -> str:
    """The first line a program prints (stdout or stderr): its version line."""
    try:
        done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=10, check=False)
    except OSError as exc:
        return f"unavailable ({exc})"
    text = (done.stdout + done.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """CPU model, logical and usable CPUs, kernel, Python.  Call it before
    pinning, which narrows the usable CPUs."""
    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def dist_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def fastlb_version() -> str:
    try:
        import fastlb
    except ImportError as exc:
        return f"not importable ({exc})"
    return str(fastlb.__version__)


def versions(names: Sequence[str], tools: Tools) -> dict[str, str]:
    """Each contender's own version line, and wrk's."""
    found: dict[str, str] = {}
    if "fastlb" in names:
        found["fastlb"] = fastlb_version()
    if "haproxy" in names and tools.haproxy:
        found["haproxy"] = first_line([tools.haproxy, "-v"])
    if tools.nginx:
        found["nginx"] = first_line([tools.nginx, "-v"])
    if "proxy.py" in names:
        found["proxy.py"] = dist_version("proxy.py")
    if "pproxy" in names:
        found["pproxy"] = dist_version("pproxy")
    if tools.wrk:
        found["wrk"] = first_line([tools.wrk, "-v"])
    return found
