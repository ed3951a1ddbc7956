"""CSV cells that a spreadsheet would run as a formula, made inert on export and restored on import.

A text cell starting with `=`, `+`, `-`, `@`, TAB or CR gets a leading apostrophe (OWASP's advice for
CSV injection); an import removes exactly that apostrophe again, so an export re-imports unchanged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from flask import Response
from peewee import ModelSelect

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def defuse(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_START) else text


def restore(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_START) else text


def attachment(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    """A CSV download (UTF-8, `Content-Disposition: attachment`); the caller defuses its text cells."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return Response(
        out.getvalue(),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f"attachment; filename={filename}"},
    )


def in_chunks(query: ModelSelect, size: int = 500) -> Iterator[list[Any]]:
    """The rows of an ordered query, `size` per query (a chunk's related rows can then be read in one query)."""
    for start in range(0, query.count(), size):
        yield list(query.limit(size).offset(start))
