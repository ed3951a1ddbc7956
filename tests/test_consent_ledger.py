"""The consent ledger and topics: every opt-out and opt-in is an event with its evidence, shown by
`GET /api/v1/consent` and `GET /api/v1/blocklist/export`; a phone opts out of one topic or of everything,
and a send of a topic is refused (405) to a phone opted out of it. Through the real webhook and API."""

from __future__ import annotations

import csv
import io
import itertools
import json

import pytest

from bot.apikeys import create_key
from bot.pipeline.batches import fan_out
from bot.signing import HEADER, sign
from bot.unsubscribe import token_for
from keywords.optin import CONFIRMATION as OPT_IN
from keywords.optin import TOPIC_CONFIRMATION as TOPIC_OPT_IN
from keywords.optout import CONFIRMATION as OPT_OUT
from keywords.optout import TOPIC_CONFIRMATION as TOPIC_OPT_OUT
from models import Account, BlockEntry, Contact, Group, GroupMember, InboundMessage, Keyword, OutboundMessage
from tests.console_helpers import log_in, make_user

NUMBER, PHONE, OTHER = "+46700000001", "+46731234567", "+46731234568"
ids = itertools.count(1)


@pytest.fixture
def shop(make_account, make_carrier, make_number):
    return make_number(make_account(name="Shop", balance=10_000, price_per_segment=1), make_carrier("generic"), NUMBER)


def key(account: Account, role: str = "user") -> dict[str, str]:
    return {"Authorization": f"Bearer {create_key(account, role)[1]}"}


def text(client, number, body: str, phone: str = PHONE) -> list[str]:
    """Text the number through the signed generic webhook; returns the replies it caused."""
    before = OutboundMessage.select().count()
    raw = json.dumps({"id": f"c{next(ids)}", "from": phone, "to": NUMBER, "text": body}).encode()
    headers = {"Content-Type": "application/json", HEADER: sign(number.carrier.secret, raw)}
    assert client.post(f"/webhooks/{number.carrier.name}/inbound", data=raw, headers=headers).status_code == 200
    return [m.body for m in OutboundMessage.select().order_by(OutboundMessage.id).offset(before)]


def topics(client, account: Account) -> None:
    admin = key(account, "admin")
    for body in ({"name": "Offers", "words": ["NOOFFERS"]}, {"name": "reminders"}):
        assert client.post("/api/v1/topics", json=body, headers=admin).status_code == 201


def sent(client, account: Account, topic: str | None = None, to: str = PHONE) -> int:
    """Send one message (of `topic`); returns the status the pipeline gave it."""
    body = {"from": NUMBER, "to": to, "text": "News", **({"topic": topic} if topic else {})}
    answer = client.post("/api/v1/messages", json=body, headers=key(account))
    assert answer.status_code == 202, answer.json
    return answer.json["messages"][0]["status"]


def history(client, account: Account, phone: str = PHONE, **query) -> dict:
    answer = client.get("/api/v1/consent", query_string={"phone": phone, **query}, headers=key(account, "viewer"))
    assert answer.status_code == 200, answer.json
    return answer.json


def test_stop_and_start_are_events_with_the_exact_text_newest_first(client, shop):
    text(client, shop, "Stop please!")
    text(client, shop, "start")
    inbound = {row.body: row.id for row in InboundMessage.select()}
    answer = history(client, shop.account, "073-123 45 67")  # any format the account's region reads
    assert answer["phone"] == PHONE and answer["next"] is None
    seen = [(e["kind"], e["topic"], e["source"], e["text"], e["inbound_id"], e["actor"]) for e in answer["events"]]
    assert seen == [
        ("opt_in", None, "keyword", "start", inbound["start"], ""),
        ("opt_out", None, "keyword", "Stop please!", inbound["Stop please!"], ""),
    ]


def test_a_repeat_that_changes_nothing_writes_no_event(client, shop):
    text(client, shop, "STOP")
    text(client, shop, "STOP")
    text(client, shop, "START")
    text(client, shop, "START")
    assert [e["kind"] for e in history(client, shop.account)["events"]] == ["opt_in", "opt_out"]


@pytest.mark.parametrize("phone", ["", "not a phone", "+4673"])
def test_an_invalid_or_missing_phone_is_422_naming_phone(client, shop, phone):
    query = {"phone": phone} if phone else {}
    answer = client.get("/api/v1/consent", query_string=query, headers=key(shop.account, "viewer"))
    assert answer.status_code == 422
    assert answer.json["error"]["field"] == "phone"


def test_history_pages_like_the_other_lists_and_is_the_accounts_own(client, shop, make_account):
    user = key(shop.account)
    for _ in range(3):
        assert client.post("/api/v1/blocklist", json={"phone": PHONE}, headers=user).status_code == 201
        assert client.delete(f"/api/v1/blocklist/{PHONE}", headers=user).status_code == 204
    first = history(client, shop.account, limit=4)
    second = history(client, shop.account, limit=4, cursor=first["next"])
    kinds = [e["kind"] for e in first["events"] + second["events"]]
    assert kinds == ["opt_in", "opt_out"] * 3 and second["next"] is None
    ids_seen = [e["id"] for e in first["events"] + second["events"]]
    assert ids_seen == sorted(ids_seen, reverse=True)
    assert history(client, make_account(name="Other"))["events"] == []


def test_business_changes_name_the_api_key_and_the_console_user(client, shop):
    row, secret = create_key(shop.account, "user")
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.post("/api/v1/blocklist", json={"phone": PHONE}, headers=headers).status_code == 201
    assert client.delete(f"/api/v1/blocklist/{PHONE}", headers=headers).status_code == 204
    make_user(shop.account, "ops@shop.test")
    token = log_in(client, "ops@shop.test")
    assert client.post("/console/blocklist", data={"phone": PHONE, "csrf_token": token}).status_code == 302
    entry = BlockEntry.get()
    assert client.post(f"/console/blocklist/{entry.id}/delete", data={"csrf_token": token}).status_code == 302
    events = [(e["kind"], e["source"], e["actor"]) for e in history(client, shop.account)["events"]]
    assert events == [
        ("opt_in", "business", "user:ops@shop.test"),
        ("opt_out", "business", "user:ops@shop.test"),
        ("opt_in", "business", f"key:{row.prefix}"),
        ("opt_out", "business", f"key:{row.prefix}"),
    ]


def test_the_unsubscribe_link_is_an_event_of_source_link(client, shop):
    assert client.post(f"/u/{token_for(shop.account.id, PHONE)}").status_code == 200
    [event] = history(client, shop.account)["events"]
    assert (event["kind"], event["source"], event["topic"]) == ("opt_out", "link", None)


def test_the_ledger_survives_a_gdpr_erase(client, shop):
    text(client, shop, "STOP now")
    erased = client.delete(f"/api/v1/privacy/{PHONE}", headers=key(shop.account, "admin"))
    assert (erased.json["blocked"], erased.json["consent_events"]) == (True, 1)
    assert InboundMessage.get().body == "[erased]"
    assert [e["text"] for e in history(client, shop.account)["events"]] == ["STOP now"]


def rows_of(answer) -> list[dict]:
    return list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))


def test_export_is_the_block_list_with_its_evidence_as_csv(client, shop):
    topics(client, shop.account)
    text(client, shop, "-STOP")  # a leading minus: the phone's text would be a formula in a spreadsheet
    text(client, shop, "stop offers", phone=OTHER)
    row, secret = create_key(shop.account, "user")
    client.post("/api/v1/blocklist", json={"phone": "+46731234569"}, headers={"Authorization": f"Bearer {secret}"})
    answer = client.get("/api/v1/blocklist/export", headers=key(shop.account, "viewer"))
    assert answer.status_code == 200
    assert answer.content_type.startswith("text/csv")
    assert answer.headers["Content-Disposition"] == "attachment; filename=blocklist.csv"
    rows = rows_of(answer)
    assert [
        (r["phone"], r["topic"], r["source"], r["event_source"], r["event_text"], r["event_actor"]) for r in rows
    ] == [
        (PHONE, "", "keyword", "keyword", "'-STOP", ""),
        (OTHER, "offers", "keyword", "keyword", "stop offers", ""),
        ("+46731234569", "", "api", "business", "", f"key:{row.prefix}"),
    ]
    entry = BlockEntry.get(BlockEntry.phone == PHONE)
    assert rows[0]["since"] == entry.created_at.isoformat(timespec="milliseconds") + "Z"
    assert rows[0]["event_at"].endswith("Z")
    assert rows_of(client.get("/api/v1/blocklist/export", headers=key(Account.create(name="Empty"), "viewer"))) == []


def test_topics_are_managed_by_admins(client, shop):
    admin, user = key(shop.account, "admin"), key(shop.account, "user")
    assert client.post("/api/v1/topics", json={"name": "offers"}, headers=user).status_code == 403
    created = client.post(
        "/api/v1/topics", json={"name": "Offers", "words": ["NoOffers", "inga-erbjudanden"]}, headers=admin
    )
    assert created.status_code == 201
    assert created.json["name"] == "offers" and created.json["words"] == ["nooffers", "inga-erbjudanden"]
    assert created.headers["Location"] == "/api/v1/topics/offers"
    assert client.get("/api/v1/topics/OFFERS", headers=user).json["words"] == ["nooffers", "inga-erbjudanden"]
    assert client.post("/api/v1/topics", json={"name": "offers"}, headers=admin).status_code == 409
    listed = client.get("/api/v1/topics", headers=key(shop.account, "viewer")).json
    assert [t["name"] for t in listed["topics"]] == ["offers"]
    assert client.delete("/api/v1/topics/offers", headers=user).status_code == 403
    assert client.delete("/api/v1/topics/offers", headers=admin).status_code == 204
    assert client.delete("/api/v1/topics/offers", headers=admin).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "all"}, "name"),
        ({"name": "two words"}, "name"),
        ({"name": "x" * 33}, "name"),
        ({"name": "offers", "words": ["stop"]}, "words"),
        ({"name": "offers", "words": ["Arrêt"]}, "words"),  # reserved, whatever its accents
        ({"name": "offers", "words": ["two words"]}, "words"),
        ({"name": "offers", "words": ["nooffers", "NOREMINDERS"]}, "words"),  # another topic's word
        ({"name": "offers", "words": ["menu"]}, "words"),  # a custom keyword
        ({"name": "offers", "words": ["lunch"]}, "words"),  # a custom keyword's alias
    ],
)
def test_a_bad_topic_is_422_naming_the_field_and_changes_nothing(client, shop, body, field):
    admin = key(shop.account, "admin")
    client.post("/api/v1/topics", json={"name": "reminders", "words": ["noreminders"]}, headers=admin)
    Keyword.create(number=shop, word="menu", aliases=["lunch"], action="reply", reply="Pasta today")
    answer = client.post("/api/v1/topics", json=body, headers=admin)
    assert answer.status_code == 422 and answer.json["error"]["field"] == field
    assert [t["name"] for t in client.get("/api/v1/topics", headers=admin).json["topics"]] == ["reminders"]


def test_stop_of_a_topic_refuses_that_topics_sends_only(client, shop):
    topics(client, shop.account)
    assert text(client, shop, "STOP OFFERS") == [TOPIC_OPT_OUT.format(topic="OFFERS", account="Shop")]
    assert (sent(client, shop.account, "offers"), sent(client, shop.account, "OFFERS")) == (405, 405)
    assert sent(client, shop.account, "reminders") == 102
    assert sent(client, shop.account) == 102
    [event] = history(client, shop.account)["events"]
    assert (event["kind"], event["topic"], event["text"]) == ("opt_out", "offers", "STOP OFFERS")


def test_a_topics_own_word_opts_out_of_it(client, shop):
    topics(client, shop.account)
    assert text(client, shop, "nooffers.") == [TOPIC_OPT_OUT.format(topic="OFFERS", account="Shop")]
    assert InboundMessage.get().keyword == "NOOFFERS"
    assert (sent(client, shop.account, "offers"), sent(client, shop.account, "reminders")) == (405, 102)


def test_a_plain_stop_refuses_every_topic_and_start_lifts_everything(client, shop):
    topics(client, shop.account)
    text(client, shop, "stop offers")
    assert text(client, shop, "Stop") == [OPT_OUT.format(account="Shop")]
    assert [sent(client, shop.account, topic) for topic in ("offers", "reminders", None)] == [405, 405, 405]
    assert text(client, shop, "START") == [OPT_IN.format(account="Shop")]
    assert [sent(client, shop.account, topic) for topic in ("offers", "reminders", None)] == [102, 102, 102]
    assert BlockEntry.select().count() == 0
    assert [(e["kind"], e["topic"]) for e in history(client, shop.account)["events"]] == [
        ("opt_in", None),
        ("opt_out", None),
        ("opt_out", "offers"),
    ]


def test_start_of_a_topic_lifts_that_topic_only(client, shop):
    topics(client, shop.account)
    text(client, shop, "STOP OFFERS")
    text(client, shop, "STOP REMINDERS")
    assert text(client, shop, "start offers") == [TOPIC_OPT_IN.format(topic="OFFERS", account="Shop")]
    assert (sent(client, shop.account, "offers"), sent(client, shop.account, "reminders")) == (102, 405)


def test_only_the_phone_lifts_its_topic_opt_out(client, shop):
    topics(client, shop.account)
    user = key(shop.account)
    text(client, shop, "STOP OFFERS")
    refused = client.delete(f"/api/v1/blocklist/{PHONE}", query_string={"topic": "offers"}, headers=user)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "opted_out"
    assert client.delete(f"/api/v1/blocklist/{PHONE}", headers=user).status_code == 404  # not opted out of everything
    added = client.post("/api/v1/blocklist", json={"phone": OTHER, "topic": "Reminders"}, headers=user)
    assert added.status_code == 201 and added.json["topic"] == "reminders"
    assert sent(client, shop.account, "reminders", to=OTHER) == 405
    assert (
        client.delete(f"/api/v1/blocklist/{OTHER}", query_string={"topic": "reminders"}, headers=user).status_code
        == 204
    )
    assert sent(client, shop.account, "reminders", to=OTHER) == 102
    assert BlockEntry.select().count() == 1


def test_an_unknown_topic_is_422_naming_topic_and_sends_nothing(client, shop):
    topics(client, shop.account)
    for body in ({"to": PHONE}, {"group": "VIP"}):
        answer = client.post(
            "/api/v1/messages", json={"from": NUMBER, "text": "Hi", "topic": "news", **body}, headers=key(shop.account)
        )
        assert answer.status_code == 422 and answer.json["error"]["field"] == "topic"
    answer = client.post("/api/v1/blocklist", json={"phone": PHONE, "topic": "news"}, headers=key(shop.account))
    assert answer.status_code == 422 and answer.json["error"]["field"] == "topic"
    assert OutboundMessage.select().count() == 0 and BlockEntry.select().count() == 0


def test_a_group_send_of_a_topic_refuses_its_opted_out_members(client, shop):
    topics(client, shop.account)
    group = Group.create(account=shop.account, name="VIP", name_key="vip")
    for phone in (PHONE, OTHER):
        GroupMember.create(group=group, contact=Contact.create(account=shop.account, phone=phone))
    text(client, shop, "STOP OFFERS")
    answer = client.post(
        "/api/v1/messages",
        json={"from": NUMBER, "text": "Sale", "group": "VIP", "topic": "offers"},
        headers=key(shop.account),
    )
    assert answer.status_code == 202
    fan_out(answer.json["batch"]["id"])
    statuses = {m.recipient: m.status for m in OutboundMessage.select().where(OutboundMessage.batch.is_null(False))}
    assert statuses == {PHONE: 405, OTHER: 102}


def test_the_console_shows_a_phones_consent_history_with_its_evidence(client, shop):
    topics(client, shop.account)
    text(client, shop, "stop offers")
    text(client, shop, "Avsluta")
    text(client, shop, "START")
    text(client, shop, "STOP offers")
    make_user(shop.account, "viewer@shop.test", role="viewer")
    log_in(client, "viewer@shop.test")

    listing = client.get("/console/blocklist").get_data(as_text=True)
    assert 'href="/console/consent/%2B46731234567"' in listing or f'href="/console/consent/{PHONE}"' in listing
    page = client.get(f"/console/consent/{PHONE}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    rows = html.split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]
    assert len(rows) == 4  # newest first: STOP offers, START, Avsluta, stop offers
    assert "Opted out" in rows[0] and "offers" in rows[0]
    assert "<q>STOP offers</q>" in rows[0] and "<q>START</q>" in rows[1] and "Opted in" in rows[1]
    assert "<q>Avsluta</q>" in rows[2] and "everything" in rows[2]
    assert 'Opted out of <span class="tag">offers</span>.' in html
    assert client.get("/console/consent/not-a-phone").status_code == 404
    assert "No opt-out or opt-in" in client.get(f"/console/consent/{OTHER}").get_data(as_text=True)
