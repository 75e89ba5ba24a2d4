"""Processes, ports, limits and CPU pinning: starting and stopping the
servers the benchmark measures, waiting for them, checking that they serve,
and reading their CPU time and resident memory with psutil."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.tool import cpucap

LOOPBACK = "127.0.0.1"
SMALL_BODY = b"hello world!\n"
LARGE_BODY_SIZE = 1 << 20
NOFILE = 65_536  # what the tool asks for; a container's hard limit may be lower
FD_RESERVE = 100  # listeners, logs and the like
START_TIMEOUT = 15.0


class BenchError(RuntimeError):
    """A contender failed to start or to serve; the message says what happened."""


# ---------------------------------------------------------------- ports and programs


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (bind port 0, read it, close)."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """count distinct free ports, all held open together so none repeats."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in socks:
            sock.bind((LOOPBACK, 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def which(name: str, *fallbacks: str) -> str | None:
    """The path of a program: on PATH, or the first fallback that exists
    (Debian puts nginx and haproxy in /usr/sbin, not on a user's PATH)."""
    found = shutil.which(name)
    if found:
        return found
    for path in fallbacks:
        if os.access(path, os.X_OK):
            return path
    return None


def raise_nofile(target: int = NOFILE) -> int:
    """Raise RLIMIT_NOFILE (soft, and hard when allowed) for this process and
    its children; returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, target))
            return target
        except (ValueError, OSError):
            target = hard
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def parse_cpus(spec: str | None) -> tuple[set[int] | None, set[int] | None]:
    """'0:1' pins the proxy to CPU 0 and the backend, wrk and this tool to
    CPU 1; '0,1' or '0-1' pins everything to that set.  ValueError if bad."""
    if not spec:
        return None, None
    parts = spec.split(":")
    if len(parts) > 2:
        raise ValueError(f"--cpus {spec!r}: expected LIST or PROXY_LIST:OTHER_LIST")
    sets = [cpu_list(p) for p in parts]
    return sets[0], sets[-1]


def cpu_list(text: str) -> set[int]:
    """'0,2-3' -> {0, 2, 3}."""
    cpus: set[int] = set()
    for item in text.split(","):
        low, _, high = item.partition("-")
        try:
            cpus.update(range(int(low), int(high or low) + 1))
        except ValueError:
            raise ValueError(f"bad CPU list {text!r}") from None
    return cpus


# ---------------------------------------------------------------- processes


@dataclass
class Proc:
    """A started server: one process or several copies of one (each a
    session leader, so that stopping one stops its children too)."""

    name: str
    popens: list[subprocess.Popen[bytes]]
    run_dir: Path

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.popens]

    def exited(self) -> int | None:
        """The exit status of the first copy that has exited, else None."""
        for popen in self.popens:
            if popen.poll() is not None:
                return popen.returncode
        return None


def _preexec(cpus: set[int] | None, cgroup: Path | None) -> Callable[[], None] | None:
    """The child's steps before exec: pin it to cpus, move it into the
    cgroup whose cgroup.procs file is cgroup."""
    if not cpus and cgroup is None:
        return None

    def steps() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)
        if cgroup is not None:
            cpucap.join(cgroup)

    return steps


def start_process(
    name: str,
    cmds: Sequence[Sequence[str]],
    run_dir: Path,
    cpus: set[int] | None = None,
    env: dict[str, str] | None = None,
    cgroup: Path | None = None,
) -> Proc:
    """Start each command in run_dir in a new session, output in
    run_dir/NAME[.i].out; pinned to cpus, inside the cgroup whose
    cgroup.procs file is cgroup, when given."""
    popens = []
    for i, cmd in enumerate(cmds):
        suffix = f".{i}" if len(cmds) > 1 else ""
        with open(run_dir / f"{name}{suffix}.out", "wb") as out:
            popens.append(
                subprocess.Popen(
                    list(cmd),
                    cwd=run_dir,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_preexec(cpus, cgroup),
                    env=env,
                )
            )
    return Proc(name, popens, run_dir)


def stop_process(proc: Proc, grace: float = 5.0) -> None:
    """SIGTERM each process group, SIGKILL it after grace seconds."""
    for popen in proc.popens:
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, sig)
            try:
                popen.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):  # stragglers, e.g. an orphaned worker
            os.killpg(popen.pid, signal.SIGKILL)


def logs_of(run_dir: Path, tail: int = 40) -> str:
    """The last lines of every log and output file in run_dir."""
    parts = []
    for path in sorted(run_dir.glob("*.out")) + sorted(run_dir.glob("*.log")):
        lines = path.read_text(errors="replace").splitlines()[-tail:]
        body = "\n".join(lines) if lines else "(empty)"
        parts.append(f"--- {path.name}\n{body}")
    return "\n".join(parts)


def wait_listening(proc: Proc, port: int, timeout: float = START_TIMEOUT) -> None:
    """Return once port accepts a connection; raise BenchError if proc dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = proc.exited()
        if status is not None:
            raise BenchError(f"{proc.name} exited with status {status}")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{proc.name} does not listen on {LOOPBACK}:{port} after {timeout:.0f} s")


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """One HTTP/1.1 GET with Connection: close; returns (status, body)."""
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode()
    chunks = []
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        sock.sendall(request)
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    return (int(match.group(1)) if match else 0), body


def check_serves(port: int, what: str) -> None:
    """Raise BenchError unless /small and /1m come back whole through port."""
    for path, expected in (("/small", SMALL_BODY), ("/1m", None)):
        try:
            status, body = http_get(port, path)
        except OSError as exc:
            raise BenchError(f"GET {path} through {what}: {exc}") from exc
        ok = status == 200 and (
            body == expected if expected is not None else len(body) == LARGE_BODY_SIZE
        )
        if not ok:
            raise BenchError(f"GET {path} through {what}: status {status}, {len(body)} bytes")


# ---------------------------------------------------------------- psutil


def _tree(pids: Sequence[int]) -> list[psutil.Process]:
    procs: list[psutil.Process] = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            parent = psutil.Process(pid)
            procs += [parent, *parent.children(recursive=True)]
    return procs


def tree_rss(pids: Sequence[int]) -> int:
    """Resident bytes of the processes and all their descendants."""
    total = 0
    for proc in _tree(pids):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total


def tree_fds(pids: Sequence[int]) -> int:
    """Open descriptors of the processes and all their descendants."""
    total = 0
    for proc in _tree(pids):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += proc.num_fds()
    return total


def alive(pids: Sequence[int]) -> bool:
    """Whether every one of the processes still runs (not exited, not a zombie)."""
    for pid in pids:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            return False
    return True


def tree_cpu(pids: Sequence[int]) -> float:
    """CPU seconds (user + system) used so far by the processes and their descendants."""
    total = 0.0
    for proc in _tree(pids):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total
