"""The backend every contender proxies to: NGINX serving /small (13 bytes)
and /1m (1 MiB) on two ports with keep-alive, or, when NGINX is missing, the
asyncio stand-in of static_server.py (and the report says so)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.tool import configs
from bench.tool.procs import (
    LARGE_BODY_SIZE,
    NOFILE,
    SMALL_BODY,
    BenchError,
    Proc,
    check_serves,
    logs_of,
    start_process,
    stop_process,
    wait_listening,
)

STAND_IN = Path(__file__).with_name("static_server.py")


@dataclass(frozen=True)
class Backend:
    """The running backend: its process, its ports and what it is."""

    proc: Proc
    ports: tuple[int, ...]
    kind: str  # "nginx" or "stand-in"


def write_backend_files(run_dir: Path) -> Path:
    """The document root: /small (13 bytes) and /1m (1 MiB).  World readable
    so that an nginx worker that dropped root privileges can serve it."""
    root = run_dir / "www"
    root.mkdir(mode=0o755, exist_ok=True)
    (root / "small").write_bytes(SMALL_BODY)
    (root / "1m").write_bytes(bytes(range(256)) * (LARGE_BODY_SIZE // 256))
    for path in (run_dir, root, root / "small", root / "1m"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


def write_backend_conf(
    run_dir: Path, ports: Sequence[int], nofile: int = NOFILE, workers: int = 1
) -> Path:
    """The files and an nginx.conf serving them on every port; its path."""
    root = write_backend_files(run_dir)
    (run_dir / "nginx-temp").mkdir(exist_ok=True)
    path = run_dir / "backend.conf"
    path.write_text(configs.nginx_backend_conf(run_dir, ports, root, workers, nofile))
    return path


def backend_commands(
    run_dir: Path, nginx: str | None, ports: Sequence[int], nofile: int, workers: int
) -> list[list[str]]:
    """The command(s) that run the backend: one NGINX with `workers`
    processes, or `workers` copies of the stand-in sharing the ports."""
    if nginx:
        write_backend_conf(run_dir, ports, nofile, workers)
        return [configs.nginx_argv(nginx, run_dir, "backend")]
    root = write_backend_files(run_dir)
    cmd = [sys.executable, str(STAND_IN), "--root", str(root)]
    for port in ports:
        cmd += ["--port", str(port)]
    return [cmd] * workers


def start_backend(
    workdir: Path, nginx: str | None, ports: Sequence[int], nofile: int, workers: int = 1
) -> Backend:
    """Start the backend and check that it serves on every port."""
    run_dir = workdir / "backend"
    run_dir.mkdir(mode=0o755)
    cmds = backend_commands(run_dir, nginx, ports, nofile, workers)
    proc = start_process("backend", cmds, run_dir)
    try:
        for port in ports:
            wait_listening(proc, port)
            check_serves(port, f"the backend on port {port}")
    except BenchError as exc:
        stop_process(proc)
        raise BenchError(f"{exc}\n{logs_of(run_dir)}") from exc
    return Backend(proc, tuple(ports), "nginx" if nginx else "stand-in")
