"""TOTP against the RFC 6238 Appendix B vectors, drift and replay, recovery codes."""

from __future__ import annotations

import base64

import pytest

from bot import totp

SEEDS = {
    "SHA1": b"12345678901234567890",
    "SHA256": b"12345678901234567890123456789012",
    "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
RFC_6238 = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize(("at", "sha1", "sha256", "sha512"), RFC_6238)
def test_rfc_6238_vectors(at: int, sha1: str, sha256: str, sha512: str) -> None:
    for algorithm, expected in (("SHA1", sha1), ("SHA256", sha256), ("SHA512", sha512)):
        assert totp.totp(SEEDS[algorithm], at, digits=8, algorithm=algorithm) == expected


def test_rfc_4226_hotp_vectors() -> None:
    expected = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]
    assert [totp.hotp(SEEDS["SHA1"], counter) for counter in range(10)] == expected


def test_a_code_is_good_for_one_step_either_side_and_only_once() -> None:
    secret = base64.b32encode(SEEDS["SHA1"]).decode().rstrip("=")
    at = 1111111111
    code = totp.totp(SEEDS["SHA1"], at)
    step = at // 30
    assert totp.accepted_step(secret, code, at, None) == step
    assert totp.accepted_step(secret, code, at + 30, None) == step  # the phone's clock is a step behind
    assert totp.accepted_step(secret, code, at - 30, None) == step
    assert totp.accepted_step(secret, code, at + 60, None) is None  # too far
    assert totp.accepted_step(secret, code, at, last_step=step) is None  # replayed
    assert totp.accepted_step(secret, "12345", at, None) is None
    assert totp.accepted_step(secret, "abcdef", at, None) is None


def test_new_secrets_round_trip_and_make_an_authenticator_uri() -> None:
    secret = totp.new_secret()
    assert len(totp.decode_secret(secret)) == 20
    uri = totp.provisioning_uri(secret, "anna@example.com")
    assert uri.startswith("otpauth://totp/smsbot%3Aanna%40example.com?")
    assert f"secret={secret}" in uri and "issuer=smsbot" in uri


def test_recovery_codes_are_distinct_and_hash_the_same_however_typed() -> None:
    codes = totp.new_recovery_codes()
    assert len(set(codes)) == 10 and all(len(code) == 11 and code[5] == "-" for code in codes)
    code = codes[0]
    assert totp.hash_recovery_code(code.upper().replace("-", " ")) == totp.hash_recovery_code(code)
