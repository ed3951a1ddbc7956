"""Phone numbers: normalisation to E.164, SMS-capable types, sender rules and masking."""

from __future__ import annotations

import logging
import random

import phonenumbers
import pytest

from bot.phones import PhoneError, PhoneMaskingFilter, check_recipient, is_valid_sender, mask, sender_kind, to_e164


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("0731234567", "+46731234567"),
        ("073-123 45 67", "+46731234567"),
        ("+46 (0)73 123 45 67", "+46731234567"),
        ("0046731234567", "+46731234567"),
        ("0046 73 123 45 67", "+46731234567"),
        ("46731234567", "+46731234567"),
        ("+12015550123", "+12015550123"),
    ],
)
def test_normalised_to_e164(raw, e164):
    assert check_recipient(raw) == e164


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("07312345678", 409),  # one digit too many
        ("abc", 409),
        ("", 409),
        ("+1 800 FLOWERS", 409),  # no vanity numbers
        ("+46731234567 ext. 12", 409),
        ("08-123 456 78", 410),  # fixed line
        ("+4620123456", 410),  # toll free
        ("+469001234567", 410),  # premium rate
        ("+46771234567", 410),  # shared cost
        ("+46740123456", 410),  # pager
    ],
)
def test_refused_recipients(raw, code):
    with pytest.raises(PhoneError) as refused:
        check_recipient(raw)
    assert refused.value.code == code


def test_to_e164_accepts_a_fixed_line_for_storage():
    assert to_e164("08-123 456 78") == "+46812345678"


@pytest.mark.parametrize(
    ("sender", "valid"),
    [
        ("Shop", True),
        ("MyShop 24", True),
        ("ABCDEFGHIJK", True),
        ("ABCDEFGHIJKL", False),
        ("Shop!", False),
        ("", False),
        ("12345678901", True),
        ("+46731234567", True),
        ("1234567890123456", False),
    ],
)
def test_sender_rules(sender, valid):
    assert is_valid_sender(sender) is valid


@pytest.mark.parametrize(
    ("raw", "kind"),
    [("+46731234567", "e164"), ("72404", "shortcode"), ("Klarna", "alphanumeric"), ("0731234567", "e164")],
)
def test_sender_kind(raw, kind):
    assert sender_kind(raw) == kind


def test_logs_mask_all_but_the_last_four_digits(caplog):
    assert mask("+46731234567") == "+*******4567"
    logger = logging.getLogger("smsbot.test-mask")
    logger.addFilter(PhoneMaskingFilter())
    with caplog.at_level(logging.INFO, logger="smsbot.test-mask"):
        logger.info("reply to %s from %s, job %s", "+46731234567", "0700000001", "send-12")
    assert caplog.messages == ["reply to +*******4567 from ******0001, job send-12"]


def test_a_recipient_is_invalid_exactly_when_phonenumbers_says_so():
    """check_recipient works a number's type out once and calls a number of no known type invalid, as
    `is_valid_number` does internally; this holds it to that over numbers of many regions."""
    draw = random.Random(8)
    regions = ["SE", "US", "GB", "DE", "FR", "IN", "BR", "NG", "AU", "CA", "JP", "ZA", "MX", "NO", "FI"]
    for _ in range(3000):
        region = draw.choice(regions)
        raw = draw.choice(["+", "00", "0", ""]) + "".join(draw.choice("0123456789") for _ in range(draw.randint(6, 13)))
        try:
            international = "+" + raw[2:] if raw.startswith("00") else raw
            valid = phonenumbers.is_valid_number(phonenumbers.parse(international, region))
        except phonenumbers.NumberParseException:
            valid = False
        try:
            check_recipient(raw, region)
            refused = None
        except PhoneError as exc:
            refused = exc.code
        assert (refused != 409) == valid, (raw, region)
