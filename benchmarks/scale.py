"""Scale: a desk of years (default 1,000,000 tickets and about 4,000,000 articles, with
organisations of several contacts, time booked, the mail sent and received, the event log)
on SQLite and on PostgreSQL, against the same work on a database without those years, in
the same run:

- ingest (`mailgate ingest`'s path) and `mailgate run` taking SMTP until every
  acknowledgement is at a sink relay: into the big desk against into an empty database;
- the commands staff run (lists with common filters, stats, report time, exports of the
  recent tickets): on the big desk against the recent desk, which holds the same people
  and only the last tickets (a tenth, at most 100,000): what the commands show is the same
  on both, so the ratio is what the years before cost. They run in this process through
  the command line itself (click's CliRunner, the arguments as typed; scale_commands), so
  Python's start and imports, the same on both desks, are left out;
- what migrations 0023 and 0024 changed, before and after, in the same run (scale_fixes).

Each figure is printed with its ratio full/empty (or full/recent) and the target: ingest and
SMTP at least 0.9x, each command at most 1.5x, lists and stats under 1 s.

The desks are written by bulk inserts at the schema before the search index, then migrated
to the newest revision (search_dbs). `--keep DIR --reuse` keeps them between runs; what the
mail adds to the big desk is deleted after each round.

PostgreSQL: `--database postgresql://user@host:port` (default $MAILGATE_TEST_PG, else
postgresql://postgres@127.0.0.1:5432, trust); the benchmark creates its databases there."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from scale_commands import FULL, OPEN, RECENT, Timing, desk_commands, time_commands
from scale_desk import NOW, Plan, write_desk
from scale_fixes import COMMANDS as FIXED_COMMANDS
from scale_fixes import FTS5_AUTOMERGE, as_before, automerge, merging_at
from scale_intake import (
    EMPTY,
    Smtp,
    connect,
    empty_database,
    measure_ingest,
    measure_smtp,
    scalar,
)
from search_dbs import (
    Db,
    analyze_unanalyzed,
    drop,
    exists,
    fill_with,
    load_state,
    migrate,
    postgres_db,
    revision,
    save_state,
    sqlite_db,
)
from search_desk import Desk, make_desk
from servers import free_port, mailgate_toml

from mailgate.store.database import head_revision

SERVER = os.environ.get("MAILGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
INGEST_TARGET, COMMAND_TARGET = 0.9, 1.5
MONTH = f"{NOW.year}-{NOW.month - 1:02d}" if NOW.month > 1 else f"{NOW.year - 1}-12"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", type=int, default=1_000_000, help="default 1000000")
    parser.add_argument(
        "--recent", type=int, default=None, help="the recent desk (default a tenth, <= 100000)"
    )
    parser.add_argument("--dbs", default="sqlite,postgres", help="default sqlite,postgres")
    parser.add_argument("--database", default=SERVER, help="the PostgreSQL server")
    parser.add_argument("--seed", type=int, default=1, help="data seed (default 1)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs a command (3)")
    parser.add_argument("--messages", type=int, default=400, help="ingested a round (400)")
    parser.add_argument(
        "--rounds", type=int, default=8, help="ingest: rounds, empty and full in turn (8)"
    )
    parser.add_argument("--smtp-messages", type=int, default=1000, help="a round (1000)")
    parser.add_argument("--smtp-rounds", type=int, default=8, help="SMTP rounds (8)")
    parser.add_argument("--clients", type=int, default=8, help="SMTP clients (8)")
    parser.add_argument("--timeout", type=float, default=1800, help="SMTP drain limit, s")
    parser.add_argument("--keep", metavar="DIR", help="keep the generated desks in DIR")
    parser.add_argument("--reuse", action="store_true", help="use the desks kept in --keep DIR")
    parser.add_argument(
        "--prepare-only", action="store_true", help="generate (or reuse) the desks, then stop"
    )
    args = parser.parse_args(argv)
    args.dbs = [d.strip() for d in args.dbs.split(",") if d.strip()]
    if not args.dbs or set(args.dbs) - {"sqlite", "postgres"}:
        parser.error("--dbs: sqlite, postgres or both, comma-separated")
    if args.reuse and not args.keep:
        parser.error("--reuse needs --keep DIR")
    if args.recent is None:
        args.recent = max(1, min(100_000, args.tickets // 10))
    if args.rounds < 2 or args.smtp_rounds < 2:
        parser.error("--rounds, --smtp-rounds: at least 2 (empty, full)")
    if not 0 < args.recent < args.tickets:
        parser.error("--recent: fewer than --tickets, at least 1")
    return args


# The desks -----------------------------------------------------------------------------------


def desk_db(kind: str, which: str, work: Path, args: argparse.Namespace) -> Db:
    if kind == "sqlite":
        return sqlite_db(work / f"scale-{which}.db")
    name = f"mailgate_scale_{which}_{args.tickets}_{args.seed}" if args.keep else None
    return postgres_db(args.database.rstrip("/"), name)


def prepare(db: Db, desk: Desk, plan: Plan, full: bool, entry: dict[str, Any], reuse: bool) -> bool:
    """The desk in `db`, generated or reused, at the newest schema; True if generated now."""
    same = entry.get("tickets") == plan.tickets and entry.get("recent") == plan.recent
    generated = False
    if not (reuse and same and entry.get("seed") == plan.seed and exists(db)):
        entry.clear()
        start = time.perf_counter()
        counts = fill_with(db, plan.tickets, lambda write: write_desk(desk, plan, full, write))
        entry.update(
            tickets=plan.tickets,
            recent=plan.recent,
            seed=plan.seed,
            generated=time.perf_counter() - start,
            counts=counts,
        )
        generated = True
    if revision(db) != head_revision():
        entry["migrated"] = migrate(db, "head")
        entry["revision"] = head_revision()
        if db.kind == "postgres":
            # As autovacuum does after a load: the visibility map lets an index be read
            # without the table (stats), and the planner has its statistics.
            start = time.perf_counter()
            with psycopg.connect(db.dsn, autocommit=True) as pg:
                pg.execute("VACUUM (ANALYZE)")
            entry["vacuumed"] = time.perf_counter() - start
    return generated


def print_prepared(db: Db, which: str, entry: dict[str, Any], generated: bool) -> None:
    counts = entry["counts"]
    made = ", ".join(f"{n} {name}" for name, n in counts.items())
    how = "generated" if generated else "reused, generated earlier"
    rate = counts["tickets"] / entry["generated"]
    print(f"{db.kind} {which} desk: {made}")
    print(f"  {how} in {entry['generated']:.1f} s ({rate:.0f} tickets/s with all their rows)")
    if "migrated" in entry:
        print(
            f"  migrated to {entry['revision']} (the search index built) in "
            f"{entry['migrated']:.1f} s"
            + (f", VACUUM (ANALYZE) {entry['vacuumed']:.1f} s" if "vacuumed" in entry else "")
        )


def prepare_all(dbs: dict[str, Db], desk: Desk, plan: Plan, args: argparse.Namespace) -> None:
    work = Path(args.keep) if args.keep else None
    state = load_state(work) if work else {}
    for which, db in dbs.items():
        entry = state.setdefault(f"{db.kind}-{which}", {})
        generated = prepare(db, desk, plan, which == FULL, entry, args.reuse)
        if work:
            save_state(work, state)
        print_prepared(db, which, entry, generated)
        analyzed = analyze_unanalyzed(db)
        if analyzed:
            print(f"  ANALYZE of {', '.join(analyzed)}, never analyzed yet")
    sys.stdout.flush()


def busiest_customer(db: Db) -> str:
    """The organisation with the most tickets in the desk's last month: open tickets and
    time in the month to show."""
    since = (NOW - timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S")
    conn = connect(db)
    try:
        return str(
            scalar(
                conn,
                "SELECT o.name FROM ticket t JOIN organisation o ON o.id = t.organisation_id "
                f"WHERE t.created_at >= '{since}' GROUP BY o.name "
                "ORDER BY count(*) DESC, o.name LIMIT 1",
            )
        )
    finally:
        conn.close()


# Figures -------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def print_rates(label: str, rates: dict[str, list[float]]) -> bool:
    empty, full = statistics.median(rates[EMPTY]), statistics.median(rates[FULL])
    ratio = full / empty if empty else 0.0
    each = " / ".join(", ".join(f"{r:.0f}" for r in rates[w]) for w in (EMPTY, FULL))
    print(
        f"  {label:<50}{empty:>10.1f}{full:>10.1f}{ratio:>8.3f}x  >= {INGEST_TARGET}x  "
        f"{verdict(ratio >= INGEST_TARGET):<8} (rounds {each})",
        flush=True,
    )
    return ratio >= INGEST_TARGET


def command_met(timing: Timing) -> bool:
    under = timing.command.under
    fast = under is None or timing.median(FULL) < under
    return timing.ratio <= COMMAND_TARGET and fast


def print_timing(timing: Timing) -> None:
    command = timing.command
    target = f"<= {COMMAND_TARGET}x" + (f", < {command.under:.0f} s" if command.under else "")
    shown = timing.showed[RECENT]
    same = "" if shown == timing.showed[FULL] else f" / {timing.showed[FULL]}"
    print(
        f"  {command.label:<50}{timing.median(RECENT):>9.3f}s{timing.median(FULL):>9.3f}s"
        f"{timing.ratio:>8.3f}x  {target:<16}{verdict(command_met(timing)):<8} ({shown}{same})",
        flush=True,
    )


def print_before_after(before: Timing, after: Timing) -> None:
    print(
        f"  {after.command.label:<50}recent {before.median(RECENT):.3f}s -> "
        f"{after.median(RECENT):.3f}s, full {before.median(FULL):.3f}s -> "
        f"{after.median(FULL):.3f}s, full/recent {before.ratio:.2f}x -> {after.ratio:.2f}x",
        flush=True,
    )


# The run -------------------------------------------------------------------------------------


def commands_section(
    dbs: dict[str, Db], desk: Desk, plan: Plan, args: argparse.Namespace, work: Path
) -> list[bool]:
    """The commands on both desks, then those 0023 and 0024 serve, before and after."""
    kind = dbs[FULL].kind
    customer, agent = busiest_customer(dbs[RECENT]), desk.agents[0].email
    day = plan.first_recent_day().date().isoformat()
    print(f"ORG {customer!r}, AGENT {agent}, OPEN {OPEN}, MONTH {MONTH}, DAY {day}")
    print(f"the commands' clock: {NOW:%Y-%m-%d %H:%M} UTC, the desk's last day")
    port = free_port()
    configs = {
        which: mailgate_toml(work, port, name=f"{kind}-{which}", database=db.url)
        for which, db in dbs.items()
    }
    print(
        f"\n{kind}: commands, {plan.recent} recent tickets against {plan.tickets} "
        f"(median of {args.repeat} runs in process, the long ones of 2):"
    )
    print(f"  {'command':<50}{'recent':>10}{'full':>10}{'ratio':>9}  {'target':<16}")
    commands = desk_commands(customer, agent, MONTH, day, work)
    timings = time_commands(configs, commands, NOW, args.repeat, print_timing)
    for name in ("export.csv", "export.xlsx"):
        (work / name).unlink(missing_ok=True)
    fixed = [c for c in commands if c.label in FIXED_COMMANDS]
    print(
        f"\n{kind}: before and after 0023 and 0024 (report time without 0023's index; stats "
        "counting the tickets through the index 0023 made for it, as before 0024):"
    )
    with as_before(list(dbs.values())):
        before = time_commands(configs, fixed, NOW, args.repeat)
    after = time_commands(configs, fixed, NOW, args.repeat)
    for was, now in zip(before, after, strict=True):
        print_before_after(was, now)
    return [command_met(t) for t in timings]


def mail_section(
    dbs: dict[str, Db], plan: Plan, args: argparse.Namespace, work: Path
) -> list[bool]:
    """Ingest and SMTP into an empty database and into the big desk (put back after)."""
    kind, full = dbs[FULL].kind, dbs[FULL]
    server = args.database.rstrip("/")
    print(f"\n{kind}: mail, an empty database against the {plan.tickets} tickets (msg/s):")
    print(f"  {'figure':<50}{'empty':>10}{'full':>10}{'ratio':>9}")
    met, data = [], work / "ingest"
    with empty_database(kind, data, server) as empty:
        pair = {EMPTY: empty, FULL: full}
        ingest = measure_ingest(pair, data, args.messages, args.seed, args.rounds)
        met.append(print_rates(f"ingest, {args.messages} mails a round", ingest.rates))
        counted = ", ".join(f"{name} {n}" for name, n in ingest.outcomes.most_common())
        print(f"  ingest outcomes: {counted}")
        level = automerge(full)
        if level is not None and level != FTS5_AUTOMERGE:
            with merging_at([empty, full], FTS5_AUTOMERGE):
                before = measure_ingest(pair, data, args.messages, args.seed + 1, args.rounds)
            label = f"ingest before 0023 (search index merging at {FTS5_AUTOMERGE}, not {level})"
            print_rates(label, before.rates)
    shutil.rmtree(data, ignore_errors=True)
    smtp: Smtp = measure_smtp(full, work, server, args)
    label = f"SMTP intake, {args.smtp_messages} mails, {args.clients} clients"
    met.append(print_rates(label, smtp.intake))
    met.append(print_rates("SMTP end to end (acknowledgements at the sink)", smtp.end_to_end))
    print(f"  mail at the sink: empty {smtp.sent[EMPTY]}, full {smtp.sent[FULL]}")
    return met


def run_one(
    dbs: dict[str, Db], desk: Desk, plan: Plan, args: argparse.Namespace, work: Path
) -> None:
    prepare_all(dbs, desk, plan, args)
    if args.prepare_only:
        return
    met = commands_section(dbs, desk, plan, args, work)
    met += mail_section(dbs, plan, args, work)
    print(f"\n{dbs[FULL].kind}: {sum(met)} of {len(met)} targets met\n", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print("mailgate scale benchmark")
    print(
        f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.platform()}"
    )
    plan = Plan(args.tickets, args.recent, args.seed)
    print(f"desk of {args.tickets} tickets (recent desk: the last {args.recent}), seed {args.seed}")
    print()
    with tempfile.TemporaryDirectory(prefix="mailgate-scale-") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        desk = make_desk(args.tickets, args.seed)
        for kind in args.dbs:
            dbs = {which: desk_db(kind, which, work, args) for which in (FULL, RECENT)}
            try:
                run_one(dbs, desk, plan, args, work)
            finally:
                if not args.keep:
                    for db in dbs.values():
                        drop(db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
