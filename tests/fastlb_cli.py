"""Running `python -m fastlb ...` from the tests, as a user would: in a
child process whose working directory holds the fastlb under test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import fastlb

# The directory holding the fastlb package under test (the checkout, or
# site-packages for an installed wheel): children run there.
SITE = os.path.dirname(os.path.dirname(os.path.abspath(fastlb.__file__)))


def run_fastlb(
    *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m fastlb ARGS` to its end; stdout and stderr as text."""
    return subprocess.run(
        [sys.executable, "-m", "fastlb", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=SITE,
        env=env,
    )


def start_fastlb(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`python -m fastlb ARGS` in the background; stdout and stderr piped, as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "fastlb", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=SITE,
        env=env,
    )


def connect_when_listening(
    proc: subprocess.Popen[str], port: int, timeout: float = 30
) -> socket.socket:
    """A connection to 127.0.0.1:port once proc listens there; fails the
    test (with proc's output) when proc exits or the timeout passes first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except ConnectionRefusedError:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "fastlb never listened"
            time.sleep(0.1)


def stop(proc: subprocess.Popen[str]) -> None:
    """Kill proc if it still runs, and reap it."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
