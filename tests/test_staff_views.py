"""What staff see of a ticket that came in by mail: reference numbers and the closed ticket a
new one follows from, in `tickets list`, `tickets show`, `export` and the staff notification;
through the command line and the mail the file transport writes."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from mailgate import cli
from mailgate.config import load
from mailgate.flows import reminders
from mailgate.outbound import outbox
from mailgate.service.app import build_context, build_transport
from tests.helpers import Clock, parsed
from tests.mails import make_mail
from tests.test_cli import Result, mailgate

Run = Callable[..., Result]


def desk_toml(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "desk.toml"
    path.write_text(
        f'[database]\nurl = "{db_url}"\n'
        f'[paths]\ndata_dir = "{tmp_path}/data"\n'
        "[tickets]\n"
        'timezone = "Europe/Berlin"\n'
        "reopen_days = 1\n"
        "reference_patterns = ['\\b(ORDER-\\d+)\\b']\n"
        '[staff]\ndefault_agent = "anna@example.com"\n'
        '[security]\nagent_verification = "none"\n'
        '[smtp]\naddresses = ["support@example.com"]\n'
        f'[outbound]\ntransport = "file"\ndirectory = "{tmp_path}/sent"\n'
        'from = "Support <support@example.com>"\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def run(tmp_path: Path, db_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Run:
    """`mailgate …` on a desk in Berlin with two agents, reading time from the test's clock."""
    path = desk_toml(tmp_path, db_url)
    real = cli.build_context
    monkeypatch.setattr(
        cli,
        "build_context",
        lambda cfg, **kw: dataclasses.replace(real(cfg, **kw), clock=clock),
    )

    def command(*args: str) -> Result:
        result = mailgate(*args, config=path)
        assert result.returncode == 0, result.stderr
        return result

    command("agents", "add", "anna@example.com", "--name", "Anna Berg")
    command("agents", "add", "bert@example.com", "--name", "Bert Kühn", "--language", "de")
    return command


def ingest(run: Run, tmp_path: Path, raw: bytes) -> str:
    path = tmp_path / "in.eml"
    path.write_bytes(raw)
    return run("ingest", str(path)).stdout.split(": ", 1)[1].strip()


def listed(run: Run, *args: str) -> list[dict[str, Any]]:
    return json.loads(run("tickets", "list", "--format", "json", *args).stdout)


def sent_to(tmp_path: Path, address: str) -> list[EmailMessage]:
    found = [parsed(p.read_bytes()) for p in sorted((tmp_path / "sent").glob("*.eml"))]
    return [m for m in found if address in str(m["To"])]  # type: ignore[misc]


ORDER_MAIL = make_mail(
    subject="Lieferung beschädigt",
    body="Guten Tag,\n\nmeine Bestellung ORDER-4711 kam beschädigt an, ORDER-815 auch.\n",
)


def test_references_are_listed_shown_and_found(run: Run, tmp_path: Path) -> None:
    assert ingest(run, tmp_path, ORDER_MAIL) == "ticket CID-1000"
    ingest(run, tmp_path, make_mail(subject="Other matter", body="No order number here."))

    rows = listed(run)
    assert [r["references"] for r in rows] == [["ORDER-4711", "ORDER-815"], []]
    table = list(csv.DictReader(io.StringIO(run("tickets", "list", "--format", "csv").stdout)))
    assert [r["references"] for r in table] == ["ORDER-4711; ORDER-815", ""]
    shown = json.loads(run("tickets", "show", "CID-1000", "--format", "json").stdout)
    assert shown["references"] == ["ORDER-4711", "ORDER-815"]
    assert "ORDER-4711; ORDER-815" in run("tickets", "show", "CID-1000").stdout

    # A reference number finds its ticket, whole or in part, in any case.
    for text in ("ORDER-4711", "order-4711", "4711", "815"):
        assert [r["cid"] for r in listed(run, "--text", text)] == ["CID-1000"], text
    assert [r["cid"] for r in listed(run, "--text", "matter")] == ["CID-1001"]
    assert listed(run, "--text", "ORDER-9999") == []


def test_references_in_exports(run: Run, tmp_path: Path) -> None:
    ingest(run, tmp_path, ORDER_MAIL)
    run("export", "--output", str(tmp_path / "out.csv"))
    [row] = list(csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text("utf-8"))))
    assert row["references"] == "ORDER-4711; ORDER-815"
    run("export", "--output", str(tmp_path / "out.xlsx"))
    rows = list(openpyxl.load_workbook(tmp_path / "out.xlsx")["tickets"].values)
    assert dict(zip(rows[0], rows[1], strict=True))["References"] == "ORDER-4711; ORDER-815"


def test_staff_notification_names_the_references(run: Run, tmp_path: Path) -> None:
    ingest(run, tmp_path, ORDER_MAIL)
    [note] = sent_to(tmp_path, "anna@example.com")
    text = note.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = note.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "References:    ORDER-4711, ORDER-815" in text
    assert "ORDER-4711, ORDER-815" in html
    # A ticket without any shows no empty line for them.
    ingest(run, tmp_path, make_mail(subject="Other matter", body="No order number here."))
    other = sent_to(tmp_path, "anna@example.com")[-1]
    assert "References" not in other.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_german_staff_notification_names_the_references(run: Run, tmp_path: Path) -> None:
    run("customers", "import", str(_crm(tmp_path)))
    ingest(run, tmp_path, ORDER_MAIL)
    [note] = sent_to(tmp_path, "bert@example.com")
    text = note.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Referenzen:      ORDER-4711, ORDER-815" in text
    assert "ORDER-4711, ORDER-815" in note.get_body(("html",)).get_content()  # type: ignore[union-attr]


def _crm(tmp_path: Path) -> Path:
    """Acme's tickets go to Bert, who reads German."""
    path = tmp_path / "crm.csv"
    path.write_text(
        "organisation;contact name;email;domain;responsible agent;language\n"
        "Acme;Alice Kunde;alice@acme.example;;bert@example.com;de\n",
        encoding="utf-8",
    )
    return path


def test_a_follow_up_of_a_closed_ticket_shows_the_link(
    run: Run, tmp_path: Path, clock: Clock
) -> None:
    ingest(run, tmp_path, make_mail(subject="Drucker defekt"))
    close = make_mail(
        subject="Re: [CID-1000] Drucker defekt", body="#close\n\nErledigt.",
        sender="anna@example.com",
    )  # fmt: skip
    ingest(run, tmp_path, close)
    clock.advance(days=3)
    again = make_mail(subject="AW: [CID-1000] Drucker defekt", body="Schon wieder kaputt.")
    assert ingest(run, tmp_path, again) == "ticket CID-1001"

    rows = listed(run)
    assert [(r["cid"], r["linked_ticket"]) for r in rows] == [
        ("CID-1000", None),
        ("CID-1001", "CID-1000"),
    ]
    table = list(csv.DictReader(io.StringIO(run("tickets", "list", "--format", "csv").stdout)))
    assert [r["linked_ticket"] for r in table] == ["", "CID-1000"]
    shown = json.loads(run("tickets", "show", "CID-1001", "--format", "json").stdout)
    assert shown["linked_ticket"] == "CID-1000"
    assert "follows:        CID-1000" in run("tickets", "show", "CID-1001").stdout
    old = json.loads(run("tickets", "show", "CID-1000", "--format", "json").stdout)
    assert (old["linked_ticket"], old["followed_by"]) == (None, ["CID-1001"])
    assert "followed by:    CID-1001" in run("tickets", "show", "CID-1000").stdout


def test_category_and_text_ignore_case_beyond_ascii(run: Run, tmp_path: Path) -> None:
    ingest(run, tmp_path, make_mail(subject="Drücker streikt"))
    ingest(run, tmp_path, make_mail(subject="Anderes"))
    categorise = make_mail(
        subject="Re: [CID-1000] Drücker streikt", body="#category Büro\n\nSehe ich mir an.",
        sender="anna@example.com",
    )  # fmt: skip
    ingest(run, tmp_path, categorise)
    assert [r["cid"] for r in listed(run, "--category", "BÜRO")] == ["CID-1000"]
    assert [r["cid"] for r in listed(run, "--category", "büro")] == ["CID-1000"]
    assert [r["cid"] for r in listed(run, "--text", "DRÜCKER")] == ["CID-1000"]


def test_show_table_prints_fields_agents_by_name_time_hold_and_events(
    run: Run, tmp_path: Path, clock: Clock
) -> None:
    ingest(run, tmp_path, ORDER_MAIL)  # 09:00 UTC: 10:00 in Berlin
    clock.advance(minutes=30)
    work = make_mail(
        subject="Re: [CID-1000] Lieferung beschädigt",
        body="#type bug #category Versand #cc bert@example.com\n#time 1h30 billable\n"
        "#time 15m free\n#hold 2026-12-01\n\nWir warten auf den Spediteur.",
        sender="Anna Berg <anna@example.com>",
    )
    ingest(run, tmp_path, work)

    shown = run("tickets", "show", "CID-1000").stdout
    lines = [line.rstrip() for line in shown.splitlines()]
    assert "⚑ B  hold  $ billable  (times in Europe/Berlin)" in lines
    for line in (
        "type:           bug",
        "category:       Versand",
        "customer:       alice@acme.example",
        "assignee:       Anna Berg <anna@example.com>",
        "further agents: Bert Kühn <bert@example.com>",
        "time booked:    1:30 billable, 0:15 free",
        "on hold until:  2026-12-01",
        "references:     ORDER-4711; ORDER-815",
        "created:        2026-11-02 10:00",
        "last action:    staff 2026-11-02 10:30",
        "events",
        "2026-11-02 10:00  alice@acme.example  created  from alice@acme.example",
        "2026-11-02 10:30  Anna Berg <anna@example.com>  hold  until 2026-12-01",
    ):
        assert line in lines, line
    events = [line.split("  ")[2] for line in lines if line.startswith("2026-11-02 10:30  ")]
    assert events == ["article", "type", "category", "agent", "time", "time", "status", "hold"]
    assert "── staff Anna Berg <anna@example.com> 2026-11-02 10:00" in lines
    json_shown = json.loads(run("tickets", "show", "CID-1000", "--format", "json").stdout)
    assert json_shown["created_at"] == "2026-11-02T09:00:00+00:00"  # JSON stays UTC ISO
    assert json_shown["hold_until"] == "2026-11-30T23:00:00+00:00"
    assert json_shown["time"] == {"billable_minutes": 90, "free_minutes": 15}
    assert json_shown["further_agents"] == [{"email": "bert@example.com", "name": "Bert Kühn"}]


def test_list_table_shows_desk_time_and_subjects_as_written(run: Run, tmp_path: Path) -> None:
    ingest(run, tmp_path, make_mail(subject="[bold red]Dringend[/bold red] Drucker"))
    table = run("tickets", "list").stdout
    assert "last action (Europe/Berlin)" in table
    assert "customer 2026-11-02 10:00" in table
    assert "[bold red]Dringend[/bold red] Drucker" in table


def test_quarantine_table_in_desk_time(run: Run, tmp_path: Path) -> None:
    raw = b"To: support@example.com\r\nSubject: [red]kein Absender[/red]\r\n\r\nhallo\r\n"
    assert ingest(run, tmp_path, raw).startswith("quarantined")
    table = run("quarantine", "list").stdout
    assert "received (Europe/Berlin)" in table and "2026-11-02 10:00" in table
    assert "[red]kein Absender[/red]" in table
    shown = run("quarantine", "show", "1").stdout
    assert "received_at: 2026-11-02 10:00 (Europe/Berlin)" in shown
    assert "Subject: [red]kein Absender[/red]" in shown


def test_list_workbook_in_the_customers_language_and_desk_time(
    run: Run, tmp_path: Path, clock: Clock
) -> None:
    german = {"Content-Language": "de"}
    ingest(run, tmp_path, make_mail(subject="Drucker", headers=german))  # 10:00 in Berlin
    clock.advance(minutes=30)
    work = make_mail(
        subject="Re: [CID-1000] Drucker", body="#status working\n\nIch sehe nach.",
        sender="anna@example.com",
    )  # fmt: skip
    ingest(run, tmp_path, work)
    ingest(run, tmp_path, make_mail(subject="Meine Tickets", headers=german))

    [answer] = [m for m in sent_to(tmp_path, "alice@acme.example") if "Offene" in m["Subject"]]
    text = answer.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "in Bearbeitung" in text and "02.11.2026 10:30 Support" in text
    [sheet] = [p for p in answer.iter_attachments() if p.get_filename().endswith(".xlsx")]
    rows = list(openpyxl.load_workbook(io.BytesIO(sheet.get_content()))["Tickets"].values)
    assert rows[0] == (
        "Ticket", "Betreff", "Status", "Priorität", "Letzte Aktion von",
        "Letzte Aktion (Europe/Berlin)",
    )  # fmt: skip
    # The same words and the same wall-clock time as the mail's table.
    assert rows[1] == (
        "CID-1000", "Drucker", "in Bearbeitung", "B", "Support", datetime(2026, 11, 2, 10, 30)
    )  # fmt: skip


def test_time_report_table_prints_subjects_as_written(run: Run, tmp_path: Path) -> None:
    ingest(run, tmp_path, make_mail(subject="[bold red]Drucker[/bold red] [link=x]klick[/link]"))
    book = make_mail(
        subject="Re: [CID-1000] Drucker", body="#time 1h billable\n\nErledigt.",
        sender="anna@example.com",
    )  # fmt: skip
    ingest(run, tmp_path, book)
    table = run("report", "time").stdout  # the clock's month: November 2026
    assert "acme.example: time in 2026-11" in table
    assert "[bold red]Drucker[/bold red] [link=x]klick[/link]" in table


def test_hold_reminder_to_staff_names_the_references(
    run: Run, tmp_path: Path, clock: Clock
) -> None:
    ingest(run, tmp_path, ORDER_MAIL)
    hold = make_mail(
        subject="Re: [CID-1000] Lieferung", body="#hold 2026-11-04\n\nWarten.",
        sender="anna@example.com",
    )  # fmt: skip
    ingest(run, tmp_path, hold)
    clock.now = datetime(2026, 11, 4, 8, 0, tzinfo=UTC)
    ctx = dataclasses.replace(build_context(load(str(tmp_path / "desk.toml"))), clock=clock)
    try:
        assert reminders.run_reminders(ctx) == 1
        asyncio.run(outbox.deliver_due(ctx, build_transport(ctx.config)))
    finally:
        ctx.store.dispose()
    [reminder] = [
        m for m in sent_to(tmp_path, "anna@example.com") if "Resubmission" in m["Subject"]
    ]
    text = reminder.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "References:    ORDER-4711, ORDER-815" in text
