"""Leased rows of the outbox (an effect, a group send's batch, a contact import): the row, not RQ, says
what is left to do, and the job that does it first claims the row for OUTBOX_LEASE_SECONDS with one
conditional UPDATE. A duplicated job finds the row taken and does nothing; a worker that dies leaves a
lease that lapses, and the sweeper enqueues the row's job again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from peewee import Expression, Model

from bot.pipeline.queue import enqueue_job
from models import utcnow


def lease_end() -> datetime:
    return utcnow() + timedelta(seconds=current_app.config["OUTBOX_LEASE_SECONDS"])


def unleased(model: type[Model]) -> Expression:
    """Rows no job holds: never claimed, or their lease lapsed."""
    return model.lease_until.is_null() | (model.lease_until < utcnow())


def claim(model: type[Model], row_id: object, unfinished: Expression, **changes: object) -> bool:
    """Take the row for a lease if it still has work (`unfinished`) and no job holds it; `changes` are
    written with the lease."""
    taken = model.update(lease_until=lease_end(), **changes).where((model.id == row_id) & unfinished & unleased(model))
    return bool(taken.execute())


def resume_stalled(model: type[Model], unfinished: Expression, job: str) -> int:
    """The sweeper's step for rows worked a slice at a time: enqueue `job` again for each unfinished row
    whose lease lapsed, or that no job has held for OUTBOX_GRACE_SECONDS (its next job never came).
    `updated_at` moves to now, so the next sweep leaves the row to that job for a grace period."""
    now = utcnow()
    settled = now - timedelta(seconds=current_app.config["OUTBOX_GRACE_SECONDS"])
    stalled = model.select(model.id).where(
        unfinished & ((model.lease_until < now) | (model.lease_until.is_null() & (model.updated_at < settled)))
    )
    resumed = 0
    for row in list(stalled):  # read to the end first: SQLite refuses a write while the SELECT is open
        if enqueue_job(job, row.id):
            model.update(updated_at=now, lease_until=None).where((model.id == row.id) & unleased(model)).execute()
            resumed += 1
    return resumed
