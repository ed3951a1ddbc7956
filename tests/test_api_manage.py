"""The business API: roles on every endpoint, account isolation, validation that writes nothing."""

from __future__ import annotations

import pytest

import bot.api.routes  # noqa: F401  (declares the routes)
from bot.api.schema import ENDPOINTS
from bot.apikeys import create_key
from bot.pipeline.statuses import Status
from models import Account, Batch, BlockEntry, Contact, Group, Keyword, LedgerEntry, OutboundMessage, VirtualNumber
from tests.api_paths import fill

MOBILE = "+46731234567"


@pytest.fixture
def shop(make_account, make_carrier, make_number):
    carrier = make_carrier("generic", name="gw")
    account = make_account(name="Shop", balance=1000, price_per_segment=35)
    other = make_account(name="Other", balance=1000)
    make_number(account, carrier, "+46700000001")
    make_number(other, carrier, "+46700000002")
    return account, other


def key(account: Account, role: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {create_key(account, role)[1]}"}


ROLE_RANK = {"viewer": 0, "user": 1, "admin": 2}


@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if e.role in ("user", "admin")], ids=lambda e: f"{e.method} {e.rule}"
)
def test_a_lower_role_is_refused_with_403_and_writes_nothing(client, shop, endpoint):
    lower = "viewer" if endpoint.role == "user" else "user"
    before = OutboundMessage.select().count() + Contact.select().count() + BlockEntry.select().count()
    answer = client.open(fill(endpoint.rule), method=endpoint.method, json={}, headers=key(shop[0], lower))
    assert answer.status_code == 403, answer.json
    assert answer.json["error"]["code"] == "forbidden"
    assert OutboundMessage.select().count() + Contact.select().count() + BlockEntry.select().count() == before


def test_account_settings_and_topups(client, shop):
    account, _ = shop
    assert client.get("/api/v1/account", headers=key(account, "viewer")).json == {
        "name": "Shop",
        "billing_mode": "balance",
        "balance": 1000,
        "currency": "SEK",
        "price_per_segment": 35,
        "stop_service_enabled": True,
        "nanp_campaign": "",
        "quiet_hours": None,
        "status_callback_url": "",
        "require_two_factor": False,
        "timezone": "UTC",
    }
    operator = {"Authorization": f"Bearer {create_key(None, 'operator')[1]}"}
    changed = client.patch(
        "/api/v1/operator/accounts/Shop", json={"billing_mode": "invoice", "nanp_campaign": "C1"}, headers=operator
    )
    assert (changed.json["billing_mode"], changed.json["nanp_campaign"]) == ("invoice", "C1")
    own_view = client.get("/api/v1/account", headers=key(account, "viewer")).json
    assert (own_view["billing_mode"], own_view["nanp_campaign"]) == ("invoice", "C1")
    topped = client.post("/api/v1/operator/accounts/Shop/topups", json={"amount": 500}, headers=operator)
    assert (topped.status_code, topped.json["balance"]) == (201, 1500)
    ledger = client.get("/api/v1/account/ledger", headers=key(account, "viewer")).json["ledger"]
    assert [(e["kind"], e["amount"]) for e in ledger] == [("topup", 500)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": "10"}, "amount"),
        ({}, "amount"),
        ({"amount": 10, "extra": 1}, "extra"),
    ],
)
def test_bad_topups_are_422_naming_the_field_and_change_nothing(client, shop, body, field):
    operator = {"Authorization": f"Bearer {create_key(None, 'operator')[1]}"}
    answer = client.post("/api/v1/operator/accounts/Shop/topups", json=body, headers=operator)
    assert (answer.status_code, answer.json["error"]["field"]) == (422, field)
    assert Account.get_by_id(shop[0].id).balance == 1000
    assert LedgerEntry.select().count() == 0


def test_oversized_and_non_json_bodies(client, shop):
    big = client.post(
        "/api/v1/contacts", data="x" * (65 * 1024), headers={**key(shop[0]), "Content-Type": "application/json"}
    )
    assert big.status_code == 413 and big.json["error"]["code"]
    garbage = client.post(
        "/api/v1/contacts", data="{nope", headers={**key(shop[0]), "Content-Type": "application/json"}
    )
    assert garbage.status_code == 400
    assert Contact.select().count() == 0


def test_numbers_and_keywords(client, shop):
    account, _ = shop
    numbers = client.get("/api/v1/numbers", headers=key(account, "viewer")).json["numbers"]
    assert [n["number"] for n in numbers] == ["+46700000001"]
    patched = client.patch(
        "/api/v1/numbers/+46700000001", json={"save_enabled": False, "help_text": "Hi"}, headers=key(account)
    )
    assert (patched.json["save_enabled"], patched.json["help_text"]) == (False, "Hi")
    assert client.patch("/api/v1/numbers/+46700000002", json={}, headers=key(account)).status_code == 404

    created = client.post(
        "/api/v1/numbers/+46700000001/keywords",
        headers=key(account),
        json={
            "word": "Join",
            "aliases": ["gå med"],
            "action": "subscribe",
            "group": "vip",
            "reply": "Welcome {first_name} 😀",
        },
    )
    assert created.status_code == 201, created.json
    assert created.json["reply_segments"] == {"encoding": "UCS-2", "segments": 1, "units": 23}
    refusals = [
        ({"word": "STOP", "action": "reply"}, 422, "word"),
        ({"word": "join", "action": "reply"}, 409, "word"),
        ({"word": "enter", "aliases": ["GÅ MED"], "action": "reply"}, 409, "word"),
        ({"word": "price", "action": "reply", "reply": "{price}"}, 422, "reply"),
        ({"word": "price", "action": "reply", "reply": "{first_name"}, 422, "reply"),
        ({"word": "leave", "action": "unsubscribe"}, 422, "group"),
        ({"word": "bot", "action": "forward"}, 422, "url"),
        ({"word": "x", "action": "dance"}, 422, "action"),
    ]
    for body, status, field in refusals:
        answer = client.post("/api/v1/numbers/+46700000001/keywords", json=body, headers=key(account))
        assert (answer.status_code, answer.json["error"]["field"]) == (status, field), body
    assert Keyword.select().count() == 1
    patched = client.patch(
        "/api/v1/numbers/+46700000001/keywords/JOIN", json={"reply": "Hej {first_name}"}, headers=key(account)
    )
    assert patched.json["reply_segments"]["encoding"] == "GSM-7"
    assert client.delete("/api/v1/numbers/+46700000001/keywords/join", headers=key(account)).status_code == 204
    assert Keyword.select().count() == 0


def test_contacts_crud_and_isolation(client, shop):
    account, other = shop
    created = client.post(
        "/api/v1/contacts",
        headers=key(account, "user"),
        json={"phone": "0731234567", "first_name": "Anna", "groups": ["VIP"], "fields": {"city": "Lund"}},
    )
    assert created.status_code == 201
    body = created.json
    assert (body["phone"], body["groups"], body["fields"]) == (MOBILE, ["VIP"], {"city": "Lund"})
    dup = client.post("/api/v1/contacts", json={"phone": MOBILE}, headers=key(account, "user"))
    assert (dup.status_code, dup.json["error"]["field"]) == (409, "phone")
    bad = client.post("/api/v1/contacts", json={"phone": "12"}, headers=key(account, "user"))
    assert (bad.status_code, bad.json["error"]["field"]) == (422, "phone")
    url = f"/api/v1/contacts/{body['id']}"
    assert client.get(url, headers=key(other, "admin")).status_code == 404
    assert client.patch(url, json={"last_name": "X"}, headers=key(other, "admin")).status_code == 404
    assert (
        client.patch(url, json={"last_name": "Berg", "groups": []}, headers=key(account, "user")).json["groups"] == []
    )
    assert client.delete(url, headers=key(other, "admin")).status_code == 404
    assert client.delete(url, headers=key(account, "user")).status_code == 204
    assert Contact.select().count() == 0


def test_csv_import_all_or_nothing_unless_asked(client, shop, run_worker):
    account, _ = shop
    csv = "phone,first_name,last_name,groups\n0731234567,Anna,Berg,vip;news\nnot-a-phone,Bo,,\n0701112233,Cy,,news\n"
    headers = {**key(account, "user"), "Content-Type": "text/csv"}
    refused = client.post("/api/v1/contacts/import", data=csv, headers=headers)
    assert refused.status_code == 202
    run_worker()
    failed = client.get(refused.headers["Location"], headers=key(account, "viewer")).json
    assert (failed["state"], failed["errors"][0]["row"]) == ("failed", 3)
    assert Contact.select().count() == 0
    partial = client.post("/api/v1/contacts/import?skip_invalid=true", data=csv, headers=headers)
    run_worker()
    report = client.get(partial.headers["Location"], headers=key(account, "viewer")).json
    assert {name: report[name] for name in ("state", "imported", "updated", "skipped", "errors")} == {
        "state": "done",
        "imported": 2,
        "updated": 0,
        "skipped": 1,
        "errors": [{"row": 3, "field": "phone", "message": "'not-a-phone' is not a phone number"}],
    }
    exported = client.get("/api/v1/contacts/export", headers=key(account, "viewer"))
    assert exported.content_type.startswith("text/csv")
    assert exported.get_data(as_text=True).splitlines() == [
        "phone,first_name,last_name,groups",
        "+46731234567,Anna,Berg,news;vip",
        "+46701112233,Cy,,news",
    ]


def test_groups(client, shop):
    account, _ = shop
    made = client.post("/api/v1/groups", json={"name": "VIP"}, headers=key(account, "user"))
    assert made.status_code == 201
    assert client.post("/api/v1/groups", json={"name": "vip"}, headers=key(account, "user")).status_code == 409
    renamed = client.patch(f"/api/v1/groups/{made.json['id']}", json={"name": "Gold"}, headers=key(account, "user"))
    assert renamed.json == {"id": made.json["id"], "name": "Gold", "size": 0}
    assert client.delete(f"/api/v1/groups/{made.json['id']}", headers=key(account, "user")).status_code == 204
    assert Group.select().count() == 0


def test_blocklist_and_privacy_erase(client, shop):
    account, _ = shop
    added = client.post("/api/v1/blocklist", json={"phone": "0731234567"}, headers=key(account, "user"))
    assert (added.status_code, added.json["source"]) == (201, "api")
    sent = client.post(
        "/api/v1/messages", json={"to": MOBILE, "from": "Shop", "text": "Offer"}, headers=key(account, "user")
    )
    assert sent.json["messages"][0]["status"] == Status.RECIPIENT_REJECTED
    Contact.create(account=account, phone=MOBILE, first_name="Anna")
    erased = client.delete(f"/api/v1/privacy/{MOBILE}", headers=key(account))
    assert erased.json == {
        "phone": MOBILE,
        "contacts": 1,
        "messages": 1,
        "conversations": 0,
        "parts": 0,
        "blocked": True,
        "consent_events": 1,  # the proof of the opt-out is kept
    }
    assert OutboundMessage.get().body == "[erased]"
    assert BlockEntry.select().count() == 1  # kept, so the phone is never messaged again
    assert client.delete(f"/api/v1/blocklist/{MOBILE}", headers=key(account, "user")).status_code == 204
    assert client.delete(f"/api/v1/blocklist/{MOBILE}", headers=key(account, "user")).status_code == 404


def test_send_to_phones_is_validated_and_funded_before_the_answer(client, shop):
    account, _ = shop
    sent = client.post(
        "/api/v1/messages",
        headers=key(account, "user"),
        json={"to": [MOBILE, "12", "+46701112233"], "from": "Shop", "text": "Hej!", "validity_minutes": 60},
    )
    assert sent.status_code == 202
    statuses = [(m["to"], m["status"], m["status_name"]) for m in sent.json["messages"]]
    assert statuses == [(MOBILE, 102, "Queued"), ("12", 409, "InvalidRecipient"), ("+46701112233", 102, "Queued")]
    assert Account.get_by_id(account.id).balance == 1000 - 2 * 35
    neither = client.post("/api/v1/messages", json={"from": "Shop", "text": "x"}, headers=key(account, "user"))
    assert (neither.status_code, neither.json["error"]["field"]) == (422, "to")


def test_cancel_until_claimed(client, shop):
    account, _ = shop
    message = client.post(
        "/api/v1/messages",
        json={"to": MOBILE, "from": "Shop", "text": "Hi", "send_at": "2030-01-01T10:00:00+01:00"},
        headers=key(account, "user"),
    ).json["messages"][0]
    canceled = client.post(f"/api/v1/messages/{message['id']}/cancel", headers=key(account, "user"))
    assert (canceled.status_code, canceled.json["status"], canceled.json["legacy_status"]) == (200, 203, "Canceled")
    assert [e["code"] for e in canceled.json["events"]] == [101, 103, 102, 203, 104]
    again = client.post(f"/api/v1/messages/{message['id']}/cancel", headers=key(account, "user"))
    assert again.status_code == 409
    assert Account.get_by_id(account.id).balance == 1000


def test_group_send_answers_at_once_and_fans_out_in_jobs(client, shop, run_worker):
    account, _ = shop
    vip = Group.create(account=account, name="VIP", name_key="vip")
    for n in range(25):
        contact = Contact.create(account=account, phone=f"+467011122{n:02d}")
        vip.members.model.create(group=vip, contact=contact)
    answer = client.post(
        "/api/v1/messages", json={"group": "vip", "from": "Shop", "text": "Sale"}, headers=key(account, "user")
    )
    assert answer.status_code == 202
    assert answer.json["batch"]["recipients"] == 25 and answer.json["messages"] == []
    assert OutboundMessage.select().count() == 0
    run_worker()
    assert OutboundMessage.select().count() == 25
    from bot.pipeline.batches import fan_out

    batch = answer.json["batch"]["id"]
    assert fan_out(batch) == "skipped"  # a re-run of a done batch sends nobody twice
    Batch.update(state="pending", cursor=0).where(Batch.id == batch).execute()  # as if the cursor never moved
    assert fan_out(batch) == "done"
    assert OutboundMessage.select().count() == 25
    assert {m.batch for m in OutboundMessage.select()} == {batch}


def test_unsubscribe_link(client, shop):
    account, _ = shop
    sent = client.post(
        "/api/v1/messages",
        json={"to": MOBILE, "from": "Shop", "text": "Sale! Stop: {unsubscribe_url}"},
        headers=key(account, "user"),
    ).json["messages"][0]
    link = sent["text"].split("Stop: ")[1]
    path = link.removeprefix("http://smsbot.test")
    assert len(path) == len("/u/") + 24 and sent["segments"] == 1
    page = client.get(path)
    assert page.status_code == 200 and "+*******4567" in page.get_data(as_text=True)
    assert BlockEntry.select().count() == 0
    assert client.post(path).status_code == 200
    assert BlockEntry.get().source == "link"
    assert client.get(path[:-2] + "xx").status_code == 404
    account.stop_service_enabled = False
    account.save()
    refused = client.post(
        "/api/v1/messages",
        json={"to": MOBILE, "from": "Shop", "text": "{unsubscribe_url}"},
        headers=key(account, "user"),
    )
    assert (refused.status_code, refused.json["error"]["field"]) == (422, "text")


def test_openapi_lists_every_endpoint(client):
    document = client.get("/api/v1/openapi.json").json
    assert document["openapi"] == "3.1.0"
    assert "/contacts/{contact_id}" in document["paths"]
    assert set(document["paths"]["/messages"]) == {"get", "post"}
    assert len([op for path in document["paths"].values() for op in path]) == len(ENDPOINTS)


def test_a_numbers_are_only_assigned_by_the_operator(client, shop):
    assert VirtualNumber.select().count() == 2
    assert client.post("/api/v1/numbers", json={}, headers=key(shop[0])).status_code == 405


def test_invoice_summary_counts_what_was_billed_and_not_refunded(client, shop):
    account, _ = shop
    account.billing_mode = "invoice"
    account.save()
    sent = client.post(
        "/api/v1/messages",
        json={"to": [MOBILE, "+46701112233", "+46701112234"], "from": "Shop", "text": "a" * 161},
        headers=key(account, "user"),
    ).json["messages"]
    client.post(f"/api/v1/messages/{sent[0]['id']}/cancel", headers=key(account, "user"))
    month = sent[0]["created_at"][:7]
    summary = client.get(f"/api/v1/account/invoices/{month}", headers=key(account, "viewer")).json
    assert summary == {"month": month, "messages": 2, "segments": 4, "amount": 4 * 35, "currency": "SEK"}
    assert Account.get_by_id(account.id).balance == 1000  # post-invoicing takes priority over the balance
    empty = client.get("/api/v1/account/invoices/2001-01", headers=key(account, "viewer")).json
    assert (empty["messages"], empty["amount"]) == (0, 0)
    assert client.get("/api/v1/account/invoices/2001-13", headers=key(account, "viewer")).status_code == 422
