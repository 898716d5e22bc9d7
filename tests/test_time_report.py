"""`report time`: time by customer, month, ticket and agent, as table, json, csv and xlsx."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pytest
from sqlmodel import select

from mailgate import cli
from mailgate.desk.agents import add_agent
from mailgate.desk.customers import add_contingent
from mailgate.outbound.context import Context
from mailgate.reports.report import Month, ReportError
from mailgate.store.models import Agent, Organisation, Ticket, TimeEntry
from tests.conftest import Clock
from tests.helpers import claim_domain, ingest
from tests.mails import make_mail
from tests.test_contingent import VERIFIED, mailgate, write_config

BERLIN = '[tickets]\ntimezone = "Europe/Berlin"\n'
BOB, ALICE = "bob@example.com", "alice@example.com"


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def staff_mail(sender: str, number: int, subject: str, body: str) -> bytes:
    return make_mail(
        sender=sender, subject=f"Re: [CID-{number}] {subject}", body=body, headers=VERIFIED
    )


def add_time(
    ctx: Context, number: int, agent: str | None, minutes: int, billable: bool, when: datetime
) -> None:
    with ctx.store.session() as session:
        ticket = session.exec(select(Ticket).where(Ticket.number == number)).one()
        agent_id = None
        if agent is not None:
            agent_id = session.exec(select(Agent.id).where(Agent.email == agent)).one()
        session.add(
            TimeEntry(
                ticket_id=ticket.id or 0,
                agent_id=agent_id,
                minutes=minutes,
                billable=billable,
                created_at=when,
            )
        )


def top_up(ctx: Context, org_name: str, minutes: int, when: datetime) -> None:
    with ctx.store.session() as session:
        org = session.exec(select(Organisation).where(Organisation.name == org_name)).one()
        add_contingent(session, org, minutes, "", "cli", when)


@pytest.fixture
def booked(ctx: Context, clock: Clock) -> Context:
    """Two acme.example tickets and one of other.example, with time around November 2026.

    In Europe/Berlin (UTC+1 in November), 23:30 UTC on 31 October is already November and
    23:30 UTC on 30 November is already December."""
    berlin = dataclasses.replace(ctx.config.tickets, timezone="Europe/Berlin")
    ctx = dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, tickets=berlin))
    claim_domain(ctx, "acme.example", "acme.example")
    claim_domain(ctx, "other.example", "other.example")
    assert ingest(ctx, make_mail(subject="Printer broken")).cid == "CID-1000"
    assert ingest(ctx, make_mail(subject="VPN drops")).cid == "CID-1001"
    secret = make_mail(sender="Bob Other <bob@other.example>", subject='=HYPERLINK("http://x")')
    assert ingest(ctx, secret).cid == "CID-1002"
    with ctx.store.session() as session:
        add_agent(session, BOB, "Bob Builder", "en", ctx.clock())
        add_agent(session, ALICE, "Alice Smith", "en", ctx.clock())
    clock.now = at(2026, 11, 10, 10, 0)
    # Through the pipeline, as agents book time.
    bob = "#time 1h30 billable driver #status working\n\nReinstalled the driver.\n"
    assert ingest(ctx, staff_mail(BOB, 1000, "Printer broken", bob)).status == "done"
    alice = "#time 20m free\n\nChecked the toner.\n"
    assert ingest(ctx, staff_mail(ALICE, 1000, "Printer broken", alice)).status == "done"
    # Direct rows at the month's edges and in volume.
    add_time(ctx, 1000, None, 15, True, at(2026, 10, 31, 23, 30))  # Berlin: 1 Nov, 00:30
    add_time(ctx, 1000, BOB, 10, False, at(2026, 11, 30, 22, 59))  # Berlin: 30 Nov, 23:59
    add_time(ctx, 1000, BOB, 30, True, at(2026, 11, 30, 23, 30))  # Berlin: 1 Dec, 00:30
    add_time(ctx, 1000, BOB, 45, True, at(2026, 10, 31, 22, 59))  # Berlin: 31 Oct, 23:59
    for day in range(3, 15):
        add_time(ctx, 1001, ALICE, 5, True, at(2026, 11, day, 8, 0))
    add_time(ctx, 1002, BOB, 60, True, at(2026, 11, 5, 12, 0))
    top_up(ctx, "acme.example", 600, at(2026, 10, 1, 8, 0))
    top_up(ctx, "acme.example", -120, at(2026, 12, 5, 8, 0))  # after November: not in its report
    return ctx


def sums(billable: int, free: int) -> dict[str, int]:
    return {"billable_minutes": billable, "free_minutes": free, "minutes": billable + free}


ALICE_ROW = {"agent": ALICE, "agent_name": "Alice Smith"}
BOB_ROW = {"agent": BOB, "agent_name": "Bob Builder"}
UNKNOWN_ROW = {"agent": "(unknown)", "agent_name": ""}

ACME_NOVEMBER = {
    "organisation": "acme.example",
    "language": "en",  # what its contacts read: the language of a workbook sent to it
    "tickets": [
        {
            "cid": "CID-1000",
            "number": 1000,
            "subject": "Printer broken",
            "status": "working",
            "agents": [
                {**ALICE_ROW, **sums(0, 20)},
                {**BOB_ROW, **sums(90, 10)},
                {**UNKNOWN_ROW, **sums(15, 0)},
            ],
            "corrections": [],
            **sums(105, 30),
        },
        {
            "cid": "CID-1001",
            "number": 1001,
            "subject": "VPN drops",
            "status": "open",
            "agents": [{**ALICE_ROW, **sums(60, 0)}],
            "corrections": [],
            **sums(60, 0),
        },
    ],
    "agents": [
        {**ALICE_ROW, **sums(60, 20)},
        {**BOB_ROW, **sums(90, 10)},
        {**UNKNOWN_ROW, **sums(15, 0)},
    ],
    "totals": sums(165, 30),
    # Bought before the end of November: 10h (the December correction is later). Used: all
    # billable time before then, October's 45 minutes included.
    "contingent": {"total_minutes": 600, "used_minutes": 210, "left_minutes": 390},
}


def test_json_for_one_customer(booked: Context, tmp_path: Path) -> None:
    config = write_config(booked, tmp_path, BERLIN)
    args = ("report", "time", "--customer", "acme.example", "--month", "2026-11")
    result = mailgate(config, *args, "--format", "json")
    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(result.stdout) == {
        "month": "2026-11",
        "timezone": "Europe/Berlin",
        "customers": [ACME_NOVEMBER],
    }


def test_json_for_every_customer_with_time(booked: Context, tmp_path: Path) -> None:
    config = write_config(booked, tmp_path, BERLIN)
    result = mailgate(config, "report", "time", "--month", "2026-11", "--format", "json")
    data = json.loads(result.stdout)
    assert [c["organisation"] for c in data["customers"]] == ["acme.example", "other.example"]
    assert data["customers"][0] == ACME_NOVEMBER
    other = data["customers"][1]
    assert [(t["cid"], t["billable_minutes"]) for t in other["tickets"]] == [("CID-1002", 60)]
    # No contingent bought: overdrawn by the hour booked.
    assert other["contingent"] == {"total_minutes": 0, "used_minutes": 60, "left_minutes": -60}


def test_december_takes_the_late_evening_of_november_30(booked: Context, tmp_path: Path) -> None:
    config = write_config(booked, tmp_path, BERLIN)
    args = ("report", "time", "--customer", "acme.example", "--month", "2026-12")
    [block] = json.loads(mailgate(config, *args, "--format", "json").stdout)["customers"]
    assert [(t["cid"], t["agents"]) for t in block["tickets"]] == [
        ("CID-1000", [{**BOB_ROW, **sums(30, 0)}])
    ]
    assert block["contingent"] == {"total_minutes": 480, "used_minutes": 240, "left_minutes": 240}


def test_utc_calendar_moves_the_edges(booked: Context, tmp_path: Path) -> None:
    config = write_config(booked, tmp_path)  # no [tickets] timezone: UTC
    args = ("report", "time", "--customer", "acme.example", "--month", "2026-11")
    [block] = json.loads(mailgate(config, *args, "--format", "json").stdout)["customers"]
    # 23:30 UTC on 30 November counts; both entries of 31 October do not.
    assert block["totals"] == sums(180, 30)
    assert [a["agent"] for a in block["agents"]] == [ALICE, BOB]


def test_customer_without_time_gets_an_empty_block(booked: Context, tmp_path: Path) -> None:
    config = write_config(booked, tmp_path, BERLIN)
    args = ("report", "time", "--customer", "other.example", "--month", "2026-10")
    [block] = json.loads(mailgate(config, *args, "--format", "json").stdout)["customers"]
    assert block["tickets"] == [] and block["totals"] == sums(0, 0)
    every = mailgate(config, "report", "time", "--month", "2026-09", "--format", "json")
    assert json.loads(every.stdout)["customers"] == []
    assert mailgate(config, "report", "time", "--month", "2026-09").stdout == (
        "no time booked in 2026-09\n"
    )


def test_csv_rows(booked: Context, tmp_path: Path) -> None:
    config = write_config(booked, tmp_path, BERLIN)
    result = mailgate(config, "report", "time", "--month", "2026-11", "--format", "csv")
    assert result.stdout.splitlines() == [
        "organisation,month,ticket,subject,status,agent,billable_minutes,free_minutes,minutes,"
        "kind,note",
        "acme.example,2026-11,CID-1000,Printer broken,working,alice@example.com,0,20,20,booked,",
        "acme.example,2026-11,CID-1000,Printer broken,working,bob@example.com,90,10,100,booked,",
        "acme.example,2026-11,CID-1000,Printer broken,working,(unknown),15,0,15,booked,",
        "acme.example,2026-11,CID-1001,VPN drops,open,alice@example.com,60,0,60,booked,",
        'other.example,2026-11,CID-1002,"=HYPERLINK(""http://x"")",open,bob@example.com,60,0,60,'
        "booked,",
    ]
    target = tmp_path / "t.csv"
    args = ("report", "time", "--month", "2026-11", "--format", "csv", "--output", str(target))
    assert mailgate(config, *args).stdout == f"wrote {target}\n"
    assert target.read_text(encoding="utf-8") == result.stdout


def test_xlsx_a_customer_can_be_sent(
    booked: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(booked, tmp_path, BERLIN)
    monkeypatch.chdir(tmp_path)
    args = ("report", "time", "--customer", "acme.example", "--month", "2026-11")
    result = mailgate(config, *args, "--format", "xlsx")
    assert (result.returncode, result.stdout) == (0, "wrote time-acme.example-2026-11.xlsx\n")
    book = openpyxl.load_workbook(tmp_path / "time-acme.example-2026-11.xlsx")
    assert book.sheetnames == ["acme.example"]
    sheet = book["acme.example"]
    # Hours are minutes / 60 as stored; the file keeps 16 digits of them.
    rows = [
        [pytest.approx(v) if isinstance(v, float) else v for v in r]
        for r in sheet.iter_rows(values_only=True)
    ]
    assert rows[0][0] == "Support time acme.example, 2026-11"
    assert rows[2] == [
        "Ticket",
        "Subject",
        "Status",
        "Agent",
        "Billable (h)",
        "Free (h)",
        "Total (h)",
        "Billable (h:mm)",
        "Free (h:mm)",
        "Total (h:mm)",
    ]
    # Statuses in the customer's words, as their mail says them.
    head = ["CID-1000", "Printer broken", "in progress"]
    assert rows[3] == [*head, "Alice Smith", 0, 20 / 60, 20 / 60, "0:00", "0:20", "0:20"]
    assert rows[4] == [*head, "Bob Builder", 1.5, 10 / 60, 100 / 60, "1:30", "0:10", "1:40"]
    assert rows[5] == [*head, "(unknown)", 0.25, 0, 0.25, "0:15", "0:00", "0:15"]
    assert rows[6] == [
        "CID-1001",
        "VPN drops",
        "open",
        "Alice Smith",
        1,
        0,
        1,
        "1:00",
        "0:00",
        "1:00",
    ]
    assert rows[7] == ["Total", None, None, None, 2.75, 0.5, 3.25, "2:45", "0:30", "3:15"]
    assert rows[9][:8] == ["Support hours bought", None, None, None, 10, None, None, "10:00"]
    assert rows[10][0] == "Billable time used up to the end of 2026-11"
    assert (rows[10][4], rows[10][7]) == (3.5, "3:30")
    assert rows[11][:8] == ["Support hours left", None, None, None, 6.5, None, None, "6:30"]
    assert len(rows) == 12
    assert {sheet.cell(row=5, column=c).number_format for c in (5, 6, 7)} == {"0.00"}
    assert sheet.cell(row=10, column=5).number_format == "0.00"


def test_xlsx_in_the_customers_language(booked: Context, tmp_path: Path) -> None:
    """Most of acme's contacts read German: its workbook is German, unless --language says."""
    for sender in ("Carl <carl@acme.example>", "Dora <dora@acme.example>"):
        german = make_mail(sender=sender, subject="Frage", headers={"Content-Language": "de"})
        assert ingest(booked, german).created
    config = write_config(booked, tmp_path, BERLIN)
    target = tmp_path / "acme.xlsx"
    args = ("report", "time", "--customer", "acme.example", "--month", "2026-11")
    assert mailgate(config, *args, "--format", "xlsx", "--output", str(target)).returncode == 0
    rows = list(openpyxl.load_workbook(target)["acme.example"].iter_rows(values_only=True))
    assert rows[0][0] == "Supportzeit acme.example, 2026-11"
    assert rows[2][:5] == ("Ticket", "Betreff", "Status", "Bearbeiter/in", "Berechnet (h)")
    assert rows[3][:4] == ("CID-1000", "Printer broken", "in Bearbeitung", "Alice Smith")
    assert [r[0] for r in rows[7:]] == [
        "Gesamt", None, "Gekaufte Supportstunden", "Berechnete Zeit bis Ende 2026-11",
        "Verbleibende Supportstunden",
    ]  # fmt: skip
    english = ("--format", "xlsx", "--output", str(target), "--language", "en")
    assert mailgate(config, *args, *english).returncode == 0
    rows = list(openpyxl.load_workbook(target)["acme.example"].iter_rows(values_only=True))
    assert rows[0][0] == "Support time acme.example, 2026-11" and rows[3][2] == "in progress"
    french = ("--format", "xlsx", "--output", str(target), "--language", "fr")
    assert mailgate(config, *args, *french).returncode == 0
    rows = list(openpyxl.load_workbook(target)["acme.example"].iter_rows(values_only=True))
    assert rows[0][0] == "Temps de support acme.example, 2026-11" and rows[3][2] == "en cours"
    bad = mailgate(config, *args, "--format", "xlsx", "--language", "it")
    assert (bad.returncode, bad.stderr) == (
        64,
        "mailgate: --language: 'it' is not one of de, en, fr\n",
    )


def test_report_languages_are_those_with_sheet_words() -> None:
    from mailgate.cli.reports import SHEET_LANGUAGES
    from mailgate.outbound.sheet_words import WORDS

    assert sorted(SHEET_LANGUAGES) == sorted(WORDS)


@pytest.mark.parametrize(
    ("now", "month"),
    [
        (at(2026, 11, 30, 22, 59), "2026-11"),  # 23:59 on 30 November in Berlin
        (at(2026, 11, 30, 23, 30), "2026-12"),  # already December in Berlin
    ],
)
def test_without_month_the_current_month_of_the_desk(
    booked: Context,
    tmp_path: Path,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    now: datetime,
    month: str,
) -> None:
    real = cli.build_context
    monkeypatch.setattr(
        cli, "build_context", lambda cfg, **kw: dataclasses.replace(real(cfg, **kw), clock=clock)
    )
    clock.now = now
    config = write_config(booked, tmp_path, BERLIN)
    args = ("report", "time", "--customer", "acme.example", "--format", "json")
    result = mailgate(config, *args)
    assert result.returncode == 0, result.stderr
    named = mailgate(config, *args, "--month", month)
    assert json.loads(result.stdout)["month"] == month
    assert result.stdout == named.stdout
    table = mailgate(config, "report", "time", "--customer", "acme.example")
    assert f"acme.example: time in {month}" in table.stdout


def test_xlsx_of_every_customer_keeps_formulas_as_text(booked: Context, tmp_path: Path) -> None:
    config = write_config(booked, tmp_path, BERLIN)
    target = tmp_path / "all.xlsx"
    args = ("report", "time", "--month", "2026-11", "--format", "xlsx", "--output", str(target))
    assert mailgate(config, *args).returncode == 0
    book = openpyxl.load_workbook(target)
    assert book.sheetnames == ["acme.example", "other.example"]
    cell = book["other.example"]["B4"]
    assert (cell.value, cell.data_type) == ('=HYPERLINK("http://x")', "s")


def test_table(booked: Context, tmp_path: Path) -> None:
    config = write_config(booked, tmp_path, BERLIN)
    args = ("report", "time", "--customer", "acme.example", "--month", "2026-11")
    result = mailgate(config, *args)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].strip() == "acme.example: time in 2026-11"
    row = next(line for line in lines if "(unknown)" in line)
    assert row.split("│")[5:8] == ["     0:15 ", " 0:00 ", "  0:15 "]
    total = next(line for line in lines if "│ total" in line)
    assert total.split("│")[5:8] == ["     2:45 ", " 0:30 ", "  3:15 "]
    assert "contingent 10:00, used 3:30, left 6:30" in lines


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--month", "2026-13"), 64, 'mailgate: --month: "2026-13" is not a month'),
        (("--month", "November"), 64, 'mailgate: --month: "November" is not a month'),
        (("--month", "2026-11", "--customer", "nope"), 65, "mailgate: --customer: no organisation"),
        (("--month", "2026-11", "--output", "x.txt"), 64, "mailgate: --output is for --format"),
    ],
)
def test_bad_requests(
    sqlite_ctx: Context, tmp_path: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    result = mailgate(write_config(sqlite_ctx, tmp_path), "report", "time", *args)
    assert result.returncode == code
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_unwritable_output(sqlite_ctx: Context, tmp_path: Path) -> None:
    target = tmp_path / "missing" / "t.xlsx"
    args = ("report", "time", "--month", "2026-11", "--format", "xlsx", "--output", str(target))
    result = mailgate(write_config(sqlite_ctx, tmp_path), *args)
    assert result.returncode == 73
    assert result.stderr == f"mailgate: {target}: cannot write: No such file or directory\n"


def test_month_bounds() -> None:
    november = Month.parse("2026-11", "Europe/Berlin")
    assert (november.start, november.end) == (at(2026, 10, 31, 23, 0), at(2026, 11, 30, 23, 0))
    december = Month.parse("2026-12", "Europe/Berlin")
    assert december.end == at(2026, 12, 31, 23, 0)
    # Summer time: a month starting under CEST begins at 22:00 UTC the day before.
    assert Month.parse("2026-07", "Europe/Berlin").start == at(2026, 6, 30, 22, 0)
    with pytest.raises(ReportError):
        Month.parse("2026-00", "UTC")


def test_every_customers_report_reads_their_contingents_together(booked: Context) -> None:
    """A month of a large desk has thousands of organisations: their languages and
    contingents are read for all at once, so a third one costs no statement more."""
    from sqlalchemy import event

    from mailgate.reports.report import time_report

    month = Month.parse("2026-11", "Europe/Berlin")

    def statements() -> tuple[int, dict[str, dict[str, int]]]:
        seen = [0]

        def count(*_args: object) -> None:
            seen[0] += 1

        event.listen(booked.store.engine, "before_cursor_execute", count)
        try:
            with booked.store.session() as session:
                report = time_report(session, "CID", month)
        finally:
            event.remove(booked.store.engine, "before_cursor_execute", count)
        return seen[0], {b["organisation"]: b["contingent"] for b in report["customers"]}

    before, contingents = statements()
    assert len(contingents) == 2
    claim_domain(booked, "third.example", "third.example")
    third = make_mail(sender="Tia <tia@third.example>", subject="Third")
    assert ingest(booked, third).cid == "CID-1003"
    add_time(booked, 1003, BOB, 25, True, at(2026, 11, 6, 9, 0))
    add_time(booked, 1003, BOB, 5, True, at(2026, 12, 6, 9, 0))  # after the month
    top_up(booked, "third.example", 100, at(2026, 11, 1, 9, 0))
    after, contingents = statements()
    assert after == before
    assert contingents["third.example"] == {
        "total_minutes": 100,
        "used_minutes": 25,
        "left_minutes": 75,
    }
    assert contingents["acme.example"]["total_minutes"] == 600
