"""Importing this module declares every API route on the blueprint (and in the OpenAPI description)."""

from bot.api import access, account, blocklist, contacts, messages, numbers, operator

VIEW_MODULES = (access, account, blocklist, contacts, messages, numbers, operator)
