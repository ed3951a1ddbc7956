"""The outbox: every side effect of a stored cause (a business forward, an e-mail copy, a status
callback) is an Effect row written in the cause's transaction, then done by a job enqueued after commit.

The row, not RQ, says what is due: `state` pending and `due_at` passed. A job claims the row with a
conditional UPDATE (a lease), so a duplicated job does nothing; a failed try sets `due_at` from the kind's
backoff and enqueues the next try at that time; the sweeper enqueues again whatever is due, unfinished and
unclaimed for longer than OUTBOX_GRACE_SECONDS, so a Redis restarted empty loses no effect and no retry.
Effects are done at least once: a handler must be safe to repeat (its idempotency key is the row id).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app

from bot import audit, rows
from bot.pipeline import leases
from bot.pipeline.queue import enqueue_job, enqueue_job_after_commit
from models import Effect, InboundMessage, OutboundMessage, db, utcnow

log = logging.getLogger("smsbot.outbox")
JOB = "bot.effects.perform"


class Failed(Exception):
    """A try that did not do the effect; `retryable` ones are tried again after the kind's backoff.

    `http_status` and `answer` are what the other side said, kept in the effect's log of tries."""

    def __init__(
        self, detail: str, *, retryable: bool = True, http_status: int | None = None, answer: str = ""
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retryable = retryable
        self.http_status = http_status
        self.answer = answer

    def logged(self) -> dict[str, object]:
        return {"outcome": f"failed: {self.detail}", "http_status": self.http_status, "answer": self.answer[:1024]}


@dataclass(frozen=True)
class Kind:
    """How to do one kind of effect: the handler, the config key of its backoff, what to record on giving up."""

    handler: Callable[[Effect], str]
    retry_intervals: str
    on_failure: Callable[[Effect, str], None] | None = None


def add(
    kind: str, *, inbound: InboundMessage | None = None, message: OutboundMessage | None = None, **payload: object
) -> Effect:
    """Write an effect in the current transaction; its job is enqueued once the transaction commits."""
    effect = Effect.create(kind=kind, inbound=inbound, message=message, payload=payload)
    enqueue_job_after_commit(JOB, effect.id)
    return effect


def add_for_messages(kind: str, messages: Sequence[OutboundMessage]) -> None:
    """`add` of one effect per message, in one INSERT (a chunk of a group send); jobs after the commit."""
    effects = [{"kind": kind, "message": message.id} for message in messages]
    ids = [effect_id for (effect_id,) in rows.insert(Effect, effects, returning=(Effect.id,))]
    if ids:
        db.after_commit(lambda: [enqueue_job(JOB, effect_id) for effect_id in ids])


def claim(effect_id: int) -> bool:
    due = (Effect.state == "pending") & (Effect.due_at <= utcnow())
    return leases.claim(Effect, effect_id, due, attempts=Effect.attempts + 1)


def perform(effect_id: int, kinds: Mapping[str, Kind]) -> str:
    """One try of an effect (the job): claim it, run its kind's handler, record done, a retry or the failure."""
    if not claim(effect_id):
        return "skipped"  # done, failed, not due yet, or being tried by another job
    effect = Effect.get_by_id(effect_id)
    kind = kinds[effect.kind]
    try:
        outcome = kind.handler(effect)
    except Failed as exc:
        log_try(effect, exc.logged())
        return retry_or_give_up(effect, kind, exc.detail, exc.retryable)
    except Exception as exc:
        log.exception("effect %s (%s): try %s raised", effect.id, effect.kind, effect.attempts)
        log_try(effect, Failed(f"{exc.__class__.__name__}: {exc}").logged())
        return retry_or_give_up(effect, kind, f"{exc.__class__.__name__}: {exc}", True)
    log_try(effect, {"outcome": outcome})
    Effect.update(state="done", done_at=utcnow(), lease_until=None).where(Effect.id == effect.id).execute()
    return outcome


def log_try(effect: Effect, entry: dict[str, object]) -> None:
    """Append one try to the effect's log (the claim makes this job its only writer)."""
    effect.tries = [*effect.tries, {"at": utcnow().isoformat(timespec="seconds") + "Z", **entry}]
    Effect.update(tries=effect.tries).where(Effect.id == effect.id).execute()


def replay(effect: Effect) -> bool:
    """Try a failed effect again from its first try's backoff; False unless it had failed."""
    replayed = (
        Effect.update(state="pending", attempts=0, due_at=utcnow(), lease_until=None, done_at=None, last_error="")
        .where((Effect.id == effect.id) & (Effect.state == "failed"))
        .execute()
    )
    if replayed:
        audit.record("delivery.replay", effect, {"state": "failed"}, {"state": "pending"})
        enqueue_job_after_commit(JOB, effect.id)
    return bool(replayed)


def retry_or_give_up(effect: Effect, kind: Kind, detail: str, retryable: bool) -> str:
    intervals = current_app.config[kind.retry_intervals]
    if retryable and effect.attempts <= len(intervals):
        wait = intervals[effect.attempts - 1]
        due = utcnow() + timedelta(seconds=wait)
        Effect.update(due_at=due, lease_until=None, last_error=detail[:250]).where(Effect.id == effect.id).execute()
        log.warning(
            "effect %s (%s): try %s failed, next in %s s: %s", effect.id, effect.kind, effect.attempts, wait, detail
        )
        enqueue_job(JOB, effect.id, at=due)
        return "retry"
    with db.atomic():
        Effect.update(state="failed", done_at=utcnow(), lease_until=None, last_error=detail[:250]).where(
            Effect.id == effect.id
        ).execute()
        if kind.on_failure is not None:
            kind.on_failure(effect, detail)
    log.warning("effect %s (%s): given up after %s tries: %s", effect.id, effect.kind, effect.attempts, detail)
    return "failed"


def requeue_due() -> int:
    """The sweeper's step: enqueue every effect due for longer than the grace and not claimed.

    `due_at` moves to now for each one enqueued, so the next sweep leaves it to that job for a grace period.
    """
    now = utcnow()
    overdue = now - timedelta(seconds=current_app.config["OUTBOX_GRACE_SECONDS"])
    due = Effect.select(Effect.id).where(
        (Effect.state == "pending") & (Effect.due_at < overdue) & leases.unleased(Effect)
    )
    requeued = 0
    for effect in list(due):  # read to the end first: a write while the SELECT is open is refused by SQLite
        if enqueue_job(JOB, effect.id):
            Effect.update(due_at=now).where((Effect.id == effect.id) & (Effect.state == "pending")).execute()
            requeued += 1
    return requeued
