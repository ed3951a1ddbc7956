"""`/metrics` in the Prometheus text format, behind `SMSBOT_METRICS_TOKEN` when it is set.

Counts are read at scrape time from the database and Redis, so every web process answers the same
numbers whatever process did the work (gunicorn workers, RQ workers, other machines): inbound messages
by carrier and outcome, outbound messages by current status, queue depth and failed jobs. The two latency
histograms (webhook handling, carrier submission) are observed where the work happens and kept as bucket
counters in one Redis hash each, which every process increments; a scrape reads them back. So no
prometheus_client multiprocess directory is needed, and a Redis outage only loses observations.
A process buffers its observations and sends them in one pipelined round trip at most every
METRICS_FLUSH_SECONDS (a timer started by the first observation after a flush, and a scrape answered by
this process): a webhook pays no Redis write of its own, and the histograms lag up to about a second.
"""

from __future__ import annotations

import atexit
import hmac
import logging
import threading
import time
import weakref
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from flask import Flask, Response, current_app, g, request
from peewee import fn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from redis.exceptions import RedisError
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from bot import carriers
from bot.pipeline import statuses
from bot.pipeline.queue import get_queue
from bot.redis_conn import get_redis
from models import Carrier, InboundMessage, OutboundMessage

log = logging.getLogger("smsbot.metrics")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HISTOGRAMS = {
    "webhook": ("smsbot_webhook_seconds", "Time to answer a carrier webhook", ("carrier", "action")),
    "send": ("smsbot_send_seconds", "Time to submit a message to its carrier", ("carrier", "result")),
}


def histogram_key(name: str) -> str:
    return f"smsbot:metrics:{name}"


class Buffer:
    """Observations of one process not yet added to the Redis hashes: {(histogram, field): amount}."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.pending: Counter[tuple[str, str]] = Counter()
        self.timer: threading.Timer | None = None

    def add(self, name: str, labels: tuple[str, ...], seconds: float) -> None:
        bucket = next((str(bound) for bound in BUCKETS if seconds <= bound), "+Inf")
        prefix = "\x1f".join(labels)
        with self.lock:
            self.pending[(name, f"{prefix}\x1e{bucket}")] += 1
            self.pending[(name, f"{prefix}\x1esum")] += seconds
            if self.timer is None:
                self.timer = threading.Timer(float(self.app.config["METRICS_FLUSH_SECONDS"]), self.flush)
                self.timer.daemon = True
                self.timer.start()

    def flush(self) -> None:
        """Send what is pending in one round trip (never raises: metrics are best effort)."""
        with self.lock:
            pending, self.pending = self.pending, Counter()
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
        if not pending:
            return
        try:
            pipe = get_redis(self.app).pipeline(transaction=False)
            for (name, field), amount in pending.items():
                if field.endswith("\x1esum"):
                    pipe.hincrbyfloat(histogram_key(name), field, amount)
                else:
                    pipe.hincrby(histogram_key(name), field, int(amount))
            pipe.execute()
        except RedisError as exc:
            log.debug("%d metric observations not recorded: %s", len(pending), exc)


_buffers: weakref.WeakSet[Buffer] = weakref.WeakSet()


@atexit.register
def flush_all() -> None:
    """A process on its way out sends what it still holds."""
    for buffer in list(_buffers):
        buffer.flush()


def observe(name: str, labels: tuple[str, ...], seconds: float) -> None:
    """Count one observation in the shared Redis histogram `name`, within about a second (see above)."""
    observe_many(name, [(labels, seconds)])


def observe_many(name: str, observations: Iterable[tuple[tuple[str, ...], float]]) -> None:
    """Count observations in the shared Redis histogram `name`, within about a second (never raises)."""
    buffer: Buffer = current_app.extensions["smsbot.metrics"]
    for labels, seconds in observations:
        buffer.add(name, labels, seconds)


def send_result(outcome: carriers.Submitted | BaseException) -> str:
    """The `result` label of a carrier submission: its answer, or the exception it raised."""
    if isinstance(outcome, carriers.Submitted):
        return "accepted"
    if isinstance(outcome, carriers.SendError):
        return "retryable" if outcome.retryable else "rejected"
    return "error"


def outcome_label(action: str, outcome: str) -> str:
    """A small set of values: the router's action, else why nothing was done."""
    if action:
        return action
    if outcome == "unrouted":
        return "unrouted"
    return "not answered" if outcome.startswith("not answered") else "no action"


class Collector:
    """Reads every metric at scrape time (see the module docstring)."""

    def collect(self) -> Iterator[Any]:
        yield self.inbound()
        yield self.outbound()
        yield from self.queue()
        for name in HISTOGRAMS:
            yield self.histogram(name)

    def inbound(self) -> CounterMetricFamily:
        family = CounterMetricFamily(
            "smsbot_inbound_messages", "Inbound SMS stored, by carrier and outcome", labels=["carrier", "outcome"]
        )
        rows = (
            InboundMessage.select(
                Carrier.name, InboundMessage.action, InboundMessage.outcome, fn.COUNT(InboundMessage.id)
            )
            .join(Carrier)
            .group_by(Carrier.name, InboundMessage.action, InboundMessage.outcome)
            .tuples()
        )
        totals: Counter[tuple[str, str]] = Counter()
        for carrier, action, outcome, count in rows:
            totals[(carrier, outcome_label(action, outcome))] += count
        for labels, count in sorted(totals.items()):
            family.add_metric(list(labels), count)
        return family

    def outbound(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "smsbot_outbound_messages",
            "Outbound messages by current status",
            labels=["status", "status_name", "status_group"],
        )
        rows = (
            OutboundMessage.select(OutboundMessage.status, fn.COUNT(OutboundMessage.id))
            .group_by(OutboundMessage.status)
            .order_by(OutboundMessage.status)
            .tuples()
        )
        for code, count in rows:
            family.add_metric([str(code), statuses.name(code), statuses.group(code)], count)
        return family

    def queue(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("smsbot_queue_jobs", "Jobs waiting in the RQ queue", labels=["queue", "state"])
        failed = GaugeMetricFamily("smsbot_failed_jobs", "Jobs in RQ's failed job registry", labels=["queue"])
        up = GaugeMetricFamily("smsbot_redis_up", "Whether Redis answered this scrape")
        queue = get_queue()
        try:
            depth.add_metric([queue.name, "queued"], queue.count)
            depth.add_metric([queue.name, "scheduled"], ScheduledJobRegistry(queue=queue).count)
            failed.add_metric([queue.name], FailedJobRegistry(queue=queue).count)
            up.add_metric([], 1)
        except RedisError:
            up.add_metric([], 0)
        yield from (depth, failed, up)

    def histogram(self, name: str) -> HistogramMetricFamily:
        metric, text, label_names = HISTOGRAMS[name]
        family = HistogramMetricFamily(metric, text, labels=list(label_names))
        try:
            raw = get_redis(current_app).hgetall(histogram_key(name))
        except RedisError:
            return family
        series: dict[tuple[str, ...], dict[str, float]] = {}
        for field, value in raw.items():
            field = field.decode() if isinstance(field, bytes) else field
            prefix, _, part = field.rpartition("\x1e")
            series.setdefault(tuple(prefix.split("\x1f")), {})[part] = float(value)
        for labels, parts in sorted(series.items()):
            running, buckets = 0.0, []
            for bound in [*map(str, BUCKETS), "+Inf"]:
                running += parts.get(bound, 0)
                buckets.append((bound, running))
            family.add_metric(list(labels), buckets, parts.get("sum", 0.0))
        return family


def scrape() -> Response:
    token = str(current_app.config.get("METRICS_TOKEN") or "")  # from_prefixed_env reads "123" as a number
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            return Response(
                "a valid metrics token is required\n", 401, {"WWW-Authenticate": "Bearer"}, mimetype="text/plain"
            )
    current_app.extensions["smsbot.metrics"].flush()  # this process's own observations are not behind
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())  # type: ignore[arg-type]
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    _buffers.add(app.extensions.setdefault("smsbot.metrics", Buffer(app)))
    app.add_url_rule("/metrics", "metrics", scrape, methods=["GET"])

    @app.before_request
    def start_clock() -> None:
        if request.blueprint == "webhooks":
            g.metrics_started = time.perf_counter()

    @app.after_request
    def time_webhook(response: Response) -> Response:
        started = g.pop("metrics_started", None)
        # An unknown carrier name (404) is not a label: anyone could invent them.
        if started is not None and response.status_code != 404 and request.url_rule and request.view_args:
            action = request.url_rule.rule.rsplit("/", 1)[-1]
            observe("webhook", (request.view_args.get("name", ""), action), time.perf_counter() - started)
        return response
