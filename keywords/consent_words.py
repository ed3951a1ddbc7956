"""The opt-out and opt-in words of every language we serve, read from consent_words.json: data, not code.

A word is matched as the first word(s) of an SMS, folded (case and accents ignored: ARRET is ARRÊT).
"""

from __future__ import annotations

import json
from pathlib import Path

from keywords.text import fold

FILE = Path(__file__).with_name("consent_words.json")


def words(kind: str) -> tuple[str, ...]:
    """Every `kind` ("opt_out" or "opt_in") word of every language, folded, each once, in file order."""
    languages: dict[str, list[str]] = json.loads(FILE.read_text(encoding="utf-8"))[kind]
    return tuple(dict.fromkeys(fold(word) for listed in languages.values() for word in listed))


OPT_OUT_WORDS = words("opt_out")
OPT_IN_WORDS = words("opt_in")


def after(message_words: tuple[str, ...], vocabulary: tuple[str, ...]) -> str:
    """The folded word after the opt-out/opt-in word a body starts with ("offers" in STOP OFFERS), or ""."""
    folded = tuple(fold(word) for word in message_words)
    for phrase in vocabulary:
        size = len(phrase.split())
        if folded[:size] == tuple(phrase.split()) and len(folded) > size:
            return folded[size]
    return ""
