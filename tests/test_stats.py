"""`mailgate stats` on the known desk of test_ticket_list: exact counts, days in Berlin,
nearest-rank medians and p90s, first-response breaches and the backlog, on both databases."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailgate.outbound.context import Context
from mailgate.reports import stats

STATUS_ZERO = {"open": 0, "working": 0, "hold": 0, "delivered": 0, "closed": 0}


def collect(ctx: Context, days: int = 7) -> dict[str, Any]:
    with ctx.store.session() as session:
        return stats.collect(session, ctx.config, ctx.clock(), days)


def test_stats_json_on_the_desk(desk: Context) -> None:
    data = collect(desk)
    assert (data["timezone"], data["days"], data["from"], data["to"]) == (
        "Europe/Berlin",
        7,
        "2026-10-31",
        "2026-11-06",
    )
    assert data["by_category_status"] == {
        "categories": {
            "billing": {**STATUS_ZERO, "delivered": 1, "closed": 1, "total": 2},
            "hardware": {**STATUS_ZERO, "open": 1, "closed": 1, "total": 2},
            "shop": {**STATUS_ZERO, "open": 2, "hold": 1, "total": 3},
            "none": {**STATUS_ZERO, "working": 1, "total": 1},
        },
        "total": {"open": 3, "working": 1, "hold": 1, "delivered": 1, "closed": 2, "total": 8},
    }
    assert list(data["by_category_status"]["categories"]) == ["billing", "hardware", "shop", "none"]
    # 1001 came at 23:30 UTC on Monday: 00:30 on Tuesday in Berlin.
    assert [(d["day"], d["opened"]) for d in data["opened_per_day"]] == [
        ("2026-10-31", 0),
        ("2026-11-01", 0),
        ("2026-11-02", 1),
        ("2026-11-03", 2),
        ("2026-11-04", 1),
        ("2026-11-05", 1),
        ("2026-11-06", 0),
    ]
    assert data["first_response"] == {
        # 1000 answered after 1:30, 1003 after 3:00: nearest rank takes the lower for p50.
        "A": {"count": 2, "median_seconds": 5400, "p90_seconds": 10800},
        "B": {"count": 0, "median_seconds": None, "p90_seconds": None},
        "C": {"count": 1, "median_seconds": 47 * 3600, "p90_seconds": 47 * 3600},
    }
    assert data["resolution"] == {
        "A": {"count": 2, "median_seconds": 86400, "p90_seconds": 86400},
        "B": {"count": 0, "median_seconds": None, "p90_seconds": None},
        "C": {"count": 0, "median_seconds": None, "p90_seconds": None},
    }
    assert data["sla"] == {
        "A": {"target": "2h", "tickets": 2, "breached": 1},
        "B": {"target": "8h", "tickets": 1, "breached": 1},
        "C": {"target": "2bd", "tickets": 2, "breached": 0},
    }
    assert [(d["day"], d["unresolved"]) for d in data["backlog"]] == [
        ("2026-10-31", 3),
        ("2026-11-01", 3),
        ("2026-11-02", 3),
        ("2026-11-03", 4),
        ("2026-11-04", 5),
        ("2026-11-05", 5),
        ("2026-11-06", 5),
    ]


def test_a_longer_window_takes_in_older_tickets(desk: Context) -> None:
    data = collect(desk, days=14)
    assert data["from"] == "2026-10-24"
    opened = {d["day"]: d["opened"] for d in data["opened_per_day"] if d["opened"]}
    assert opened == {
        "2026-10-28": 1,
        "2026-10-30": 2,
        "2026-11-02": 1,
        "2026-11-03": 2,
        "2026-11-04": 1,
        "2026-11-05": 1,
    }
    # 1006 (C, Friday evening) was answered Tuesday 17:00 UTC, an hour after its target.
    assert data["sla"]["C"] == {"target": "2bd", "tickets": 4, "breached": 1}
    assert data["first_response"]["B"] == {
        "count": 1,
        "median_seconds": 7200,
        "p90_seconds": 7200,
    }
    assert data["backlog"][0] == {"day": "2026-10-24", "unresolved": 0}


def test_an_empty_desk(ctx: Context) -> None:
    data = collect(ctx, days=1)
    assert data["by_category_status"] == {"categories": {}, "total": {**STATUS_ZERO, "total": 0}}
    assert data["opened_per_day"] == [{"day": "2026-11-02", "opened": 0}]
    assert data["backlog"] == [{"day": "2026-11-02", "unresolved": 0}]
    assert data["first_response"]["A"] == {"count": 0, "median_seconds": None, "p90_seconds": None}


@pytest.mark.parametrize(
    ("values", "median", "p90"),
    [([7], 7, 7), ([1, 2], 1, 2), ([5, 1, 3], 3, 5), (list(range(1, 11)), 5, 9), ([], None, None)],
)
def test_nearest_rank_percentiles(values: list[int], median: int | None, p90: int | None) -> None:
    assert (stats.percentile(values, 50), stats.percentile(values, 90)) == (median, p90)


def test_stats_command_json_and_table(desk_cli: Any) -> None:
    result = desk_cli("stats", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sla"]["A"] == {"target": "2h", "tickets": 2, "breached": 1}
    table = desk_cli("stats", "--days", "3")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert any(line.split()[:2] == ["Wed", "2026-11-04"] and line.endswith("█ 1") for line in lines)
    assert any(line.split() == ["Fri", "2026-11-06", "0"] for line in lines)
    assert "tickets by category and status" in table.stdout
    assert "3:00" in table.stdout and "24:00" in table.stdout  # 1003: answer, resolution


@pytest.mark.parametrize("days", ["0", "x", "400"])
def test_stats_bad_days(desk_cli: Any, days: str) -> None:
    result = desk_cli("stats", "--days", days)
    assert result.returncode == 64
    assert result.stderr == f"mailgate: --days: {days!r} is not a number of days from 1 to 366\n"
