"""Passwords: the seed's rules, stored with scrypt (memory-hard, in the standard library)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

# n=2**14, r=8: 16 MiB of memory per hash, about 50 ms; a guess costs the same for an attacker.
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": 32}
RULES = (
    (lambda p: len(p) >= 10, "at least 10 characters"),
    (lambda p: any(c.isdigit() for c in p), "at least one digit"),
    (lambda p: any(c.isupper() for c in p), "at least one capital letter"),
)


class WeakPassword(ValueError):
    pass


def check_strength(password: str) -> None:
    """Raise WeakPassword naming the first rule the password breaks."""
    for rule, text in RULES:
        if not rule(password):
            raise WeakPassword(f"the password needs {text}")


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), **SCRYPT)
    return hmac.compare_digest(candidate, base64.b64decode(digest))
