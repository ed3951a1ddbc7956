"""The RQ worker: no fork per job, the scheduler on, inside the app context.

rq's default Worker forks a work-horse for every job; a send job is a few milliseconds of I/O, so the
fork, the re-import and the fresh database connection would cost more than the job itself
(`bench/worker_fork.py` measures it). SimpleWorker runs jobs in the worker process.
"""

from __future__ import annotations

from flask import Flask
from rq import SimpleWorker

from bot.jobs import schedule_sweep
from bot.queue import get_queue
from bot.redis_conn import get_redis


def run_worker(app: Flask, *, burst: bool = False, with_scheduler: bool = True) -> bool:
    """Work the app's queue until stopped (or, with `burst`, until it is empty)."""
    with app.app_context():
        if not burst:
            schedule_sweep()
        worker = SimpleWorker([get_queue()], connection=get_redis(app))
        return worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="INFO")
