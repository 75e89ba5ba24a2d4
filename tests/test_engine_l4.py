"""End-to-end tests of the C engine in L4 (tcp) mode over real loopback
sockets: balancing, failover, passive health, half-close, RST, limits,
large transfers, concurrency, live updates, drain, fd and memory hygiene.

Backends are small selector-driven Python servers in threads.  Each
connection starts with the backend's tag line ("name\\n") so a client knows
which server it reached; after that the backend echoes (or does what its
mode says).  Only 127.0.0.0/8 addresses are used."""

from __future__ import annotations

import contextlib
import hashlib
import os
import selectors
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from types import SimpleNamespace as NS
from typing import Any

import psutil
import pytest

import fastlb
from fastlb.engine import Engine

# Where the fastlb under test is installed: children put only this on their
# path and run outside the checkout, whose fastlb/ has no compiled extensions.
FASTLB_SITE = os.path.dirname(os.path.dirname(os.path.abspath(fastlb.__file__)))

HOST = "127.0.0.1"


pytestmark = pytest.mark.usefixtures("many_fds")


# ---------------------------------------------------------------- backends


class Backend:
    """A loopback TCP server in a thread.

    mode "echo": send the tag, echo everything, pass the client's FIN back
    once the echo is flushed.  "fin_first": send the tag and FIN at once,
    then count what the client still sends (self.received, per connection,
    on its EOF).  "rst": send the tag; on the first data, reset."""

    def __init__(self, name: str, mode: str = "echo", sock: socket.socket | None = None) -> None:
        self.name = name
        self.mode = mode
        self.tag = f"{name}\n".encode()
        if sock is None:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((HOST, 0))
        sock.listen(4096)
        sock.setblocking(False)
        self.sock = sock
        self.port = sock.getsockname()[1]
        self.accepted = 0
        self.received: list[int] = []
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._sel.register(self.sock, selectors.EVENT_READ, None)
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._conns: dict[socket.socket, dict[str, Any]] = {}
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def _run(self) -> None:
        while not self._stop:
            for key, ev in self._sel.select(0.5):
                if key.data == "wake":
                    return
                if key.fileobj is self.sock:
                    self._accept()
                else:
                    self._serve(key.fileobj, ev)  # type: ignore[arg-type]

    def _accept(self) -> None:
        for _ in range(256):
            try:
                c, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            c.setblocking(False)
            self.accepted += 1
            st = {"out": bytearray(self.tag), "eof": False, "got": 0, "shut": False}
            if self.mode == "fin_first":
                c.send(bytes(st["out"]))
                st["out"].clear()
                c.shutdown(socket.SHUT_WR)
                st["shut"] = True
            self._conns[c] = st
            self._sel.register(c, selectors.EVENT_READ | selectors.EVENT_WRITE)

    def _close(self, c: socket.socket, rst: bool = False) -> None:
        self._sel.unregister(c)
        self._conns.pop(c, None)
        if rst:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()

    def _serve(self, c: socket.socket, ev: int) -> None:
        st = self._conns[c]
        if ev & selectors.EVENT_READ:
            try:
                data = c.recv(262144)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                self._close(c)
                return
            if data == b"":
                st["eof"] = True
            elif data:
                st["got"] += len(data)
                if self.mode == "rst":
                    self._close(c, rst=True)
                    return
                if self.mode == "echo":
                    st["out"] += data
        if st["out"]:
            try:
                n = c.send(st["out"])
                del st["out"][:n]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self._close(c)
                return
        if st["eof"] and not st["out"]:
            if self.mode == "fin_first":
                self.received.append(st["got"])
            self._close(c)
            return
        want = selectors.EVENT_READ if not st["eof"] else 0
        if st["out"]:
            want |= selectors.EVENT_WRITE
        self._sel.modify(c, want or selectors.EVENT_WRITE)

    def close(self) -> None:
        self._stop = True
        self._wake_w.send(b"x")
        self._thread.join(5)
        for c in list(self._conns):
            c.close()
        self._sel.close()
        self.sock.close()
        self._wake_r.close()
        self._wake_w.close()


def refusing_socket() -> socket.socket:
    """A bound, non-listening socket: connects to it are refused.  Calling
    listen() on it later (Backend(sock=...)) turns it into a server."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((HOST, 0))
    return s


class BlackHole:
    """A listener that never accepts, its 1-slot backlog filled: further
    SYNs are dropped, so connects to it time out."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fill = []
        for _ in range(3):
            c = socket.socket()
            c.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                c.connect((HOST, self.port))
            self.fill.append(c)
        time.sleep(0.05)

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def close(self) -> None:
        for c in self.fill:
            c.close()
        self.sock.close()


# ----------------------------------------------------------------- configs


def server(address: str, weight: int = 1, state: str = "up", max_conn: int = 0) -> NS:
    host, port = address.rsplit(":", 1)
    return NS(
        address=address, host=host, port=int(port), weight=weight, max_conn=max_conn, state=state
    )


def config(
    servers: list[NS],
    balance: str = "round_robin",
    workers: int = 1,
    retries: int = 2,
    max_fails: int = 3,
    fail_timeout: float = 10.0,
    load_factor: float | None = None,
    connect_timeout: float = 1.0,
    idle_timeout: float = 30.0,
    max_connections: int = 0,
    global_max: int = 0,
    listeners: list[NS] | None = None,
    port: int = 0,
    name: str = "front",
) -> NS:
    if listeners is None:
        listeners = [
            NS(
                name=name,
                host=HOST,
                port=port,
                mode="tcp",
                backend="pool",
                connect_timeout=connect_timeout,
                idle_timeout=idle_timeout,
                max_connections=max_connections,
            )
        ]
    return NS(
        global_=NS(workers=workers, max_connections=global_max),
        listeners=listeners,
        backends={
            "pool": NS(
                balance=balance,
                retries=retries,
                load_factor=load_factor,
                max_fails=max_fails,
                fail_timeout=fail_timeout,
                servers=servers,
            )
        },
    )


def dial(addr: tuple[str, int], src: str | None = None, timeout: float = 5.0) -> socket.socket:
    s = socket.socket()
    s.settimeout(timeout)
    if src:
        s.bind((src, 0))
    s.connect(addr)
    return s


def read_tag(s: socket.socket) -> str:
    buf = b""
    while not buf.endswith(b"\n"):
        d = s.recv(1)
        if not d:
            raise ConnectionError(f"EOF after {buf!r}")
        buf += d
    return buf[:-1].decode()


def tag_of(addr: tuple[str, int], src: str | None = None) -> str:
    with dial(addr, src) as s:
        return read_tag(s)


def tag_settled(e: Engine, active: int) -> str:
    """tag_of, then wait until the proxy has closed that connection."""
    tag = tag_of(front(e))
    assert wait_for(lambda: e.stats()["active"] == active)
    return tag


def recv_all(s: socket.socket) -> bytes:
    out = bytearray()
    while True:
        d = s.recv(65536)
        if not d:
            return bytes(out)
        out += d


def wait_for(pred: Any, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return bool(pred())


@pytest.fixture
def backends() -> Any:
    made: list[Any] = []

    def make(n: int = 1, mode: str = "echo", names: str = "abcdefgh") -> list[Backend]:
        out = [Backend(names[len(made) + i], mode) for i in range(n)]
        made.extend(out)
        return out

    yield make
    for b in made:
        b.close()


@pytest.fixture
def engine() -> Any:
    engines: list[Engine] = []

    def make(cfg: NS, **params: int) -> Engine:
        e = Engine(cfg, **params)
        e.start()
        engines.append(e)
        return e

    yield make
    for e in engines:
        e.stop()


def front(e: Engine) -> tuple[str, int]:
    return e.addresses()["front"]


# ------------------------------------------------------------------- tests


def test_echo_roundtrip_and_stats(backends: Any, engine: Any) -> None:
    (a,) = backends(1)
    e = engine(config([server(a.address)]))
    with dial(front(e)) as s:
        assert read_tag(s) == "a"
        s.sendall(b"hello world")
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b"hello world"
    assert wait_for(lambda: e.stats()["active"] == 0)
    st = e.stats()
    lst = st["listeners"]["front"]
    assert lst["conn_total"] == 1 and lst["conn_active"] == 0
    assert lst["bytes_in"] == 11 and lst["bytes_out"] == 13
    srv = st["backends"]["pool"]["servers"][a.address]
    assert srv["conn_total"] == 1 and srv["bytes_in"] == 11 and srv["bytes_out"] == 13
    assert srv["connect_count"] == 1 and srv["connect_time_avg_us"] > 0
    assert st["total"]["pipes_used"] == 0 and st["total"]["bufs_used"] == 0


def test_round_robin_exact(backends: Any, engine: Any) -> None:
    bs = backends(3)
    e = engine(config([server(b.address) for b in bs]))
    got = Counter(tag_of(front(e)) for _ in range(30))
    assert got == {"a": 10, "b": 10, "c": 10}


def test_weighted_round_robin_smooth(backends: Any, engine: Any) -> None:
    bs = backends(3)
    e = engine(
        config(
            [server(b.address, weight=w) for b, w in zip(bs, (1, 2, 3), strict=True)],
            balance="weighted_round_robin",
        )
    )
    seq = [tag_of(front(e)) for _ in range(60)]
    assert Counter(seq) == {"a": 10, "b": 20, "c": 30}
    # Smooth: the heaviest server never gets more than 2 in a row.
    assert "ccc" not in "".join(seq)


def test_states_and_zero_weight_get_no_new_connections(backends: Any, engine: Any) -> None:
    bs = backends(5)
    servers = [
        server(bs[0].address, state="drain"),
        server(bs[1].address, state="maint"),
        server(bs[2].address, state="down"),
        server(bs[3].address, weight=0),
        server(bs[4].address),
    ]
    e = engine(config(servers))
    assert {tag_of(front(e)) for _ in range(10)} == {"e"}


def test_drain_keeps_established_connections(backends: Any, engine: Any) -> None:
    a, b = backends(2)
    e = engine(config([server(a.address), server(b.address)]))
    held = [dial(front(e)) for _ in range(2)]
    assert sorted(read_tag(s) for s in held) == ["a", "b"]
    e.update(config([server(a.address, state="drain"), server(b.address)], port=front(e)[1]))
    assert {tag_of(front(e)) for _ in range(6)} == {"b"}
    for s in held:
        s.sendall(b"ping")
        assert s.recv(4) == b"ping"
        s.close()


def test_least_conn(backends: Any, engine: Any) -> None:
    bs = backends(3)
    e = engine(config([server(b.address) for b in bs], balance="least_conn"))
    held = [dial(front(e)) for _ in range(2)]
    busy = {read_tag(s) for s in held}
    assert len(busy) == 2
    (idle,) = {"a", "b", "c"} - busy
    # Each short connection sees 0 on the idle server and 1 on the others.
    assert {tag_settled(e, 2) for _ in range(8)} == {idle}
    for s in held:
        s.close()


def test_least_conn_weighted(backends: Any, engine: Any) -> None:
    a, b = backends(2)
    e = engine(
        config([server(a.address, weight=3), server(b.address, weight=1)], balance="least_conn")
    )
    held = [dial(front(e)) for _ in range(8)]
    got = Counter(read_tag(s) for s in held)
    assert got == {"a": 6, "b": 2}
    for s in held:
        s.close()


def test_random_two_distribution(backends: Any, engine: Any) -> None:
    bs = backends(3)
    e = engine(config([server(b.address) for b in bs], balance="random_two"))
    got = Counter(tag_of(front(e)) for _ in range(150))
    assert set(got) == {"a", "b", "c"}
    assert min(got.values()) >= 25, got


def test_random_two_prefers_less_loaded(backends: Any, engine: Any) -> None:
    a, b = backends(2)
    e = engine(config([server(a.address), server(b.address)], balance="random_two"))
    # With two servers both are always compared: held connections stay
    # balanced within one.
    held = [dial(front(e)) for _ in range(10)]
    got = Counter(read_tag(s) for s in held)
    assert got == {"a": 5, "b": 5}
    for s in held:
        s.close()


@pytest.mark.parametrize("algo", ["maglev", "ring"])
def test_consistent_hash_affinity(backends: Any, engine: Any, algo: str) -> None:
    bs = backends(3)
    e = engine(config([server(b.address) for b in bs], balance=algo))
    owner = {}
    for i in range(2, 26):
        src = f"127.0.0.{i}"
        owner[src] = tag_of(front(e), src)
    assert len(set(owner.values())) >= 2
    for src, tag in list(owner.items())[:8]:
        assert tag_of(front(e), src) == tag
    # A server in maintenance: its keys move, the others' stay.
    down = bs[0]
    e.update(
        config(
            [server(b.address, state="maint" if b is down else "up") for b in bs],
            balance=algo,
            port=front(e)[1],
        )
    )
    for src, tag in owner.items():
        now = tag_of(front(e), src)
        if tag != down.name:
            assert now == tag
        else:
            assert now != down.name


@pytest.mark.parametrize("algo", ["maglev", "ring"])
def test_consistent_hash_bounded_load(backends: Any, engine: Any, algo: str) -> None:
    a, b = backends(2)
    e = engine(config([server(a.address), server(b.address)], balance=algo, load_factor=1.0))
    held = [dial(front(e), "127.0.0.7") for _ in range(10)]
    got = Counter(read_tag(s) for s in held)
    assert got == {"a": 5, "b": 5}
    for s in held:
        s.close()


def test_max_conn_per_server(backends: Any, engine: Any) -> None:
    a, b = backends(2)
    e = engine(config([server(a.address, max_conn=1), server(b.address)], balance="least_conn"))
    held = [dial(front(e)) for _ in range(5)]
    got = Counter(read_tag(s) for s in held)
    assert got["a"] == 1 and got["b"] == 4
    for s in held:
        s.close()


def test_failover_on_refused(backends: Any, engine: Any) -> None:
    (good,) = backends(1)
    dead = refusing_socket()
    dead_addr = f"{HOST}:{dead.getsockname()[1]}"
    try:
        e = engine(config([server(dead_addr), server(good.address)], max_fails=0))
        assert [tag_of(front(e)) for _ in range(10)] == ["a"] * 10
        st = e.stats()
        srv = st["backends"]["pool"]["servers"]
        assert srv[dead_addr]["connect_fails"] == 5
        assert srv[good.address]["retries"] == 5
        assert st["listeners"]["front"]["rejected_noserver"] == 0
    finally:
        dead.close()


def test_failover_on_blackhole_timeout(backends: Any, engine: Any) -> None:
    (good,) = backends(1)
    hole = BlackHole()
    try:
        e = engine(
            config([server(hole.address), server(good.address)], connect_timeout=0.2, max_fails=0)
        )
        t0 = time.monotonic()
        assert [tag_of(front(e)) for _ in range(4)] == ["a"] * 4
        elapsed = time.monotonic() - t0
        assert 0.35 <= elapsed < 2.0  # two of the four waited one timeout
        assert e.stats()["backends"]["pool"]["servers"][hole.address]["connect_fails"] == 2
    finally:
        hole.close()


def test_no_server_closes_client_and_counts(engine: Any) -> None:
    deads = [refusing_socket() for _ in range(2)]
    addrs = [f"{HOST}:{d.getsockname()[1]}" for d in deads]
    try:
        e = engine(config([server(x) for x in addrs], retries=5, max_fails=0))
        with dial(front(e)) as s:
            assert recv_all(s) == b""
        st = e.stats()
        assert st["listeners"]["front"]["rejected_noserver"] == 1
        # Each server tried once: tried servers are excluded from retries.
        assert st["listeners"]["front"]["connect_fails"] == 2
        # All servers down by state: rejected without any attempt.
        e.update(config([server(x, state="down") for x in addrs], port=front(e)[1]))
        with dial(front(e)) as s:
            assert recv_all(s) == b""
        st = e.stats()
        assert st["listeners"]["front"]["rejected_noserver"] == 2
        assert st["listeners"]["front"]["connect_fails"] == 2
    finally:
        for d in deads:
            d.close()


def test_passive_health_out_and_back(backends: Any, engine: Any) -> None:
    (good,) = backends(1)
    flaky = refusing_socket()
    flaky_addr = f"{HOST}:{flaky.getsockname()[1]}"
    e = engine(config([server(flaky_addr), server(good.address)], max_fails=2, fail_timeout=0.6))
    try:
        assert [tag_of(front(e)) for _ in range(8)] == ["a"] * 8
        srv = e.stats()["backends"]["pool"]["servers"][flaky_addr]
        assert srv["connect_fails"] == 2 and srv["health_downs"] == 1
        assert srv["health_out"] is True
        # The server comes up; after the cool-off it takes traffic again.
        revived = Backend("z", sock=flaky)
        try:
            time.sleep(0.7)
            tags = Counter(tag_of(front(e)) for _ in range(6))
            assert tags == {"a": 3, "z": 3}
            srv = e.stats()["backends"]["pool"]["servers"][flaky_addr]
            assert srv["health_out"] is False and srv["fails"] == 0
            assert srv["connect_fails"] == 2 and srv["health_downs"] == 1
        finally:
            revived.close()
    finally:
        flaky.close()


def test_half_close_client_first(backends: Any, engine: Any) -> None:
    (a,) = backends(1)
    e = engine(config([server(a.address)]))
    with dial(front(e)) as s:
        assert read_tag(s) == "a"
        s.sendall(b"x" * 100000)
        s.shutdown(socket.SHUT_WR)
        # The backend sees our FIN only after all bytes, echoes, then FINs.
        assert recv_all(s) == b"x" * 100000


def test_half_close_server_first(backends: Any, engine: Any) -> None:
    (a,) = backends(1, mode="fin_first")
    e = engine(config([server(a.address)]))
    with dial(front(e)) as s:
        assert recv_all(s) == b"a\n"  # tag, then the server's FIN
        # Our direction still flows after the server's FIN.
        s.sendall(b"y" * 70000)
        s.shutdown(socket.SHUT_WR)
        assert wait_for(lambda: a.received == [70000])
    assert wait_for(lambda: e.stats()["active"] == 0)


def test_rst_is_passed_on(backends: Any, engine: Any) -> None:
    (a,) = backends(1, mode="rst")
    e = engine(config([server(a.address)]))
    with dial(front(e)) as s:
        assert read_tag(s) == "a"
        s.sendall(b"boom")
        with pytest.raises(ConnectionResetError):
            while s.recv(100):
                pass
    assert wait_for(lambda: e.stats()["active"] == 0)


def test_idle_timeout(backends: Any, engine: Any) -> None:
    (a,) = backends(1)
    e = engine(config([server(a.address)], idle_timeout=0.3))
    with dial(front(e)) as s:
        assert read_tag(s) == "a"
        time.sleep(0.15)
        s.sendall(b"k")  # activity pushes the deadline
        assert s.recv(1) == b"k"
        t0 = time.monotonic()
        assert recv_all(s) == b""
        assert 0.2 < time.monotonic() - t0 < 1.5


@pytest.mark.parametrize(
    ("no_splice", "mib"), [(False, 100), (True, 32)], ids=["splice", "buffers"]
)
def test_large_transfer_both_ways(backends: Any, engine: Any, no_splice: bool, mib: int) -> None:
    (a,) = backends(1)
    e = engine(config([server(a.address)], workers=2), no_splice=no_splice)
    total = mib * 1024 * 1024
    block = os.urandom(1 << 20)
    sent, got = hashlib.blake2b(), hashlib.blake2b()

    with dial(front(e), timeout=30) as s:
        assert read_tag(s) == "a"

        def writer() -> None:
            for i in range(total // len(block)):
                chunk = i.to_bytes(8, "little") + block[8:]
                sent.update(chunk)
                s.sendall(chunk)
            s.shutdown(socket.SHUT_WR)

        t = threading.Thread(target=writer)
        t.start()
        n = 0
        buf = bytearray(1 << 20)
        while True:
            k = s.recv_into(buf)
            if not k:
                break
            got.update(memoryview(buf)[:k])
            n += k
        t.join()
    assert n == total
    assert got.hexdigest() == sent.hexdigest()
    st = e.stats()["listeners"]["front"]
    assert st["bytes_in"] == total and st["bytes_out"] == total + 2


def transfer(addr: tuple[str, int], size: int) -> bool:
    """Echo size random bytes through the proxy; True if they came back."""
    data = os.urandom(size)
    with dial(addr, timeout=20) as s:
        read_tag(s)
        t = threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR)))
        t.start()
        back = recv_all(s)
        t.join()
    return back == data


def test_buffer_exhaustion_waits(backends: Any, engine: Any) -> None:
    """One relay buffer per worker (splice off): a client that stops
    reading holds it (its server->client bytes are stuck), so its own upload
    and a new client's greeting wait for it, and all proceed once the
    client reads again."""
    (a,) = backends(1)
    e = engine(config([server(a.address)]), no_splice=True, max_bufs=1, max_free_bufs=0)
    size = 16 << 20  # more than the socket buffers on the way can absorb
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(20)
    s.connect(front(e))
    assert read_tag(s) == "a"
    sender = threading.Thread(target=lambda: (s.sendall(b"s" * size), s.shutdown(socket.SHUT_WR)))
    sender.start()

    def settled() -> bool:
        st = e.stats()["total"]
        return st["bufs_used"] == 1 and st["res_waits"] > 0

    assert wait_for(settled)
    third = dial(front(e), timeout=0.3)
    with pytest.raises(socket.timeout):
        read_tag(third)  # its greeting waits for the buffer
    got = len(recv_all(s))
    sender.join(20)
    assert got == size
    third.settimeout(10)
    assert read_tag(third) == "a"
    third.close()
    s.close()
    assert transfer(front(e), 1 << 20)
    assert wait_for(lambda: e.stats()["total"]["bufs_used"] == 0)


def test_one_pipe_one_buffer_many_transfers(backends: Any, engine: Any) -> None:
    """Tiny pools: concurrent transfers share one pipe and one buffer and
    all complete intact (waiters are resumed, nothing livelocks)."""
    (a,) = backends(1)
    e = engine(
        config([server(a.address)]), max_pipes=1, max_bufs=1, max_free_pipes=0, max_free_bufs=0
    )
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(transfer(front(e), 2 << 20)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [True] * 4
    assert wait_for(lambda: e.stats()["total"]["pipes_used"] == 0)
    assert e.stats()["total"]["bufs_used"] == 0


EMFILE_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    from types import SimpleNamespace as NS
    from fastlb.engine import Engine
    port = int(sys.argv[1])
    srv = NS(address=f"127.0.0.1:{port}", host="127.0.0.1", port=port, weight=1, max_conn=0,
             state="up")
    cfg = NS(global_=NS(workers=1, max_connections=0),
             listeners=[NS(name="front", host="127.0.0.1", port=0, mode="tcp", backend="b",
                           connect_timeout=1.0, idle_timeout=60.0, max_connections=0)],
             backends={"b": NS(balance="round_robin", retries=0, load_factor=None, max_fails=0,
                               fail_timeout=1.0, servers=[srv])})
    e = Engine(cfg)
    e.start()
    import os
    used = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE,
                       (used + 20, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    print(e.addresses()["front"][1], flush=True)
    sys.stdin.readline()
    print(json.dumps(e.stats()["total"]), flush=True)
    e.stop()
    """
)


def test_emfile_backs_off_without_spinning(backends: Any, tmp_path: Any) -> None:
    """Out of descriptors, the engine pauses accepting instead of spinning,
    and serves the waiting clients once descriptors are free again."""
    (a,) = backends(1)
    env = dict(os.environ, PYTHONPATH=FASTLB_SITE)
    child = subprocess.Popen(
        [sys.executable, "-c", EMFILE_CHILD, str(a.port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,  # not the checkout: import fastlb as this process does
    )
    clients: list[socket.socket] = []
    try:
        lport = int(child.stdout.readline())  # type: ignore[union-attr]
        proc = psutil.Process(child.pid)
        clients = [dial((HOST, lport), timeout=0.5) for _ in range(30)]
        served = []
        for s in clients:
            try:
                served.append(read_tag(s) == "a")
            except (TimeoutError, ConnectionError):
                served.append(False)
        assert 3 <= sum(served) < 30
        cpu0 = sum(proc.cpu_times()[:2])
        time.sleep(0.5)
        assert sum(proc.cpu_times()[:2]) - cpu0 < 0.2  # paused, not spinning
        for s in clients:
            s.close()
        clients = []

        def served_again() -> bool:
            try:
                return tag_of((HOST, lport)) == "a"
            except OSError:
                return False

        # With descriptors free again (the proxy sees the clients' FINs and
        # closes its ends), new clients are served.
        assert wait_for(served_again)
        stats = child.communicate("\n", timeout=20)[0]
        assert '"emfile_pauses": 0' not in stats
    finally:
        for s in clients:
            s.close()
        if child.poll() is None:
            child.kill()
            child.wait()


def test_ipv6_listener_and_server(engine: Any) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        b6 = socket.socket(socket.AF_INET6)
        b6.bind(("::1", 0))
    except OSError:
        pytest.skip("no ::1")
    back = Backend("v", sock=b6)
    try:
        srv = NS(
            address=f"[::1]:{back.port}",
            host="::1",
            port=back.port,
            weight=1,
            max_conn=0,
            state="up",
        )
        lsn = [
            NS(
                name="front",
                host="::1",
                port=0,
                mode="tcp",
                backend="pool",
                connect_timeout=1.0,
                idle_timeout=10.0,
                max_connections=0,
            )
        ]
        e = engine(config([srv], listeners=lsn, balance="maglev"))
        host, port = front(e)
        assert host == "::1"
        with socket.create_connection((host, port), timeout=5) as s:
            assert read_tag(s) == "v"
            s.sendall(b"six")
            assert s.recv(3) == b"six"
    finally:
        back.close()


def test_2000_concurrent_connections(backends: Any, engine: Any) -> None:
    bs = backends(2)
    e = engine(config([server(b.address) for b in bs], workers=2))
    addr = front(e)
    socks = []
    try:
        for _ in range(2000):
            socks.append(dial(addr, timeout=10))
        assert wait_for(lambda: e.stats()["active"] == 2000, 10)
        for i, s in enumerate(socks):
            s.sendall(b"%06d" % i)
        for i, s in enumerate(socks):
            assert read_tag(s) in ("a", "b")
            buf = b""
            while len(buf) < 6:
                buf += s.recv(6 - len(buf))
            assert buf == b"%06d" % i
        assert e.stats()["listeners"]["front"]["conn_active"] == 2000
    finally:
        for s in socks:
            s.close()
    assert wait_for(lambda: e.stats()["active"] == 0, 10)
    assert e.stats()["total"]["pipes_used"] == 0


def test_update_under_load(backends: Any, engine: Any) -> None:
    bs = backends(3)
    e = engine(config([server(bs[0].address), server(bs[1].address)], workers=2))
    addr = front(e)
    stop = threading.Event()
    errors: list[BaseException] = []
    done = [0]

    def client() -> None:
        while not stop.is_set():
            try:
                with dial(addr) as s:
                    read_tag(s)
                    s.sendall(b"ping")
                    s.shutdown(socket.SHUT_WR)
                    assert recv_all(s) == b"ping"
                done[0] += 1
            except BaseException as exc:
                errors.append(exc)
                return

    long_lived = [dial(addr) for _ in range(4)]
    for s in long_lived:
        read_tag(s)
    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        variants = [
            [server(bs[0].address), server(bs[1].address), server(bs[2].address)],
            [server(bs[1].address, weight=3), server(bs[2].address)],
            [server(bs[0].address, state="drain"), server(bs[2].address)],
            [server(bs[0].address), server(bs[1].address)],
        ]
        for i in range(12):
            time.sleep(0.08)
            algo = ("round_robin", "least_conn", "weighted_round_robin", "maglev")[i % 4]
            e.update(config(variants[i % len(variants)], balance=algo, workers=2, port=addr[1]))
            assert e.addresses()["front"] == addr
        time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert not errors, errors[:3]
    assert done[0] > 20
    for i, s in enumerate(long_lived):
        s.sendall(b"still %d" % i)
        want = b"still %d" % i
        buf = b""
        while len(buf) < len(want):
            buf += s.recv(100)
        assert buf == want
        s.close()
    st = e.stats()
    assert st["generation"] == 13
    assert sum(w["snapshots"] for w in st["workers"]) >= 2


def test_server_stats_survive_update(backends: Any, engine: Any) -> None:
    a, b = backends(2)
    e = engine(config([server(a.address)]))
    for _ in range(3):
        tag_of(front(e))
    sid = e.stats()["backends"]["pool"]["servers"][a.address]["id"]
    e.update(config([server(a.address, weight=5), server(b.address)], port=front(e)[1]))
    srv = e.stats()["backends"]["pool"]["servers"]
    assert srv[a.address]["conn_total"] == 3 and srv[a.address]["id"] == sid
    assert srv[b.address]["conn_total"] == 0 and srv[b.address]["id"] != sid
    # Removed then re-added later: the id is the same, the counters restart.
    e.update(config([server(b.address)], port=front(e)[1]))
    e.update(config([server(a.address), server(b.address)], port=front(e)[1]))
    srv = e.stats()["backends"]["pool"]["servers"]
    assert srv[a.address]["id"] == sid


def test_listeners_added_removed_and_bind_error(backends: Any, engine: Any) -> None:
    a, b = backends(2)

    def lsn(name: str, port: int = 0, backend: str = "pool") -> NS:
        return NS(
            name=name,
            host=HOST,
            port=port,
            mode="tcp",
            backend=backend,
            connect_timeout=1.0,
            idle_timeout=10.0,
            max_connections=0,
        )

    e = engine(config([server(a.address)], listeners=[lsn("one"), lsn("two")], workers=2))
    one, two = e.addresses()["one"], e.addresses()["two"]
    held = dial(two)
    assert read_tag(held) == "a"
    e.update(config([server(b.address)], listeners=[lsn("one", one[1]), lsn("three")], workers=2))
    addrs = e.addresses()
    assert addrs["one"] == one and "two" not in addrs
    assert tag_of(addrs["three"]) == "b" and tag_of(one) == "b"
    with pytest.raises(ConnectionRefusedError):
        dial(two)
    held.sendall(b"old")  # an established connection on a removed listener
    assert held.recv(3) == b"old"
    held.close()
    # A bind error: reported, and nothing changes.
    blocker = socket.socket()
    blocker.bind((HOST, 0))
    blocker.listen(1)
    try:
        with pytest.raises(OSError):
            e.update(
                config(
                    [server(a.address)],
                    listeners=[lsn("one", one[1]), lsn("four", blocker.getsockname()[1])],
                    workers=2,
                )
            )
    finally:
        blocker.close()
    assert e.addresses() == addrs
    assert tag_of(addrs["three"]) == "b"
    with pytest.raises(ValueError):
        e.update(config([server(a.address)], listeners=[lsn("one", backend="nope")], workers=2))


def test_listener_and_global_limits(backends: Any, engine: Any) -> None:
    (a,) = backends(1)
    e = engine(config([server(a.address)], max_connections=2))
    addr = front(e)
    held = [dial(addr) for _ in range(2)]
    for s in held:
        assert read_tag(s) == "a"
    waiting = dial(addr)  # completes in the kernel backlog, not served yet
    waiting.settimeout(0.3)
    with pytest.raises(socket.timeout):
        waiting.recv(1)
    assert e.stats()["listeners"]["front"]["limit_pauses"] >= 1
    held.pop().close()
    waiting.settimeout(5)
    assert read_tag(waiting) == "a"
    waiting.close()
    for s in held:
        s.close()
    # Global limit over two listeners.
    lsns = [
        NS(
            name=n,
            host=HOST,
            port=0,
            mode="tcp",
            backend="pool",
            connect_timeout=1.0,
            idle_timeout=10.0,
            max_connections=0,
        )
        for n in ("x", "y")
    ]
    e2 = engine(config([server(a.address)], listeners=lsns, global_max=1))
    x, y = e2.addresses()["x"], e2.addresses()["y"]
    first = dial(x)
    assert read_tag(first) == "a"
    second = dial(y)
    second.settimeout(0.3)
    with pytest.raises(socket.timeout):
        second.recv(1)
    first.close()
    second.settimeout(5)
    assert read_tag(second) == "a"
    second.close()


def test_stop_drains_then_closes(backends: Any) -> None:
    (a,) = backends(1)
    e = Engine(config([server(a.address)], workers=2))
    e.start()
    addr = front(e)
    s = dial(addr)
    assert read_tag(s) == "a"
    t0 = time.monotonic()
    th = threading.Thread(target=e.stop, args=(3.0,))
    th.start()
    time.sleep(0.2)
    with pytest.raises(ConnectionRefusedError):
        dial(addr)  # listeners closed at once
    s.sendall(b"during drain")
    assert s.recv(100) == b"during drain"
    s.close()
    th.join(5)
    assert time.monotonic() - t0 < 2.0  # returned once the last one closed
    # A connection still open at the deadline is closed.
    e2 = Engine(config([server(a.address)]))
    e2.start()
    s = dial(front(e2))
    assert read_tag(s) == "a"
    t0 = time.monotonic()
    e2.stop(0.3)
    assert 0.25 < time.monotonic() - t0 < 2.0
    assert recv_all(s) == b""
    s.close()


def test_no_fd_leak(backends: Any) -> None:
    bs = backends(2)
    proc = psutil.Process()
    dead = refusing_socket()
    before = proc.num_fds()
    for workers in (1, 2):
        servers = [server(b.address) for b in bs] + [server(f"{HOST}:{dead.getsockname()[1]}")]
        with Engine(config(servers, workers=workers)) as e:
            addr = front(e)
            for _ in range(20):
                with dial(addr) as s:
                    read_tag(s)
                    s.sendall(b"z" * 200000)
                    s.shutdown(socket.SHUT_WR)
                    assert len(recv_all(s)) == 200000
            held = [dial(addr) for _ in range(10)]
            e.update(config(servers[:1], workers=workers, port=addr[1]))
            e.update(config(servers, workers=workers, port=addr[1], listeners=None, name="front"))
        for s in held:
            s.close()
    dead.close()
    # The in-process backends close their ends asynchronously.
    assert wait_for(lambda: proc.num_fds() == before - 1), (proc.num_fds(), before - 1)


def test_engine_object_api(backends: Any) -> None:
    (a,) = backends(1)
    e = Engine(config([server(a.address)]))
    assert not e.running and e.addresses() == {}
    with pytest.raises(RuntimeError):
        e.update(config([server(a.address)]))
    with e:
        assert e.running
        with pytest.raises(RuntimeError):
            e.start()
        with pytest.warns(RuntimeWarning):
            e.update(config([server(a.address)], workers=2, port=front(e)[1]))
    assert not e.running
    e.stop()  # idempotent
    assert e.stats()["listeners"]["front"]["conn_total"] == 0
    with pytest.raises(ValueError):
        Engine(config([server(a.address)], balance="nope")).start()
    with pytest.raises(ValueError):
        Engine(config([server("localhost:80")])).start()


IDLE_CHILD = textwrap.dedent(
    """
    import sys, resource
    from types import SimpleNamespace as NS
    from fastlb.engine import Engine
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (15000, hard))
    port = int(sys.argv[1])
    srv = NS(address=f"127.0.0.1:{port}", host="127.0.0.1", port=port, weight=1, max_conn=0,
             state="up")
    cfg = NS(global_=NS(workers=1, max_connections=0),
             listeners=[NS(name="front", host="127.0.0.1", port=0, mode="tcp", backend="b",
                           connect_timeout=1.0, idle_timeout=60.0, max_connections=0)],
             backends={"b": NS(balance="round_robin", retries=0, load_factor=None, max_fails=0,
                               fail_timeout=1.0, servers=[srv])})
    e = Engine(cfg)
    e.start()
    print(e.addresses()["front"][1], flush=True)
    sys.stdin.readline()
    e.stop()
    """
)


def test_idle_connections_memory(tmp_path: Any) -> None:
    """5,000 idle connections through the proxy cost <= 1 KiB each of RSS."""
    n = 5000
    sink = socket.socket()
    sink.bind((HOST, 0))
    sink.listen(8192)
    port = sink.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=FASTLB_SITE)
    child = subprocess.Popen(
        [sys.executable, "-c", IDLE_CHILD, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,  # not the checkout: import fastlb as this process does
    )
    clients: list[socket.socket] = []
    accepted: list[socket.socket] = []
    try:
        lport = int(child.stdout.readline())  # type: ignore[union-attr]
        pchild = psutil.Process(child.pid)
        # Warm up the pools and the allocator once, then measure.
        warm = [socket.create_connection((HOST, lport)) for _ in range(50)]
        warm_acc = [sink.accept()[0] for _ in warm]
        for s in warm:
            s.sendall(b"w")
        for s in warm_acc:
            assert s.recv(1) == b"w"
        for s in warm + warm_acc:
            s.close()
        time.sleep(0.2)
        rss0 = pchild.memory_info().rss
        for _ in range(n):
            clients.append(socket.create_connection((HOST, lport)))
            if len(clients) % 500 == 0:
                while len(accepted) < len(clients):
                    accepted.append(sink.accept()[0])
        while len(accepted) < n:
            accepted.append(sink.accept()[0])
        # One byte each way so every connection has gone through the relay.
        for s in clients:
            s.sendall(b"q")
        for s in accepted:
            assert s.recv(1) == b"q"
            s.sendall(b"r")
        for s in clients:
            assert s.recv(1) == b"r"
        time.sleep(0.2)
        growth = pchild.memory_info().rss - rss0
        print(f"idle connections: {growth / n:.0f} bytes of RSS each")
        assert growth <= n * 1024, f"{growth / n:.0f} bytes per idle connection"
    finally:
        for s in clients + accepted:
            s.close()
        sink.close()
        child.communicate("\n", timeout=20)
    assert child.returncode == 0
