"""The operator's inspection commands: failed jobs, lists of carriers, accounts and numbers, console users.

`smsbot jobs failed` reads RQ's failed job registry of the app's queue; `smsbot jobs retry ID|--all`
puts failed jobs back on the queue (a send job claims its message again, so a retry never sends twice).
"""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup
from peewee import JOIN, IntegrityError, fn
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry

from bot import audit, cli
from bot.passwords import WeakPassword, check_strength, hash_password
from bot.pipeline.queue import SEND_JOB, SEND_JOB_PREFIX, get_queue
from bot.users import ROLES
from models import Account, Carrier, User, VirtualNumber, db

jobs_cli = AppGroup("jobs", help="RQ jobs: failed ones and retries.")
user_cli = cli.AuditedGroup("user", help="Console users.")


def last_error_line(job: Job) -> str:
    """The last line of the job's traceback: the exception and its message."""
    result = job.latest_result()
    text = (result.exc_string if result else None) or job.exc_info or ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no error recorded)"


def message_id_of(job: Job) -> str:
    if job.id.startswith(SEND_JOB_PREFIX):
        return job.id[len(SEND_JOB_PREFIX) :]
    if job.func_name == SEND_JOB and job.args:
        return ",".join(str(message_id) for message_id in job.args[0])
    return "-"


@jobs_cli.command("failed")
def jobs_failed() -> None:
    """List failed jobs: id, function, message id and the error line."""
    queue = get_queue()
    registry = FailedJobRegistry(queue=queue)
    ids = registry.get_job_ids()
    if not ids:
        click.echo(f"no failed jobs in {queue.name}")
        return
    for job in Job.fetch_many(ids, connection=queue.connection):
        if job is None:
            continue
        click.echo(f"{job.id}\t{job.func_name}\tmessage={message_id_of(job)}\t{last_error_line(job)}")


@jobs_cli.command("retry")
@click.argument("job_id", required=False)
@click.option("--all", "retry_all", is_flag=True, help="retry every failed job")
def jobs_retry(job_id: str | None, retry_all: bool) -> None:
    """Put a failed job (or all of them) back on the queue."""
    if bool(job_id) == retry_all:
        raise click.UsageError("give a job id or --all")
    queue = get_queue()
    registry = FailedJobRegistry(queue=queue)
    ids = registry.get_job_ids() if retry_all else [job_id]
    if job_id and job_id not in registry.get_job_ids():
        raise click.ClickException(f"no failed job {job_id!r} in {queue.name}")
    for one in ids:
        try:
            registry.requeue(one)
        except NoSuchJobError:
            click.echo(f"{one}: gone (expired)", err=True)
            continue
        click.echo(f"{one}: requeued")


@cli.carrier_cli.command("list")
def carrier_list() -> None:
    """List carriers: name, kind, outbound URL, whether it has a secret, numbers served, pacing."""
    served = fn.COUNT(VirtualNumber.id)
    rows = (
        Carrier.select(Carrier, served.alias("numbers"))
        .join(VirtualNumber, join_type=JOIN.LEFT_OUTER)
        .group_by(Carrier.id)
        .order_by(Carrier.name)
    )
    for row in rows:
        secret = "signed" if row.secret else "unsigned"
        pace = f"mps={row.mps}" if row.mps else "mps=none"
        click.echo(f"{row.name}\t{row.kind}\t{row.url or '-'}\t{secret}\tnumbers={row.numbers}\t{pace}")


@cli.account_cli.command("list")
def account_list() -> None:
    """List accounts: name, billing mode, balance, price per segment, numbers, users."""
    for row in Account.select().order_by(Account.name):
        numbers = VirtualNumber.select().where(VirtualNumber.account == row).count()
        users = User.select().where(User.account == row).count()
        click.echo(
            f"{row.name}\t{row.billing_mode}\tbalance={row.balance}\tprice={row.price_per_segment}\t"
            f"{row.currency}\tnumbers={numbers}\tusers={users}"
        )


@cli.number_cli.command("list")
@click.option("--account", "account_name", help="only this account's numbers")
def number_list(account_name: str | None) -> None:
    """List virtual numbers: number, account, carrier."""
    rows = VirtualNumber.select(VirtualNumber, Account, Carrier).join(Account).switch(VirtualNumber).join(Carrier)
    if account_name:
        rows = rows.where(VirtualNumber.account == cli._account(account_name))
    for row in rows.order_by(VirtualNumber.number):
        click.echo(f"{row.number}\t{row.account.name}\t{row.carrier.name}")


@user_cli.command("add")
@click.argument("account_name")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), default="user")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input (one line)")
def user_add(account_name: str, email: str, role: str, password_stdin: bool) -> None:
    """Add a console user with a password (else they get no password and need a reset link)."""
    account = cli._account(account_name)
    password_hash = ""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        try:
            check_strength(password)
        except WeakPassword as exc:
            raise click.ClickException(str(exc)) from None
        password_hash = hash_password(password)
    address = email.strip().lower()
    if "@" not in address:
        raise click.BadParameter("not an e-mail address", param_hint="EMAIL")
    try:
        with db.atomic():
            user = User.create(account=account, email=address, role=role, password_hash=password_hash)
            audit.created("user.create", user)
    except IntegrityError:
        raise click.ClickException(f"a user with e-mail {address} exists already") from None
    click.echo(f"user {address} ({role}) added to {account.name}")


COMMANDS = (jobs_cli, user_cli)
