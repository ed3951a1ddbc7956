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
