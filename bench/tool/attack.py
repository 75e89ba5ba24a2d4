"""A slow-client attacker for the `slow-clients` scenario: one process, one
selector, thousands of non-blocking connections to 127.0.0.1.

    python bench/tool/attack.py --kind slowloris --port 8080 --conns 5000

Kinds:

- `slowloris`: each connection sends one byte of a request head every
  --trickle seconds and never completes the head;
- `stalled-bodies`: each sends a complete POST head with Content-Length:
  1000 and one body byte, then nothing;
- `long-polls`: each sends a complete GET for /slow, which the backend
  answers only after --slow-after seconds, and waits.

Connections open at --open-rate per second at most (reopens included); a
connection the server closes is counted and opened again, so the attack
keeps --conns connections up.  Once all are up (or --build-timeout passed)
it prints one JSON line, `{"event": "held", ...}`; it stops when its stdin
closes, on SIGTERM, or after --max-seconds on its own, closes every
connection with a RST (SO_LINGER 0: no TIME_WAIT left behind) and prints
`{"event": "done", ...}` with its counts.  Standard library only, run by
path, so that it starts fast and alone."""

from __future__ import annotations

import argparse
import contextlib
import errno
import heapq
import json
import resource
import selectors
import signal
import socket
import struct
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

KINDS = ("slowloris", "stalled-bodies", "long-polls")
LINGER_RST = struct.pack("ii", 1, 0)
FD_SPARE = 64  # descriptors beyond the connections: stdio, the selector
SLOWLORIS_HEAD = b"GET /small HTTP/1.1\r\nHost: bench\r\nX-Slow: "
BODY_LENGTH = 1000
STATUS_PREFIX = b"HTTP/1."


def slow_path(after: float) -> str:
    """The backend's slow route: answers after `after` seconds (the stand-in
    backend reads the query)."""
    return f"/slow?after={after:g}"


def opening(kind: str, slow_after: float) -> bytes:
    """What a connection of kind sends as soon as it is connected."""
    if kind == "slowloris":
        return SLOWLORIS_HEAD[:1]
    if kind == "stalled-bodies":
        head = (
            f"POST {slow_path(slow_after)} HTTP/1.1\r\nHost: bench\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {BODY_LENGTH}\r\n\r\n"
        )
        return head.encode() + b"x"
    if kind == "long-polls":
        return f"GET {slow_path(slow_after)} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    raise ValueError(f"unknown attack {kind!r}")


def trickle_byte(index: int) -> bytes:
    """The slowloris byte at position index of its endless, never finished head."""
    return SLOWLORIS_HEAD[index : index + 1] if index < len(SLOWLORIS_HEAD) else b"a"


@dataclass(frozen=True)
class Plan:
    kind: str
    port: int
    conns: int
    open_rate: float = 2000.0  # connections opened per second, at most
    trickle: float = 3.0  # seconds between two bytes of a slowloris connection
    max_seconds: float = 60.0  # stops on its own after this long
    build_timeout: float = 30.0  # "held" is reported by then even if short
    slow_after: float = 15.0  # when the backend answers a long poll
    host: str = "127.0.0.1"


@dataclass
class Stats:
    kind: str
    asked: int
    opened: int = 0  # connection attempts, reopens included
    connected: int = 0
    held: int = 0  # connected and not closed, now
    held_max: int = 0
    held_at_stop: int = 0
    peer_closed: int = 0  # connected, then closed or reset by the server
    connect_errors: int = 0
    answered: int = 0  # connections on which the server sent something
    statuses: dict[str, int] = field(default_factory=dict)  # status codes of those answers
    bytes_sent: int = 0
    trickles: int = 0
    seconds_to_hold: float | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    stopped_by: str = ""


@dataclass
class Conn:
    sock: socket.socket
    connected: bool = False
    sent: int = 0  # slowloris: bytes of the head sent so far
    answered: bool = False


class Stop(Exception):
    """SIGTERM: stop now."""


def raise_nofile(needed: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards needed (up to the hard limit); the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        soft = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def status_of(data: bytes) -> str:
    """'408' from b'HTTP/1.1 408 ...', else '?'."""
    if data.startswith(STATUS_PREFIX) and len(data) >= 12:
        return data[9:12].decode("ascii", "replace")
    return "?"


class Attacker:
    """The event loop: opens, trickles, notices closes, reopens."""

    def __init__(self, plan: Plan, out: TextIO, control: int | None) -> None:
        self.plan = plan
        self.out = out
        self.control = control  # a descriptor whose EOF means stop (stdin)
        self.sel = selectors.DefaultSelector()
        self.conns: dict[int, Conn] = {}
        self.due: list[tuple[float, int, int]] = []  # (when, fd, generation): slowloris bytes
        self.generation: dict[int, int] = {}
        self.stats = Stats(plan.kind, plan.conns)
        self.first = opening(plan.kind, plan.slow_after)
        self.started = time.monotonic()
        self.burst = max(1.0, plan.open_rate / 20)  # at most 50 ms of opens at once
        self.tokens = 1.0
        self.refilled = self.started
        self.reported = False
        if control is not None:
            self.sel.register(control, selectors.EVENT_READ, None)

    # ------------------------------------------------------------ opening

    def _refill(self, now: float) -> None:
        """A token bucket: open_rate per second, bursts of self.burst at most."""
        elapsed = now - self.refilled
        self.tokens = min(self.burst, self.tokens + elapsed * self.plan.open_rate)
        self.refilled = now

    def _open_some(self, now: float) -> None:
        self._refill(now)
        while len(self.conns) < self.plan.conns and self.tokens >= 1.0:
            self.tokens -= 1.0
            self.stats.opened += 1
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            except OSError:
                self.stats.connect_errors += 1
                return
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
            code = sock.connect_ex((self.plan.host, self.plan.port))
            if code not in (0, errno.EINPROGRESS):
                self.stats.connect_errors += 1
                sock.close()
                continue
            conn = Conn(sock)
            self.conns[sock.fileno()] = conn
            self.sel.register(sock, selectors.EVENT_WRITE, conn)

    def _connected(self, conn: Conn, now: float) -> None:
        fd = conn.sock.fileno()
        if conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self.stats.connect_errors += 1
            self._drop(fd)
            return
        conn.connected = True
        self.stats.connected += 1
        self.stats.held += 1
        self.stats.held_max = max(self.stats.held_max, self.stats.held)
        self.sel.modify(conn.sock, selectors.EVENT_READ, conn)
        if not self._send(fd, conn, self.first):
            return
        if self.plan.kind == "slowloris":
            conn.sent = len(self.first)
            self._schedule(fd, now)

    # ------------------------------------------------------------ trickling

    def _schedule(self, fd: int, now: float) -> None:
        gen = self.generation.get(fd, 0)
        heapq.heappush(self.due, (now + self.plan.trickle, fd, gen))

    def _trickle(self, now: float) -> None:
        while self.due and self.due[0][0] <= now:
            _, fd, gen = heapq.heappop(self.due)
            conn = self.conns.get(fd)
            if conn is None or self.generation.get(fd, 0) != gen:
                continue  # closed (and maybe reused) since it was scheduled
            if self._send(fd, conn, trickle_byte(conn.sent)):
                conn.sent += 1
                self.stats.trickles += 1
                self._schedule(fd, now)

    def _send(self, fd: int, conn: Conn, data: bytes) -> bool:
        """Send data whole (a few bytes on an idle connection); False if the
        connection is gone."""
        try:
            sent = conn.sock.send(data)
        except BlockingIOError:
            return True  # the server's window is full: still held, the byte not sent
        except OSError:
            self._peer_closed(fd)
            return False
        self.stats.bytes_sent += sent
        return True

    # ------------------------------------------------------------ closing

    def _drop(self, fd: int) -> None:
        conn = self.conns.pop(fd)
        self.generation[fd] = self.generation.get(fd, 0) + 1
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(conn.sock)
        if conn.connected:
            self.stats.held -= 1
        conn.sock.close()

    def _peer_closed(self, fd: int) -> None:
        self.stats.peer_closed += 1
        self._drop(fd)

    def _readable(self, fd: int, conn: Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._peer_closed(fd)
            return
        if not conn.answered:
            conn.answered = True
            self.stats.answered += 1
            code = status_of(data)
            self.stats.statuses[code] = self.stats.statuses.get(code, 0) + 1

    # ------------------------------------------------------------ the loop

    def _report_held(self, now: float) -> None:
        self.reported = True
        if self.stats.held >= self.plan.conns:
            self.stats.seconds_to_hold = round(now - self.started, 3)
        self.emit("held", complete=self.stats.held >= self.plan.conns)

    def emit(self, event: str, **extra: Any) -> None:
        line = {"event": event, **extra, **asdict(self.stats)}
        self.out.write(json.dumps(line) + "\n")
        self.out.flush()

    def _timeout(self, now: float) -> float:
        wake = self.started + self.plan.max_seconds
        if self.due:
            wake = min(wake, self.due[0][0])
        if len(self.conns) < self.plan.conns:
            wake = min(wake, now + max(0.0, 1.0 - self.tokens) / self.plan.open_rate)
        if not self.reported:
            wake = min(wake, self.started + self.plan.build_timeout)
        return max(0.0, wake - now)

    def run(self) -> Stats:
        """Attack until stopped; every connection closed on the way out."""
        self.stats.stopped_by = "max-seconds"
        try:
            self._loop()
        except Stop:
            self.stats.stopped_by = "signal"
        self.stats.held_at_stop = self.stats.held
        for fd in list(self.conns):
            self._drop(fd)
        self.sel.close()
        self.stats.seconds = round(time.monotonic() - self.started, 3)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.stats.cpu_seconds = round(usage.ru_utime + usage.ru_stime, 3)
        return self.stats

    def _loop(self) -> None:
        deadline = self.started + self.plan.max_seconds
        while (now := time.monotonic()) < deadline:
            self._open_some(now)
            self._trickle(now)
            full = self.stats.held >= self.plan.conns
            if not self.reported and (full or now >= self.started + self.plan.build_timeout):
                self._report_held(now)
            for key, events in self.sel.select(self._timeout(time.monotonic())):
                if key.data is None:  # the control descriptor: EOF (or anything) stops
                    self.stats.stopped_by = "stdin"
                    return
                conn: Conn = key.data
                fd = key.fd
                if fd not in self.conns or self.conns[fd] is not conn:
                    continue
                now = time.monotonic()
                if not conn.connected and events & selectors.EVENT_WRITE:
                    self._connected(conn, now)
                elif events & selectors.EVENT_READ:
                    self._readable(fd, conn)


def parse_args(argv: list[str] | None = None) -> Plan:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kind", choices=KINDS, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--conns", type=int, required=True)
    p.add_argument("--open-rate", type=float, default=2000.0)
    p.add_argument("--trickle", type=float, default=3.0)
    p.add_argument("--max-seconds", type=float, default=60.0)
    p.add_argument("--build-timeout", type=float, default=30.0)
    p.add_argument("--slow-after", type=float, default=15.0)
    a = p.parse_args(argv)
    if a.conns < 1 or a.open_rate <= 0 or a.trickle <= 0 or a.max_seconds <= 0:
        p.error("--conns, --open-rate, --trickle and --max-seconds must be positive")
    return Plan(
        a.kind, a.port, a.conns, a.open_rate, a.trickle, a.max_seconds, a.build_timeout,
        a.slow_after,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    plan = parse_args(argv)
    limit = raise_nofile(plan.conns + FD_SPARE)
    if limit < plan.conns + FD_SPARE:
        print(f"attack: RLIMIT_NOFILE is {limit}, too low for {plan.conns} connections",
              file=sys.stderr)  # fmt: skip
        return 2

    def on_term(signum: int, frame: object) -> None:
        raise Stop

    signal.signal(signal.SIGTERM, on_term)
    attacker = Attacker(plan, sys.stdout, sys.stdin.fileno())
    stats = attacker.run()
    attacker.emit("done")
    return 0 if stats.connected else 1


if __name__ == "__main__":
    sys.exit(main())
