"""Money under concurrency: many threads sending at once never overdraw a balance or lose a debit."""

from __future__ import annotations

import threading

from peewee import fn

from bot.pipeline.outbound import Draft, accept
from bot.pipeline.statuses import Status
from models import Account, LedgerEntry, OutboundMessage, db


def test_concurrent_sends_never_overdraw(app, make_account, make_carrier, make_number):
    account = make_account(balance=1000, price_per_segment=35)
    carrier = make_carrier("generic")
    make_number(account, carrier)
    db.close()  # each thread opens its own connection
    errors: list[BaseException] = []

    def send(n: int) -> None:
        try:
            with app.app_context(), db.connection_context(), db.atomic():
                accept(Draft(account=account, sender="Shop", recipient="+46731234567", body=f"n{n}", carrier=carrier))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    db.connect(reuse_if_open=True)

    assert errors == []
    funded = OutboundMessage.select().where(OutboundMessage.status == Status.QUEUED).count()
    refused = OutboundMessage.select().where(OutboundMessage.status == Status.INSUFFICIENT_FUNDS).count()
    assert (funded, refused) == (28, 12)
    assert Account.get_by_id(account.id).balance == 1000 - 28 * 35
    debits = LedgerEntry.select(fn.SUM(LedgerEntry.amount)).where(LedgerEntry.kind == "debit").scalar()
    assert debits == -28 * 35
    assert LedgerEntry.select().where(LedgerEntry.kind == "debit").count() == funded
