"""Two-factor login for console users: TOTP enrolment, codes good once, recovery codes (bot/totp.py).

A TOTP code is good for one time step only (`totp_last_step`), a recovery code once (it is removed).
"""

from __future__ import annotations

import time

from bot import audit, totp
from bot.db import for_update
from models import User, db


def enrol(user: User, secret: str, code: str) -> list[str] | None:
    """Turn two-factor login on with `secret` once `code` proves the app has it; the recovery codes (shown
    once), or None for a wrong code."""
    step = totp.accepted_step(secret, code, time.time(), None)
    if step is None:
        return None
    codes = totp.new_recovery_codes()
    with db.atomic(), audit.change("user.two_factor", user):
        user.totp_secret, user.totp_last_step = secret, step
        user.recovery_codes = [totp.hash_recovery_code(c) for c in codes]
        user.save(only=[User.totp_secret, User.totp_last_step, User.recovery_codes])
    return codes


def disable(user: User) -> None:
    with db.atomic(), audit.change("user.two_factor", user):
        user.totp_secret, user.totp_last_step, user.recovery_codes = "", None, []
        user.save(only=[User.totp_secret, User.totp_last_step, User.recovery_codes])


def check(user: User, code: str) -> bool:
    """Whether `code` (a TOTP code or a recovery code) lets the user in; either is good once.

    The user's row is locked for the check (PostgreSQL; SQLite's write transactions are serial), so two
    logins racing with the same code cannot both pass.
    """
    with db.atomic():
        query = User.select().where(User.id == user.id)
        fresh = for_update(query).get()
        step = totp.accepted_step(fresh.totp_secret, code, time.time(), fresh.totp_last_step)
        if step is not None:
            User.update(totp_last_step=step).where(User.id == user.id).execute()
            return True
        hashed = totp.hash_recovery_code(code)
        if hashed not in fresh.recovery_codes:
            return False
        left = [h for h in fresh.recovery_codes if h != hashed]
        User.update(recovery_codes=left).where(User.id == user.id).execute()
        return True
