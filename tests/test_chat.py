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


TRANSCRIPT = """\
# a business's keyword setup, kept under test
> SAVE Anna Berg vip
< Saved Anna Berg in vip.

> HELP
< Demo help. Reply STOP to opt out.
> nothing to see
"""


@pytest.fixture
def demo_number(make_account, make_carrier, make_number):
    return make_number(
        make_account(name="Demo"),
        make_carrier("simulator", name="sim", secret=""),
        "+46700000001",
        help_text="Demo help. Reply STOP to opt out.",
    )


def test_a_transcript_that_matches_passes(runner, live_server, demo_number, tmp_path):
    script = tmp_path / "keywords.txt"
    script.write_text(TRANSCRIPT, encoding="utf-8")
    result = runner.invoke(args=["chat", "--number", "+46700000001", "--script", str(script), "--wait", "5"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "you> SAVE Anna Berg vip",
        "bot> Saved Anna Berg in vip.",
        "you> HELP",
        "bot> Demo help. Reply STOP to opt out.",
        "you> nothing to see",
        "transcript passed: 3 messages",
    ]


@pytest.mark.parametrize(
    ("changed", "message"),
    [
        (
            TRANSCRIPT.replace("< Saved Anna Berg in vip.", "< Saved Anna Berg in VIP."),
            "line 2 ('SAVE Anna Berg vip'), reply 1: expected 'Saved Anna Berg in VIP.', got 'Saved Anna Berg in vip.'",
        ),
        (
            TRANSCRIPT + "< a reply that never comes\n",
            "line 7 ('nothing to see'), reply 1: expected 'a reply that never comes', got None",
        ),
        (
            TRANSCRIPT.replace("< Demo help. Reply STOP to opt out.\n", ""),
            "line 5 ('HELP'), reply 1: expected None, got 'Demo help. Reply STOP to opt out.'",
        ),
    ],
)
def test_the_first_difference_fails_with_its_line(runner, live_server, demo_number, tmp_path, changed, message):
    script = tmp_path / "keywords.txt"
    script.write_text(changed, encoding="utf-8")
    result = runner.invoke(args=["chat", "--number", "+46700000001", "--script", str(script), "--wait", "1"])
    assert result.exit_code == 1
    assert f"Error: {message}" in result.output


def test_a_transcript_line_without_a_marker_is_refused(runner, live_server, demo_number, tmp_path):
    script = tmp_path / "keywords.txt"
    script.write_text("> HELP\nDemo help.\n", encoding="utf-8")
    result = runner.invoke(args=["chat", "--number", "+46700000001", "--script", str(script)])
    assert result.exit_code == 1
    assert "line 2: expected '> text' or '< reply', got 'Demo help.'" in result.output
