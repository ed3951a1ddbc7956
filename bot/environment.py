"""What `SMSBOT_ENV` allows: production refuses what only development and tests may use.

- production (the default): the app needs `SMSBOT_SECRET_KEY`; a carrier needs a webhook secret and may
  not be the simulator; webhooks of an unsigned carrier answer 403.
- development (`make run`) and test: unsigned carriers and the simulator work, for curl and the chat.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app

from bot import carriers
from bot.config import DEFAULTS
from models import Carrier

ENVIRONMENTS = ("production", "development", "test")


class ConfigError(RuntimeError):
    """A configuration the app refuses to start with; the message is one line for the operator."""


def check(config: Mapping[str, Any]) -> None:
    """Raise ConfigError for an unknown SMSBOT_ENV, or production without its own secret key."""
    env = config.get("ENV")
    if env not in ENVIRONMENTS:
        raise ConfigError(f"SMSBOT_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}")
    if env == "production" and str(config.get("SECRET_KEY") or "") in ("", DEFAULTS["SECRET_KEY"]):
        raise ConfigError(
            "SMSBOT_SECRET_KEY is not set: production refuses to start without it "
            "(set SMSBOT_ENV=development for a local run)"
        )


def is_production() -> bool:
    return current_app.config["ENV"] == "production"


def unsigned_reason(carrier: Carrier) -> str:
    """Why a carrier's webhooks are not signed ("" when they are): production refuses them."""
    adapter = carriers.adapter_for(carrier.kind)
    if adapter.development_only:
        return f"the {carrier.kind} kind is for development and tests only"
    if not adapter.webhook_secret(carrier):
        option = "--signature-secret" if adapter.separate_signature_secret else "--secret"
        return f"the carrier has no webhook secret ({option}), so its webhooks cannot be verified"
    return ""


def refusal_for_new_carrier(carrier: Carrier) -> str:
    """Why production refuses to add this (unsaved) carrier ("" when it does not)."""
    if not carrier.secret and not carriers.adapter_for(carrier.kind).development_only:
        return "a carrier needs --secret in production"
    return unsigned_reason(carrier)
