"""Phone numbers: E.164 normalisation with `phonenumbers`, sender kinds, and masking for logs."""

from __future__ import annotations

import contextlib
import logging
import re
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

# Number types that cannot take an SMS: a send to them is 410 MissingSmsSubscription.
NO_SMS_TYPES = frozenset(
    {
        PhoneNumberType.FIXED_LINE,
        PhoneNumberType.TOLL_FREE,
        PhoneNumberType.PREMIUM_RATE,
        PhoneNumberType.SHARED_COST,
        PhoneNumberType.UAN,
        PhoneNumberType.VOICEMAIL,
        PhoneNumberType.PAGER,
    }
)
ALPHANUMERIC_SENDER = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")
NUMERIC_SENDER = re.compile(r"\+?[0-9]{1,15}")
SHORT_CODE = re.compile(r"[0-9]{3,8}")
EXTENSION = re.compile(r"(ext\.?|x|#)\s*\d+$", re.IGNORECASE)
# A phone in free text, or a UUID (a job id), which is left whole though a group of it may be all digits.
PHONE_IN_TEXT = re.compile(
    r"(?P<uuid>(?<![\w-])[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}(?![\w-]))|(?<![\w+])\+?\d[\d \-]{5,}\d(?!\w)",
    re.IGNORECASE,
)
# What could end a log line or confuse its reader: C0/C1 controls, Unicode line breaks, lone surrogates.
UNSAFE_IN_LOG = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


class PhoneError(ValueError):
    """A number that cannot be used; `code` is the status it earns (409 invalid, 410 no SMS)."""

    def __init__(self, message: str, code: int = 409) -> None:
        super().__init__(message)
        self.code = code


# Parsing a number is the dearest step of an inbound webhook and of accepting a group's chunk, and the same
# texts come again and again (our own numbers, a conversation's phone, a group sent to every week): the
# answers are remembered per process, as pure functions of the text and the region. A refusal is not
# remembered (lru_cache keeps no exception): it is worked out again, and refusals are rare.
PARSED_KEPT = 16384


@lru_cache(maxsize=PARSED_KEPT)
def to_e164(raw: str, region: str = "SE") -> str:
    """Normalise a phone number to E.164, or raise PhoneError(409).

    `00` is read as the international prefix whatever the region; letters are refused rather than
    read as a vanity number; extensions are refused (an SMS cannot reach one).
    """
    return phonenumbers.format_number(parse_valid(raw, region), phonenumbers.PhoneNumberFormat.E164)


def parse_valid(raw: str, region: str = "SE") -> phonenumbers.PhoneNumber:
    """The number `raw` names (see `to_e164`), or PhoneError(409)."""
    number = parsed(raw, region)
    if not phonenumbers.is_valid_number(number):
        raise PhoneError(f"{raw!r} is not a valid phone number")
    return number


def parsed(raw: str, region: str) -> phonenumbers.PhoneNumber:
    """The number `raw` names, not yet checked against the numbering plan, or PhoneError(409)."""
    text = (raw or "").strip()
    if EXTENSION.search(text):
        raise PhoneError(f"{raw!r} has an extension")
    if re.search(r"[A-Za-z]", text):
        raise PhoneError(f"{raw!r} is not a phone number")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise PhoneError(f"{raw!r} is not a phone number") from exc
    if number.extension:
        raise PhoneError(f"{raw!r} has an extension")
    return number


@lru_cache(maxsize=PARSED_KEPT)
def check_recipient(raw: str, region: str = "SE") -> str:
    """E.164 of a recipient that can take an SMS; PhoneError 409 (invalid) or 410 (no SMS).

    The number's type is worked out once: a number of no known type is what `is_valid_number` calls
    invalid (it works the type out too), and a group send checks thousands of recipients at a time.
    """
    number = parsed(raw, region)
    kind = phonenumbers.number_type(number)
    if kind == phonenumbers.PhoneNumberType.UNKNOWN:
        raise PhoneError(f"{raw!r} is not a valid phone number")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if kind in NO_SMS_TYPES:
        raise PhoneError(f"{e164} cannot receive SMS (fixed line, toll free or premium)", code=410)
    return e164


def sender_kind(raw: str) -> str:
    """How to treat a From: "alphanumeric" (has a letter), "shortcode" (3–8 digits), else "e164"."""
    text = (raw or "").strip()
    if re.search(r"[A-Za-z]", text):
        return "alphanumeric"
    if SHORT_CODE.fullmatch(text):
        return "shortcode"
    return "e164"


def is_valid_sender(sender: str) -> bool:
    """Alphanumeric 1–11 of A-Za-z0-9 and space with a letter, or numeric up to 15 digits."""
    return bool(ALPHANUMERIC_SENDER.fullmatch(sender) or NUMERIC_SENDER.fullmatch(sender))


def numeric_sender_forms(raw: str, region: str = "SE") -> list[str]:
    """The ways a numeric sender may name a stored virtual number: as given, with a +, and in E.164."""
    text = (raw or "").strip()
    forms = dict.fromkeys([text, "+" + text.lstrip("+")])
    with contextlib.suppress(PhoneError):
        forms[to_e164(text, region)] = None
    return list(forms)


def is_nanp(e164: str) -> bool:
    return e164.startswith("+1")


def mask(phone: str) -> str:
    """Hide all but the last four digits: +46731234567 → +*******4567."""
    digits = sum(ch.isdigit() for ch in phone)
    hidden, out = digits - 4, []
    for ch in phone:
        if ch.isdigit() and hidden > 0:
            out.append("*")
            hidden -= 1
        else:
            out.append(ch)
    return "".join(out)


def mask_in_text(text: str) -> str:
    """Mask every run that looks like a phone number (seven or more digits) in free text; a UUID stays
    whole (an RQ job id such as 1a4455f4-34ab-4412-9884-1a1ba7e4e7f9 must stay greppable)."""

    def masked(found: re.Match[str]) -> str:
        run = found.group()
        return mask(run) if found["uuid"] is None and sum(c.isdigit() for c in run) >= 7 else run

    return PHONE_IN_TEXT.sub(masked, text)


def escape_controls(text: str) -> str:
    """Write control characters as escapes (a newline as \\n), so that one record stays one log line."""
    return UNSAFE_IN_LOG.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class PhoneMaskingFilter(logging.Filter):
    """Rewrite log records so that no full phone number reaches a log and no value forges a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_in_text(escape_controls(record.getMessage()))
        record.args = None
        return True
