"""`tickets list`: every filter, sorting and limits on a known desk, on both databases; the
JSON, CSV and table output; bad filter values."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pytest

from mailgate.config import SlaConfig
from mailgate.outbound.context import Context
from mailgate.reports import views
from mailgate.service.app import build_context
from tests.conftest import Clock
from tests.desk import NOW, at, build_desk, desk_config
from tests.helpers import ingest
from tests.mails import make_mail


def numbers(ctx: Context, **options: Any) -> list[int]:
    flt = views.make_filter(**options)
    with ctx.store.session() as session:
        return [r["number"] for r in views.ticket_rows(session, ctx.config, flt, ctx.clock())]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, [1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007]),
        ({"status": ("open",)}, [1001, 1005, 1006]),
        ({"status": ("open,working",)}, [1001, 1002, 1005, 1006]),
        ({"status": ("hold", "delivered")}, [1003, 1004]),
        ({"assignee": "ANNA@example.com"}, [1000, 1003, 1005]),
        ({"assignee": "none"}, [1002, 1007]),
        ({"category": "shop"}, [1001, 1004, 1005]),
        ({"customer": "Beta AG"}, [1003, 1004, 1005, 1006, 1007]),
        ({"priority": "a"}, [1000, 1003]),
        ({"type": "help"}, [1001, 1002]),
        ({"billable": True}, [1000, 1003]),
        ({"billable": False}, [1001, 1002, 1004, 1005, 1006, 1007]),
        ({"created_from": "2026-11-03"}, [1001, 1002, 1003, 1005]),
        ({"created_to": "2026-11-02"}, [1000, 1004, 1006, 1007]),
        ({"created_from": "2026-10-30", "created_to": "2026-10-30"}, [1006, 1007]),
        ({"updated_from": "2026-11-05", "updated_to": "2026-11-05"}, [1002, 1003, 1005]),
        ({"waiting": "us"}, [1001, 1004, 1005]),
        ({"waiting": "customer"}, [1002, 1003, 1006]),
        ({"text": "PRINTER"}, [1002, 1005]),
        # --text is a search (mailgate search): words, not LIKE patterns, and prefixes.
        ({"text": "100%_off"}, [1003]),
        ({"text": "refun*"}, [1003]),
        ({"sla_breached": True}, [1001, 1003, 1006]),
        ({"sla_breached": True, "priority": "C"}, [1006]),
        ({"category": "shop", "status": ("open",), "assignee": "anna@example.com"}, [1005]),
    ],
)
def test_each_filter_selects_its_tickets(
    desk: Context, options: dict[str, Any], expected: list[int]
) -> None:
    assert numbers(desk, **options) == expected


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"sort": "created"}, [1004, 1007, 1006, 1000, 1001, 1002, 1003, 1005]),
        ({"sort": "created", "desc": True, "limit": 3}, [1005, 1003, 1002]),
        ({"sort": "priority"}, [1000, 1003, 1001, 1004, 1002, 1005, 1006, 1007]),
        ({"sort": "priority", "desc": True, "limit": 2}, [1007, 1006]),
        ({"sort": "updated", "limit": 2}, [1004, 1007]),
        ({"sort": "last-action", "desc": True, "limit": 2}, [1003, 1005]),
        ({"limit": 0}, []),
        # The business-day target is checked after the query: the limit must still hold.
        ({"sla_breached": True, "sort": "created", "limit": 1}, [1006]),
        ({"sla_breached": True, "limit": 2}, [1001, 1003]),
    ],
)
def test_sort_and_limit(desk: Context, options: dict[str, Any], expected: list[int]) -> None:
    assert numbers(desk, **options) == expected


def test_sla_breach_moves_with_the_clock(desk: Context) -> None:
    """1005 (C, Thursday 10:00 Berlin) is due two business days later: Monday 10:00."""
    desk.clock.now = at("11-09 08:59")  # type: ignore[attr-defined]
    assert numbers(desk, sla_breached=True, priority="C") == [1006]
    desk.clock.now = at("11-09 09:01")  # type: ignore[attr-defined]
    assert numbers(desk, sla_breached=True, priority="C") == [1005, 1006]


def test_json_rows_keep_the_contract_and_add_sla(desk: Context) -> None:
    flt = views.make_filter(status=("open",))
    with desk.store.session() as session:
        rows = views.ticket_rows(session, desk.config, flt, NOW)
    assert rows[0] == {
        "cid": "CID-1001",
        "number": 1001,
        "subject": "Shop login fails",
        "status": "open",
        "priority": "B",
        "type": "help",
        "category": "shop",
        "customer": "Acme GmbH",
        "requester": "alice@acme.example",
        "assignee": "bert@example.com",
        "billable": False,
        "source": "smtp",
        "created_at": "2026-11-02T23:30:00+00:00",
        "updated_at": "2026-11-02T23:30:00+00:00",
        "last_action": {"by": "customer", "at": "2026-11-02T23:30:00+00:00"},
        "linked_ticket": None,
        "sla": {"due_at": "2026-11-03T07:30:00+00:00", "breached": True},
        "references": [],
    }
    assert rows[1]["sla"] == {"due_at": "2026-11-09T09:00:00+00:00", "breached": False}


def test_no_target_means_no_due_date(tmp_path: Path, clock: Clock) -> None:
    cfg = dataclasses.replace(
        desk_config(tmp_path, f"sqlite:///{tmp_path}/x.db"),
        sla=SlaConfig(first_response={"A": "2h"}),
    )
    ctx = dataclasses.replace(build_context(cfg), clock=clock)
    try:
        build_desk(ctx)
        clock.now = NOW
        flt = views.make_filter(priority="B")
        with ctx.store.session() as session:
            rows = views.ticket_rows(session, cfg, flt, NOW)
        assert [r["sla"] for r in rows] == [{"due_at": None, "breached": False}] * 2
        assert numbers(ctx, sla_breached=True) == [1003]
    finally:
        ctx.store.dispose()


# The command ---------------------------------------------------------------------------------


def test_cli_json_filters(desk_cli: Any) -> None:
    result = desk_cli("tickets", "list", "--status", "open", "--sla-breached", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert [(r["cid"], r["sla"]["breached"]) for r in json.loads(result.stdout)] == [
        ("CID-1001", True),
        ("CID-1006", True),
    ]
    result = desk_cli(
        "tickets", "list", "--not-billable", "--waiting", "us", "--sort", "created", "--desc",
        "--limit", "2", "--format", "json",
    )  # fmt: skip
    assert [r["number"] for r in json.loads(result.stdout)] == [1005, 1001]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # As #assign takes an agent: first name, full name, local part, address in any case.
        (["--assignee", "anna"], [1000, 1003, 1005]),
        (["--assignee", "ANNA@example.com"], [1000, 1003, 1005]),
        # Bert is a further agent on 1000: his tickets include it.
        (["--assignee", "Bert"], [1000, 1001, 1004, 1006]),
        (["--assignee", "bert", "--status", "open"], [1001, 1006]),
        (["--assignee", "none"], [1002, 1007]),
        (["--category", "SHOP"], [1001, 1004, 1005]),
        (["--category", "Billing", "--assignee", "bert"], [1000]),
        # An organisation as report time --customer finds it: exact, else in any case.
        (["--customer", "beta ag", "--status", "open"], [1005, 1006]),
    ],
)
def test_cli_assignee_by_name_and_category_in_any_case(
    desk_cli: Any, args: list[str], expected: list[int]
) -> None:
    result = desk_cli("tickets", "list", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert [r["number"] for r in json.loads(result.stdout)] == expected


def test_export_takes_the_same_filters(desk_cli: Any, tmp_path: Path) -> None:
    target = tmp_path / "bert.csv"
    result = desk_cli("export", "--output", str(target), "--assignee", "bert", "--category", "SHOP")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(target.read_text("utf-8"))))
    assert [r["cid"] for r in rows] == ["CID-1001", "CID-1004"]


def test_cli_csv_has_one_header_and_flat_fields(desk_cli: Any) -> None:
    result = desk_cli("tickets", "list", "--category", "billing", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == list(views.TICKET_CSV_FIELDS)
    assert [
        (r["cid"], r["last_action_by"], r["last_action_at"], r["sla_breached"]) for r in rows
    ] == [
        ("CID-1000", "staff", "2026-11-03T08:00:00+00:00", "False"),
        ("CID-1003", "staff", "2026-11-05T14:00:00+00:00", "True"),
    ]
    assert rows[0]["type"] == "bug" and rows[0]["billable"] == "True"
    assert rows[0]["linked_ticket"] == "" and rows[0]["sla_due_at"] == "2026-11-02T10:00:00+00:00"


def test_cli_table_shows_flags_last_action_and_sla_mark(desk_cli: Any) -> None:
    result = desk_cli("tickets", "list", "--priority", "A")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if "CID-" in line}
    assert "⚑ A" in lines["CID-1000"] and "$" in lines["CID-1000"]
    # In the desk's zone, named in the heading: 08:00 UTC is 09:00 in Berlin.
    assert "last action (Europe/Berlin)" in result.stdout
    assert "staff 2026-11-03 09:00" in lines["CID-1000"]
    assert "late" not in lines["CID-1000"] and "⏰ late" in lines["CID-1003"]
    assert "2 tickets" in result.stdout


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--created-from", "2026-13-01"], 64,
         "mailgate: --created-from: '2026-13-01' is not a date"),
        (["--updated-to", "20261101"], 64, "mailgate: --updated-to: '20261101' is not a date"),
        (["--status", "open,pending"], 64, "mailgate: --status: 'pending' is not one of open,"),
        (["--priority", "D"], 64, "mailgate: --priority: 'D' is not one of A, B, C"),
        (["--waiting", "them"], 64, "mailgate: --waiting: 'them' is not one of us, customer"),
        (["--sort", "size"], 64, "mailgate: --sort: 'size' is not one of number,"),
        (["--limit", "-1"], 64, "mailgate: --limit: '-1' is not a number of tickets"),
        (["--created-from", "2026-11-05", "--created-to", "2026-11-01"], 64,
         "mailgate: --created-to: 2026-11-01 is before the start 2026-11-05"),
        (["--customer", "Gamma"], 65, "mailgate: --customer: no organisation named 'Gamma'"),
        (["--assignee", "zoe@example.com"], 65,
         "mailgate: --assignee: no active agent has the address zoe@example.com"),
        (["--assignee", "zoe"], 65, 'mailgate: --assignee: no active agent is called "zoe"'),
    ],
)  # fmt: skip
def test_cli_bad_values_are_one_line(
    desk_cli: Any, args: list[str], status: int, message: str
) -> None:
    result = desk_cli("tickets", "list", *args)
    assert result.returncode == status
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
    assert result.stdout == ""


def test_a_ticket_from_the_pipeline_is_listed_with_its_target(sqlite_ctx: Context) -> None:
    ingest(sqlite_ctx, make_mail(subject="Drucker druckt nicht"))
    flt = views.make_filter(text="drucker", sla_breached=False)
    with sqlite_ctx.store.session() as session:
        rows = views.ticket_rows(session, sqlite_ctx.config, flt, sqlite_ctx.clock())
    assert [(r["cid"], r["priority"], r["sla"]) for r in rows] == [
        ("CID-1000", "B", {"due_at": "2026-11-02T17:00:00+00:00", "breached": False})
    ]
