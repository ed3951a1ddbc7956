"""SMSBOT_ENV: what production refuses (no secret key, unsigned carriers, the simulator), and carriers
that may only reach their own numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from bot import create_app
from bot.environment import ConfigError
from bot.signing import HEADER, sign
from models import Carrier, Contact, InboundMessage, OutboundMessage
from tests.conftest import ROOT

PHONE, NUMBER = "+46731234567", "+46700000001"
SMS = {"id": "gw-1", "from": PHONE, "to": NUMBER, "text": "HELP"}


def test_production_refuses_to_start_without_a_secret_key(schema):
    with pytest.raises(ConfigError, match="SMSBOT_SECRET_KEY"):
        create_app({**schema, "ENV": "production"})
    assert create_app({**schema, "ENV": "production", "SECRET_KEY": "a real secret"}).config["ENV"] == "production"


def test_an_unknown_environment_is_refused(schema):
    with pytest.raises(ConfigError, match="SMSBOT_ENV"):
        create_app({**schema, "ENV": "staging"})


def test_the_cli_says_so_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SMSBOT_ENV", "SMSBOT_SECRET_KEY")}
    env["SMSBOT_INSTANCE_PATH"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "wsgi", "db", "upgrade"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "smsbot: SMSBOT_SECRET_KEY is not set: production refuses to start without it "
        "(set SMSBOT_ENV=development for a local run)"
    ]


@pytest.fixture
def production(app):
    app.config["ENV"] = "production"
    return app


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--kind", "simulator", "--secret", "s"], "the simulator kind is for development and tests only"),
        (["--kind", "generic"], "a carrier needs --secret in production"),
        (["--kind", "twilio", "--username", "AC1"], "a carrier needs --secret in production"),
        (["--kind", "vonage", "--secret", "api"], "no webhook secret (--signature-secret)"),
    ],
)
def test_production_refuses_unsigned_carriers_on_the_cli(runner, production, args, error):
    result = runner.invoke(args=["carrier", "add", "c", *args])
    assert result.exit_code != 0
    assert error in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert Carrier.select().count() == 0


def test_production_takes_a_vonage_carrier_with_its_signature_secret_and_method(runner, production):
    args = ["carrier", "add", "vg", "--kind", "vonage", "--secret", "api", "--signature-secret", "sig"]
    result = runner.invoke(args=[*args, "--signature-method", "sha512"])
    assert result.exit_code == 0, result.output
    carrier = Carrier.get()
    assert (carrier.secret, carrier.signature_secret, carrier.signature_method) == ("api", "sig", "sha512")


def test_a_signature_method_must_be_one_the_kind_has(runner):
    result = runner.invoke(args=["carrier", "add", "vg", "--kind", "vonage", "--signature-method", "sha3"])
    assert result.exit_code != 0 and "md5hash, md5, sha1, sha256, sha512" in result.output
    result = runner.invoke(args=["carrier", "add", "tw", "--kind", "twilio", "--signature-method", "md5"])
    assert result.exit_code != 0 and "no choice of method" in result.output


def test_development_and_tests_take_the_simulator_unsigned(runner):
    assert runner.invoke(args=["carrier", "add", "sim", "--kind", "simulator"]).exit_code == 0
    assert Carrier.get().signature_method == ""


def test_demo_is_refused_in_production(runner, production):
    result = runner.invoke(args=["demo"])
    assert result.exit_code != 0 and "SMSBOT_ENV=development" in result.output


def post(client, name: str, secret: str = ""):
    body = json.dumps(SMS).encode()
    headers = {"Content-Type": "application/json"}
    if secret:
        headers[HEADER] = sign(secret, body, int(time.time()))
    return client.post(f"/webhooks/{name}/inbound", data=body, headers=headers)


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("generic", {"secret": ""}),
        ("simulator", {"secret": "s3cret"}),
        ("simulator", {"secret": ""}),
        ("vonage", {"secret": "api", "signature_secret": ""}),
    ],
)
def test_production_answers_403_to_webhooks_of_unsigned_carriers(
    client, production, make_carrier, make_account, make_number, kind, fields
):
    carrier = make_carrier(kind, name="c", **fields)
    make_number(make_account(name="Shop"), carrier, NUMBER)
    response = post(client, "c", fields["secret"])
    assert response.status_code == 403
    assert response.json["error"]["code"] == "unsigned_carrier"
    assert InboundMessage.select().count() == 0


def test_production_takes_a_signed_carrier(client, production, make_carrier, make_account, make_number):
    make_number(make_account(name="Shop"), make_carrier("generic", name="gw", secret="s"), NUMBER)
    assert post(client, "gw", "s").status_code == 200
    assert InboundMessage.get().action == "help"


def test_an_inbound_through_another_carrier_than_the_numbers_is_unrouted(
    client, make_carrier, make_account, make_number
):
    make_number(make_account(name="Shop"), make_carrier("twilio", name="tw"), NUMBER)
    make_carrier("generic", name="gw", secret="s")
    response = post(client, "gw", "s")
    assert response.status_code == 200
    stored = InboundMessage.get()
    assert (stored.number, stored.outcome) == (None, f"unrouted: {NUMBER} is served by another carrier")
    assert OutboundMessage.select().count() == 0 and Contact.select().count() == 0
