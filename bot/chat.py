"""`smsbot chat`: a phone in the terminal. Each line you type is a real inbound SMS through the virtual
number's carrier webhook (the simulator's, in `make run`); each reply is printed with its status trail
as the worker sends it and the carrier reports on it (101 → 103 → 102 → 110 → 111 → … → 201).

`--say TEXT` (repeatable) sends those lines and exits once their replies are final (or `--wait` seconds
have passed), so the same path can be scripted and tested.

`--script FILE` replays a transcript, so a business can keep its keyword setup under test in its own CI:
`> text` lines are texted in order, each followed by the `< reply` lines it must answer with (none: it
must not answer); `#` starts a comment, blank lines are skipped. Replies are compared exactly, in order,
once as many as expected have arrived (a bot behind a URL answers from a job, so this waits up to
`--wait` seconds); the first difference is printed with its line number and the exit status is 1.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import IO

import click
import requests
from flask import current_app

from bot import phones, signing
from bot.pipeline import statuses
from models import InboundMessage, MessageEvent, OutboundMessage, VirtualNumber

POLL_SECONDS = 0.2


def trail(message: OutboundMessage) -> str:
    codes = [e.code for e in MessageEvent.select().where(MessageEvent.message == message).order_by(MessageEvent.id)]
    return " → ".join(str(code) for code in codes)


def send_line(number: VirtualNumber, phone: str, text: str) -> str:
    """POST one line as the carrier would; returns the carrier message id."""
    message_id = f"chat-{uuid.uuid4().hex[:12]}"
    body = json.dumps({"id": message_id, "from": phone, "to": number.number, "text": text}).encode()
    headers = {"Content-Type": "application/json", signing.HEADER: signing.sign(number.carrier.secret, body)}
    url = f"{current_app.config['PUBLIC_BASE_URL'].rstrip('/')}/webhooks/{number.carrier.name}/inbound"
    try:
        answer = requests.post(url, data=body, headers=headers, timeout=10)
    except requests.RequestException as exc:
        raise click.ClickException(f"cannot reach {url}: is `smsbot run` running? ({exc.__class__.__name__})") from None
    if answer.status_code != 200:
        raise click.ClickException(f"the webhook answered {answer.status_code}: {answer.text[:200]}")
    return message_id


def follow(number: VirtualNumber, message_id: str, wait: float) -> None:
    """Print the replies to one inbound once final (or when `wait` runs out, as they are then).

    The inbound row and its replies are committed together, so once the row is there every reply is.
    """
    deadline = time.monotonic() + wait
    while True:
        inbound = InboundMessage.get_or_none(
            (InboundMessage.carrier == number.carrier) & (InboundMessage.carrier_message_id == message_id)
        )
        replies = list(inbound.replies.order_by(OutboundMessage.id)) if inbound else []
        settled = inbound is not None and all(statuses.is_final(reply.status) for reply in replies)
        if settled or time.monotonic() > deadline:
            break
        time.sleep(POLL_SECONDS)
    for reply in replies:
        still = "" if statuses.is_final(reply.status) else " (still going)"
        click.echo(f"bot> {reply.body}\n     [{trail(reply)}] {statuses.name(reply.status)}{still}")
    if inbound is not None and not replies:
        click.echo(f"     (no reply: {inbound.outcome or inbound.action or 'nothing matched'})")


@dataclass
class Exchange:
    """One `> text` line of a transcript and the replies it must get."""

    line: int
    text: str
    replies: list[str] = field(default_factory=list)


def parse_transcript(source: IO[str]) -> list[Exchange]:
    exchanges: list[Exchange] = []
    for number, raw in enumerate(source, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        marker, text = line[:1], line[2:] if line[1:2] == " " else line[1:]
        if marker == ">":
            exchanges.append(Exchange(number, text))
        elif marker == "<" and exchanges:
            exchanges[-1].replies.append(text)
        else:
            raise click.ClickException(f"line {number}: expected '> text' or '< reply', got {line!r}")
    return exchanges


def replies_to(number: VirtualNumber, message_id: str, expected: int, wait: float) -> list[str]:
    """The reply texts of one inbound, once `expected` of them are there (or `wait` runs out)."""
    deadline = time.monotonic() + wait
    while True:
        inbound = InboundMessage.get_or_none(
            (InboundMessage.carrier == number.carrier) & (InboundMessage.carrier_message_id == message_id)
        )
        bodies = [reply.body for reply in inbound.replies.order_by(OutboundMessage.id)] if inbound else []
        if (inbound is not None and len(bodies) >= expected) or time.monotonic() > deadline:
            return bodies
        time.sleep(POLL_SECONDS)


def replay(number: VirtualNumber, phone: str, exchanges: list[Exchange], wait: float) -> None:
    """Text each line of a transcript and stop at the first reply that differs."""
    for exchange in exchanges:
        click.echo(f"you> {exchange.text}")
        got = replies_to(number, send_line(number, phone, exchange.text), len(exchange.replies), wait)
        for index in range(max(len(got), len(exchange.replies))):
            want = exchange.replies[index] if index < len(exchange.replies) else None
            have = got[index] if index < len(got) else None
            if want != have:
                raise click.ClickException(
                    f"line {exchange.line} ({exchange.text!r}), reply {index + 1}: expected {want!r}, got {have!r}"
                )
            click.echo(f"bot> {have}")
    click.echo(f"transcript passed: {len(exchanges)} messages")


@click.command("chat")
@click.option("--number", "number_text", required=True, help="the virtual number to text")
@click.option("--phone", default="+46731234567", show_default=True, help="the phone you pretend to be")
@click.option("--say", "lines", multiple=True, help="send this line and exit (repeatable)")
@click.option("--script", type=click.File("r", encoding="utf-8"), help="replay a transcript; exit 1 on a difference")
@click.option("--wait", default=15.0, show_default=True, help="seconds to wait for each reply to be final")
def chat(number_text: str, phone: str, lines: tuple[str, ...], script: IO[str] | None, wait: float) -> None:
    """Text a virtual number as a mobile phone would, and watch the replies arrive."""
    region = current_app.config["DEFAULT_REGION"]
    try:
        e164, sender = phones.to_e164(number_text, region), phones.to_e164(phone, region)
    except phones.PhoneError as exc:
        raise click.BadParameter(str(exc)) from None
    number = VirtualNumber.get_or_none(VirtualNumber.number == e164)
    if number is None:
        raise click.ClickException(f"no virtual number {e164}")
    if script is not None:
        replay(number, sender, parse_transcript(script), wait)
        return
    if lines:
        for line in lines:
            click.echo(f"you> {line}")
            follow(number, send_line(number, sender, line), wait)
        return
    click.echo(f"Texting {e164} as {sender}. Type a message; an empty line or Ctrl-D ends.")
    while True:
        try:
            line = input("you> ")
        except EOFError:
            return
        if not line.strip():
            return
        follow(number, send_line(number, sender, line), wait)
