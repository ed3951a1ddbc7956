"""Importing this module declares every API route on the blueprint (and in the OpenAPI description)."""

from bot.api import (
    access,
    account,
    batches,
    blocklist,
    contacts,
    deliveries,
    docs,
    imports,
    messages,
    numbers,
    operator,
    preview,
)

VIEW_MODULES = (
    access,
    account,
    batches,
    blocklist,
    contacts,
    deliveries,
    docs,
    imports,
    messages,
    numbers,
    operator,
    preview,
)
