"""Log formats: text or one JSON object per line (`SMSBOT_LOG_FORMAT=json`), and quiet expected retries.

Both formats go through the same handler as PhoneMaskingFilter, so phones are masked in either. A send
attempt that will be tried again is logged by the job as one warning line and raises an exception marked
`expected_retry` (bot/handoff.RetryLater); rq would also log it as an error with its full traceback,
which `ExpectedRetryFilter` drops: a retry is expected, not an incident. The last failure (no retries
left) is not re-raised by the job, so nothing is hidden.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from bot.phones import mask_in_text

RQ_EXCEPTION_LOG = "exception raised while executing"


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


class ExpectedRetryFilter(logging.Filter):
    """Drop rq's traceback for a job that raised an expected retry (the job logged a warning)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("rq.") and RQ_EXCEPTION_LOG in str(record.msg):
            return not getattr(sys.exc_info()[1], "expected_retry", False)
        return True


def formatter(kind: str) -> logging.Formatter:
    if kind == "json":
        return JsonFormatter()
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
