"""Two-factor console login: enrolment with a QR code, a code after the password, each code good once,
recovery codes, and an account that makes it mandatory."""

from __future__ import annotations

import re
import time

from bot import totp
from models import User
from tests.console_helpers import PASSWORD, csrf_of, log_in, make_user, setup_account


def code_now(secret: str, offset: int = 0) -> str:
    return totp.totp(totp.decode_secret(secret), time.time() + offset)


def enrol(client, token: str) -> tuple[str, list[str]]:
    page = client.get("/console/security").get_data(as_text=True)
    assert "<svg" in page  # the QR code
    secret = re.search(r"<code>([A-Z2-7]+)</code>", page).group(1)
    wrong = client.post("/console/security/enrol", data={"code": "000000", "csrf_token": token})
    assert wrong.status_code == 302 and not User.get().totp_secret
    shown = client.post("/console/security/enrol", data={"code": code_now(secret), "csrf_token": token})
    codes = re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", shown.get_data(as_text=True))
    assert len(codes) == 10
    return secret, codes


def password_step(client, email: str = "ann@acme.se"):
    """The password form; returns its answer and the CSRF token of the code page it leads to."""
    token = csrf_of(client.get("/console/login").get_data(as_text=True))
    answer = client.post("/console/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    return answer, csrf_of(client.get("/console/login/code").get_data(as_text=True))


def test_enrolled_users_give_a_code_after_the_password_and_each_code_works_once(app, client):
    make_user(setup_account(), "ann@acme.se")
    token = log_in(client, "ann@acme.se")
    secret, _ = enrol(client, token)
    assert User.get().totp_secret == secret
    client.post("/console/logout", data={"csrf_token": token})

    answer, token = password_step(client)
    assert answer.headers["Location"] == "/console/login/code"
    assert client.get("/console/").status_code == 302  # not in yet
    refused = client.post("/console/login/code", data={"code": "123456", "csrf_token": token})
    assert refused.status_code == 401
    code = code_now(secret, 30)  # the next step's code: the one used at enrolment is spent
    assert client.post("/console/login/code", data={"code": code, "csrf_token": token}).status_code == 302
    assert "Dashboard" in client.get("/console/").get_data(as_text=True)

    client.post("/console/logout", data={"csrf_token": csrf_of(client.get("/console/").get_data(as_text=True))})
    _, token = password_step(client)
    replayed = client.post("/console/login/code", data={"code": code, "csrf_token": token})
    assert replayed.status_code == 401  # a code seen once is spent


def test_a_recovery_code_logs_in_once(client):
    make_user(setup_account(), "ann@acme.se")
    token = log_in(client, "ann@acme.se")
    _, codes = enrol(client, token)
    client.post("/console/logout", data={"csrf_token": token})
    for expected in (302, 401):
        _, token = password_step(client)
        answer = client.post("/console/login/code", data={"code": codes[0].upper(), "csrf_token": token})
        assert answer.status_code == expected
        client.post("/console/logout", data={"csrf_token": token})
    assert len(User.get().recovery_codes) == 9


def test_five_wrong_codes_send_the_user_back_to_the_password(client):
    make_user(setup_account(), "ann@acme.se")
    token = log_in(client, "ann@acme.se")
    enrol(client, token)
    client.post("/console/logout", data={"csrf_token": token})
    _, token = password_step(client)
    for _ in range(5):
        last = client.post("/console/login/code", data={"code": "000000", "csrf_token": token})
    assert last.status_code == 302 and last.headers["Location"] == "/console/login"
    assert client.get("/console/login/code").headers["Location"] == "/console/login"


def test_an_account_that_requires_it_sends_users_to_enrol_first(client):
    make_user(setup_account(require_two_factor=True), "ann@acme.se")
    token = csrf_of(client.get("/console/login").get_data(as_text=True))
    client.post("/console/login", data={"email": "ann@acme.se", "password": PASSWORD, "csrf_token": token})
    assert client.get("/console/inbox").headers["Location"] == "/console/security"
    token = csrf_of(client.get("/console/security").get_data(as_text=True))
    enrol(client, token)
    assert client.get("/console/inbox").status_code == 200
    refused = client.post("/console/security/disable", data={"code": "000000", "csrf_token": token})
    assert refused.status_code == 403
