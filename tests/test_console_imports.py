"""The console's contacts page uploads a CSV to the import service and shows the import's progress."""

from __future__ import annotations

import io

from models import Contact, ContactImport
from tests.console_helpers import log_in, make_user, setup_account


def upload(client, token: str, data: bytes, **fields: str):
    form = {"csrf_token": token, "file": (io.BytesIO(data), "contacts.csv"), **fields}
    return client.post("/console/contacts/import", data=form, content_type="multipart/form-data")


def test_an_uploaded_csv_is_imported_and_its_progress_shown(app, client, run_worker):
    account = setup_account()
    make_user(account, "ann@example.com", "user")
    token = log_in(client, "ann@example.com")
    assert 'action="/console/contacts/import"' in client.get("/console/contacts").get_data(as_text=True)
    rows = b"phone,first_name,groups\n0731234567,Anna,vip\nnope,Bo,\n" + b"0701112233,Cy,vip\n" * 40_000  # > 64 KiB
    answer = upload(client, token, rows, skip_invalid="on")
    assert answer.status_code == 302
    job = ContactImport.get()
    assert answer.headers["Location"].endswith(f"/console/imports/{job.id}")
    assert 'http-equiv="refresh"' in client.get(answer.headers["Location"]).get_data(as_text=True)

    run_worker()
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "done" in page and "40002 of 40002 rows done" in page and "refresh" not in page
    assert "&#39;nope&#39; is not a phone number" in page
    assert Contact.select().count() == 2


def test_a_file_that_is_not_csv_text_is_refused_with_its_reason(client):
    account = setup_account()
    make_user(account, "ann@example.com", "user")
    token = log_in(client, "ann@example.com")
    answer = upload(client, token, b"\xff\xfe\x00p")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/console/contacts")
    assert "not UTF-8" in client.get("/console/contacts").get_data(as_text=True)
    assert ContactImport.select().count() == 0


def test_another_accounts_import_is_not_found(client, make_account):
    mine = setup_account()
    other = make_account(name="Other")
    job = ContactImport.create(account=other)
    make_user(mine, "ann@example.com", "viewer")
    log_in(client, "ann@example.com")
    assert client.get(f"/console/imports/{job.id}").status_code == 404
