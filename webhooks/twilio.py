"""twilio: Programmable Messaging webhooks and the Messages API.

Inbound SMS (form POST, X-Twilio-Signature):
    ToCountry=SE&SmsMessageSid=SM5f1d…&NumMedia=0&From=%2B46731234567&To=%2B46700000001
    &Body=SAVE+Anna+Berg+vip&MessageSid=SM5f1d…&AccountSid=AC12…&ApiVersion=2010-04-01
    (with Advanced Opt-Out, STOP arrives with OptOutType=STOP and Twilio has already replied)
Status callback (form POST):
    MessageSid=SM9a0c…&MessageStatus=undelivered&ErrorCode=30003&To=%2B46731234567&From=%2B46700000001
    &AccountSid=AC12…&ApiVersion=2010-04-01
    (ErrorCode 21610: the recipient texted STOP to Twilio; we block them too, source "carrier")
We answer inbound with empty TwiML. Outbound: POST <url>/2010-04-01/Accounts/<sid>/Messages.json with
To, From, Body, StatusCallback and basic auth; the JSON `sid` is the upstream id.
Twilio has no idempotency key: after a submission whose answer we lost, we look for the message in
GET <url>/2010-04-01/Accounts/<sid>/Messages.json?To=…&From=…&PageSize=100 (newest first):
    {"messages": [{"sid": "SM9a0c…", "to": "+46731234567", "from": "+46700000001", "body": "Hej",
                   "status": "queued", "direction": "outbound-api",
                   "date_created": "Tue, 24 Nov 2026 21:04:11 +0000"}], "next_page_uri": null}
The signature is base64 HMAC-SHA1(auth token, public URL + each form name and value, names sorted),
computed on PUBLIC_BASE_URL + the path as Twilio requested it (sms-reference §5.1). A repeated name counts
each distinct value once, sorted, as Twilio's own RequestValidator does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

from flask import Request, Response, current_app

from bot.carriers import (
    CarrierAdapter,
    InboundSms,
    SendError,
    StatusReport,
    Submission,
    Submitted,
    WebhookError,
    http_get,
    http_post,
    raise_for_send_status,
    register,
)
from bot.pipeline.statuses import Status
from models import Carrier
from webhooks.fields import message_text, optional_text, text

log = logging.getLogger("smsbot.webhooks.twilio")
HEADER = "X-Twilio-Signature"
CLOCK_SKEW = timedelta(minutes=1)  # between our clock and Twilio's date_created
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

# MessageStatus without an error code (sms-reference §4.5).
STATUS_MAP = {
    "queued": Status.QUEUED_AT_GATEWAY,
    "accepted": Status.QUEUED_AT_GATEWAY,
    "scheduled": Status.QUEUED_AT_GATEWAY,
    "sending": Status.DELIVERED_TO_GATEWAY,
    "sent": Status.DELIVERED_TO_CARRIER,
    "delivered": Status.DELIVERED_TO_HANDSET,
    "read": Status.DELIVERED_TO_HANDSET,
    "canceled": Status.CANCELED,
    "failed": Status.DELIVERY_TO_CARRIER_FAILED,
    "undelivered": Status.GENERIC_DELIVERY_FAILURE,
}
# ErrorCode on failed / undelivered callbacks, and the `code` of the Messages API's 4xx answer.
ERROR_MAP = {
    "30001": Status.EXPIRED,
    "30002": Status.GATEWAY_ERROR,
    "30003": Status.SUBSCRIBER_UNREACHABLE,
    "30004": Status.RECIPIENT_REJECTED,
    "30005": Status.UNKNOWN_SUBSCRIBER,
    "30006": Status.MISSING_SMS_SUBSCRIPTION,
    "30007": Status.CONTENT_REJECTED,
    "30008": Status.GENERIC_DELIVERY_FAILURE,
    "30032": Status.GENERIC_REJECTED,
    "30034": Status.GENERIC_REJECTED,
    "30500": Status.GATEWAY_ERROR,
    "21610": Status.RECIPIENT_REJECTED,
    "21211": Status.INVALID_RECIPIENT,
    "21614": Status.MISSING_SMS_SUBSCRIPTION,
    "21635": Status.MISSING_SMS_SUBSCRIPTION,
    "21408": Status.GENERIC_REJECTED,
}
OPT_OUT_ERRORS = {"21610"}  # the recipient unsubscribed at Twilio: block them on our side too
SUBMIT_STATUS_MAP = {
    "queued": Status.QUEUED_AT_GATEWAY,
    "accepted": Status.QUEUED_AT_GATEWAY,
    "scheduled": Status.QUEUED_AT_GATEWAY,
    "sending": Status.DELIVERED_TO_GATEWAY,
    "sent": Status.DELIVERED_TO_GATEWAY,
}


def signature(auth_token: str, url: str, params: dict[str, list[str]]) -> str:
    """Twilio's signature of a URL and its form parameters."""
    payload = url + "".join(name + value for name in sorted(params) for value in sorted(set(params[name])))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def url_variants(url: str) -> list[str]:
    """The URL with and without its default port: Twilio is not consistent about it."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    with_port = parts._replace(netloc=f"{host}:{parts.port or default}")
    without_port = parts._replace(netloc=host) if parts.port in (None, default) else parts
    return list(dict.fromkeys([url, urlunsplit(with_port), urlunsplit(without_port)]))


def public_url(request: Request) -> str:
    query = request.query_string.decode()
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + request.path + (f"?{query}" if query else "")


@register
class Twilio(CarrierAdapter):
    kind = "twilio"

    def verify(self, carrier: Carrier, request: Request) -> None:
        given = request.headers.get(HEADER)
        if not given:
            raise WebhookError(401, f"missing {HEADER} header", HEADER)
        params = request.form.to_dict(flat=False)
        if not any(
            hmac.compare_digest(signature(carrier.secret, url, params).encode(), given.encode("utf-8", "surrogatepass"))
            for url in url_variants(public_url(request))
        ):
            raise WebhookError(403, "signature does not match", HEADER)

    def parse_inbound(self, carrier: Carrier, request: Request) -> InboundSms:
        form = request.form
        return InboundSms(
            message_id=text(form, "MessageSid"),
            sender=text(form, "From"),
            recipient=text(form, "To"),
            text=message_text(form, "Body"),
            carrier_replied=bool(form.get("OptOutType")),
        )

    def parse_report(self, carrier: Carrier, request: Request) -> StatusReport:
        form = request.form
        sid, word = text(form, "MessageSid"), text(form, "MessageStatus").lower()
        error = optional_text(form, "ErrorCode")
        failed = word in ("failed", "undelivered")
        code = ERROR_MAP.get(error) if error and failed else None
        code = code or STATUS_MAP.get(word)
        if code is None:
            log.warning("unknown MessageStatus %r (ErrorCode %r) for %s: kept as 599", word, error, sid)
            code = Status.UNKNOWN
        return StatusReport(sid, code, f"{word} {error}".strip(), opt_out=failed and error in OPT_OUT_ERRORS)

    def inbound_response(self) -> Response:
        return Response(EMPTY_TWIML, content_type="text/xml")

    def submit(self, carrier: Carrier, submission: Submission) -> Submitted:
        url = f"{carrier.url.rstrip('/')}/2010-04-01/Accounts/{carrier.username}/Messages.json"
        form = {
            "To": submission.recipient,
            "From": submission.sender,
            "Body": submission.text,
            "StatusCallback": submission.status_url,
        }
        response = http_post(
            url, data=form, auth=(carrier.username, carrier.secret), timeout=current_app.config["SEND_TIMEOUT_SECONDS"]
        )
        if 400 <= response.status_code < 500 and response.status_code != 429:
            api_code = str(_json(response).get("code"))
            if api_code in ERROR_MAP:
                detail = f"Twilio {api_code}: {_json(response).get('message', '')}"
                raise SendError(ERROR_MAP[api_code], detail, opt_out=api_code in OPT_OUT_ERRORS)
        raise_for_send_status(response)
        answer = _json(response)
        if not answer.get("sid"):
            raise SendError(Status.GATEWAY_ERROR, f"no sid in Twilio's answer: {response.text[:200]}")
        return Submitted(answer["sid"], SUBMIT_STATUS_MAP.get(answer.get("status", ""), Status.QUEUED_AT_GATEWAY))

    def find_submitted(self, carrier: Carrier, submission: Submission, since: datetime) -> list[Submitted]:
        """Outbound messages to the same phone, from the same sender, with the same body, created since
        the first unanswered attempt (less a minute of clock skew), in Twilio's message list.

        No `DateSent` filter: a message still queued at Twilio has no sent date and would be missed. The
        list comes newest first, so the first page holds any message of the last minutes."""
        url = f"{carrier.url.rstrip('/')}/2010-04-01/Accounts/{carrier.username}/Messages.json"
        query = {
            "To": submission.recipient,
            "From": submission.sender,
            "PageSize": "100",
        }
        auth = (carrier.username, carrier.secret)
        response = http_get(url, params=query, auth=auth, timeout=current_app.config["SEND_TIMEOUT_SECONDS"])
        if response.status_code != 200 or not isinstance(_json(response).get("messages"), list):
            detail = f"message list answered HTTP {response.status_code}: {response.text[:200]}"
            raise SendError(Status.GATEWAY_ERROR, detail, retryable=True, maybe_sent=True)
        earliest = since.replace(tzinfo=UTC) - CLOCK_SKEW
        return [
            Submitted(str(found["sid"]), SUBMIT_STATUS_MAP.get(found.get("status", ""), Status.QUEUED_AT_GATEWAY))
            for found in _json(response)["messages"]
            if isinstance(found, dict)
            and found.get("sid")
            and found.get("body") == submission.text
            and str(found.get("direction", "")).startswith("outbound")
            and _created(found) >= earliest
        ]


def _created(found: dict) -> datetime:
    try:
        created = parsedate_to_datetime(str(found.get("date_created")))
    except (TypeError, ValueError):
        return datetime.min.replace(tzinfo=UTC)
    return created if created.tzinfo else created.replace(tzinfo=UTC)


def _json(response) -> dict:  # type: ignore[no-untyped-def]
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
