"""A real path for every declared API route, to call each one in the role and key tests."""

from __future__ import annotations

import re

VALUES = {"e164_phone": "+46731234567", "e164": "+46700000001", "month": "2026-11", "word": "join", "name": "Shop"}


def fill(rule: str) -> str:
    """`/contacts/<int:contact_id>` → `/api/v1/contacts/1`; named parts get a value of the test's shop."""
    path = re.sub(r"<int:\w+>", "1", rule)
    return "/api/v1" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: VALUES.get(m.group(1), m.group(1)), path)
