"""Control-plane logging (fastlb/logs.py) and `fastlb run`'s logging
options: text or JSON lines, --log-level, and SIGUSR1 (reopen the access
logs)."""

from __future__ import annotations

import http.client
import io
import json
import logging
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastlb_cli import SITE, run_fastlb

from fastlb import logs
from fastlb.runner import reopen_logs


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    """The root logger, restored afterwards."""
    logger = logging.getLogger()
    handlers, level = list(logger.handlers), logger.level
    yield logger
    for handler in list(logger.handlers):
        if handler not in handlers:
            logger.removeHandler(handler)
    logger.setLevel(level)
    logging.captureWarnings(False)


def _setup(level: str, fmt: str) -> io.StringIO:
    stream = io.StringIO()
    logs.setup(level, fmt, stream=stream)
    return stream


def test_json_lines_carry_the_fields(root: logging.Logger) -> None:
    stream = _setup("info", "json")
    log = logging.getLogger("fastlb.test")
    log.info("listener %s bound", "web", extra={"event": "startup", "port": 8080})
    log.warning("second", extra={"errors": ["a: b", "c: d"], "path": Path("/x")})
    first, second = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert set(first) == {"time", "level", "logger", "message", "event", "port"}
    assert first["level"] == "info" and first["logger"] == "fastlb.test"
    assert first["message"] == "listener web bound"
    assert first["event"] == "startup" and first["port"] == 8080
    assert first["time"].endswith("+00:00") and "T" in first["time"]
    assert second["level"] == "warning"
    assert second["errors"] == ["a: b", "c: d"] and second["path"] == "/x"


def test_json_line_holds_the_exception(root: logging.Logger) -> None:
    stream = _setup("info", "json")
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        logging.getLogger("fastlb").exception("it failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1  # one object per line, newlines escaped
    entry = json.loads(lines[0])
    assert entry["level"] == "error" and entry["message"] == "it failed"
    assert "ValueError: boom" in entry["exception"]


def test_text_format(root: logging.Logger) -> None:
    stream = _setup("debug", "text")
    logging.getLogger("fastlb.x").debug("hello %d", 1, extra={"event": "e"})
    line = stream.getvalue().rstrip("\n")
    assert line.endswith(" DEBUG fastlb.x: hello 1")


def test_warning_level_silences_info(root: logging.Logger) -> None:
    stream = _setup("warning", "text")
    log = logging.getLogger("fastlb")
    log.info("not shown")
    log.warning("shown")
    assert "not shown" not in stream.getvalue() and "shown" in stream.getvalue()


def test_python_warnings_are_logged(root: logging.Logger) -> None:
    import warnings

    stream = _setup("info", "json")
    warnings.warn("workers changed", RuntimeWarning, stacklevel=1)
    entry = json.loads(stream.getvalue().splitlines()[0])
    assert entry["logger"] == "py.warnings" and "workers changed" in entry["message"]


def test_setup_again_replaces_its_handler(root: logging.Logger) -> None:
    first = _setup("info", "text")
    second = _setup("info", "json")
    logging.getLogger("fastlb").info("once")
    assert first.getvalue() == ""
    assert json.loads(second.getvalue())["message"] == "once"
    assert sum(isinstance(h, logs._Handler) for h in root.handlers) == 1


@pytest.mark.parametrize(("level", "fmt"), [("verbose", "text"), ("info", "xml")])
def test_setup_rejects_unknown_values(level: str, fmt: str) -> None:
    with pytest.raises(ValueError, match="is not one of"):
        logs.setup(level, fmt)


# ---- SIGUSR1: reopen the access logs ---------------------------------------------


def _controller(engine: Any) -> Any:
    return SimpleNamespace(engine=engine)


def test_reopen_logs_calls_the_engine(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []
    engine = SimpleNamespace(reopen_logs=lambda: calls.append(1))
    with caplog.at_level(logging.INFO, logger="fastlb"):
        assert reopen_logs(_controller(engine)) is True
    assert calls == [1]
    assert "received SIGUSR1: reopening the access logs" in caplog.messages
    assert "access logs reopened" in caplog.messages
    assert all(r.__dict__["event"] == "reopen_logs" for r in caplog.records)


def test_reopen_logs_without_support_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="fastlb"):
        assert reopen_logs(_controller(SimpleNamespace())) is False
        assert reopen_logs(_controller(None)) is False
    assert [r.levelname for r in caplog.records].count("WARNING") == 2


def test_reopen_logs_failure_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    def fail() -> None:
        raise OSError("disk gone")

    with caplog.at_level(logging.INFO, logger="fastlb"):
        assert reopen_logs(_controller(SimpleNamespace(reopen_logs=fail))) is False
    assert "reopening the access logs failed: disk gone" in caplog.messages


# ---- fastlb run -------------------------------------------------------------------


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "fastlb.toml"
    path.write_text(
        f"""
[global]
workers = 1
drain_timeout = "1s"

[[listeners]]
name = "tcp"
bind = "127.0.0.1:0"
backend = "b"

[[listeners]]
name = "web"
bind = "127.0.0.1:0"
mode = "http"
backend = "b"
access_log = "{tmp_path / "access.log"}"

[backends.b]
servers = [ {{ address = "127.0.0.1:9" }} ]

[admin]
bind = "127.0.0.1:0"
"""
    )
    return path


class Fastlb:
    """`fastlb run` in a child process, its stderr read line by line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fastlb", "run", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=SITE,
        )
        self.lines: list[str] = []
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, found: Callable[[str], bool], timeout: float = 30) -> str:
        """The first line (from now on) for which found() holds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"not logged within {timeout}s: {self.lines}") from None
            if line is None:
                raise AssertionError(f"fastlb exited: {self.lines}")
            self.lines.append(line)
            if found(line):
                return line

    def stop(self) -> int:
        """SIGTERM, then the exit status once every line was read."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self._reader.join(timeout=10)
        while (line := self._queue.get()) is not None:
            self.lines.append(line)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def start() -> Iterator[Callable[..., Fastlb]]:
    started: list[Fastlb] = []

    def run(*args: str) -> Fastlb:
        started.append(Fastlb(*args))
        return started[-1]

    yield run
    for child in started:
        child.kill()


def test_run_logs_json_lines(tmp_path: Path, start: Callable[..., Fastlb]) -> None:
    child = start("--config", str(_config(tmp_path)), "--log-format", "json")
    child.wait_for(lambda line: "fastlb running" in line)
    child.proc.send_signal(signal.SIGUSR1)
    child.wait_for(lambda line: "received SIGUSR1: reopening the access logs" in line)
    assert child.stop() == 0
    entries = [json.loads(line) for line in child.lines]  # every line is JSON
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= set(entry)
    by_message = {e["message"]: e for e in entries}
    assert by_message["fastlb running with 1 worker(s)"]["event"] == "startup"
    assert by_message["fastlb running with 1 worker(s)"]["workers"] == 1
    bound = [e for e in entries if e.get("listener") in ("tcp", "web")]
    assert {e["listener"] for e in bound} == {"tcp", "web"}
    assert all(e["event"] == "startup" and e["address"].startswith("127.0.0.1:") for e in bound)
    reopen = by_message["received SIGUSR1: reopening the access logs"]
    assert reopen["event"] == "reopen_logs" and reopen["level"] == "info"
    assert by_message["received SIGTERM: draining"]["signal"] == "SIGTERM"
    assert entries[-1]["message"] == "stopped"


def test_run_log_level_warning_silences_info(tmp_path: Path, start: Callable[..., Fastlb]) -> None:
    child = start("--config", str(_config(tmp_path)), "--log-level", "warning")
    # No token is set: a warning, logged after the listeners are bound.
    child.wait_for(lambda line: "admin API: no token set" in line)
    assert child.stop() == 0
    assert child.lines and all(" WARNING " in line for line in child.lines), child.lines
    assert not any("bound on" in line or "stopped" in line for line in child.lines)


def test_run_bad_config_in_json(tmp_path: Path) -> None:
    path = _config(tmp_path)
    path.write_text(path.read_text().replace("[global]", "[global]\nwokers = 2"))
    proc = run_fastlb("run", "--config", str(path), "--log-format", "json")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    (entry,) = [json.loads(line) for line in proc.stderr.splitlines()]
    assert entry["level"] == "error" and entry["event"] == "error"
    assert entry["errors"] == ["global.wokers: unknown key (did you mean 'workers'?)"]
    assert f"{path}: global.wokers" in entry["message"]


def test_run_help_lists_the_log_options() -> None:
    proc = run_fastlb("run", "--help")
    assert proc.returncode == 0
    assert "--log-level" in proc.stdout and "--log-format" in proc.stdout
    assert "{text,json}" in proc.stdout and "{debug,info,warning,error}" in proc.stdout


def _get_status(address: str, path: str) -> int:
    host, _, port = address.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def _lines_when(path: Path, count: int, timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") >= count:
            break
        time.sleep(0.02)
    return path.read_text().splitlines() if path.exists() else []


def test_sigusr1_reopens_a_rotated_access_log(tmp_path: Path, start: Callable[..., Fastlb]) -> None:
    child = start("--config", str(_config(tmp_path)), "--log-format", "json")
    child.wait_for(lambda line: "fastlb running" in line)
    web = next(
        json.loads(line)["address"]
        for line in child.lines
        if json.loads(line).get("listener") == "web"
    )
    log = tmp_path / "access.log"
    _get_status(web, "/before")  # no server answers: fastlb's own 50x
    assert len(_lines_when(log, 1)) == 1
    log.rename(tmp_path / "access.log.1")
    child.proc.send_signal(signal.SIGUSR1)
    child.wait_for(lambda line: "access logs reopened" in line)
    deadline = time.monotonic() + 5
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    _get_status(web, "/after")
    lines = _lines_when(log, 1)
    assert child.stop() == 0
    assert len(lines) == 1 and "/after" in lines[0]
    assert "/before" in (tmp_path / "access.log.1").read_text()
