"""`/console/contacts/import`: the contacts page's upload form, the same import service as the API
(bot/imports.py), and `/console/imports/<id>`: the import's progress, reloading itself until it ends."""

from __future__ import annotations

from flask import Response, abort, flash, g, redirect, render_template, request, url_for

from bot import imports
from bot.console import bp
from bot.console.auth import login_required
from models import ContactImport


@bp.post("/contacts/import")
@login_required("user")
def import_contacts() -> Response:
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash("Choose a CSV file to import.", "error")
        return redirect(url_for("console.contacts"))
    try:
        text, total = imports.read_csv(upload.read())
    except imports.CsvFileError as exc:
        flash(str(exc), "error")
        return redirect(url_for("console.contacts"))
    job = imports.start(g.account, text, total, skip_invalid=request.form.get("skip_invalid") == "on")
    return redirect(url_for("console.import_progress", import_id=job.id))


@bp.get("/imports/<int:import_id>")
@login_required()
def import_progress(import_id: int) -> str:
    job = ContactImport.get_or_none((ContactImport.id == import_id) & (ContactImport.account == g.account.id))
    if job is None:
        abort(404, f"No import {import_id}.")
    return render_template("console/import.html", job=job, running=job.state in imports.UNFINISHED)
