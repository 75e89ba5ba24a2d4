"""Config files for the L4 and L7 macro benchmarks (bench/l4.py, bench/l7.py).

Each function writes one config into a run directory and returns its path:
the NGINX that serves the backends, the proxies under test (HAProxy in
`mode tcp`, NGINX `stream`, fastlb; for L7 HAProxy `mode http`, NGINX
`proxy_pass`, fastlb `mode = "http"`) and nothing else.  Every proxy gets ONE
worker (process or thread), binds 127.0.0.1 only and has room for 20,000
connections.  The functions only write files: starting and stopping the
processes is bench/l4.py's and bench/l7.py's job."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"
SMALL_BODY = b"hello world!\n"
LARGE_BODY_SIZE = 1 << 20
PROXY_MAXCONN = 20_000
NOFILE = 65_536
FD_RESERVE = 100  # listeners, logs and the like

# Where Debian's libnginx-mod-stream puts the module (first), then other common layouts.
STREAM_MODULE_PATHS = (
    "/usr/lib/nginx/modules/ngx_stream_module.so",
    "/usr/lib64/nginx/modules/ngx_stream_module.so",
    "/usr/share/nginx/modules/ngx_stream_module.so",
    "/usr/local/nginx/modules/ngx_stream_module.so",
)


class StreamModuleMissing(RuntimeError):
    """This nginx has no stream module (Debian: install libnginx-mod-stream)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


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


def haproxy_maxconn(nofile: int) -> int:
    """20,000, or fewer when RLIMIT_NOFILE cannot be raised that far: HAProxy
    refuses to start when maxconn needs more descriptors than it may open:
    two per connection plus, with splicing, two per pipe (maxpipes defaults
    to maxconn / 4), i.e. 2.5 per connection."""
    return max(1, min(PROXY_MAXCONN, (nofile - FD_RESERVE) * 2 // 5))


def nginx_worker_connections(nofile: int) -> int:
    """20,000, or the descriptor limit (nginx counts each side as a connection)."""
    return max(1, min(PROXY_MAXCONN, nofile - FD_RESERVE))


def _addr(port: int) -> str:
    return f"{LOOPBACK}:{port}"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def nginx_build_options(nginx: str) -> str:
    """The configure arguments `nginx -V` prints (on stderr)."""
    done = subprocess.run([nginx, "-V"], capture_output=True, text=True, check=False)
    return done.stderr + done.stdout


def stream_module_directive(nginx: str) -> str:
    """The `load_module` line nginx needs for `stream {}`, or "" when the module
    is built in.  Raises StreamModuleMissing when nginx has no stream module."""
    options = nginx_build_options(nginx)
    if re.search(r"--with-stream(\s|$)", options):
        return ""
    if "--with-stream=dynamic" not in options:
        raise StreamModuleMissing(f"{nginx} was built without the stream module")
    for candidate in STREAM_MODULE_PATHS:
        if os.path.isfile(candidate):
            return f"load_module {candidate};\n"
    raise StreamModuleMissing("ngx_stream_module.so not found in " + ", ".join(STREAM_MODULE_PATHS))


def write_backend_files(run_dir: Path) -> Path:
    """The document root: /small (13 bytes) and /1m (1 MiB).  Made world
    readable so an nginx worker that dropped root privileges can serve it."""
    root = run_dir / "www"
    root.mkdir(mode=0o755, exist_ok=True)
    (root / "small").write_bytes(SMALL_BODY)
    (root / "1m").write_bytes(bytes(range(256)) * (LARGE_BODY_SIZE // 256))
    for path in (run_dir, root, root / "small", root / "1m"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


def _nginx_main(run_dir: Path, name: str, load_module: str = "", nofile: int = NOFILE) -> str:
    """The main-context lines shared by the backend and the stream proxy."""
    return (
        f"{load_module}"
        "worker_processes 1;\n"
        f"worker_rlimit_nofile {nofile};\n"
        "daemon off;\n"
        "master_process on;\n"
        f"pid {run_dir / (name + '.pid')};\n"
        f"error_log {run_dir / (name + '.error.log')} warn;\n"
        f"events {{\n    worker_connections {nginx_worker_connections(nofile)};\n}}\n"
    )


def write_backend_conf(run_dir: Path, ports: Sequence[int], nofile: int = NOFILE) -> Path:
    """An nginx (one worker) serving /small and /1m on every port, keep-alive on."""
    root = write_backend_files(run_dir)
    temp = run_dir / "nginx-temp"
    temp.mkdir(exist_ok=True)
    listens = "".join(f"        listen {_addr(port)} backlog=4096;\n" for port in ports)
    temp_paths = "".join(
        f"    {kind}_temp_path {temp / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    http = (
        "http {\n"
        "    access_log off;\n"
        "    default_type application/octet-stream;\n"
        "    sendfile on;\n"
        "    tcp_nopush on;\n"
        "    keepalive_timeout 120s;\n"
        "    keepalive_requests 100000000;\n"
        f"{temp_paths}"
        "    server {\n"
        f"{listens}"
        f"        root {root};\n"
        "        location = /small { }\n"
        "        location = /1m { }\n"
        "        location / { return 404; }\n"
        "    }\n"
        "}\n"
    )
    return _write(run_dir / "backend.conf", _nginx_main(run_dir, "backend", "", nofile) + http)


def write_haproxy_cfg(
    run_dir: Path, port: int, backends: Sequence[int], nofile: int = NOFILE
) -> Path:
    """HAProxy in `mode tcp`, one thread, round robin over the backends, with
    kernel splicing on where HAProxy judges it useful (`option splice-auto`),
    as an operator tuning for throughput would run it."""
    maxconn = haproxy_maxconn(nofile)
    servers = "".join(f"    server s{i} {_addr(b)}\n" for i, b in enumerate(backends, start=1))
    text = (
        "global\n"
        "    nbthread 1\n"
        f"    maxconn {maxconn}\n"
        f"    pidfile {run_dir / 'haproxy.pid'}\n"
        "\n"
        "defaults\n"
        "    mode tcp\n"
        "    option splice-auto\n"
        f"    maxconn {maxconn}\n"
        "    timeout connect 5s\n"
        "    timeout client 120s\n"
        "    timeout server 120s\n"
        "\n"
        "frontend bench\n"
        f"    bind {_addr(port)}\n"
        "    default_backend web\n"
        "\n"
        "backend web\n"
        "    balance roundrobin\n"
        f"{servers}"
    )
    return _write(run_dir / "haproxy.cfg", text)


def write_nginx_stream_conf(
    run_dir: Path, port: int, backends: Sequence[int], load_module: str, nofile: int = NOFILE
) -> Path:
    """NGINX `stream {}`, one worker, round robin (its default) over the backends."""
    servers = "".join(f"        server {_addr(b)};\n" for b in backends)
    stream = (
        "stream {\n"
        "    upstream web {\n"
        f"{servers}"
        "    }\n"
        "    server {\n"
        f"        listen {_addr(port)} backlog=4096;\n"
        "        proxy_pass web;\n"
        "        proxy_connect_timeout 5s;\n"
        "        proxy_timeout 120s;\n"
        "    }\n"
        "}\n"
    )
    text = _nginx_main(run_dir, "nginx-stream", load_module, nofile) + stream
    return _write(run_dir / "nginx-stream.conf", text)


def write_fastlb_toml(run_dir: Path, port: int, backends: Sequence[int]) -> Path:
    """fastlb, one worker, one tcp listener, round robin over the backends."""
    servers = ", ".join(f'{{ address = "{_addr(b)}" }}' for b in backends)
    text = (
        "[global]\n"
        "workers = 1\n"
        "max_connections = 100000\n"
        "drain_timeout = 1.0\n"
        "\n"
        "[[listeners]]\n"
        'name = "bench"\n'
        f'bind = "{_addr(port)}"\n'
        'mode = "tcp"\n'
        'backend = "web"\n'
        "\n"
        "[backends.web]\n"
        'balance = "round_robin"\n'
        f"servers = [ {servers} ]\n"
        "\n"
        "[admin]\n"
        "enabled = false\n"
    )
    return _write(run_dir / "fastlb.toml", text)


def which(name: str, *fallbacks: str) -> str | None:
    """The path of a program: on PATH, or the first fallback that exists."""
    found = shutil.which(name)
    if found:
        return found
    for path in fallbacks:
        if os.access(path, os.X_OK):
            return path
    return None


# ---------------------------------------------------------------- L7 (bench/l7.py)
#
# The HTTP reverse proxies for the L7 benchmark.  All three keep idle
# connections to the backends and reuse them across client connections, serve
# any number of requests per client and per backend connection, log nothing,
# and add exactly one header to each request, X-Forwarded-For (fastlb's other
# default additions, X-Forwarded-Proto, X-Forwarded-Host and X-Request-Id, are
# turned off because the peers add nothing like them by default).

L7_KEEPALIVE = 64  # idle connections each proxy keeps to the backends
L7_FORWARDED = "X-Forwarded-For only"


def write_haproxy_http_cfg(
    run_dir: Path, port: int, backends: Sequence[int], nofile: int = NOFILE
) -> Path:
    """HAProxy in `mode http`, one thread, round robin, keep-alive on both
    sides, server connections shared between clients (`http-reuse always`),
    X-Forwarded-For added (`option forwardfor`), splicing where HAProxy judges
    it useful (`option splice-auto`, as in bench/l4), no log."""
    maxconn = haproxy_maxconn(nofile)
    servers = "".join(f"    server s{i} {_addr(b)}\n" for i, b in enumerate(backends, start=1))
    text = (
        "global\n"
        "    nbthread 1\n"
        f"    maxconn {maxconn}\n"
        f"    pidfile {run_dir / 'haproxy.pid'}\n"
        "\n"
        "defaults\n"
        "    mode http\n"
        "    option http-keep-alive\n"
        "    option forwardfor\n"
        "    option splice-auto\n"
        "    http-reuse always\n"
        f"    maxconn {maxconn}\n"
        "    timeout connect 5s\n"
        "    timeout client 120s\n"
        "    timeout server 120s\n"
        "    timeout http-request 10s\n"
        "    timeout http-keep-alive 120s\n"
        "\n"
        "frontend bench\n"
        f"    bind {_addr(port)}\n"
        "    default_backend web\n"
        "\n"
        "backend web\n"
        "    balance roundrobin\n"
        f"{servers}"
    )
    return _write(run_dir / "haproxy-http.cfg", text)


def write_nginx_http_proxy_conf(
    run_dir: Path, port: int, backends: Sequence[int], nofile: int = NOFILE
) -> Path:
    """NGINX `proxy_pass` to an upstream with `keepalive 64`, one worker,
    round robin (its default), HTTP/1.1 to the backends with the Connection
    header cleared (so backend connections stay open), X-Forwarded-For added,
    no access log.  keepalive_requests is raised on both sides as on the
    backend: NGINX's default (1000) would close every client and backend
    connection after 1000 requests, which neither HAProxy nor fastlb does.
    Response buffering stays on (NGINX's default), with temp files in the
    run dir."""
    temp = run_dir / "nginx-temp"
    temp.mkdir(exist_ok=True)
    temp.chmod(0o777)  # workers may run as nobody and spool bodies here
    temp_paths = "".join(
        f"    {kind}_temp_path {temp / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    servers = "".join(f"        server {_addr(b)};\n" for b in backends)
    http = (
        "http {\n"
        "    access_log off;\n"
        "    keepalive_timeout 120s;\n"
        "    keepalive_requests 100000000;\n"
        f"{temp_paths}"
        "    upstream web {\n"
        f"{servers}"
        f"        keepalive {L7_KEEPALIVE};\n"
        "        keepalive_requests 100000000;\n"
        "        keepalive_timeout 120s;\n"
        "    }\n"
        "    server {\n"
        f"        listen {_addr(port)} backlog=4096;\n"
        "        location / {\n"
        "            proxy_pass http://web;\n"
        "            proxy_http_version 1.1;\n"
        '            proxy_set_header Connection "";\n'
        "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        "            proxy_connect_timeout 5s;\n"
        "            proxy_read_timeout 120s;\n"
        "            proxy_send_timeout 120s;\n"
        "        }\n"
        "    }\n"
        "}\n"
    )
    text = _nginx_main(run_dir, "nginx-http", "", nofile) + http
    return _write(run_dir / "nginx-http.conf", text)


def write_fastlb_http_toml(run_dir: Path, port: int, backends: Sequence[int]) -> Path:
    """fastlb, one worker, one listener in mode http, round robin, 64 idle
    connections kept to the backends; of the request headers fastlb adds by
    default only X-Forwarded-For stays on, like the peers'."""
    servers = ", ".join(f'{{ address = "{_addr(b)}" }}' for b in backends)
    text = (
        "[global]\n"
        "workers = 1\n"
        "max_connections = 100000\n"
        "drain_timeout = 1.0\n"
        "\n"
        "[[listeners]]\n"
        'name = "bench"\n'
        f'bind = "{_addr(port)}"\n'
        'mode = "http"\n'
        'backend = "web"\n'
        "keepalive_timeout = 120.0\n"
        "forwarded_for = true\n"
        "forwarded_proto = false\n"
        "forwarded_host = false\n"
        "request_id = false\n"
        "\n"
        "[backends.web]\n"
        'balance = "round_robin"\n'
        f"keepalive = {L7_KEEPALIVE}\n"
        "keepalive_timeout = 120.0\n"
        f"servers = [ {servers} ]\n"
        "\n"
        "[admin]\n"
        "enabled = false\n"
    )
    return _write(run_dir / "fastlb-http.toml", text)
