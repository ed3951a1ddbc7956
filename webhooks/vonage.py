"""vonage: the Vonage (Nexmo) SMS API.

Inbound SMS (form or JSON POST; a long message arrives in parts with concat fields):
    {"msisdn": "46731234567", "to": "46700000001", "messageId": "0A0000000123ABCD1", "text": "SAVE Anna",
     "type": "text", "keyword": "SAVE", "message-timestamp": "2026-11-24 21:04:11",
     "concat": "true", "concat-ref": "108", "concat-total": "2", "concat-part": "1"}
Delivery receipt:
    {"msisdn": "46731234567", "to": "Shop", "network-code": "24001", "messageId": "0A0000000123ABCD1",
     "price": "0.03330000", "status": "delivered", "scts": "2611242104", "err-code": "0",
     "message-timestamp": "2026-11-24 21:04:11"}
Webhooks are signed with the account's signature secret (Carrier.signature_secret, not the API secret)
by the method chosen in Vonage's dashboard (Carrier.signature_method), sms-reference §5.2: "&k=v" for every
field but sig, sorted by name, "&" and "=" in values as "_"; md5hash appends the secret and takes the MD5,
md5 / sha1 / sha256 / sha512 are HMACs keyed by the secret; hex, compared case-insensitively; the
`timestamp` must be within the tolerance. Without a signature secret the webhooks come unsigned
(accepted in development and tests, 403 in production).
Outbound: POST <url>/sms/json; `messages[0].status` "0" means accepted, with its `message-id`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

from flask import Request, current_app

from bot.carriers import (
    CarrierAdapter,
    InboundSms,
    SendError,
    StatusReport,
    Submission,
    Submitted,
    WebhookError,
    http_post,
    raise_for_send_status,
    register,
)
from bot.pipeline.segments import UCS2
from bot.pipeline.statuses import Status
from models import Carrier
from webhooks.fields import concat_part, form_or_json, message_text, optional_text, text

log = logging.getLogger("smsbot.webhooks.vonage")

STATUS_MAP = {
    "accepted": Status.DELIVERED_TO_CARRIER,
    "buffered": Status.DELIVERED_TO_GSM,
    "delivered": Status.DELIVERED_TO_HANDSET,
    "expired": Status.EXPIRED,
    "failed": Status.GENERIC_DELIVERY_FAILURE,
    "rejected": Status.GENERIC_DELIVERY_FAILURE,
    "unknown": Status.UNKNOWN,
}
# err-code on failed / rejected (sms-reference §4.5). 9 also means "opted out": we cannot tell, so 409.
ERROR_MAP = {
    "1": Status.GENERIC_DELIVERY_FAILURE,
    "2": Status.SUBSCRIBER_UNREACHABLE,
    "3": Status.UNKNOWN_SUBSCRIBER,
    "4": Status.RECIPIENT_REJECTED,
    "5": Status.DELIVERY_TO_CARRIER_FAILED,
    "6": Status.CONTENT_REJECTED,
    "7": Status.DELIVERY_TO_HANDSET_FAILED,
    "8": Status.DELIVERY_TO_GSM_FAILED,
    "9": Status.INVALID_RECIPIENT,
    "10": Status.CONTENT_REJECTED,
    "11": Status.DELIVERY_TO_CARRIER_FAILED,
    "12": Status.SUBSCRIBER_UNREACHABLE,
    "13": Status.RECIPIENT_REJECTED,
    "14": Status.GENERIC_REJECTED,
    "15": Status.GATEWAY_ERROR,
    "99": Status.GENERIC_DELIVERY_FAILURE,
}
# buffered with "absent subscriber, temporary" or "handset busy": offline, retried by the network.
OFFLINE_ERRORS = {"2", "7"}
THROTTLED = "1"  # submit status: sending faster than the account's rate


# Signing methods as Vonage's dashboard names them: signed text and secret → hex digest. md5hash first (default).
SIGNERS = {
    "md5hash": lambda signed, secret: hashlib.md5(signed + secret).hexdigest(),
    **{
        method: (lambda signed, secret, method=method: hmac.new(secret, signed, method).hexdigest())
        for method in ("md5", "sha1", "sha256", "sha512")
    },
}


def signature(params: dict[str, str], secret: str, method: str = "md5hash") -> str:
    """Vonage's signature of every parameter except `sig`, by one of its SIGNERS."""
    signed = "".join(
        f"&{key}={str(value).replace('&', '_').replace('=', '_')}"
        for key, value in sorted(params.items())
        if key != "sig"
    )
    return SIGNERS[method](signed.encode("utf-8", "surrogatepass"), secret.encode())


def webhook_fields(request: Request) -> dict[str, str]:
    fields = {key: str(value) for key, value in form_or_json(request).items()}
    return {**request.args.to_dict(), **fields}


def plus(number: str) -> str:
    """Vonage writes numbers without '+'; a digits-only number is international."""
    return "+" + number if number.isdigit() and len(number) > 8 else number


@register
class Vonage(CarrierAdapter):
    kind = "vonage"
    separate_signature_secret = True
    signature_methods = tuple(SIGNERS)

    def verify(self, carrier: Carrier, request: Request) -> None:
        secret = self.webhook_secret(carrier)
        if not secret:
            return
        fields = webhook_fields(request)
        if not fields.get("sig"):
            raise WebhookError(401, "missing sig", "sig")
        try:
            stamp = int(fields.get("timestamp", ""))
        except ValueError:
            raise WebhookError(403, "missing or malformed timestamp", "timestamp") from None
        if abs(time.time() - stamp) > current_app.config["SIGNATURE_TOLERANCE_SECONDS"]:
            raise WebhookError(403, "timestamp outside the tolerance", "timestamp")
        expected = signature(fields, secret, carrier.signature_method or "md5hash")
        if not hmac.compare_digest(expected.encode(), fields["sig"].lower().encode("utf-8", "surrogatepass")):
            raise WebhookError(403, "sig does not match", "sig")

    def parse_inbound(self, carrier: Carrier, request: Request) -> InboundSms:
        fields = webhook_fields(request)
        part = None
        if fields.get("concat") == "true":
            part = concat_part(fields, "concat-ref", "concat-part", "concat-total")
        return InboundSms(
            message_id=text(fields, "messageId"),
            sender=plus(text(fields, "msisdn")),
            recipient=plus(text(fields, "to")),
            text=message_text(fields, "text"),
            part=part,
        )

    def parse_report(self, carrier: Carrier, request: Request) -> StatusReport:
        fields = webhook_fields(request)
        message_id, word = text(fields, "messageId"), text(fields, "status").lower()
        error = optional_text(fields, "err-code")
        if word == "buffered" and error in OFFLINE_ERRORS:
            code = Status.SUBSCRIBER_OFFLINE
        elif word in ("failed", "rejected") and error in ERROR_MAP:
            code = ERROR_MAP[error]
        else:
            code = STATUS_MAP.get(word)
        if code is None:
            log.warning("unknown status %r (err-code %r) for %s: kept as 599", word, error, message_id)
            code = Status.UNKNOWN
        return StatusReport(message_id, code, f"{word} err-code:{error}" if error else word)

    def submit(self, carrier: Carrier, submission: Submission) -> Submitted:
        form = {
            "api_key": carrier.username,
            "api_secret": carrier.secret,
            "from": submission.sender.lstrip("+"),
            "to": submission.recipient.lstrip("+"),
            "text": submission.text,
            "type": "unicode" if submission.encoding == UCS2 else "text",
            "status-report-req": "1",
            "callback": submission.status_url,
            "client-ref": str(submission.message_id),
            "ttl": str(submission.validity_minutes * 60 * 1000),
        }
        response = http_post(
            f"{carrier.url.rstrip('/')}/sms/json", data=form, timeout=current_app.config["SEND_TIMEOUT_SECONDS"]
        )
        raise_for_send_status(response)
        try:
            first = response.json()["messages"][0]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise SendError(Status.GATEWAY_ERROR, f"unusable answer: {response.text[:200]}") from exc
        status = str(first.get("status"))
        if status == "0":
            return Submitted(str(first["message-id"]), Status.DELIVERED_TO_GATEWAY)
        detail = f"Vonage status {status}: {first.get('error-text', '')}"
        if status == THROTTLED:
            raise SendError(Status.DELIVERY_TO_GATEWAY_FAILED, detail, retryable=True)
        raise SendError(Status.GENERIC_REJECTED, detail)
