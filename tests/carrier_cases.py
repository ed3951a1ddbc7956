"""The shared runner for carrier webhook tables (courier style).

A case is a label, the webhook action, the raw payload, how it is signed, the HTTP answer expected and
the rows it may write. The runner fails on any write the case did not expect. Each carrier module's
test supplies a `Signer`: a function that turns (carrier, path, payload, signing mode) into the body
and headers the carrier would send.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask.testing import FlaskClient

from bot.pipeline.outbound import Draft, accept
from bot.pipeline.statuses import Status
from models import (
    BlockEntry,
    Carrier,
    Contact,
    InboundMessage,
    InboundPart,
    MessageEvent,
    OutboundMessage,
    PendingReport,
    db,
)

COUNTED = (InboundMessage, InboundPart, OutboundMessage, MessageEvent, PendingReport, Contact, BlockEntry)
SIGNED, UNSIGNED, BAD_SIGNATURE, STALE = "signed", "unsigned", "bad signature", "stale"
PHONE, NUMBER, UPSTREAM_ID = "+46731234567", "+46700000001", "up-1"

Signer = Callable[[Carrier, str, Any, str], tuple[bytes | dict, dict[str, str]]]


@dataclass
class Case:
    label: str
    action: str  # "inbound" or "status"
    payload: Any
    answer: int = 200
    writes: dict[str, int] = field(default_factory=dict)  # model name → rows added
    signing: str = SIGNED
    inbound: dict[str, str] | None = None  # expected fields of the stored inbound row
    status: int | None = None  # expected status of the tracked message after a report
    body_contains: str = ""
    field: str | None = None  # the field a 4xx error must name


def row_counts() -> dict[str, int]:
    return {model.__name__: model.select().count() for model in COUNTED}


def tracked_message(carrier: Carrier) -> OutboundMessage:
    """A message handed to `carrier` as UPSTREAM_ID, at 111, for status cases."""
    account = carrier.numbers.get().account
    with db.atomic():
        message = accept(Draft(account=account, sender=NUMBER, recipient=PHONE, body="Hi", carrier=carrier))
    OutboundMessage.update(upstream_id=UPSTREAM_ID, status=Status.DELIVERED_TO_GATEWAY).where(
        OutboundMessage.id == message.id
    ).execute()
    return message


def run(client: FlaskClient, carrier: Carrier, case: Case, signer: Signer) -> None:
    message = tracked_message(carrier) if case.action == "status" else None
    path = f"/webhooks/{carrier.name}/{case.action}"
    body, headers = signer(carrier, path, case.payload, case.signing)
    before = row_counts()
    response = client.post(path, data=body, headers=headers)
    assert response.status_code == case.answer, (case.label, response.get_data(as_text=True))
    if response.status_code >= 400:
        assert response.json["error"]["message"], case.label
    if case.field is not None:
        assert response.json["error"]["field"] == case.field, (case.label, response.json)
    if case.body_contains:
        assert case.body_contains in response.get_data(as_text=True), case.label
    after = row_counts()
    written = {name: after[name] - before[name] for name in after if after[name] != before[name]}
    assert written == case.writes, case.label
    if case.inbound is not None:
        stored = InboundMessage.select().order_by(InboundMessage.id.desc()).get()
        assert {key: getattr(stored, key) for key in case.inbound} == case.inbound, case.label
    if case.status is not None:
        assert message is not None
        assert OutboundMessage.get_by_id(message.id).status == case.status, case.label


def unknown_carrier_is_404(client: FlaskClient) -> None:
    response = client.post("/webhooks/nobody/inbound", data=b"{}")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
