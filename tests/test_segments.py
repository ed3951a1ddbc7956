"""Segments and encoding: every row of the worked table in sms-reference §1.6."""

from __future__ import annotations

import pytest

from bot.pipeline.segments import GSM7, UCS2, count_segments, pack

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 👨‍👩‍👧, 8 UTF-16 units

WORKED_TABLE = [
    (1, "a" * 160, GSM7, 160, 1),
    (2, "a" * 161, GSM7, 161, 2),
    (3, "a" * 306, GSM7, 306, 2),
    (4, "a" * 307, GSM7, 307, 3),
    ("5a", "a" * 459, GSM7, 459, 3),
    ("5b", "a" * 460, GSM7, 460, 4),
    (6, "€" + "a" * 158, GSM7, 160, 1),
    (7, "€" + "a" * 159, GSM7, 161, 2),
    (8, "{" * 80, GSM7, 160, 1),
    (9, "{" * 81, GSM7, 162, 2),
    (10, "]" * 152, GSM7, 304, 2),
    (11, "]" * 153, GSM7, 306, 3),
    (12, "a" * 152 + "[" + "a" * 152, GSM7, 306, 3),
    (13, "Hej! Åsa äter på Östermalm", GSM7, 26, 1),
    (14, "ж" * 70, UCS2, 70, 1),
    (15, "ж" * 71, UCS2, 71, 2),
    ("16a", "ж" * 134, UCS2, 134, 2),
    ("16b", "ж" * 135, UCS2, 135, 3),
    (17, "ç" + "a" * 69, UCS2, 70, 1),
    (18, "Ç" + "a" * 159, GSM7, 160, 1),
    (19, "😀" + "a" * 68, UCS2, 70, 1),
    (20, "😀" + "a" * 69, UCS2, 71, 2),
    (21, "😀" * 35, UCS2, 70, 1),
    (22, "😀" * 36, UCS2, 72, 2),
    (23, "😀" * 67, UCS2, 134, 3),
    (24, "a" * 159 + "😀", UCS2, 161, 3),
    (25, "\u2019" + "a" * 69, UCS2, 70, 1),
    (26, "a" * 80 + "\r\n" + "a" * 79, GSM7, 161, 2),
    (27, "a" * 80 + "\n" + "a" * 79, GSM7, 160, 1),
    (28, FAMILY * 9, UCS2, 72, 2),
    (29, "e\u0301" * 70, UCS2, 140, 3),  # counted as given: decomposed
]


@pytest.mark.parametrize(
    ("row", "text", "encoding", "units", "segments"), WORKED_TABLE, ids=[str(r[0]) for r in WORKED_TABLE]
)
def test_worked_table(row, text, encoding, units, segments):
    counted = pack(text)
    assert (counted.encoding, counted.units, counted.segments) == (encoding, units, segments)


def test_nfc_keeps_a_decomposed_accent_in_gsm7():
    counted = count_segments("e\u0301" * 70)  # row 29 after NFC: 70 precomposed é
    assert (counted.encoding, counted.units, counted.segments) == (GSM7, 70, 1)


def test_empty_text_has_no_segments():
    assert count_segments("").segments == 0


@pytest.mark.parametrize("char", ["\t", "`", "“", "–", "\u00a0", "È", "À", "Ò"])
def test_one_foreign_character_switches_the_whole_message_to_ucs2(char):
    assert count_segments("Hello " + char).encoding == UCS2
