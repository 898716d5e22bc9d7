"""The operator's commands on customers: domain claims, moves, what an import did."""

from __future__ import annotations

import json
from email.message import Message
from pathlib import Path

import pytest

from tests.helpers import parsed
from tests.mails import make_mail
from tests.test_cli import mailgate, write_config
from tests.test_privacy import sheet_cells, text_of

# --- the operator's claims and moves, by the command line -----------------------------------


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def ingest_file(tmp_path: Path, cfg: Path, name: str, **mail: str) -> str:
    path = tmp_path / f"{name}.eml"
    path.write_bytes(make_mail(**mail))
    result = mailgate("ingest", str(path), config=cfg)
    assert result.returncode == 0, result.stderr
    return result.stdout


def sent_to(tmp_path: Path, address: str) -> list[Message]:
    found = [parsed(p.read_bytes()) for p in sorted((tmp_path / "sent").glob("*.eml"))]
    return [m for m in found if address in str(m["To"])]


def test_colleagues_of_a_claimed_domain_see_each_others_tickets(cfg: Path, tmp_path: Path) -> None:
    claimed = mailgate("customers", "claim", "Acme GmbH", "acme.example", config=cfg)
    assert claimed.returncode == 0, claimed.stderr
    ingest_file(tmp_path, cfg, "a", sender="alice@acme.example", subject="Alice's printer")
    ingest_file(tmp_path, cfg, "b", sender="bob@acme.example", subject="Bob's scanner")
    ingest_file(tmp_path, cfg, "l", sender="bob@acme.example", subject="list")
    answer = sent_to(tmp_path, "bob@acme.example")[-1]
    assert "Alice's printer" in text_of(answer) and "Bob's scanner" in text_of(answer)
    listed = json.loads(mailgate("tickets", "list", "--format", "json", config=cfg).stdout)
    assert {t["customer"] for t in listed} == {"Acme GmbH"}


def test_a_claim_on_a_public_provider_is_refused_unless_forced(cfg: Path) -> None:
    refused = mailgate("customers", "claim", "Acme GmbH", "gmail.com", config=cfg)
    assert refused.returncode == 65
    assert "gmail.com is a public mail provider" in refused.stderr and "--force" in refused.stderr
    shown = json.loads(mailgate("customers", "list", "--format", "json", config=cfg).stdout)
    assert all("gmail.com" not in o["domains"] for o in shown)
    forced = mailgate("customers", "claim", "Acme GmbH", "gmail.com", "--force", config=cfg)
    assert forced.returncode == 0, forced.stderr
    unclaimed = mailgate("customers", "unclaim", "gmail.com", config=cfg)
    assert unclaimed.returncode == 0, unclaimed.stderr
    gone = mailgate("customers", "unclaim", "gmail.com", config=cfg)
    assert gone.returncode == 65 and "gmail.com is claimed by no organisation" in gone.stderr


def test_staff_move_a_contact_into_a_company(cfg: Path, tmp_path: Path) -> None:
    mailgate("customers", "claim", "Acme GmbH", "acme.example", config=cfg)
    ingest_file(tmp_path, cfg, "a", sender="alice@acme.example", subject="Alice's printer")
    ingest_file(tmp_path, cfg, "p", sender="Peter <peter@gmx.de>", subject="Peter's laptop")
    moved = mailgate("customers", "move", "peter@gmx.de", "Acme GmbH", config=cfg)
    assert moved.returncode == 0, moved.stderr
    ingest_file(tmp_path, cfg, "l", sender="peter@gmx.de", subject="list")
    answer = sent_to(tmp_path, "peter@gmx.de")[-1]
    assert "Alice's printer" in text_of(answer) and "Peter's laptop" in text_of(answer)
    shown = json.loads(
        mailgate("customers", "show", "acme gmbh", "--format", "json", config=cfg).stdout
    )
    assert shown["name"] == "Acme GmbH" and shown["kind"] == "company"
    assert [c["email"] for c in shown["contacts"]] == ["alice@acme.example", "peter@gmx.de"]
    assert shown["domains"] == ["acme.example"]


def test_customers_list_and_show(cfg: Path, tmp_path: Path) -> None:
    mailgate("agents", "add", "anna@example.com", "--name", "Anna", config=cfg)
    csv_file = tmp_path / "crm.csv"
    csv_file.write_text(
        "organisation,email,domain,responsible agent\n"
        "Acme GmbH,alice@acme.example,acme.example,anna@example.com\n",
        encoding="utf-8",
    )
    assert mailgate("customers", "import", str(csv_file), config=cfg).returncode == 0
    mailgate("customers", "contingent", "Acme GmbH", "+10h", config=cfg)
    ingest_file(tmp_path, cfg, "x", sender="[b]Mallory[/b] <m@evil.example>", subject="Hi")
    rows = json.loads(mailgate("customers", "list", "--format", "json", config=cfg).stdout)
    acme = next(r for r in rows if r["name"] == "Acme GmbH")
    assert acme == {
        "name": "Acme GmbH",
        "kind": "company",
        "domains": ["acme.example"],
        "contacts": 1,
        "responsible_agent": "anna@example.com",
        "hours_total": "10:00",
        "hours_used": "0:00",
        "hours_left": "10:00",
    }
    personal = next(r for r in rows if r["kind"] == "personal")
    assert personal["domains"] == [] and personal["contacts"] == 1
    assert personal["name"] == "m@evil.example"  # never a display name the sender chose
    shown = json.loads(
        mailgate("customers", "show", personal["name"], "--format", "json", config=cfg).stdout
    )
    (contact,) = shown["contacts"]
    assert contact == {
        "email": "m@evil.example",
        "name": "[b]Mallory[/b]",
        "language": "en",
        "failing": False,
        "opted_out": False,
        "open_tickets": 1,
    }
    table = mailgate("customers", "show", personal["name"], config=cfg)
    assert "[b]Mallory[/b]" in table.stdout  # mail-derived text printed as it is
    assert "Acme GmbH" in mailgate("customers", "list", config=cfg).stdout


# --- import -------------------------------------------------------------------------------------


def test_contacts_imported_without_a_company_are_strangers(cfg: Path, tmp_path: Path) -> None:
    csv_file = tmp_path / "shop.csv"
    csv_file.write_text(
        "email,contact name\nklara@gmx.de,Klara\nmax@gmx.de,Max\n", encoding="utf-8"
    )
    result = mailgate("customers", "import", str(csv_file), config=cfg)
    assert result.returncode == 0, result.stderr
    rows = json.loads(mailgate("customers", "list", "--format", "json", config=cfg).stdout)
    assert [r["kind"] for r in rows] == ["personal", "personal"]
    assert all(r["domains"] == [] and r["contacts"] == 1 for r in rows)
    ingest_file(tmp_path, cfg, "k", sender="klara@gmx.de", subject="Klaras Frage")
    ingest_file(tmp_path, cfg, "m", sender="max@gmx.de", subject="list")
    (answer,) = sent_to(tmp_path, "max@gmx.de")
    assert "Klaras Frage" not in text_of(answer) and sheet_cells(answer) == []


def test_an_import_row_claiming_a_public_provider_is_refused_unless_forced(
    cfg: Path, tmp_path: Path
) -> None:
    csv_file = tmp_path / "crm.csv"
    csv_file.write_text(
        "organisation,email,domain\nAcme GmbH,alice@acme.example,gmail.com\n", encoding="utf-8"
    )
    refused = mailgate("customers", "import", str(csv_file), config=cfg)
    assert refused.returncode == 65
    assert "line 2: gmail.com is a public mail provider" in refused.stderr
    ingest_file(tmp_path, cfg, "g", sender="someone@gmail.com", subject="Hello")
    listed = json.loads(mailgate("tickets", "list", "--format", "json", config=cfg).stdout)
    assert listed[0]["customer"] != "Acme GmbH"
    forced = mailgate("customers", "import", "--force", str(csv_file), config=cfg)
    assert forced.returncode == 0, forced.stderr
    rows = json.loads(mailgate("customers", "list", "--format", "json", config=cfg).stdout)
    assert next(r for r in rows if r["name"] == "Acme GmbH")["domains"] == ["gmail.com"]


def test_a_german_excel_csv_is_imported(cfg: Path, tmp_path: Path) -> None:
    csv_file = tmp_path / "kunden.csv"
    csv_file.write_bytes(
        "Firma;Ansprechpartner;E-Mail;Domäne;Sprache\r\n"
        "Müller & Söhne GmbH;Jürgen Weiß;juergen@mueller.example;mueller.example;de\r\n"
        "Müller & Söhne GmbH;Grete Groß;grete@mueller.example;;\r\n"
        "Bäckerei Kühn;;;baeckerei.example;\r\n"
        "Müller & Söhne GmbH;Jürgen Weiß;juergen@mueller.example;;\r\n"
        "Kaputt AG;Niemand;keine-adresse;;\r\n".encode("cp1252")
    )
    result = mailgate("customers", "import", str(csv_file), config=cfg)
    assert result.returncode == 65
    assert result.stdout.splitlines() == [
        "organisations: 2 created, 0 already there",
        "contacts: 2 created, 1 already there",
        "domains claimed: 2",
        "rows skipped: 1",
    ]
    assert "line 6: 'keine-adresse' is not an e-mail address" in result.stderr
    rows = json.loads(mailgate("customers", "list", "--format", "json", config=cfg).stdout)
    assert {r["name"]: r["domains"] for r in rows} == {
        "Bäckerei Kühn": ["baeckerei.example"],
        "Müller & Söhne GmbH": ["mueller.example"],
    }
    shown = json.loads(
        mailgate("customers", "show", "Müller & Söhne GmbH", "--format", "json", config=cfg).stdout
    )
    assert [(c["name"], c["language"]) for c in shown["contacts"]] == [
        ("Grete Groß", None),
        ("Jürgen Weiß", "de"),
    ]


def test_files_mailgate_writes_are_not_world_readable(tmp_path: Path) -> None:
    """Customer mail on disk is for the service's user and group only (umask 027)."""
    from tests.test_cli import mailgate_process

    config = write_config(tmp_path)
    mail = make_mail(attachments=(("invoice.pdf", "application/pdf", b"%PDF-1.4 secret"),))
    result = mailgate_process("ingest", "-", config=config, stdin=mail)
    assert result.returncode == 0, result.stderr
    written = [p for p in tmp_path.rglob("*") if p != config and p.name != "-"]
    assert {p.suffix for p in written} >= {".db", ".eml"}
    assert any("blobs" in p.parts and p.is_file() for p in written)
    exposed = [(str(p.relative_to(tmp_path)), oct(p.stat().st_mode)) for p in written]
    assert [(name, mode) for name, mode in exposed if int(mode, 8) & 0o007] == []


def test_an_import_puts_a_known_sender_in_their_company_with_their_tickets(
    cfg: Path, tmp_path: Path
) -> None:
    ingest_file(tmp_path, cfg, "a", sender="alice@acme.example", subject="Alice's printer")
    csv_file = tmp_path / "crm.csv"
    csv_file.write_text(
        "company,email\nAcme GmbH,alice@acme.example\nAcme GmbH,bob@acme.example\n",
        encoding="utf-8",
    )
    result = mailgate("customers", "import", str(csv_file), config=cfg)
    assert result.stdout.splitlines()[:2] == [
        "organisations: 1 created, 0 already there",
        "contacts: 1 created, 1 already there",
    ]
    ingest_file(tmp_path, cfg, "l", sender="bob@acme.example", subject="list")
    (answer,) = sent_to(tmp_path, "bob@acme.example")
    assert "Alice's printer" in text_of(answer)
    listed = json.loads(mailgate("tickets", "list", "--format", "json", config=cfg).stdout)
    assert listed[0]["customer"] == "Acme GmbH"


def test_a_public_domain_that_is_no_domain_is_a_configuration_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[customers]\npublic_domains = ["mailbox.org", "@web"]\n')
    result = mailgate("config", "check", config=config)
    assert result.returncode == 78
    assert "customers.public_domains[1]: '@web' is not a mail domain" in result.stderr
    assert str(config) in result.stderr
