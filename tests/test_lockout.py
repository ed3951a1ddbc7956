"""Accounts cannot lock themselves out; password resets are rate-limited, mail every account of an
address and take the same time whether or not the address has a user."""

from __future__ import annotations

import re
import statistics
import time

import pytest

from bot.apikeys import create_key
from models import ApiKey, User, UserToken


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def shop(make_account):
    account = make_account(name="Shop")
    return account, bearer(create_key(account, "admin")[1])


@pytest.mark.parametrize(
    ("method", "body"),
    [("PATCH", {"role": "user"}), ("PATCH", {"active": False}), ("PATCH", {"role": "viewer"}), ("DELETE", None)],
)
def test_the_last_active_admin_user_cannot_be_demoted_deactivated_or_deleted(client, shop, method, body):
    account, headers = shop
    admin = User.create(account=account, email="ann@example.com", role="admin")
    User.create(account=account, email="old@example.com", role="admin", active=False)
    answer = client.open(f"/api/v1/users/{admin.id}", method=method, json=body, headers=headers)
    assert answer.status_code == 409, answer.json
    assert answer.json["error"]["code"] == "last_admin"
    row = User.get_by_id(admin.id)
    assert (row.role, row.active) == ("admin", True)


def test_an_admin_user_can_go_when_another_active_admin_stays(client, shop):
    account, headers = shop
    ann = User.create(account=account, email="ann@example.com", role="admin")
    bo = User.create(account=account, email="bo@example.com", role="admin")
    assert client.patch(f"/api/v1/users/{ann.id}", json={"role": "user"}, headers=headers).status_code == 200
    assert client.delete(f"/api/v1/users/{bo.id}", headers=headers).status_code == 409
    assert client.patch(f"/api/v1/users/{ann.id}", json={"role": "admin"}, headers=headers).status_code == 200
    assert client.delete(f"/api/v1/users/{bo.id}", headers=headers).status_code == 204
    assert [u.email for u in User.select()] == ["ann@example.com"]


def test_the_last_admin_key_of_an_account_without_an_admin_user_cannot_be_revoked(client, shop):
    account, headers = shop
    [only] = ApiKey.select()
    User.create(account=account, email="viewer@example.com", role="viewer")
    User.create(account=account, email="gone@example.com", role="admin", active=False)
    create_key(account, "user")
    answer = client.delete(f"/api/v1/apikeys/{only.id}", headers=headers)
    assert (answer.status_code, answer.json["error"]["code"]) == (409, "last_admin")
    assert ApiKey.get_by_id(only.id).revoked_at is None

    second, _ = create_key(account, "admin")
    assert client.delete(f"/api/v1/apikeys/{second.id}", headers=headers).status_code == 204
    User.create(account=account, email="ann@example.com", role="admin")
    assert client.delete(f"/api/v1/apikeys/{only.id}", headers=headers).status_code == 204
    assert ApiKey.get_by_id(only.id).revoked_at is not None


def test_an_email_may_belong_to_users_of_two_accounts_but_once_per_account(client, shop, make_account):
    _, headers = shop
    other = make_account(name="Other")
    User.create(account=other, email="eva@example.com", role="admin")
    created = client.post("/api/v1/users", json={"email": "eva@example.com", "role": "user"}, headers=headers)
    assert created.status_code == 201, created.json
    again = client.post("/api/v1/users", json={"email": "Eva@example.com", "role": "user"}, headers=headers)
    assert (again.status_code, again.json["error"]["field"]) == (409, "email")
    assert User.select().where(User.email == "eva@example.com").count() == 2


def test_a_reset_mails_a_link_for_each_account_of_the_address(client, shop, make_account, smtp_server, run_worker):
    account, _ = shop
    other = make_account(name="Other")
    User.create(account=account, email="eva@example.com", role="viewer")
    User.create(account=other, email="eva@example.com", role="admin")
    assert client.post("/api/v1/auth/reset", json={"email": "EVA@example.com"}).status_code == 202
    run_worker()
    assert sorted(m["Subject"] for m in smtp_server) == [
        "Reset your smsbot password for Other",
        "Reset your smsbot password for Shop",
    ]
    tokens = {re.search(r"/password/(\S+)", m.get_payload(decode=True).decode()).group(1) for m in smtp_server}
    assert len(tokens) == 2 and UserToken.select().count() == 2


def test_resets_past_three_per_address_and_hour_are_429_with_retry_after(client, shop, smtp_server, run_worker):
    account, _ = shop
    User.create(account=account, email="eva@example.com", role="viewer")
    for email in ("eva@example.com", "nobody@example.com"):
        answers = [client.post("/api/v1/auth/reset", json={"email": email}) for _ in range(4)]
        assert [a.status_code for a in answers] == [202, 202, 202, 429]
        assert answers[-1].json["error"]["field"] == "email"
        assert 3500 <= int(answers[-1].headers["Retry-After"]) <= 3600
    assert client.post("/api/v1/auth/reset", json={"email": "other@example.com"}).status_code == 202
    run_worker()
    assert [m["To"] for m in smtp_server] == ["eva@example.com"] * 3


def test_a_reset_takes_the_same_time_for_known_and_unknown_addresses(client, shop):
    """Pairs of requests (fresh addresses, so under the rate limit), taken back to back in alternating
    order; the median of the pairs' differences is robust to the machine's load changing meanwhile."""
    account, _ = shop
    for number in range(40):
        User.create(account=account, email=f"known{number}@example.com", role="viewer")
    client.post("/api/v1/auth/reset", json={"email": "warm-up@example.com"})

    def timed(email: str) -> float:
        started = time.perf_counter()
        assert client.post("/api/v1/auth/reset", json={"email": email}).status_code == 202
        return time.perf_counter() - started

    differences, unknown_times = [], []
    for number in range(40):
        order = ("known", "unknown") if number % 2 else ("unknown", "known")
        took = {kind: timed(f"{kind}{number}@example.com") for kind in order}
        differences.append(took["known"] - took["unknown"])
        unknown_times.append(took["unknown"])
    difference, typical = statistics.median(differences), statistics.median(unknown_times)
    assert abs(difference) < max(0.002, 0.3 * typical), (difference, typical)
    assert UserToken.select().count() == 0  # the request itself looks nobody up: the job does
