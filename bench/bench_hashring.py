"""Micro benchmark: fastlb.hashring lookups and builds beside uhashring.

Run with figures: python -m bench --scenarios micro."""

from __future__ import annotations

import itertools

import pytest
from uhashring import HashRing

from bench.samples import BACKENDS_100, HASH_KEYS
from fastlb.hashring import Maglev, Ring


def _cycling(lookup):
    """A zero-argument callable that looks up the next key of HASH_KEYS."""
    keys = itertools.cycle(HASH_KEYS)
    return lambda: lookup(next(keys))


@pytest.mark.benchmark(group="lookup")
def bench_fastlb_maglev_lookup(benchmark) -> None:
    table = Maglev(BACKENDS_100)
    assert benchmark(_cycling(table.lookup)) in BACKENDS_100


@pytest.mark.benchmark(group="lookup")
def bench_fastlb_ring_lookup(benchmark) -> None:
    ring = Ring(BACKENDS_100)
    assert benchmark(_cycling(ring.lookup)) in BACKENDS_100


@pytest.mark.benchmark(group="lookup")
def bench_uhashring_get_node(benchmark) -> None:
    ring = HashRing(nodes=BACKENDS_100)
    assert benchmark(_cycling(ring.get_node)) in BACKENDS_100


@pytest.mark.benchmark(group="lookup")
def bench_python_loop_overhead(benchmark) -> None:
    """The cost of the cycling harness alone, to read the others against."""
    assert benchmark(_cycling(len)) == 20


@pytest.mark.benchmark(group="build")
def bench_fastlb_maglev_build_100(benchmark) -> None:
    table = benchmark(Maglev, BACKENDS_100, table_size=65537)
    assert len(table.nodes) == 100


@pytest.mark.benchmark(group="build")
def bench_fastlb_ring_build_100(benchmark) -> None:
    ring = benchmark(Ring, BACKENDS_100)
    assert len(ring.nodes) == 100


@pytest.mark.benchmark(group="build")
def bench_uhashring_build_100(benchmark) -> None:
    ring = benchmark(HashRing, nodes=BACKENDS_100)
    assert ring.get_node(b"x") in BACKENDS_100
