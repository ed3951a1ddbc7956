"""`/console/keywords`, `/console/contacts`, `/console/blocklist`, `/console/flows`: read by every role;
contacts and the block list changed by `user`, keywords by `admin` (the same rules as the API)."""

from __future__ import annotations

from flask import Response, abort, flash, g, redirect, render_template, request, url_for
from peewee import JOIN, fn

from bot import blocklist, consent, flows, keyword_rules, phones, spreadsheet
from bot.api.contacts import CSV_COLUMNS, contact_rows
from bot.api.serialize import contacts as contacts_json
from bot.consent import Evidence
from bot.console import bp, page_number
from bot.console.auth import current_user, login_required
from bot.contacts import add_to_group, group_named, save_contact
from bot.keyword_rules import KeywordError
from models import BlockEntry, Contact, Conversation, Group, GroupMember, Keyword, VirtualNumber, db

PAGE = 50
# Only the phone lifts its own STOP (by texting START): such entries cannot be removed here.
CONSENT_EVENTS_SHOWN = 200  # the console shows the latest; GET /api/v1/consent pages through all


def own_numbers() -> list[VirtualNumber]:
    return list(VirtualNumber.select().where(VirtualNumber.account == g.account.id).order_by(VirtualNumber.number))


def own_keyword(keyword_id: int) -> Keyword:
    keyword = (
        Keyword.select()
        .join(VirtualNumber)
        .where((Keyword.id == keyword_id) & (VirtualNumber.account == g.account.id))
        .first()
    )
    if keyword is None:
        abort(404, f"No keyword {keyword_id}.")
    return keyword


def e164(raw: str) -> str | None:
    try:
        return phones.to_e164(raw, g.account.default_region)
    except phones.PhoneError as exc:
        flash(str(exc), "error")
        return None


@bp.get("/keywords")
@login_required()
def keywords() -> str:
    numbers = own_numbers()
    rows = (
        Keyword.select(Keyword, VirtualNumber)
        .join(VirtualNumber)
        .where(VirtualNumber.account == g.account.id)
        .order_by(VirtualNumber.number, Keyword.word)
    )
    return render_template("console/keywords.html", keywords=list(rows), numbers=numbers)


@bp.post("/keywords")
@login_required("admin")
def add_keyword() -> Response:
    form = request.form
    number = VirtualNumber.get_or_none(
        (VirtualNumber.number == form.get("number", "")) & (VirtualNumber.account == g.account.id)
    )
    if number is None:
        abort(404, "No such number.")
    data = {
        "word": form.get("word", ""),
        "aliases": [a.strip() for a in form.get("aliases", "").split(",") if a.strip()],
        "action": form.get("action", "reply"),
        "reply": form.get("reply", ""),
        "group": form.get("group", ""),
    }
    try:
        keyword = keyword_rules.save(number, data)
    except KeywordError as exc:
        flash(f"{exc.field}: {exc.message}", "error")
    else:
        flash(f"Keyword {keyword.word.upper()} added to {number.number}.", "ok")
    return redirect(url_for("console.keywords"))


@bp.post("/keywords/<int:keyword_id>/delete")
@login_required("admin")
def delete_keyword(keyword_id: int) -> Response:
    keyword = own_keyword(keyword_id)
    keyword_rules.remove(keyword)
    flash(f"Keyword {keyword.word.upper()} deleted.", "ok")
    return redirect(url_for("console.keywords"))


@bp.get("/contacts")
@login_required()
def contacts() -> str:
    query = Contact.select().where(Contact.account == g.account.id)
    if q := request.args.get("q", "").strip():
        like = f"%{q}%"
        query = query.where(Contact.phone.contains(q) | Contact.first_name**like | Contact.last_name**like)
    group_id = request.args.get("group", "")
    if group_id.isdigit():
        query = query.where(
            Contact.id.in_(GroupMember.select(GroupMember.contact).where(GroupMember.group == int(group_id)))
        )
    page = page_number()
    total = query.count()
    rows = contacts_json(list(query.order_by(Contact.id.desc()).paginate(page, PAGE)))
    size = fn.COUNT(GroupMember.id)
    groups = (
        Group.select(Group, size.alias("size"))
        .join(GroupMember, on=(GroupMember.group == Group.id), join_type=JOIN.LEFT_OUTER)
        .where(Group.account == g.account.id)
        .group_by(Group.id)
        .order_by(Group.name_key)
    )
    return render_template(
        "console/contacts.html",
        contacts=rows,
        groups=list(groups),
        total=total,
        page=page,
        pages=max((total + PAGE - 1) // PAGE, 1),
        q=q,
        group_id=group_id,
    )


@bp.post("/contacts")
@login_required("user")
def add_contact() -> Response:
    phone = e164(request.form.get("phone", ""))
    if phone is not None:
        with db.atomic():
            contact = save_contact(
                g.account, phone, request.form.get("first_name", "")[:100], request.form.get("last_name", "")[:100]
            )
            if name := request.form.get("group", "").strip()[:100]:
                add_to_group(contact, group_named(g.account, name))
        flash(f"Saved {phone}.", "ok")
    return redirect(url_for("console.contacts"))


@bp.post("/contacts/<int:contact_id>/delete")
@login_required("user")
def delete_contact(contact_id: int) -> Response:
    deleted = Contact.delete().where((Contact.id == contact_id) & (Contact.account == g.account.id)).execute()
    if not deleted:
        abort(404, f"No contact {contact_id}.")
    flash("Contact deleted.", "ok")
    return redirect(url_for("console.contacts"))


@bp.get("/contacts/export")
@login_required()
def export_contacts() -> Response:
    """The same CSV as `GET /api/v1/contacts/export` (phone, first_name, last_name, groups)."""
    everyone = Contact.select().where(Contact.account == g.account.id).order_by(Contact.id)
    return spreadsheet.attachment("contacts.csv", CSV_COLUMNS, contact_rows(everyone))


def by_user() -> Evidence:
    """The consent ledger's proof of a console change: the signed-in user."""
    return Evidence(actor=f"user:{current_user().email}")


@bp.get("/blocklist")
@login_required()
def blocked() -> str:
    rows = BlockEntry.select().where(BlockEntry.account == g.account.id).order_by(BlockEntry.created_at.desc())
    return render_template("console/blocklist.html", entries=list(rows), phone_owned=consent.PHONE_SOURCES)


@bp.get("/consent/<phone>")
@login_required()
def consent_history(phone: str) -> str:
    """A phone's opt-outs and opt-ins with their evidence (the SMS text, the link, the user or key)."""
    try:
        found = phones.to_e164(phone, g.account.default_region)
    except phones.PhoneError:
        abort(404, f"{phone} is not a phone number.")
    events = list(consent.history(g.account.id, found).limit(CONSENT_EVENTS_SHOWN))
    entries = BlockEntry.select().where((BlockEntry.account == g.account.id) & (BlockEntry.phone == found))
    return render_template("console/consent.html", phone=found, events=events, entries=list(entries))


@bp.post("/blocklist")
@login_required("user")
def block_phone() -> Response:
    phone = e164(request.form.get("phone", ""))
    if phone is not None:
        added = blocklist.block(g.account, phone, "manual", evidence=by_user())
        flash(f"{phone} {'blocked' if added else 'was blocked already'}.", "ok")
    return redirect(url_for("console.blocked"))


@bp.post("/blocklist/<int:entry_id>/delete")
@login_required("user")
def unblock_phone(entry_id: int) -> Response:
    entry = BlockEntry.get_or_none((BlockEntry.id == entry_id) & (BlockEntry.account == g.account.id))
    if entry is None:
        abort(404, "No such entry.")
    if consent.lifted_only_by_phone(entry):
        flash(f"{entry.phone} opted out itself; only the phone can opt in again (by texting START).", "error")
        return redirect(url_for("console.blocked"))
    blocklist.unblock_topic(g.account, entry.phone, entry.topic, "manual", by_user())
    flash(f"{entry.phone} unblocked{f' for {entry.topic}' if entry.topic else ''}.", "ok")
    return redirect(url_for("console.blocked"))


@bp.get("/flows")
@login_required()
def flow_list() -> str:
    count = fn.COUNT(Conversation.id)
    rows = (
        Keyword.select(Keyword, VirtualNumber, count.alias("responses"))
        .join(VirtualNumber)
        .switch(Keyword)
        .join(Conversation, on=(Conversation.keyword == Keyword.id), join_type=JOIN.LEFT_OUTER)
        .where((VirtualNumber.account == g.account.id) & (Keyword.action == "flow"))
        .group_by(Keyword.id, VirtualNumber.id)
        .order_by(VirtualNumber.number, Keyword.word)
    )
    return render_template("console/flows.html", flows=list(rows))


@bp.get("/flows/<int:keyword_id>")
@login_required()
def flow_results(keyword_id: int) -> str:
    keyword = own_keyword(keyword_id)
    if keyword.action != "flow":
        abort(404, f"{keyword.word.upper()} is not a flow.")
    rows = flows.results(keyword)
    columns = list(dict.fromkeys(name for row in rows for name in row["answers"]))
    return render_template("console/flow_results.html", keyword=keyword, rows=rows, columns=columns)
