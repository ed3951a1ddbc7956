"""API keys: `smsbot_<prefix>_<secret>`; the prefix finds the row, only a hash of the secret is stored.

The secret is 32 random bytes, so a plain SHA-256 is enough (a slow KDF is for guessable passwords).
A business key belongs to an account and has a role of ROLES; an operator key belongs to no account and
works only on the operator routes (SPEC §11).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from bot import audit
from models import Account, ApiKey, utcnow

ROLES = ("viewer", "user", "admin")
OPERATOR = "operator"


def create_key(account: Account | None, role: str = "admin", label: str = "") -> tuple[ApiKey, str]:
    """Create a key; returns the row and the plaintext key, which is shown once and never stored.

    `account=None` with `role="operator"` makes an operator key; a business role needs an account.
    """
    if (role == OPERATOR) != (account is None):
        raise ValueError("an operator key has no account; a business key needs one")
    if role not in (*ROLES, OPERATOR):
        raise ValueError(f"role must be one of {', '.join(ROLES)} or {OPERATOR}")
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    key = ApiKey.create(account=account, role=role, label=label, prefix=prefix, secret_hash=_hash(secret))
    audit.created("apikey.create", key)
    return key, f"smsbot_{prefix}_{secret}"


def authenticate(token: str) -> ApiKey | None:
    """The active key for a presented token, or None (also for one no database column could hold)."""
    if "\x00" in token:
        return None
    try:
        _, prefix, secret = token.split("_", 2)
    except ValueError:
        return None
    key = ApiKey.get_or_none((ApiKey.prefix == prefix) & ApiKey.revoked_at.is_null())
    if key is None or not hmac.compare_digest(key.secret_hash, _hash(secret)):
        return None
    return key


def revoke(key: ApiKey) -> None:
    with audit.change("apikey.revoke", key):
        key.revoked_at = utcnow()
        key.save()


def role_allows(role: str, needed: str) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
