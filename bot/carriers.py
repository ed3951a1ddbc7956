"""The carrier adapter contract and its registry.

An adapter (one module per carrier kind in `webhooks/`) verifies a carrier's signature, parses its
inbound SMS and delivery reports into the plain records below, submits outbound messages and answers
the carrier in the form it expects. Adapters register themselves by kind; the app factory imports the
list, and the pipeline looks an adapter up by `Carrier.kind` without importing `webhooks/`.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar
from urllib.parse import urlencode

import urllib3
from flask import Request, Response, jsonify
from urllib3.exceptions import ConnectTimeoutError, LocationValueError, NewConnectionError, ReadTimeoutError

from bot.pipeline.statuses import Status
from models import Carrier


class WebhookError(Exception):
    """A request the carrier must be told about: 400 malformed, 401 unsigned, 403 bad signature."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


class SendError(Exception):
    """A failed submission: `retryable` for timeouts, 429 and 5xx; otherwise final with `code`.

    `maybe_sent` marks an outcome we cannot judge: the request went out (a read timeout, a connection
    reset or closed before the answer), so the carrier may have taken the message. Only a refused
    connection, a failed DNS lookup, a connect timeout or an answer of the carrier's says "not taken".
    """

    def __init__(
        self, code: int, detail: str, retryable: bool = False, maybe_sent: bool = False, opt_out: bool = False
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.retryable = retryable
        self.maybe_sent = maybe_sent
        self.opt_out = opt_out  # the carrier refused it because the recipient opted out there: we block them too


@dataclass(frozen=True)
class ConcatPart:
    reference: str
    number: int
    total: int


@dataclass(frozen=True)
class InboundSms:
    message_id: str
    sender: str
    recipient: str
    text: str
    received_at: datetime | None = None
    carrier_replied: bool = False  # the carrier already answered an opt-out (Twilio OptOutType)
    part: ConcatPart | None = None


@dataclass(frozen=True)
class StatusReport:
    upstream_id: str
    code: int
    detail: str  # the carrier's own words, kept in the history
    opt_out: bool = False  # the carrier says the recipient opted out: the report service blocks them
    message_id: int | None = None  # our message id, when the carrier echoes it (generic `message_id`)


@dataclass(frozen=True)
class Submission:
    message_id: int
    sender: str
    recipient: str
    text: str
    encoding: str
    validity_minutes: int
    status_url: str


@dataclass(frozen=True)
class Submitted:
    upstream_id: str
    code: int  # 111 DeliveredToGateway or 114 QueuedAtGateway


class CarrierAdapter(ABC):
    kind: ClassVar[str]
    development_only: ClassVar[bool] = False  # refused in production (bot/environment.py): the simulator
    separate_signature_secret: ClassVar[bool] = False  # webhooks signed with Carrier.signature_secret
    signature_methods: ClassVar[tuple[str, ...]] = ()  # choices for Carrier.signature_method, default first

    def webhook_secret(self, carrier: Carrier) -> str:
        """The secret that signs this carrier's webhooks; empty means they come unsigned."""
        return carrier.signature_secret if self.separate_signature_secret else carrier.secret

    # The carrier keeps one message per idempotency key (our message id): a "maybe sent" submission
    # is resolved by sending it again under the same key.
    honours_idempotency_key: ClassVar[bool] = False

    @abstractmethod
    def verify(self, carrier: Carrier, request: Request) -> None:
        """Raise WebhookError(401/403) unless the request carries the carrier's valid signature."""

    @abstractmethod
    def parse_inbound(self, carrier: Carrier, request: Request) -> InboundSms:
        """Parse an inbound SMS, or raise WebhookError(400) naming the bad field."""

    @abstractmethod
    def parse_report(self, carrier: Carrier, request: Request) -> StatusReport:
        """Parse a delivery report into our status code, or raise WebhookError(400)."""

    def parse_reports(self, carrier: Carrier, request: Request) -> list[StatusReport]:
        """The delivery reports of one request: one, unless the carrier's format posts several at once."""
        return [self.parse_report(carrier, request)]

    @abstractmethod
    def submit(self, carrier: Carrier, submission: Submission) -> Submitted:
        """Hand a message to the carrier, or raise SendError."""

    def find_submitted(self, carrier: Carrier, submission: Submission, since: datetime) -> list[Submitted]:
        """Look the message up at a carrier without an idempotency key, after a "maybe sent" attempt.

        Returns the carrier's messages that match it (same recipient, sender and text, created since the
        first unanswered attempt), an empty list when the carrier surely does not hold it, or raises
        SendError with `maybe_sent` when it cannot tell. A carrier with no way to look up cannot tell.
        """
        raise SendError(Status.GATEWAY_ERROR, f"{self.kind} cannot look messages up", retryable=True, maybe_sent=True)

    def inbound_response(self) -> Response:
        return jsonify(status="ok")

    def report_response(self) -> Response:
        return jsonify(status="ok")


_registry: dict[str, CarrierAdapter] = {}


def register(cls: type[CarrierAdapter]) -> type[CarrierAdapter]:
    """Class decorator: make an adapter available under its `kind`; a kind is registered once."""
    if cls.kind in _registry and type(_registry[cls.kind]) is not cls:
        raise ValueError(f"carrier kind {cls.kind!r} is already registered")
    _registry[cls.kind] = cls()
    return cls


def adapter_for(kind: str) -> CarrierAdapter:
    try:
        return _registry[kind]
    except KeyError:
        raise LookupError(f"unknown carrier kind {kind!r}; known: {', '.join(kinds())}") from None


def kinds() -> list[str]:
    return sorted(_registry)


_local = threading.local()


@dataclass(frozen=True)
class Answer:
    """A carrier's HTTP answer: its status and body (what the adapters read of it)."""

    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> object:
        """The body as JSON; ValueError when it is not."""
        return json.loads(self.content)


def connections() -> urllib3.PoolManager:
    """One keep-alive connection pool per submission thread: no new TCP connection per message.

    urllib3 rather than requests: a submission is most of a send job's CPU, and requests' layers cost
    twice urllib3's for the same request (bench/pipeline.py). No retries and no redirects here: whether
    a request may go again is the pipeline's decision (`unanswered`), and a redirected POST is not sent.
    """
    if not hasattr(_local, "pool"):
        _local.pool = urllib3.PoolManager(num_pools=8, maxsize=1, retries=False)
    return _local.pool


def http_post(
    url: str,
    *,
    timeout: float,
    data: bytes | dict[str, str],
    headers: dict[str, str] | None = None,
    auth: tuple[str, str] | None = None,
) -> Answer:
    """POST a JSON body (bytes) or a form (dict) to a carrier; a failure to get an answer is a retryable
    SendError (see `unanswered`)."""
    headers = {**(headers or {}), **basic_auth(auth)}
    if isinstance(data, dict):
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        data = urlencode(data).encode()
    return http_request("POST", url, timeout, body=data, headers=headers)


def http_get(
    url: str, *, timeout: float, params: dict[str, str] | None = None, auth: tuple[str, str] | None = None
) -> Answer:
    """GET from a carrier (a lookup); a failure to get an answer is a retryable SendError."""
    if params:
        url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
    return http_request("GET", url, timeout, headers=basic_auth(auth))


def http_request(method: str, url: str, timeout: float, **kwargs: object) -> Answer:
    if not url.lower().startswith(("http://", "https://")):
        raise SendError(Status.DELIVERY_TO_GATEWAY_FAILED, f"not sent: no http(s) URL ({url[:100]!r})", retryable=True)
    try:
        response = connections().request(method, url, timeout=urllib3.Timeout(timeout), redirect=False, **kwargs)  # type: ignore[arg-type]
    except urllib3.exceptions.HTTPError as exc:
        raise unanswered(exc) from exc
    return Answer(response.status, response.data)


def basic_auth(auth: tuple[str, str] | None) -> dict[str, str]:
    return urllib3.make_headers(basic_auth=":".join(auth)) if auth else {}


def unanswered(exc: urllib3.exceptions.HTTPError) -> SendError:
    """A request without an answer: "not sent" when it never left us, else "maybe sent".

    Connection refused, DNS failure and connect timeout happen before a byte of the request is sent, and
    an unusable URL sends nothing; a read timeout or a connection reset or closed later may come after the
    carrier took the message.
    """
    name = exc.__class__.__name__
    if isinstance(exc, NewConnectionError):  # refused, or the name did not resolve
        return SendError(Status.DELIVERY_TO_GATEWAY_FAILED, "not sent: connection refused", retryable=True)
    if isinstance(exc, (ConnectTimeoutError, LocationValueError)):
        return SendError(Status.DELIVERY_TO_GATEWAY_FAILED, f"not sent: {name}", retryable=True)
    what = "timeout" if isinstance(exc, ReadTimeoutError) else f"connection lost ({name})"
    return SendError(Status.DELIVERY_TO_GATEWAY_FAILED, f"{what}, maybe sent", retryable=True, maybe_sent=True)


def raise_for_send_status(response: Answer, rejections: dict[int, int] | None = None) -> None:
    """Map a carrier's HTTP answer to the send outcome, the same way for every carrier.

    429 and 5xx are retryable (then 511 once retries run out); any other 4xx is final, mapped through
    `rejections` (HTTP status → our code) or 406 GenericRejected.
    """
    status = response.status_code
    if status < 400:
        return
    detail = f"HTTP {status}: {response.text[:200]}"
    if status == 429 or status >= 500:
        raise SendError(Status.DELIVERY_TO_GATEWAY_FAILED, detail, retryable=True)
    raise SendError((rejections or {}).get(status, 406), detail)
