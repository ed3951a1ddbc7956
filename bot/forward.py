"""Bots behind a URL: an inbound SMS is POSTed, signed, to the business; a `{"reply": "…"}` answer becomes
the reply through the normal pipeline, so a business can run its own chat bot.

The request is the generic inbound JSON plus the matched keyword, signed with X-Smsbot-Signature
(SPEC §6) using the account's forward secret (`GET /api/v1/account/forward-secret`, admins only).
URLs that resolve to a non-public address (bot/netguard.py) are refused unless FORWARD_ALLOW_PRIVATE is
set; the check runs when the URL is saved and again before every request, which connects to the very
address that was checked (no second DNS lookup), so a DNS change cannot point an accepted URL inside
our network. A forward is an outbox effect (bot/outbox.py): timeouts, 429 and 5xx are retried after
FORWARD_RETRY_INTERVALS; after the last try the inbound's outcome says so. The JSON's `id` (the
inbound's id) is the business's idempotency key. An answer that is not JSON with a string `reply` sends
nothing and is recorded on the inbound; an empty reply or a 204 means "no reply".
"""

from __future__ import annotations

import json
import logging

import requests
from flask import current_app

from bot import netguard, signing
from bot.outbox import Failed
from bot.pipeline.inbound import reply_to_inbound
from models import Effect, InboundMessage, db

log = logging.getLogger("smsbot.forward")


ForwardRefused = netguard.Refused


def check_url(url: str) -> None:
    """Refuse a URL that is not http(s) or that resolves to a non-public address (unless allowed)."""
    if current_app.config["FORWARD_ALLOW_PRIVATE"]:
        netguard.check_scheme(url)
    else:
        netguard.resolve(url, allow_private=False)


def mark(message_id: int, outcome: str) -> None:
    InboundMessage.update(outcome=outcome[:250]).where(InboundMessage.id == message_id).execute()


def deliver(effect: Effect) -> str:
    """The outbox handler of a "forward" effect: POST the inbound to the business URL, use its answer."""
    message = effect.inbound
    account = message.number.account
    url, keyword = effect.payload["url"], effect.payload.get("keyword", "")
    payload = {
        "id": str(message.id),
        "from": message.sender,
        "to": message.recipient,
        "text": message.body,
        "received_at": message.received_at.isoformat() + "Z",
        "keyword": keyword,
    }
    body = json.dumps(payload).encode()
    # The inbound's id is the business's key: the same on every retry and replay of this forward.
    headers = {**signing.signed_json(account.id, body), "Idempotency-Key": str(message.id)}
    try:
        answer = netguard.post_to_account_url(url, body, headers, current_app.config["FORWARD_TIMEOUT_SECONDS"])
    except ForwardRefused as exc:
        raise Failed(f"forward refused: {exc}", retryable=False) from None
    except requests.RequestException as exc:
        raise Failed(f"forward failed: {exc.__class__.__name__}: {exc}") from None
    if answer.status_code == 429 or answer.status_code >= 500:
        detail = f"forward failed: HTTPError: HTTP {answer.status_code}"
        raise Failed(detail, http_status=answer.status_code, answer=answer.text[:1024])
    return use_answer(message, answer)


def gave_up(effect: Effect, detail: str) -> None:
    """The inbound's outcome says why its forward was given up."""
    mark(effect.inbound_id, detail)


def use_answer(message: InboundMessage, answer: requests.Response) -> str:
    if answer.status_code == 204 or not answer.content.strip():
        mark(message.id, "forwarded")
        return "forwarded"
    try:
        data = answer.json()
        reply = data.get("reply", "") if isinstance(data, dict) else None
    except ValueError:
        reply = None
    if answer.status_code >= 400 or not isinstance(reply, str):
        mark(message.id, f'forward error: HTTP {answer.status_code}, not a JSON {{"reply": …}} answer')
        return "error"
    with db.atomic():
        if reply.strip():
            reply_to_inbound(message, reply)
        mark(message.id, "forwarded, replied" if reply.strip() else "forwarded")
    return "replied" if reply.strip() else "forwarded"
