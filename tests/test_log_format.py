"""Logs: SMSBOT_LOG_FORMAT=json gives one JSON object per line (phones masked); an expected retry is one
warning line, not a traceback."""

from __future__ import annotations

import io
import json
import logging

import pytest

from bot.logformat import JsonFormatter
from bot.pipeline.outbound import Draft, accept
from models import db


@pytest.fixture
def log_lines(app):
    """The handler smsbot installs (shared by its own and rq's loggers), writing to a buffer."""
    handler = logging.getLogger("rq").handlers[0]
    assert handler in logging.getLogger("smsbot").handlers
    buffer = io.StringIO()
    old_stream, old_formatter = handler.setStream(buffer), handler.formatter
    yield handler, buffer
    handler.setStream(old_stream)
    handler.setFormatter(old_formatter)


def test_json_log_lines_are_objects_with_phones_masked(log_lines):
    handler, buffer = log_lines
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("smsbot.test")
    log.info("reply to %s sent", "+46731234567")
    try:
        raise ValueError("bad number +46731234567")
    except ValueError:
        log.exception("failed for %s", "+46731234567")
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 2
    first, second = map(json.loads, lines)
    assert (first["level"], first["logger"], first["message"]) == ("INFO", "smsbot.test", "reply to +*******4567 sent")
    assert first["at"].endswith("Z")
    assert second["message"] == "failed for +*******4567"
    assert "ValueError: bad number +*******4567" in second["error"]
    assert "46731234567" not in buffer.getvalue()


def test_a_job_id_stays_whole_while_a_phone_beside_it_is_masked(log_lines):
    handler, buffer = log_lines
    handler.setFormatter(JsonFormatter())
    job = "1a4455f4-34ab-4412-9884-1a1ba7e4e7f9"  # two groups of digits: a phone-like run of 8 digits
    digits = "12345678-1234-5678-9012-123456789012"
    logging.getLogger("smsbot.test").info("job=%s: handed +46731234567 to gw; job %s", job, digits)
    message = json.loads(buffer.getvalue())["message"]
    assert message == f"job={job}: handed +*******4567 to gw; job {digits}"


def test_an_expected_retry_is_one_warning_line_without_a_traceback(
    log_lines, httpserver, run_worker, make_account, make_carrier, make_number
):
    handler, buffer = log_lines
    handler.setFormatter(JsonFormatter())
    account = make_account(balance=1000, price_per_segment=35)
    carrier = make_carrier("generic", url=httpserver.url_for("/sms"))
    make_number(account, carrier)
    httpserver.expect_ordered_request("/sms").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/sms").respond_with_json({"id": "up-1", "status": "accepted"})
    with db.atomic():
        accept(Draft(account=account, sender="+46700000001", recipient="+46731234567", body="Hi", carrier=carrier))
    run_worker()
    entries = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert all("Traceback" not in entry["message"] and "error" not in entry for entry in entries)
    retries = [entry for entry in entries if "will retry" in entry["message"]]
    assert len(retries) == 1 and retries[0]["level"] == "WARNING"
    assert not [entry for entry in entries if entry["level"] == "ERROR"]
