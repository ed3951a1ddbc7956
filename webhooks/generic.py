"""generic: our own JSON format, for gateways that speak it (and for the simulator).

Inbound, `POST /webhooks/<name>/inbound`, signed with X-Smsbot-Signature (bot/signing.py):
    {"id": "gw-7f3a91", "from": "+46731234567", "to": "+46700000001", "text": "SAVE Anna Berg vip",
     "received_at": "2026-11-24T21:04:11Z"}
Delivery report, `POST /webhooks/<name>/status`, SMPP words or our own code, with our message id
(the idempotency key we sent) in `message_id` when the gateway echoes it:
    {"id": "gw-out-5521", "stat": "DELIVRD", "err": "000", "message_id": 42}
    {"id": "gw-out-5521", "status": 201}
A gateway that collects its receipts may post up to 1,000 at once, as a JSON array of those objects; a
bad one is named by its place (`[3].stat`) and nothing of the request is applied.
Outbound, `POST <carrier url>`, signed the same way, with our message id as the idempotency key:
    {"id": 42, "from": "+46700000001", "to": "+46731234567", "text": "Saved Anna Berg in vip.",
     "encoding": "GSM-7", "validity_minutes": 4320, "status_url": "https://…/webhooks/<name>/status"}
    answer: {"id": "gw-out-5521", "status": "accepted"}   ("queued" when the gateway holds it)
The gateway keeps one message per idempotency key and answers a repeated key with the first answer, so
a submission whose answer we lost is sent again under the same key.
"""

from __future__ import annotations

import json
import logging

from flask import Request, current_app

from bot import signing
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
from bot.pipeline import statuses
from models import Carrier
from webhooks.fields import json_body, json_object, message_text, optional_text, optional_time, text

log = logging.getLogger("smsbot.webhooks.generic")

# SMPP delivery receipt `stat` words (sms-reference §4.5). ACCEPTD is "accepted by the operator" in practice.
STATUS_MAP = {
    "ENROUTE": statuses.Status.DELIVERED_TO_GSM,
    "ACCEPTD": statuses.Status.DELIVERED_TO_CARRIER,
    "DELIVRD": statuses.Status.DELIVERED_TO_HANDSET,
    "EXPIRED": statuses.Status.EXPIRED,
    "DELETED": statuses.Status.CANCELED,
    "UNDELIV": statuses.Status.GENERIC_DELIVERY_FAILURE,
    "REJECTD": statuses.Status.GENERIC_REJECTED,
    "UNKNOWN": statuses.Status.UNKNOWN,
}
MAX_REPORTS = 1000  # reports in one request, when a gateway posts them as an array
SUBMIT_STATUS_MAP = {"accepted": statuses.Status.DELIVERED_TO_GATEWAY, "queued": statuses.Status.QUEUED_AT_GATEWAY}


@register
class Generic(CarrierAdapter):
    kind = "generic"
    honours_idempotency_key = True

    def verify(self, carrier: Carrier, request: Request) -> None:
        signing.verify(
            carrier.secret,
            request.get_data(),
            request.headers.get(signing.HEADER),
            current_app.config["SIGNATURE_TOLERANCE_SECONDS"],
        )

    def parse_inbound(self, carrier: Carrier, request: Request) -> InboundSms:
        data = json_object(request)
        return InboundSms(
            message_id=text(data, "id"),
            sender=text(data, "from"),
            recipient=text(data, "to"),
            text=message_text(data, "text"),
            received_at=optional_time(data, "received_at"),
        )

    def parse_report(self, carrier: Carrier, request: Request) -> StatusReport:
        return report_from(json_object(request))

    def parse_reports(self, carrier: Carrier, request: Request) -> list[StatusReport]:
        """One report, or a JSON array of up to MAX_REPORTS (a gateway that collects its receipts)."""
        data = json_body(request)
        if not isinstance(data, list):
            return [self.parse_report(carrier, request)]
        if not 1 <= len(data) <= MAX_REPORTS:
            raise WebhookError(400, f"an array of reports holds 1 to {MAX_REPORTS}")
        reports = []
        for index, item in enumerate(data):
            try:
                if not isinstance(item, dict):
                    raise WebhookError(400, "each report must be a JSON object")
                reports.append(report_from(item))
            except WebhookError as exc:
                where = f"[{index}]" + (f".{exc.field}" if exc.field else "")
                raise WebhookError(exc.status, exc.message, where) from None
        return reports

    def submit(self, carrier: Carrier, submission: Submission) -> Submitted:
        body = json.dumps(
            {
                "id": submission.message_id,
                "from": submission.sender,
                "to": submission.recipient,
                "text": submission.text,
                "encoding": submission.encoding,
                "validity_minutes": submission.validity_minutes,
                "status_url": submission.status_url,
            }
        ).encode()
        headers = {**signing.json_headers(carrier.secret, body), "Idempotency-Key": str(submission.message_id)}
        response = http_post(
            carrier.url, data=body, headers=headers, timeout=current_app.config["SEND_TIMEOUT_SECONDS"]
        )
        raise_for_send_status(response)
        try:
            answer = response.json()
            return Submitted(str(answer["id"]), SUBMIT_STATUS_MAP[answer.get("status", "accepted")])
        except (ValueError, KeyError, TypeError) as exc:
            # Accepted, but we cannot track it: a gateway error, not retried (a retry could send twice).
            raise SendError(statuses.Status.GATEWAY_ERROR, f"unusable answer: {response.text[:200]}") from exc


def report_from(data: dict) -> StatusReport:
    """A delivery report of our JSON format: SMPP words (`stat`, `err`) or one of our status codes."""
    upstream_id = text(data, "id")
    message_id = data.get("message_id")
    if message_id is not None and (not isinstance(message_id, int) or isinstance(message_id, bool)):
        raise WebhookError(400, "message_id must be our message id (an integer)", "message_id")
    if "status" in data:
        code = data["status"]
        if not isinstance(code, int) or code not in statuses.Status._value2member_map_:
            raise WebhookError(400, "status must be one of our status codes", "status")
        return StatusReport(upstream_id, code, f"status {code}", message_id=message_id)
    stat = text(data, "stat").upper()
    err = optional_text(data, "err")
    code = STATUS_MAP.get(stat)
    if code is None:
        log.warning("unknown stat %r for %s: kept as 599", stat, upstream_id)
        code = statuses.Status.UNKNOWN
    return StatusReport(upstream_id, code, f"{stat} err:{err}" if err else stat, message_id=message_id)
