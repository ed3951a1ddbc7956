"""A stop signal stops a worker wherever it lands, even in the middle of the outbox sweep."""

from __future__ import annotations

import os
import signal

import pytest

import bot.pipeline.jobs
from bot.worker import run_worker


@pytest.mark.timeout(30)
def test_sigterm_during_the_sweep_stops_the_worker_after_the_sweep(app, monkeypatch):
    real_sweep = bot.pipeline.jobs.sweep
    sweeps: list[str] = []

    def sweep_interrupted_by_sigterm() -> None:
        sweeps.append("started")
        os.kill(os.getpid(), signal.SIGTERM)  # delivered to RQ's handler while the sweep runs
        real_sweep()
        sweeps.append("finished")

    monkeypatch.setattr(bot.pipeline.jobs, "sweep", sweep_interrupted_by_sigterm)

    assert run_worker(app, burst=False, with_scheduler=True) is False  # returned: the worker stopped

    assert sweeps == ["started", "finished"]  # the sweep was not cut short


@pytest.mark.timeout(30)
def test_redis_lost_as_the_worker_turns_idle_is_waited_out_not_a_crash(app, monkeypatch):
    """RQ marks a worker idle (HSET) before it waits on the queue, outside its own retry: a connection
    reset right there used to end the worker process."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from rq.worker import BaseWorker

    real_set_state = BaseWorker.set_state
    idle: list[str] = []

    def reset_once(self, state, pipeline=None):  # type: ignore[no-untyped-def]
        if state == "idle":
            idle.append(self.name)
            if len(idle) == 1:
                raise RedisConnectionError("Error while reading from redis: Connection reset by peer")
            os.kill(os.getpid(), signal.SIGTERM)  # a fresh worker reached the queue: the test is done
        return real_set_state(self, state, pipeline)

    monkeypatch.setattr(BaseWorker, "set_state", reset_once)
    assert run_worker(app, burst=False, with_scheduler=True) is False
    assert len(idle) == 2 and idle[0] != idle[1]  # lost, waited out, and a fresh worker went on
