"""smsbot: the app factory. Only this module wires the carriers and the keyword router to the pipeline."""

from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the app: defaults, then the environment, then `test_config`; then every subsystem."""
    import keywords
    import webhooks
    from bot import api, cli, config, db, errors, health, inputguard, password_page, unsubscribe

    instance = (test_config or {}).get("INSTANCE_PATH") or os.environ.get(
        "SMSBOT_INSTANCE_PATH", os.path.join(PROJECT_ROOT, "instance")
    )
    app = Flask(__name__, instance_path=instance)
    config.load(app.config, test_config)
    os.makedirs(app.instance_path, exist_ok=True)
    configure_logging(app)
    db.init_app(app)
    errors.init_app(app)
    inputguard.init_app(app)
    webhooks.init_app(app)
    keywords.init_app(app)
    api.init_app(app)
    health.init_app(app)
    unsubscribe.init_app(app)
    password_page.init_app(app)
    cli.init_app(app)
    return app


def configure_logging(app: Flask) -> None:
    """Log to stderr with phone numbers masked except their last four digits."""
    from bot.phones import PhoneMaskingFilter

    logger = logging.getLogger("smsbot")
    if not logger.handlers:  # once per process, however many apps are created
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(PhoneMaskingFilter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    app.logger.addFilter(PhoneMaskingFilter())
