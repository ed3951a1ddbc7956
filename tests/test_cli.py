"""The `smsbot` command line: the operator's commands, their output and their errors."""

from __future__ import annotations

from bot.apikeys import authenticate
from models import Account, Carrier, Keyword, LedgerEntry, VirtualNumber


def test_operator_sets_up_an_account_end_to_end(runner):
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0  # safe twice
    added = runner.invoke(args=["carrier", "add", "gw", "--kind", "generic", "--secret", "s", "--url", "http://x"])
    assert added.exit_code == 0, added.output
    created = runner.invoke(args=["account", "create", "Acme", "--price", "35", "--balance", "500"])
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    assert authenticate(key).account.name == "Acme"
    assert runner.invoke(args=["number", "add", "0700000001", "--account", "Acme", "--carrier", "gw"]).exit_code == 0
    assert VirtualNumber.get().number == "+46700000001"
    keyword = runner.invoke(
        args=[
            "keyword",
            "add",
            "+46700000001",
            "JOIN",
            "--action",
            "subscribe",
            "--group",
            "members",
            "--reply",
            "Welcome {first_name}",
            "--alias",
            "gå med",
        ]
    )
    assert keyword.exit_code == 0, keyword.output
    row = Keyword.get()
    assert (row.word, row.aliases, row.group_name) == ("join", ["gå med"], "members")
    assert runner.invoke(args=["topup", "Acme", "250"]).exit_code == 0
    account = Account.get()
    assert (account.balance, account.price_per_segment) == (750, 35)
    assert [e.amount for e in LedgerEntry.select().order_by(LedgerEntry.id)] == [500, 250]
    viewer = runner.invoke(args=["apikey", "create", "Acme", "--role", "viewer"])
    assert authenticate(viewer.output.strip().splitlines()[-1]).role == "viewer"


def test_errors_are_one_line_and_non_zero(runner):
    unknown_kind = runner.invoke(args=["carrier", "add", "gw", "--kind", "pigeon"])
    assert unknown_kind.exit_code != 0 and "unknown kind" in unknown_kind.output
    assert Carrier.select().count() == 0
    no_account = runner.invoke(args=["topup", "Nobody", "10"])
    assert no_account.exit_code != 0 and "no account named 'Nobody'" in no_account.output
    runner.invoke(args=["carrier", "add", "gw", "--kind", "generic"])
    runner.invoke(args=["account", "create", "Acme"])
    bad_number = runner.invoke(args=["number", "add", "12", "--account", "Acme", "--carrier", "gw"])
    assert bad_number.exit_code != 0
    assert VirtualNumber.select().count() == 0


def test_reserved_and_duplicate_keywords_are_refused(runner):
    runner.invoke(args=["carrier", "add", "gw", "--kind", "generic"])
    runner.invoke(args=["account", "create", "Acme"])
    runner.invoke(args=["number", "add", "+46700000001", "--account", "Acme", "--carrier", "gw"])
    stop = runner.invoke(args=["keyword", "add", "+46700000001", "STOP"])
    assert stop.exit_code != 0 and "reserved" in stop.output.lower()
    assert runner.invoke(args=["keyword", "add", "+46700000001", "join", "--reply", "hi"]).exit_code == 0
    again = runner.invoke(args=["keyword", "add", "+46700000001", "JOIN", "--reply", "hi"])
    assert again.exit_code != 0 and "already" in again.output
    assert Keyword.select().count() == 1
