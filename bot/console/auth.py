"""Console login: e-mail and password (scrypt, bot/passwords.py), a signed session, CSRF and roles."""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import abort, flash, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from bot.apikeys import role_allows
from bot.console import bp
from bot.passwords import hash_password, verify_password
from models import User

F = TypeVar("F", bound=Callable[..., Any])
ENVIRON_KEY = "smsbot.console_user"
ENROLMENT = ("console.security", "console.security_enrol")  # open to a user who must enrol first
# Checked when the e-mail is unknown, so a wrong address costs the same time as a wrong password.
_DECOY_HASH = hash_password("Decoy-password-0")


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def stamp(user: User) -> str:
    """Changes with the password, so a new password (or a removed one) ends every other session."""
    return user.password_hash[-16:]


def current_user() -> User | None:
    """The signed-in user, looked up once per request (kept in the WSGI environ, which is per request)."""
    if ENVIRON_KEY not in request.environ:
        user = None
        if "uid" in session:
            found = User.get_or_none((User.id == session["uid"]) & User.active)
            fresh = found is not None and found.password_hash
            if fresh and hmac.compare_digest(stamp(found), session.get("stamp", "")):
                user = found
        request.environ[ENVIRON_KEY] = user
    return request.environ[ENVIRON_KEY]


def login_required(role: str = "viewer") -> Callable[[F], F]:
    """Require a signed-in user with at least `role`; sets g.user and g.account."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
            if not role_allows(user.role, role):
                abort(403, f"This needs the {role} role; you are {user.role}.")
            if user.account.require_two_factor and not user.totp_secret and request.endpoint not in ENROLMENT:
                flash("Your account asks every user to turn on two-factor login first.", "error")
                return redirect(url_for("console.security"))
            g.user, g.account = user, user.account
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate


def can(role: str) -> bool:
    user = current_user()
    return user is not None and role_allows(user.role, role)


@bp.before_request
def check_csrf() -> None:
    """Every POST carries the session's token (a form field, or a header for the preview's fetch)."""
    if request.method != "POST":
        return
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    expected = session.get("csrf", "")
    if not expected or not hmac.compare_digest(sent, expected):
        abort(400, "The form expired or did not come from this site. Reload the page and try again.")


@bp.app_context_processor
def template_helpers() -> dict[str, Any]:
    return {"csrf_token": csrf_token, "can": can, "current_user": current_user}


def safe_next(target: str | None) -> str:
    """Only a path inside the console: never another site (an open redirect)."""
    if target and target.startswith("/console") and not urlsplit(target).netloc and "\\" not in target:
        return target
    return url_for("console.dashboard")


def users_with_password(email: str, password: str) -> list[User]:
    """The active users with this e-mail whose password this is (an address may be a user of several
    accounts). An unknown address costs one password check all the same, so timing does not tell."""
    candidates = list(User.select().where((User.email == email) & User.active).order_by(User.id)) if email else []
    if not candidates:
        verify_password(password, _DECOY_HASH)
        return []
    return [user for user in candidates if user.password_hash and verify_password(password, user.password_hash)]


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        if current_user() is not None:
            return redirect(url_for("console.dashboard"))
        return render_template("console/login.html", email="", error=None)
    email = request.form.get("email", "").strip().lower()
    password = request.form.get("password", "")
    users = users_with_password(email, password)
    if not users:
        return render_template("console/login.html", email=email, error="Wrong e-mail or password."), 401
    chosen = [user for user in users if str(user.account_id) == request.form.get("account", "")]
    if len(users) > 1 and not chosen:
        accounts = [(user.account_id, user.account.name) for user in users]
        return render_template("console/login.html", email=email, error=None, accounts=accounts)
    user = (chosen or users)[0]
    session.clear()
    csrf_token()
    if user.totp_secret:  # the password was right; the second factor comes next (bot/console/security.py)
        session["pending"] = {"uid": user.id, "stamp": stamp(user), "next": request.args.get("next"), "tries": 0}
        return redirect(url_for("console.login_code"))
    return signed_in(user, request.args.get("next"))


def signed_in(user: User, target: str | None) -> Response:
    """Start the user's session (the CSRF token stays) and go where the login was headed."""
    session.pop("pending", None)
    session["uid"], session["stamp"] = user.id, stamp(user)
    return redirect(safe_next(target))


@bp.post("/logout")
def logout() -> Response:
    session.clear()
    return redirect(url_for("console.login"))


@bp.errorhandler(403)
@bp.errorhandler(404)
@bp.errorhandler(400)
def error_page(exc: Any) -> tuple[str, int]:
    return render_template("console/error.html", code=exc.code, message=exc.description), exc.code
