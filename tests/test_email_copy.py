"""E-mail copy of every inbound, through a real SMTP server, an outbox effect retried with backoff."""

from __future__ import annotations

from bot.carriers import InboundSms
from bot.pipeline.inbound import receive
from models import Effect


def test_every_inbound_is_emailed(app, make_account, make_carrier, make_number, smtp_server, run_worker):
    number = make_number(
        make_account(name="Shop"), make_carrier("generic"), email_copy=["ops@shop.example", "me@shop.example"]
    )
    inbound = receive(number.carrier, InboundSms("m1", "+46731234567", "+46700000001", "Hej, är ni öppna?"))
    run_worker()
    [mail] = smtp_server
    assert mail["To"] == "ops@shop.example, me@shop.example"
    assert mail["Subject"] == "SMS from +46731234567 to +46700000001"
    text = mail.get_payload(decode=True).decode()
    assert "From: +46731234567" in text and "Hej, är ni öppna?" in text
    assert inbound.received_at.isoformat(timespec="seconds") + "Z" in text


def test_smtp_down_is_retried(app, make_account, make_carrier, make_number, run_worker):
    app.config.update(SMTP_URL="smtp://127.0.0.1:9", EMAIL_RETRY_INTERVALS=[0, 0])
    number = make_number(make_account(name="Shop"), make_carrier("generic"), email_copy=["ops@shop.example"])
    inbound = receive(number.carrier, InboundSms("m1", "+46731234567", "+46700000001", "hello"))
    run_worker()
    [copy] = Effect.select()
    assert (copy.kind, copy.inbound_id, copy.state, copy.attempts) == ("email_copy", inbound.id, "failed", 3)
    assert "Connection refused" in copy.last_error
