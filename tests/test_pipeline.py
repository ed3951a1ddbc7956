"""The outbound pipeline, step by step: every status a user can cause, its history and the balance."""

from __future__ import annotations

import pytest

from bot.pipeline.outbound import Draft, accept, advance, cancel
from bot.pipeline.statuses import Status
from models import Account, BlockEntry, LedgerEntry, MessageEvent, OutboundMessage, db

MOBILE = "+46731234567"


@pytest.fixture
def shop(make_account, make_carrier, make_number):
    account = make_account(balance=1000, price_per_segment=35, banned_words=["casino"])
    carrier = make_carrier("generic", url="http://127.0.0.1:9/sms")
    make_number(account, carrier)
    return account


def send(account: Account, to: str = MOBILE, body: str = "Hello", sender: str = "+46700000001", **fields):
    with db.atomic():
        draft = Draft(account=account, sender=sender, recipient=to, body=body, carrier=carrier_of(account), **fields)
        return accept(draft)


def carrier_of(account: Account):
    return account.numbers.get().carrier


def history(message: OutboundMessage) -> list[int]:
    return [event.code for event in message.events.order_by(MessageEvent.id)]


def balance(account: Account) -> int:
    return Account.get_by_id(account.id).balance


@pytest.mark.parametrize(
    ("to", "sender", "body", "code"),
    [
        ("0731234567", "+46700000001", "Hi", Status.QUEUED),  # national format, normalised
        ("not a number", "+46700000001", "Hi", Status.INVALID_RECIPIENT),
        ("07312345678", "+46700000001", "Hi", Status.INVALID_RECIPIENT),  # one digit too many
        ("+468123456", "+46700000001", "Hi", Status.MISSING_SMS_SUBSCRIPTION),  # fixed line
        ("+4620123456", "+46700000001", "Hi", Status.MISSING_SMS_SUBSCRIPTION),  # toll free
        (MOBILE, "TwelveLetter", "Hi", Status.INVALID_SENDER),
        (MOBILE, "Shop!", "Hi", Status.INVALID_SENDER),
        (MOBILE, "1234567890123456", "Hi", Status.INVALID_SENDER),
        (MOBILE, "Shop 24", "Hi", Status.QUEUED),
        (MOBILE, "+46700000001", "   ", Status.INVALID_CONTENT),
        (MOBILE, "+46700000001", "tab\there", Status.INVALID_CONTENT),
        (MOBILE, "+46700000001", "a" * (153 * 10 + 1), Status.INVALID_CONTENT),  # 11 segments
        (MOBILE, "+46700000001", "Best CASINO deals", Status.CONTENT_REJECTED),
        ("+12015550123", "+46700000001", "Hi", Status.SENDER_REJECTED),  # no NANP campaign
    ],
)
def test_validation_outcome(shop, to, sender, body, code):
    message = send(shop, to=to, sender=sender, body=body)
    assert message.status == code
    if code == Status.QUEUED:
        assert history(message) == [101, 103, 102]
        assert balance(shop) == 1000 - message.price
    else:
        assert history(message) == [101, code]
        assert balance(shop) == 1000
        assert not LedgerEntry.select().where(LedgerEntry.message == message).exists()


def test_block_list_rejects_whichever_service_sends(shop):
    BlockEntry.create(account=shop, phone=MOBILE, source="keyword")
    assert send(shop, sender="Shop").status == Status.RECIPIENT_REJECTED
    assert send(shop, to="0731234567").status == Status.RECIPIENT_REJECTED


def test_opt_out_confirmation_passes_the_block_list(shop):
    BlockEntry.create(account=shop, phone=MOBILE, source="keyword")
    assert send(shop, compliance=True).status == Status.QUEUED


def test_nanp_needs_campaign_and_numeric_sender(shop):
    shop.nanp_campaign = "CAMP-1"
    shop.save()
    assert send(shop, to="+12015550123").status == Status.QUEUED
    assert send(shop, to="+12015550123", sender="Shop").status == Status.SENDER_REJECTED


def test_insufficient_funds_never_overdraws(make_account, make_carrier, make_number):
    account = make_account(balance=50, price_per_segment=35)
    make_number(account, make_carrier("generic"))
    assert send(account).status == Status.QUEUED
    second = send(account)
    assert second.status == Status.INSUFFICIENT_FUNDS
    assert history(second) == [101, 402]
    assert balance(account) == 15


def test_invoice_account_accrues_and_keeps_its_balance(make_account, make_carrier, make_number):
    account = make_account(billing_mode="invoice", balance=0, price_per_segment=35)
    make_number(account, make_carrier("generic"))
    message = send(account, body="€" * 80)  # 160 septets: one GSM-7 segment
    assert (message.status, message.segments, message.price) == (Status.QUEUED, 1, 35)
    assert [(e.kind, e.amount) for e in LedgerEntry.select()] == [("invoice", 35)]
    assert balance(account) == 0


def test_price_is_segments_times_price(shop):
    message = send(shop, body="😀" + "a" * 69)  # UCS-2, 71 units: two segments
    assert (message.encoding, message.segments, message.price) == ("UCS-2", 2, 70)


def test_cancel_refunds_once_and_only_before_claim(shop):
    message = send(shop)
    assert cancel(message.id)
    assert not cancel(message.id)
    canceled = OutboundMessage.get_by_id(message.id)
    assert canceled.status == Status.CANCELED
    assert history(canceled) == [101, 103, 102, 203, 104]
    assert balance(shop) == 1000
    assert [e.kind for e in LedgerEntry.select().order_by(LedgerEntry.id)] == ["debit", "refund"]


def test_status_never_moves_back_and_history_keeps_every_report(shop):
    message = send(shop)
    assert advance(message.id, Status.DELIVERED_TO_GATEWAY)
    assert advance(message.id, Status.DELIVERED_TO_HANDSET, "DELIVRD")
    assert not advance(message.id, Status.DELIVERED_TO_CARRIER, "ACCEPTD")  # late, kept in history only
    assert not advance(message.id, Status.DELIVERED_TO_HANDSET, "DELIVRD")  # duplicate: stored once
    final = OutboundMessage.get_by_id(message.id)
    assert final.status == Status.DELIVERED_TO_HANDSET
    assert history(final) == [101, 103, 102, 111, 201, 112]


def test_a_real_final_report_replaces_unknown(shop):
    message = send(shop)
    advance(message.id, Status.DELIVERED_TO_GATEWAY)
    advance(message.id, Status.UNKNOWN, "no report", "sweeper")
    assert advance(message.id, Status.DELIVERED_TO_HANDSET, "DELIVRD")
    assert not advance(message.id, Status.EXPIRED, "EXPIRED")
    assert OutboundMessage.get_by_id(message.id).status == Status.DELIVERED_TO_HANDSET


def test_rejection_after_funding_refunds_exactly_once(shop):
    message = send(shop)
    assert advance(message.id, Status.DELIVERY_TO_GATEWAY_FAILED, "HTTP 503")
    assert not advance(message.id, Status.DELIVERY_TO_GATEWAY_FAILED, "HTTP 503")
    assert not advance(message.id, Status.INTERNAL_ERROR, "late")
    assert balance(shop) == 1000
    assert LedgerEntry.select().where(LedgerEntry.kind == "refund").count() == 1


def test_failure_after_hand_off_is_not_refunded(shop):
    message = send(shop)
    advance(message.id, Status.DELIVERED_TO_GATEWAY)
    advance(message.id, Status.UNKNOWN_SUBSCRIBER, "UNDELIV err:001")
    assert balance(shop) == 1000 - 35
