"""The hot tables carry no index that another one already serves: each costs every insert (a group send
writes ten thousand messages, thirty thousand events and ten thousand ledger lines)."""

from __future__ import annotations

from models import LedgerEntry, MessageEvent, OutboundMessage, db


def index_columns(model) -> dict[str, tuple[str, ...]]:  # type: ignore[no-untyped-def]
    return {index.name: tuple(index.columns) for index in db.get_indexes(model._meta.table_name)}


def test_no_index_is_the_leading_column_of_another_on_the_hot_tables(app):
    for model in (OutboundMessage, MessageEvent, LedgerEntry):
        indexes = index_columns(model)
        for name, columns in indexes.items():
            covered = [other for other, wider in indexes.items() if other != name and wider[: len(columns)] == columns]
            assert not covered, f"{name} {columns} is served by {covered}"
    assert ("message_id", "kind") in index_columns(LedgerEntry).values()  # a message's lines stay indexed
