"""Fault tests: a flaky loopback carrier (bench/loopback.py) and, on PostgreSQL, cut database connections."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from bench.loopback import Faults, LoopbackCarrier


@pytest.fixture
def loopback() -> Iterator[Callable[..., LoopbackCarrier]]:
    """Start flaky loopback carriers (keyword arguments of `Faults`); stopped after the test."""
    started: list[LoopbackCarrier] = []

    def start(**faults: object) -> LoopbackCarrier:
        started.append(LoopbackCarrier(Faults(**faults)))  # type: ignore[arg-type]
        return started[-1]

    yield start
    for carrier in started:
        carrier.stop()
