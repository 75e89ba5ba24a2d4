"""Tests of the `slow-clients` benchmark scenario (bench/tool/attack.py,
slowclients.py, slowreport.py): the attacker really holds its connections
open and trickles, against a socket server in this process; the scenario is
registered, planned and reported with its ratios.  No wrk, no proxy."""

from __future__ import annotations

import os
import selectors
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.tool import (
    attack,
    backends,
    cli,
    configs,
    contenders,
    report,
    runner,
    slowclients,
    static_server,
)
from bench.tool.contenders import Tools
from bench.tool.procs import SMALL_BODY, free_ports, http_get, start_process, stop_process
from bench.tool.procs import wait_listening as wait_port
from bench.tool.scenarios import BY_NAME as SCENARIOS
from bench.tool.scenarios import Settings

TOOLS = Tools("/usr/bin/wrk", "/usr/sbin/nginx", "/usr/sbin/haproxy", "")
WAIT_S = 15.0  # an upper bound for conditions below; they normally hold in milliseconds


class Server:
    """A TCP server on 127.0.0.1 in a thread: accepts everything, records
    what each connection sends, closes the ones it is told to."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.listener.setblocking(False)
        self.port = int(self.listener.getsockname()[1])
        self.cond = threading.Condition()
        self.received: list[bytes] = []  # by accept order
        self.conns: dict[socket.socket, int] = {}  # open ones -> accept index
        self.closed_by_client = 0
        self.requests: list[tuple[int, bytes]] = []  # (how many to close, reply first)
        self.stopping = False
        self.wake_r, self.wake_w = socket.socketpair()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.listener, selectors.EVENT_READ, "listener")
        sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        while not self.stopping:
            for key, _ in sel.select():
                if key.data == "listener":
                    self._accept(sel)
                elif key.data == "wake":
                    self.wake_r.recv(64)
                    self._close_requested(sel)
                else:
                    self._read(sel, key.fileobj)  # type: ignore[arg-type]
        for sock in list(self.conns):
            sock.close()
        sel.close()

    def _accept(self, sel: selectors.BaseSelector) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                return
            with self.cond:
                self.conns[sock] = len(self.received)
                self.received.append(b"")
                self.cond.notify_all()
            sel.register(sock, selectors.EVENT_READ, "conn")

    def _read(self, sel: selectors.BaseSelector, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        with self.cond:
            if data:
                self.received[self.conns[sock]] += data
            else:
                sel.unregister(sock)
                del self.conns[sock]
                sock.close()
                self.closed_by_client += 1
            self.cond.notify_all()

    def _close_requested(self, sel: selectors.BaseSelector) -> None:
        with self.cond:
            while self.requests:
                count, reply = self.requests.pop()
                for sock in sorted(self.conns, key=self.conns.__getitem__)[:count]:
                    if reply:
                        sock.sendall(reply)
                    sel.unregister(sock)
                    del self.conns[sock]
                    sock.close()
            self.cond.notify_all()

    def close_some(self, count: int, reply: bytes = b"") -> None:
        """Close the count oldest open connections (after sending reply)."""
        with self.cond:
            self.requests.append((count, reply))
        self.wake_w.send(b"x")

    def wait_for(self, what: str, predicate: Any) -> None:
        with self.cond:
            assert self.cond.wait_for(predicate, timeout=WAIT_S), f"timed out waiting for {what}"

    def stop(self) -> None:
        self.stopping = True
        self.wake_w.send(b"x")
        self.thread.join(WAIT_S)
        self.listener.close()
        self.wake_r.close()
        self.wake_w.close()


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.stop()


def plan(kind: str, port: int, conns: int, **kw: Any) -> attack.Plan:
    defaults: dict[str, Any] = {
        "open_rate": 2000.0, "trickle": 0.05, "max_seconds": 30.0, "build_timeout": 10.0,
    }  # fmt: skip
    return attack.Plan(kind, port, conns, **{**defaults, **kw})


# ---------------------------------------------------------------- the attacker


def test_slowloris_holds_its_connections_and_trickles(server: Server) -> None:
    conns = 60
    with slowclients.attacking(plan("slowloris", server.port, conns)) as running:
        held = running.wait_held()
        assert (held["held"], held["complete"], held["connect_errors"]) == (conns, True, 0)
        server.wait_for(
            "4 bytes on every connection",
            lambda: len(server.conns) == conns and all(len(r) >= 4 for r in server.received),
        )
        for data in server.received:  # one growing head, never finished
            assert data == attack.SLOWLORIS_HEAD[: len(data)]
            assert b"\r\n\r\n" not in data
        stats = running.stop()
    assert stats["event"] == "done" and stats["stopped_by"] == "stdin"
    assert (stats["held_at_stop"], stats["peer_closed"], stats["opened"]) == (conns, 0, conns)
    assert stats["trickles"] >= 3 * conns
    server.wait_for("every connection closed", lambda: server.closed_by_client == conns)
    assert len(server.received) == conns  # nothing opened beyond the plan


def test_trickle_bytes_never_end_the_head() -> None:
    stream = b"".join(attack.trickle_byte(i) for i in range(200))
    assert stream.startswith(attack.SLOWLORIS_HEAD) and b"\r\n\r\n" not in stream
    assert attack.opening("slowloris", 15) == b"G"


def test_connections_the_server_closes_are_counted_and_reopened(server: Server) -> None:
    conns = 30
    with slowclients.attacking(plan("long-polls", server.port, conns)) as running:
        running.wait_held()
        server.wait_for("every request", lambda: all(server.received) and len(server.conns) == 30)
        server.close_some(5, b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n")
        server.close_some(3)
        server.wait_for(
            "8 reopened", lambda: len(server.received) == 38 and len(server.conns) == 30
        )
        server.wait_for("their requests", lambda: all(server.received))
        stats = running.stop()
    assert (stats["peer_closed"], stats["opened"], stats["held_at_stop"]) == (8, 38, 30)
    assert stats["statuses"] == {"408": 5} and stats["answered"] == 5
    assert set(server.received) == {b"GET /slow?after=15 HTTP/1.1\r\nHost: bench\r\n\r\n"}
    assert attack.opening("long-polls", 21.5).startswith(b"GET /slow?after=21.5 HTTP/1.1\r\n")


def test_stalled_bodies_send_the_head_and_one_byte(server: Server) -> None:
    conns = 40
    with slowclients.attacking(plan("stalled-bodies", server.port, conns)) as running:
        running.wait_held()
        first = attack.opening("stalled-bodies", 15)
        server.wait_for("every head", lambda: server.received.count(first) == conns)
        stats = running.stop()
    head, _, body = first.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /slow?after=15 HTTP/1.1") and b"Content-Length: 1000" in head
    assert body == b"x"
    assert stats["bytes_sent"] == conns * len(first) and stats["trickles"] == 0


def test_the_attacker_opens_at_its_rate(server: Server) -> None:
    conns, rate = 40, 200.0  # 40 at 200/s (bursts of 10): about 0.15 s at least
    started = time.monotonic()
    with slowclients.attacking(plan("long-polls", server.port, conns, open_rate=rate)) as running:
        held = running.wait_held()
        took = time.monotonic() - started
        running.stop()
    assert held["held"] == conns and held["seconds_to_hold"] >= (conns - 10) / rate
    assert took >= (conns - 10) / rate


def test_the_attacker_stops_on_its_own(server: Server) -> None:
    read_end, write_end = os.pipe()  # never closed before the end: only the time limit stops it
    try:
        out = open(os.devnull, "w")  # noqa: SIM115
        with out:
            a = attack.Attacker(plan("slowloris", server.port, 20, max_seconds=0.5), out, read_end)
            stats = a.run()
    finally:
        os.close(read_end)
        os.close(write_end)
    assert stats.stopped_by == "max-seconds" and 0.5 <= stats.seconds < 5
    assert stats.held_at_stop == 20 and stats.held == 0
    server.wait_for("every connection closed", lambda: server.closed_by_client == 20)


def test_a_closed_port_gives_connect_errors_and_a_short_hold() -> None:
    port = free_ports(1)[0]  # nothing listens there
    with slowclients.attacking(plan("slowloris", port, 5, build_timeout=0.3)) as running:
        held = running.wait_held()
        stats = running.stop()
    assert held["complete"] is False and held["held"] == 0
    assert stats["connect_errors"] >= 1 and stats["connected"] == 0


def test_the_attack_command_round_trips() -> None:
    p = slowclients.plan_for(slowclients.ATTACKS[0], 8080, 5000, 5.0)
    assert attack.parse_args(slowclients.command(p)[2:]) == p
    assert p.build_timeout == pytest.approx(5000 / slowclients.OPEN_RATE + 5)
    assert p.max_seconds > p.build_timeout + 5  # outlives the wrk run
    assert p.slow_after >= max(15.0, p.max_seconds)  # the backend answers after the attack
    assert p.trickle == 3.0


# ---------------------------------------------------------------- one attack, measured


def test_one_attack_reads_memory_and_waits_for_release(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The "proxy" is this process (the server thread holds the attack's
    connections); wrk is replaced by fixed figures."""
    runs = iter([(0, 40_000.0, 3), (1, 90_000.0, 0)])

    def fake_wrk(s: Settings, port: int, pids: Any, seconds: float, check: bool) -> dict[str, Any]:
        i, ok, errors = next(runs)
        assert port == server.port and not check
        return {"ok_per_s": ok, "errors": errors, "requests": int(ok * seconds), "i": i}

    monkeypatch.setattr(slowclients, "fast_route", fake_wrk)
    s = Settings("wrk", 1.0, 0.0, 50, 5000, 10, 0.1, attack_conns=50)
    a = slowclients.ATTACKS[2]
    got = slowclients.one_attack(s, a, server.port, [os.getpid()], 100_000.0)
    assert (got["connections"], got["held"], got["held_at_stop"]) == (50, 50, 50)
    assert got["ratio"] == pytest.approx(0.4) and got["recovery"] == pytest.approx(0.9)
    assert got["errors"] == 3 and got["after_ok_per_s"] == 90_000.0
    assert got["fds_during"] >= got["fds_before"] + 50  # the server thread held them
    assert got["release_s"] is not None and got["unreleased"] == 0
    assert got["fds_after"] <= got["fds_during"] - 0.95 * 50
    assert got["rss_during"] > 0 and got["attacker"]["stopped_by"] == "stdin"
    flat = slowclients.flatten({a.name: got})
    assert flat["long-polls.ratio"] == pytest.approx(0.4) and flat["worst_ratio"] == 0.4


# ---------------------------------------------------------------- wiring


def test_the_scenario_is_registered_for_the_proxies() -> None:
    scenario = SCENARIOS["slow-clients"]
    assert scenario.kind == "slow" and scenario.mode == "http"
    assert scenario.headline == "worst_ratio"
    assert "slow-clients" in cli.ALL_SCENARIOS
    assert "no proxy to attack" in str(runner.why_not("direct", scenario, TOOLS))
    assert "forward proxy" in str(runner.why_not("pproxy", scenario, TOOLS))
    jobs = runner.plan(["fastlb", "haproxy", "nginx", "direct"], [scenario], 1, TOOLS)
    assert [n for _, _, n in jobs] == ["fastlb", "haproxy", "nginx"]
    capped = SCENARIOS["slow-clients-capped"]
    assert capped.kind == "slow" and capped.capped and not scenario.capped
    assert "slow-clients-capped" in cli.ALL_SCENARIOS


def test_attack_connections_by_preset() -> None:
    slowloris, stalled, polls = slowclients.ATTACKS
    assert (slowloris.conns, stalled.conns, polls.conns) == (5000, 2000, 2000)
    quick = cli.parse_args(["--quick"])
    assert "slow-clients" in quick.scenario_names
    assert cli.make_settings(quick, TOOLS).attack_conns == 500
    assert slowclients.connections(slowloris, 500) == 500
    assert cli.make_settings(cli.parse_args(["--full"]), TOOLS).attack_conns is None
    assert slowclients.connections(slowloris, None) == 5000
    assert slowclients.connections(polls, 3000) == 2000
    assert cli.parse_args(["--attack-conns", "7"]).attack_conns == 7
    with pytest.raises(SystemExit):
        cli.parse_args(["--attack-conns", "0"])
    s = cli.make_settings(quick, TOOLS)
    jobs = [(1, SCENARIOS["slow-clients"], "fastlb")]
    assert 5 < runner.estimate_seconds(jobs, s) < 20  # quick stays short


def slow_entry(
    name: str,
    round_no: int,
    baseline: float,
    under: dict[str, float],
    scenario: str = "slow-clients",
) -> Any:
    attacks = {
        a: {
            "ratio": ok / baseline, "ok_per_s": ok, "errors": 0, "requests": ok * 5,
            "held_at_stop": 500, "rss_before": 10 * 2**20, "rss_during": 30 * 2**20,
            "rss_after": 12 * 2**20, "recovery": 0.95, "after_ok_per_s": 0.95 * baseline,
            "release_s": 0.25 if ok else None, "unreleased": 0 if ok else 1,
        }
        for a, ok in under.items()
    }  # fmt: skip
    result = {"requests_per_s": baseline, "ok_per_s": baseline, "attacks": attacks}
    result.update(slowclients.flatten(attacks))
    return {"scenario": scenario, "contender": name, "round": round_no, "result": result}


def test_the_report_gives_ratios_and_the_bar() -> None:
    runs = [
        slow_entry("fastlb", 1, 50_000, {"slowloris": 0, "stalled-bodies": 0,
                                         "long-polls": 48_000}),
        slow_entry("haproxy", 1, 40_000, {"slowloris": 39_000, "stalled-bodies": 38_000,
                                          "long-polls": 40_000}),
    ]  # fmt: skip
    info: dict[str, Any] = {
        "machine": {"cpu": "CPU", "logical_cpus": 2, "usable_cpus": 2, "kernel": "L",
                    "python": "3.11"},
        "versions": {}, "backend": "NGINX", "nofile": 20_000, "missing": {},
        "cannot": {"direct": {"slow-clients": "no proxy to attack"}},
        "rate": {}, "contenders": ["fastlb", "haproxy", "direct"], "scenarios": ["slow-clients"],
        "options": {"rounds": 1, "connections": 50, "duration": 5.0, "warmup": 1.0,
                    "many_conns": 5000, "workers": 1, "cpus": None, "attack_conns": 500},
    }  # fmt: skip
    text = report.render(info, runs)
    assert "| fastlb | 0.00x |" in text and "| HAProxy | 0.95x |" in text  # worst ratio
    row = next(line for line in text.splitlines() if line.startswith("| fastlb | `slowloris`"))
    assert "| 500 of 500 | 50,000 | 0 | 0.00x | **no** | 0 (no response at all) |" in row
    assert "10.0 MiB → 30.0 MiB → 12.0 MiB | not in 5 s | 47,500 (0.95x) |" in row
    row = next(line for line in text.splitlines() if line.startswith("| fastlb | `long-polls`"))
    assert "| 48,000 | 0.96x | yes |" in row and "| 0.25 s |" in row
    assert "fastlb does **not** meet the bar" in text and "`long-polls` 0.96x" in text
    assert "`slowloris`: 500 connections" in text and "timeout http-request 10s" in text
    assert "direct has no `slow-clients`" in text


def test_the_capped_report_says_the_cap_and_judges_its_own_runs() -> None:
    name = "slow-clients-capped"
    runs = [slow_entry("fastlb", 1, 30_000, {"slowloris": 28_500, "stalled-bodies": 29_000,
                                             "long-polls": 27_900}, name)]  # fmt: skip
    info: dict[str, Any] = {
        "machine": {"cpu": "CPU", "logical_cpus": 2, "usable_cpus": 2, "kernel": "L",
                    "python": "3.11"},
        "versions": {}, "backend": "NGINX", "nofile": 20_000, "missing": {}, "cannot": {},
        "rate": {}, "contenders": ["fastlb"], "scenarios": [name],
        "options": {"rounds": 1, "connections": 50, "duration": 5.0, "warmup": 1.0,
                    "many_conns": 5000, "workers": 1, "cpus": None, "attack_conns": 500,
                    "cap_cpus": 0.5},
    }  # fmt: skip
    text = report.render(info, runs)
    assert "held to 0.5 CPU per worker" in text
    assert "fastlb meets the bar" in text and "`long-polls` 0.93x" in text


# ---------------------------------------------------------------- the slow route


def test_slow_route_query() -> None:
    assert static_server.slow_after(b"/slow?after=2.5") == 2.5
    assert static_server.slow_after(b"/slow") == static_server.SLOW_DEFAULT_S
    assert static_server.slow_after(b"/slow?x=1&after=99999") == static_server.SLOW_MAX_S
    assert static_server.slow_after(b"/small") is None
    assert static_server.slow_after(b"/slowly?after=1") is None


def test_nginx_backend_sends_slow_to_the_stand_in(tmp_path: Path) -> None:
    conf = configs.nginx_backend_conf(tmp_path, [8001, 8002], tmp_path / "www", slow_port=8003)
    assert "location = /slow {\n            proxy_pass http://127.0.0.1:8003;" in conf
    assert "location = /slow" not in configs.nginx_backend_conf(tmp_path, [8001], tmp_path)
    cmds = backends.backend_commands(tmp_path, "/usr/sbin/nginx", [8001, 8002], 1024, 1, 8003)
    assert len(cmds) == 2 and cmds[1][:2] == [sys.executable, str(backends.STAND_IN)]
    assert cmds[1][-2:] == ["--port", "8003"]


def test_stand_in_answers_the_slow_route_late(tmp_path: Path) -> None:
    port = free_ports(1)[0]
    root = backends.write_backend_files(tmp_path)
    proc = start_process("slow", [backends.stand_in_command(root, [port])], tmp_path)
    try:
        wait_port(proc, port, timeout=10)
        started = time.monotonic()
        assert http_get(port, "/slow?after=0.3") == (200, SMALL_BODY)
        assert time.monotonic() - started >= 0.3
        backends.check_slow_route(port)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(attack.opening("stalled-bodies", 0.2))  # head, 1 byte: answered later
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
    finally:
        stop_process(proc)


def test_contenders_keep_their_connection_slots() -> None:
    assert configs.haproxy_maxconn(20_000) > 5000 + 50  # slowloris and wrk fit
    assert configs.nginx_worker_connections(20_000) > 2 * 2000 + 50  # long polls use two each
    assert contenders.cannot("fastlb", "http", TOOLS) is None


def test_release_is_counted_from_the_descriptors_during_the_attack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench.tool.procs import tree_fds

    me = [os.getpid()]
    now = tree_fds(me)
    assert slowclients.wait_released(me, now + 100, 100) is not None  # 95 of 100 gone: released
    monkeypatch.setattr(slowclients, "RELEASE_TIMEOUT_S", 0.2)
    assert slowclients.wait_released(me, now, 100) is None  # none of them went
