"""Shared setup for the console tests: an account with a number on the simulator and users of each role."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from bot.passwords import hash_password
from models import Account, Carrier, User, VirtualNumber

PASSWORD = "Console-pass-1"
NUMBER, PHONE = "+46700000001", "+46731234567"


def make_user(account: Account, email: str, role: str = "user", password: str = PASSWORD) -> User:
    return User.create(account=account, email=email, role=role, password_hash=hash_password(password))


def setup_account(name: str = "Acme", number: str = NUMBER, carrier: Carrier | None = None, **fields) -> Account:
    fields.setdefault("balance", 10_000)
    fields.setdefault("price_per_segment", 35)
    account = Account.create(name=name, **fields)
    carrier = carrier or Carrier.create(name="sim", kind="simulator", secret="")
    VirtualNumber.create(number=number, account=account, carrier=carrier)
    return account


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def log_in(client: FlaskClient, email: str, password: str = PASSWORD) -> str:
    """Log in through the form; returns the session's CSRF token."""
    token = csrf_of(client.get("/console/login").get_data(as_text=True))
    answer = client.post("/console/login", data={"email": email, "password": password, "csrf_token": token})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return csrf_of(client.get("/console/").get_data(as_text=True))
