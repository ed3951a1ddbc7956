"""Users: invites and password resets by a one-time e-mailed link (the seed's user portal flow).

A token is 32 random bytes shown once in the e-mail; only its SHA-256 is stored, it expires (invite
7 days, reset 1 hour) and works once. A reset request for an unknown address looks exactly like one for
a known address, so the API does not tell who has an account.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from rq import Retry

from bot.passwords import check_strength, hash_password
from bot.queue import get_queue
from models import Account, User, UserToken, db, utcnow

LIFETIME = {"invite": timedelta(days=7), "reset": timedelta(hours=1)}
ROLES = ("viewer", "user", "admin")


class TokenError(ValueError):
    pass


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user: User, purpose: str) -> str:
    token = secrets.token_urlsafe(32)
    UserToken.create(user=user, purpose=purpose, token_hash=_hash(token), expires_at=utcnow() + LIFETIME[purpose])
    return token


def password_link(token: str) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL'].rstrip('/')}/password/{token}"


def mail_link(user: User, purpose: str) -> None:
    """E-mail a one-time link, in a job after the commit (SMTP may be slow or down: it is retried)."""
    link = password_link(issue_token(user, purpose))
    if purpose == "invite":
        subject = f"You are invited to {user.account.name} on smsbot"
        text = f"Hello,\n\nyou have been given access to {user.account.name}. Set your password here:\n{link}\n"
    else:
        subject = "Reset your smsbot password"
        text = f"Hello,\n\nset a new password here (the link works once, for one hour):\n{link}\n"
    email = user.email
    db.after_commit(
        lambda: get_queue().enqueue(
            "bot.mail.send_mail", [email], subject, text, retry=Retry(max=3, interval=[10, 60, 300])
        )
    )


def invite(account: Account, email: str, role: str) -> User:
    with db.atomic():
        user = User.create(account=account, email=email.strip().lower(), role=role)
        mail_link(user, "invite")
    return user


def request_reset(email: str) -> None:
    with db.atomic():
        user = User.get_or_none((User.email == email.strip().lower()) & User.active)
        if user is not None:
            mail_link(user, "reset")


def set_password(token: str, password: str) -> User:
    """Use a one-time token to set a password; TokenError for an unknown, used or expired token."""
    check_strength(password)
    with db.atomic():
        row = UserToken.get_or_none(UserToken.token_hash == _hash(token))
        if row is None or row.used_at is not None or row.expires_at < utcnow():
            raise TokenError("this link is unknown, used or expired")
        used = (
            UserToken.update(used_at=utcnow()).where((UserToken.id == row.id) & UserToken.used_at.is_null()).execute()
        )
        if not used:
            raise TokenError("this link is unknown, used or expired")
        user = row.user
        user.password_hash = hash_password(password)
        user.save()
    return user
