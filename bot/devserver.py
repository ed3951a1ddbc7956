"""Development: `smsbot demo` seeds a demo account, `smsbot run` serves web + worker on embedded defaults."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import click
from flask import current_app
from werkzeug.serving import run_simple

from bot import environment, migrations
from bot.apikeys import create_key
from bot.redis_conn import redis_url, stop_embedded
from models import Account, Carrier, Keyword, LedgerEntry, VirtualNumber, db

DEMO_ACCOUNT, DEMO_CARRIER, DEMO_NUMBER, DEMO_PHONE = "demo", "sim", "+46700000001", "+46731234567"


@click.command("demo")
def demo() -> None:
    """Seed a demo account with a simulator carrier, a virtual number and a JOIN keyword (idempotent)."""
    refuse_in_production("demo")
    with db.atomic():
        carrier, _ = Carrier.get_or_create(name=DEMO_CARRIER, defaults={"kind": "simulator"})
        account, created = Account.get_or_create(
            name=DEMO_ACCOUNT, defaults={"balance": 100_000, "price_per_segment": 35}
        )
        if created:
            LedgerEntry.create(account=account, kind="topup", amount=account.balance)
        number, _ = VirtualNumber.get_or_create(
            number=DEMO_NUMBER,
            defaults={
                "account": account,
                "carrier": carrier,
                "help_text": "Demo shop: text SAVE First Last Group to join, JOIN for offers, STOP to opt out.",
                "default_reply": "Thanks! Text HELP for the commands.",
            },
        )
        Keyword.get_or_create(
            number=number,
            word="join",
            defaults={"action": "subscribe", "group_name": "offers", "reply": "Welcome {first_name}! Offers coming."},
        )
        key = create_key(account, "admin", "demo")[1] if created else None
    click.echo(f"demo account {DEMO_ACCOUNT!r}: number {DEMO_NUMBER} on simulator carrier {DEMO_CARRIER!r}")
    if key:
        click.echo(f"admin API key (shown once): {key}")


@click.command("run")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
def run(host: str, port: int) -> None:
    """Serve the web app and a worker together; an embedded Redis is started if none is configured."""
    refuse_in_production("run")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    url = redis_url(app)
    app.config["REDIS_URL"] = url
    app.config["PUBLIC_BASE_URL"] = os.environ.get("PUBLIC_BASE_URL", f"http://{host}:{port}")
    migrations.upgrade()
    env = {**os.environ, "REDIS_URL": url, "PUBLIC_BASE_URL": app.config["PUBLIC_BASE_URL"]}
    # Its own process group, so that stopping it stops everything it started.
    worker = subprocess.Popen([sys.executable, "-m", "wsgi", "worker"], env=env, start_new_session=True)
    base = app.config["PUBLIC_BASE_URL"]
    click.echo(
        f"\nsmsbot is running at {base} (health: {base}/healthz), with a worker (pid {worker.pid}).\n"
        "Text the demo number as a phone would (the simulator prints the reply it 'sends'):\n\n"
        f"  curl -s -X POST {base}/webhooks/{DEMO_CARRIER}/inbound -H 'Content-Type: application/json' \\\n"
        f'    -d \'{{"id": "\'$(date +%s%N)\'", "from": "{DEMO_PHONE}", "to": "{DEMO_NUMBER}", '
        '"text": "SAVE Anna Berg vip"}\'\n\n'
        f"or chat with it as a phone, in another terminal:  .venv/bin/smsbot chat --number {DEMO_NUMBER}\n"
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so that `finally` stops the worker and Redis
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        stop_group(worker)
        stop_embedded()


def refuse_in_production(command: str) -> None:
    if environment.is_production():
        raise click.ClickException(f"`smsbot {command}` is for development: set SMSBOT_ENV=development (make run does)")


def stop_group(process: subprocess.Popen) -> None:
    """Stop a process and its children politely, then for good."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
