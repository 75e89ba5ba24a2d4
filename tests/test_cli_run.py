"""`fastlb check` and `fastlb run` as an operator uses them: exit statuses,
error messages without tracebacks, real traffic, and a graceful SIGTERM."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastlb_cli import connect_when_listening, run_fastlb, start_fastlb, stop


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def echo_server() -> Iterator[int]:
    """A TCP echo backend on 127.0.0.1; yields its port."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept_loop() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    yield int(srv.getsockname()[1])
    stop.set()
    thread.join()
    srv.close()


def _config(tmp_path: Path, listen_port: int, backend_port: int, extra: str = "") -> Path:
    path = tmp_path / "fastlb.toml"
    path.write_text(
        f"""
[global]
workers = 2
drain_timeout = "5s"
{extra}
[[listeners]]
name = "echo"
bind = "127.0.0.1:{listen_port}"
mode = "tcp"
backend = "echo"
connect_timeout = "1s"

[backends.echo]
balance = "round_robin"
servers = [ {{ address = "127.0.0.1:{backend_port}" }} ]

[admin]
bind = "127.0.0.1:0"
"""
    )
    return path


def test_check_valid(tmp_path: Path) -> None:
    proc = run_fastlb("check", "--config", str(_config(tmp_path, 1, 2)))
    assert proc.returncode == 0, proc.stderr
    assert "listener echo: 127.0.0.1:1 (tcp) -> echo" in proc.stdout
    assert "backend echo: round_robin, 1 server(s)" in proc.stdout
    assert proc.stdout.rstrip().endswith("OK")


def test_check_invalid_exits_2_with_every_error(tmp_path: Path) -> None:
    path = _config(tmp_path, 1, 2, extra="wokers = 2")
    path.write_text(path.read_text().replace('"round_robin"', '"fastest"'))
    proc = run_fastlb("check", "--config", str(path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{path}: global.wokers: unknown key (did you mean 'workers'?)" in proc.stderr
    assert f"{path}: backends.echo.balance: Input should be" in proc.stderr


def test_run_bad_config_exits_2_and_binds_nothing(tmp_path: Path) -> None:
    port = _free_port()
    path = _config(tmp_path, port, 2)
    path.write_text(path.read_text().replace('backend = "echo"', 'backend = "nope"'))
    proc = run_fastlb("run", "--config", str(path))
    assert proc.returncode == 2
    assert "listeners[0].backend: no backend named 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr
    with socket.socket() as s:  # nothing was bound: the port is still free
        s.bind(("127.0.0.1", port))


def test_run_address_in_use_exits_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = int(taken.getsockname()[1])
        proc = run_fastlb("run", "--config", str(_config(tmp_path, port, 2)))
    assert proc.returncode == 1
    assert "cannot start" in proc.stderr and "Traceback" not in proc.stderr


def test_run_relays_and_drains_on_sigterm(tmp_path: Path, echo_server: int) -> None:
    port = _free_port()
    proc = start_fastlb("run", "--config", str(_config(tmp_path, port, echo_server)))
    try:
        with connect_when_listening(proc, port) as client:
            client.sendall(b"ping through fastlb")
            assert client.recv(100) == b"ping through fastlb"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "draining" in err and "stopped" in err
    finally:
        stop(proc)


def test_run_workers_must_be_positive(tmp_path: Path) -> None:
    proc = run_fastlb("run", "--config", str(_config(tmp_path, 1, 2)), "--workers", "0")
    assert proc.returncode == 2 and "--workers" in proc.stderr


def _http_status(port: int, path: str) -> int | None:
    """The status of GET path on 127.0.0.1:port; None when refused."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except ConnectionRefusedError:
        return None
    finally:
        conn.close()


def test_run_grace_keeps_listeners_open_while_not_ready(tmp_path: Path, echo_server: int) -> None:
    """global.grace: after SIGTERM, /ready says 503 at once while the
    listener still relays new connections; once the grace ends, it is closed."""
    port, admin_port = _free_port(), _free_port()
    path = _config(tmp_path, port, echo_server, extra='grace = "3s"')
    path.write_text(path.read_text().replace("127.0.0.1:0", f"127.0.0.1:{admin_port}"))
    proc = start_fastlb("run", "--config", str(path))
    try:
        deadline = time.monotonic() + 30
        while _http_status(admin_port, "/ready") != 200:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "fastlb never became ready"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 2
        while _http_status(admin_port, "/ready") != 503:
            assert time.monotonic() < deadline, "/ready did not turn 503 after SIGTERM"
            time.sleep(0.05)
        sent = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(b"still served in the grace")
            assert client.recv(100) == b"still served in the grace"
        assert time.monotonic() - sent < 2.5, "the grace check ran too late to mean anything"
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "listeners stay open for 3s (global.grace)" in err
        assert err.index("global.grace") < err.index("draining")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        stop(proc)


def test_run_second_sigterm_cuts_the_grace_short(tmp_path: Path, echo_server: int) -> None:
    port = _free_port()
    path = _config(tmp_path, port, echo_server, extra='grace = "60s"')
    proc = start_fastlb("run", "--config", str(path))
    try:
        connect_when_listening(proc, port).close()
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert proc.poll() is None, "fastlb left before its 60 s grace"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "grace cut short" in err
    finally:
        stop(proc)
