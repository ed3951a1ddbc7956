"""Bulk acceptance: a chunk of a group send (or of a multi-phone send) is validated, funded and written at
once (`outbound.accept_many`), with the same outcome per message as accepting them one by one."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from peewee import fn
from rq.registry import ScheduledJobRegistry

from bot.pipeline.batches import fan_out
from bot.pipeline.outbound import Draft, accept_many
from bot.pipeline.queue import get_queue, send_job_id
from bot.pipeline.sending import Send, new_batch
from bot.pipeline.statuses import Status
from models import (
    Account,
    Batch,
    BlockEntry,
    Contact,
    Effect,
    Group,
    GroupMember,
    LedgerEntry,
    MessageEvent,
    OutboundMessage,
    TrackedLink,
    db,
)

NUMBER = "+46700000001"
STOCKHOLM, TOKYO, LOS_ANGELES = "+46731234567", "+819012345678", "+14155552671"


@pytest.fixture
def shop(make_account, make_carrier, make_number):
    def make(balance: int, **fields) -> tuple[Account, object]:
        carrier = make_carrier("generic", name="gw")
        account = make_account(name="Shop", balance=balance, price_per_segment=35, **fields)
        LedgerEntry.create(account=account, kind="topup", amount=balance)
        make_number(account, carrier, NUMBER)
        return account, carrier

    return make


def group_send(account: Account, phones: list[str], text: str = "Sale", **fields) -> Batch:
    group = Group.create(account=account, name="All", name_key="all")
    for phone in phones:
        GroupMember.create(group=group, contact=Contact.create(account=account, phone=phone))
    return new_batch(Send(account, fields.pop("sender", "Shop"), text, **fields), len(phones), group)


def outcome(batch: Batch) -> dict[str, int]:
    rows = OutboundMessage.select().where(OutboundMessage.batch == batch.id)
    return {row.recipient: row.status for row in rows}


def history(recipient: str) -> list[tuple[int, str]]:
    message = OutboundMessage.get(OutboundMessage.recipient == recipient)
    return [(e.code, e.detail) for e in message.events.order_by(MessageEvent.id)]


def assert_books_balance(account: Account) -> None:
    """The balance is the sum of the ledger, and every queued message was debited exactly once."""
    account = Account.get_by_id(account.id)
    assert (
        account.balance == LedgerEntry.select(fn.SUM(LedgerEntry.amount)).where(LedgerEntry.account == account).scalar()
    )
    debited = [entry.message_id for entry in LedgerEntry.select().where(LedgerEntry.kind == "debit")]
    queued = OutboundMessage.select(OutboundMessage.id).where(OutboundMessage.status == Status.QUEUED)
    assert sorted(debited) == sorted(message.id for message in queued)


def test_a_balance_covering_part_of_a_chunk_funds_the_members_in_order_and_rejects_the_rest(shop):
    account, _ = shop(balance=3 * 35 + 20)
    members = [f"+4673123456{n}" for n in range(5)]
    batch = group_send(account, members)
    assert fan_out(batch.id) == "done"
    assert outcome(batch) == {**dict.fromkeys(members[:3], Status.QUEUED), **dict.fromkeys(members[3:], 402)}
    assert history(members[2]) == [(101, ""), (103, "1 x 35 = 35"), (102, "")]
    assert history(members[3]) == [(101, ""), (402, "price 35, balance 20")]  # what was left for it
    assert Account.get_by_id(account.id).balance == 20
    assert [e.amount for e in LedgerEntry.select().where(LedgerEntry.kind == "debit")] == [-35, -35, -35]
    assert_books_balance(account)


def test_a_chunk_large_enough_to_be_copied_keeps_every_members_history_and_money(shop):
    """150 members: on PostgreSQL the chunk's events and ledger lines go by COPY (bot/rows.py)."""
    account, _ = shop(balance=120 * 35)
    members = [f"+467312{n:05d}" for n in range(150)]
    BlockEntry.create(account=account, phone=members[7])
    batch = group_send(account, members, text="Sale\nnow \\ 50%")
    assert fan_out(batch.id) == "done"
    funded = [phone for phone in members if phone != members[7]][:120]
    assert outcome(batch) == {
        **dict.fromkeys(members, Status.INSUFFICIENT_FUNDS),
        **dict.fromkeys(funded, Status.QUEUED),
        members[7]: Status.RECIPIENT_REJECTED,
    }
    assert history(funded[-1]) == [(101, ""), (103, "1 x 35 = 35"), (102, "")]
    assert history(members[7]) == [(101, ""), (405, "recipient is on the block list")]
    assert history(members[-1]) == [(101, ""), (402, "price 35, balance 0")]
    assert OutboundMessage.get(OutboundMessage.recipient == members[0]).body == "Sale\nnow \\ 50%"
    assert MessageEvent.select().count() == 120 * 3 + 30 * 2
    assert Account.get_by_id(account.id).balance == 0
    assert_books_balance(account)


def test_a_later_cheaper_message_is_funded_after_a_dearer_one_was_not(shop):
    """As one debit per message would: 35 left does not cover a 2-part text, but covers the next 1-part."""
    account, carrier = shop(balance=70)
    texts = ["Short", "Long " * 40, "Short again"]
    drafts = [
        Draft(account=account, sender="Shop", recipient=f"+4673123456{n}", body=text, carrier=carrier)
        for n, text in enumerate(texts)
    ]
    with db.atomic():
        messages = accept_many(drafts)
    assert [m.status for m in messages] == [Status.QUEUED, Status.INSUFFICIENT_FUNDS, Status.QUEUED]
    assert [OutboundMessage.get_by_id(m.id).status for m in messages] == [102, 402, 102]
    assert history("+46731234561") == [(101, ""), (402, "price 70, balance 35")]
    assert Account.get_by_id(account.id).balance == 0
    assert_books_balance(account)


def test_blocked_members_of_a_chunk_are_rejected_and_cost_nothing(shop):
    account, _ = shop(balance=1000)
    members = ["+46731234560", "+46731234561", "+46731234562", "+46731234563"]
    BlockEntry.create(account=account, phone=members[1])
    BlockEntry.create(account=account, phone=members[3])
    batch = group_send(account, members)
    fan_out(batch.id)
    assert outcome(batch) == {members[0]: 102, members[1]: 405, members[2]: 102, members[3]: 405}
    assert history(members[1]) == [(101, ""), (405, "recipient is on the block list")]
    assert Account.get_by_id(account.id).balance == 1000 - 2 * 35
    assert_books_balance(account)


def test_a_chunk_run_again_after_half_of_it_was_accepted_skips_those_members_and_their_money(shop, app):
    """Half the chunk's members have their messages (a run that committed them, its cursor not moved):
    the next run gives nobody a second message and debits each member once."""
    app.config["FANOUT_CHUNK"] = 10
    account, carrier = shop(balance=1000)
    members = [f"+4673123456{n}" for n in range(8)]
    batch = group_send(account, members)
    drafts = [
        Draft(account=account, sender="Shop", recipient=phone, body="Sale", carrier=carrier, batch=batch.id)
        for phone in members
    ]
    with db.atomic():
        assert len(accept_many(drafts[:4])) == 4
    assert Batch.get_by_id(batch.id).cursor == 0
    with db.atomic():
        again = accept_many(drafts[2:5])
    assert [m.recipient for m in again] == [members[4]]  # only the new member is written
    assert fan_out(batch.id) == "done"
    assert outcome(batch) == dict.fromkeys(members, Status.QUEUED)
    assert OutboundMessage.select().count() == 8
    assert MessageEvent.select().count() == 8 * 3
    assert Account.get_by_id(account.id).balance == 1000 - 8 * 35
    assert_books_balance(account)


def test_a_group_whose_size_is_a_multiple_of_the_chunk_ends_with_an_empty_chunk(shop, app):
    app.config["FANOUT_CHUNK"] = 2
    account, _ = shop(balance=1000)
    members = [f"+4673123456{n}" for n in range(4)]
    batch = group_send(account, members)
    assert [fan_out(batch.id) for _ in range(3)] == ["chunk", "chunk", "done"]
    assert outcome(batch) == dict.fromkeys(members, Status.QUEUED)
    assert Batch.get_by_id(batch.id).state == "done"


def test_members_in_other_time_zones_are_held_each_until_their_own_morning_in_one_chunk(shop):
    account, _ = shop(balance=1000, nanp_campaign="C-1", quiet_hours={"start": "21:00", "end": "08:00"})
    # 22:00 UTC: 23:00 in Stockholm, 07:00 next day in Tokyo (both quiet), 14:00 in Los Angeles.
    batch = group_send(account, [STOCKHOLM, TOKYO, LOS_ANGELES], sender=NUMBER, send_at=datetime(2030, 1, 15, 22, 0))
    fan_out(batch.id)
    assert outcome(batch) == dict.fromkeys([STOCKHOLM, TOKYO, LOS_ANGELES], Status.QUEUED)
    assert history(STOCKHOLM)[-1] == (102, "held for quiet hours until 2030-01-16T07:00:00Z")
    assert history(TOKYO)[-1] == (102, "held for quiet hours until 2030-01-15T23:00:00Z")
    assert history(LOS_ANGELES)[-1] == (102, "scheduled")
    registry = ScheduledJobRegistry(queue=get_queue())
    due = {
        phone: registry.get_scheduled_time(send_job_id(OutboundMessage.get(OutboundMessage.recipient == phone).id))
        for phone in (STOCKHOLM, TOKYO, LOS_ANGELES)
    }
    assert due == {
        STOCKHOLM: datetime(2030, 1, 16, 7, 0, tzinfo=UTC),
        TOKYO: datetime(2030, 1, 15, 23, 0, tzinfo=UTC),
        LOS_ANGELES: datetime(2030, 1, 15, 22, 0, tzinfo=UTC),
    }
    stockholm = OutboundMessage.get(OutboundMessage.recipient == STOCKHOLM)
    assert (stockholm.send_at, stockholm.expires_at) == (datetime(2030, 1, 16, 7, 0), datetime(2030, 1, 19, 7, 0))


class Statements(logging.Handler):
    """Counts the SQL statements peewee runs (its query log)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.sql: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.sql.append(str(record.msg[0]) if isinstance(record.msg, tuple) else str(record.msg))


@pytest.fixture
def statements():
    logger, handler = logging.getLogger("peewee"), Statements()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler.sql
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_chunk_of_a_thousand_costs_a_fixed_number_of_statements(shop, statements):
    """With every per-message extra on: tracked links, a status callback, a block list, a part of the
    chunk the balance cannot cover."""
    account, carrier = shop(balance=900 * 35, status_callback_url="https://shop.example/status")
    members = [f"+467312{n:05d}" for n in range(1000)]
    BlockEntry.create(account=account, phone=members[7])
    drafts = [
        Draft(
            account=account,
            sender="Shop",
            recipient=phone,
            body="Sale at https://shop.example/sale",
            carrier=carrier,
            batch="b1",
            track_links=True,
        )
        for phone in members
    ]
    statements.clear()
    with db.atomic():
        messages = accept_many(drafts)
    assert len(statements) <= 20, "\n".join(s[:100] for s in statements)
    assert len(messages) == 1000
    assert OutboundMessage.select().where(OutboundMessage.status == Status.QUEUED).count() == 900
    assert OutboundMessage.select().where(OutboundMessage.status == Status.INSUFFICIENT_FUNDS).count() == 99
    assert TrackedLink.select().count() == 1000
    assert Effect.select().where(Effect.kind == "status_callback").count() == 1000
    assert_books_balance(account)
