"""Carrier adapters, one module per kind; importing them registers them with the pipeline."""

from flask import Flask

from webhooks import generic, simulator, twilio, vonage
from webhooks.views import bp

ADAPTER_MODULES = (generic, simulator, twilio, vonage)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
