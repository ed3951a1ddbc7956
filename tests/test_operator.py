"""Billing belongs to the operator: business keys get 403 on billing fields and top-ups; the operator
uses the CLI and operator keys on /api/v1/operator; each side's key on the other's routes is a 403."""

from __future__ import annotations

import pytest

import bot.api.routes  # noqa: F401  (declares the routes)
from bot.api.schema import ENDPOINTS
from bot.apikeys import authenticate, create_key
from models import Account, ApiKey, BlockEntry, Contact, LedgerEntry, OutboundMessage
from tests.api_paths import fill


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def shop(make_account):
    return make_account(name="Shop", balance=1000, price_per_segment=35)


@pytest.fixture
def business(shop):
    return bearer(create_key(shop, "admin")[1])


@pytest.fixture
def operator():
    return bearer(create_key(None, "operator")[1])


@pytest.mark.parametrize(
    ("field", "value"), [("billing_mode", "invoice"), ("price_per_segment", 0), ("nanp_campaign", "C1")]
)
def test_a_business_key_cannot_change_billing(client, shop, business, field, value):
    answer = client.patch("/api/v1/account", json={"stop_service_enabled": False, field: value}, headers=business)
    assert answer.status_code == 403
    assert (answer.json["error"]["code"], answer.json["error"]["field"]) == ("forbidden", field)
    row = Account.get_by_id(shop.id)
    assert (row.billing_mode, row.price_per_segment, row.nanp_campaign, row.stop_service_enabled) == (
        "balance",
        35,
        "",
        True,
    )


def test_a_business_key_cannot_top_itself_up(client, shop, business):
    answer = client.post("/api/v1/account/topups", json={"amount": 500}, headers=business)
    assert answer.status_code == 403
    assert "operator" in answer.json["error"]["message"]
    assert Account.get_by_id(shop.id).balance == 1000
    assert LedgerEntry.select().count() == 0


def test_a_business_admin_changes_its_stop_service_and_one_line_name(client, shop, business):
    changed = client.patch("/api/v1/account", json={"stop_service_enabled": False, "name": "Shop AB"}, headers=business)
    assert changed.status_code == 200
    assert (changed.json["stop_service_enabled"], changed.json["name"]) == (False, "Shop AB")
    for bad in ("Shop\nAB", "Shop\rAB", "Shop\x00", "Shop\u2028AB", "\t", "   "):
        answer = client.patch("/api/v1/account", json={"name": bad}, headers=business)
        assert (answer.status_code, answer.json["error"]["field"]) == (422, "name"), bad
    assert Account.get_by_id(shop.id).name == "Shop AB"


def test_operator_cli_sets_billing_tops_up_and_creates_operator_keys(runner, shop):
    changed = runner.invoke(
        args=["account", "set", "Shop", "--billing", "invoice", "--price", "12", "--nanp-campaign", "C9"]
    )
    assert changed.exit_code == 0, changed.output
    row = Account.get_by_id(shop.id)
    assert (row.billing_mode, row.price_per_segment, row.nanp_campaign) == ("invoice", 12, "C9")
    assert runner.invoke(args=["account", "set", "Shop"]).exit_code != 0
    assert runner.invoke(args=["account", "set", "Nobody", "--price", "1"]).exit_code != 0

    topped = runner.invoke(args=["topup", "Shop", "250", "--reference", "INV-7"])
    assert topped.exit_code == 0, topped.output
    entry = LedgerEntry.get()
    assert (entry.kind, entry.amount, entry.reference, Account.get_by_id(shop.id).balance) == (
        "topup",
        250,
        "INV-7",
        1250,
    )

    created = runner.invoke(args=["apikey", "create", "--operator"])
    assert created.exit_code == 0, created.output
    key = authenticate(created.output.strip().splitlines()[-1])
    assert (key.role, key.account) == ("operator", None)
    assert runner.invoke(args=["apikey", "create", "Shop", "--operator"]).exit_code != 0
    assert runner.invoke(args=["apikey", "create"]).exit_code != 0
    assert ApiKey.select().count() == 1


def test_the_cli_refuses_an_account_name_of_two_lines(runner):
    answer = runner.invoke(args=["account", "create", "Evil\nINFO forged log line"])
    assert answer.exit_code != 0 and "one line" in answer.output
    assert Account.select().count() == 0


def test_operator_api_lists_reads_and_changes_accounts(client, shop, make_account, operator):
    make_account(name="Other")
    first = client.get("/api/v1/operator/accounts?limit=1", headers=operator)
    assert first.status_code == 200 and [a["name"] for a in first.json["accounts"]] == ["Other"]
    rest = client.get(f"/api/v1/operator/accounts?limit=1&cursor={first.json['next']}", headers=operator)
    assert [a["name"] for a in rest.json["accounts"]] == ["Shop"] and rest.json["next"] is None

    got = client.get("/api/v1/operator/accounts/Shop", headers=operator)
    assert (got.json["balance"], got.json["price_per_segment"], got.json["billing_mode"]) == (1000, 35, "balance")
    patched = client.patch(
        "/api/v1/operator/accounts/Shop",
        json={"billing_mode": "invoice", "price_per_segment": 20, "nanp_campaign": "C1", "banned_words": ["casino"]},
        headers=operator,
    )
    assert patched.status_code == 200, patched.json
    row = Account.get_by_id(shop.id)
    assert (row.billing_mode, row.price_per_segment, row.nanp_campaign, row.banned_words) == (
        "invoice",
        20,
        "C1",
        ["casino"],
    )
    bad = client.patch("/api/v1/operator/accounts/Shop", json={"price_per_segment": -1}, headers=operator)
    assert (bad.status_code, bad.json["error"]["field"]) == (422, "price_per_segment")
    assert client.get("/api/v1/operator/accounts/Nobody", headers=operator).status_code == 404


def test_operator_top_up_keeps_the_reference_and_answers_201_with_location(client, shop, operator):
    answer = client.post(
        "/api/v1/operator/accounts/Shop/topups", json={"amount": 500, "reference": "bank 2026-11-25"}, headers=operator
    )
    assert answer.status_code == 201, answer.json
    assert (answer.json["amount"], answer.json["reference"], answer.json["balance"]) == (500, "bank 2026-11-25", 1500)
    entry = LedgerEntry.get()
    assert (entry.account_id, entry.kind, entry.amount, entry.reference) == (shop.id, "topup", 500, "bank 2026-11-25")
    assert answer.headers["Location"] == f"/api/v1/operator/accounts/Shop/topups/{entry.id}"
    assert client.get(answer.headers["Location"], headers=operator).json == answer.json
    business_view = client.get("/api/v1/account/ledger", headers=bearer(create_key(shop, "viewer")[1]))
    assert [(e["kind"], e["amount"]) for e in business_view.json["ledger"]] == [("topup", 500)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": 100_000_001}, "amount"),
        ({"amount": "10"}, "amount"),
        ({}, "amount"),
        ({"amount": 10, "reference": "x" * 201}, "reference"),
        ({"amount": 10, "extra": 1}, "extra"),
    ],
)
def test_bad_operator_topups_are_422_naming_the_field_and_change_nothing(client, shop, operator, body, field):
    answer = client.post("/api/v1/operator/accounts/Shop/topups", json=body, headers=operator)
    assert (answer.status_code, answer.json["error"]["field"]) == (422, field)
    assert Account.get_by_id(shop.id).balance == 1000
    assert LedgerEntry.select().count() == 0


def test_operator_topup_of_an_unknown_account_is_404(client, operator):
    answer = client.post("/api/v1/operator/accounts/Nobody/topups", json={"amount": 5}, headers=operator)
    assert answer.status_code == 404 and LedgerEntry.select().count() == 0


@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if e.role == "operator"], ids=lambda e: f"{e.method} {e.rule}"
)
def test_a_business_key_on_an_operator_route_is_403(client, shop, business, endpoint):
    answer = client.open(fill(endpoint.rule), method=endpoint.method, json={"amount": 5}, headers=business)
    assert (answer.status_code, answer.json["error"]["code"]) == (403, "forbidden")
    assert LedgerEntry.select().count() == 0 and Account.get_by_id(shop.id).balance == 1000


@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if e.role not in (None, "operator")], ids=lambda e: f"{e.method} {e.rule}"
)
def test_an_operator_key_on_a_business_route_is_403(client, shop, operator, endpoint):
    before = OutboundMessage.select().count() + Contact.select().count() + BlockEntry.select().count()
    answer = client.open(fill(endpoint.rule), method=endpoint.method, json={}, headers=operator)
    assert (answer.status_code, answer.json["error"]["code"]) == (403, "forbidden")
    assert OutboundMessage.select().count() + Contact.select().count() + BlockEntry.select().count() == before
