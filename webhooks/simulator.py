"""simulator: a carrier with no network, for `make run`, the chat simulator and tests.

It speaks the generic format (webhooks/generic.py) on both webhooks. With an empty secret it accepts
unsigned requests, so a developer can `curl` an inbound SMS; with a secret it checks signatures like
generic. It exists in development and tests only: production refuses it (bot/environment.py).
What it "sends" is logged (recipient masked) and pushed to the Redis list
`smsbot:simulator:<carrier name>`; then an RQ job posts delivery reports back through our real status
webhook over HTTP, as a carrier would: 112 → 113 → 201 by default. `fail_recipient(name, phone, code)`
makes every message to that phone end with `code` instead (e.g. 501 UnknownSubscriber).
"""

from __future__ import annotations

import json
import logging
import uuid

import requests
from flask import Request, current_app

from bot import signing
from bot.carriers import Submission, Submitted, register
from bot.phones import mask
from bot.pipeline import statuses
from bot.pipeline.queue import get_queue
from bot.redis_conn import get_redis
from models import Carrier
from webhooks.generic import Generic

log = logging.getLogger("smsbot.simulator")
DELIVERY_TRAIL = (statuses.Status.DELIVERED_TO_CARRIER, statuses.Status.DELIVERED_TO_GSM)
# The simulator reports our own codes, so its status map is the identity on them.
STATUS_MAP = {code.value: code for code in statuses.Status}


def outbox_key(carrier_name: str) -> str:
    return f"smsbot:simulator:{carrier_name}"


def failures_key(carrier_name: str) -> str:
    return f"smsbot:simulator:{carrier_name}:fail"


def fail_recipient(carrier_name: str, phone: str, code: int) -> None:
    """Make the simulator end every message to `phone` with `code`."""
    get_redis(current_app).hset(failures_key(carrier_name), phone, int(code))


def sent_messages(carrier_name: str) -> list[dict]:
    """What the simulator has "sent", oldest first."""
    return [json.loads(raw) for raw in get_redis(current_app).lrange(outbox_key(carrier_name), 0, -1)]


@register
class Simulator(Generic):
    """The generic formats on both webhooks; only signing (optional) and sending differ."""

    kind = "simulator"
    development_only = True  # refused in production (bot/environment.py)

    def verify(self, carrier: Carrier, request: Request) -> None:
        if carrier.secret:
            super().verify(carrier, request)

    def submit(self, carrier: Carrier, submission: Submission) -> Submitted:
        upstream_id = f"sim-{uuid.uuid4().hex[:12]}"
        redis = get_redis(current_app)
        record = {
            "id": upstream_id,
            "message_id": submission.message_id,
            "from": submission.sender,
            "to": submission.recipient,
            "text": submission.text,
        }
        redis.rpush(outbox_key(carrier.name), json.dumps(record))
        log.info(
            "simulator %s sends %s to %s: %s", carrier.name, upstream_id, mask(submission.recipient), submission.text
        )
        failure = redis.hget(failures_key(carrier.name), submission.recipient)
        trail = [*map(int, DELIVERY_TRAIL), int(failure or statuses.Status.DELIVERED_TO_HANDSET)]
        get_queue().enqueue(report_back, submission.status_url, carrier.secret, upstream_id, trail, result_ttl=0)
        return Submitted(upstream_id, statuses.Status.DELIVERED_TO_GATEWAY)


def report_back(status_url: str, secret: str, upstream_id: str, trail: list[int]) -> None:
    """Post each delivery report of `trail` to our status webhook, signed, as the carrier would."""
    for code in trail:
        body = json.dumps({"id": upstream_id, "status": int(code)}).encode()
        headers = signing.json_headers(secret, body)
        answer = requests.post(status_url, data=body, headers=headers, timeout=10)
        answer.raise_for_status()
