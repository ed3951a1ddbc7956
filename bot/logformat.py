"""Log formats: text or one JSON object per line (`SMSBOT_LOG_FORMAT=json`).

Both formats go through the same handler as PhoneMaskingFilter, so phones are masked in either. A send
attempt that will be tried again is logged by the send job as one warning line, and its retry is a job
of its own (bot/pipeline/handoff.py): nothing is raised to rq, so no traceback is logged for it.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from bot.phones import mask_in_text


class JsonFormatter(logging.Formatter):
    """`{"at", "level", "logger", "message"[, "error"]}` on one line; a traceback is folded into it."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = mask_in_text(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def formatter(kind: str) -> logging.Formatter:
    if kind == "json":
        return JsonFormatter()
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
