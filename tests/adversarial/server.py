"""The Backend server of the adversarial package (see its docstring)."""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from adversarial.actions import CLOSE, EVIL, KEEP, RST, Action, Answer, evil_for

HOST = "127.0.0.1"
LINGER_RST = struct.pack("ii", 1, 0)
TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
HEXDIG = frozenset(b"0123456789abcdefABCDEF")


class Bad(Exception):
    """A request the strict parser refuses."""


@dataclass
class Seen:
    """A request as the backend received it."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    trailers: list[tuple[str, str]]
    chunked: bool
    conn: int
    seq: int
    raw: bytes
    at: float = field(default_factory=time.monotonic)

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return default

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def rid(self) -> str:
        """The request's id: its X-Req-Id header, else its target."""
        return self.header("X-Req-Id") or self.target


@dataclass
class BadRequest:
    """A connection closed on a request the strict parser refused."""

    conn: int
    reason: str
    received: bytes


class _Reader:
    """A blocking socket read buffer that also logs every byte received."""

    def __init__(self, sock: socket.socket, log: bytearray) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.log = log
        self.pos = 0  # bytes consumed from log (start of the current request)

    def fill(self) -> None:
        data = self.sock.recv(262144)
        if not data:
            raise EOFError("connection closed")
        self.buf += data
        self.log += data

    def read_until(self, delim: bytes, limit: int) -> bytes:
        start = 0
        while True:
            i = self.buf.find(delim, start)
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[: i + len(delim)]
                return out
            if len(self.buf) > limit:
                raise Bad(f"no {delim!r} within {limit} bytes")
            start = max(0, len(self.buf) - len(delim) + 1)
            self.fill()

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def consumed(self) -> int:
        return len(self.log) - len(self.buf)


class Ctx:
    """What an action sees: the request, the socket, the backend."""

    def __init__(self, backend: Backend, sock: socket.socket, req: Seen) -> None:
        self.backend = backend
        self.sock = sock
        self.req = req

    def send(self, data: bytes) -> None:
        if data:
            self.sock.sendall(data)

    def sleep(self, seconds: float) -> bool:
        """Wait (cut short by stop()); False when the backend is stopping."""
        return not self.backend._stopping.wait(seconds)

    def event(self, name: str) -> None:
        self.backend._record_event(self.req.conn, self.req.seq, name)

    def id_headers(self) -> list[tuple[str, str]]:
        r = self.req
        return [
            ("X-Backend-Name", self.backend.name),
            ("X-Answer-To", r.rid),
            ("X-Conn", str(r.conn)),
            ("X-Seq", str(r.seq)),
        ]

    def default_body(self) -> bytes:
        r = self.req
        text = f"{self.backend.name} {r.method} {r.target} id={r.rid} len={len(r.body)}\n"
        return text.encode("latin-1")

    def extra(self, spec: bytes | str | None) -> bytes:
        if spec is None:
            return EVIL
        if spec == "evil":
            return evil_for(self.req)
        assert isinstance(spec, bytes), spec
        return spec

    @staticmethod
    def head(status: int, reason: str, headers: list[tuple[str, str]]) -> bytes:
        lines = [f"HTTP/1.1 {status} {reason or 'Status'}", *(f"{n}: {v}" for n, v in headers)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


Policy = Callable[[Seen], "Action | None"]


class Backend:
    """A misbehaving HTTP/1.1 backend on 127.0.0.1 (see the package
    docstring).  Thread-safe accessors: requests, bad, events, raw(conn),
    accepted, open_connections."""

    def __init__(
        self,
        name: str = "adv",
        *,
        paths: Mapping[str, Action] | None = None,
        policy: Policy | None = None,
        default: Action | None = None,
        strict: bool = True,
        conn_timeout: float = 300.0,
    ) -> None:
        self.name = name
        self.paths = dict(paths or {})
        self.policy = policy
        self.default = default if default is not None else Answer()
        self.strict = strict
        self.conn_timeout = conn_timeout
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, 0))
        sock.listen(1024)
        sock.setblocking(False)
        self.sock = sock
        self.port: int = sock.getsockname()[1]
        self._cond = threading.Condition()
        self._accepted = 0
        self._requests: list[Seen] = []
        self._bad: list[BadRequest] = []
        self._events: list[tuple[int, int, str]] = []
        self._raw: dict[int, bytearray] = {}
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._stopped = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.sock, selectors.EVENT_READ, "listen")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    def __repr__(self) -> str:
        return f"Backend({self.name!r}, {self.address})"

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    # -- records

    @property
    def requests(self) -> list[Seen]:
        with self._cond:
            return list(self._requests)

    @property
    def bad(self) -> list[BadRequest]:
        with self._cond:
            return list(self._bad)

    @property
    def events(self) -> list[tuple[int, int, str]]:
        """(conn, seq, name) in the order they happened."""
        with self._cond:
            return list(self._events)

    @property
    def accepted(self) -> int:
        with self._cond:
            return self._accepted

    @property
    def open_connections(self) -> int:
        with self._cond:
            return len(self._conns)

    def raw(self, conn: int | None = None) -> bytes:
        """Every byte received on connection `conn` (None: on all of them,
        connection after connection)."""
        with self._cond:
            if conn is not None:
                return bytes(self._raw.get(conn, b""))
            return b"".join(bytes(v) for _, v in sorted(self._raw.items()))

    def wait_requests(self, n: int, timeout: float = 5.0) -> bool:
        """Wait until at least n requests have been recorded."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._requests) >= n, timeout)

    def wait_event(self, name: str, conn: int | None = None, timeout: float = 5.0) -> bool:
        """Wait until an event `name` (on connection `conn`) happened."""

        def seen() -> bool:
            return any(e[2] == name and (conn is None or e[0] == conn) for e in self._events)

        with self._cond:
            return self._cond.wait_for(seen, timeout)

    def _record_event(self, conn: int, seq: int, name: str) -> None:
        with self._cond:
            self._events.append((conn, seq, name))
            self._cond.notify_all()

    # -- lifecycle

    def stop(self) -> None:
        """Close the listener and every open connection, wake sleeping
        actions, join the threads.  Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        self._wake_w.send(b"x")
        self._acceptor.join(5)
        self.sock.close()
        with self._cond:
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
                    except OSError:
                        continue
                    c.setblocking(True)
                    c.settimeout(self.conn_timeout)
                    with self._cond:
                        self._accepted += 1
                        cid = self._accepted
                        self._conns.add(c)
                        self._raw[cid] = bytearray()
                    t = threading.Thread(target=self._serve, args=(c, cid), daemon=True)
                    self._threads = [x for x in self._threads if x.is_alive()]
                    self._threads.append(t)
                    t.start()

    def _action(self, req: Seen) -> Action:
        if self.policy is not None:
            act = self.policy(req)
            if act is not None:
                return act
        return self.paths.get(req.path, self.default)

    def _serve(self, c: socket.socket, cid: int) -> None:
        how = CLOSE
        with self._cond:
            log = self._raw[cid]
        r = _Reader(c, log)
        try:
            seq = 0
            while not self._stopping.is_set():
                if not r.buf:
                    try:
                        r.fill()
                    except EOFError:
                        return
                start = r.consumed()
                try:
                    req = self._read_request(r, cid, seq)
                except Bad as e:
                    with self._cond:
                        self._bad.append(BadRequest(cid, str(e), bytes(log)))
                        self._cond.notify_all()
                    return
                with self._cond:
                    req.raw = bytes(log[start : r.consumed()])
                    self._requests.append(req)
                    self._cond.notify_all()
                seq += 1
                how = self._action(req).run(Ctx(self, c, req))
                if how != KEEP:
                    return
        except (OSError, EOFError):
            how = CLOSE
        finally:
            with self._cond:
                self._conns.discard(c)
            if how == RST:
                with contextlib.suppress(OSError):
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
            c.close()

    # -- strict request parsing

    def _read_request(self, r: _Reader, cid: int, seq: int) -> Seen:
        head = r.read_until(b"\r\n\r\n", 1 << 20)
        lines = head.split(b"\r\n")
        if any(b"\n" in line or b"\r" in line for line in lines):
            raise Bad("bare CR or LF")
        parts = lines[0].split(b" ")
        if (
            len(parts) != 3
            or not parts[0]
            or not set(parts[0]) <= TCHAR
            or not parts[1]
            or parts[2] not in (b"HTTP/1.0", b"HTTP/1.1")
        ):
            raise Bad(f"bad request line {lines[0]!r}")
        method, target, version = (p.decode("latin-1") for p in parts)
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or not set(name) <= TCHAR:
                raise Bad(f"bad field line {line!r}")
            if any((b < 0x20 and b != 0x09) or b == 0x7F for b in value):
                raise Bad(f"control byte in {line!r}")
            headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
        te = [v for n, v in headers if n.lower() == "transfer-encoding"]
        cls = [v for n, v in headers if n.lower() == "content-length"]
        if te and cls:
            raise Bad("Content-Length and Transfer-Encoding")
        if len(set(cls)) > 1 or any(not v.isdigit() or not v.isascii() for v in cls):
            raise Bad(f"bad Content-Length {cls}")
        chunked = False
        if te:
            if self.strict:
                if te != ["chunked"]:
                    raise Bad(f"Transfer-Encoding {te} is not exactly chunked")
            else:
                codings = [t.strip().lower() for v in te for t in v.split(",")]
                if codings[-1] != "chunked":
                    raise Bad(f"Transfer-Encoding {te}")
            chunked = True
        trailers: list[tuple[str, str]] = []
        if chunked:
            body, trailers = self._read_chunked(r)
        else:
            body = r.read_exact(int(cls[0]) if cls else 0)
        return Seen(method, target, version, headers, body, trailers, chunked, cid, seq, b"")

    @staticmethod
    def _read_chunked(r: _Reader) -> tuple[bytes, list[tuple[str, str]]]:
        body = bytearray()
        while True:
            line = r.read_until(b"\r\n", 4096)
            size_text = line.split(b";", 1)[0]
            if not size_text or not set(size_text) <= HEXDIG or b"\n" in line:
                raise Bad(f"bad chunk size line {line!r}")
            size = int(size_text, 16)
            if size == 0:
                break
            body += r.read_exact(size)
            if r.read_exact(2) != b"\r\n":
                raise Bad("chunk data not followed by CRLF")
        trailers = []
        while True:
            line = r.read_until(b"\r\n", 65536)
            if not line:
                break
            name, sep, value = line.partition(b":")
            if not sep or not name or not set(name) <= TCHAR:
                raise Bad(f"bad trailer line {line!r}")
            trailers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
        return bytes(body), trailers
