"""CSV cells that a spreadsheet would run as a formula, made inert on export and restored on import.

A text cell starting with `=`, `+`, `-`, `@`, TAB or CR gets a leading apostrophe (OWASP's advice for
CSV injection); an import removes exactly that apostrophe again, so an export re-imports unchanged.
"""

from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def defuse(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_START) else text


def restore(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_START) else text
