"""Cookie sessions for the console only.

The carrier webhooks and the API never read a session (carriers send no cookie; the API takes a bearer
key), yet Flask opens one for every request: a signing serializer built, the cookie looked for, a few
per cent of a webhook's CPU. Their requests get Flask's null session instead, which refuses a write.
"""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

SESSIONLESS = ("/webhooks/", "/api/")


class ConsoleSessions(SecureCookieSessionInterface):
    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(SESSIONLESS):
            return self.make_null_session(app)
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    app.session_interface = ConsoleSessions()
