"""Active health checks (fastlb/health.py) against real sockets on
127.0.0.1: tcp and http checks, rise/fall verdicts, servers in maint,
update() and slow start; and the config keys that describe them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, ClassVar

import pytest

from fastlb.config import Config, ConfigError, HealthCheckConfig, parse_config
from fastlb.health import SLOW_START_STEPS, HealthChecker, Probe, probe, ramp_weight

FAST = {"interval": 0.04, "timeout": 0.3}


# ---- peers ------------------------------------------------------------------


class TcpStub:
    """A listener that counts connections; stop() then start() keeps its port."""

    listening: ClassVar[set[TcpStub]] = set()  # stopped by run() after a scenario

    def __init__(self) -> None:
        self.port = 0
        self.connections = 0
        self._server: asyncio.Server | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> TcpStub:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self.listening.add(self)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            self.listening.discard(self)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await self.serve(reader, writer)
        writer.close()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pass


class HttpStub(TcpStub):
    """Reads a request head, records it, answers `response` (None: never)."""

    def __init__(self, response: bytes | None) -> None:
        super().__init__()
        self.response = response
        self.requests: list[bytes] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            self.requests.append(await reader.readuntil(b"\r\n\r\n"))
            if self.response is None:
                await reader.read()  # until the checker gives up
                return
            writer.write(self.response)
            await writer.drain()


def reply(status: int = 200, body: bytes = b"", *, framing: str = "length") -> bytes:
    head = f"HTTP/1.1 {status} Whatever\r\nServer: stub\r\n"
    if framing == "length":
        return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
    if framing == "chunked":
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:3], body[3:]))
        return f"{head}Transfer-Encoding: chunked\r\n\r\n".encode() + chunks + b"0\r\n\r\n"
    return f"{head}Connection: close\r\n\r\n".encode() + body  # delimited by the close


def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- harness ----------------------------------------------------------------


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    async def main() -> None:
        try:
            await asyncio.wait_for(scenario(), 10)
        finally:
            for stub in list(TcpStub.listening):
                await stub.stop()

    asyncio.run(main())


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.005)


class Events:
    """What the checker reported, in order, with its status() at the time."""

    def __init__(self) -> None:
        self.checker: HealthChecker | None = None
        self.log: list[tuple[Any, ...]] = []
        self.snapshots: list[dict[str, Any]] = []
        self.times: list[float] = []

    def on_change(self, backend: str, address: str, up: bool, reason: str) -> None:
        self._add(("change", backend, address, up, reason), (backend, address))

    def on_weight(self, backend: str, address: str, weight: int) -> None:
        self._add(("weight", backend, address, weight), (backend, address))

    def _add(self, event: tuple[Any, ...], key: tuple[str, str]) -> None:
        self.log.append(event)
        self.times.append(time.monotonic())
        assert self.checker is not None
        self.snapshots.append(self.checker.status().get(key, {}))

    def changes(self, address: str | None = None) -> list[tuple[bool, str]]:
        return [
            (e[3], e[4])
            for e in self.log
            if e[0] == "change" and (address is None or e[2] == address)
        ]

    def weights(self) -> list[int]:
        return [e[3] for e in self.log if e[0] == "weight"]


def make_checker(config: Config, events: Events, *, weights: bool = False) -> HealthChecker:
    on_weight = events.on_weight if weights else None
    checker = HealthChecker(config, events.on_change, on_weight)
    events.checker = checker
    return checker


@contextlib.asynccontextmanager
async def running(checker: HealthChecker) -> AsyncIterator[None]:
    task = asyncio.create_task(checker.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def make_config(
    backends: dict[str, tuple[list[dict[str, Any]], dict[str, Any] | None, dict[str, Any]]],
) -> Config:
    """backends: name -> (servers, health_check or None, other backend keys)."""
    tables: dict[str, Any] = {}
    for name, (servers, check, extra) in backends.items():
        tables[name] = {"servers": servers, **extra}
        if check is not None:
            tables[name]["health_check"] = {**FAST, **check}
    first = next(iter(backends))
    listener = {"name": "l", "bind": "127.0.0.1:0", "backend": first}
    return parse_config({"listeners": [listener], "backends": tables})


def web(servers: list[dict[str, Any]], check: dict[str, Any] | None = None, **extra: Any) -> Config:
    return make_config({"web": (servers, {} if check is None else check, extra)})


# ---- tcp checks and verdicts -----------------------------------------------


def test_tcp_check_down_then_up_with_exact_fall_and_rise(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="fastlb.health")

    async def scenario() -> None:
        stub = await TcpStub().start()
        key = ("web", stub.address)
        events = Events()
        checker = make_checker(web([{"address": stub.address}], {"rise": 2, "fall": 3}), events)
        async with running(checker):
            await until(lambda: checker.status()[key]["checks"] >= 2)
            assert events.log == [] and checker.status()[key]["up"]
            assert checker.status()[key]["last_ok"] is True

            await stub.stop()
            await until(lambda: len(events.log) == 1)
            assert events.changes() == [(False, "connect refused")]
            at_down = events.snapshots[0]
            assert (at_down["up"], at_down["failures"], at_down["successes"]) == (False, 3, 0)
            checks = at_down["checks"]
            await until(lambda: checker.status()[key]["checks"] >= checks + 3)
            assert len(events.log) == 1  # once per change, not per failed check
            assert checker.status()[key]["failures"] >= 6

            await stub.start()
            await until(lambda: len(events.log) == 2)
            assert events.changes()[1] == (True, "connected")
            at_up = events.snapshots[1]
            assert (at_up["up"], at_up["successes"], at_up["failures"]) == (True, 2, 0)
            assert at_up["last_error"] == "connect refused"
        await stub.stop()
        assert f"server web/{stub.address} is DOWN (fall 3): connect refused" in caplog.text
        assert f"server web/{stub.address} is UP (rise 2): connected" in caplog.text

    run(scenario)


def test_servers_start_up_and_need_fall_failures() -> None:
    async def scenario() -> None:
        address = f"127.0.0.1:{refused_port()}"
        events = Events()
        checker = make_checker(web([{"address": address}], {"fall": 2}), events)
        assert checker.status()[("web", address)]["up"]  # before any check
        async with running(checker):
            await until(lambda: bool(events.log))
        assert events.changes() == [(False, "connect refused")]
        assert events.snapshots[0]["failures"] == 2 and events.snapshots[0]["checks"] == 2

    run(scenario)


def test_a_failing_callback_does_not_stop_the_checks() -> None:
    calls: list[bool] = []

    def on_change(backend: str, address: str, up: bool, reason: str) -> None:
        calls.append(up)
        raise RuntimeError("boom")

    async def scenario() -> None:
        address = f"127.0.0.1:{refused_port()}"
        checker = HealthChecker(web([{"address": address}], {"fall": 1}), on_change)
        async with running(checker):
            await until(lambda: checker.status()[("web", address)]["checks"] >= 3)
        assert calls == [False]

    run(scenario)


# ---- http checks ------------------------------------------------------------


async def http_probe(response: bytes | None, **check: Any) -> tuple[bool, str, HttpStub]:
    stub = await HttpStub(response).start()
    config = HealthCheckConfig.model_validate({"type": "http", **FAST, **check})
    try:
        ok, reason = await probe(Probe(config, "127.0.0.1", stub.port, "h.test"))
    finally:
        await stub.stop()
    return ok, reason, stub


@pytest.mark.parametrize(
    ("response", "check", "expected"),
    [
        (reply(200), {}, (True, "HTTP 200")),
        (reply(302), {}, (True, "HTTP 302")),
        (reply(503), {}, (False, "HTTP 503, expected 200-399")),
        (reply(404), {"expect_status": "200"}, (False, "HTTP 404, expected 200")),
        (reply(204), {"expect_status": [200, 204]}, (True, "HTTP 204")),
        (reply(201), {"expect_status": [200, 204]}, (False, "HTTP 201, expected 200, 204")),
        (reply(503), {"expect_status": ["500-503"]}, (True, "HTTP 503")),
        (reply(200, b"all ok here"), {"expect_body": "ok"}, (True, "HTTP 200")),
        (reply(200, b"ready", framing="chunked"), {"expect_body": "ready"}, (True, "HTTP 200")),
        (reply(200, b"status: ok", framing="close"), {"expect_body": "ok"}, (True, "HTTP 200")),
        (
            reply(200, b"degraded"),
            {"expect_body": "ok"},
            (False, "HTTP 200, but the body does not contain 'ok'"),
        ),
        (reply(500, b"ok"), {"expect_body": "ok"}, (False, "HTTP 500, expected 200-399")),
        (
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + reply(200, b"ok"),
            {"expect_body": "ok"},
            (True, "HTTP 200"),
        ),
        (b"", {}, (False, "the connection closed before the response")),
        (
            b"HTTP/1.1 200 OK\r\nContent-Le",
            {},
            (False, "the connection closed inside the response head"),
        ),
    ],
)
def test_http_check_results(
    response: bytes, check: dict[str, Any], expected: tuple[bool, str]
) -> None:
    async def scenario() -> None:
        ok, reason, _ = await http_probe(response, **check)
        assert (ok, reason) == expected

    run(scenario)


def test_http_check_refuses_a_malformed_response() -> None:
    async def scenario() -> None:
        ok, reason, _ = await http_probe(b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n")
        assert not ok and reason.startswith("bad response: ")

    run(scenario)


def test_http_check_times_out_on_a_server_that_never_answers() -> None:
    async def scenario() -> None:
        started = time.monotonic()
        ok, reason, stub = await http_probe(None, timeout=0.2)
        elapsed = time.monotonic() - started
        assert (ok, reason) == (False, "timeout after 200ms waiting for the response")
        assert 0.19 <= elapsed < 1.0
        assert len(stub.requests) == 1

    run(scenario)


def test_http_check_sends_the_request_and_host_header() -> None:
    async def scenario() -> None:
        default = await HttpStub(reply(200)).start()
        custom = await HttpStub(reply(200)).start()
        dead_port = refused_port()
        config = make_config(
            {
                "web": ([{"address": default.address}], {"type": "http", "path": "/healthz"}, {}),
                "api": (
                    # Checked on another port than the server's (which refuses).
                    [{"address": f"127.0.0.1:{dead_port}"}],
                    {"type": "http", "method": "HEAD", "host": "example.com", "port": custom.port},
                    {},
                ),
            }
        )
        events = Events()
        checker = make_checker(config, events)
        async with running(checker):
            await until(lambda: len(default.requests) >= 1 and len(custom.requests) >= 2)
        await default.stop()
        await custom.stop()
        assert default.requests[0] == (
            b"GET /healthz HTTP/1.1\r\nHost: %s\r\nUser-Agent: fastlb-health-check\r\n"
            b"Accept: */*\r\nConnection: close\r\n\r\n" % default.address.encode()
        )
        assert custom.requests[0].startswith(b"HEAD / HTTP/1.1\r\nHost: example.com\r\n")
        assert events.log == []
        assert checker.status()[("api", f"127.0.0.1:{dead_port}")]["last_ok"] is True

    run(scenario)


# ---- which servers are checked, update() -----------------------------------


def test_maint_servers_and_unchecked_backends_are_not_checked() -> None:
    async def scenario() -> None:
        maint, live, plain = TcpStub(), TcpStub(), TcpStub()
        for stub in (maint, live, plain):
            await stub.start()
        config = make_config(
            {
                "web": (
                    [{"address": maint.address, "state": "maint"}, {"address": live.address}],
                    {},
                    {},
                ),
                "plain": ([{"address": plain.address}], None, {}),
            }
        )
        checker = make_checker(config, Events())
        assert set(checker.status()) == {("web", live.address)}
        async with running(checker):
            await until(lambda: live.connections >= 4)
        assert maint.connections == 0 and plain.connections == 0
        for stub in (maint, live, plain):
            await stub.stop()

    run(scenario)


def test_update_keeps_verdicts_and_follows_the_config() -> None:
    async def scenario() -> None:
        dead = f"127.0.0.1:{refused_port()}"
        live, new = await TcpStub().start(), await TcpStub().start()
        events = Events()
        servers = [{"address": dead}, {"address": live.address}]
        checker = make_checker(web(servers, {"fall": 2}), events)
        async with running(checker):
            await until(lambda: bool(events.log))
            assert events.changes(dead) == [(False, "connect refused")]
            before = checker.status()[("web", dead)]

            # Other check settings and a new server: the verdicts stay.
            grown = [*servers, {"address": new.address}]
            checker.update(web(grown, {"fall": 2, "interval": 0.03}))
            after = checker.status()[("web", dead)]
            assert after["up"] is False and after["failures"] >= before["failures"]
            assert after["checks"] >= before["checks"]
            await until(lambda: new.connections >= 2)
            await until(lambda: checker.status()[("web", dead)]["checks"] >= after["checks"] + 3)
            assert events.changes() == [(False, "connect refused")]

            # From another thread too; the down server goes to maint: no
            # longer held down.  Removed: dropped without a word.
            in_maint = [{"address": dead, "state": "maint"}, {"address": live.address}]
            await asyncio.to_thread(checker.update, web(in_maint, {"fall": 2}))
            await until(lambda: len(events.log) == 2)
            assert events.changes(dead)[1] == (True, "no longer checked")
            assert set(checker.status()) == {("web", live.address)}
            await asyncio.sleep(0.05)  # a connection made before the update
            connections = new.connections
            await asyncio.sleep(0.15)
            assert new.connections == connections
        assert len(events.log) == 2
        await live.stop()
        await new.stop()

    run(scenario)


# ---- slow start -------------------------------------------------------------


def test_ramp_weights() -> None:
    for weight in range(1, 257):
        steps = [ramp_weight(weight, step) for step in range(1, SLOW_START_STEPS + 1)]
        assert steps == sorted(steps) and steps[-1] == weight and steps[0] >= 1
        assert steps[0] <= max(1, weight // 10 + 1)
    assert [ramp_weight(20, s) for s in range(1, 11)] == list(range(2, 21, 2))
    assert [ramp_weight(0, s) for s in range(1, 11)] == [0] * 10  # weight 0 stays out


def test_slow_start_ramps_up_after_recovery() -> None:
    async def scenario() -> None:
        stub = await HttpStub(reply(503)).start()
        config = web(
            [{"address": stub.address, "weight": 20}],
            {"type": "http", "rise": 1, "fall": 1, "interval": 0.02},
            slow_start=0.45,
        )
        events = Events()
        checker = make_checker(config, events, weights=True)
        async with running(checker):
            await until(lambda: bool(events.log))
            assert events.log == [
                ("change", "web", stub.address, False, "HTTP 503, expected 200-399")
            ]
            stub.response = reply(200)
            await until(lambda: 20 in events.weights())
            status = checker.status()[("web", stub.address)]
        await stub.stop()
        assert events.weights() == list(range(2, 21, 2))
        # The low weight reaches the engine before the server is back up.
        assert events.log[1] == ("weight", "web", stub.address, 2)
        assert events.log[2] == ("change", "web", stub.address, True, "HTTP 200")
        spent = events.times[-1] - events.times[1]
        assert 0.4 <= spent < 1.5
        assert status["weight"] == 20 and status["slow_start"] is False

    run(scenario)


def test_slow_start_stops_when_the_server_goes_down() -> None:
    async def scenario() -> None:
        stub = await HttpStub(reply(503)).start()
        config = web(
            [{"address": stub.address, "weight": 10}],
            {"type": "http", "rise": 1, "fall": 1, "interval": 0.02},
            slow_start="2s",
        )
        events = Events()
        checker = make_checker(config, events, weights=True)
        async with running(checker):
            await until(lambda: bool(events.log))
            stub.response = reply(200)
            await until(lambda: len(events.weights()) >= 2)
            assert checker.status()[("web", stub.address)]["slow_start"] is True
            stub.response = reply(503)
            await until(lambda: len(events.changes()) == 3)
            down_at = len(events.log)
            await asyncio.sleep(0.5)  # two more steps, had the ramp gone on
            assert len(events.log) == down_at
            assert events.weights()[-1] < 10
            assert checker.status()[("web", stub.address)]["slow_start"] is False

            stub.response = reply(200)  # the next recovery starts over
            await until(lambda: len(events.changes()) == 4)
            assert events.log[down_at] == ("weight", "web", stub.address, 1)
        await stub.stop()

    run(scenario)


# ---- config -----------------------------------------------------------------


def test_the_issue_example_config() -> None:
    config = web(
        [{"address": "10.0.0.1:80"}],
        {
            "type": "http",
            "interval": "2s",
            "timeout": "1s",
            "rise": 2,
            "fall": 3,
            "method": "GET",
            "path": "/healthz",
            "host": "example.com",
            "expect_status": "200-399",
            "expect_body": "ok",
            "port": 8081,
        },
        slow_start="10s",
    )
    backend = config.backends["web"]
    check = backend.health_check
    assert check is not None and backend.slow_start == 10.0
    assert (check.type, check.interval, check.timeout, check.rise, check.fall) == (
        "http",
        2.0,
        1.0,
        2,
        3,
    )
    assert (check.path, check.host, check.port, check.expect_body) == (
        "/healthz",
        "example.com",
        8081,
        "ok",
    )
    assert check.expect_status == ((200, 399),) and check.expects(399) and not check.expects(400)
    plain = make_config({"web": ([{"address": "10.0.0.1:80"}], None, {})}).backends["web"]
    assert plain.health_check is None and plain.slow_start is None
    assert HealthCheckConfig().type == "tcp" and HealthCheckConfig().expect_text == "200-399"


P = "backends.web.health_check"


@pytest.mark.parametrize(
    ("check", "extra", "errors"),
    [
        ({"rise": 0}, {}, [f"{P}.rise: Input should be greater than or equal to 1"]),
        ({"interval": "0s"}, {}, [f"{P}.interval: must be more than 0"]),
        (
            {"timeout": "fast"},
            {},
            [f"{P}.timeout: 'fast' is not a duration: write it like '2s', '150ms', '1h'"],
        ),
        ({"intervall": "1s"}, {}, [f"{P}.intervall: unknown key (did you mean 'interval'?)"]),
        ({"type": "udp"}, {}, [f"{P}.type: Input should be 'tcp' or 'http'"]),
        (
            {"path": "/x", "expect_body": "ok"},
            {},
            [
                f'{P}.path: only valid with type = "http" (this check is type = "tcp")',
                f'{P}.expect_body: only valid with type = "http" (this check is type = "tcp")',
            ],
        ),
        ({"type": "http", "path": "healthz"}, {}, [f"{P}.path: 'healthz' must start with '/'"]),
        (
            {"type": "http", "host": "a b"},
            {},
            [
                f"{P}.host: 'a b' is not a Host header value "
                "like 'example.com' or 'example.com:8080'"
            ],
        ),
        (
            {"type": "http", "expect_status": "200-99"},
            {},
            [
                f"{P}.expect_status: '200-99' is not a status: "
                'write it like 200, "200-399" or [200, 204]'
            ],
        ),
        (
            {"type": "http", "expect_status": [200, 600]},
            {},
            [f"{P}.expect_status: 600: statuses are in 100..599, the low one first"],
        ),
        (
            {"type": "http", "expect_status": []},
            {},
            [f"{P}.expect_status: give at least one status"],
        ),
        (
            {"type": "http", "method": "GE T"},
            {},
            [
                f"{P}.method: 'GE T' is not a valid method: ' ' is not allowed "
                "(letters, digits and !#$%&'*+-.^_`|~ are)"
            ],
        ),
        ({"port": 70000}, {}, [f"{P}.port: Input should be less than or equal to 65535"]),
        (
            {},
            {"slow_start": "0s"},
            ["backends.web.slow_start: must be more than 0 (leave it out for no slow start)"],
        ),
        (
            None,
            {"slow_start": "5s"},
            [
                "backends.web.slow_start: needs a health_check: "
                "the weight ramps up when a server's checks recover"
            ],
        ),
    ],
)
def test_config_errors(
    check: dict[str, Any] | None, extra: dict[str, Any], errors: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        make_config({"web": ([{"address": "10.0.0.1:80"}], check, extra)})
    assert info.value.errors == errors


def test_status_counts_passed_checks() -> None:
    """status() counts every check and those that passed (the metrics'
    fastlb_health_checks_total by result)."""

    async def scenario() -> None:
        stub = await TcpStub().start()
        key = ("web", stub.address)
        checker = make_checker(web([{"address": stub.address}], {"fall": 1}), Events())
        async with running(checker):
            await until(lambda: checker.status()[key]["checks"] >= 3)
            await stub.stop()
            await until(lambda: checker.status()[key]["checks"] >= 6)
            entry = checker.status()[key]
        assert 3 <= entry["passed"] < entry["checks"]

    run(scenario)
