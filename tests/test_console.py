"""The console over Flask's test client: login, CSRF, roles, account isolation, and what each page shows."""

from __future__ import annotations

from bot.pipeline import statuses
from models import Account, InboundMessage, MessageEvent, OutboundMessage
from tests.console_helpers import NUMBER, PHONE, csrf_of, log_in, make_user, setup_account


def text_in(client, body: str, message_id: str, phone: str = PHONE, number: str = NUMBER) -> None:
    payload = {"id": message_id, "from": phone, "to": number, "text": body}
    assert client.post("/webhooks/sim/inbound", json=payload).status_code == 200


def test_pages_need_a_login_and_send_back_to_the_page_after_it(client):
    account = setup_account()
    make_user(account, "ann@acme.se")
    answer = client.get("/console/inbox")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/console/login?next=/console/inbox")
    token = csrf_of(client.get("/console/login").get_data(as_text=True))
    form = {"email": "Ann@Acme.se", "password": "Console-pass-1", "csrf_token": token}
    logged_in = client.post("/console/login?next=/console/inbox", data=form)
    assert logged_in.headers["Location"] == "/console/inbox"
    assert "Inbox" in client.get("/console/inbox").get_data(as_text=True)


def test_a_wrong_password_or_unknown_address_is_refused_alike(client):
    make_user(setup_account(), "ann@acme.se")
    token = csrf_of(client.get("/console/login").get_data(as_text=True))
    for email, password in [("ann@acme.se", "Wrong-pass-1"), ("nobody@acme.se", "Console-pass-1")]:
        answer = client.post("/console/login", data={"email": email, "password": password, "csrf_token": token})
        assert answer.status_code == 401
        assert "Wrong e-mail or password." in answer.get_data(as_text=True)
    assert client.get("/console/").status_code == 302


def test_an_address_with_users_in_two_accounts_chooses_the_account(client):
    acme = setup_account()
    other = Account.create(name="Other AB")
    make_user(acme, "ann@acme.se")
    make_user(other, "ann@acme.se")
    token = csrf_of(client.get("/console/login").get_data(as_text=True))
    form = {"email": "ann@acme.se", "password": "Console-pass-1", "csrf_token": token}
    asked = client.post("/console/login", data=form)
    assert asked.status_code == 200
    page = asked.get_data(as_text=True)
    assert "several accounts" in page and ">Acme</option>" in page and ">Other AB</option>" in page
    chosen = client.post("/console/login", data={**form, "account": str(other.id)})
    assert chosen.status_code == 302
    assert "Other AB" in client.get("/console/").get_data(as_text=True)


def test_an_inactive_user_cannot_log_in(client):
    user = make_user(setup_account(), "ann@acme.se")
    user.active = False
    user.save()
    token = csrf_of(client.get("/console/login").get_data(as_text=True))
    form = {"email": "ann@acme.se", "password": "Console-pass-1", "csrf_token": token}
    assert client.post("/console/login", data=form).status_code == 401


def test_login_never_redirects_to_another_site(client):
    make_user(setup_account(), "ann@acme.se")
    token = csrf_of(client.get("/console/login").get_data(as_text=True))
    form = {"email": "ann@acme.se", "password": "Console-pass-1", "csrf_token": token}
    answer = client.post("/console/login?next=//evil.example/x", data=form)
    assert answer.headers["Location"] == "/console/"


def test_every_post_needs_the_csrf_token(client):
    make_user(setup_account(), "ann@acme.se")
    token = log_in(client, "ann@acme.se")
    refused = client.post("/console/blocklist", data={"phone": PHONE})
    assert refused.status_code == 400
    assert "did not come from this site" in refused.get_data(as_text=True)
    assert client.post("/console/blocklist", data={"phone": PHONE, "csrf_token": "forged"}).status_code == 400
    assert client.post("/console/logout").status_code == 400
    assert client.post("/console/blocklist", data={"phone": PHONE, "csrf_token": token}).status_code == 302
    assert PHONE in client.get("/console/blocklist").get_data(as_text=True)


def test_login_form_itself_needs_the_token(client):
    make_user(setup_account(), "ann@acme.se")
    answer = client.post("/console/login", data={"email": "ann@acme.se", "password": "Console-pass-1"})
    assert answer.status_code == 400


def test_logout_ends_the_session(client):
    make_user(setup_account(), "ann@acme.se")
    token = log_in(client, "ann@acme.se")
    assert client.post("/console/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/console/").status_code == 302


def test_a_new_password_ends_other_sessions(client):
    user = make_user(setup_account(), "ann@acme.se")
    log_in(client, "ann@acme.se")
    from bot.passwords import hash_password

    user.password_hash = hash_password("Another-pass-2")
    user.save()
    assert client.get("/console/").status_code == 302


def test_a_viewer_reads_but_cannot_send_reply_or_change_anything(client):
    account = setup_account()
    make_user(account, "viv@acme.se", role="viewer")
    text_in(client, "HELP", "v1")
    token = log_in(client, "viv@acme.se")
    dashboard = client.get("/console/").get_data(as_text=True)
    assert 'href="/console/send"' not in dashboard
    thread = client.get(f"/console/inbox/{PHONE}").get_data(as_text=True)
    assert "HELP" in thread and "Write a reply" not in thread
    assert client.get("/console/send").status_code == 403
    assert client.post(f"/console/inbox/{PHONE}", data={"csrf_token": token, "text": "hi"}).status_code == 403
    assert client.post("/console/blocklist", data={"csrf_token": token, "phone": PHONE}).status_code == 403
    assert client.post("/console/contacts", data={"csrf_token": token, "phone": PHONE}).status_code == 403
    assert OutboundMessage.select().count() == 1  # only the HELP answer


def test_only_an_admin_adds_keywords(client):
    account = setup_account()
    make_user(account, "usr@acme.se", role="user")
    make_user(account, "adm@acme.se", role="admin")
    form = {"number": NUMBER, "word": "JOIN", "action": "reply", "reply": "Welcome {first_name}!"}
    token = log_in(client, "usr@acme.se")
    assert "Add a keyword" not in client.get("/console/keywords").get_data(as_text=True)
    assert client.post("/console/keywords", data={**form, "csrf_token": token}).status_code == 403
    client.post("/console/logout", data={"csrf_token": token})
    token = log_in(client, "adm@acme.se")
    assert client.post("/console/keywords", data={**form, "csrf_token": token}).status_code == 302
    page = client.get("/console/keywords").get_data(as_text=True)
    assert "Keyword JOIN added to +46700000001." in page and "Welcome {first_name}!" in page
    refused = client.post("/console/keywords", data={**form, "word": "STOP", "csrf_token": token})
    assert refused.status_code == 302
    assert "word:" in client.get("/console/keywords").get_data(as_text=True)


def test_another_accounts_message_thread_and_contacts_are_not_found(client):
    mine = setup_account("Mine")
    theirs = setup_account("Theirs", number="+46700000002", carrier=mine.numbers[0].carrier)
    make_user(mine, "ann@mine.se")
    text_in(client, "HELP", "t1", number="+46700000002")
    their_reply = OutboundMessage.get(OutboundMessage.account == theirs)
    token = log_in(client, "ann@mine.se")
    assert client.get(f"/console/messages/{their_reply.id}").status_code == 404
    assert "Not found" in client.get(f"/console/messages/{their_reply.id}").get_data(as_text=True)
    assert client.get(f"/console/inbox/{PHONE}").status_code == 404
    assert PHONE not in client.get("/console/inbox").get_data(as_text=True)
    from models import Contact

    theirs_contact = Contact.create(account=theirs, phone="+46739999999", first_name="Secret")
    assert "Secret" not in client.get("/console/contacts").get_data(as_text=True)
    assert client.post(f"/console/contacts/{theirs_contact.id}/delete", data={"csrf_token": token}).status_code == 404
    assert Contact.get_by_id(theirs_contact.id).first_name == "Secret"


def test_inbox_marks_unread_until_the_thread_is_opened(client):
    account = setup_account()
    make_user(account, "ann@acme.se")
    make_user(account, "bob@acme.se")
    text_in(client, "hello there", "u1")
    log_in(client, "ann@acme.se")
    inbox = client.get("/console/inbox").get_data(as_text=True)
    assert 'class="unread"' in inbox and 'title="1 unread"' in inbox
    client.get(f"/console/inbox/{PHONE}")
    assert 'class="unread"' not in client.get("/console/inbox").get_data(as_text=True)
    text_in(client, "one more", "u2")
    assert 'title="1 unread"' in client.get("/console/inbox").get_data(as_text=True)
    other = client.application.test_client()
    log_in(other, "bob@acme.se")
    assert 'title="2 unread"' in other.get("/console/inbox").get_data(as_text=True)  # read markers are per user


def test_a_reply_goes_through_the_pipeline_and_shows_its_status(client):
    account = setup_account()
    make_user(account, "ann@acme.se")
    text_in(client, "Do you open on Sunday?", "r1")
    token = log_in(client, "ann@acme.se")
    answer = client.post(
        f"/console/inbox/{PHONE}", data={"csrf_token": token, "sender": NUMBER, "text": "Yes, 10 to 16."}
    )
    assert answer.status_code == 302
    reply = OutboundMessage.get(OutboundMessage.body == "Yes, 10 to 16.")
    assert (reply.recipient, reply.sender, reply.status) == (PHONE, NUMBER, statuses.Status.QUEUED)
    assert account.ledger.count() == 1
    items = client.get(f"/console/inbox/{PHONE}/items").get_data(as_text=True)
    assert "Do you open on Sunday?" in items
    assert "Yes, 10 to 16." in items and "102 Queued" in items
    refused = client.post(f"/console/inbox/{PHONE}", data={"csrf_token": token, "sender": "+46700000009", "text": "x"})
    assert refused.status_code == 400


def test_timeline_shows_every_event_with_its_explanation(client):
    account = setup_account(balance=0)
    make_user(account, "ann@acme.se", role="viewer")
    text_in(client, "HELP", "e1")
    message = OutboundMessage.get()
    assert message.status == statuses.Status.INSUFFICIENT_FUNDS
    log_in(client, "ann@acme.se")
    page = client.get(f"/console/messages/{message.id}").get_data(as_text=True)
    for event in message.events.order_by(MessageEvent.id):
        assert f'<span class="code">{event.code}</span> <strong>{statuses.name(event.code)}</strong>' in page
    assert "price 35, balance 0" in page  # the event's detail
    assert statuses.explain(402) in page
    assert "Final status: InsufficientFunds." in page


def test_every_status_code_has_a_one_line_explanation():
    for code in statuses.Status:
        text = statuses.explain(code)
        assert text and "\n" not in text and len(text) < 200


def test_send_to_several_phones_and_the_preview_endpoint(client):
    account = setup_account()
    make_user(account, "ann@acme.se")
    token = log_in(client, "ann@acme.se")
    preview = client.post(
        "/console/send/preview",
        data={"text": "Hej Åsa, 20 € rabatt", "to": "+46731234567, +46731234568", "mode": "phones"},
        headers={"X-CSRF-Token": token},
    ).get_json()
    assert preview["encoding"] == "GSM-7" and preview["segments"] == 1 and preview["recipients"] == 2
    assert (preview["price"], preview["balance_after"]) == (70, 10_000 - 70)
    form = {"csrf_token": token, "mode": "phones", "sender": "Acme", "to": "+46731234567\n+46731234568", "text": "Hi"}
    page = client.post("/console/send", data=form).get_data(as_text=True)
    assert "2 messages" in page and page.count("102 Queued") == 2
    single = client.post("/console/send", data={**form, "to": "+46731234569"})
    sent = OutboundMessage.get(OutboundMessage.recipient == "+46731234569")
    assert single.headers["Location"] == f"/console/messages/{sent.id}"


def test_dashboard_shows_balance_todays_groups_and_top_keywords(client):
    account = setup_account()
    make_user(account, "ann@acme.se", role="viewer")
    text_in(client, "HELP", "d1")
    text_in(client, "STOP", "d2")
    log_in(client, "ann@acme.se")
    page = client.get("/console/").get_data(as_text=True)
    assert "99.30" in page  # 10,000 - 2 x 35 (HELP answer, STOP confirmation), in major units
    assert '<svg class="chart"' in page and "Delivery rate per day, last 30 days" in page
    assert "1 phones joined the block list" in page
    assert InboundMessage.select().count() == 2


def test_dashboard_delivery_rate_counts_final_messages_only(client):
    account = setup_account()
    make_user(account, "ann@acme.se", role="viewer")
    for code in (201, 201, 501, 102):
        OutboundMessage.create(account=account, sender=NUMBER, recipient=PHONE, body="x", status=code)
    log_in(client, "ann@acme.se")
    page = client.get("/console/").get_data(as_text=True)
    assert "Overall: <strong>66.7 %</strong> of 3." in page
    assert ": 67% delivered</title>" in page  # today's bar


def test_api_docs_page_uses_the_vendored_redoc(client):
    page = client.get("/api/v1/docs").get_data(as_text=True)
    assert 'spec-url="/api/v1/openapi.json"' in page
    assert '<script src="/console/static/vendor/redoc/redoc.standalone.js">' in page
    assert "cdn" not in page
    bundle = client.get("/console/static/vendor/redoc/redoc.standalone.js")
    assert bundle.status_code == 200 and len(bundle.data) > 500_000
    bundle.close()


def test_list_pages_take_any_page_argument_without_failing(client):
    """A page number that is not one, or one far past the end, shows the first or an empty page."""
    account = setup_account()
    make_user(account, "ann@acme.se", role="admin")
    log_in(client, "ann@acme.se")
    text_in(client, "SAVE Ann Berg Friends", "in-1")
    for path in ("/console/contacts", "/console/deliveries", "/console/audit"):
        first = client.get(f"{path}?page=abc")
        assert first.status_code == 200, path
        far = client.get(f"{path}?page=99999999999999999999999")
        assert far.status_code == 200, (path, far.get_data(as_text=True)[:300])
    assert "Ann" in client.get("/console/contacts?page=-3").get_data(as_text=True)
    assert client.get("/console/contacts?page=²").status_code == 200  # a digit that is not a decimal one
