"""Quiet hours: a business send due inside the account's window waits, in the recipient's time zone,
until the window ends; replies to an inbound are never held."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pytest_httpserver import HTTPServer
from rq.registry import ScheduledJobRegistry

from bot.apikeys import create_key
from bot.pipeline.jobs import send_messages
from bot.pipeline.queue import get_queue, send_job_id
from bot.pipeline.statuses import Status
from bot.signing import sign
from models import Account, MessageEvent, OutboundMessage

LOS_ANGELES = "+14155552671"
NUMBER = "+46700000001"


@pytest.fixture
def account(make_account, make_carrier, make_number, httpserver: HTTPServer) -> Account:
    httpserver.expect_request("/sms", method="POST").respond_with_json({"id": "up-1", "status": "accepted"})
    carrier = make_carrier("generic", name="gw", url=httpserver.url_for("/sms"))
    account = make_account(balance=1000, price_per_segment=10, nanp_campaign="C-123")
    make_number(account, carrier, NUMBER)
    return account


def events(message_id: int) -> list[tuple[int, str]]:
    rows = MessageEvent.select().where(MessageEvent.message == message_id).order_by(MessageEvent.id)
    return [(row.code, row.detail) for row in rows]


def test_an_admin_sets_quiet_hours_and_a_bad_window_is_refused(client, account):
    admin = {"Authorization": f"Bearer {create_key(account, 'admin')[1]}"}
    answer = client.patch("/api/v1/account", json={"quiet_hours": {"start": "21:00", "end": "08:00"}}, headers=admin)
    assert answer.status_code == 200 and answer.json["quiet_hours"] == {"start": "21:00", "end": "08:00"}
    for bad in ({"start": "25:00", "end": "08:00"}, {"start": "21:00"}, {"start": "09:00", "end": "09:00"}):
        refused = client.patch("/api/v1/account", json={"quiet_hours": bad}, headers=admin)
        assert refused.status_code == 422 and refused.json["error"]["field"].startswith("quiet_hours")
    cleared = client.patch("/api/v1/account", json={"quiet_hours": None}, headers=admin)
    assert cleared.json["quiet_hours"] is None
    user = {"Authorization": f"Bearer {create_key(account, 'user')[1]}"}
    assert client.patch("/api/v1/account", json={"quiet_hours": None}, headers=user).status_code == 403


def test_a_send_due_in_the_recipients_night_is_held_until_morning_there_then_sent(client, app, account):
    account.quiet_hours = {"start": "21:00", "end": "08:00"}
    account.save()
    user = {"Authorization": f"Bearer {create_key(account, 'user')[1]}"}
    # 12:00 UTC is 04:00 in Los Angeles (PST, UTC-8): held until 08:00 there, 16:00 UTC.
    send = {"to": LOS_ANGELES, "from": NUMBER, "text": "Your order shipped", "send_at": "2030-01-15T12:00:00Z"}
    answer = client.post("/api/v1/messages", json=send, headers=user)
    assert answer.status_code == 202
    (sent,) = answer.json["messages"]
    assert sent["status"] == Status.QUEUED
    assert sent["events"][-1]["detail"] == "held for quiet hours until 2030-01-15T16:00:00Z"
    message = OutboundMessage.get_by_id(sent["id"])
    assert message.send_at == datetime(2030, 1, 15, 16, 0)
    registry = ScheduledJobRegistry(queue=get_queue())
    assert registry.get_scheduled_time(send_job_id(message.id)) == datetime(2030, 1, 15, 16, 0, tzinfo=UTC)
    # The window's end: the scheduler hands the job to a worker, which sends it.
    assert send_messages([message.id]) == {"sent": 1}
    codes = [code for code, _ in events(message.id)]
    assert codes == [101, 103, 102, 110, 111]


def test_the_same_send_in_the_recipients_afternoon_is_not_held(client, account):
    account.quiet_hours = {"start": "21:00", "end": "08:00"}
    account.save()
    user = {"Authorization": f"Bearer {create_key(account, 'user')[1]}"}
    send = {"to": LOS_ANGELES, "from": NUMBER, "text": "Your order shipped", "send_at": "2030-01-15T22:00:00Z"}
    (sent,) = client.post("/api/v1/messages", json=send, headers=user).json["messages"]
    assert sent["events"][-1]["detail"] == "scheduled"
    assert OutboundMessage.get_by_id(sent["id"]).send_at == datetime(2030, 1, 15, 22, 0)


def test_a_reply_inside_quiet_hours_is_not_held(client, account, make_number):
    """The window is set around the real time in Los Angeles, so the inbound arrives inside it."""
    local = datetime.now(ZoneInfo("America/Los_Angeles"))
    start, end = (local - timedelta(hours=1)).strftime("%H:%M"), (local + timedelta(hours=1)).strftime("%H:%M")
    account.quiet_hours = {"start": start, "end": end}
    account.save()
    payload = json.dumps({"id": "in-1", "from": LOS_ANGELES, "to": NUMBER, "text": "HELP"}).encode()
    headers = {"Content-Type": "application/json", "X-Smsbot-Signature": sign("generic-secret", payload)}
    assert client.post("/webhooks/gw/inbound", data=payload, headers=headers).status_code == 200
    reply = OutboundMessage.get(OutboundMessage.recipient == LOS_ANGELES)
    assert reply.reply_to is not None and reply.send_at is None
    assert events(reply.id)[-1] == (Status.QUEUED, "")
