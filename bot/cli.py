"""The `smsbot` command line (a Flask CLI group, the same as `flask --app wsgi`).

Errors are one clear line on standard error and a non-zero exit (click's UsageError / ClickException).
"""

from __future__ import annotations

import faulthandler
import json
import signal
from typing import IO, Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from peewee import IntegrityError

from bot import accounts, audit, carriers, environment, flows, keyword_rules, migrations, phones
from bot.apikeys import OPERATOR, ROLES, create_key
from bot.keyword_rules import ACTIONS, KeywordError
from models import Account, Carrier, Keyword, LedgerEntry, VirtualNumber, db


class Audited:
    """A command (or group) whose changes the audit log records as the CLI's (bot/audit.py)."""

    def invoke(self, ctx: click.Context) -> Any:
        with audit.as_cli():
            return super().invoke(ctx)  # type: ignore[misc]


class AuditedGroup(Audited, AppGroup):
    pass


class AuditedCommand(Audited, click.Command):
    pass


db_cli = AppGroup("db", help="Database schema.")
carrier_cli = AuditedGroup("carrier", help="Carrier connections.")
account_cli = AuditedGroup("account", help="Accounts.")
number_cli = AuditedGroup("number", help="Virtual numbers.")
keyword_cli = AuditedGroup("keyword", help="Custom keywords of a virtual number.")
apikey_cli = AuditedGroup("apikey", help="API keys.")
flows_cli = AppGroup("flows", help="Flows and surveys.")


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema (safe to run twice)."""
    applied = migrations.upgrade()
    click.echo(f"schema at version {migrations.MIGRATIONS[-1][0]}" + (f" (applied {applied})" if applied else ""))


@carrier_cli.command("add")
@click.argument("name")
@click.option("--kind", required=True, help="generic, twilio, vonage or simulator")
@click.option("--secret", default="", help="signing secret or auth token")
@click.option("--username", default="", help="account id at the carrier (e.g. Twilio account SID)")
@click.option("--url", default="", help="outbound base URL")
@click.option("--signature-secret", default="", help="webhook signing secret where it is not --secret (Vonage)")
@click.option(
    "--signature-method",
    default="",
    help="webhook signing method as set at the carrier; vonage: md5hash (default), md5, sha1, sha256, sha512",
)
@click.option(
    "--mps", type=click.IntRange(min=0), default=0, help="submissions per second across all workers (0: no cap)"
)
def carrier_add(
    name: str,
    kind: str,
    secret: str,
    username: str,
    url: str,
    signature_secret: str,
    signature_method: str,
    mps: int,
) -> None:
    """Add a carrier connection (production refuses the simulator and carriers without a secret)."""
    if kind not in carriers.kinds():
        raise click.BadParameter(f"unknown kind {kind!r}; known: {', '.join(carriers.kinds())}", param_hint="--kind")
    methods = carriers.adapter_for(kind).signature_methods
    if signature_method and signature_method not in methods:
        known = f"one of {', '.join(methods)}" if methods else "no choice of method"
        raise click.BadParameter(f"{kind} has {known}", param_hint="--signature-method")
    carrier = Carrier(
        name=name,
        kind=kind,
        secret=secret,
        username=username,
        url=url,
        signature_secret=signature_secret,
        signature_method=signature_method or (methods[0] if methods else ""),
        mps=mps,
    )
    if environment.is_production() and (reason := environment.refusal_for_new_carrier(carrier)):
        raise click.ClickException(reason)
    with db.atomic():
        if Carrier.get_or_none(Carrier.name == name):
            raise click.ClickException(f"carrier {name!r} exists already")
        carrier.save(force_insert=True)
        audit.created("carrier.create", carrier)
    click.echo(f"carrier {name} ({kind}) added; webhooks at /webhooks/{name}/inbound and /webhooks/{name}/status")


@account_cli.command("create")
@click.argument("name")
@click.option("--billing", type=click.Choice(["balance", "invoice"]), default="balance")
@click.option("--price", type=click.IntRange(min=0), default=0, help="price per segment, minor units")
@click.option("--balance", type=click.IntRange(min=0), default=0, help="opening balance, minor units")
def account_create(name: str, billing: str, price: int, balance: int) -> None:
    """Create an account and an admin API key (printed alone on the last line)."""
    try:
        name = accounts.check_name(name)
    except accounts.BadName as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None
    with db.atomic():
        if Account.get_or_none(Account.name == name):
            raise click.ClickException(f"account {name!r} exists already")
        account = Account.create(name=name, billing_mode=billing, price_per_segment=price, balance=balance)
        audit.created("account.create", account)
        if balance:
            entry = LedgerEntry.create(account=account, kind="topup", amount=balance)
            opening = {"balance": balance, "amount": balance, "reference": "", "ledger_id": entry.id}
            audit.record("account.topup", account, {"balance": 0}, opening)
        _, secret = create_key(account, "admin", "created by the CLI")
    click.echo(f"account {name} created ({billing}, price {price}, balance {balance}); admin API key:")
    click.echo(secret)


@account_cli.command("set")
@click.argument("name")
@click.option("--billing", type=click.Choice(["balance", "invoice"]), help="balance (prepaid) or invoice")
@click.option("--price", type=click.IntRange(min=0, max=1_000_000), help="price per segment, minor units")
@click.option("--nanp-campaign", help="the pre-booked US/Canada campaign id ('' removes it)")
def account_set(name: str, billing: str | None, price: int | None, nanp_campaign: str | None) -> None:
    """Change an account's billing (the operator's settings; a business key cannot)."""
    changes = {
        field: value
        for field, value in (("billing_mode", billing), ("price_per_segment", price), ("nanp_campaign", nanp_campaign))
        if value is not None
    }
    if not changes:
        raise click.UsageError("nothing to change: give --billing, --price or --nanp-campaign")
    if len(changes.get("nanp_campaign", "")) > 64:
        raise click.BadParameter("at most 64 characters", param_hint="--nanp-campaign")
    account = accounts.update(_account(name), changes)
    click.echo(
        f"{account.name}: {account.billing_mode}, price {account.price_per_segment}, "
        f"nanp campaign {account.nanp_campaign or '(none)'}"
    )


@number_cli.command("add")
@click.argument("number")
@click.option("--account", "account_name", required=True)
@click.option("--carrier", "carrier_name", required=True)
def number_add(number: str, account_name: str, carrier_name: str) -> None:
    """Assign a virtual number to an account, served by a carrier."""
    e164 = _e164(number)
    account, carrier = _account(account_name), _carrier(carrier_name)
    try:
        with db.atomic():
            audit.created("number.create", VirtualNumber.create(number=e164, account=account, carrier=carrier))
    except IntegrityError:
        raise click.ClickException(f"number {e164} is assigned already") from None
    click.echo(f"number {e164} added to {account.name} via {carrier.name}")


@keyword_cli.command("add")
@click.argument("number")
@click.argument("word")
@click.option("--action", type=click.Choice(ACTIONS), default="reply")
@click.option("--reply", "reply_text", default="", help="reply template: {first_name} {last_name} {phone} {args}")
@click.option("--group", "group_name", default="", help="group for subscribe / unsubscribe")
@click.option("--url", default="", help="business URL for forward")
@click.option("--flow", "flow_text", help="the flow definition as JSON text (see bot/flows.py)")
@click.option("--flow-file", type=click.File(encoding="utf-8"), help="a JSON file with the flow definition")
@click.option("--alias", "aliases", multiple=True, help="another word for the same command")
def keyword_add(
    number: str,
    word: str,
    action: str,
    reply_text: str,
    group_name: str,
    url: str,
    flow_text: str | None,
    flow_file: IO[str] | None,
    aliases: tuple[str, ...],
) -> None:
    """Add a custom keyword to a virtual number (the same rules as the API)."""
    virtual = VirtualNumber.get_or_none(VirtualNumber.number == _e164(number))
    if virtual is None:
        raise click.ClickException(f"no virtual number {number}")
    if flow_text is not None and flow_file is not None:
        raise click.UsageError("give --flow or --flow-file, not both")
    try:
        flow = json.loads(flow_text) if flow_text is not None else json.load(flow_file) if flow_file else {}
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"flow: not JSON: {exc}") from None
    data = {
        "word": word,
        "aliases": list(aliases),
        "action": action,
        "reply": reply_text,
        "group": group_name,
        "url": url,
        "flow": flow,
    }
    try:
        keyword = keyword_rules.save(virtual, data)
    except KeywordError as exc:
        raise click.ClickException(f"{exc.field}: {exc.message}") from None
    except ValueError as exc:
        raise click.ClickException(f"flow: {exc}") from None
    click.echo(f"keyword {keyword.word.upper()} ({action}) added to {virtual.number}")


@flows_cli.command("results")
@click.argument("number")
@click.argument("word")
@click.option("--format", "output", type=click.Choice(["json", "csv"]), default="json")
def flow_results(number: str, word: str, output: str) -> None:
    """Print a flow's responses (a survey's results)."""
    keyword = Keyword.get_or_none(
        (Keyword.number == VirtualNumber.select(VirtualNumber.id).where(VirtualNumber.number == _e164(number)))
        & (Keyword.word == word.casefold())
    )
    if keyword is None:
        raise click.ClickException(f"no keyword {word.upper()} on {number}")
    rows = flows.results(keyword)
    click.echo(flows.results_csv(rows) if output == "csv" else json.dumps(rows, ensure_ascii=False, indent=2), nl=False)
    if output == "json":
        click.echo()


@click.command("topup", cls=AuditedCommand)
@click.argument("account_name")
@click.argument("amount", type=click.IntRange(min=1, max=accounts.MAX_TOPUP))
@click.option("--reference", default="", help="the payment's reference, kept in the ledger")
def topup(account_name: str, amount: int, reference: str) -> None:
    """Top up an account's balance (minor units)."""
    account = _account(account_name)
    accounts.topup(account, amount, reference)
    click.echo(f"{account.name}: balance {Account.get_by_id(account.id).balance}")


@apikey_cli.command("create")
@click.argument("account_name", required=False)
@click.option("--role", type=click.Choice(ROLES), default="admin")
@click.option("--operator", is_flag=True, help="an operator key (no account): the /api/v1/operator routes")
@click.option("--label", default="")
def apikey_create(account_name: str | None, role: str, operator: bool, label: str) -> None:
    """Create an API key (printed alone on the last line; it is not stored in clear)."""
    if operator == (account_name is not None):
        raise click.UsageError("give an ACCOUNT, or --operator for an operator key (which has no account)")
    if operator:
        _, secret = create_key(None, OPERATOR, label)
        click.echo("operator key (for /api/v1/operator; not valid on business routes):")
    else:
        _, secret = create_key(_account(account_name or ""), role, label)
        click.echo(f"{role} key for {account_name}:")
    click.echo(secret)


@click.command("worker")
@click.option("--burst", is_flag=True, help="run until the queue is empty, then exit")
def worker(burst: bool) -> None:
    """Run an RQ worker with the scheduler (sends, retries, sweeps). `kill -USR1 <pid>` prints the stack of
    each of its threads to stderr (what a worker that does not stop is waiting on)."""
    from bot.redis_conn import stop_embedded
    from bot.worker import run_worker

    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        run_worker(current_app._get_current_object(), burst=burst)  # type: ignore[attr-defined]
    finally:
        stop_embedded()


def _e164(raw: str) -> str:
    try:
        return phones.to_e164(raw, current_app.config["DEFAULT_REGION"])
    except phones.PhoneError as exc:
        raise click.BadParameter(str(exc), param_hint="NUMBER") from None


def _account(name: str) -> Account:
    account = Account.get_or_none(Account.name == name)
    if account is None:
        raise click.ClickException(f"no account named {name!r}")
    return account


def _carrier(name: str) -> Carrier:
    carrier = Carrier.get_or_none(Carrier.name == name)
    if carrier is None:
        raise click.ClickException(f"no carrier named {name!r}")
    return carrier


def init_app(app: Flask) -> None:
    from bot import ops_cli
    from bot.chat import chat
    from bot.devserver import demo, run

    for command in (
        db_cli,
        carrier_cli,
        account_cli,
        number_cli,
        keyword_cli,
        apikey_cli,
        flows_cli,
        chat,
        topup,
        worker,
        run,
        demo,
        *ops_cli.COMMANDS,
    ):
        app.cli.add_command(command)
