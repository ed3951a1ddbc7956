"""JSON Schemas of the API's requests and answers (SPEC §7); used to validate and to describe."""

from __future__ import annotations

from typing import Any

E164 = {"type": "string", "pattern": r"^\+[1-9][0-9]{6,14}$"}
PHONE_IN = {"type": "string", "minLength": 1, "maxLength": 32}
NAME = {"type": "string", "maxLength": 100}
TIME = {"type": ["string", "null"]}
CURSOR = {"type": ["string", "null"]}
ROLE = {"type": "string", "enum": ["viewer", "user", "admin"]}
PAGING = {
    "limit": {"type": "integer", "minimum": 1, "maximum": 500},
    "cursor": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
}


def obj(properties: dict[str, Any], required: list[str] | None = None, *, closed: bool = True) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if closed:
        schema["additionalProperties"] = False
    return schema


def listing(name: str, item: dict[str, Any]) -> dict[str, Any]:
    return obj({name: {"type": "array", "items": item}, "next": CURSOR}, [name, "next"])


CLOCK = {"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]$"}
QUIET_HOURS = {
    "type": ["object", "null"],
    "properties": {"start": CLOCK, "end": CLOCK},
    "required": ["start", "end"],
    "additionalProperties": False,
}
ACCOUNT = obj(
    {
        "name": {"type": "string"},
        "billing_mode": {"type": "string", "enum": ["balance", "invoice"]},
        "balance": {"type": "integer"},
        "currency": {"type": "string"},
        "price_per_segment": {"type": "integer"},
        "stop_service_enabled": {"type": "boolean"},
        "nanp_campaign": {"type": "string"},
        "quiet_hours": QUIET_HOURS,
        "status_callback_url": {"type": "string"},
        "require_two_factor": {"type": "boolean"},
        "timezone": {"type": "string"},
    },
    [
        "name",
        "billing_mode",
        "balance",
        "currency",
        "price_per_segment",
        "stop_service_enabled",
        "nanp_campaign",
        "quiet_hours",
        "status_callback_url",
        "require_two_factor",
        "timezone",
    ],
)
ACCOUNT_PATCH = obj(
    {
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "billing_mode": {"type": "string", "enum": ["balance", "invoice"]},
        "price_per_segment": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
        "stop_service_enabled": {"type": "boolean"},
        "nanp_campaign": {"type": "string", "maxLength": 64},
        "quiet_hours": QUIET_HOURS,
        "status_callback_url": {"type": "string", "maxLength": 2000},
        "require_two_factor": {"type": "boolean"},
        "timezone": {"type": "string", "minLength": 1, "maxLength": 64},
    }
)
LEDGER_ENTRY = obj(
    {
        "kind": {"type": "string"},
        "amount": {"type": "integer"},
        "message_id": {"type": ["integer", "null"]},
        "at": {"type": "string"},
    },
    ["kind", "amount", "message_id", "at"],
)
INVOICE = obj(
    {
        "month": {"type": "string"},
        "messages": {"type": "integer"},
        "segments": {"type": "integer"},
        "amount": {"type": "integer"},
        "currency": {"type": "string"},
    },
    ["month", "messages", "segments", "amount", "currency"],
)

USER = obj(
    {
        "id": {"type": "integer"},
        "email": {"type": "string"},
        "role": ROLE,
        "active": {"type": "boolean"},
        "password_set": {"type": "boolean"},
    },
    ["id", "email", "role", "active", "password_set"],
)
USER_IN = obj(
    {"email": {"type": "string", "format": "email", "maxLength": 254}, "role": ROLE},
    ["email", "role"],
)
USER_PATCH = obj({"role": ROLE, "active": {"type": "boolean"}})
PASSWORD_IN = obj(
    {"token": {"type": "string", "minLength": 1, "maxLength": 200}, "password": {"type": "string", "maxLength": 200}},
    ["token", "password"],
)
RESET_IN = obj({"email": {"type": "string", "minLength": 3, "maxLength": 254}}, ["email"])
DONE = obj({"status": {"type": "string"}}, ["status"])
API_KEY = obj(
    {
        "id": {"type": "integer"},
        "label": {"type": "string"},
        "role": ROLE,
        "created_at": {"type": "string"},
        "revoked_at": TIME,
        "key": {"type": "string"},
    },
    ["id", "label", "role", "created_at", "revoked_at"],
)
API_KEY_IN = obj({"label": {"type": "string", "maxLength": 100}, "role": ROLE}, ["role"])

NUMBER = obj(
    {
        "number": {"type": "string"},
        "carrier": {"type": "string"},
        "save_enabled": {"type": "boolean"},
        "stop_enabled": {"type": "boolean"},
        "help_text": {"type": "string"},
        "default_reply": {"type": "string"},
        "email_copy": {"type": "array", "items": {"type": "string"}},
        "forward_url": {"type": "string"},
    },
    ["number", "carrier", "save_enabled", "stop_enabled", "help_text", "default_reply", "email_copy", "forward_url"],
)
NUMBER_PATCH = obj(
    {
        "save_enabled": {"type": "boolean"},
        "stop_enabled": {"type": "boolean"},
        "help_text": {"type": "string", "maxLength": 1000},
        "default_reply": {"type": "string", "maxLength": 1000},
        "email_copy": {
            "type": "array",
            "maxItems": 10,
            "items": {"type": "string", "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "maxLength": 254},
        },
        "forward_url": {"type": "string", "maxLength": 500},
    }
)
SEGMENTS = obj(
    {"encoding": {"type": "string"}, "segments": {"type": "integer"}, "units": {"type": "integer"}},
    ["encoding", "segments", "units"],
)
KEYWORD = obj(
    {
        "word": {"type": "string"},
        "aliases": {"type": "array", "items": {"type": "string"}},
        "action": {"type": "string"},
        "reply": {"type": "string"},
        "group": {"type": "string"},
        "url": {"type": "string"},
        "flow": {"type": "object"},
        "reply_segments": SEGMENTS,
    },
    ["word", "aliases", "action", "reply", "group", "url", "flow", "reply_segments"],
)
ACTION = {"type": "string", "enum": ["reply", "subscribe", "unsubscribe", "forward", "flow"]}
KEYWORD_FIELDS = {
    "aliases": {"type": "array", "maxItems": 20, "items": {"type": "string", "minLength": 1, "maxLength": 50}},
    "action": ACTION,
    "reply": {"type": "string", "maxLength": 1600},
    "group": {"type": "string", "maxLength": 100},
    "url": {"type": "string", "maxLength": 500},
    "flow": {"type": "object"},
}
KEYWORD_IN = obj({"word": {"type": "string", "minLength": 1, "maxLength": 50}, **KEYWORD_FIELDS}, ["word", "action"])
KEYWORD_PATCH = obj(KEYWORD_FIELDS)

CONTACT = obj(
    {
        "id": {"type": "integer"},
        "phone": {"type": "string"},
        "first_name": {"type": "string"},
        "last_name": {"type": "string"},
        "groups": {"type": "array", "items": {"type": "string"}},
        "fields": {"type": "object"},
    },
    ["id", "phone", "first_name", "last_name", "groups", "fields"],
)
CONTACT_FIELDS = {
    "first_name": NAME,
    "last_name": NAME,
    "groups": {"type": "array", "maxItems": 50, "items": {"type": "string", "minLength": 1, "maxLength": 100}},
    "fields": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
}
CONTACT_IN = obj({"phone": PHONE_IN, **CONTACT_FIELDS}, ["phone"])
CONTACT_PATCH = obj(CONTACT_FIELDS)
IMPORT = obj(
    {
        "id": {"type": "integer"},
        "state": {"type": "string", "enum": ["pending", "running", "done", "failed"]},
        "skip_invalid": {"type": "boolean"},
        "rows_total": {"type": "integer"},
        "rows_done": {"type": "integer"},
        "imported": {"type": "integer"},
        "updated": {"type": "integer"},
        "skipped": {"type": "integer"},
        "errors": {
            "type": "array",
            "items": obj(
                {"row": {"type": "integer"}, "field": {"type": "string"}, "message": {"type": "string"}},
                ["row", "field", "message"],
            ),
        },
        "created_at": {"type": "string"},
        "finished_at": TIME,
    },
    [
        "id",
        "state",
        "skip_invalid",
        "rows_total",
        "rows_done",
        "imported",
        "updated",
        "skipped",
        "errors",
        "created_at",
        "finished_at",
    ],
)
GROUP = obj(
    {"id": {"type": "integer"}, "name": {"type": "string"}, "size": {"type": "integer"}}, ["id", "name", "size"]
)
GROUP_IN = obj({"name": {"type": "string", "minLength": 1, "maxLength": 100}}, ["name"])
TOPIC_NAME = {"type": "string", "minLength": 1, "maxLength": 32}
BLOCK_ENTRY = obj(
    {
        "phone": {"type": "string"},
        "topic": {"type": ["string", "null"]},  # null: opted out of everything
        "source": {"type": "string"},
        "created_at": {"type": "string"},
    },
    ["phone", "topic", "source", "created_at"],
)
BLOCK_IN = obj({"phone": PHONE_IN, "topic": TOPIC_NAME}, ["phone"])
CONSENT_EVENT = obj(
    {
        "id": {"type": "integer"},
        "phone": {"type": "string"},
        "kind": {"type": "string", "enum": ["opt_out", "opt_in"]},
        "topic": {"type": ["string", "null"]},
        "source": {"type": "string", "enum": ["keyword", "link", "carrier", "business", "import"]},
        "text": {"type": "string"},
        "inbound_id": {"type": ["integer", "null"]},
        "actor": {"type": "string"},
        "created_at": {"type": "string"},
    },
    ["id", "phone", "kind", "topic", "source", "text", "inbound_id", "actor", "created_at"],
)
CONSENT_HISTORY = obj(
    {"phone": {"type": "string"}, "events": {"type": "array", "items": CONSENT_EVENT}, "next": CURSOR},
    ["phone", "events", "next"],
)
TOPIC = obj(
    {"name": {"type": "string"}, "words": {"type": "array", "items": {"type": "string"}}, "created_at": TIME},
    ["name", "words", "created_at"],
)
TOPIC_IN = obj(
    {
        "name": TOPIC_NAME,
        "words": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 30}, "maxItems": 10},
    },
    ["name"],
)
ERASED = obj(
    {
        "phone": {"type": "string"},
        "contacts": {"type": "integer"},
        "messages": {"type": "integer"},
        "conversations": {"type": "integer"},
        "parts": {"type": "integer"},
        "blocked": {"type": "boolean"},
        "consent_events": {"type": "integer"},  # kept: the proof of the phone's opt-outs (bot/privacy.py)
    },
    ["phone", "contacts", "messages", "blocked"],
)

EVENT = obj(
    {"code": {"type": "integer"}, "name": {"type": "string"}, "at": {"type": "string"}, "detail": {"type": "string"}},
    ["code", "name", "at", "detail"],
)
MESSAGE = obj(
    {
        "id": {"type": "integer"},
        "direction": {"type": "string"},
        "from": {"type": "string"},
        "to": {"type": "string"},
        "text": {"type": "string"},
        "encoding": {"type": "string"},
        "segments": {"type": "integer"},
        "price": {"type": "integer"},
        "status": {"type": "integer"},
        "status_name": {"type": "string"},
        "status_group": {"type": "string"},
        "legacy_status": {"type": "string"},
        "events": {"type": "array", "items": EVENT},
        "reply_to": {"type": ["integer", "null"]},
        "clicks": {"type": "integer"},
        "created_at": {"type": "string"},
    },
    [
        "id",
        "direction",
        "from",
        "to",
        "text",
        "encoding",
        "segments",
        "price",
        "status",
        "status_name",
        "status_group",
        "legacy_status",
        "events",
        "reply_to",
        "clicks",
        "created_at",
    ],
)
SEND_IN = obj(
    {
        "to": {"type": ["string", "array"], "items": PHONE_IN, "minLength": 1, "minItems": 1, "maxItems": 1000},
        "group": {"type": "string", "minLength": 1, "maxLength": 100},
        "from": {"type": "string", "minLength": 1, "maxLength": 20},
        "text": {"type": "string", "maxLength": 10_000},
        "send_at": {"type": "string", "maxLength": 40},
        "validity_minutes": {"type": "integer", "minimum": 1, "maximum": 7 * 24 * 60},
        "status_callback": {"type": "string", "minLength": 1, "maxLength": 2000},
        "track_links": {"type": "boolean"},
        "topic": TOPIC_NAME,  # one of the account's topics (GET /topics): opted-out phones get 405
    },
    ["from", "text"],
)
SENT = obj(
    {
        "messages": {"type": "array", "items": MESSAGE},
        "batch": obj(  # a group send, or two or more phones (then without `group`)
            {"id": {"type": "string"}, "group": {"type": "string"}, "recipients": {"type": "integer"}},
            ["id", "recipients"],
        ),
    },
    ["messages"],
)
INBOUND = obj(
    {
        "id": {"type": "integer"},
        "from": {"type": "string"},
        "to": {"type": "string"},
        "text": {"type": "string"},
        "received_at": {"type": "string"},
        "keyword": {"type": "string"},
        "action": {"type": "string"},
    },
    ["id", "from", "to", "text", "received_at", "keyword", "action"],
)
RESPONSE = obj(
    {
        "phone": {"type": "string"},
        "started_at": {"type": "string"},
        "ended_at": TIME,
        "outcome": {"type": "string"},
        "answers": {"type": "object"},
    },
    ["phone", "started_at", "ended_at", "outcome", "answers"],
)

PREVIEW_IN = obj(
    {
        "text": {"type": "string", "maxLength": 10_000},
        "to": {"type": ["string", "array"], "items": PHONE_IN, "minLength": 1, "minItems": 1, "maxItems": 1000},
        "group": {"type": "string", "minLength": 1, "maxLength": 100},
        "track_links": {"type": "boolean"},
    },
    ["text"],
)
PREVIEW = obj(
    {
        "encoding": {"type": "string", "enum": ["GSM-7", "UCS-2"]},
        "segments": {"type": "integer"},
        "characters": {"type": "integer"},
        "ucs2_characters": {"type": "array", "items": {"type": "string"}},
        "price": {"type": "integer"},
        "recipients": {"type": "integer"},
        "balance_after": {"type": ["integer", "null"]},
    },
    ["encoding", "segments", "characters", "ucs2_characters", "price", "recipients", "balance_after"],
)

STATUS_GROUP_COUNT = {"type": "integer", "minimum": 0}
BATCH = obj(
    {
        "id": {"type": "string"},
        "recipients": {"type": "integer"},
        "accepted": {"type": "integer"},
        "by_status_group": obj(
            {name: STATUS_GROUP_COUNT for name in ("Info", "Success", "Rejection", "Error")},
            ["Info", "Success", "Rejection", "Error"],
        ),
        "done": {"type": "boolean"},
        "clicks": {"type": "integer", "minimum": 0},
    },
    ["id", "recipients", "accepted", "by_status_group", "done", "clicks"],
)

DATE = {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
SCHEDULE_FIELDS = {
    "group": {"type": "string", "minLength": 1, "maxLength": 100},
    "from": {"type": "string", "minLength": 1, "maxLength": 20},
    "text": {"type": "string", "maxLength": 10_000},
    "frequency": {"type": "string", "enum": ["daily", "weekly", "monthly"]},
    "days": {
        "type": "array",
        "items": {"type": "string", "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
        "maxItems": 7,
    },
    "day_of_month": {"type": ["integer", "null"], "minimum": 1, "maximum": 31},
    "time": CLOCK,
    "start_date": DATE,
    "end_date": {**DATE, "type": ["string", "null"]},
    "count": {"type": ["integer", "null"], "minimum": 1, "maximum": 100_000},
}
SCHEDULE_IN = obj(SCHEDULE_FIELDS, ["group", "from", "text", "frequency", "time"])
SCHEDULE_PATCH = obj(SCHEDULE_FIELDS)
SCHEDULE_RUN = obj(
    {"due_at": {"type": "string"}, "ran_at": {"type": "string"}, "batch": CURSOR, "error": {"type": "string"}},
    ["due_at", "ran_at", "batch", "error"],
)
SCHEDULE = obj(
    {
        "id": {"type": "integer"},
        "group": {"type": ["string", "null"]},
        "from": {"type": "string"},
        "text": {"type": "string"},
        "frequency": {"type": "string"},
        "days": {"type": "array", "items": {"type": "string"}},
        "day_of_month": {"type": ["integer", "null"]},
        "time": {"type": "string"},
        "timezone": {"type": "string"},
        "start_date": {"type": "string"},
        "end_date": {"type": ["string", "null"]},
        "count": {"type": ["integer", "null"]},
        "runs": {"type": "integer"},
        "next_run_at": TIME,
        "recent_runs": {"type": "array", "items": SCHEDULE_RUN},
        "created_at": {"type": "string"},
    },
    [
        "id",
        "group",
        "from",
        "text",
        "frequency",
        "days",
        "day_of_month",
        "time",
        "timezone",
        "start_date",
        "end_date",
        "count",
        "runs",
        "next_run_at",
        "recent_runs",
        "created_at",
    ],
)
