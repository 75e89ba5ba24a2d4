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
    http_get,
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
    slow_port: int | None = None  # where NGINX sends /slow (slow-clients), if anywhere


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
    run_dir: Path,
    ports: Sequence[int],
    nofile: int = NOFILE,
    workers: int = 1,
    slow_port: int | None = None,
) -> Path:
    """The files and an nginx.conf serving them on every port; its path."""
    root = write_backend_files(run_dir)
    (run_dir / "nginx-temp").mkdir(exist_ok=True)
    path = run_dir / "backend.conf"
    path.write_text(configs.nginx_backend_conf(run_dir, ports, root, workers, nofile, slow_port))
    return path


def stand_in_command(root: Path, ports: Sequence[int]) -> list[str]:
    cmd = [sys.executable, str(STAND_IN), "--root", str(root)]
    for port in ports:
        cmd += ["--port", str(port)]
    return cmd


def backend_commands(
    run_dir: Path,
    nginx: str | None,
    ports: Sequence[int],
    nofile: int,
    workers: int,
    slow_port: int | None = None,
) -> list[list[str]]:
    """The command(s) that run the backend: one NGINX with `workers`
    processes (and, with slow_port, one stand-in there for NGINX's /slow),
    or `workers` copies of the stand-in sharing the ports (it serves /slow
    itself)."""
    if nginx:
        write_backend_conf(run_dir, ports, nofile, workers, slow_port)
        cmds = [configs.nginx_argv(nginx, run_dir, "backend")]
        if slow_port:
            cmds.append(stand_in_command(run_dir / "www", [slow_port]))
        return cmds
    return [stand_in_command(write_backend_files(run_dir), ports)] * workers


def check_slow_route(port: int) -> None:
    """Raise BenchError unless /slow?after=0 comes back whole through port."""
    try:
        status, body = http_get(port, "/slow?after=0")
    except OSError as exc:
        raise BenchError(f"GET /slow through the backend on port {port}: {exc}") from exc
    if status != 200 or body != SMALL_BODY:
        raise BenchError(f"GET /slow through the backend on port {port}: status {status}")


def start_backend(
    workdir: Path,
    nginx: str | None,
    ports: Sequence[int],
    nofile: int,
    workers: int = 1,
    slow_port: int | None = None,
) -> Backend:
    """Start the backend and check that it serves on every port (and its
    slow route, with slow_port: the port NGINX sends /slow to)."""
    run_dir = workdir / "backend"
    run_dir.mkdir(mode=0o755)
    cmds = backend_commands(run_dir, nginx, ports, nofile, workers, slow_port)
    proc = start_process("backend", cmds, run_dir)
    try:
        if nginx and slow_port:
            wait_listening(proc, slow_port)
        for port in ports:
            wait_listening(proc, port)
            check_serves(port, f"the backend on port {port}")
            if slow_port:
                check_slow_route(port)
    except BenchError as exc:
        stop_process(proc)
        raise BenchError(f"{exc}\n{logs_of(run_dir)}") from exc
    if nginx:
        return Backend(proc, tuple(ports), "nginx", slow_port)
    return Backend(proc, tuple(ports), "stand-in")
