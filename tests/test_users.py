"""Users: an invite e-mail with a one-time link, password rules, resets; mail through a real SMTP server."""

from __future__ import annotations

import re

import pytest

from bot.apikeys import create_key
from bot.passwords import verify_password
from models import User

STRONG = "Correct horse 42"


@pytest.fixture
def admin(make_account):
    account = make_account(name="Shop")
    return account, {"Authorization": f"Bearer {create_key(account, 'admin')[1]}"}


def token_in(mail) -> str:
    link = re.search(r"http://smsbot.test/password/(\S+)", mail.get_payload(decode=True).decode())
    assert link, mail.get_payload()
    return link.group(1)


def test_invite_email_and_one_time_password_link(client, admin, smtp_server, run_worker):
    _account, headers = admin
    created = client.post("/api/v1/users", json={"email": "Eva@Example.com", "role": "user"}, headers=headers)
    assert created.status_code == 201
    assert created.json == {
        "id": created.json["id"],
        "email": "eva@example.com",
        "role": "user",
        "active": True,
        "password_set": False,
    }
    run_worker()
    [mail] = smtp_server
    assert mail["To"] == "eva@example.com" and "Shop" in mail["Subject"]
    token = token_in(mail)

    for weak, rule in [("Short1A", "10 characters"), ("longenough1", "capital"), ("LongEnoughX", "digit")]:
        answer = client.post("/api/v1/auth/password", json={"token": token, "password": weak})
        assert (answer.status_code, answer.json["error"]["field"]) == (422, "password")
        assert rule in answer.json["error"]["message"]
    assert client.post("/api/v1/auth/password", json={"token": token, "password": STRONG}).status_code == 200
    user = User.get()
    assert user.password_hash.startswith("scrypt$") and verify_password(STRONG, user.password_hash)
    assert not verify_password("Wrong horse 42", user.password_hash)
    reused = client.post("/api/v1/auth/password", json={"token": token, "password": STRONG})
    assert reused.status_code == 404


def test_the_emailed_link_opens_a_password_form(client, admin, smtp_server, run_worker):
    _account, headers = admin
    client.post("/api/v1/users", json={"email": "eva@example.com", "role": "user"}, headers=headers)
    run_worker()
    path = f"/password/{token_in(smtp_server[0])}"
    assert "Set your password" in client.get(path).get_data(as_text=True)
    weak = client.post(path, data={"password": "short"})
    assert weak.status_code == 422 and "10 characters" in weak.get_data(as_text=True)
    assert client.post(path, data={"password": STRONG}).status_code == 200
    assert verify_password(STRONG, User.get().password_hash)


def test_reset_by_email_without_telling_who_has_an_account(client, admin, smtp_server, run_worker):
    account, _headers = admin
    User.create(account=account, email="eva@example.com", role="viewer")
    for email in ("eva@example.com", "nobody@example.com"):
        answer = client.post("/api/v1/auth/reset", json={"email": email})
        assert (answer.status_code, answer.json["status"]) == (
            202,
            "if the address has an account, a link is on its way",
        )
    run_worker()
    assert [m["To"] for m in smtp_server] == ["eva@example.com"]
    assert (
        client.post("/api/v1/auth/password", json={"token": token_in(smtp_server[0]), "password": STRONG}).status_code
        == 200
    )


def test_users_are_managed_by_admins_of_the_same_account(client, admin, make_account, smtp_server):
    _account, headers = admin
    user_id = client.post("/api/v1/users", json={"email": "bo@example.com", "role": "viewer"}, headers=headers).json[
        "id"
    ]
    assert (
        client.post("/api/v1/users", json={"email": "bo@example.com", "role": "viewer"}, headers=headers).status_code
        == 409
    )
    assert (
        client.post("/api/v1/users", json={"email": "not-an-email", "role": "viewer"}, headers=headers).json["error"][
            "field"
        ]
        == "email"
    )
    patched = client.patch(f"/api/v1/users/{user_id}", json={"role": "admin", "active": False}, headers=headers)
    assert (patched.json["role"], patched.json["active"]) == ("admin", False)
    stranger = {"Authorization": f"Bearer {create_key(make_account(name='Other'), 'admin')[1]}"}
    assert client.delete(f"/api/v1/users/{user_id}", headers=stranger).status_code == 404
    assert client.delete(f"/api/v1/users/{user_id}", headers=headers).status_code == 204


def test_api_keys_are_shown_once_and_revocable(client, admin):
    _account, headers = admin
    created = client.post("/api/v1/apikeys", json={"label": "shop site", "role": "user"}, headers=headers)
    secret = created.json["key"]
    assert created.status_code == 201 and secret.startswith("smsbot_")
    listed = client.get("/api/v1/apikeys", headers=headers).json["apikeys"]
    assert all("key" not in k for k in listed) and secret not in str(listed)
    own = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/contacts", headers=own).status_code == 200
    assert client.delete(f"/api/v1/apikeys/{created.json['id']}", headers=headers).status_code == 204
    assert client.get("/api/v1/contacts", headers=own).status_code == 401
