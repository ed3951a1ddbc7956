"""Importing this module declares every API route on the blueprint (and in the OpenAPI description)."""

from bot.api import (  # noqa: F401  (each module declares its routes when imported)
    access,
    account,
    audit,
    batches,
    blocklist,
    consent,
    contacts,
    deliveries,
    docs,
    imports,
    messages,
    numbers,
    operator,
    preview,
    schedules,
    topics,
)
