"""`POST /api/v1/messages/preview`: the segment table's rows, the UCS-2 culprits, price and balance after."""

from __future__ import annotations

import pytest

from bot.apikeys import create_key
from models import Account, Contact, Group, GroupMember, OutboundMessage
from tests.test_segments import WORKED_TABLE


@pytest.fixture
def account(app):
    return Account.create(name="Acme", balance=1000, price_per_segment=35)


def key_of(account, role="user"):
    return {"Authorization": f"Bearer {create_key(account, role, 'test')[1]}"}


def preview(client, account, body, role="user"):
    return client.post("/api/v1/messages/preview", json=body, headers=key_of(account, role))


# The rows as the pipeline counts them (after NFC): row 29's decomposed é becomes GSM-7, one segment.
ROWS = [row for row in WORKED_TABLE if row[0] != 29]


@pytest.mark.parametrize(("row", "text", "encoding", "units", "segments"), ROWS, ids=[str(r[0]) for r in ROWS])
def test_preview_counts_every_row_of_the_segment_table(client, account, row, text, encoding, units, segments):
    answer = preview(client, account, {"text": text})
    assert answer.status_code == 200, answer.get_json()
    data = answer.get_json()
    assert (data["encoding"], data["segments"], data["recipients"]) == (encoding, segments, 1)
    assert data["price"] == segments * 35
    assert data["balance_after"] == 1000 - segments * 35


def test_preview_names_the_characters_that_force_ucs2(client, account):
    data = preview(client, account, {"text": "It\u2019s 20 € – “great” 😀 it\u2019s"}).get_json()
    assert data["encoding"] == "UCS-2"
    assert data["ucs2_characters"] == ["\u2019", "–", "“", "”", "😀"]  # € is GSM-7 (extension table)
    assert data["characters"] == len("It\u2019s 20 € – “great” 😀 it\u2019s")
    assert preview(client, account, {"text": "Hej Åsa €"}).get_json()["ucs2_characters"] == []


def test_preview_for_a_list_of_phones_and_a_group(client, account):
    phones = ["+46731234567", "+46731234568", "+46731234569"]
    data = preview(client, account, {"text": "a" * 161, "to": phones}).get_json()
    assert (data["segments"], data["recipients"], data["price"], data["balance_after"]) == (2, 3, 210, 790)
    group = Group.create(account=account, name="vip", name_key="vip")
    for n in range(4):
        GroupMember.create(group=group, contact=Contact.create(account=account, phone=f"+4673123450{n}"))
    data = preview(client, account, {"text": "Hi", "group": "VIP"}).get_json()
    assert (data["recipients"], data["price"], data["balance_after"]) == (4, 140, 860)


def test_preview_on_an_invoice_account_has_no_balance_after(client):
    account = Account.create(name="Inv", billing_mode="invoice", price_per_segment=20)
    data = preview(client, account, {"text": "Hi", "to": "+46731234567"}).get_json()
    assert (data["price"], data["balance_after"]) == (20, None)


def test_a_balance_too_small_shows_a_negative_balance_after(client):
    account = Account.create(name="Poor", balance=10, price_per_segment=35)
    assert preview(client, account, {"text": "Hi"}).get_json()["balance_after"] == -25


def test_preview_sends_nothing_and_checks_its_fields(client, account):
    assert preview(client, account, {"text": "Hi"}, role="viewer").status_code == 403
    missing = preview(client, account, {"to": "+46731234567"})
    assert missing.status_code == 422 and missing.get_json()["error"]["field"] == "text"
    both = preview(client, account, {"text": "Hi", "to": "+46731234567", "group": "vip"})
    assert both.status_code == 422 and both.get_json()["error"]["field"] == "to"
    unknown = preview(client, account, {"text": "Hi", "group": "nobody"})
    assert unknown.status_code == 404 and unknown.get_json()["error"]["field"] == "group"
    assert OutboundMessage.select().count() == 0
    assert Account.get_by_id(account.id).balance == 1000


def test_preview_is_in_the_openapi_description(client):
    document = client.get("/api/v1/openapi.json").get_json()
    operation = document["paths"]["/messages/preview"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["required"] == ["text"]


def test_preview_with_track_links_counts_the_short_link_the_send_will_carry(app, client, account):
    from bot.pipeline.sending import Send, send_to_phones
    from models import Carrier, VirtualNumber

    app.config["SHORT_LINK_BASE_URL"] = "https://x.se"
    text = "Sale today only at https://shop.example/" + "a" * 150  # 190 characters: two segments as written
    plain = preview(client, account, {"text": text}).json
    tracked = preview(client, account, {"text": text, "track_links": True}).json
    assert (plain["segments"], plain["characters"], plain["price"]) == (2, 190, 70)
    short = "Sale today only at https://x.se/l/xxxxxxx"
    assert (tracked["segments"], tracked["characters"], tracked["price"]) == (1, len(short), 35)
    assert preview(client, account, {"text": text, "track_links": False}).json == plain
    VirtualNumber.create(number="+46700000001", account=account, carrier=Carrier.create(name="gw", kind="generic"))
    (sent,) = send_to_phones(Send(account, "+46700000001", text, track_links=True), ["+46731234567"])
    assert (sent.segments, len(sent.body), sent.price) == (tracked["segments"], tracked["characters"], tracked["price"])
    refused = preview(client, account, {"text": text, "track_links": "yes"})
    assert (refused.status_code, refused.json["error"]["field"]) == (422, "track_links")
