"""First-response targets: when a ticket's first answer is due, and whether it came in time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from mailgate.config import WEEKDAYS, Config, parse_duration
from mailgate.moments import aware
from mailgate.store.models import Ticket


@dataclass(frozen=True)
class Calendar:
    """The desk's time zone and working days, for targets counted in business days."""

    zone: ZoneInfo
    business_days: frozenset[int]  # 0 = Monday
    holidays: frozenset[date]

    @classmethod
    def of(cls, cfg: Config) -> Calendar:
        return cls(
            ZoneInfo(cfg.tickets.timezone),
            frozenset(WEEKDAYS.index(d.lower()) for d in cfg.sla.business_days),
            frozenset(date.fromisoformat(d) for d in cfg.sla.holidays),
        )

    def is_business_day(self, day: date) -> bool:
        return day.weekday() in self.business_days and day not in self.holidays

    def add_business_days(self, start: datetime, days: int) -> datetime:
        """`days` business days after `start`, at the same local time. A start outside
        business days counts from the beginning of the next business day."""
        local = start.astimezone(self.zone)
        if not self.business_days:
            return start + timedelta(days=days)  # no business days configured: clock days
        if not self.is_business_day(local.date()):
            day = local.date()
            while not self.is_business_day(day):
                day += timedelta(days=1)
            local = datetime.combine(day, time(0), tzinfo=self.zone)
        day, left = local.date(), days
        while left:
            day += timedelta(days=1)
            if self.is_business_day(day):
                left -= 1
        return datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=self.zone)


_CLOCK_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}


def due_at(cfg: Config, calendar: Calendar, priority: str, created_at: datetime) -> datetime | None:
    """When the first response to a ticket of this priority is due; None without a target."""
    target = cfg.sla.first_response.get(priority)
    if not target:
        return None
    amount, unit = parse_duration(target)
    created = aware(created_at)
    if unit == "bd":
        return calendar.add_business_days(created, amount).astimezone(UTC)
    return created + amount * _CLOCK_UNITS[unit]


@dataclass(frozen=True)
class FirstResponse:
    due_at: datetime | None
    answered_at: datetime | None  # first response, else resolution without one
    breached: bool


def first_response(cfg: Config, calendar: Calendar, ticket: Ticket, now: datetime) -> FirstResponse:
    """The ticket's first-response target and whether it was missed (or is missed by now).
    A ticket resolved before anyone wrote has been dealt with: its resolution counts."""
    due = due_at(cfg, calendar, ticket.priority, ticket.created_at)
    answered = ticket.first_response_at or ticket.resolved_at
    answered = aware(answered) if answered else None
    if due is None:
        return FirstResponse(None, answered, False)
    return FirstResponse(due, answered, (answered or aware(now)) > due)
