"""The configs the benchmark generates: the NGINX backend, and each
contender in each mode.  Pure functions from a Target to text (or argv), so
that tests can read them; bench/tool/contenders.py writes and runs them.

Every proxy gets the same worker count (processes or threads), binds
127.0.0.1 only, logs nothing, keeps client connections open for any number
of requests and has room for 20,000 connections (fewer when RLIMIT_NOFILE
cannot be raised that far).  In http mode the three full proxies keep idle
connections to the backends and share them between clients (fastlb
`keepalive = 64`, HAProxy `http-reuse always`, NGINX upstream `keepalive 64`)
and add X-Forwarded-For and no other request header."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bench.tool.procs import FD_RESERVE, LOOPBACK, NOFILE

Mode = Literal["http", "tcp"]
PROXY_MAXCONN = 20_000
L7_KEEPALIVE = 64  # idle connections each proxy keeps to the backends
IDLE_TIMEOUT_S = 120  # client and server inactivity timeouts, everywhere
SLOW_ROUTE_TIMEOUT_S = 3600  # the backend NGINX waits this long for its slow route
NGINX_TEMP_KINDS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


@dataclass(frozen=True)
class Target:
    """What a proxy config needs: its port, the backend ports, the worker
    count, the descriptor limit it runs under and its run directory."""

    run_dir: Path
    port: int
    backends: tuple[int, ...]
    workers: int = 1
    nofile: int = NOFILE


def addr(port: int) -> str:
    return f"{LOOPBACK}:{port}"


def haproxy_maxconn(nofile: int) -> int:
    """20,000, or fewer when RLIMIT_NOFILE cannot be raised that far: HAProxy
    refuses to start when maxconn needs more descriptors than it may open:
    two per connection plus, with splicing, two per pipe (maxpipes defaults
    to maxconn / 4), i.e. 2.5 per connection."""
    return max(1, min(PROXY_MAXCONN, (nofile - FD_RESERVE) * 2 // 5))


def nginx_worker_connections(nofile: int) -> int:
    """20,000, or the descriptor limit (nginx counts each side as a connection)."""
    return max(1, min(PROXY_MAXCONN, nofile - FD_RESERVE))


# ---------------------------------------------------------------- NGINX


def nginx_main(run_dir: Path, name: str, workers: int, nofile: int, load_module: str = "") -> str:
    """The main-context lines every NGINX config here starts with."""
    return (
        f"{load_module}"
        f"worker_processes {workers};\n"
        f"worker_rlimit_nofile {nofile};\n"
        "daemon off;\n"
        "master_process on;\n"
        f"pid {run_dir / (name + '.pid')};\n"
        f"error_log {run_dir / (name + '.error.log')} warn;\n"
        f"events {{\n    worker_connections {nginx_worker_connections(nofile)};\n}}\n"
    )


def nginx_argv(nginx: str, run_dir: Path, name: str) -> list[str]:
    """The command that runs run_dir/NAME.conf, logging to run_dir/NAME.error.log
    from its first line (before the config's error_log applies)."""
    conf, error_log = run_dir / f"{name}.conf", run_dir / f"{name}.error.log"
    return [nginx, "-e", str(error_log), "-p", str(run_dir), "-c", str(conf)]


def nginx_temp_paths(run_dir: Path) -> str:
    temp = run_dir / "nginx-temp"
    return "".join(f"    {kind}_temp_path {temp / kind};\n" for kind in NGINX_TEMP_KINDS)


def nginx_backend_conf(
    run_dir: Path,
    ports: Sequence[int],
    root: Path,
    workers: int = 1,
    nofile: int = NOFILE,
    slow_port: int | None = None,
) -> str:
    """The backend: /small and /1m from root on every port, keep-alive on
    for any number of requests, sendfile, no access log.  With slow_port,
    /slow (the slow-clients scenario's slow route) goes to the stand-in
    server there, which answers when the query says (NGINX cannot wait)."""
    listens = "".join(f"        listen {addr(port)} backlog=4096;\n" for port in ports)
    slow = (
        "        location = /slow {\n"
        f"            proxy_pass http://{addr(slow_port)};\n"
        f"            proxy_read_timeout {SLOW_ROUTE_TIMEOUT_S}s;\n"
        "        }\n"
        if slow_port
        else ""
    )
    http = (
        "http {\n"
        "    access_log off;\n"
        "    default_type application/octet-stream;\n"
        "    sendfile on;\n"
        "    tcp_nopush on;\n"
        "    open_file_cache max=16 inactive=1h;\n"
        "    open_file_cache_valid 1h;\n"
        f"    keepalive_timeout {IDLE_TIMEOUT_S}s;\n"
        "    keepalive_requests 100000000;\n"
        f"{nginx_temp_paths(run_dir)}"
        "    server {\n"
        f"{listens}"
        f"        root {root};\n"
        "        location = /small { }\n"
        "        location = /1m { }\n"
        f"{slow}"
        "        location / { return 404; }\n"
        "    }\n"
        "}\n"
    )
    return nginx_main(run_dir, "backend", workers, nofile) + http


def nginx_http_conf(t: Target) -> str:
    """NGINX `proxy_pass` to an upstream with `keepalive 64`, round robin
    (its default), HTTP/1.1 to the backends with the Connection header
    cleared (so backend connections stay open), X-Forwarded-For added.
    keepalive_requests is raised on both sides: NGINX's default (1000)
    would close every connection after 1000 requests, which the others do
    not.  Response buffering stays on (NGINX's default)."""
    servers = "".join(f"        server {addr(b)};\n" for b in t.backends)
    http = (
        "http {\n"
        "    access_log off;\n"
        f"    keepalive_timeout {IDLE_TIMEOUT_S}s;\n"
        "    keepalive_requests 100000000;\n"
        f"{nginx_temp_paths(t.run_dir)}"
        "    upstream web {\n"
        f"{servers}"
        f"        keepalive {L7_KEEPALIVE};\n"
        "        keepalive_requests 100000000;\n"
        f"        keepalive_timeout {IDLE_TIMEOUT_S}s;\n"
        "    }\n"
        "    server {\n"
        f"        listen {addr(t.port)} backlog=4096;\n"
        "        location / {\n"
        "            proxy_pass http://web;\n"
        "            proxy_http_version 1.1;\n"
        '            proxy_set_header Connection "";\n'
        "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        "            proxy_connect_timeout 5s;\n"
        f"            proxy_read_timeout {IDLE_TIMEOUT_S}s;\n"
        f"            proxy_send_timeout {IDLE_TIMEOUT_S}s;\n"
        "        }\n"
        "    }\n"
        "}\n"
    )
    return nginx_main(t.run_dir, "nginx-http", t.workers, t.nofile) + http


def nginx_stream_conf(t: Target, load_module: str) -> str:
    """NGINX `stream {}`, round robin (its default) over the backends."""
    servers = "".join(f"        server {addr(b)};\n" for b in t.backends)
    stream = (
        "stream {\n"
        "    upstream web {\n"
        f"{servers}"
        "    }\n"
        "    server {\n"
        f"        listen {addr(t.port)} backlog=4096;\n"
        "        proxy_pass web;\n"
        "        proxy_connect_timeout 5s;\n"
        f"        proxy_timeout {IDLE_TIMEOUT_S}s;\n"
        "    }\n"
        "}\n"
    )
    return nginx_main(t.run_dir, "nginx-stream", t.workers, t.nofile, load_module) + stream


# ---------------------------------------------------------------- HAProxy


def haproxy_cfg(mode: Mode, t: Target) -> str:
    """HAProxy with nbthread = workers, round robin, kernel splicing where
    HAProxy judges it useful (`option splice-auto`), no log.  In `mode http`:
    keep-alive on both sides, backend connections shared between clients
    (`http-reuse always`) and X-Forwarded-For added (`option forwardfor`)."""
    maxconn = haproxy_maxconn(t.nofile)
    servers = "".join(f"    server s{i} {addr(b)}\n" for i, b in enumerate(t.backends, start=1))
    http_lines = (
        "    option http-keep-alive\n"
        "    option forwardfor\n"
        "    http-reuse always\n"
        "    timeout http-request 10s\n"
        f"    timeout http-keep-alive {IDLE_TIMEOUT_S}s\n"
        if mode == "http"
        else ""
    )
    return (
        "global\n"
        f"    nbthread {t.workers}\n"
        f"    maxconn {maxconn}\n"
        f"    pidfile {t.run_dir / 'haproxy.pid'}\n"
        "\n"
        "defaults\n"
        f"    mode {mode}\n"
        "    option splice-auto\n"
        f"{http_lines}"
        f"    maxconn {maxconn}\n"
        "    timeout connect 5s\n"
        f"    timeout client {IDLE_TIMEOUT_S}s\n"
        f"    timeout server {IDLE_TIMEOUT_S}s\n"
        "\n"
        "frontend bench\n"
        f"    bind {addr(t.port)}\n"
        "    default_backend web\n"
        "\n"
        "backend web\n"
        "    balance roundrobin\n"
        f"{servers}"
    )


# ---------------------------------------------------------------- fastlb


def fastlb_toml(mode: Mode, t: Target) -> str:
    """fastlb with workers threads, one listener, round robin.  In http mode
    64 idle backend connections are kept and of the request headers fastlb
    adds by default only X-Forwarded-For stays on, like the peers'."""
    servers = ", ".join(f'{{ address = "{addr(b)}" }}' for b in t.backends)
    listener_http = (
        f"keepalive_timeout = {IDLE_TIMEOUT_S:.1f}\n"
        "forwarded_for = true\n"
        "forwarded_proto = false\n"
        "forwarded_host = false\n"
        "request_id = false\n"
        if mode == "http"
        else ""
    )
    backend_http = (
        f"keepalive = {L7_KEEPALIVE}\nkeepalive_timeout = {IDLE_TIMEOUT_S:.1f}\n"
        if mode == "http"
        else ""
    )
    return (
        "[global]\n"
        f"workers = {t.workers}\n"
        "max_connections = 100000\n"
        "drain_timeout = 1.0\n"
        "\n"
        "[[listeners]]\n"
        'name = "bench"\n'
        f'bind = "{addr(t.port)}"\n'
        f'mode = "{mode}"\n'
        'backend = "web"\n'
        f"{listener_http}"
        "\n"
        "[backends.web]\n"
        'balance = "round_robin"\n'
        f"{backend_http}"
        f"servers = [ {servers} ]\n"
        "\n"
        "[admin]\n"
        "enabled = false\n"
    )


# ---------------------------------------------------------------- proxy.py and pproxy

PROXYPY_PLUGIN = "bench_proxypy_plugin.BenchReverseProxy"


def proxypy_args(t: Target) -> list[str]:
    """proxy.py as a reverse proxy: its web server with --enable-reverse-proxy
    and bench/tool/proxypy_plugin.py routing every path round robin to the
    backends (the plugin reads them from BENCH_UPSTREAMS).  --threaded: the
    default threadless mode loses its selector state on the second request of
    a keep-alive connection and stops serving (FileNotFoundError in
    selector.modify).  One acceptor process per worker; the forward proxy is
    off; no access log (level WARNING)."""
    return [
        "-m",
        "proxy",
        "--threaded",
        "--hostname",
        LOOPBACK,
        "--port",
        str(t.port),
        "--num-acceptors",
        str(t.workers),
        "--num-workers",
        str(t.workers),
        "--backlog",
        "4096",
        "--open-file-limit",
        str(t.nofile),
        "--timeout",
        str(IDLE_TIMEOUT_S),
        "--enable-reverse-proxy",
        "--disable-http-proxy",
        "--plugins",
        PROXYPY_PLUGIN,
        "--log-level",
        "WARNING",
        "--data-dir",
        str(t.run_dir / "proxypy-data"),
        "--pid-file",
        str(t.run_dir / "proxypy.pid"),
    ]


def proxypy_upstreams(t: Target) -> str:
    """BENCH_UPSTREAMS for the proxy.py plugin: 'host:port,host:port'."""
    return ",".join(addr(b) for b in t.backends)


def pproxy_args(t: Target) -> list[str]:
    """pproxy as a TCP forwarder: a `tunnel` listener whose connections go
    through `tunnel://` remotes, one per backend, round robin (`-s rr`);
    SO_REUSEPORT (`--reuse`) so that one copy per worker can share the port."""
    args = ["-m", "pproxy", "-l", f"tunnel{{{addr(t.backends[0])}}}://{addr(t.port)}"]
    for backend in t.backends:
        args += ["-r", f"tunnel://{addr(backend)}"]
    return [*args, "-s", "rr", "--reuse"]
