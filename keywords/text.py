"""How an inbound body is read: SPEC §4 normalisation, the keyword, and the arguments.

Normalised: Unicode NFKC, trimmed, white space collapsed, case-folded, leading and trailing
punctuation stripped. The keyword is the first normalised word. The router's own words (opt-out, opt-in,
help, SAVE) are matched folded, without accents too (`fold`): ARRET is ARRÊT, HJALP is HJÄLP.
Arguments keep their case and split on white space, except that double quotes (also the curly ones
phones type) keep words together.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

QUOTES = '"“”„«»'
TOKEN = re.compile(rf"[{QUOTES}]([^{QUOTES}]*)[{QUOTES}]?|(\S+)")


@dataclass(frozen=True)
class Parsed:
    normalized: str
    words: tuple[str, ...]
    args: tuple[str, ...]

    @property
    def keyword(self) -> str:
        return self.words[0] if self.words else ""

    def starts_with(self, phrase: str) -> bool:
        """Whether the body's first words are `phrase` (a case-folded word or words)."""
        wanted = tuple(phrase.split())
        return bool(wanted) and self.words[: len(wanted)] == wanted

    def starts_with_folded(self, phrase: str) -> bool:
        """Whether the body's first words are `phrase` (a folded word or words), accents ignored."""
        wanted = tuple(phrase.split())
        return bool(wanted) and self.first_folded(len(wanted)) == wanted

    def first_folded(self, count: int) -> tuple[str, ...]:
        """The first `count` words folded: each word once per message, however many phrases the router
        tries (dozens of opt-out and opt-in words), and never the rest of a long body."""
        done: list[str] = self.__dict__.setdefault("_folded", [])  # a cache, not part of the value
        for word in self.words[len(done) : count]:
            done.append(fold(word))
        return tuple(done[:count])


def fold(text: str) -> str:
    """Case-folded and without accents (combining marks): "ARRÊT" and "arret" fold alike."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return unicodedata.normalize("NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch)))


def is_punctuation(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


def strip_punctuation(text: str, keep: str = "") -> str:
    start, end = 0, len(text)
    while start < end and is_punctuation(text[start]) and text[start] not in keep:
        start += 1
    while end > start and is_punctuation(text[end - 1]) and text[end - 1] not in keep:
        end -= 1
    return text[start:end].strip()


def collapse(body: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", body).split())


def parse(body: str) -> Parsed:
    cased = collapse(body)
    normalized = strip_punctuation(cased.casefold())
    tokens = [
        m.group(1) if m.group(1) is not None else m.group(2) for m in TOKEN.finditer(strip_punctuation(cased, QUOTES))
    ]
    words = tuple(strip_punctuation(word) for word in normalized.split())
    return Parsed(normalized=normalized, words=tuple(w for w in words if w), args=tuple(t for t in tokens[1:] if t))
