"""GSM-7 / UCS-2 encoding and segment count, packing whole characters (sms-reference §1.5).

GSM-7 when every character is in the GSM 03.38 basic or extension table (extension characters cost two
septets), else UCS-2 counted in UTF-16 code units (characters above U+FFFF cost two). One part holds
160 / 70 units; concatenated parts hold 153 / 67, and an escape pair or a surrogate pair never straddles
two parts, so the count is packed, not divided. Empty text is 0 units and 0 segments (the pipeline
rejects empty content on its own).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

GSM7, UCS2 = "GSM-7", "UCS-2"

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")
SINGLE = {GSM7: 160, UCS2: 70}
PART = {GSM7: 153, UCS2: 67}


@dataclass(frozen=True)
class Segmentation:
    encoding: str
    units: int
    segments: int


def normalize_body(text: str) -> str:
    """NFC: a decomposed é (e + U+0301) would force UCS-2, the precomposed é stays GSM-7."""
    return unicodedata.normalize("NFC", text)


@lru_cache(maxsize=256)  # a group send counts the same text for every member
def count_segments(text: str) -> Segmentation:
    """Encoding, units and segments of a message body, after NFC normalisation."""
    return pack(normalize_body(text))


def pack(text: str) -> Segmentation:
    """Count `text` exactly as given (no normalisation)."""
    encoding = GSM7 if all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in text) else UCS2
    units = [unit_cost(ch, encoding) for ch in text]
    total = sum(units)
    if total <= SINGLE[encoding]:
        return Segmentation(encoding, total, 1 if total else 0)
    capacity, segments, used = PART[encoding], 1, 0
    for cost in units:
        if used + cost > capacity:
            segments, used = segments + 1, 0
        used += cost
    return Segmentation(encoding, total, segments)


def unit_cost(ch: str, encoding: str) -> int:
    if encoding == GSM7:
        return 2 if ch in GSM_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1
