"""The console's audit log (admins) and failed bot deliveries with their tries and a Replay button."""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bot.apikeys import create_key
from bot.carriers import InboundSms
from bot.pipeline.inbound import receive
from models import AuditEntry, Effect, Keyword, OutboundMessage
from tests.console_helpers import NUMBER, PHONE, log_in, make_user, setup_account


def test_console_changes_are_audited_as_the_user_and_admins_read_the_log(client):
    account = setup_account()
    make_user(account, "boss@acme.se", "admin")
    make_user(account, "clerk@acme.se", "user")
    token = log_in(client, "boss@acme.se")
    form = {"csrf_token": token, "number": NUMBER, "word": "hours", "action": "reply", "reply": "Open 9-17"}
    assert client.post("/console/keywords", data=form).status_code == 302
    keyword = Keyword.get()
    assert client.post(f"/console/keywords/{keyword.id}/delete", data={"csrf_token": token}).status_code == 302
    assert client.post("/console/blocklist", data={"phone": PHONE, "csrf_token": token}).status_code == 302
    key = {"Authorization": f"Bearer {create_key(account, 'admin')[1]}"}
    client.patch("/api/v1/account", json={"stop_service_enabled": False}, headers=key)

    rows = list(AuditEntry.select().order_by(AuditEntry.id))
    assert [r.action for r in rows] == ["keyword.create", "keyword.delete", "blocklist.add", "account.update"]
    assert {(r.actor_type, r.actor, r.address) for r in rows[:3]} == {("user", "boss@acme.se", "127.0.0.1")}

    page = client.get("/console/audit").get_data(as_text=True)
    assert "Audit log" in page and 'href="/console/audit"' in page  # in the nav for admins
    for text in ("keyword.create", "HOURS on " + NUMBER, "boss@acme.se", "blocklist.add", PHONE, "account.update"):
        assert text in page
    assert 'stop_service_enabled</span> <span class="old">true</span> → <span class="new">false</span>' in page
    filtered = client.get("/console/audit?action=keyword").get_data(as_text=True)
    assert "keyword.delete" in filtered and "blocklist.add" not in filtered and "account.update" not in filtered

    client.post("/console/logout", data={"csrf_token": token})
    log_in(client, "clerk@acme.se")
    assert client.get("/console/audit").status_code == 403
    assert 'href="/console/audit"' not in client.get("/console/").get_data(as_text=True)


def test_another_account_s_rows_are_not_shown(client):
    acme = setup_account()
    other = setup_account("Other AB", number="+46700000009", carrier=acme.numbers[0].carrier)
    make_user(acme, "boss@acme.se", "admin")
    AuditEntry.create(
        account=other, actor_type="cli", actor="cli", action="account.update", target_type="account", target_id="2"
    )
    log_in(client, "boss@acme.se")
    assert "account.update" not in client.get("/console/audit").get_data(as_text=True)


class Bot:
    """The business's bot: answers 503 with an HTML page until it is `up`."""

    def __init__(self) -> None:
        self.up = False

    def __call__(self, request: Request) -> Response:
        if not self.up:
            return Response("<b>down</b> for maintenance " + "x" * 2000, status=503)
        return Response('{"reply": "Back again"}', content_type="application/json")


@pytest.fixture
def dead_letter(app, httpserver: HTTPServer, run_worker):
    app.config.update(FORWARD_ALLOW_PRIVATE=True, FORWARD_TIMEOUT_SECONDS=1, FORWARD_RETRY_INTERVALS=[0])
    account = setup_account()
    number = account.numbers[0]
    number.forward_url = httpserver.url_for("/bot")
    number.save()
    handler = Bot()
    httpserver.expect_request("/bot").respond_with_handler(handler)
    inbound = receive(number.carrier, InboundSms("m1", PHONE, NUMBER, "where is my order?"))
    drain(run_worker)
    effect = Effect.get(Effect.inbound == inbound.id)
    assert effect.state == "failed"
    return account, handler, effect


def drain(run_worker) -> None:
    for _ in range(4):
        run_worker(with_scheduler=True)


def test_failed_deliveries_list_each_try_escaped_and_replay_with_csrf(client, dead_letter, run_worker):
    account, handler, effect = dead_letter
    make_user(account, "clerk@acme.se", "user")
    token = log_in(client, "clerk@acme.se")
    page = client.get("/console/deliveries").get_data(as_text=True)
    assert f"Delivery {effect.id}" in page and "where is my order?" in page
    assert page.count("<td>503</td>") == 2  # both tries, each with its HTTP status
    assert "&lt;b&gt;down&lt;/b&gt; for maintenance" in page and "<b>down</b>" not in page
    kept = 1024 - len("<b>down</b> for maintenance ")  # the first 1 KiB of the answer
    assert "x" * kept + "</pre>" in page and "x" * (kept + 1) not in page
    assert 'href="/console/deliveries"' in page

    replay = f"/console/deliveries/{effect.id}/replay"
    assert client.post(replay).status_code == 400  # no CSRF token
    assert Effect.get_by_id(effect.id).state == "failed"
    handler.up = True
    answer = client.post(replay, data={"csrf_token": token})
    assert answer.status_code == 302 and answer.headers["Location"] == "/console/deliveries"
    assert "is on its way again" in client.get("/console/deliveries").get_data(as_text=True)
    drain(run_worker)
    assert Effect.get_by_id(effect.id).state == "done"
    assert OutboundMessage.get().body == "Back again"
    assert f"Delivery {effect.id}" not in client.get("/console/deliveries").get_data(as_text=True)
    (row,) = AuditEntry.select().where(AuditEntry.action == "delivery.replay")
    assert (row.actor, row.target_id, row.before, row.after) == (
        "clerk@acme.se",
        str(effect.id),
        {"state": "failed"},
        {"state": "pending"},
    )
    again = client.post(replay, data={"csrf_token": token}, follow_redirects=True).get_data(as_text=True)
    assert "only a failed one is replayed" in again


def test_a_viewer_sees_dead_letters_but_cannot_replay_and_other_accounts_get_404(client, dead_letter):
    account, _, effect = dead_letter
    make_user(account, "viewer@acme.se", "viewer")
    token = log_in(client, "viewer@acme.se")
    page = client.get("/console/deliveries").get_data(as_text=True)
    assert f"Delivery {effect.id}" in page and ">Replay</button>" not in page
    assert client.post(f"/console/deliveries/{effect.id}/replay", data={"csrf_token": token}).status_code == 403
    other = setup_account("Other AB", number="+46700000009", carrier=account.numbers[0].carrier)
    make_user(other, "boss@other.se", "admin")
    client.post("/console/logout", data={"csrf_token": token})
    other_token = log_in(client, "boss@other.se")
    assert f"Delivery {effect.id}" not in client.get("/console/deliveries").get_data(as_text=True)
    assert client.post(f"/console/deliveries/{effect.id}/replay", data={"csrf_token": other_token}).status_code == 404
    assert Effect.get_by_id(effect.id).state == "failed"
