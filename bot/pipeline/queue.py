"""RQ queues and enqueueing: ids in, fresh state loaded by the job; Redis down is logged, never raised."""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from datetime import UTC, datetime

from flask import current_app
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import Queue
from rq.registry import ScheduledJobRegistry

from bot.db import at_commit
from bot.redis_conn import get_redis
from models import db, utcnow

SEND_JOB_PREFIX = "send-"
SEND_JOB = "bot.pipeline.jobs.send_messages"


def get_queue() -> Queue:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    queues = app.extensions.setdefault("rq_queues", {})
    name = app.config["QUEUE_NAME"]
    if name not in queues:
        queues[name] = Queue(name, connection=get_redis(app))
    return queues[name]


class PreciseRegistry(ScheduledJobRegistry):
    """RQ's registry of scheduled jobs, to the microsecond: RQ scores a job by whole seconds and moves
    it once the whole second has begun, so a job for 12:00:01.7 went at 12:00:01.0. A paced group
    (bot/pipeline/governor.py) then came up to a second before its moment, was refused by the window and
    went round again; a retry after half a second went at once."""

    def schedule(self, job, scheduled_datetime: datetime, pipeline=None):  # type: ignore[no-untyped-def]
        if scheduled_datetime.tzinfo is None:
            scheduled_datetime = scheduled_datetime.replace(tzinfo=UTC)  # ours are UTC (RQ assumes local)
        return (pipeline if pipeline is not None else self.connection).zadd(
            self.key, {job.id: scheduled_datetime.timestamp()}
        )

    def get_jobs_to_schedule(self, timestamp: float | None = None, chunk_size: int = 1000) -> list[str]:
        return super().get_jobs_to_schedule(time.time(), chunk_size)  # type: ignore[arg-type]


def enqueue_at(
    queue: Queue, at: datetime, func: str, *args: object, pipeline: Pipeline | None = None, **options: object
) -> None:
    """`queue.enqueue_at`, its moment kept to the microsecond (`PreciseRegistry`), in one transaction:
    `pipeline`'s when given (the caller executes it), else its own."""
    with nullcontext(pipeline) if pipeline is not None else queue.connection.pipeline() as pipe:
        job = queue.enqueue_at(at.replace(tzinfo=UTC), func, *args, pipeline=pipe, **options)
        PreciseRegistry(queue=queue).schedule(job, at, pipeline=pipe)
        if pipeline is None:
            pipe.execute()


def send_job_id(message_id: int) -> str:
    return f"{SEND_JOB_PREFIX}{message_id}"


def enqueue_sends(
    message_ids: list[int], send_at: datetime | None = None, *, reserved: bool = False, again: bool = False
) -> bool:
    """Enqueue send jobs of SEND_CHUNK messages each (bot/pipeline/handoff.py); False (logged) when Redis
    is unreachable, then the messages not enqueued are left to the sweeper.

    The message rows are the outbox: a message that could not be enqueued stays queued in the database
    and the outbox sweeper enqueues it later, so a Redis outage loses nothing. A job of one message has
    the id `send-<id>`; a job a send job schedules itself (`again`: a re-try, or `reserved`: re-scheduled
    by the send governor for the messages' moment) gets an id of its own, since the running job may still
    hold the plain one. A job of several messages gets a random id. Jobs are not retried by RQ: a send
    job schedules the retry of each message that failed (bot/pipeline/handoff.py). All the jobs go to
    Redis in one transaction (one round trip): all are enqueued, or none.
    """
    config = current_app.config
    size = max(1, config["SEND_CHUNK"])
    now = utcnow()
    queue = get_queue()
    try:
        with queue.connection.pipeline() as pipe:
            for start in range(0, len(message_ids), size):
                chunk = list(message_ids[start : start + size])
                rounds = math.ceil(len(chunk) / max(1, config["SEND_CONCURRENCY"]))
                options = {
                    "job_id": job_id_for(chunk, send_at or now, reserved or again),
                    "job_timeout": config["SEND_TIMEOUT_SECONDS"] * 3 * rounds,
                    "result_ttl": 600,
                    "failure_ttl": 7 * 24 * 3600,
                }
                if send_at and send_at > now:
                    enqueue_at(queue, send_at, SEND_JOB, chunk, reserved, pipeline=pipe, **options)
                else:
                    queue.enqueue(SEND_JOB, chunk, reserved, pipeline=pipe, **options)
            pipe.execute()
    except RedisError as exc:
        current_app.logger.warning("%s messages not enqueued, left in the outbox: %s", len(message_ids), exc)
        return False
    return True


class SendsAtCommit:
    """The send jobs of every message accepted in one transaction, enqueued in chunks when it commits (a
    loop of single sends in one transaction makes chunk jobs, as a group send does). A rollback drops it
    with peewee's other commit callbacks."""

    def __init__(self) -> None:
        self.due: dict[datetime | None, list[int]] = {}

    def __call__(self) -> None:
        for send_at, message_ids in self.due.items():
            enqueue_sends(message_ids, send_at)


def enqueue_sends_at_commit(message_ids: list[int], send_at: datetime | None = None) -> None:
    """`enqueue_sends` once the current transaction commits (at once outside one), with the messages that
    other accepts of the same transaction queued."""
    pending = at_commit(SendsAtCommit)
    if pending is None:
        enqueue_sends(message_ids, send_at)
        return
    pending.due.setdefault(send_at, []).extend(message_ids)


def job_id_for(message_ids: list[int], at: datetime, own: bool) -> str | None:
    if len(message_ids) != 1:
        return None
    return f"{send_job_id(message_ids[0])}-at-{at:%H%M%S%f}" if own else send_job_id(message_ids[0])


def enqueue_job(func: str, *args: object, at: datetime | None = None, job_id: str | None = None) -> bool:
    """Enqueue a job of the outbox (an effect, a fan-out chunk) by its row id; False (logged) if Redis is down.

    The row says whether the work is due, so a lost or duplicated job changes nothing: the sweeper
    enqueues again what is due and unfinished, and the job's claim on the row turns a second one into a no-op.
    """
    queue = get_queue()
    options = {"job_id": job_id, "result_ttl": 600, "failure_ttl": 7 * 24 * 3600}
    try:
        if at is not None and at > utcnow():
            enqueue_at(queue, at, func, *args, **options)
        else:
            queue.enqueue(func, *args, **options)
    except RedisError as exc:
        current_app.logger.warning("job %s%s not enqueued, the sweeper will: %s", func, args, exc)
        return False
    return True


def enqueue_job_after_commit(func: str, *args: object) -> None:
    """`enqueue_job` once the current transaction commits (at once outside one)."""
    db.after_commit(lambda: enqueue_job(func, *args))
