"""The operator's inspection commands: failed jobs and retries, lists, console users, --version."""

from __future__ import annotations

import os
import subprocess
import sys

from rq.registry import FailedJobRegistry

from bot.passwords import verify_password
from bot.pipeline.queue import get_queue
from models import User
from tests.console_helpers import setup_account

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_failed_jobs_are_listed_and_retried(runner, run_worker):
    assert runner.invoke(args=["jobs", "failed"]).output.strip() == "no failed jobs in smsbot-test"
    job = get_queue().enqueue("bot.no_such_module.send", 42, job_id="send-42")
    run_worker()
    listed = runner.invoke(args=["jobs", "failed"])
    assert listed.exit_code == 0
    line = listed.output.strip()
    assert line.startswith(f"{job.id}\tbot.no_such_module.send\tmessage=42\t")
    assert line.endswith("\tValueError: Invalid attribute name: send")
    retried = runner.invoke(args=["jobs", "retry", job.id])
    assert retried.exit_code == 0 and retried.output.strip() == f"{job.id}: requeued"
    assert job.id in get_queue().job_ids
    assert FailedJobRegistry(queue=get_queue()).count == 0


def test_retry_all_and_errors(runner, run_worker):
    for n in range(2):
        get_queue().enqueue("bot.no_such_module.job", n)
    run_worker()
    assert runner.invoke(args=["jobs", "retry", "--all"]).output.count("requeued") == 2
    unknown = runner.invoke(args=["jobs", "retry", "nope"])
    assert unknown.exit_code == 1 and "no failed job 'nope'" in unknown.output
    assert runner.invoke(args=["jobs", "retry"]).exit_code == 2


def test_carrier_account_and_number_lists(runner):
    setup_account("Acme", balance=500, price_per_segment=35)
    carriers = runner.invoke(args=["carrier", "list"]).output
    assert carriers.strip() == "sim\tsimulator\t-\tunsigned\tnumbers=1\tmps=none"
    added = runner.invoke(args=["carrier", "add", "gw", "--kind", "generic", "--secret", "s", "--mps", "50"])
    assert added.exit_code == 0, added.output
    assert runner.invoke(args=["carrier", "list"]).output.splitlines()[0].endswith("numbers=0\tmps=50")
    accounts = runner.invoke(args=["account", "list"]).output
    assert accounts.strip() == "Acme\tbalance\tbalance=500\tprice=35\tSEK\tnumbers=1\tusers=0"
    numbers = runner.invoke(args=["number", "list"]).output
    assert numbers.strip() == "+46700000001\tAcme\tsim"
    assert runner.invoke(args=["number", "list", "--account", "Nope"]).exit_code == 1


def test_user_add_reads_the_password_from_stdin_and_checks_it(runner):
    setup_account("Acme")
    weak = runner.invoke(
        args=["user", "add", "Acme", "ann@acme.se", "--role", "admin", "--password-stdin"], input="x\n"
    )
    assert weak.exit_code == 1
    assert weak.output.strip() == "Error: the password needs at least 10 characters"
    assert User.select().count() == 0
    added = runner.invoke(
        args=["user", "add", "Acme", "Ann@Acme.se", "--role", "admin", "--password-stdin"], input="Strong-pass-1\n"
    )
    assert added.exit_code == 0, added.output
    user = User.get()
    assert (user.email, user.role, user.account.name) == ("ann@acme.se", "admin", "Acme")
    assert verify_password("Strong-pass-1", user.password_hash)
    again = runner.invoke(args=["user", "add", "Acme", "ann@acme.se", "--password-stdin"], input="Strong-pass-1\n")
    assert again.exit_code == 1 and "exists already" in again.output
    assert runner.invoke(args=["user", "add", "Nope", "x@y.se"]).exit_code == 1


def test_version_prints_smsbot_version(tmp_path):
    env = {**os.environ, "SMSBOT_INSTANCE_PATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "wsgi", "--version"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert done.stdout.strip() == "smsbot 0.1.0"
