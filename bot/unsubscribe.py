"""Unsubscribe links: `/u/<token>`, a confirm page, and a POST that puts the phone on the block list.

The token is short enough for an SMS and needs no table: the account id and the phone's digits packed
into 12 bytes, plus the first 6 bytes of an HMAC with the secret key, base64url: 24 characters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct

from flask import Blueprint, Flask, Response, current_app, render_template_string

from bot.blocklist import block
from models import Account

bp = Blueprint("unsubscribe", __name__)
PLACEHOLDER = "{unsubscribe_url}"
PAGE = """<!doctype html><html lang="en"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Unsubscribe</title><body style="font-family:sans-serif;max-width:32em;margin:2em auto">
{% if done %}<h1>You are unsubscribed</h1><p>{{ account }} will send no more messages to {{ masked }}.</p>
{% else %}<h1>Unsubscribe from {{ account }}?</h1><p>No more messages will be sent to {{ masked }}.</p>
<form method="post"><button type="submit">Unsubscribe</button></form>{% endif %}</body></html>"""


def _mac(payload: bytes) -> bytes:
    return hmac.new(current_app.config["SECRET_KEY"].encode(), payload, hashlib.sha256).digest()[:6]


def token_for(account_id: int, phone: str) -> str:
    payload = struct.pack(">IQ", account_id, int(phone.lstrip("+")))
    return base64.urlsafe_b64encode(payload + _mac(payload)).decode()


def link_for(account_id: int, phone: str) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL'].rstrip('/')}/u/{token_for(account_id, phone)}"


def read_token(token: str) -> tuple[Account, str] | None:
    try:
        raw = base64.urlsafe_b64decode(token.encode())
    except (ValueError, TypeError):
        return None
    if len(raw) != 18 or not hmac.compare_digest(raw[12:], _mac(raw[:12])):
        return None
    account_id, digits = struct.unpack(">IQ", raw[:12])
    account = Account.get_or_none(Account.id == account_id)
    return (account, f"+{digits}") if account else None


def page(token: str, done: bool) -> Response | tuple[str, int]:
    from bot.phones import mask

    found = read_token(token)
    if found is None:
        return "This unsubscribe link is not valid.", 404
    account, phone = found
    if done:
        block(account, phone, "link")
    return Response(render_template_string(PAGE, done=done, account=account.name, masked=mask(phone)))


@bp.get("/u/<token>")
def confirm(token: str) -> Response | tuple[str, int]:
    return page(token, done=False)


@bp.post("/u/<token>")
def unsubscribe(token: str) -> Response | tuple[str, int]:
    return page(token, done=True)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
