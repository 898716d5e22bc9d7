"""The soak's verdict: each process's memory and descriptors after the warm-up against their
value at its end, every mail's outcome in the database, and the daemon's log."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from soak_ledger import Ledger
from soak_watch import FD_SLACK, GROWTH_LIMIT, MB, Sample, clock
from sqlalchemy import Engine, text


@dataclass(frozen=True)
class Trend:
    """One process from the end of the warm-up on."""

    role: str
    base: Sample  # the first sample at or after the warm-up
    end: Sample  # the last one
    peak_rss: int  # the highest from the base on
    peak_pss: int
    peak_fds: int
    pids: int  # how many processes held the role (more than one: it was restarted)

    def growth(self, field: str) -> float:
        base = getattr(self.base, field)
        return (getattr(self, f"peak_{field}") - base) / base if base else 0.0

    @property
    def memory_met(self) -> bool:
        return self.growth("pss") <= GROWTH_LIMIT and self.growth("rss") <= GROWTH_LIMIT

    @property
    def fds_met(self) -> bool:
        return self.end.fds - self.base.fds <= FD_SLACK


def trends(samples: Sequence[Sample], warm: float) -> list[Trend]:
    """Per role, from the first sample at or after `warm` seconds (else its last) to the end."""
    found = []
    for role in dict.fromkeys(s.role for s in samples):
        own = [s for s in samples if s.role == role]
        base = next((s for s in own if s.at >= warm), own[-1])
        later = [s for s in own if s.at >= base.at]
        found.append(
            Trend(
                role,
                base,
                own[-1],
                max(s.rss for s in later),
                max(s.pss for s in later),
                max(s.fds for s in later),
                len({s.pid for s in own}),
            )
        )
    return found


def print_trends(found: Sequence[Trend]) -> bool:
    """One line a process; whether every one met both targets."""
    for t in found:
        memory = "; ".join(
            f"{name} {getattr(t.base, field) / MB:.1f} MB at {clock(t.base.at)}, end "
            f"{getattr(t.end, field) / MB:.1f}, max after {getattr(t, f'peak_{field}') / MB:.1f}"
            f" ({t.growth(field):+.1%})"
            for name, field in (("PSS", "pss"), ("RSS", "rss"))
        )
        restarted = f"; {t.pids} processes in turn (restarted)" if t.pids > 1 else ""
        print(
            f"{t.role:<18} {memory}: {'met' if t.memory_met else 'NOT MET'}; fds {t.base.fds} "
            f"-> {t.end.fds} (max {t.peak_fds}): {'met' if t.fds_met else 'NOT MET'}{restarted}"
        )
    return all(t.memory_met and t.fds_met for t in found)


@dataclass(frozen=True)
class Outcomes:
    stored: Counter[str]  # by channel: smtp, imap
    statuses: Counter[str]  # received, done, ignored, quarantined
    reasons: Counter[str]  # of the ignored and quarantined
    outbox: Counter[str]  # queued, sent, failed

    @property
    def waiting(self) -> int:
        return self.statuses["received"] + self.outbox["queued"]


def outcomes(engine: Engine) -> Outcomes:
    with engine.connect() as con:
        intake = con.execute(text("SELECT source, status, count(*) FROM intake GROUP BY 1, 2"))
        stored, statuses = Counter[str](), Counter[str]()
        for source, status, count in intake:
            stored[str(source).partition(":")[0]] += count
            statuses[status] += count
        odd = con.execute(
            text(
                "SELECT status, reason, count(*) FROM intake"
                " WHERE status IN ('ignored', 'quarantined') GROUP BY 1, 2"
            )
        )
        reasons = Counter({f"{status}: {reason}": n for status, reason, n in odd})
        sent = con.execute(text("SELECT status, count(*) FROM outbox GROUP BY 1"))
        outbox = Counter({status: count for status, count in sent})
    return Outcomes(stored, statuses, reasons, outbox)


def print_mail(found: Outcomes, ledger: Ledger) -> tuple[bool, int]:
    """What was sent against what the database holds: whether nothing was lost, and how
    many outcomes were unexpected (quarantined; ignored, but for the list requests, which
    are answered and make no ticket)."""
    by_channel = Counter[str]()
    for kind, count in ledger.sent.items():
        by_channel[kind.split()[0]] += count
    sent = ", ".join(f"{kind} {n}" for kind, n in sorted(ledger.sent.items()))
    refused = ", ".join(f"{kind} {n}" for kind, n in sorted(ledger.refused.items())) or "none"
    print(f"sent: {sent}; refused: {refused}")
    stored_all = all(found.stored[c] == n for c, n in by_channel.items())
    print(
        "stored: "
        + ", ".join(f"{c} {found.stored[c]} of {n}" for c, n in sorted(by_channel.items()))
        + f": {'all' if stored_all else 'NOT ALL'}"
    )
    lists = sum(n for kind, n in ledger.sent.items() if kind.endswith(" list"))
    unexpected = found.statuses["quarantined"] + max(0, found.statuses["ignored"] - lists)
    statuses = ", ".join(f"{s} {n}" for s, n in sorted(found.statuses.items()))
    print(
        f"outcomes: {statuses}; without one: {found.statuses['received']}; unexpected "
        f"(quarantined, or ignored beyond the {lists} list requests): {unexpected}"
    )
    for reason, count in found.reasons.most_common():
        print(f"  {count} {reason}")
    outbox = ", ".join(f"{s} {n}" for s, n in sorted(found.outbox.items()))
    print(f"outbox: {outbox}; mails at the relay: {ledger.delivered}")
    requests = len(ledger.requests)
    missing = ledger.unanswered()
    print(f"requests answered: {requests - len(missing)} of {requests}")
    for request in missing[:5]:
        print(f"  unanswered: {request.kind} {request.message_id} from {request.sender}")
    return stored_all and not found.statuses["received"] and not missing, unexpected


@dataclass(frozen=True)
class LogCheck:
    tracebacks: int
    errors: int  # lines at level error
    examples: list[str]


def check_log(path: Path, keep: int = 5) -> LogCheck:
    tracebacks = errors = 0
    examples: list[str] = []
    with path.open(encoding="utf-8", errors="replace") as log:
        for line in log:
            traceback = "Traceback (most recent call last)" in line
            error = bool(re.search(r"\blevel=(error|critical)\b", line))
            tracebacks += traceback
            errors += error
            if (traceback or error) and len(examples) < keep:
                examples.append(_excerpt(line.strip()))
    return LogCheck(tracebacks, errors, examples)


def _excerpt(line: str, head: int = 160, tail: int = 320) -> str:
    """A long log line's start (when, who) and end: a traceback logged on one line names
    the exception last."""
    return line if len(line) <= head + tail else f"{line[:head]} ... {line[-tail:]}"
