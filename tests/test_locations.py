"""Every 201/202 that creates something says where it is (`Location`), and that resource answers."""

from __future__ import annotations

import pytest

import bot.api.routes  # noqa: F401  (declares the routes)
from bot.api.schema import ENDPOINTS
from bot.apikeys import create_key
from models import Contact, Group, GroupMember

MOBILE = "+46731234567"


@pytest.fixture
def admin(make_account, make_carrier, make_number):
    account = make_account(name="Shop", balance=1000, price_per_segment=35)
    make_number(account, make_carrier("generic", name="gw"), "+46700000001")
    return account, {"Authorization": f"Bearer {create_key(account, 'admin')[1]}"}


@pytest.mark.parametrize(
    ("path", "body", "expected", "readable"),
    [
        ("/api/v1/contacts", {"phone": MOBILE}, "/api/v1/contacts/{id}", True),
        ("/api/v1/groups", {"name": "VIP"}, "/api/v1/groups/{id}", True),
        ("/api/v1/users", {"email": "eva@example.com", "role": "user"}, "/api/v1/users/{id}", True),
        ("/api/v1/apikeys", {"label": "site", "role": "user"}, "/api/v1/apikeys/{id}", True),
        ("/api/v1/blocklist", {"phone": MOBILE}, "/api/v1/blocklist/{phone}", False),
        (
            "/api/v1/numbers/+46700000001/keywords",
            {"word": "Join", "action": "reply", "reply": "Hi"},
            "/api/v1/numbers/+46700000001/keywords/{word}",
            False,
        ),
        ("/api/v1/messages", {"to": MOBILE, "from": "Shop", "text": "Hi"}, "/api/v1/messages/{id}", True),
    ],
)
def test_a_created_resource_has_a_location(client, admin, path, body, expected, readable):
    _, headers = admin
    answer = client.post(path, json=body, headers=headers)
    assert answer.status_code in (201, 202), answer.json
    fields = answer.json["messages"][0] if "messages" in answer.json else answer.json
    assert answer.headers["Location"] == expected.format(**fields)
    if readable:
        shown = client.get(answer.headers["Location"], headers=headers)
        assert (shown.status_code, shown.json["id"]) == (200, fields["id"])
    else:  # no GET of its own: the resource is the one PATCH / DELETE address
        assert client.delete(answer.headers["Location"], headers=headers).status_code == 204


def test_sends_to_several_phones_or_a_group_are_located_at_their_batch(client, admin):
    account, headers = admin
    several = client.post(
        "/api/v1/messages", json={"to": [MOBILE, "+46731234568"], "from": "Shop", "text": "Hi"}, headers=headers
    )
    GroupMember.create(
        group=Group.create(account=account, name="VIP", name_key="vip"),
        contact=Contact.create(account=account, phone=MOBILE),
    )
    group = client.post("/api/v1/messages", json={"group": "VIP", "from": "Shop", "text": "Hi"}, headers=headers)
    for answer in (several, group):
        assert answer.status_code == 202
        assert answer.headers["Location"] == f"/api/v1/batches/{answer.json['batch']['id']}"
        shown = client.get(answer.headers["Location"], headers=headers)
        assert (shown.status_code, shown.json["id"]) == (200, answer.json["batch"]["id"])


def test_every_creating_endpoint_declares_location_and_idempotency():
    creating = [e for e in ENDPOINTS if e.method == "POST" and e.status in (201, 202) and e.role]
    assert {e.rule for e in creating} >= {"/contacts", "/groups", "/users", "/apikeys", "/blocklist", "/messages"}
    assert all(e.location is not None and e.idempotent for e in creating), [e.rule for e in creating]
