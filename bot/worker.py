"""The worker: RQ's SimpleWorker (no fork per job) with two timers in its idle loop, and a loop around it
that waits for Redis instead of exiting.

rq's default Worker forks a work-horse for every job; a send job is a few milliseconds of I/O, so the
fork, the re-import and the fresh database connection would cost more than the job itself
(`bench/worker_fork.py` measures it). SimpleWorker runs jobs in the worker process.

Timers, checked every WORKER_TICK_SECONDS while idle (and between jobs):
- the scheduler (jobs due by `enqueue_at`, RQ Retry intervals) is moved by whichever worker holds RQ's
  scheduler lock for the queue; we hold it with a TTL of SCHEDULER_LOCK_SECONDS, refreshed every tick,
  so a killed holder is replaced within that time (RQ's own scheduler process holds it for 61 s and
  other workers look only every 10 minutes). The holder also wakes at the moment of the next scheduled
  job when that comes before the next tick (`Timers.wait`): a paced group goes at its moment, not up to
  a tick after it.
- the outbox sweep (`bot.pipeline.jobs.sweep`) runs in the worker that takes the sweep lock, a Redis key that
  expires after SWEEP_INTERVAL_SECONDS and is never released: one sweep per interval across all workers,
  and a Redis restarted empty only means the next tick takes the lock again. While Redis is down no
  sweep runs: re-enqueueing needs Redis, and the worker is waiting for it anyway.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from typing import Any

from flask import Flask
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested
from rq.scheduler import RQScheduler
from rq.scripts import acquire_or_refresh_lock, release_lock

from bot.pipeline.queue import PreciseRegistry, get_queue
from bot.redis_conn import get_redis

log = logging.getLogger("smsbot.worker")
LOST = (RedisConnectionError, RedisTimeoutError)


class PreciseScheduler(RQScheduler):
    """RQ's scheduler reading its registries to the microsecond (`PreciseRegistry`)."""

    def prepare_registries(self, queue_names: Any = None) -> None:
        super().prepare_registries(queue_names)
        self._scheduled_job_registries = [
            PreciseRegistry(registry.name, connection=self.connection, serializer=self.serializer)
            for registry in self._scheduled_job_registries
        ]

    def earliest_due(self) -> float | None:
        """The moment (Unix time) of the earliest job scheduled on its queue, or None when there is none."""
        earliest = self.connection.zrange(self._scheduled_job_registries[0].key, 0, 0, withscores=True)
        return earliest[0][1] if earliest else None


class Timers:
    """The scheduler and the sweep, each run when due and only by the worker holding its lock."""

    def __init__(self, app: Flask, connection: Redis, queue_name: str, owner: str, *, sweep: bool) -> None:
        self.app, self.connection, self.queue_name, self.owner = app, connection, queue_name, owner
        self.sweep_enabled = sweep
        self.scheduler = PreciseScheduler([queue_name], connection=connection, name=owner)
        self.next_tick = 0.0
        self.next_sweep_try = 0.0
        self.next_due = float("inf")  # monotonic time of the earliest scheduled job, as last read

    @property
    def scheduler_key(self) -> str:
        return RQScheduler.get_locking_key(self.queue_name)

    @property
    def sweep_key(self) -> str:
        return f"smsbot:sweep-lock:{self.queue_name}"

    def tick(self) -> None:
        now = time.monotonic()
        if now < min(self.next_tick, self.next_due):
            return
        self.next_tick = now + self.app.config["WORKER_TICK_SECONDS"]
        self.move_scheduled_jobs()
        if self.sweep_enabled and now >= self.next_sweep_try:
            self.sweep_if_due()

    def move_scheduled_jobs(self) -> None:
        """Enqueue the scheduled jobs that are due, if this worker holds (or takes) the scheduler lock."""
        ttl = self.app.config["SCHEDULER_LOCK_SECONDS"]
        if acquire_or_refresh_lock(self.connection, self.scheduler_key, self.owner, ttl) == "taken":
            self.next_due = float("inf")
            return
        self.scheduler.prepare_registries([self.queue_name])
        self.scheduler.enqueue_scheduled_jobs()
        due = self.scheduler.earliest_due()
        self.next_due = float("inf") if due is None else time.monotonic() + due - time.time()

    def wait(self, longest: float) -> float:
        """How long an idle worker may block on its queue: until the next scheduled job is due, at most
        `longest` (a job scheduled meanwhile by another process is seen at the next tick)."""
        return max(0.001, min(longest, self.next_due - time.monotonic()))

    def sweep_if_due(self) -> None:
        """Sweep once per interval: whoever sets the lock key first sweeps; the key's TTL is the interval."""
        from bot.pipeline.jobs import sweep

        interval_ms = int(self.app.config["SWEEP_INTERVAL_SECONDS"] * 1000)
        if not self.connection.set(self.sweep_key, self.owner, nx=True, px=interval_ms):
            left = self.connection.pttl(self.sweep_key)
            self.next_sweep_try = time.monotonic() + max(left, 0) / 1000
            return
        try:
            sweep()
        except LOST:
            raise  # the worker waits for Redis
        except Exception:
            log.exception("sweep failed; the next interval tries again")

    def release(self) -> None:
        with contextlib.suppress(RedisError):
            release_lock(self.connection, self.scheduler_key, self.owner)


def timed(queue_class: type[Queue], timers: Timers) -> type[Queue]:
    """`queue_class`, its blocking pop cut short when a scheduled job falls due (`Timers.wait`): RQ passes
    the same timeout to every pop of an idle spell."""

    class TimedQueue(queue_class):  # type: ignore[valid-type, misc]
        @classmethod
        def dequeue_any(cls, queues, timeout, *args, **kwargs):  # type: ignore[no-untyped-def]
            return super().dequeue_any(queues, None if timeout is None else timers.wait(timeout), *args, **kwargs)

    return TimedQueue


class Worker(SimpleWorker):
    """A SimpleWorker that wakes every tick for its timers and, when Redis goes away, stops quietly (no
    traceback) with `redis_lost` set, for `run_worker` to wait and start a fresh one."""

    def __init__(self, *args: Any, app: Flask, burst: bool, with_scheduler: bool, **kwargs: Any) -> None:
        self.app = app  # before RQ's init, which reads dequeue_timeout
        super().__init__(*args, **kwargs)
        self.max_connection_wait_time = float(app.config["REDIS_RETRY_MAX_SECONDS"])  # RQ's own retry while idle
        self.redis_lost: Exception | None = None
        self.in_timers = False
        self.timers = Timers(app, self.connection, self.queues[0].name, self.name, sweep=not burst)
        self.scheduling = with_scheduler
        if with_scheduler:
            self.queue_class = timed(self.queue_class, self.timers)

    @property
    def dequeue_timeout(self) -> float:  # type: ignore[override]
        """How long an idle worker blocks on the queue before its timers run (BLPOP takes fractions)."""
        return max(0.1, float(self.app.config["WORKER_TICK_SECONDS"]))

    @property
    def should_run_maintenance_tasks(self) -> bool:
        return True  # every pass of the loop: the timers know what is due, RQ's own cleaning below

    def run_maintenance_tasks(self) -> None:
        self.in_timers = True
        try:
            if self.scheduling:
                self.timers.tick()
            if SimpleWorker.should_run_maintenance_tasks.fget(self):  # type: ignore[attr-defined]
                super().run_maintenance_tasks()
        except LOST as exc:
            self.lose(exc)
        finally:
            self.in_timers = False
        if self._stop_requested:
            raise StopRequested  # a stop signal arrived during the timers: taken now, between two steps

    def _shutdown(self) -> None:
        """RQ's stop signal handler raises StopRequested wherever an idle worker happens to be. Inside the
        timers that would cut a sweep short and, caught by its error handling, be lost: the worker would
        run on with nothing left to stop it. There the stop is only recorded and taken after the tick."""
        if self.in_timers:
            self._stop_requested = True
            return
        super()._shutdown()

    def heartbeat(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().heartbeat(*args, **kwargs)
        except LOST as exc:
            self.lose(exc)

    def check_for_suspension(self, burst: bool) -> None:
        try:
            super().check_for_suspension(burst)
        except LOST as exc:
            self.lose(exc)

    def execute_job(self, job: Any, queue: Any) -> None:
        try:
            super().execute_job(job, queue)
        except LOST as exc:
            self.lose(exc)

    def dequeue_job_and_maintain_ttl(self, *args: Any, **kwargs: Any) -> Any:
        """RQ retries a lost connection while it waits on the queue, but not when marking the worker idle
        first: that error would end `work` as "an unhandled exception", and the worker process with it."""
        try:
            return super().dequeue_job_and_maintain_ttl(*args, **kwargs)
        except LOST as exc:
            self.lose(exc)

    def lose(self, exc: Exception) -> None:
        self.redis_lost = exc
        raise StopRequested from exc

    def teardown(self) -> None:
        self.timers.release()
        with contextlib.suppress(RedisError):
            super().teardown()


def run_worker(app: Flask, *, burst: bool = False, with_scheduler: bool = True) -> bool:
    """Work the app's queue until stopped (or, with `burst`, until it is empty).

    When Redis is unreachable, at start or later, wait and try again with backoff (one warning line per
    try, up to REDIS_RETRY_MAX_SECONDS apart) instead of exiting; SIGTERM or SIGINT ends the wait.
    """
    with app.app_context():
        stopping = threading.Event()
        delay = 1.0
        while not stopping.is_set():
            try:
                connection = get_redis(app)
                connection.ping()
                worker = Worker(
                    [get_queue()], connection=connection, app=app, burst=burst, with_scheduler=with_scheduler
                )
                if burst and with_scheduler:
                    worker.timers.move_scheduled_jobs()
                delay = 1.0
                worked = worker.work(burst=burst, logging_level="INFO")
                lost = worker.redis_lost
            except LOST as exc:
                worked, lost = False, exc
            if lost is None or burst:
                return worked
            log.warning("Redis unreachable (%s); trying again in %.0f s", lost, delay)
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stopping.set())
            if stopping.wait(delay):
                return worked
            delay = min(delay * 2, app.config["REDIS_RETRY_MAX_SECONDS"])
        return False
