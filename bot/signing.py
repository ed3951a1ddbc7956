"""Our own webhook signature, on requests we receive and send (generic carriers, simulator, business URLs).

`X-Smsbot-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>`, the Stripe scheme:
the timestamp inside the signed text defeats replays older than the tolerance.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from flask import current_app

from bot.carriers import WebhookError

HEADER = "X-Smsbot-Signature"


def account_secret(account_id: int) -> str:
    """The secret that signs what we send to an account's own URLs (bot forwards, status callbacks)."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"forward:{account_id}".encode(), hashlib.sha256).hexdigest()


def signed_json(account_id: int, body: bytes) -> dict[str, str]:
    """The headers of a JSON body we POST to an account's own URL, signed with its account secret."""
    return json_headers(account_secret(account_id), body)


def json_headers(secret: str, body: bytes) -> dict[str, str]:
    """The headers of a JSON body signed with `secret` (as a generic carrier and we sign them)."""
    return {"Content-Type": "application/json", HEADER: sign(secret, body)}


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value for `body`, signed now (or at `timestamp`)."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(secret: str, body: bytes, header: str | None, tolerance: int) -> None:
    """Raise WebhookError 401 without a signature, 403 for a wrong or stale one."""
    if not header:
        raise WebhookError(401, f"missing {HEADER} header", HEADER)
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields.get("t", ""))
    except ValueError:
        raise WebhookError(403, "malformed signature timestamp", HEADER) from None
    if abs(time.time() - timestamp) > tolerance:
        raise WebhookError(403, "signature timestamp outside the tolerance", HEADER)
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    if not hmac.compare_digest(expected.encode(), fields.get("v1", "").encode("utf-8", "surrogatepass")):
        raise WebhookError(403, "signature does not match", HEADER)
