"""RQ queues and enqueueing: ids in, fresh state loaded by the job; Redis down is logged, never raised."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app
from redis.exceptions import RedisError
from rq import Queue, Retry

from bot.redis_conn import get_redis

SEND_JOB_PREFIX = "send-"


def get_queue() -> Queue:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    queues = app.extensions.setdefault("rq_queues", {})
    name = app.config["QUEUE_NAME"]
    if name not in queues:
        queues[name] = Queue(name, connection=get_redis(app))
    return queues[name]


def send_job_id(message_id: int) -> str:
    return f"{SEND_JOB_PREFIX}{message_id}"


def enqueue_send(message_id: int, send_at: datetime | None = None, *, reserved: bool = False) -> bool:
    """Enqueue the send job of a message; False (logged) when Redis is unreachable.

    The message row is the outbox: a message that could not be enqueued stays queued in the database
    and the outbox sweeper enqueues it later, so a Redis outage loses nothing. A job re-scheduled by the
    send governor for its `reserved` moment gets an id of its own (the running job still has the plain one).
    """
    queue = get_queue()
    intervals = current_app.config["SEND_RETRY_INTERVALS"]
    options = {
        "job_id": f"{send_job_id(message_id)}-at-{send_at:%H%M%S%f}"
        if reserved and send_at
        else send_job_id(message_id),
        "retry": Retry(max=len(intervals), interval=intervals) if intervals else None,
        "job_timeout": current_app.config["SEND_TIMEOUT_SECONDS"] * 3,
        "result_ttl": 600,
        "failure_ttl": 7 * 24 * 3600,
    }
    try:
        if send_at and send_at > datetime.now(UTC).replace(tzinfo=None):
            queue.enqueue_at(
                send_at.replace(tzinfo=UTC), "bot.pipeline.jobs.send_message", message_id, reserved, **options
            )
        else:
            queue.enqueue("bot.pipeline.jobs.send_message", message_id, reserved, **options)
    except RedisError as exc:
        current_app.logger.warning("message %s not enqueued, left in the outbox: %s", message_id, exc)
        return False
    return True


def enqueue_sends(message_ids: list[int], send_at: datetime | None = None) -> bool:
    """Enqueue the send jobs of messages due at one moment (a chunk of a group send); False when any was
    not (logged: those stay in the outbox for the sweeper)."""
    return all([enqueue_send(message_id, send_at) for message_id in message_ids])


def enqueue_job(func: str, *args: object, at: datetime | None = None, job_id: str | None = None) -> bool:
    """Enqueue a job of the outbox (an effect, a fan-out chunk) by its row id; False (logged) if Redis is down.

    The row says whether the work is due, so a lost or duplicated job changes nothing: the sweeper
    enqueues again what is due and unfinished, and the job's claim on the row turns a second one into a no-op.
    """
    queue = get_queue()
    options = {"job_id": job_id, "result_ttl": 600, "failure_ttl": 7 * 24 * 3600}
    try:
        if at is not None and at > datetime.now(UTC).replace(tzinfo=None):
            queue.enqueue_at(at.replace(tzinfo=UTC), func, *args, **options)
        else:
            queue.enqueue(func, *args, **options)
    except RedisError as exc:
        current_app.logger.warning("job %s%s not enqueued, the sweeper will: %s", func, args, exc)
        return False
    return True


def enqueue_job_after_commit(func: str, *args: object) -> None:
    """`enqueue_job` once the current transaction commits (at once outside one)."""
    from models import db

    db.after_commit(lambda: enqueue_job(func, *args))
