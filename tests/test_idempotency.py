"""Idempotency-Key on the POSTs that create something: a retry gets the first answer and does nothing else;
another body under the same key is 409 idempotency_conflict; keys are per account; 24 hours."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from peewee import fn

from bot.api.idempotency import purge
from bot.apikeys import create_key
from models import Account, ApiKey, Carrier, Group, IdempotentRequest, LedgerEntry, OutboundMessage, User, utcnow

MOBILE = "+46731234567"


def headers(secret: str, idempotency_key: str | None = None) -> dict[str, str]:
    given = {"Authorization": f"Bearer {secret}"}
    return {**given, "Idempotency-Key": idempotency_key} if idempotency_key is not None else given


@pytest.fixture
def shop(make_account, make_carrier, make_number):
    account = make_account(name="Shop", balance=1000, price_per_segment=35)
    make_number(account, make_carrier("generic", name="gw"), "+46700000001")
    return account, create_key(account, "admin")[1]


def money(account: Account) -> tuple[int, int, int]:
    """(balance, ledger rows, debited total) of the account."""
    debits = LedgerEntry.select().where((LedgerEntry.account == account.id) & (LedgerEntry.kind == "debit"))
    total = debits.select(fn.COALESCE(fn.SUM(LedgerEntry.amount), 0)).scalar()
    return Account.get_by_id(account.id).balance, LedgerEntry.select().count(), abs(int(total or 0))


def test_a_retried_send_sends_and_charges_once(client, shop):
    account, secret = shop
    body = {"to": MOBILE, "from": "Shop", "text": "Offer"}
    first = client.post("/api/v1/messages", json=body, headers=headers(secret, "order-17"))
    assert first.status_code == 202, first.json
    retry = client.post("/api/v1/messages", json=body, headers=headers(secret, "order-17"))
    assert (retry.status_code, retry.json) == (202, first.json)
    location = f"/api/v1/messages/{first.json['messages'][0]['id']}"
    assert retry.headers["Location"] == first.headers["Location"] == location
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert OutboundMessage.select().count() == 1
    assert money(account) == (1000 - 35, 1, 35)


def test_the_same_key_with_another_body_is_409_and_does_nothing(client, shop):
    account, secret = shop
    client.post("/api/v1/messages", json={"to": MOBILE, "from": "Shop", "text": "Offer"}, headers=headers(secret, "k1"))
    other = client.post(
        "/api/v1/messages", json={"to": MOBILE, "from": "Shop", "text": "Other offer"}, headers=headers(secret, "k1")
    )
    assert other.status_code == 409
    assert (other.json["error"]["code"], other.json["error"]["field"]) == ("idempotency_conflict", "Idempotency-Key")
    elsewhere = client.post("/api/v1/contacts", json={"phone": MOBILE}, headers=headers(secret, "k1"))
    assert elsewhere.status_code == 409 and elsewhere.json["error"]["code"] == "idempotency_conflict"
    assert OutboundMessage.select().count() == 1 and money(account) == (1000 - 35, 1, 35)


def test_another_account_may_use_the_same_key(client, shop, make_account, make_number):
    account, secret = shop
    other = make_account(name="Other", balance=1000, price_per_segment=10)
    make_number(other, Carrier.get(), "+46700000002")
    body = {"to": MOBILE, "from": "Shop", "text": "Offer"}
    assert client.post("/api/v1/messages", json=body, headers=headers(secret, "same")).status_code == 202
    theirs = client.post("/api/v1/messages", json=body, headers=headers(create_key(other, "user")[1], "same"))
    assert theirs.status_code == 202 and "Idempotent-Replayed" not in theirs.headers
    assert [m.account_id for m in OutboundMessage.select().order_by(OutboundMessage.id)] == [account.id, other.id]
    assert Account.get_by_id(other.id).balance == 990


@pytest.mark.parametrize("bad", ["x" * 256, ""])
def test_a_key_longer_than_255_characters_or_empty_is_422_naming_the_header(client, shop, bad):
    _, secret = shop
    answer = client.post("/api/v1/contacts", json={"phone": MOBILE}, headers=headers(secret, bad))
    assert (answer.status_code, answer.json["error"]["field"]) == (422, "Idempotency-Key")
    ok = client.post("/api/v1/contacts", json={"phone": MOBILE}, headers=headers(secret, "y" * 255))
    assert ok.status_code == 201


def test_concurrent_requests_with_one_key_act_once(app, client, shop):
    account, secret = shop
    body = {"to": MOBILE, "from": "Shop", "text": "Only once"}
    start = threading.Barrier(6)
    answers: list = []

    def post() -> None:
        start.wait()
        answers.append(client.post("/api/v1/messages", json=body, headers=headers(secret, "race")))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [202] * 6
    assert len({a.get_data() for a in answers}) == 1
    assert OutboundMessage.select().count() == 1 and money(account) == (1000 - 35, 1, 35)


def test_an_error_keeps_nothing_so_the_key_can_be_used_again(client, shop):
    account, secret = shop
    Group.create(account=account, name="VIP", name_key="vip")
    taken = client.post("/api/v1/groups", json={"name": "VIP"}, headers=headers(secret, "g1"))
    assert taken.status_code == 409 and taken.json["error"]["code"] == "conflict"
    Group.delete().execute()
    created = client.post("/api/v1/groups", json={"name": "VIP"}, headers=headers(secret, "g1"))
    assert created.status_code == 201 and created.headers["Location"] == f"/api/v1/groups/{created.json['id']}"
    assert IdempotentRequest.select().count() == 1


def test_a_key_is_kept_24_hours(client, shop):
    _, secret = shop
    first = client.post("/api/v1/groups", json={"name": "VIP"}, headers=headers(secret, "day"))
    Group.delete().execute()
    IdempotentRequest.update(created_at=utcnow() - timedelta(hours=23)).execute()
    replayed = client.post("/api/v1/groups", json={"name": "VIP"}, headers=headers(secret, "day"))
    assert (replayed.status_code, replayed.json) == (201, first.json) and Group.select().count() == 0
    IdempotentRequest.update(created_at=utcnow() - timedelta(hours=25)).execute()
    again = client.post("/api/v1/groups", json={"name": "VIP"}, headers=headers(secret, "day"))
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers and Group.select().count() == 1
    IdempotentRequest.update(created_at=utcnow() - timedelta(hours=25)).execute()
    assert purge() == 1 and IdempotentRequest.select().count() == 0  # the sweeper's clean-up


def test_a_replayed_key_creation_creates_one_key_and_never_stores_its_secret(client, shop):
    _, secret = shop
    body = {"label": "site", "role": "user"}
    first = client.post("/api/v1/apikeys", json=body, headers=headers(secret, "key-1"))
    assert first.status_code == 201 and first.json["key"].startswith("smsbot_")
    retry = client.post("/api/v1/apikeys", json=body, headers=headers(secret, "key-1"))
    assert retry.status_code == 201 and "key" not in retry.json
    assert retry.json == {name: value for name, value in first.json.items() if name != "key"}
    assert ApiKey.select().where(ApiKey.label == "site").count() == 1
    assert first.json["key"].split("_", 2)[2] not in IdempotentRequest.get().response  # the secret may hold "_"


def test_a_retried_invite_creates_one_user(client, shop):
    _, secret = shop
    body = {"email": "eva@example.com", "role": "user"}
    first = client.post("/api/v1/users", json=body, headers=headers(secret, "invite"))
    retry = client.post("/api/v1/users", json=body, headers=headers(secret, "invite"))
    assert (first.status_code, retry.status_code, retry.json) == (201, 201, first.json)
    assert User.select().count() == 1


def test_operator_topups_are_idempotent_per_operator_key(client, shop):
    account, _ = shop
    operator = create_key(None, "operator")[1]
    body = {"amount": 500, "reference": "bank 1"}
    url = "/api/v1/operator/accounts/Shop/topups"
    first = client.post(url, json=body, headers=headers(operator, "pay-1"))
    retry = client.post(url, json=body, headers=headers(operator, "pay-1"))
    assert (first.status_code, retry.status_code, retry.json) == (201, 201, first.json)
    assert retry.headers["Location"] == first.headers["Location"]
    conflict = client.post(url, json={"amount": 600}, headers=headers(operator, "pay-1"))
    assert (conflict.status_code, conflict.json["error"]["code"]) == (409, "idempotency_conflict")
    second_operator = create_key(None, "operator")[1]
    assert client.post(url, json=body, headers=headers(second_operator, "pay-1")).status_code == 201
    assert Account.get_by_id(account.id).balance == 2000
    assert LedgerEntry.select().where(LedgerEntry.kind == "topup").count() == 2
