"""Request body limits: MAX_BODY_BYTES (64 KiB) for every request, a larger one for a few endpoints.

Flask's MAX_CONTENT_LENGTH is app-wide; this request class answers a larger `max_content_length` for the
endpoints in LARGER, so a contacts CSV may be 20 MiB while every other body over 64 KiB is still a 413
(JSON, bot/errors.py). The endpoint is known before any hook reads the body: routing comes first.
"""

from __future__ import annotations

from flask import Flask, current_app
from flask import Request as FlaskRequest

# endpoint -> the config name of its limit
LARGER = {"api.import_contacts": "MAX_IMPORT_BYTES", "console.import_contacts": "MAX_IMPORT_BYTES"}


class Request(FlaskRequest):
    @property
    def max_content_length(self) -> int | None:
        setting = LARGER.get(self.endpoint or "")
        if self._max_content_length is None and setting and current_app:
            return current_app.config[setting]  # type: ignore[no-any-return]
        return super().max_content_length

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value


def init_app(app: Flask) -> None:
    app.request_class = Request
