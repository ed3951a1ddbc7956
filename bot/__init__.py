"""smsbot: the app factory. Only this module wires the carriers and the keyword router to the pipeline."""

from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the app: defaults, then the environment, then `test_config`; then every subsystem.

    Raises bot.environment.ConfigError for a configuration production refuses (one line to show).
    """
    import keywords
    import webhooks
    from bot import (
        api,
        bodylimits,
        cache,
        cli,
        config,
        console,
        db,
        environment,
        errors,
        health,
        inputguard,
        links,
        metrics,
        password_page,
        sessions,
        unsubscribe,
    )

    instance = (test_config or {}).get("INSTANCE_PATH") or os.environ.get(
        "SMSBOT_INSTANCE_PATH", os.path.join(PROJECT_ROOT, "instance")
    )
    app = Flask(__name__, instance_path=instance)
    config.load(app.config, test_config)
    environment.check(app.config)  # raises ConfigError: production without SMSBOT_SECRET_KEY
    os.makedirs(app.instance_path, exist_ok=True)
    configure_logging(app)
    bodylimits.init_app(app)
    db.init_app(app)
    sessions.init_app(app)
    cache.init_app(app)
    errors.init_app(app)
    inputguard.init_app(app)
    webhooks.init_app(app)
    keywords.init_app(app)
    api.init_app(app)
    console.init_app(app)
    metrics.init_app(app)
    health.init_app(app)
    unsubscribe.init_app(app)
    links.init_app(app)
    password_page.init_app(app)
    cli.init_app(app)
    return app


def configure_logging(app: Flask) -> None:
    """Log to stderr with phone numbers masked except their last four digits; `LOG_FORMAT` text or json.

    rq's own loggers share the handler, so the worker's lines are masked and formatted the same way.
    """
    from bot.logformat import formatter
    from bot.phones import PhoneMaskingFilter

    logger = logging.getLogger("smsbot")
    if not logger.handlers:  # once per process, however many apps are created
        handler = logging.StreamHandler()
        handler.setFormatter(formatter(app.config["LOG_FORMAT"]))
        handler.addFilter(PhoneMaskingFilter())
        for name in ("smsbot", "rq"):
            logging.getLogger(name).addHandler(handler)
        logger.setLevel(logging.INFO)
    app.logger.addFilter(PhoneMaskingFilter())
