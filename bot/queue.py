"""RQ queues and the send job's enqueueing: ids in, fresh state loaded by the job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import current_app
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job

from bot.redis_conn import get_redis

SEND_JOB_PREFIX = "send-"
LIVE_JOB_STATUSES = ("queued", "scheduled", "started", "deferred")


def get_queue() -> Queue:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    queues = app.extensions.setdefault("rq_queues", {})
    name = app.config["QUEUE_NAME"]
    if name not in queues:
        queues[name] = Queue(name, connection=get_redis(app))
    return queues[name]


def send_job_id(message_id: int) -> str:
    return f"{SEND_JOB_PREFIX}{message_id}"


def enqueue_send(message_id: int, send_at: datetime | None = None) -> bool:
    """Enqueue the send job of a message; False (logged) when Redis is unreachable.

    The message row is the outbox: a message that could not be enqueued stays queued in the database
    and the outbox sweeper enqueues it later, so a Redis outage loses nothing.
    """
    queue = get_queue()
    intervals = current_app.config["SEND_RETRY_INTERVALS"]
    options = {
        "job_id": send_job_id(message_id),
        "retry": Retry(max=len(intervals), interval=intervals) if intervals else None,
        "job_timeout": current_app.config["SEND_TIMEOUT_SECONDS"] * 3,
        "result_ttl": 600,
        "failure_ttl": 7 * 24 * 3600,
    }
    try:
        if send_at and send_at > datetime.now(UTC).replace(tzinfo=None):
            queue.enqueue_at(send_at.replace(tzinfo=UTC), "bot.jobs.send_message", message_id, **options)
        else:
            queue.enqueue("bot.jobs.send_message", message_id, **options)
    except RedisError as exc:
        current_app.logger.warning("message %s not enqueued, left in the outbox: %s", message_id, exc)
        return False
    return True


def has_live_job(message_id: int) -> bool:
    """Whether a send job for the message is queued, scheduled or running (not finished or failed)."""
    try:
        job = Job.fetch(send_job_id(message_id), connection=get_redis(current_app))
    except NoSuchJobError:
        return False
    return job.get_status() in LIVE_JOB_STATUSES


def enqueue_in(delay: timedelta, func: str, *args: object, job_id: str) -> None:
    get_queue().enqueue_in(delay, func, *args, job_id=job_id, result_ttl=0)


def enqueue_after_commit(func: str, *args: object, retry_intervals: list[int] | None = None) -> None:
    """Enqueue a job once the current transaction commits (at once outside one); ids as arguments.

    If Redis is down the job is logged and dropped: the inbound row it serves is already stored.
    """
    retry = Retry(max=len(retry_intervals), interval=retry_intervals) if retry_intervals else None
    queue = get_queue()

    def enqueue() -> None:
        try:
            queue.enqueue(func, *args, retry=retry, result_ttl=600)
        except RedisError as exc:
            current_app.logger.warning("job %s%s not enqueued: %s", func, args, exc)

    from models import db

    db.after_commit(enqueue)
