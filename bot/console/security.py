"""Two-factor login in the console: the code page after the password, enrolment with a QR code, turning
it off (bot/two_factor.py). Five wrong codes end the half-finished login: the password is asked again."""

from __future__ import annotations

from typing import Any

import segno
from flask import abort, flash, g, redirect, render_template, request, session, url_for

from bot import totp, two_factor
from bot.console import bp
from bot.console.auth import current_user, login_required, signed_in, stamp
from models import User

MAX_TRIES = 5


@bp.route("/login/code", methods=["GET", "POST"])
def login_code() -> Any:
    pending = session.get("pending")
    user = User.get_or_none((User.id == pending["uid"]) & User.active) if pending else None
    if user is None or pending["stamp"] != stamp(user):
        session.pop("pending", None)
        return redirect(url_for("console.login"))
    if request.method == "GET":
        return render_template("console/login_code.html", error=None)
    if two_factor.check(user, request.form.get("code", "")):
        return signed_in(user, pending["next"])
    pending["tries"] += 1
    session["pending"] = pending
    if pending["tries"] >= MAX_TRIES:
        session.pop("pending")
        flash("Too many wrong codes. Log in again.", "error")
        return redirect(url_for("console.login"))
    return render_template("console/login_code.html", error="That code is not right (or was used already)."), 401


@bp.get("/security")
@login_required("viewer")
def security() -> str:
    user = current_user()
    context: dict[str, Any] = {"enrolled": bool(user.totp_secret), "required": g.account.require_two_factor}
    if not user.totp_secret:
        secret = session.setdefault("enrol_secret", totp.new_secret())
        uri = totp.provisioning_uri(secret, user.email)
        context.update(secret=secret, uri=uri, qr=segno.make(uri, error="m").svg_inline(scale=5))
    else:
        context["recovery_left"] = len(user.recovery_codes)
    return render_template("console/security.html", **context)


@bp.post("/security/enrol")
@login_required("viewer")
def security_enrol() -> Any:
    user = current_user()
    secret = session.get("enrol_secret")
    if user.totp_secret or not secret:
        return redirect(url_for("console.security"))
    codes = two_factor.enrol(user, secret, request.form.get("code", ""))
    if codes is None:
        flash("That code is not right: check the app's clock and try the next one.", "error")
        return redirect(url_for("console.security"))
    session.pop("enrol_secret")
    return render_template("console/recovery_codes.html", codes=codes)


@bp.post("/security/disable")
@login_required("viewer")
def security_disable() -> Any:
    user = current_user()
    if g.account.require_two_factor:
        abort(403, "Your account asks every user to log in with two factors.")
    if not two_factor.check(user, request.form.get("code", "")):
        flash("That code is not right.", "error")
        return redirect(url_for("console.security"))
    two_factor.disable(user)
    flash("Two-factor login is off.", "ok")
    return redirect(url_for("console.security"))
