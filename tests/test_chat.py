"""`smsbot chat`: lines typed as a phone reach the simulator carrier's webhook over HTTP; replies come back
with their status trail, sent by a real worker process."""

from __future__ import annotations

import pytest


@pytest.fixture
def worker_process(spawn_worker, live_server):
    return spawn_worker(PUBLIC_BASE_URL=live_server)


def test_chat_says_save_and_shows_the_reply_with_its_trail(
    runner, live_server, worker_process, make_account, make_carrier, make_number
):
    make_number(make_account(name="Demo"), make_carrier("simulator", name="sim", secret=""), "+46700000001")
    result = runner.invoke(
        args=[
            "chat",
            "--number",
            "0700000001",
            "--phone",
            "0731234567",
            "--say",
            "SAVE Anna Berg vip",
            "--say",
            "nothing to see",
            "--wait",
            "20",
        ]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "you> SAVE Anna Berg vip",
        "bot> Saved Anna Berg in vip.",
        "     [101 → 103 → 102 → 110 → 111 → 112 → 113 → 201] DeliveredToHandset",
        "you> nothing to see",
        "     (no reply: no action)",
    ]


def test_chat_explains_a_missing_server(runner, make_account, make_carrier, make_number, app):
    app.config["PUBLIC_BASE_URL"] = "http://127.0.0.1:9"
    make_number(make_account(name="Demo"), make_carrier("simulator", name="sim", secret=""), "+46700000001")
    result = runner.invoke(args=["chat", "--number", "+46700000001", "--say", "hi"])
    assert result.exit_code != 0 and "is `smsbot run` running?" in result.output


def test_chat_refuses_an_unknown_number(runner):
    result = runner.invoke(args=["chat", "--number", "+46709999999", "--say", "hi"])
    assert result.exit_code != 0 and "no virtual number +46709999999" in result.output


def test_interactive_chat_reads_lines_until_an_empty_one(
    runner, live_server, worker_process, make_account, make_carrier, make_number
):
    make_number(
        make_account(name="Demo"),
        make_carrier("simulator", name="sim", secret=""),
        "+46700000001",
        help_text="Demo help. Reply STOP to opt out.",
    )
    result = runner.invoke(args=["chat", "--number", "+46700000001", "--wait", "20"], input="help\n\n")
    assert result.exit_code == 0, result.output
    assert "bot> Demo help. Reply STOP to opt out." in result.output
    assert "201] DeliveredToHandset" in result.output
