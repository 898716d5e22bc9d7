"""`mailgate export`: the desk of test_ticket_list as .xlsx (tickets and articles sheets) and
.csv, with the filters of `tickets list`, on both databases."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from mailgate.outbound.context import Context
from mailgate.reports import export, views
from tests.desk import NOW


def write(ctx: Context, path: Path, fmt: str, articles: bool = False, **options: Any) -> Any:
    flt = views.make_filter(**options)
    ticks: list[int] = []
    with ctx.store.session() as session:
        counts = export.write_file(
            session, ctx.config, flt, NOW, path, fmt, articles, lambda: ticks.append(1)
        )
    assert len(ticks) == counts.tickets
    return counts


def sheet_rows(path: Path, title: str) -> list[tuple[Any, ...]]:
    book = openpyxl.load_workbook(path)
    return [tuple(row) for row in book[title].iter_rows(values_only=True)]


def test_xlsx_has_every_ticket_and_article(desk: Context, tmp_path: Path) -> None:
    path = tmp_path / "desk.xlsx"
    counts = write(desk, path, "xlsx")
    assert (counts.tickets, counts.articles) == (8, 3)
    assert openpyxl.load_workbook(path).sheetnames == ["tickets", "articles"]
    tickets = sheet_rows(path, "tickets")
    # Times are the desk's wall clock, and the headings say which zone that is.
    berlin = tuple(h.replace("(UTC)", "(Europe/Berlin)") for _, h in export.TICKET_COLUMNS)
    assert tickets[0] == berlin
    assert "Created (Europe/Berlin)" in tickets[0]
    assert len(tickets) == 9
    first = dict(zip((k for k, _ in export.TICKET_COLUMNS), tickets[1], strict=True))
    assert first == {
        "cid": "CID-1000",
        "number": 1000,
        "subject": "Invoice wrong",
        "status": "closed",
        "priority": "A",
        "type": "bug",
        "category": "billing",
        "customer": "Acme GmbH",
        "requester": "alice@acme.example",
        "assignee": "anna@example.com",
        "agents": "bert@example.com",
        "references": None,  # none found: an empty cell
        "linked_ticket": None,
        "billable": True,
        "source": "smtp",
        "served_address": "support@example.com",
        # Real dates, Berlin wall clock (UTC+1): Excel has no time zones.
        "created_at": datetime(2026, 11, 2, 9, 0),
        "updated_at": datetime(2026, 11, 3, 9, 0),
        "first_response_at": datetime(2026, 11, 2, 10, 30),
        "resolved_at": datetime(2026, 11, 3, 9, 0),
        "last_action_by": "staff",
        "last_action_at": datetime(2026, 11, 3, 9, 0),
        "hold_until": None,
        "sla_due_at": datetime(2026, 11, 2, 11, 0),
        "sla_breached": False,
        "billable_minutes": 30,
        "free_minutes": 15,
        "articles": 2,
    }
    by_cid = {row[0]: row for row in tickets[1:]}
    assert by_cid["CID-1003"][-3:] == (60, 0, 1)
    # A subject that looks like a formula stays text.
    assert by_cid["CID-1007"][2] == "=1+1"
    assert openpyxl.load_workbook(path)["tickets"]["C9"].data_type == "s"

    articles = sheet_rows(path, "articles")
    assert articles[0] == tuple(
        h.replace("(UTC)", "(Europe/Berlin)") for _, h in export.ARTICLE_COLUMNS
    )
    assert [(r[0], r[2], r[3], r[10]) for r in articles[1:]] == [
        ("CID-1000", "customer", "alice@acme.example", 1),
        ("CID-1000", "staff", "anna@example.com", 0),
        ("CID-1003", "customer", "bob@beta.example", 0),
    ]
    question = articles[1]
    assert question[4:10] == (
        "support@example.com",
        "carol@acme.example, dave@acme.example",
        "Invoice wrong",
        datetime(2026, 11, 2, 9, 0),
        "<q1@acme.example>",
        None,  # an empty note is an empty cell
    )
    assert articles[3][9] == "unverified sender" and articles[3][7] is None


def test_filters_and_order_apply_to_the_export(desk: Context, tmp_path: Path) -> None:
    path = tmp_path / "late.xlsx"
    counts = write(desk, path, "xlsx", sla_breached=True, sort="created", desc=True)
    assert (counts.tickets, counts.articles) == (3, 1)
    assert [r[0] for r in sheet_rows(path, "tickets")[1:]] == ["CID-1003", "CID-1001", "CID-1006"]
    assert [r[0] for r in sheet_rows(path, "articles")[1:]] == ["CID-1003"]


def test_csv_tickets_or_articles(desk: Context, tmp_path: Path) -> None:
    path = tmp_path / "desk.csv"
    counts = write(desk, path, "csv", priority="A")
    assert (counts.tickets, counts.articles) == (2, 0)
    with path.open(newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == [k for k, _ in export.TICKET_COLUMNS]
    assert [(r["cid"], r["created_at"], r["hold_until"], r["billable_minutes"]) for r in rows] == [
        ("CID-1000", "2026-11-02T08:00:00+00:00", "", "30"),
        ("CID-1003", "2026-11-04T14:00:00+00:00", "", "60"),
    ]
    articles_path = tmp_path / "articles.csv"
    counts = write(desk, articles_path, "csv", articles=True, priority="A")
    assert (counts.tickets, counts.articles) == (2, 3)
    with articles_path.open(newline="", encoding="utf-8") as stream:
        articles = list(csv.DictReader(stream))
    assert list(articles[0]) == [k for k, _ in export.ARTICLE_COLUMNS]
    assert [(a["cid"], a["message_id"], a["attachments"]) for a in articles] == [
        ("CID-1000", "<q1@acme.example>", "1"),
        ("CID-1000", "<a1@example.com>", "0"),
        ("CID-1003", "<r1@beta.example>", "0"),
    ]


def test_export_command(desk_cli: Any, tmp_path: Path) -> None:
    target = tmp_path / "out.xlsx"
    result = desk_cli("export", "--output", str(target), "--customer", "Acme GmbH")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"exported 3 tickets, 2 articles to {target}\n"
    assert len(sheet_rows(target, "tickets")) == 4
    csv_target = tmp_path / "out.csv"
    result = desk_cli("export", "-o", str(csv_target), "--status", "open")
    assert result.stdout == f"exported 3 tickets to {csv_target}\n"
    result = desk_cli("export", "--format", "csv", "--articles", "-o", str(csv_target))
    assert result.stdout == f"exported 8 tickets, 3 articles to {csv_target}\n"
    assert not list(tmp_path.glob(".*.partial"))


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        ([], 64, "mailgate: --output: name the file to write\n"),
        (["-o", "x.ods", "--format", "ods"], 64,
         "mailgate: --format: 'ods' is not one of xlsx, csv\n"),
        (["-o", "x.xlsx", "--created-to", "2026-02-30"], 64,
         "mailgate: --created-to: '2026-02-30' is not a date (YYYY-MM-DD)\n"),
        (["-o", "{tmp}/missing/x.xlsx"], 73, "mailgate: {tmp}/missing/x.xlsx: cannot write: "),
    ],
)  # fmt: skip
def test_export_bad_input(
    desk_cli: Any, tmp_path: Path, args: list[str], status: int, message: str
) -> None:
    result = desk_cli("export", *[a.replace("{tmp}", str(tmp_path)) for a in args])
    message = message.replace("{tmp}", str(tmp_path))
    assert result.returncode == status
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr


def test_small_batches_give_the_same_rows(
    desk: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches end between tickets (and the other tables are read while the cursor is open)."""
    whole = tmp_path / "whole.xlsx"
    write(desk, whole, "xlsx", sort="priority")
    monkeypatch.setattr(export, "BATCH", 3)
    batched = tmp_path / "batched.xlsx"
    counts = write(desk, batched, "xlsx", sort="priority")
    assert (counts.tickets, counts.articles) == (8, 3)
    for title in ("tickets", "articles"):
        assert sheet_rows(batched, title) == sheet_rows(whole, title)
    limited = tmp_path / "limited.xlsx"
    assert write(desk, limited, "xlsx", sla_breached=True, limit=2).tickets == 2
