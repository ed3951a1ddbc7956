"""E-mail copy of every inbound, through a real SMTP server, in a retried job."""

from __future__ import annotations

from bot.carriers import InboundSms
from bot.inbound import receive


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
    receive(number.carrier, InboundSms("m1", "+46731234567", "+46700000001", "hello"))
    from rq.registry import FailedJobRegistry

    from bot.queue import get_queue

    run_worker()
    [job_id] = FailedJobRegistry(queue=get_queue()).get_job_ids()
    job = get_queue().fetch_job(job_id)
    assert job.func_name == "bot.mail.email_inbound_copy" and job.retries_left == 0
