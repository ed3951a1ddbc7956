"""How a body is read: normalisation, the keyword, and SAVE's arguments (SPEC §4)."""

from __future__ import annotations

import pytest

from keywords.text import parse


@pytest.mark.parametrize(
    ("body", "keyword", "normalized"),
    [
        (" join ", "join", "join"),
        ("JOIN.", "join", "join"),
        ("joined", "joined", "joined"),
        ("", "", ""),
        ("   \n\t ", "", ""),
        ("¡STOP!", "stop", "stop"),
        ("Stop\u00a0please", "stop", "stop please"),
        ("STOP\nALL", "stop", "stop all"),
        ("ＳＴＯＰ", "stop", "stop"),  # full-width letters, NFKC
        ("opt-out", "opt-out", "opt-out"),
        ("HJÄLP?", "hjälp", "hjälp"),
        ("...", "", ""),
    ],
)
def test_normalisation_and_keyword(body, keyword, normalized):
    parsed = parse(body)
    assert (parsed.keyword, parsed.normalized) == (keyword, normalized)


@pytest.mark.parametrize(
    ("body", "args"),
    [
        ("SAVE Niklas Niklasson customers", ("Niklas", "Niklasson", "customers")),
        ('SAVE "Anna Maria" Berg "VIP customers"', ("Anna Maria", "Berg", "VIP customers")),
        ("save “Anna Maria” Berg", ("Anna Maria", "Berg")),
        ("SAVE Seán O'Brien", ("Seán", "O'Brien")),
        ("SAVE   Anna    Berg.", ("Anna", "Berg")),
        ("SAVE", ()),
    ],
)
def test_arguments_keep_case_and_quotes(body, args):
    assert parse(body).args == args


def test_multi_word_phrases_match_the_first_words():
    assert parse("Opt out please").starts_with("opt out")
    assert not parse("opt").starts_with("opt out")
    assert not parse("joined").starts_with("join")
