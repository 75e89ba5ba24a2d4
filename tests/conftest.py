"""Fixtures shared by the HTTP end-to-end tests (test_engine_l7.py,
test_l7_adversarial.py)."""

from __future__ import annotations

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
