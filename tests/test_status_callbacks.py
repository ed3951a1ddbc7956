"""Status callbacks: each status change POSTed to the business, signed, in order, retried from the outbox."""

from __future__ import annotations

import json

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bot.apikeys import create_key
from bot.signing import HEADER, account_secret, sign, verify
from models import Account, Effect, OutboundMessage

PHONE = "+46731234567"


class Receiver:
    """The business's callback endpoint: keeps every POST it answered 2xx; `down` answers 503 that often."""

    def __init__(self, down: int = 0) -> None:
        self.down = down
        self.tries = 0
        self.received: list[tuple[dict, bytes, str]] = []

    def __call__(self, request: Request) -> Response:
        self.tries += 1
        if self.tries <= self.down:
            return Response("busy", status=503)
        self.received.append((request.get_json(), request.get_data(), request.headers.get(HEADER, "")))
        return Response(status=204)

    @property
    def statuses(self) -> list[int]:
        return [payload["status"] for payload, _, _ in self.received]


@pytest.fixture
def shop(app, make_account, make_carrier, make_number, httpserver: HTTPServer) -> Account:
    app.config.update(FORWARD_ALLOW_PRIVATE=True, CALLBACK_RETRY_INTERVALS=[0, 0, 0])
    httpserver.expect_request("/sms", method="POST").respond_with_json({"id": "up-1", "status": "accepted"})
    carrier = make_carrier("generic", name="gw", url=httpserver.url_for("/sms"))
    account = make_account(name="Shop", balance=1000, price_per_segment=10)
    make_number(account, carrier)
    return account


def user_key(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_key(account, 'user')[1]}"}


def report(client, status: str) -> None:
    body = json.dumps({"id": "up-1", "stat": status, "err": "000"}).encode()
    headers = {"Content-Type": "application/json", HEADER: sign("generic-secret", body)}
    assert client.post("/webhooks/gw/status", data=body, headers=headers).status_code == 200


def drain(run_worker) -> None:
    """Run the worker until nothing is left, scheduled retries included."""
    for _ in range(6):
        run_worker(with_scheduler=True)


def test_every_status_change_is_posted_in_order_and_signed(client, shop, httpserver, run_worker):
    receiver = Receiver()
    httpserver.expect_request("/status", method="POST").respond_with_handler(receiver)
    shop.status_callback_url = httpserver.url_for("/status")
    shop.save()
    (sent,) = client.post(
        "/api/v1/messages", json={"to": PHONE, "from": "Shop", "text": "Hello"}, headers=user_key(shop)
    ).json["messages"]
    drain(run_worker)
    report(client, "DELIVRD")
    report(client, "DELIVRD")  # a repeated report is history, not a status change
    drain(run_worker)
    assert receiver.statuses == [101, 103, 102, 110, 111, 201]
    payload, raw, signature = receiver.received[-1]
    verify(account_secret(shop.id), raw, signature, tolerance=300)
    assert payload == {
        "id": sent["id"],
        "status": 201,
        "status_name": "DeliveredToHandset",
        "status_group": "Success",
        "legacy_status": "Delivered",
        "to": PHONE,
        "from": "Shop",
        "at": payload["at"],
        "detail": "DELIVRD err:000",
        "batch": None,
    }
    assert payload["at"].endswith("Z")


def test_a_receiver_that_was_down_gets_every_change_in_order_after_retries(client, shop, httpserver, run_worker):
    receiver = Receiver(down=2)
    httpserver.expect_request("/status", method="POST").respond_with_handler(receiver)
    shop.status_callback_url = httpserver.url_for("/status")
    shop.save()
    client.post("/api/v1/messages", json={"to": PHONE, "from": "Shop", "text": "Hello"}, headers=user_key(shop))
    drain(run_worker)
    assert receiver.tries > len(receiver.received)  # it refused some
    assert receiver.statuses == [101, 103, 102, 110, 111]  # none lost, none twice, none out of order


def test_a_message_may_name_its_own_callback(client, shop, httpserver, run_worker):
    account_receiver, own_receiver = Receiver(), Receiver()
    httpserver.expect_request("/account-status", method="POST").respond_with_handler(account_receiver)
    httpserver.expect_request("/own-status", method="POST").respond_with_handler(own_receiver)
    shop.status_callback_url = httpserver.url_for("/account-status")
    shop.save()
    send = {"to": PHONE, "from": "Shop", "text": "Hello", "status_callback": httpserver.url_for("/own-status")}
    assert client.post("/api/v1/messages", json=send, headers=user_key(shop)).status_code == 202
    drain(run_worker)
    assert own_receiver.statuses == [101, 103, 102, 110, 111]
    assert account_receiver.received == []


def test_callback_urls_are_checked_like_a_bots(app, client, shop):
    app.config["FORWARD_ALLOW_PRIVATE"] = False
    send = {"to": PHONE, "from": "Shop", "text": "Hello", "status_callback": "http://127.0.0.1:9/status"}
    refused = client.post("/api/v1/messages", json=send, headers=user_key(shop))
    assert refused.status_code == 422 and refused.json["error"]["field"] == "status_callback"
    assert OutboundMessage.select().count() == 0
    admin = {"Authorization": f"Bearer {create_key(shop, 'admin')[1]}"}
    patch = client.patch("/api/v1/account", json={"status_callback_url": "http://10.0.0.1/status"}, headers=admin)
    assert patch.status_code == 422 and patch.json["error"]["field"] == "status_callback_url"
    cleared = client.patch("/api/v1/account", json={"status_callback_url": ""}, headers=admin)
    assert cleared.status_code == 200 and cleared.json["status_callback_url"] == ""


def test_without_a_callback_nothing_is_queued(client, shop, run_worker):
    client.post("/api/v1/messages", json={"to": PHONE, "from": "Shop", "text": "Hello"}, headers=user_key(shop))
    run_worker()
    assert Effect.select().where(Effect.kind == "status_callback").count() == 0


def test_each_step_of_a_send_job_arms_its_own_callback(client, shop, httpserver):
    """Acceptance, the claim (110) and the carrier's answer (111) are three transactions: each writes an
    effect, so a callback job that ran between two of them cannot leave the next status unposted."""
    from bot.pipeline.jobs import send_messages
    from bot.pipeline.queue import get_queue

    shop.status_callback_url = httpserver.url_for("/status")
    shop.save()
    (sent,) = client.post(
        "/api/v1/messages", json={"to": PHONE, "from": "Shop", "text": "Hello"}, headers=user_key(shop)
    ).json["messages"]
    armed = Effect.select().where((Effect.kind == "status_callback") & (Effect.message == sent["id"]))
    assert armed.count() == 1  # 101, 103 and 102 in one transaction
    get_queue().empty()
    assert send_messages([sent["id"]]) == {"sent": 1}
    assert armed.count() == 3
