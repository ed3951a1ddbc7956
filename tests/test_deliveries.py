"""Bot deliveries: a forward that used up its retries is a dead letter with its tries, replayed once the
bot is back, under the same Idempotency-Key."""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bot.apikeys import create_key
from bot.carriers import InboundSms
from bot.pipeline.inbound import receive
from models import OutboundMessage

PHONE, NUMBER = "+46731234567", "+46700000001"


class Bot:
    """The business's bot: down (503 "busy") until `up`, then it answers with a reply."""

    def __init__(self) -> None:
        self.up = False
        self.keys: list[str] = []

    def __call__(self, request: Request) -> Response:
        self.keys.append(request.headers.get("Idempotency-Key", ""))
        if not self.up:
            return Response("busy", status=503)
        return Response('{"reply": "Hi from the bot"}', content_type="application/json")


@pytest.fixture
def bot(app, httpserver: HTTPServer, make_account, make_carrier, make_number):
    app.config.update(FORWARD_ALLOW_PRIVATE=True, FORWARD_TIMEOUT_SECONDS=1, FORWARD_RETRY_INTERVALS=[0])
    httpserver.expect_request("/sms").respond_with_json({"id": "up-1", "status": "accepted"})
    handler = Bot()
    httpserver.expect_request("/bot").respond_with_handler(handler)
    carrier = make_carrier("generic", name="gw", url=httpserver.url_for("/sms"))
    number = make_number(
        make_account(name="Shop", balance=100), carrier, NUMBER, forward_url=httpserver.url_for("/bot")
    )
    return handler, number


def drain(run_worker) -> None:
    for _ in range(4):
        run_worker(with_scheduler=True)


def headers(account, role: str = "user") -> dict[str, str]:
    return {"Authorization": f"Bearer {create_key(account, role)[1]}"}


def test_a_forward_that_used_up_its_retries_is_a_dead_letter_replayed_once_the_bot_is_back(client, bot, run_worker):
    handler, number = bot
    inbound = receive(number.carrier, InboundSms("m1", PHONE, NUMBER, "hello bot"))
    drain(run_worker)
    auth = headers(number.account)
    (dead,) = client.get("/api/v1/deliveries?state=failed", headers=auth).json["deliveries"]
    assert (dead["inbound_id"], dead["state"], dead["url"]) == (inbound.id, "failed", number.forward_url)
    assert [(t["http_status"], t["answer"]) for t in dead["tries"]] == [(503, "busy"), (503, "busy")]
    assert client.get("/api/v1/deliveries?state=done", headers=auth).json["deliveries"] == []

    handler.up = True
    replayed = client.post(f"/api/v1/deliveries/{dead['id']}/replay", headers=auth)
    assert replayed.status_code == 202 and replayed.json["state"] == "pending"
    assert replayed.headers["Location"] == f"/api/v1/deliveries/{dead['id']}"
    drain(run_worker)
    done = client.get(f"/api/v1/deliveries/{dead['id']}", headers=auth).json
    assert done["state"] == "done" and done["tries"][-1]["outcome"] == "replied" and len(done["tries"]) == 3
    assert OutboundMessage.get(OutboundMessage.reply_to == inbound.id).body == "Hi from the bot"
    assert handler.keys == [str(inbound.id)] * 3  # one key for every try and the replay


def test_only_a_failed_delivery_of_the_account_is_replayed(client, bot, run_worker, make_account):
    handler, number = bot
    handler.up = True
    receive(number.carrier, InboundSms("m1", PHONE, NUMBER, "hello bot"))
    drain(run_worker)
    auth = headers(number.account)
    (done,) = client.get("/api/v1/deliveries", headers=auth).json["deliveries"]
    refused = client.post(f"/api/v1/deliveries/{done['id']}/replay", headers=auth)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "conflict"
    other = headers(make_account(name="Other"))
    assert client.get(f"/api/v1/deliveries/{done['id']}", headers=other).status_code == 404
    assert client.post(f"/api/v1/deliveries/{done['id']}/replay", headers=other).status_code == 404
    assert (
        client.post(f"/api/v1/deliveries/{done['id']}/replay", headers=headers(number.account, "viewer")).status_code
        == 403
    )
