"""Users: invites and password resets by a one-time e-mailed link (the seed's user portal flow).

A token is 32 random bytes shown once in the e-mail; only its SHA-256 is stored, it expires (invite
7 days, reset 1 hour) and works once. A reset request for an unknown address looks exactly like one for
a known address, so the API does not tell who has an account: the request does the same work for every
address (count it in Redis, enqueue `mail_resets`), and the job looks the address up. An address may
belong to users of several accounts; a reset mails one link per account. Past RESETS_PER_HOUR requests
for one address in an hour (counted in Redis, from the first), TooManyResets says when to retry.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from rq import Retry

from bot import audit
from bot.passwords import check_strength, hash_password
from bot.pipeline.queue import get_queue
from bot.redis_conn import get_redis
from models import Account, User, UserToken, db, utcnow

LIFETIME = {"invite": timedelta(days=7), "reset": timedelta(hours=1)}
ROLES = ("viewer", "user", "admin")
RESETS_PER_HOUR = 3
MAIL_RETRY = Retry(max=3, interval=[10, 60, 300])


class TokenError(ValueError):
    pass


class TooManyResets(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many reset requests for this address; try again in {retry_after} s")
        self.retry_after = retry_after


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
        subject = f"Reset your smsbot password for {user.account.name}"
        text = (
            f"Hello,\n\nset a new password for {user.account.name} here (the link works once, for one hour):\n{link}\n"
        )
    email = user.email
    db.after_commit(lambda: get_queue().enqueue("bot.mail.send_mail", [email], subject, text, retry=MAIL_RETRY))


def invite(account: Account, email: str, role: str) -> User:
    with db.atomic():
        user = User.create(account=account, email=email.strip().lower(), role=role)
        audit.created("user.create", user)
        mail_link(user, "invite")
    return user


def request_reset(email: str) -> None:
    """Count the request and enqueue the job that mails the links; TooManyResets past the hourly limit."""
    address = email.strip().lower()
    redis = get_redis(current_app)
    counter = f"smsbot:reset:{_hash(address)}"
    count = redis.incr(counter)
    if count == 1 or redis.ttl(counter) < 0:
        redis.expire(counter, 3600)
    if count > RESETS_PER_HOUR:
        raise TooManyResets(max(int(redis.ttl(counter)), 1))
    get_queue().enqueue("bot.users.mail_resets", address, retry=MAIL_RETRY)


def mail_resets(email: str) -> int:
    """The job behind a reset request: a link to each active user with that address (one per account)."""
    with db.connection_context(), db.atomic():
        found = list(User.select().where((User.email == email) & User.active).order_by(User.id))
        for user in found:
            mail_link(user, "reset")
    return len(found)


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
        with audit.change("user.password", user, by=audit.as_user(user)):
            user.password_hash = hash_password(password)
            user.save()
    return user
