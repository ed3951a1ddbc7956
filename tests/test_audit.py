"""The audit log: every change a user, a key, the operator or the CLI makes is a row with who, what,
the changed fields before and after (secrets masked), when and from where; `GET /api/v1/audit` is for
admins; an erase masks the phone in the rows that name it."""

from __future__ import annotations

import json

import pytest

import bot.api.routes  # noqa: F401  (declares the routes)
from bot.api.schema import ENDPOINTS
from bot.apikeys import create_key
from models import ApiKey, AuditEntry, BlockEntry, LedgerEntry, User

NUMBER, MOBILE = "+46700000001", "+46731234567"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def shop(make_account, make_carrier, make_number):
    account = make_account(name="Shop", balance=1000, price_per_segment=35)
    make_number(account, make_carrier("simulator", name="sim", secret=""), NUMBER)
    return account


@pytest.fixture
def admin(shop):
    """An admin key made outside any request (a seed): that is nobody's change, so no row."""
    row, secret = create_key(shop, "admin")
    return row, bearer(secret)


def audit_log(client, headers, **filters) -> list[dict]:
    answer = client.get("/api/v1/audit", query_string=filters, headers=headers)
    assert answer.status_code == 200, answer.json
    return answer.json["audit"]


def test_a_keyword_created_changed_and_deleted_is_three_rows_with_the_changed_fields(client, shop, admin):
    key, headers = admin
    assert AuditEntry.select().count() == 0  # the seed's key was nobody's change
    created = client.post(
        f"/api/v1/numbers/{NUMBER}/keywords",
        json={"word": "pizza", "action": "reply", "reply": "Menu at noon"},
        headers=headers,
    )
    assert created.status_code == 201
    patched = client.patch(f"/api/v1/numbers/{NUMBER}/keywords/pizza", json={"reply": "Menu at one"}, headers=headers)
    assert patched.status_code == 200
    assert client.delete(f"/api/v1/numbers/{NUMBER}/keywords/pizza", headers=headers).status_code == 204

    deleted, updated, added = audit_log(client, headers)
    assert [row["action"] for row in (added, updated, deleted)] == [
        "keyword.create",
        "keyword.update",
        "keyword.delete",
    ]
    assert (updated["before"], updated["after"]) == ({"reply": "Menu at noon"}, {"reply": "Menu at one"})
    assert added["before"] is None and added["after"]["word"] == "pizza" and added["after"]["action"] == "reply"
    assert deleted["after"] is None and deleted["before"]["reply"] == "Menu at one"
    for row in (added, updated, deleted):
        assert (row["actor_type"], row["actor_id"], row["actor"]) == ("apikey", key.id, key.prefix)
        assert row["address"] == "127.0.0.1"
        assert (row["target_type"], row["target_name"]) == ("keyword", f"PIZZA on {NUMBER}")
        assert row["at"].endswith("Z")


def test_a_number_and_account_settings_change(client, shop, admin):
    _, headers = admin
    client.patch(f"/api/v1/numbers/{NUMBER}", json={"help_text": "Text MENU", "save_enabled": True}, headers=headers)
    client.patch("/api/v1/account", json={"stop_service_enabled": False, "name": "Shop AB"}, headers=headers)
    account_row, number_row = audit_log(client, headers)
    assert (number_row["action"], number_row["target_name"]) == ("number.update", NUMBER)
    assert (number_row["before"], number_row["after"]) == ({"help_text": ""}, {"help_text": "Text MENU"})
    assert account_row["action"] == "account.update"
    assert account_row["before"] == {"name": "Shop", "stop_service_enabled": True}
    assert account_row["after"] == {"name": "Shop AB", "stop_service_enabled": False}
    before = AuditEntry.select().count()
    client.patch("/api/v1/account", json={"stop_service_enabled": False}, headers=headers)
    assert AuditEntry.select().count() == before  # nothing changed, nothing recorded


def test_users_and_keys_are_recorded_without_secrets(client, shop, admin):
    _, headers = admin
    invited = client.post("/api/v1/users", json={"email": "Ann@Shop.se", "role": "user"}, headers=headers)
    made = client.post("/api/v1/apikeys", json={"role": "viewer", "label": "reports"}, headers=headers)
    secret = made.json["key"]
    client.patch(f"/api/v1/users/{invited.json['id']}", json={"role": "viewer"}, headers=headers)
    client.delete(f"/api/v1/apikeys/{made.json['id']}", headers=headers)
    revoked, demoted, key_row, user_row = audit_log(client, headers)
    assert (user_row["action"], user_row["target_name"]) == ("user.create", "ann@shop.se")
    assert user_row["after"]["role"] == "user" and "password_hash" not in user_row["after"]
    assert (key_row["action"], key_row["target_id"]) == ("apikey.create", str(made.json["id"]))
    assert key_row["after"]["secret_hash"] == "[secret]" and key_row["after"]["label"] == "reports"
    assert (demoted["before"], demoted["after"]) == ({"role": "user"}, {"role": "viewer"})
    assert revoked["action"] == "apikey.revoke" and revoked["before"] == {"revoked_at": None}
    stored = json.dumps([list(row) for row in AuditEntry.select().tuples()], default=str)
    assert secret.split("_", 2)[2] not in stored and ApiKey.get_by_id(made.json["id"]).secret_hash not in stored


def test_a_password_set_by_link_is_recorded_as_the_user_masked(client, shop, admin):
    _, headers = admin
    from bot import users

    user = User.get_by_id(
        client.post("/api/v1/users", json={"email": "a@shop.se", "role": "user"}, headers=headers).json["id"]
    )
    token = users.issue_token(user, "reset")
    assert (
        client.post("/api/v1/auth/password", json={"token": token, "password": "Long-enough-pass-1"}).status_code == 200
    )
    (row, *_) = audit_log(client, headers)
    assert (row["action"], row["actor_type"], row["actor"]) == ("user.password", "user", "a@shop.se")
    assert (row["before"], row["after"]) == ({"password_hash": ""}, {"password_hash": "[secret]"})


def test_the_operator_s_top_up_and_billing_change_show_in_the_account_s_log(client, shop, admin, runner):
    _, headers = admin
    operator_key, secret = create_key(None, "operator")
    topped = client.post(
        "/api/v1/operator/accounts/Shop/topups", json={"amount": 500, "reference": "inv 7"}, headers=bearer(secret)
    )
    assert topped.status_code == 201
    client.patch("/api/v1/operator/accounts/Shop", json={"price_per_segment": 40}, headers=bearer(secret))
    assert runner.invoke(args=["account", "set", "Shop", "--billing", "invoice"]).exit_code == 0
    assert runner.invoke(args=["topup", "Shop", "100"]).exit_code == 0
    cli_topup, cli_set, billing, topup = audit_log(client, headers)
    assert (topup["action"], topup["actor_type"], topup["actor"]) == ("account.topup", "operator", operator_key.prefix)
    assert topup["before"] == {"balance": 1000}
    assert topup["after"] == {"balance": 1500, "amount": 500, "reference": "inv 7", "ledger_id": topped.json["id"]}
    assert (billing["before"], billing["after"]) == ({"price_per_segment": 35}, {"price_per_segment": 40})
    assert (cli_set["actor_type"], cli_set["actor"], cli_set["address"]) == ("cli", "cli", "cli")
    assert (cli_set["before"], cli_set["after"]) == ({"billing_mode": "balance"}, {"billing_mode": "invoice"})
    assert (cli_topup["action"], cli_topup["after"]["balance"]) == ("account.topup", 1600)


def test_block_list_changes_and_an_erase_mask_the_phone(client, shop, admin):
    _, headers = admin
    user_key = bearer(create_key(shop, "user")[1])
    assert client.post("/api/v1/blocklist", json={"phone": MOBILE}, headers=user_key).status_code == 201
    assert client.delete(f"/api/v1/blocklist/{MOBILE}", headers=user_key).status_code == 204
    removed, added = audit_log(client, headers)
    assert (added["action"], added["target_id"], added["after"]) == ("blocklist.add", MOBILE, {"source": "api"})
    assert (removed["action"], removed["before"], removed["after"]) == ("blocklist.remove", {"source": "api"}, None)

    assert client.delete(f"/api/v1/privacy/{MOBILE}", headers=headers).status_code == 200
    erase, *earlier = audit_log(client, headers)
    masked = "+*******4567"
    assert (erase["action"], erase["target_id"], erase["after"]["phone"]) == ("privacy.erase", masked, masked)
    assert [row["target_id"] for row in earlier] == [masked, masked]  # the proof stays, the number goes
    assert len(earlier) == 2
    assert MOBILE not in json.dumps([list(row) for row in AuditEntry.select().tuples()], default=str)


def test_a_phone_s_own_stop_is_nobody_s_change(client, shop, admin):
    _, headers = admin
    inbound = {"id": "m1", "from": MOBILE, "to": NUMBER, "text": "STOP"}
    assert client.post("/webhooks/sim/inbound", json=inbound).status_code == 200
    assert BlockEntry.select().count() == 1
    assert audit_log(client, headers) == []


@pytest.mark.parametrize("role", ["viewer", "user"])
def test_only_admins_read_the_log(client, shop, role):
    answer = client.get("/api/v1/audit", headers=bearer(create_key(shop, role)[1]))
    assert answer.status_code == 403 and answer.json["error"]["code"] == "forbidden"
    assert client.get("/api/v1/audit", headers=bearer(create_key(None, "operator")[1])).status_code == 403


def test_filters_and_paging(client, shop, admin, make_account):
    _, headers = admin
    for word in ("one", "two", "three"):
        client.post(
            f"/api/v1/numbers/{NUMBER}/keywords", json={"word": word, "action": "reply", "reply": "Hi"}, headers=headers
        )
    client.patch(f"/api/v1/numbers/{NUMBER}/keywords/two", json={"reply": "Hello"}, headers=headers)
    client.patch("/api/v1/account", json={"stop_service_enabled": False}, headers=headers)
    other = make_account(name="Other")
    bearer_other = bearer(create_key(other, "admin")[1])
    assert audit_log(client, bearer_other) == []  # another account's log is not shown

    assert len(audit_log(client, headers, action="keyword")) == 4
    assert [row["target_name"] for row in audit_log(client, headers, action="keyword.update")] == [f"TWO on {NUMBER}"]
    assert len(audit_log(client, headers, action="account.update")) == 1
    assert audit_log(client, headers, action="key") == []
    assert audit_log(client, headers, since="2999-01-01T00:00:00Z") == []
    assert len(audit_log(client, headers, since="2020-01-01T00:00:00+02:00")) == 5
    first = client.get("/api/v1/audit?limit=2", headers=headers).json
    second = client.get(f"/api/v1/audit?limit=2&cursor={first['next']}", headers=headers).json
    assert len(first["audit"]) == 2 and len(second["audit"]) == 2
    assert first["audit"][-1]["id"] > second["audit"][0]["id"]
    bad = client.get("/api/v1/audit?since=yesterday", headers=headers)
    assert (bad.status_code, bad.json["error"]["field"]) == (422, "since")


def test_the_log_is_read_only_and_documented(client):
    assert [(e.method, e.rule) for e in ENDPOINTS if e.rule.startswith("/audit")] == [("GET", "/audit")]
    document = client.get("/api/v1/openapi.json").json
    assert set(document["paths"]["/audit"]) == {"get"}
    assert {p["name"] for p in document["paths"]["/audit"]["get"]["parameters"]} >= {"action", "since", "cursor"}


def test_the_operator_s_commands_are_recorded_as_the_cli_with_secrets_masked(client, runner):
    commands = [
        ["db", "upgrade"],
        ["carrier", "add", "gw", "--kind", "generic", "--secret", "carrier-secret-1", "--url", "http://x"],
        ["account", "create", "Acme", "--price", "35", "--balance", "500"],
        ["number", "add", "0700000001", "--account", "Acme", "--carrier", "gw"],
        ["keyword", "add", "+46700000001", "JOIN", "--reply", "Welcome"],
        ["apikey", "create", "Acme", "--role", "viewer"],
        ["user", "add", "Acme", "ann@acme.se", "--role", "admin"],
        ["account", "list"],
    ]
    for args in commands:
        assert runner.invoke(args=args).exit_code == 0, args
    rows = list(AuditEntry.select().order_by(AuditEntry.id))
    assert [row.action for row in rows] == [
        "carrier.create",
        "account.create",
        "account.topup",
        "apikey.create",
        "number.create",
        "keyword.create",
        "apikey.create",
        "user.create",
    ]
    assert {(row.actor_type, row.actor, row.address, row.actor_id) for row in rows} == {("cli", "cli", "cli", None)}
    carrier = rows[0]
    assert (carrier.account, carrier.after["secret"], carrier.after["url"]) == (None, "[secret]", "http://x")
    assert rows[2].after == {"balance": 500, "amount": 500, "reference": "", "ledger_id": LedgerEntry.get().id}
    assert "carrier-secret-1" not in json.dumps([list(row) for row in AuditEntry.select().tuples()], default=str)


def test_turning_two_factor_login_on_and_off_is_recorded_masked(app, shop):
    import time

    from flask import g

    from bot import totp, two_factor

    user = User.create(account=shop, email="ann@shop.se", role="admin")
    secret = totp.new_secret()
    with app.test_request_context(environ_base={"REMOTE_ADDR": "10.1.2.3"}):
        g.user = user
        two_factor.enrol(user, secret, totp.totp(totp.decode_secret(secret), time.time()))
        two_factor.disable(User.get_by_id(user.id))
    on, off = AuditEntry.select().order_by(AuditEntry.id)
    assert (on.action, on.actor, on.address) == ("user.two_factor", "ann@shop.se", "10.1.2.3")
    assert on.before == {"totp_secret": "", "recovery_codes": []}
    assert on.after == {"totp_secret": "[secret]", "recovery_codes": "[secret]"}
    assert (off.before, off.after) == (on.after, on.before)


def test_schedules_and_topics_made_changed_and_deleted_are_audited(client, shop, admin):
    from models import Group

    _, headers = admin
    Group.create(account=shop, name="VIP", name_key="vip")
    plan = {"group": "VIP", "from": "Shop", "text": "Weekly offer", "frequency": "daily", "time": "09:00"}
    made = client.post("/api/v1/schedules", json=plan, headers=headers)
    assert made.status_code == 201, made.json
    path = f"/api/v1/schedules/{made.json['id']}"
    assert client.patch(path, json={"text": "Daily offer"}, headers=headers).status_code == 200
    assert client.delete(path, headers=headers).status_code == 204
    assert (
        client.post("/api/v1/topics", json={"name": "offers", "words": ["NOOFFERS"]}, headers=headers).status_code
        == 201
    )
    assert client.delete("/api/v1/topics/offers", headers=headers).status_code == 204

    topic_gone, topic_made, schedule_gone, schedule_changed, schedule_made = audit_log(client, headers)
    assert [row["action"] for row in (schedule_made, schedule_changed, schedule_gone, topic_made, topic_gone)] == [
        "schedule.create",
        "schedule.update",
        "schedule.delete",
        "topic.create",
        "topic.delete",
    ]
    assert schedule_made["after"]["text"] == "Weekly offer" and schedule_made["target_name"] == "daily at 09:00"
    assert (schedule_changed["before"], schedule_changed["after"]) == (
        {"text": "Weekly offer"},
        {"text": "Daily offer"},
    )
    assert schedule_gone["before"]["text"] == "Daily offer" and schedule_gone["after"] is None
    assert topic_made["after"] == {"name": "offers", "words": ["nooffers"]} and topic_gone["target_name"] == "offers"
