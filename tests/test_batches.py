"""Batches: a group or multi-recipient send is one batch, followed by `GET /api/v1/batches/<id>`, the
`?batch=` filter of the message list and the console's `/console/batches/<id>` page."""

from __future__ import annotations

import re

import pytest

from bot.apikeys import create_key
from bot.pipeline.batches import fan_out
from bot.pipeline.sending import Send, send_to_phones
from bot.pipeline.statuses import Status
from models import Account, Batch, BlockEntry, Contact, Group, GroupMember, OutboundMessage
from tests.console_helpers import log_in, make_user
from webhooks.simulator import fail_recipient

DELIVERED, BLOCKED, UNKNOWN = "+46731234567", "+46731234568", "+46731234569"


@pytest.fixture
def shop(make_account, make_carrier, make_number):
    carrier = make_carrier("simulator", name="sim", secret="")
    account = make_account(name="Shop", balance=10_000, price_per_segment=35)
    other = make_account(name="Other", balance=10_000)
    make_number(account, carrier, "+46700000001")
    make_number(other, carrier, "+46700000002")
    return account, other


def key(account: Account, role: str = "user") -> dict[str, str]:
    return {"Authorization": f"Bearer {create_key(account, role)[1]}"}


def group_of(account: Account, name: str, phones: list[str]) -> Group:
    group = Group.create(account=account, name=name, name_key=name.casefold())
    for phone in phones:
        GroupMember.create(group=group, contact=Contact.create(account=account, phone=phone))
    return group


def send(client, account: Account, **body) -> dict:
    answer = client.post("/api/v1/messages", json={"from": "Shop", "text": "Sale", **body}, headers=key(account))
    assert answer.status_code == 202, answer.json
    return answer


def test_group_send_progress_before_and_after_fan_out_and_after_the_reports(client, shop, live_server, run_worker):
    account, _ = shop
    group_of(account, "VIP", [DELIVERED, "+46731234570", BLOCKED, UNKNOWN])
    BlockEntry.create(account=account, phone=BLOCKED)
    fail_recipient("sim", UNKNOWN, Status.UNKNOWN_SUBSCRIBER)
    answer = send(client, account, group="VIP")
    batch = answer.json["batch"]["id"]
    assert answer.headers["Location"] == f"/api/v1/batches/{batch}"
    viewer = key(account, "viewer")
    zero = {"Info": 0, "Success": 0, "Rejection": 0, "Error": 0}
    assert client.get(f"/api/v1/batches/{batch}", headers=viewer).json == {
        "id": batch,
        "recipients": 4,
        "accepted": 0,
        "by_status_group": zero,
        "done": False,
        "clicks": 0,
    }
    assert fan_out(batch) == "done"
    fanned = client.get(answer.headers["Location"], headers=viewer).json
    assert (fanned["accepted"], fanned["done"]) == (4, False)
    assert fanned["by_status_group"] == {**zero, "Info": 3, "Rejection": 1}  # 3 queued, 1 blocked (405)
    run_worker()  # sends, and the simulator's delivery reports come back over HTTP
    final = client.get(f"/api/v1/batches/{batch}", headers=viewer).json
    assert final["by_status_group"] == {"Info": 0, "Success": 2, "Rejection": 1, "Error": 1}
    assert (final["accepted"], final["done"]) == (4, True)


def test_a_send_to_several_phones_is_one_batch_and_one_phone_none(client, shop):
    account, _ = shop
    answer = send(client, account, to=[DELIVERED, "12", "0731234568"])
    batch = answer.json["batch"]
    assert batch == {"id": batch["id"], "recipients": 3}
    assert answer.headers["Location"] == f"/api/v1/batches/{batch['id']}"
    assert [m["to"] for m in answer.json["messages"]] == [DELIVERED, "12", BLOCKED]
    assert {m.batch for m in OutboundMessage.select()} == {batch["id"]}
    row = Batch.get_by_id(batch["id"])
    assert (row.group, row.recipients, row.state, row.account_id) == (None, 3, "done", account.id)
    progress = client.get(answer.headers["Location"], headers=key(account, "viewer")).json
    assert progress["by_status_group"] == {"Info": 2, "Success": 0, "Rejection": 1, "Error": 0}  # "12" is 409
    assert (progress["accepted"], progress["done"]) == (3, False)  # two are still queued

    one = send(client, account, to=[UNKNOWN])
    assert "batch" not in one.json
    assert one.headers["Location"] == f"/api/v1/messages/{one.json['messages'][0]['id']}"
    assert OutboundMessage.get(OutboundMessage.recipient == UNKNOWN).batch is None
    assert Batch.select().count() == 1


def test_a_phone_listed_twice_is_refused_and_nothing_is_written(client, shop):
    account, _ = shop
    for twice in ([DELIVERED, "+46731234570", DELIVERED], [DELIVERED, " 073-123 45 67"], ["12", "12"]):
        answer = client.post("/api/v1/messages", json={"to": twice, "from": "Shop", "text": "Hi"}, headers=key(account))
        assert (answer.status_code, answer.json["error"]["field"]) == (422, "to"), answer.json
        assert "twice" in answer.json["error"]["message"]
    assert OutboundMessage.select().count() == Batch.select().count() == 0
    assert Account.get_by_id(account.id).balance == 10_000


def test_another_accounts_batch_is_not_found(client, shop):
    account, other = shop
    batch = send(client, account, to=[DELIVERED, UNKNOWN]).json["batch"]["id"]
    assert client.get(f"/api/v1/batches/{batch}", headers=key(account, "viewer")).status_code == 200
    for path in (f"/api/v1/batches/{batch}", "/api/v1/batches/0123456789abcdef"):
        answer = client.get(path, headers=key(other, "admin"))
        assert (answer.status_code, answer.json["error"]["code"]) == (404, "not_found")
    listed = client.get(f"/api/v1/messages?batch={batch}", headers=key(other, "viewer")).json
    assert listed["messages"] == []


def test_the_message_list_filters_by_batch(client, shop):
    account, _ = shop
    first = send(client, account, to=[DELIVERED, UNKNOWN]).json
    second = send(client, account, to=[DELIVERED, BLOCKED, "+46731234570"]).json
    send(client, account, to=DELIVERED)
    viewer = key(account, "viewer")
    for sent in (first, second):
        listed = client.get(f"/api/v1/messages?batch={sent['batch']['id']}", headers=viewer)
        assert listed.status_code == 200
        assert [m["id"] for m in listed.json["messages"]] == sorted((m["id"] for m in sent["messages"]), reverse=True)
    assert client.get("/api/v1/messages?batch=nosuchbatch", headers=viewer).json["messages"] == []
    assert len(client.get("/api/v1/messages", headers=viewer).json["messages"]) == 6


def test_the_console_shows_a_batchs_progress_and_messages_newest_first(app, client, shop, monkeypatch):
    account, other = shop
    make_user(account, "ann@acme.se", role="viewer")
    make_user(other, "olle@other.se", role="admin")
    sent = send(client, account, to=[DELIVERED, "12", UNKNOWN]).json
    batch = sent["batch"]["id"]
    log_in(client, "ann@acme.se")
    page = client.get(f"/console/batches/{batch}").get_data(as_text=True)
    assert "<strong>3</strong> of <strong>3</strong> recipients accepted" in page
    assert '<progress class="batch" max="3" value="3">' in page
    counts = dict(re.findall(r'id="group-(\w+)">(\d+)<', page))
    assert counts == {"info": "2", "success": "0", "rejection": "1", "error": "0"}
    assert "In progress" in page and "409 InvalidRecipient" in page
    links = [int(found) for found in re.findall(r'href="/console/messages/(\d+)"', page)]
    assert links == sorted((m["id"] for m in sent["messages"]), reverse=True)

    monkeypatch.setattr("bot.console.batches.PAGE", 2)
    second = client.get(f"/console/batches/{batch}?page=2").get_data(as_text=True)
    assert re.findall(r'href="/console/messages/(\d+)"', second) == [str(min(links))]
    assert "Page 2 of 2" in second

    message = client.get(f"/console/messages/{links[0]}").get_data(as_text=True)
    assert f'href="/console/batches/{batch}"' in message

    stranger = app.test_client()
    log_in(stranger, "olle@other.se")
    refused = stranger.get(f"/console/batches/{batch}")
    assert refused.status_code == 404 and "Not found" in refused.get_data(as_text=True)


def test_a_console_group_send_lands_on_its_batch_page(client, shop, run_worker):
    account, _ = shop
    group = group_of(account, "VIP", [DELIVERED, UNKNOWN])
    make_user(account, "ann@acme.se", role="user")
    token = log_in(client, "ann@acme.se")
    form = {"csrf_token": token, "mode": "group", "group": str(group.id), "sender": "Shop", "text": "Sale"}
    answer = client.post("/console/send", data=form)
    batch = Batch.get()
    assert answer.headers["Location"] == f"/console/batches/{batch.id}"
    waiting = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "<strong>0</strong> of <strong>2</strong> recipients accepted" in waiting
    fan_out(batch.id)
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "<strong>2</strong> of <strong>2</strong> recipients accepted" in page and "VIP" in page


def test_a_batch_of_a_text_no_database_can_hold_is_stored_and_its_messages_rejected(shop):
    account, _ = shop
    sent = send_to_phones(Send(account, "Shop", "nul \x00 here"), [DELIVERED, UNKNOWN])
    assert [m.status for m in sent] == [Status.INVALID_CONTENT] * 2
    assert Batch.get_by_id(sent[0].batch).text == "nul \ufffd here"


def test_a_batch_counts_the_clicks_on_its_messages_links_in_the_api_and_the_console(app, client, shop):
    from models import TrackedLink

    account, _ = shop
    app.config["SHORT_LINK_BASE_URL"] = "https://x.se"
    sent = send(client, account, to=[DELIVERED, UNKNOWN], text="Sale https://shop.example/a", track_links=True).json
    batch = sent["batch"]["id"]
    first, second = (m["text"].rsplit("/", 1)[1] for m in sent["messages"])
    for code in (first, first, second):
        assert client.get(f"/l/{code}").status_code == 302
    send(client, account, to=[DELIVERED, BLOCKED], text="Other https://shop.example/b", track_links=True)
    client.get(f"/l/{TrackedLink.select().order_by(TrackedLink.id.desc()).first().code}")  # another batch's click
    progress = client.get(f"/api/v1/batches/{batch}", headers=key(account, "viewer")).json
    assert progress["clicks"] == 3

    make_user(account, "ann@acme.se", role="user")
    token = log_in(client, "ann@acme.se")
    page = client.get(f"/console/batches/{batch}").get_data(as_text=True)
    assert '<strong id="batch-clicks">3</strong> link clicks' in page and '<th class="num">Clicks</th>' in page
    clicks = dict(re.findall(r'href="/console/messages/(\d+)">.*?<td class="num">(\d+)</td></tr>', page, re.S))
    assert clicks == {str(sent["messages"][0]["id"]): "2", str(sent["messages"][1]["id"]): "1"}

    form = {"csrf_token": token, "mode": "phones", "to": f"{DELIVERED}, {UNKNOWN}", "sender": "Shop"}
    tracked = client.post("/console/send", data={**form, "text": "See https://shop.example/c", "track_links": "on"})
    assert tracked.status_code == 200 and '<th class="num">Clicks</th>' in tracked.get_data(as_text=True)
    assert OutboundMessage.select().where(OutboundMessage.body.startswith("See https://x.se/l/")).count() == 2
    previewed = client.post(
        "/console/send/preview", data={**form, "text": "x https://shop.example/" + "a" * 200, "track_links": "on"}
    ).json
    assert previewed["segments"] == 1
