"""`fastlb demo`: the embedded default, and the README's first command.

It starts two small built-in HTTP backends, "a" and "b" (aiohttp, on
127.0.0.1 ephemeral ports), and fastlb in front of them on 127.0.0.1:8080:
one http listener, round robin, an http health check on /healthz, and the
admin API on 127.0.0.1:9901 with a token made up at start.  Once fastlb is
ready it prints what to try (curl through the proxy, /stats, /metrics,
taking a server out with that token) and runs until Ctrl-C.  With
`--requests N` it sends N requests itself, prints which backend answered
each and a tally, and exits.  It needs no file.

fastlb runs exactly as `fastlb run` runs it: the demo builds its config as
a dict, checks it with parse_config, writes it as TOML to a private
temporary directory and calls fastlb.runner.run on that file in the main
thread, which starts the engine, the Controller, the admin API and the
health checks, and handles the signals (Ctrl-C drains and returns).  A
thread of the demo waits for the admin API's /ready, prints the
instructions and, with --requests, sends them and then SIGINTs the process,
so that the runner stops the way Ctrl-C stops it.

`fastlb demo --selfcheck` is the self-check of the two C hot paths: it
parses requests with the C parser (including smuggling attempts it must
refuse), decodes a chunked body, and spreads keys over backends with Maglev
and the ring, printing what it did and whether each check held."""

from __future__ import annotations

import contextlib
import errno
import http.client
import json
import logging
import os
import re
import secrets
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from fastlb import runner
from fastlb.admin import TOKEN_ENV
from fastlb.config import ConfigError, parse_config
from fastlb.control import LoopThread
from fastlb.hashring import Maglev, Ring
from fastlb.http import ChunkedDecoder, ParseError, parse_request

HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_ADMIN_PORT = 9901
NAME = "demo"  # the listener's and the backend's
BACKEND_NAMES = ("a", "b")
CHECK_PATH = "/healthz"
CHECK_INTERVAL, CHECK_FALL, CHECK_RISE = 1, 2, 2
DRAIN_TIMEOUT = 2  # seconds
READY_TIMEOUT = 30.0  # seconds fastlb may take to start
EXIT_OK, EXIT_RUNTIME, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130


# ---- the built-in backends -------------------------------------------------


@dataclass(frozen=True)
class DemoBackend:
    """A built-in backend: its name and its port on HOST."""

    name: str
    port: int

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def greeting(self) -> str:
        """The body of its answer to GET /."""
        return f"hello from backend {self.name} ({self.address})\n"


def backend_app(backend: DemoBackend) -> web.Application:
    """GET / answers the backend's greeting, GET /healthz 200 (the health
    check's), anything else 404.  aiohttp keeps connections alive."""

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=backend.greeting)

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def not_found(request: web.Request) -> web.Response:
        return web.Response(status=404, text="not found\n")

    app = web.Application()
    app.add_routes(
        [
            web.get("/", hello),
            web.get(CHECK_PATH, healthz),
            web.route("*", "/{tail:.*}", not_found),
        ]
    )
    return app


async def _serve_backend(name: str) -> tuple[DemoBackend, web.AppRunner]:
    """Serve a backend on HOST and a free port (bound first: the greeting
    names it)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    backend = DemoBackend(name, int(sock.getsockname()[1]))
    app_runner = web.AppRunner(backend_app(backend), access_log=None, shutdown_timeout=1.0)
    await app_runner.setup()
    await web.SockSite(app_runner, sock).start()
    return backend, app_runner


async def _cleanup(app_runners: Sequence[web.AppRunner]) -> None:
    for app_runner in app_runners:
        await app_runner.cleanup()


@contextlib.contextmanager
def builtin_backends(names: Sequence[str] = BACKEND_NAMES) -> Iterator[list[DemoBackend]]:
    """Serve one backend per name on an asyncio loop of their own (in a
    thread) until the block ends."""
    loop = LoopThread("fastlb-demo-backends")
    loop.start()
    app_runners: list[web.AppRunner] = []
    try:
        backends = []
        for name in names:
            backend, app_runner = loop.call(_serve_backend(name))
            app_runners.append(app_runner)
            backends.append(backend)
        yield backends
    finally:
        try:
            loop.call(_cleanup(app_runners), timeout=5.0)
        finally:
            loop.stop()


# ---- the config --------------------------------------------------------------


def demo_config(
    port: int, admin_port: int, backends: Sequence[DemoBackend], token: str
) -> dict[str, Any]:
    """The demo's config, as a TOML file would hold it."""
    return {
        # Each worker thread keeps its own round-robin position: with one,
        # successive requests alternate strictly between the backends.
        "global": {"workers": 1, "drain_timeout": f"{DRAIN_TIMEOUT}s"},
        "listeners": [
            {"name": NAME, "bind": f"{HOST}:{port}", "mode": "http", "backend": NAME},
        ],
        "backends": {
            NAME: {
                "balance": "round_robin",
                "servers": [{"address": backend.address} for backend in backends],
                "health_check": {
                    "type": "http",
                    "path": CHECK_PATH,
                    "interval": f"{CHECK_INTERVAL}s",
                    "fall": CHECK_FALL,
                    "rise": CHECK_RISE,
                },
            }
        },
        "admin": {"bind": f"{HOST}:{admin_port}", "token": token},
    }


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def to_toml(data: Mapping[str, Any]) -> str:
    """data as TOML, one `key = value` line per top-level key with inline
    tables: enough for a config of strings, numbers, booleans, lists and
    tables (not for strings holding DEL)."""
    return "".join(f"{_toml_key(key)} = {_toml_value(value)}\n" for key, value in data.items())


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's escapes are TOML's
    if isinstance(value, Mapping):
        items = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return f"{{ {items} }}" if items else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write a {type(value).__name__} as TOML")


# ---- ports -------------------------------------------------------------------


def resolve_ports(*ports: int) -> list[int]:
    """The ports, each 0 replaced by a free port (distinct ones)."""
    with contextlib.ExitStack() as stack:
        out = []
        for port in ports:
            if port == 0:
                sock = stack.enter_context(socket.socket())
                sock.bind((HOST, 0))
                port = int(sock.getsockname()[1])
            out.append(port)
        return out


def port_problem(port: int, option: str) -> str | None:
    """Why fastlb could not listen on HOST:port, naming the option that
    changes it; None when it can."""
    try:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((HOST, port))
    except OSError as exc:
        other = port + 1 if port < 65535 else DEFAULT_PORT + 1
        if exc.errno == errno.EADDRINUSE:
            return f"port {port} is in use; try fastlb demo {option} {other}"
        return f"cannot listen on {HOST}:{port} ({exc.strerror}); try fastlb demo {option} {other}"
    return None


def _option_problem(port: int, admin_port: int, requests: int | None) -> str | None:
    for value, option in ((port, "--port"), (admin_port, "--admin-port")):
        if not 0 <= value <= 65535:
            return f"{option} must be a port number in 0..65535, not {value}"
    if port == admin_port != 0:
        return "--port and --admin-port must differ"
    if requests is not None and requests < 1:
        return f"--requests must be at least 1, not {requests}"
    return None


# ---- talking to fastlb ---------------------------------------------------------


def fetch(port: int, path: str = "/", timeout: float = 5.0) -> tuple[int, str]:
    """GET http://HOST:port/path on a connection of its own (as curl does):
    (status, body)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def _ready(admin_port: int) -> bool:
    """Whether the admin API says fastlb is ready (listeners bound)."""
    try:
        return fetch(admin_port, "/ready", timeout=1.0)[0] == 200
    except OSError:
        return False


def _one_request(port: int, by_greeting: Mapping[str, DemoBackend]) -> tuple[str | None, str]:
    """Send GET / through the proxy: (the name of the backend that
    answered, None when none did; what to print)."""
    try:
        status, body = fetch(port)
    except OSError as exc:
        return None, f"failed: {exc.strerror or exc}"
    backend = by_greeting.get(body) if status == 200 else None
    if backend is None:
        return None, f"HTTP {status} {body.strip()[:80]!r}"
    return backend.name, f"backend {backend.name} ({backend.address})"


def send_requests(port: int, count: int, backends: Sequence[DemoBackend]) -> int:
    """Send count requests through the proxy, print who answered each and a
    tally.  Returns 0 when every one was answered by a backend and, from 2
    requests on, every backend answered some."""
    by_greeting = {backend.greeting: backend for backend in backends}
    print(f"  sending {count} request(s) to http://{HOST}:{port}/")
    tally: Counter[str] = Counter()
    for i in range(1, count + 1):
        name, text = _one_request(port, by_greeting)
        tally[name or ""] += 1
        print(f"  request {i}: {text}")
    counts = [f"{backend.name} {tally[backend.name]}" for backend in backends]
    failed = f", failed {tally['']}" if tally[""] else ""
    print(f"tally: {', '.join(counts)}{failed}", flush=True)
    if tally[""]:
        return _fail(f"{tally['']} of {count} request(s) got no answer from a backend")
    idle = [backend.name for backend in backends if not tally[backend.name]]
    if count >= 2 and idle:
        return _fail(f"backend {', '.join(idle)} answered no request")
    return EXIT_OK


# ---- what the demo prints --------------------------------------------------------


def auth_header(token: str, environ: Mapping[str, str] = os.environ) -> str:
    """The -H argument of the printed curl commands.  FASTLB_ADMIN_TOKEN,
    when set, overrides the config's token (fastlb.admin.resolve_token), so
    the commands name the variable then."""
    if environ.get(TOKEN_ENV):
        return f'"Authorization: Bearer ${TOKEN_ENV}"'
    return f"'Authorization: Bearer {token}'"


def headline(port: int, admin_port: int, backends: Sequence[DemoBackend]) -> str:
    """What runs: the proxy, its backends, the health check, the admin API."""
    names = " and ".join(f"{backend.name} ({backend.address})" for backend in backends)
    check = f"GET {CHECK_PATH} every {CHECK_INTERVAL}s (fall {CHECK_FALL}, rise {CHECK_RISE})"
    return (
        f"fastlb demo: proxy on http://{HOST}:{port} -> backends {names}, round robin\n"
        f"  health check: {check}; admin API on http://{HOST}:{admin_port}"
    )


MAINT, READY = '{"state":"maint"}', '{"state":"ready"}'  # PATCH bodies


def try_lines(port: int, admin_port: int, backends: Sequence[DemoBackend], auth: str) -> str:
    """The commands to try, with the token that the admin API takes."""
    admin = f"http://{HOST}:{admin_port}"
    last = backends[-1]
    out = f"{admin}/backends/{NAME}/servers/{last.address}"
    return (
        f"  try:         for i in 1 2 3 4; do curl -s http://{HOST}:{port}/; done\n"
        f"  stats:       curl -s {admin}/stats\n"
        f"  metrics:     curl -s {admin}/metrics\n"
        f"  servers:     curl -s {admin}/backends/{NAME}\n"
        f"  take {last.name} out:  curl -s -X PATCH -H {auth} -d '{MAINT}' {out}\n"
        f"  put {last.name} back:  the same with -d '{READY}'\n"
        "  Ctrl-C stops it."
    )


def _fail(message: str, status: int = EXIT_RUNTIME) -> int:
    print(f"fastlb demo: {message}", file=sys.stderr, flush=True)
    return status


# ---- running it ----------------------------------------------------------------


@dataclass
class _Session:
    """One run: fastlb through the runner in the main thread, and a thread
    that waits until it is ready, prints the instructions and, with
    `requests`, sends them and stops fastlb."""

    port: int
    admin_port: int
    backends: list[DemoBackend]
    auth: str
    requests: int | None
    done: threading.Event = field(default_factory=threading.Event)
    status: int = EXIT_OK

    def run(self, config_path: str) -> int:
        """Run fastlb on the config file until it stops; the exit status."""
        driver = threading.Thread(target=self._drive, name="fastlb-demo", daemon=True)
        driver.start()
        try:
            status = runner.run(config_path)
        finally:
            self.done.set()
            driver.join()
        return status or self.status

    def _drive(self) -> None:
        if not self._wait_ready():
            return
        print(headline(self.port, self.admin_port, self.backends), flush=True)
        if self.requests is None:
            print(try_lines(self.port, self.admin_port, self.backends, self.auth), flush=True)
            return
        self.status = send_requests(self.port, self.requests, self.backends)
        self._stop_fastlb()

    def _wait_ready(self) -> bool:
        """Wait for the admin API's /ready; False when fastlb stopped (the
        runner said why) or did not get ready in time."""
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.done.wait(0.05):
            if _ready(self.admin_port):
                return True
            if time.monotonic() > deadline:
                self.status = _fail(f"fastlb was not ready after {READY_TIMEOUT:g}s")
                self._stop_fastlb()
                return False
        return False

    def _stop_fastlb(self) -> None:
        """SIGINT the process: the runner drains and returns, as on Ctrl-C."""
        if not self.done.is_set():
            os.kill(os.getpid(), signal.SIGINT)


def _setup_logging() -> None:
    """Warnings and errors, and the changes made through the admin API and
    by the health checks (fastlb.control's INFO), but not the runner's
    start-up lines, which would bury the instructions."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("fastlb.control").setLevel(logging.INFO)


def _run(port: int, admin_port: int, requests: int | None) -> int:
    token = secrets.token_urlsafe(18)
    with (
        builtin_backends() as backends,
        tempfile.TemporaryDirectory(prefix="fastlb-demo-") as workdir,
    ):
        data = demo_config(port, admin_port, backends, token)
        try:
            parse_config(data, "fastlb demo")
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return EXIT_CONFIG
        path = Path(workdir) / "fastlb-demo.toml"  # the directory is the user's only
        path.write_text(to_toml(data), encoding="utf-8")
        session = _Session(port, admin_port, backends, auth_header(token), requests)
        status = session.run(str(path))
    if status == EXIT_OK and requests is None:
        print("fastlb demo: stopped")
    return status


def run_demo(
    port: int = DEFAULT_PORT, admin_port: int = DEFAULT_ADMIN_PORT, requests: int | None = None
) -> int:
    """Run the demo (see the module's docstring); port 0 picks a free port.
    Returns the exit status: 0; 1 for a port in use or a failure while
    running (with --requests: a request no backend answered, or a backend
    that answered none); 2 for bad options."""
    problem = _option_problem(port, admin_port, requests)
    if problem is not None:
        return _fail(problem, EXIT_CONFIG)
    port, admin_port = resolve_ports(port, admin_port)
    for number, option in ((port, "--port"), (admin_port, "--admin-port")):
        problem = port_problem(number, option)
        if problem is not None:
            return _fail(problem)
    _setup_logging()
    try:
        return _run(port, admin_port, requests)
    except KeyboardInterrupt:  # Ctrl-C before the runner took the signals over
        return EXIT_INTERRUPTED


# ---- the self-check (--selfcheck) ---------------------------------------------------

SAMPLE_REQUEST = (
    b"GET /api/v1/items?page=2 HTTP/1.1\r\n"
    b"Host: shop.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36\r\n"
    b"Accept: application/json\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Cookie: session=4f1c2a; theme=dark\r\n"
    b"Connection: keep-alive\r\n"
    b"\r\n"
)

SMUGGLING_ATTEMPTS = {
    "Content-Length with Transfer-Encoding": (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
    ),
    "two different Content-Lengths": (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n"
    ),
    "space before the colon": b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  continued\r\n\r\n",
    "bare LF": b"GET / HTTP/1.1\nHost: a\n\n",
}

RING_NODES = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"]


class _Report:
    """Prints each check and remembers whether all held."""

    def __init__(self) -> None:
        self.failures = 0

    def check(self, ok: bool, text: str) -> None:
        if not ok:
            self.failures += 1
        print(f"  [{'ok' if ok else 'FAIL'}] {text}")


def _per_call_ns(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - start) / calls


def _check_parser(report: _Report) -> None:
    print("HTTP/1.1 parser (C, strict RFC 9112):")
    req = parse_request(SAMPLE_REQUEST)
    assert req is not None
    report.check(
        req.method == b"GET" and req.target == b"/api/v1/items?page=2" and req.keep_alive,
        f"parsed {req.method.decode()} {req.target.decode()} with {len(req.headers)} headers, "
        f"{req.header_bytes} bytes, keep-alive={req.keep_alive}",
    )
    report.check(parse_request(SAMPLE_REQUEST[:-3]) is None, "a partial head asks for more bytes")
    for name, raw in SMUGGLING_ATTEMPTS.items():
        try:
            parse_request(raw)
        except ParseError as exc:
            report.check(True, f"refused {name}: {exc}")
        else:
            report.check(False, f"accepted {name}")
    decoder = ChunkedDecoder()
    body, done = decoder.feed(b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n")
    report.check(body == b"hello world" and done, f"decoded a chunked body to {body!r}")
    ns = _per_call_ns(lambda: parse_request(SAMPLE_REQUEST), 20_000)
    print(f"  parse_request from Python: {ns:.0f} ns per {len(SAMPLE_REQUEST)}-byte request")


def _check_ring(
    report: _Report, name: str, table: Maglev | Ring, smaller: Maglev | Ring, keys: list[bytes]
) -> None:
    counts = Counter(table.lookup(k) for k in keys)
    shares = ", ".join(f"{node} {100 * counts[node] / len(keys):.1f}%" for node in table.nodes)
    spread = max(counts.values()) / min(counts.values())
    report.check(
        spread < 1.2, f"{name}: {len(keys)} keys over {len(table.nodes)} backends: {shares}"
    )
    moved = sum(1 for k in keys if table.lookup(k) != smaller.lookup(k))
    removed = table.nodes[-1]
    report.check(
        moved / len(keys) <= 2 / len(table.nodes),
        f"{name}: removing {removed} moved {100 * moved / len(keys):.1f}% of keys "
        f"(its share was {100 * counts[removed] / len(keys):.1f}%)",
    )
    loads = [0] * len(table.nodes)
    for k in keys[:1000]:
        loads[table.nodes.index(table.lookup_bounded(k, loads, 1.25))] += 1
    report.check(
        max(loads) <= -(-1.25 * 1000 // len(loads)),
        f"{name}: bounded loads (c=1.25) kept every backend <= {max(loads)} of 1000",
    )
    ns = _per_call_ns(lambda: table.lookup(b"client-203.0.113.7"), 100_000)
    print(f"  {name}.lookup from Python: {ns:.0f} ns")


def run_selfcheck(keys: int = 100_000) -> int:
    """Run the self-check and print it.  Returns 0 when every check held."""
    report = _Report()
    _check_parser(report)
    key_list = [f"client-{i}".encode() for i in range(max(keys, 1000))]
    print("Consistent hashing (C):")
    _check_ring(report, "Maglev", Maglev(RING_NODES), Maglev(RING_NODES[:-1]), key_list)
    _check_ring(report, "Ring", Ring(RING_NODES), Ring(RING_NODES[:-1]), key_list)
    if report.failures:
        print(f"{report.failures} check(s) failed")
        return 1
    print("All checks passed.")
    return 0
