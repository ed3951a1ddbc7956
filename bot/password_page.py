"""The page behind an invite or reset link: a form that sets the password with the link's token."""

from __future__ import annotations

from flask import Blueprint, Flask, render_template_string, request

from bot import users
from bot.passwords import WeakPassword

bp = Blueprint("password_page", __name__)
PAGE = """<!doctype html><html lang="en"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Set your password</title><body style="font-family:sans-serif;max-width:32em;margin:2em auto">
{% if done %}<h1>Your password is set</h1><p>You can sign in now.</p>{% else %}
<h1>Set your password</h1><p>At least 10 characters, one digit and one capital letter.</p>
{% if error %}<p role="alert" style="color:#b00">{{ error }}</p>{% endif %}
<form method="post"><input type="password" name="password" autocomplete="new-password" required>
<button type="submit">Set password</button></form>{% endif %}</body></html>"""


@bp.route("/password/<token>", methods=["GET", "POST"])
def set_password(token: str) -> tuple[str, int]:
    if request.method == "GET":
        return render_template_string(PAGE, done=False, error=None), 200
    try:
        users.set_password(token, request.form.get("password", ""))
    except WeakPassword as exc:
        return render_template_string(PAGE, done=False, error=str(exc)), 422
    except users.TokenError as exc:
        return render_template_string(PAGE, done=False, error=str(exc)), 404
    return render_template_string(PAGE, done=True, error=None), 200


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
