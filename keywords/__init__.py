"""The keyword router and one module per keyword action, in SPEC §4's priority groups."""

from __future__ import annotations

import re

from flask import Flask

from keywords import conversation, custom, fallback, help, optin, optout, save
from keywords.registry import Router
from keywords.text import fold

HANDLER_MODULES = (optout, optin, help, conversation, save, custom, fallback)
CUSTOM_WORD = re.compile(r"[^\W_][\w'’-]*( [^\W_][\w'’-]*)*")


def init_app(app: Flask) -> None:
    app.extensions["smsbot.router"] = Router(HANDLER_MODULES)


def validate_custom_word(router: Router, word: str) -> str:
    """A custom keyword or alias, case-folded; ValueError for a reserved or malformed word."""
    folded = " ".join(word.casefold().split())
    if not CUSTOM_WORD.fullmatch(folded):
        raise ValueError(f"{word!r} is not a keyword: use letters and digits (words separated by one space)")
    bare = fold(folded)
    if bare in router.reserved_words or bare.split()[0] in router.reserved_words:
        raise ValueError(f"{folded.upper()} is reserved (opt-out, opt-in, help and SAVE words)")
    return folded
