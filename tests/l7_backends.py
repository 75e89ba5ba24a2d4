"""Test harness for the HTTP/1.1 (mode "http") end-to-end tests: an origin
server and a raw client, both on plain sockets so every byte is under the
test's control (no http.server, no http.client on the proxy's side).

Origin is an HTTP/1.1 server in threads (one per connection).  It parses
requests by hand, strictly enough to notice a corrupted framing, handles
keep-alive, pipelining, Content-Length and chunked bodies (with trailers) and
Expect: 100-continue, records every complete request (Request: method,
target, headers in received order with their case, body, trailers,
connection id) and answers by path:

    /                 200, JSON describing the request (see Origin._describe)
    /echo             200, the request body as the response body
    /big?size=N       200, N deterministic bytes (payload(N)), Content-Length
    /chunked?n=&size= 200, chunked: n chunks of size bytes, then the trailers
                      X-Sum (sha256 of the body) and X-Count (n)
    /close?size=N     200 with no length: N bytes, then the server closes
    /status/CODE      that status; 204 and 304 without a body (304 with
                      Content-Length: 5 and an ETag, as RFC 9110 allows)
    /sleep?s=X        wait X seconds (cut short by stop()), then as "/"
    /reset            close with an RST before any byte (SO_LINGER 0)
    /drop             close (FIN) before any byte
    /ws               with "Upgrade: websocket": 101, then a raw byte echo
    /hop              as "/" plus hop-by-hop response headers (Keep-Alive,
                      a Connection line naming X-Hop-Resp, X-Hop-Resp,
                      Proxy-Connection) that a proxy must drop

Every response carries "Server: test-origin", "X-Powered-By: test" and
"X-Backend-Name: <name>".  Origin(mode="drop") closes every connection as
soon as it is accepted, mode="rst" resets it.  stop() closes the listener
(later connects are refused) and every open connection.

Client is a blocking socket with a read buffer: send raw bytes, read one
response at a time whatever its framing (length, chunked with trailers,
close-delimited, none), or wait for EOF.  build_request makes request bytes.
Only 127.0.0.1 is used."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import random
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

HOST = "127.0.0.1"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
LINGER_RST = struct.pack("ii", 1, 0)


def payload(n: int, seed: int = 0) -> bytes:
    """n deterministic pseudo-random bytes."""
    return random.Random(seed).randbytes(n)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode_chunked(
    body: bytes, sizes: tuple[int, ...] = (1000, 7, 65536, 1), trailers: Any = ()
) -> bytes:
    """body in chunks whose sizes cycle through `sizes`, then the last
    chunk and the trailer fields (name, value)."""
    out = bytearray()
    i = k = 0
    while i < len(body):
        n = sizes[k % len(sizes)]
        k += 1
        part = body[i : i + n]
        out += b"%x\r\n" % len(part) + part + b"\r\n"
        i += n
    out += b"0\r\n"
    for name, value in trailers:
        out += f"{name}: {value}\r\n".encode("latin-1")
    return bytes(out + b"\r\n")


def build_request(
    method: str = "GET",
    target: str = "/",
    *,
    host: str | None = "example.com",
    headers: Any = (),
    body: bytes | None = None,
    chunked: bool = False,
    trailers: Any = (),
    length: bool = True,
    version: str = "HTTP/1.1",
) -> bytes:
    """Request bytes.  Host first (None: no Host line), then `headers` as
    given, then Content-Length (when a body is given, not chunked and
    `length`) or "Transfer-Encoding: chunked", then the body."""
    lines = [f"{method} {target} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    lines += [f"{n}: {v}" for n, v in headers]
    data = b""
    if body is not None:
        if chunked:
            lines.append("Transfer-Encoding: chunked")
            data = encode_chunked(body, trailers=trailers)
        else:
            if length:
                lines.append(f"Content-Length: {len(body)}")
            data = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


class Bad(Exception):
    """A malformed message (the origin closes the connection)."""


class BufferedSocket:
    """A blocking socket with a read buffer."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def fill(self) -> None:
        data = self.sock.recv(262144)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def read_until(self, delim: bytes, limit: int = 1 << 20) -> bytes:
        """Bytes up to delim (delim consumed, not returned)."""
        start = 0
        while True:
            i = self.buf.find(delim, start)
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[: i + len(delim)]
                return out
            if len(self.buf) > limit:
                raise Bad(f"no {delim!r} in {limit} bytes")
            start = max(0, len(self.buf) - len(delim) + 1)
            self.fill()

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_to_eof(self) -> bytes:
        while True:
            try:
                self.fill()
            except EOFError:
                break
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def take(self) -> bytes:
        out = bytes(self.buf)
        self.buf.clear()
        return out


def _header_fields(lines: list[bytes]) -> list[tuple[str, str]]:
    out = []
    for line in lines:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip() or b" " in name:
            raise Bad(f"bad field line {line!r}")
        out.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    return out


def _values(headers: list[tuple[str, str]], name: str) -> list[str]:
    name = name.lower()
    return [v for n, v in headers if n.lower() == name]


def _tokens(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [t.strip().lower() for v in _values(headers, name) for t in v.split(",") if t.strip()]


def read_chunked(r: BufferedSocket) -> tuple[bytes, list[tuple[str, str]]]:
    """A chunked body (strictly framed) and its trailer fields."""
    body = bytearray()
    while True:
        line = r.read_until(b"\r\n", 4096)
        size_text = line.split(b";", 1)[0].strip(b" \t")
        if not size_text or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
            raise Bad(f"bad chunk size line {line!r}")
        size = int(size_text, 16)
        if size == 0:
            break
        body += r.read_exact(size)
        if r.read_exact(2) != b"\r\n":
            raise Bad("chunk data not followed by CRLF")
    lines = []
    while True:
        line = r.read_until(b"\r\n", 65536)
        if not line:
            break
        lines.append(line)
    return bytes(body), _header_fields(lines)


def _headers_get(headers: list[tuple[str, str]], name: str, default: str | None) -> str | None:
    vals = _values(headers, name)
    return vals[0] if vals else default


# -------------------------------------------------------------------- origin


@dataclass
class Request:
    """A request as the origin received it."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    trailers: list[tuple[str, str]]
    conn: int
    seq: int
    chunked: bool

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of a header (case-insensitive name)."""
        return _headers_get(self.headers, name, default)

    def header_all(self, name: str) -> list[str]:
        return _values(self.headers, name)

    def names(self) -> set[str]:
        """Header names, lowercased."""
        return {n.lower() for n, _ in self.headers}

    @property
    def keep_alive(self) -> bool:
        conn = _tokens(self.headers, "Connection")
        if self.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn


class Origin:
    """An HTTP/1.1 origin server on 127.0.0.1 (see the module docstring).

    Counters: `accepted` (connections), `requests` (a copy of the recorded
    requests), `request_count`, `bad` (connections closed on a malformed
    request), `open_connections`."""

    def __init__(
        self,
        name: str,
        *,
        mode: str = "normal",
        send_continue: bool = True,
        sock: socket.socket | None = None,
        conn_timeout: float = 30.0,
    ) -> None:
        assert mode in ("normal", "drop", "rst")
        self.name = name
        self.mode = mode
        self.send_continue = send_continue
        self.conn_timeout = conn_timeout
        if sock is None:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((HOST, 0))
        sock.listen(1024)
        sock.setblocking(False)
        self.sock = sock
        self.port: int = sock.getsockname()[1]
        self.accepted = 0
        self.bad = 0
        self._requests: list[Request] = []
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._stopped = False
        self._wake_r, self._wake_w = socket.socketpair()
        # Every descriptor exists when __init__ returns (fd-leak tests count).
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.sock, selectors.EVENT_READ, "listen")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    def __repr__(self) -> str:
        return f"Origin({self.name!r}, {self.address})"

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._conns)

    # -- lifecycle

    def stop(self) -> None:
        """Close the listener (connects are refused from now on) and every
        open connection (FIN), wake sleeping handlers, join the threads.
        Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        self._wake_w.send(b"x")
        self._acceptor.join(5)
        self.sock.close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        for t in list(self._threads):
            t.join(5)
        self._wake_r.close()
        self._wake_w.close()

    close = stop

    def _accept_loop(self) -> None:
        with self._sel as sel:
            while True:
                for key, _ in sel.select():
                    if key.data == "wake":
                        return
                    try:
                        c, _ = self.sock.accept()
                    except OSError:  # EAGAIN, or a connection reset before accept
                        continue
                    c.setblocking(True)
                    c.settimeout(self.conn_timeout)
                    with self._lock:
                        self.accepted += 1
                        cid = self.accepted
                        self._conns.add(c)
                    t = threading.Thread(target=self._serve, args=(c, cid), daemon=True)
                    self._threads = [x for x in self._threads if x.is_alive()]
                    self._threads.append(t)
                    t.start()

    # -- one connection

    def _serve(self, c: socket.socket, cid: int) -> None:
        rst = False
        try:
            if self.mode == "rst":
                rst = True
                return
            if self.mode == "drop":
                return
            r = BufferedSocket(c)
            seq = 0
            while not self._stopping.is_set():
                req = self._read_request(r, c, cid, seq)
                if req is None:
                    return
                seq += 1
                with self._lock:
                    self._requests.append(req)
                keep, rst = self._respond(c, r, req)
                if not keep:
                    return
        except Bad:
            with self._lock:
                self.bad += 1
        except (OSError, EOFError):
            pass
        finally:
            with self._lock:
                self._conns.discard(c)
            if rst:
                with contextlib.suppress(OSError):
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
            c.close()

    def _read_request(
        self, r: BufferedSocket, c: socket.socket, cid: int, seq: int
    ) -> Request | None:
        if not r.buf:
            try:
                r.fill()
            except EOFError:
                return None
        head = r.read_until(b"\r\n\r\n", 1 << 20)
        lines = head.split(b"\r\n")
        if any(b"\n" in line or b"\r" in line for line in lines):
            raise Bad("bare CR or LF")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or parts[2] not in (b"HTTP/1.0", b"HTTP/1.1"):
            raise Bad(f"bad request line {lines[0]!r}")
        method, target, version = (p.decode("latin-1") for p in parts)
        headers = _header_fields(lines[1:])
        te = _tokens(headers, "Transfer-Encoding")
        cls = {v.strip() for v in _values(headers, "Content-Length")}
        chunked = False
        length = 0
        if te:
            if te[-1] != "chunked" or cls:
                raise Bad("bad framing")
            chunked = True
        elif cls:
            if len(cls) != 1 or not next(iter(cls)).isdigit():
                raise Bad("bad Content-Length")
            length = int(next(iter(cls)))
        has_body = chunked or length > 0
        expect = [v.lower() for v in _values(headers, "Expect")]
        if has_body and "100-continue" in expect and self.send_continue:
            c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        trailers: list[tuple[str, str]] = []
        if chunked:
            body, trailers = read_chunked(r)
        else:
            body = r.read_exact(length)
        return Request(method, target, version, headers, body, trailers, cid, seq, chunked)

    def _describe(self, req: Request) -> bytes:
        return json.dumps(
            {
                "backend": self.name,
                "method": req.method,
                "target": req.target,
                "version": req.version,
                "headers": req.headers,
                "trailers": req.trailers,
                "body_length": len(req.body),
                "body_sha256": sha256(req.body),
                "chunked": req.chunked,
                "conn": req.conn,
                "seq": req.seq,
            }
        ).encode()

    def _head(self, status: str, headers: list[tuple[str, str]], keep: bool) -> bytes:
        fields = [
            ("Server", "test-origin"),
            ("X-Powered-By", "test"),
            ("X-Backend-Name", self.name),
            *headers,
        ]
        if not keep:
            fields.append(("Connection", "close"))
        lines = [f"HTTP/1.1 {status}", *(f"{n}: {v}" for n, v in fields)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _respond(self, c: socket.socket, r: BufferedSocket, req: Request) -> tuple[bool, bool]:
        """Answer one request.  Returns (keep the connection, close with RST)."""
        url = urlsplit(req.target)
        path = url.path
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        keep = req.keep_alive
        head_only = req.method == "HEAD"

        if path == "/reset":
            return False, True
        if path == "/drop":
            return False, False
        if path == "/sleep":
            self._stopping.wait(float(q.get("s", "1")))
            if self._stopping.is_set():
                return False, False
            path = "/"

        def send(status: str, headers: list[tuple[str, str]], body: bytes) -> None:
            headers = [*headers, ("Content-Length", str(len(body)))]
            c.sendall(self._head(status, headers, keep) + (b"" if head_only else body))

        if path == "/ws":
            if "websocket" not in _tokens(req.headers, "Upgrade"):
                send("400 Bad Request", [("Content-Type", "text/plain")], b"not an upgrade\n")
                return keep, False
            key = req.header("Sec-WebSocket-Key", "") or ""
            accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            c.sendall(
                (
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
                    f"X-Backend-Name: {self.name}\r\n\r\n"
                ).encode()
            )
            pending = r.take()
            if pending:
                c.sendall(pending)
            while True:
                data = c.recv(65536)
                if not data:
                    break
                c.sendall(data)
            c.shutdown(socket.SHUT_WR)
            return False, False
        if path == "/echo":
            send("200 OK", [("Content-Type", "application/octet-stream")], req.body)
        elif path == "/big":
            send(
                "200 OK",
                [("Content-Type", "application/octet-stream")],
                payload(int(q.get("size", "1000"))),
            )
        elif path == "/chunked":
            n, size = int(q.get("n", "10")), int(q.get("size", "100"))
            body = payload(n * size, seed=1)
            out = bytearray(
                self._head(
                    "200 OK",
                    [
                        ("Content-Type", "application/octet-stream"),
                        ("Transfer-Encoding", "chunked"),
                        ("Trailer", "X-Sum, X-Count"),
                    ],
                    keep,
                )
            )
            if not head_only:
                for i in range(n):
                    out += b"%x\r\n" % size + body[i * size : (i + 1) * size] + b"\r\n"
                out += f"0\r\nX-Sum: {sha256(body)}\r\nX-Count: {n}\r\n\r\n".encode()
            c.sendall(out)
        elif path == "/close":
            body = payload(int(q.get("size", "1000")), seed=2)
            head = self._head("200 OK", [("Content-Type", "application/octet-stream")], True)
            c.sendall(head + (b"" if head_only else body))
            c.shutdown(socket.SHUT_WR)
            return False, False
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            if code == 204:
                c.sendall(self._head("204 No Content", [], keep))
            elif code == 304:
                c.sendall(
                    self._head(
                        "304 Not Modified", [("ETag", '"v1"'), ("Content-Length", "5")], keep
                    )
                )
            else:
                text = f"status {code}\n".encode()
                send(f"{code} Status", [("Content-Type", "text/plain")], text)
        else:
            extra = [("Content-Type", "application/json")]
            if path == "/hop":
                extra += [
                    ("Connection", "keep-alive, X-Hop-Resp"),
                    ("Keep-Alive", "timeout=5"),
                    ("X-Hop-Resp", "1"),
                    ("Proxy-Connection", "keep-alive"),
                ]
            send("200 OK", extra, self._describe(req))
        return keep, False


# -------------------------------------------------------------------- client


@dataclass
class Response:
    """A response as the client read it."""

    status: int
    reason: str
    version: str
    headers: list[tuple[str, str]]
    raw_head: bytes
    body: bytes = b""
    trailers: list[tuple[str, str]] = field(default_factory=list)
    framing: str = "none"  # "length", "chunked", "close" or "none"
    interim: list[Response] = field(default_factory=list)

    def header(self, name: str, default: str | None = None) -> str | None:
        return _headers_get(self.headers, name, default)

    def header_all(self, name: str) -> list[str]:
        return _values(self.headers, name)

    def names(self) -> set[str]:
        return {n.lower() for n, _ in self.headers}

    def trailer(self, name: str) -> str | None:
        return _headers_get(self.trailers, name, None)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def backend(self) -> str:
        """The origin that answered (from its JSON body)."""
        return str(self.json()["backend"])


class Client:
    """A raw HTTP/1.1 client connection with a read buffer."""

    def __init__(self, addr: tuple[str, int], timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.timeout = timeout
        self.r = BufferedSocket(self.sock)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, method: str = "GET", target: str = "/", **kw: Any) -> Response:
        """Send one request (build_request arguments) and read its response
        (interim 1xx responses skipped, kept in .interim)."""
        self.send(build_request(method, target, **kw))
        return self.read_response(method)

    def read_response(self, method: str = "GET", skip_interim: bool = True) -> Response:
        interim: list[Response] = []
        while True:
            resp = self._read_one(method)
            if skip_interim and 100 <= resp.status < 200 and resp.status != 101:
                interim.append(resp)
                continue
            resp.interim = interim
            return resp

    def _read_one(self, method: str) -> Response:
        head = self.r.read_until(b"\r\n\r\n", 1 << 20)
        lines = head.split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        code, _, reason = rest.partition(b" ")
        if version not in (b"HTTP/1.0", b"HTTP/1.1") or not code.isdigit() or len(code) != 3:
            raise Bad(f"bad status line {lines[0]!r}")
        headers = _header_fields(lines[1:])
        resp = Response(
            int(code), reason.decode("latin-1"), version.decode(), headers, head + b"\r\n\r\n"
        )
        status = resp.status
        if method == "HEAD" or status < 200 or status in (204, 304):
            return resp
        te = _tokens(headers, "Transfer-Encoding")
        cl = resp.header("Content-Length")
        if te:
            if te[-1] != "chunked":
                raise Bad(f"response Transfer-Encoding {te}")
            resp.body, resp.trailers = read_chunked(self.r)
            resp.framing = "chunked"
        elif cl is not None:
            resp.body = self.r.read_exact(int(cl))
            resp.framing = "length"
        else:
            resp.body = self.r.read_to_eof()
            resp.framing = "close"
        return resp

    def eof(self, timeout: float = 2.0) -> bool:
        """Whether the peer closes (FIN or RST) within timeout, with no more
        bytes before that."""
        if self.r.buf:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        finally:
            self.sock.settimeout(self.timeout)
        if data:
            self.r.buf += data
            return False
        return True


def get(addr: tuple[str, int], target: str = "/", **kw: Any) -> Response:
    """One request on a new connection."""
    method = kw.pop("method", "GET")
    with Client(addr) as c:
        return c.request(method, target, **kw)


def wait_for(pred: Any, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return bool(pred())


def refusing_address() -> tuple[socket.socket, str]:
    """A bound, non-listening socket and its address: connects are refused
    for as long as the socket is kept open."""
    s = socket.socket()
    s.bind((HOST, 0))
    return s, f"{HOST}:{s.getsockname()[1]}"
