"""An account never locks itself out: it keeps an active admin user, or at least an admin API key.

Refused (LastAdmin, a 409 in the API): demoting, deactivating or deleting the last active admin user;
revoking the last admin key of an account that has no active admin user. Each check runs with the
account's row locked (PostgreSQL `FOR UPDATE`; SQLite's IMMEDIATE transactions serialise writers), so
two admins demoting each other at once cannot both succeed.
"""

from __future__ import annotations

from models import Account, ApiKey, User, db


class LastAdmin(ValueError):
    pass


def lock_account(account_id: int) -> None:
    """Hold the account's row until the current transaction ends."""
    if db.for_update:
        Account.select(Account.id).where(Account.id == account_id).for_update().get()


def change_user(user: User, role: str, active: bool) -> None:
    """Refuse a change that takes the account's last active admin user away. Call inside a transaction."""
    lock_account(user.account_id)
    current = User.get_by_id(user.id)
    still_admin = role == "admin" and active
    if current.role == "admin" and current.active and not still_admin and not other_admin_users(current):
        raise LastAdmin("this is the account's last active admin user; make another user admin first")


def other_admin_users(user: User) -> bool:
    return (
        User.select()
        .where((User.account == user.account_id) & (User.id != user.id) & (User.role == "admin") & User.active)
        .exists()
    )


def revoke_key(key: ApiKey) -> None:
    """Refuse revoking the last admin key of an account without an active admin user. Call inside a transaction."""
    lock_account(key.account_id)
    if key.role != "admin" or key.revoked_at is not None:
        return
    admin_user = User.select().where((User.account == key.account_id) & (User.role == "admin") & User.active)
    other_key = ApiKey.select().where(
        (ApiKey.account == key.account_id)
        & (ApiKey.id != key.id)
        & (ApiKey.role == "admin")
        & ApiKey.revoked_at.is_null()
    )
    if not admin_user.exists() and not other_key.exists():
        raise LastAdmin("this is the account's last admin key and it has no active admin user; add one first")
