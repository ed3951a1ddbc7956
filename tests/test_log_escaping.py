"""Logs: a value with control characters stays on its own log line (no forged lines)."""

from __future__ import annotations

import json
import logging

from bot.phones import PhoneMaskingFilter
from bot.signing import HEADER, sign
from models import InboundMessage

PHONE, NUMBER = "+46731234567", "+46700000001"


def test_a_newline_in_a_webhook_field_yields_one_log_line(client, caplog, make_carrier):
    make_carrier("generic", name="gw", secret="s")
    forged = NUMBER + "\n2026-11-25 12:00:00,000 CRITICAL smsbot.admin: forged\r\x1b[2K\u2028tail"
    body = json.dumps({"id": "gw-1", "from": PHONE, "to": forged, "text": "hi"}).encode()
    caplog.set_level("INFO", logger="smsbot")
    response = client.post(
        "/webhooks/gw/inbound", data=body, headers={"Content-Type": "application/json", HEADER: sign("s", body)}
    )
    assert response.status_code == 200
    assert InboundMessage.get().recipient == forged  # stored as it came
    [line] = [record.getMessage() for record in caplog.records if record.name == "smsbot.inbound"]
    assert line.splitlines() == [line]
    assert "\\n2026-11-25 12:00:00,000 CRITICAL" in line and "\\r\\x1b[2K\\u2028" in line
    assert len([text for text in caplog.text.splitlines() if "forged" in text]) == 1


def test_every_logger_behind_the_filter_escapes_control_characters():
    record = logging.LogRecord("smsbot.x", logging.INFO, __file__, 1, "from %s: %s", (PHONE, "a\nb\x00\ud800"), None)
    PhoneMaskingFilter().filter(record)
    assert record.getMessage() == "from +*******4567: a\\nb\\x00\\ud800"
