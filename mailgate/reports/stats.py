"""`mailgate stats`: counts, response times, first-response targets and the backlog.

Days are local days in `[tickets] timezone`; the window is the last N days, today included.
Percentiles use the nearest-rank method: the p-th percentile of n sorted values is the value
at rank ceil(p / 100 * n) (1-based), so it is always one of the measured values; the median
is the 50th percentile by the same rule (the lower middle value for an even count)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple, cast
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import and_, case, func, or_
from sqlmodel import Session, col, select

from mailgate.config import Config
from mailgate.desk import sla
from mailgate.moments import hhmm, local_midnight
from mailgate.reports.tables import PRIORITY_STYLE
from mailgate.store import tally
from mailgate.store.models import PRIORITIES, STATUSES, Ticket

NO_CATEGORY = "none"


@dataclass(frozen=True)
class Window:
    """The report's local days and the UTC instants where each begins (one more: the end)."""

    days: list[date]
    bounds: list[datetime]

    @classmethod
    def last(cls, now: datetime, zone: ZoneInfo, count: int) -> Window:
        today = now.astimezone(zone).date()
        days = [today - timedelta(days=count - 1 - i) for i in range(count)]
        bounds = [local_midnight(d, zone) for d in [*days, today + timedelta(days=1)]]
        return cls(days, bounds)


class _Times(NamedTuple):
    """The columns the time figures need: enough for `sla.first_response`, which reads
    only these four attributes of a ticket."""

    priority: str
    created_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None


def percentile(values: Sequence[int], p: int) -> int | None:
    """Nearest rank: the value at rank ceil(p/100 * n) of the sorted values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def collect(session: Session, cfg: Config, now: datetime, days: int = 7) -> dict[str, Any]:
    """Every figure of `mailgate stats` as JSON-ready data with stable keys."""
    window = Window.last(now, sla.Calendar.of(cfg).zone, days)
    times = _window_times(session, window)
    return {
        "timezone": cfg.tickets.timezone,
        "days": days,
        "from": window.days[0].isoformat(),
        "to": window.days[-1].isoformat(),
        "by_category_status": _by_category_status(session),
        "opened_per_day": _opened_per_day(session, window),
        "first_response": _durations(times, lambda t: t.first_response_at),
        "resolution": _durations(times, lambda t: t.resolved_at),
        "sla": _sla(cfg, times, now),
        "backlog": _backlog(session, window),
    }


def _by_category_status(session: Session) -> dict[str, Any]:
    """Per category (None as "none", listed last) a count per status and a total; and the
    same summed over all categories (apart, so that no category name can collide with it)."""
    table: dict[str, dict[str, int]] = {}
    totals = dict.fromkeys((*STATUSES, "total"), 0)
    for (category, status), count in tally.counts(session).items():
        row = table.setdefault(category or NO_CATEGORY, dict.fromkeys((*STATUSES, "total"), 0))
        for target in (row, totals):
            target[status] = target.get(status, 0) + count
            target["total"] += count
    names = sorted(k for k in table if k != NO_CATEGORY)
    if NO_CATEGORY in table:
        names.append(NO_CATEGORY)
    return {"categories": {k: table[k] for k in names}, "total": totals}


def _per_day_sums(conditions: list[Any]) -> list[Any]:
    return [func.coalesce(func.sum(case((c, 1), else_=0)), 0) for c in conditions]


def _one_row(session: Session, query: Any) -> Sequence[Any]:
    # Through the connection: a one-column select must still give a row, not a scalar.
    return tuple(session.connection().execute(query).one())


def _opened_per_day(session: Session, window: Window) -> list[dict[str, Any]]:
    created = col(Ticket.created_at)
    b = window.bounds
    sums = _per_day_sums([and_(created >= b[i], created < b[i + 1]) for i in range(len(b) - 1)])
    counts = _one_row(session, select(*sums).where(created >= b[0], created < b[-1]))
    return [
        {"day": d.isoformat(), "opened": int(n)} for d, n in zip(window.days, counts, strict=True)
    ]


def _backlog(session: Session, window: Window) -> list[dict[str, Any]]:
    """Unresolved at each day's end: created before it, and not resolved by then. A ticket
    reopened later has lost its earlier resolution time, so it counts as unresolved then."""
    created, resolved = col(Ticket.created_at), col(Ticket.resolved_at)
    ends = window.bounds[1:]
    sums = _per_day_sums(
        [and_(created < end, or_(resolved.is_(None), resolved > end)) for end in ends]
    )
    # Only the resolution in the filter: its index finds the few tickets open in the window.
    # The days' sums test the creation; as a filter too, SQLite read every ticket by it.
    query = select(*sums).where(or_(resolved.is_(None), resolved > ends[0]))
    counts = _one_row(session, query)
    return [
        {"day": d.isoformat(), "unresolved": int(n)}
        for d, n in zip(window.days, counts, strict=True)
    ]


def _window_times(session: Session, window: Window) -> list[_Times]:
    created = col(Ticket.created_at)
    query = select(
        Ticket.priority, Ticket.created_at, Ticket.first_response_at, Ticket.resolved_at
    ).where(created >= window.bounds[0], created < window.bounds[-1])
    return [_Times(*row) for row in session.exec(query)]


def _durations(times: list[_Times], end: Any) -> dict[str, dict[str, int | None]]:
    """Per priority: how many tickets have the moment, median and p90 seconds to it."""
    figures = {}
    for priority in PRIORITIES:
        seconds = [
            round((end(t) - t.created_at).total_seconds())
            for t in times
            if t.priority == priority and end(t) is not None
        ]
        figures[priority] = {
            "count": len(seconds),
            "median_seconds": percentile(seconds, 50),
            "p90_seconds": percentile(seconds, 90),
        }
    return figures


def _sla(cfg: Config, times: list[_Times], now: datetime) -> dict[str, dict[str, Any]]:
    """Per priority with a target: tickets of the window, and how many missed it (by now)."""
    calendar = sla.Calendar.of(cfg)
    figures: dict[str, dict[str, Any]] = {}
    for priority in PRIORITIES:
        target = cfg.sla.first_response.get(priority)
        if not target:
            continue
        mine = [t for t in times if t.priority == priority]
        # _Times carries exactly the attributes first_response reads from a ticket.
        breached = sum(
            sla.first_response(cfg, calendar, cast(Ticket, t), now).breached for t in mine
        )
        figures[priority] = {"target": target, "tickets": len(mine), "breached": breached}
    return figures


# Terminal output ------------------------------------------------------------------------------


def hours(seconds: int | None) -> str:
    """Seconds as h:mm, for people."""
    if seconds is None:
        return "-"
    return hhmm(round(seconds / 60))


def print_stats(console: Console, data: dict[str, Any]) -> None:
    _print_cross(console, data["by_category_status"])
    console.print()
    _print_bars(console, f"opened per day ({data['timezone']})", data["opened_per_day"], "opened")
    console.print()
    _print_times(console, data)
    console.print()
    _print_bars(console, "unresolved at the end of each day", data["backlog"], "unresolved")


def _print_cross(console: Console, cross: dict[str, Any]) -> None:
    table = Table("category", title="tickets by category and status")
    for name in (*STATUSES, "total"):
        table.add_column(name, justify="right")
    for category, row in [*cross["categories"].items(), ("total", cross["total"])]:
        cells = [str(row.get(s, 0)) for s in (*STATUSES, "total")]
        table.add_row(category, *cells, style="bold" if row is cross["total"] else "")
    console.print(table)


def _print_bars(console: Console, title: str, rows: list[dict[str, Any]], key: str) -> None:
    console.print(Text(title, style="bold"))
    peak = max((r[key] for r in rows), default=0)
    for row in rows:
        day = date.fromisoformat(row["day"])
        width = round(40 * row[key] / peak) if peak else 0
        line = Text(f"{day:%a %Y-%m-%d} ")
        line.append("█" * width, style="cyan")
        line.append(f" {row[key]}")
        console.print(line)


def _print_times(console: Console, data: dict[str, Any]) -> None:
    table = Table(
        "prio",
        "first response median",
        "p90",
        "resolution median",
        "p90",
        "SLA tickets",
        "breached",
        title=f"tickets created {data['from']} to {data['to']} (h:mm, nearest-rank)",
    )
    for priority in PRIORITIES:
        first, done = data["first_response"][priority], data["resolution"][priority]
        target = data["sla"].get(priority)
        table.add_row(
            Text(f"⚑ {priority}", style=PRIORITY_STYLE.get(priority, "")),
            hours(first["median_seconds"]),
            hours(first["p90_seconds"]),
            hours(done["median_seconds"]),
            hours(done["p90_seconds"]),
            str(target["tickets"]) if target else "-",
            Text(str(target["breached"]), style="bold red" if target["breached"] else "")
            if target
            else "-",
        )
    console.print(table)
