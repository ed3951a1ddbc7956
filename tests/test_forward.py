"""Bots behind a URL, over real HTTP to a loopback business bot: answers, timeouts, garbage, refusals."""

from __future__ import annotations

import json
import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bot.apikeys import create_key
from bot.carriers import InboundSms
from bot.pipeline.inbound import receive
from bot.pipeline.statuses import Status
from bot.signing import account_secret, verify
from models import InboundMessage, Keyword, OutboundMessage

PHONE, NUMBER = "+46731234567", "+46700000001"


@pytest.fixture
def bot_number(app, httpserver: HTTPServer, make_account, make_carrier, make_number):
    app.config.update(FORWARD_ALLOW_PRIVATE=True, FORWARD_TIMEOUT_SECONDS=0.5, FORWARD_RETRY_INTERVALS=[0, 0])
    httpserver.expect_request("/sms").respond_with_json({"id": "up-1", "status": "accepted"})
    carrier = make_carrier("generic", name="gw", url=httpserver.url_for("/sms"))
    return make_number(make_account(name="Shop"), carrier, NUMBER, forward_url=httpserver.url_for("/bot"))


def text(number, body: str, message_id: str = "m1") -> InboundMessage:
    return receive(number.carrier, InboundSms(message_id, PHONE, NUMBER, body))


def test_the_bots_answer_is_the_reply(app, bot_number, httpserver, run_worker):
    seen: list[dict] = []
    secret = account_secret(bot_number.account.id)

    def chat_bot(request: Request) -> Response:
        verify(secret, request.get_data(), request.headers.get("X-Smsbot-Signature"), 300)
        seen.append(request.get_json())
        return Response(
            json.dumps({"reply": f"You said: {request.get_json()['text']}"}), content_type="application/json"
        )

    httpserver.expect_request("/bot").respond_with_handler(chat_bot)
    inbound = text(bot_number, "what are your opening hours")
    run_worker()
    assert seen[0]["text"] == "what are your opening hours" and seen[0]["from"] == PHONE
    reply = OutboundMessage.get()
    assert (reply.body, reply.reply_to_id, reply.recipient) == (
        "You said: what are your opening hours",
        inbound.id,
        PHONE,
    )
    assert reply.status == Status.DELIVERED_TO_GATEWAY
    assert InboundMessage.get_by_id(inbound.id).outcome == "forwarded, replied"


@pytest.fixture
def slow_bot_server():
    server = HTTPServer(threaded=True)  # each slow answer in its own thread: every try reaches the bot
    server.start()
    yield server
    server.clear()
    server.stop()


def test_a_bot_that_times_out_is_retried_then_the_inbound_is_marked(bot_number, slow_bot_server, run_worker):
    calls: list[float] = []

    def slow_bot(request: Request) -> Response:
        calls.append(time.monotonic())
        time.sleep(1)
        return Response("{}", content_type="application/json")

    slow_bot_server.expect_request("/bot").respond_with_handler(slow_bot)
    bot_number.forward_url = slow_bot_server.url_for("/bot")
    bot_number.save()
    inbound = text(bot_number, "hello")
    run_worker()
    assert len(calls) == 3  # the first try and two retries
    assert InboundMessage.get_by_id(inbound.id).outcome.startswith("forward failed: ReadTimeout")
    assert OutboundMessage.select().count() == 0


@pytest.mark.parametrize(
    ("answer", "status", "outcome"),
    [
        ("<html>oops</html>", 200, "forward error"),
        ('["reply"]', 200, "forward error"),
        ('{"reply": 5}', 200, "forward error"),
        ('{"reply": "hi"}', 404, "forward error"),
        ('{"reply": ""}', 200, "forwarded"),
        ("", 204, "forwarded"),
    ],
)
def test_answers_that_send_nothing(bot_number, httpserver, run_worker, answer, status, outcome):
    httpserver.expect_request("/bot").respond_with_data(answer, status=status, content_type="application/json")
    inbound = text(bot_number, "hello")
    run_worker()
    assert InboundMessage.get_by_id(inbound.id).outcome.startswith(outcome)
    assert OutboundMessage.select().count() == 0


def test_a_forward_keyword_sends_only_its_messages(bot_number, httpserver, run_worker):
    bot_number.forward_url = ""
    bot_number.save()
    Keyword.create(number=bot_number, word="ask", action="forward", url=httpserver.url_for("/ask"))
    httpserver.expect_request("/ask").respond_with_json({"reply": "42"})
    text(bot_number, "ASK the meaning of life", "k1")
    text(bot_number, "unrelated", "k2")
    run_worker()
    assert [m.body for m in OutboundMessage.select()] == ["42"]
    request, _ = httpserver.log[0]
    assert request.get_json()["keyword"] == "ASK"


def test_private_addresses_are_refused_unless_allowed(app, client, bot_number, httpserver, run_worker):
    app.config["FORWARD_ALLOW_PRIVATE"] = False
    headers = {"Authorization": f"Bearer {create_key(bot_number.account, 'admin')[1]}"}
    for url in (
        "http://127.0.0.1:8080/bot",
        "http://10.0.0.7/bot",
        "http://[::1]/bot",
        "http://localhost/bot",
        "ftp://example.com/bot",
    ):
        answer = client.patch(f"/api/v1/numbers/{NUMBER}", json={"forward_url": url}, headers=headers)
        assert (answer.status_code, answer.json["error"]["field"]) == (422, "forward_url"), url
    inbound = text(bot_number, "hello")  # saved while allowed, refused when the job runs
    run_worker()
    assert InboundMessage.get_by_id(inbound.id).outcome.startswith("forward refused")
    assert httpserver.log == []
