"""Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP) and recovery codes for console logins.

A user's TOTP secret is 20 random bytes shown once as base32 (and as an `otpauth://` URI for a QR code).
A code is accepted for the current 30-second step and one step either side (clock drift), and each step
is used at most once: the caller stores the last accepted step and passes it back, so a code seen over a
shoulder cannot be replayed. Recovery codes are 10 random codes of 10 characters, stored hashed, each
good once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from urllib.parse import quote, urlencode

STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1
ALGORITHMS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i


def new_secret() -> str:
    """A fresh secret, base32 without padding (what authenticator apps expect)."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def hotp(key: bytes, counter: int, digits: int = DIGITS, algorithm: str = "SHA1") -> str:
    """RFC 4226: HMAC the big-endian counter, take 31 bits at the dynamic offset, keep `digits` digits."""
    mac = hmac.new(key, struct.pack(">Q", counter), ALGORITHMS[algorithm]).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def totp(key: bytes, at: float, digits: int = DIGITS, algorithm: str = "SHA1") -> str:
    """RFC 6238: HOTP of the number of 30-second steps since the Unix epoch."""
    return hotp(key, int(at) // STEP_SECONDS, digits, algorithm)


def decode_secret(secret: str) -> bytes:
    cleaned = secret.replace(" ", "").upper()
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def accepted_step(secret: str, code: str, at: float, last_step: int | None) -> int | None:
    """The step a submitted code belongs to (to store as the new `last_step`), or None if refused."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    key, now = decode_secret(secret), int(at) // STEP_SECONDS
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if hmac.compare_digest(hotp(key, step), code) and (last_step is None or step > last_step):
            return step
    return None


def provisioning_uri(secret: str, account_name: str, issuer: str = "smsbot") -> str:
    """The `otpauth://totp/...` URI an authenticator app reads from a QR code."""
    label = quote(f"{issuer}:{account_name}")
    return f"otpauth://totp/{label}?" + urlencode({"secret": secret, "issuer": issuer, "digits": DIGITS})


def new_recovery_codes(count: int = 10) -> list[str]:
    """Plain recovery codes to show once, `xxxxx-xxxxx`."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def hash_recovery_code(code: str) -> str:
    """Recovery codes carry 49 bits of randomness and are good once: a plain SHA-256 is enough."""
    normalised = code.strip().lower().replace("-", "").replace(" ", "")
    return hashlib.sha256(normalised.encode()).hexdigest()
