"""Fixtures shared by the end-to-end tests: `proxy` (an engine with one
http listener "web") and `many_fds` (room for thousands of sockets)."""

from __future__ import annotations

import resource
from collections.abc import Iterator
from typing import Any

import pytest

from fastlb.config import parse_config
from fastlb.engine import Engine


@pytest.fixture
def proxy() -> Iterator[Any]:
    """proxy(config dict) -> (host, port) of the started engine's listener
    "web"; engines stopped at teardown."""
    engines: list[Engine] = []

    def make(data: dict[str, Any]) -> tuple[str, int]:
        e = Engine(parse_config(data))
        e.start()
        engines.append(e)
        return e.addresses()["web"]

    yield make
    for e in engines:
        e.stop()


@pytest.fixture(scope="module")
def many_fds() -> None:
    """Raise the soft RLIMIT_NOFILE to 20,000 (at most the hard limit) for a
    module that opens thousands of sockets (pytest.mark.usefixtures)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 20000) if hard != resource.RLIM_INFINITY else 20000
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
