"""L4 macro benchmark: fastlb beside HAProxy (`mode tcp`) and NGINX (`stream`).

    python -m bench.l4                      # 3 interleaved rounds, Markdown table
    python -m bench.l4 --rounds 5 --json l4.json --cpus 0:1
    python -m bench.l4 --quick              # each contender once, ~1 s: does it work?
    python -m bench.l4 --contenders haproxy,nginx,direct

Every proxy runs with ONE worker in front of the same NGINX backend (one
worker, two ports, keep-alive, /small = 13 bytes and /1m = 1 MiB from a temp
dir), all on 127.0.0.1.  Three figures per proxy:

1. requests/s with wrk over keep-alive connections to /small;
2. bytes/s of 1 MiB responses (wrk's Transfer/sec) from /1m;
3. memory per idle connection: RSS growth of the proxy's processes while this
   script holds --idle-conns idle TCP connections through it, once the proxy
   holds as many connections to the backends (end to end).

Contenders run in interleaved rounds (fastlb, haproxy, nginx, direct, fastlb,
...), each round on a fresh proxy process, and medians are reported, also as
ratios to HAProxy and to the backend reached directly.  fastlb runs as
`python -m fastlb run --config FILE --workers 1` in its own process so that
its RSS is its own."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench import FASTLB_SITE, peers
from bench.peers import LOOPBACK

CONTENDERS = ("fastlb", "haproxy", "nginx", "direct")
LABELS = {
    "fastlb": "fastlb",
    "haproxy": "HAProxy (mode tcp)",
    "nginx": "NGINX (stream)",
    "direct": "direct (no proxy)",
}
DEBIAN_PACKAGES = {"haproxy": "haproxy", "nginx": "nginx libnginx-mod-stream", "wrk": "wrk"}
START_TIMEOUT = 15.0
ESTABLISH_TIMEOUT = 15.0
LINGER_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a RST


class BenchError(RuntimeError):
    """A contender failed to start or to serve; the message says what happened."""


# ---------------------------------------------------------------- processes


@dataclass
class Proc:
    """A started server: its process (a session and process-group leader) and run dir."""

    name: str
    popen: subprocess.Popen[bytes]
    run_dir: Path

    @property
    def pid(self) -> int:
        return self.popen.pid


def _affinity_preexec(cpus: set[int] | None) -> Callable[[], None] | None:
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def start_process(
    name: str,
    cmd: Sequence[str],
    run_dir: Path,
    cpus: set[int] | None = None,
    env: dict[str, str] | None = None,
) -> Proc:
    """Start cmd in run_dir in a new session, its output in run_dir/NAME.out."""
    with open(run_dir / f"{name}.out", "wb") as out:
        popen = subprocess.Popen(
            list(cmd),
            cwd=run_dir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_affinity_preexec(cpus),
            env=env,
        )
    return Proc(name, popen, run_dir)


def stop_process(proc: Proc, grace: float = 5.0) -> None:
    """SIGTERM the process group, SIGKILL it after grace seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.popen.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # stragglers, e.g. an orphaned worker
        os.killpg(proc.pid, signal.SIGKILL)


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
        if proc.popen.poll() is not None:
            raise BenchError(f"{proc.name} exited with status {proc.popen.returncode}")
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
    for path, expected in (("/small", peers.SMALL_BODY), ("/1m", None)):
        try:
            status, body = http_get(port, path)
        except OSError as exc:
            raise BenchError(f"GET {path} through {what}: {exc}") from exc
        ok = status == 200 and (
            body == expected if expected is not None else len(body) == peers.LARGE_BODY_SIZE
        )
        if not ok:
            raise BenchError(f"GET {path} through {what}: status {status}, {len(body)} bytes")


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants."""
    parent = psutil.Process(pid)
    total = 0
    for proc in [parent, *parent.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its descendants."""
    parent = psutil.Process(pid)
    total = 0.0
    for proc in [parent, *parent.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def raise_nofile(target: int = peers.NOFILE) -> int:
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


# ---------------------------------------------------------------- wrk


def _binary_amount(number: str, prefix: str) -> float:
    """wrk's Transfer/sec amounts use powers of 1024: '1.50', 'G' -> bytes."""
    return float(number) * 1024 ** ("KMGTP".find(prefix) + 1) if prefix else float(number)


def parse_wrk(text: str) -> dict[str, Any]:
    """The figures of one wrk run: requests/s, bytes/s, latency and errors."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)([KMGTP]?)B", text)
    if not rps or not transfer:
        raise BenchError(f"cannot read wrk's output:\n{text}")
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    requests = re.search(r"(\d+) requests in", text)
    latency = re.search(r"Latency\s+([\d.]+\w+)", text)
    return {
        "requests_per_s": float(rps.group(1)),
        "bytes_per_s": _binary_amount(*transfer.groups()),
        "requests": int(requests.group(1)) if requests else None,
        "latency_avg": latency.group(1) if latency else None,
        "socket_errors": [int(n) for n in errors.groups()] if errors else [0, 0, 0, 0],
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def run_wrk(wrk: str, port: int, path: str, seconds: float, connections: int) -> dict[str, Any]:
    """wrk -t1 -cN -dS against 127.0.0.1:port/path (keep-alive); parsed figures."""
    duration = max(1, round(seconds))
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{duration}s", f"http://{LOOPBACK}:{port}{path}"]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=duration + 30, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{' '.join(cmd)} did not finish in {duration + 30} s") from exc
    if done.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    result = parse_wrk(done.stdout)
    bad = sum(result["socket_errors"]) + result["non_2xx"]
    if result["requests"] == 0 or bad > max(10, (result["requests"] or 0) // 100):
        raise BenchError(f"wrk saw errors through port {port}:\n{done.stdout}")
    result["command"] = " ".join(cmd)
    return result


# ---------------------------------------------------------------- idle connections


def count_upstream(pid: int, ports: set[int]) -> int:
    """ESTABLISHED TCP sockets of pid's process tree whose peer port is in ports:
    the proxy's connections to the backends."""
    parent = psutil.Process(pid)
    count = 0
    for proc in [parent, *parent.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            for conn in proc.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_ESTABLISHED and conn.raddr and conn.raddr[1] in ports:
                    count += 1
    return count


def open_idle(port: int, count: int) -> list[socket.socket]:
    """count connections to port that send nothing; closing them sends a RST
    (SO_LINGER 0) so that no TIME_WAIT piles up between rounds."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection((LOOPBACK, port), timeout=10)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
            socks.append(sock)
    except OSError as exc:
        close_all(socks)
        raise BenchError(f"idle connection {len(socks) + 1} to port {port}: {exc}") from exc
    return socks


def close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        sock.close()
    socks.clear()


def wait_upstream(pid: int, ports: set[int], target: int, timeout: float) -> int:
    """Poll until pid's tree holds target connections to ports; returns the last count."""
    deadline = time.monotonic() + timeout
    seen = count_upstream(pid, ports)
    while seen < target and time.monotonic() < deadline:
        time.sleep(0.1)
        seen = count_upstream(pid, ports)
    return seen


def measure_idle(proc: Proc, port: int, backend_ports: set[int], count: int) -> dict[str, Any]:
    """RSS growth of proc's tree while count idle connections go through it,
    measured once the proxy holds them all to the backends too (end to end)."""
    before = count_upstream(proc.pid, backend_ports)
    time.sleep(0.2)
    rss_before = tree_rss(proc.pid)
    started = time.monotonic()
    socks = open_idle(port, count)
    try:
        seen = wait_upstream(proc.pid, backend_ports, before + count, ESTABLISH_TIMEOUT)
        took = time.monotonic() - started
        time.sleep(1.0)  # let the proxy settle: accepted, connected, buffers as they stay
        if proc.popen.poll() is not None:
            raise BenchError(f"{proc.name} exited holding idle connections")
        rss_after = tree_rss(proc.pid)
    finally:
        close_all(socks)
    time.sleep(0.5)
    if seen - before < count:
        print(
            f"bench.l4: warning: {proc.name} held {seen - before} of {count} idle "
            "connections to the backends",
            file=sys.stderr,
        )
    return {
        "connections": count,
        "established_upstream": seen - before,
        "seconds_to_establish": round(took, 3),
        "rss_before": rss_before,
        "rss_after": rss_after,
        "bytes_per_conn": (rss_after - rss_before) / count,
    }


# ---------------------------------------------------------------- contenders


@dataclass
class Setup:
    """What every measurement needs: tools, backend ports, options."""

    wrk: str
    haproxy: str | None
    nginx: str
    stream_module: str
    backend_ports: list[int]
    workdir: Path
    duration: float
    warmup: float
    connections: int
    idle_conns: int
    proxy_cpus: set[int] | None
    nofile: int
    skipped: dict[str, str] = field(default_factory=dict)


def _fastlb_cmd(setup: Setup, run_dir: Path, port: int) -> tuple[list[str], dict[str, str]]:
    conf = peers.write_fastlb_toml(run_dir, port, setup.backend_ports)
    cmd = [sys.executable, "-m", "fastlb", "run", "--config", str(conf), "--workers", "1"]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [FASTLB_SITE, env.get("PYTHONPATH")]))
    return [*cmd, "--log-level", "warning"], env


def proxy_command(
    name: str, setup: Setup, run_dir: Path, port: int
) -> tuple[list[str], dict[str, str] | None]:
    """The command line (and environment) that runs contender name on port."""
    if name == "fastlb":
        return _fastlb_cmd(setup, run_dir, port)
    if name == "haproxy":
        assert setup.haproxy
        conf = peers.write_haproxy_cfg(run_dir, port, setup.backend_ports, setup.nofile)
        return [setup.haproxy, "-db", "-f", str(conf)], None
    if name == "nginx":
        conf = peers.write_nginx_stream_conf(
            run_dir, port, setup.backend_ports, setup.stream_module, setup.nofile
        )
        error_log = str(run_dir / "nginx-stream.error.log")
        return [setup.nginx, "-e", error_log, "-p", str(run_dir), "-c", str(conf)], None
    raise ValueError(f"unknown contender {name}")


def measure_throughput(setup: Setup, port: int, pid: int | None = None) -> dict[str, Any]:
    """Warm-up, then requests/s on /small and bytes/s on /1m.  With the
    proxy's pid, also the proxy's CPU time per /small request: on a box whose
    cores wrk and the backend share, this tells proxies apart when req/s
    cannot."""
    if setup.warmup > 0:
        run_wrk(setup.wrk, port, "/small", setup.warmup, setup.connections)
    cpu0 = tree_cpu(pid) if pid else 0.0
    small = run_wrk(setup.wrk, port, "/small", setup.duration, setup.connections)
    if pid and small["requests"]:
        small["cpu_us_per_req"] = (tree_cpu(pid) - cpu0) / small["requests"] * 1e6
    large = run_wrk(setup.wrk, port, "/1m", setup.duration, setup.connections)
    return {"small": small, "1m": large}


def measure_direct(setup: Setup) -> dict[str, Any]:
    return measure_throughput(setup, setup.backend_ports[0])


def measure_proxy(name: str, setup: Setup, round_no: int) -> dict[str, Any]:
    """Start a fresh proxy, check it, measure idle memory then throughput, stop it."""
    run_dir = setup.workdir / f"{name}-round{round_no}"
    run_dir.mkdir()
    port = peers.free_port()
    cmd, env = proxy_command(name, setup, run_dir, port)
    proc = start_process(name, cmd, run_dir, setup.proxy_cpus, env)
    try:
        try:
            wait_listening(proc, port)
            check_serves(port, name)
            idle = measure_idle(proc, port, set(setup.backend_ports), setup.idle_conns)
            result = measure_throughput(setup, port, proc.pid)
            if proc.popen.poll() is not None:
                raise BenchError(f"{name} exited during the run")
        except BenchError as exc:
            raise BenchError(f"{exc}\n{logs_of(run_dir)}") from exc
    finally:
        stop_process(proc)
    result["idle"] = idle
    result["command"] = " ".join(cmd)
    return result


def measure(name: str, setup: Setup, round_no: int) -> dict[str, Any]:
    return measure_direct(setup) if name == "direct" else measure_proxy(name, setup, round_no)


def start_backend(setup_dir: Path, nginx: str, ports: list[int], nofile: int) -> Proc:
    """The shared NGINX backend, checked on every port."""
    run_dir = setup_dir / "backend"
    run_dir.mkdir()
    conf = peers.write_backend_conf(run_dir, ports, nofile)
    error_log = str(run_dir / "backend.error.log")
    proc = start_process(
        "backend", [nginx, "-e", error_log, "-p", str(run_dir), "-c", str(conf)], run_dir
    )
    try:
        for port in ports:
            wait_listening(proc, port)
            check_serves(port, f"the backend on port {port}")
    except BenchError as exc:
        stop_process(proc)
        raise BenchError(f"{exc}\n{logs_of(run_dir)}") from exc
    return proc


# ---------------------------------------------------------------- machine and versions


def _first_line(cmd: Sequence[str]) -> str:
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
    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def fastlb_version() -> str:
    try:
        import fastlb
    except ImportError as exc:
        return f"not importable ({exc})"
    return str(fastlb.__version__)


def versions(setup: Setup) -> dict[str, str]:
    """Each tool's own version line."""
    found = {"fastlb": fastlb_version()}
    if setup.haproxy:
        found["haproxy"] = _first_line([setup.haproxy, "-v"])
    found["nginx"] = _first_line([setup.nginx, "-v"])
    found["wrk"] = _first_line([setup.wrk, "-v"])
    return found


def short_version(line: str) -> str:
    """'HAProxy version 2.6.12-1+deb12u4 2026/...' -> '2.6.12-1+deb12u4', and so on."""
    match = re.search(r"(?:version |/|^wrk )(\S*\d\S*)", line)
    return match.group(1) if match else line


# ---------------------------------------------------------------- checks


def check_fastlb() -> None:
    """Raise SystemExit with a clear message when fastlb cannot `run`."""
    probe = [sys.executable, "-m", "fastlb", "run", "--help"]
    # Run beside the package in use, not in the checkout (see bench/__init__).
    env = dict(os.environ, PYTHONPATH=FASTLB_SITE)
    done = subprocess.run(
        probe, capture_output=True, text=True, env=env, cwd=FASTLB_SITE, check=False
    )
    engine = subprocess.run(
        [sys.executable, "-c", "import fastlb.engine"],
        capture_output=True,
        text=True,
        env=env,
        cwd=FASTLB_SITE,
        check=False,
    )
    if done.returncode != 0 or engine.returncode != 0:
        detail = (done.stderr or engine.stderr).strip().splitlines()[-1:] or ["no detail"]
        raise SystemExit(
            "bench.l4: this fastlb has no engine support (`fastlb run` or fastlb.engine is "
            f"missing: {detail[0]}).\nBuild it with `python setup.py build_ext --inplace`, or "
            "leave it out with --contenders haproxy,nginx,direct."
        )


def find_tools(wanted: list[str]) -> tuple[str, str | None, str, str, dict[str, str]]:
    """wrk, haproxy, nginx and the stream load_module line; skipped contenders
    with the reason.  Raises SystemExit when wrk or nginx (the backend) is missing."""
    skipped: dict[str, str] = {}
    wrk = peers.which("wrk", "/usr/bin/wrk")
    nginx = peers.which("nginx", "/usr/sbin/nginx")
    for tool, path in (("wrk", wrk), ("nginx", nginx)):
        if path is None:
            raise SystemExit(
                f"bench.l4: {tool} not found; on Debian: apt-get install {DEBIAN_PACKAGES[tool]}"
            )
    assert wrk and nginx
    haproxy = peers.which("haproxy", "/usr/sbin/haproxy")
    if "haproxy" in wanted and haproxy is None:
        skipped["haproxy"] = "haproxy not found; on Debian: apt-get install haproxy"
    stream = ""
    if "nginx" in wanted:
        try:
            stream = peers.stream_module_directive(nginx)
        except peers.StreamModuleMissing as exc:
            skipped["nginx"] = f"{exc}; on Debian: apt-get install libnginx-mod-stream"
    return wrk, haproxy, nginx, stream, skipped


# ---------------------------------------------------------------- report


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def figures(runs: list[dict[str, Any]], name: str) -> dict[str, list[float]]:
    """The per-round values of the three figures for one contender."""
    mine = [r["result"] for r in runs if r["contender"] == name and "result" in r]
    return {
        "requests_per_s": [r["small"]["requests_per_s"] for r in mine],
        "bytes_per_s": [r["1m"]["bytes_per_s"] for r in mine],
        "idle_bytes_per_conn": [r["idle"]["bytes_per_conn"] for r in mine if "idle" in r],
        "cpu_us_per_req": [
            r["small"]["cpu_us_per_req"] for r in mine if "cpu_us_per_req" in r["small"]
        ],
    }


def medians(runs: list[dict[str, Any]], names: list[str]) -> dict[str, dict[str, float | None]]:
    return {n: {k: _median(v) for k, v in figures(runs, n).items()} for n in names}


def _ratio(value: float | None, reference: float | None) -> str:
    if value is None or not reference:
        return "—"
    return f"{value / reference:.2f}x"


def _fmt_rps(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _fmt_bps(value: float | None) -> str:
    return "—" if value is None else f"{value / 1024**3:.2f} GiB/s"


def _fmt_us(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} µs"


def _fmt_bytes(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} B"


def _spread(values: list[float]) -> str:
    if len(values) < 2:
        return "—"
    mid = statistics.median(values)
    return f"±{(max(values) - min(values)) / 2 / mid * 100:.0f}%" if mid else "—"


def markdown_table(meds: dict[str, dict[str, float | None]], names: list[str]) -> str:
    hap = meds.get("haproxy", {})
    direct = meds.get("direct", {})
    head = (
        "| contender | req/s, 13 B body | vs HAProxy | vs direct | proxy CPU per request "
        "| vs HAProxy | 1 MiB responses | vs HAProxy | vs direct | memory per idle conn. "
        "| vs HAProxy |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = []
    for name in names:
        m = meds[name]
        rps, bps, idle = m["requests_per_s"], m["bytes_per_s"], m["idle_bytes_per_conn"]
        cpu = m["cpu_us_per_req"]
        rows.append(
            f"| {LABELS[name]} | {_fmt_rps(rps)} | {_ratio(rps, hap.get('requests_per_s'))} "
            f"| {_ratio(rps, direct.get('requests_per_s'))} | {_fmt_us(cpu)} "
            f"| {_ratio(cpu, hap.get('cpu_us_per_req'))} | {_fmt_bps(bps)} "
            f"| {_ratio(bps, hap.get('bytes_per_s'))} | {_ratio(bps, direct.get('bytes_per_s'))} "
            f"| {_fmt_bytes(idle)} | {_ratio(idle, hap.get('idle_bytes_per_conn'))} |"
        )
    return head + "\n".join(rows) + "\n"


def spread_table(runs: list[dict[str, Any]], names: list[str]) -> str:
    lines = [
        "| contender | req/s spread | 1 MiB spread | idle spread | rounds ok |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in names:
        f = figures(runs, name)
        lines.append(
            f"| {LABELS[name]} | {_spread(f['requests_per_s'])} | {_spread(f['bytes_per_s'])} "
            f"| {_spread(f['idle_bytes_per_conn'])} | {len(f['requests_per_s'])} |"
        )
    return "\n".join(lines) + "\n"


def report(info: dict[str, Any], runs: list[dict[str, Any]], names: list[str]) -> str:
    meds = medians(runs, names)
    opts = info["options"]
    ver = info["versions"]
    machine = info["machine"]
    text = [
        "## L4 proxies: fastlb beside HAProxy and NGINX\n",
        f"Machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs "
        f"({machine['usable_cpus']} usable), {machine['kernel']}, Python {machine['python']}.  ",
        "Versions: " + ", ".join(f"{k} {short_version(v)}" for k, v in ver.items()) + ".  ",
        f"Method: {opts['rounds']} interleaved round(s), median; wrk -t1 -c{opts['connections']} "
        f"-d{opts['duration']:g}s keep-alive after a {opts['warmup']:g} s warm-up; "
        f"{opts['idle_conns']:,} idle connections; one worker per proxy; HAProxy maxconn "
        f"{peers.haproxy_maxconn(info['nofile'])}, NGINX worker_connections "
        f"{peers.nginx_worker_connections(info['nofile'])} (RLIMIT_NOFILE {info['nofile']}); "
        f"CPUs: {opts['cpus'] or 'not pinned'}.\n",
        markdown_table(meds, names),
        "Proxy CPU per request is the CPU time (user + system) of the proxy's processes during "
        "the req/s run divided by the requests it served (lower is better).  Memory per idle "
        "connection is the RSS growth of the proxy's processes divided by the connections "
        "(lower is better).  The backend reached directly has no proxy, so those columns have "
        "no direct figure.  Spread is half the min-to-max range over rounds:\n",
        spread_table(runs, names),
    ]
    for name, why in info["skipped"].items():
        text.append(f"Skipped {name}: {why}.  ")
    failures = [r for r in runs if "error" in r]
    if failures:
        text.append(f"\n{len(failures)} run(s) failed; see the messages above and the JSON.")
    return "\n".join(text).rstrip() + "\n"


# ---------------------------------------------------------------- main


def parse_cpus(spec: str | None) -> tuple[set[int] | None, set[int] | None]:
    """'0:1' pins the proxy to CPU 0 and the backend, wrk and this script to
    CPU 1; '0,1' or '0-1' pins everything to that set."""
    if not spec:
        return None, None
    parts = spec.split(":")
    if len(parts) > 2:
        raise SystemExit(f"bench.l4: --cpus {spec!r}: expected LIST or PROXY_LIST:OTHER_LIST")
    sets = [_cpu_list(p) for p in parts]
    return sets[0], sets[-1]


def _cpu_list(text: str) -> set[int]:
    cpus: set[int] = set()
    for item in text.split(","):
        low, _, high = item.partition("-")
        try:
            cpus.update(range(int(low), int(high or low) + 1))
        except ValueError:
            raise SystemExit(f"bench.l4: bad CPU list {text!r}") from None
    return cpus


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.l4",
        description="L4 macro benchmark: fastlb beside HAProxy (mode tcp) and NGINX (stream), "
        "one worker each, in front of NGINX backends on 127.0.0.1.",
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--duration", type=float, default=5.0, help="wrk seconds (default 5)")
    parser.add_argument(
        "--warmup",
        type=float,
        default=1.0,
        help="wrk warm-up seconds before each measurement (default 1, 0: none)",
    )
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    parser.add_argument(
        "--idle-conns",
        type=int,
        help="idle connections for the memory figure (default 5000, 500 with --quick)",
    )
    parser.add_argument(
        "--contenders",
        default=",".join(CONTENDERS),
        help=f"comma-separated subset of {','.join(CONTENDERS)} (default: all)",
    )
    parser.add_argument(
        "--cpus",
        help="pin like taskset: '0:1' = proxy on CPU 0, backend, wrk "
        "and this script on CPU 1; '0,1' = everything on those CPUs",
    )
    parser.add_argument("--json", type=Path, help="write every raw run and the medians here")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="each contender once for ~1 s, no warm-up (a CI check that it all works)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs)")
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 1.0, 0.0
    if args.idle_conns is None:
        args.idle_conns = 500 if args.quick else 5000
    names = [n.strip() for n in args.contenders.split(",") if n.strip()]
    unknown = sorted(set(names) - set(CONTENDERS))
    if unknown or not names:
        raise SystemExit(f"bench.l4: unknown contender(s) {unknown}; choose from {CONTENDERS}")
    if args.rounds < 1 or args.duration < 1 or args.idle_conns < 1:
        raise SystemExit("bench.l4: --rounds, --duration and --idle-conns must be at least 1")
    args.names = [n for n in CONTENDERS if n in names]  # canonical interleaving order
    return args


def run_rounds(setup: Setup, names: list[str], rounds: int) -> list[dict[str, Any]]:
    """fastlb, haproxy, nginx, direct, fastlb, ...: every contender once per round."""
    runs: list[dict[str, Any]] = []
    for round_no in range(1, rounds + 1):
        for name in names:
            print(f"round {round_no}/{rounds}: {name} ...", file=sys.stderr, flush=True)
            entry: dict[str, Any] = {"round": round_no, "contender": name}
            try:
                entry["result"] = measure(name, setup, round_no)
            except BenchError as exc:
                print(f"bench.l4: {name}, round {round_no} failed: {exc}", file=sys.stderr)
                entry["error"] = str(exc)
            runs.append(entry)
    return runs


def prepare(args: argparse.Namespace) -> tuple[Setup, list[str], dict[str, Any]]:
    """Tools, checks, limits and pinning: the Setup, the contenders that will
    run and the run's description (machine, versions, options)."""
    machine = machine_info()  # before pinning narrows the usable CPUs
    proxy_cpus, other_cpus = parse_cpus(args.cpus)
    wrk, haproxy, nginx, stream, skipped = find_tools(args.names)
    if "fastlb" in args.names:
        check_fastlb()
    for name, why in skipped.items():
        print(f"bench.l4: skipping {name}: {why}", file=sys.stderr)
    names = [n for n in args.names if n not in skipped]
    if not names:
        raise SystemExit("bench.l4: no contender left to run")
    if other_cpus:
        os.sched_setaffinity(0, other_cpus)  # inherited by the backend and wrk
    nofile = raise_nofile()
    if nofile < 2 * args.idle_conns + peers.FD_RESERVE:
        print(f"bench.l4: warning: RLIMIT_NOFILE is only {nofile}", file=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix="fastlb-l4-"))
    workdir.chmod(0o755)  # nginx workers may run as nobody and must reach www/
    setup = Setup(
        wrk=wrk,
        haproxy=haproxy,
        nginx=nginx,
        stream_module=stream,
        backend_ports=peers.free_ports(2),
        workdir=workdir,
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        idle_conns=args.idle_conns,
        proxy_cpus=proxy_cpus,
        nofile=nofile,
        skipped=skipped,
    )
    options = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    info = {
        "machine": machine,
        "versions": versions(setup),
        "options": options,
        "skipped": skipped,
        "nofile": nofile,
    }
    return setup, names, info


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup, names, info = prepare(args)
    backend: Proc | None = None
    try:
        backend = start_backend(setup.workdir, setup.nginx, setup.backend_ports, setup.nofile)
        runs = run_rounds(setup, names, args.rounds)
    except BenchError as exc:
        print(f"bench.l4: {exc}", file=sys.stderr)
        return 1
    finally:
        if backend is not None:
            stop_process(backend)
        if args.keep:
            print(f"bench.l4: files kept in {setup.workdir}", file=sys.stderr)
        else:
            shutil.rmtree(setup.workdir, ignore_errors=True)
    print(report(info, runs, names))
    if args.json:
        info["runs"] = runs
        info["medians"] = medians(runs, names)
        args.json.write_text(json.dumps(info, indent=2) + "\n")
    return 1 if any("error" in r for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
