"""Search on a large desk (default 500,000 tickets, 2,000,000 articles) on SQLite and on
PostgreSQL: p50/p95 latency and hits of 20 representative queries, the index's size against
the tables and the text it indexes, and the ingest rate with the index against without it.

The desk is written by bulk inserts at the schema before the search index (revision 0015),
then migrated to the newest revision, which builds the index for the rows already there.
`--keep DIR --reuse` keeps the desks between runs instead of generating them again.

PostgreSQL: `--database postgresql://user@host:port` (default $MAILGATE_TEST_PG, else
postgresql://postgres@127.0.0.1:5432, trust); the benchmark creates its databases there."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from search_dbs import (
    Db,
    analyze_unanalyzed,
    drop,
    exists,
    fill,
    load_state,
    migrate,
    postgres_db,
    revision,
    save_state,
    sizes,
    sqlite_db,
    text_bytes,
)
from search_desk import Desk, make_desk
from search_ingest import measure_ingest
from search_queries import (
    COUNT_LIMIT,
    QUERIES,
    Row,
    explain,
    has_engine,
    probes,
    time_queries,
)

from mailgate.store.database import head_revision

SERVER = os.environ.get("MAILGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
P95_TARGET_MS, SIZE_TARGET, INGEST_TARGET = 300.0, 1.0, 0.85
MB = 1e6


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", type=int, default=500_000, help="default 500000")
    parser.add_argument("--dbs", default="sqlite,postgres", help="default sqlite,postgres")
    parser.add_argument("--database", default=SERVER, help="the PostgreSQL server")
    parser.add_argument("--seed", type=int, default=1, help="data seed (default 1)")
    parser.add_argument("--repeat", type=int, default=15, help="timed runs a query (default 15)")
    parser.add_argument("--limit", type=int, default=50, help="hits a query (default 50)")
    parser.add_argument(
        "--messages", type=int, default=400, help="ingested a round, 4 rounds (default 400)"
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="ingest: groups of 4 rounds (default 2)"
    )
    parser.add_argument(
        "--explain", action="store_true", help="print the plans of the queries over the target"
    )
    parser.add_argument(
        "--pg-set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a PostgreSQL setting for the searches' connections, e.g. jit=off",
    )
    parser.add_argument(
        "--skip-queries", action="store_true", help="only sizes and the ingest rates"
    )
    parser.add_argument("--keep", metavar="DIR", help="keep the generated desks in DIR")
    parser.add_argument("--reuse", action="store_true", help="use the desks kept in --keep DIR")
    parser.add_argument(
        "--prepare-only", action="store_true", help="generate (or reuse) the desks, then stop"
    )
    parser.add_argument("--quick", action="store_true", help="a tiny run: 1000 tickets")
    args = parser.parse_args(argv)
    if args.quick:
        args.tickets, args.repeat, args.messages, args.rounds = 1000, 3, 12, 1
    args.dbs = [d.strip() for d in args.dbs.split(",") if d.strip()]
    if not args.dbs or set(args.dbs) - {"sqlite", "postgres"}:
        parser.error("--dbs: sqlite, postgres or both, comma-separated")
    if args.reuse and not args.keep:
        parser.error("--reuse needs --keep DIR")
    return args


# The kept desks -----------------------------------------------------------------------------


def kept_db(kind: str, work: Path, args: argparse.Namespace, kept: bool) -> Db:
    if kind == "sqlite":
        return sqlite_db(work / "search.db")
    name = f"mailgate_search_{args.tickets}_{args.seed}" if kept else None
    db = postgres_db(args.database.rstrip("/"), name)
    db.settings = tuple(args.pg_set)
    return db


def prepare(db: Db, desk: Desk, args: argparse.Namespace, entry: dict[str, Any]) -> bool:
    """The desk in `db`, generated or reused, with its index; True when generated now."""
    same = entry.get("tickets") == args.tickets and entry.get("seed") == args.seed
    generated = False
    if not (args.reuse and same and exists(db)):
        entry.clear()
        start = time.perf_counter()
        articles, attachments = fill(db, desk, args.seed)
        entry.update(
            tickets=args.tickets,
            seed=args.seed,
            generated=time.perf_counter() - start,
            articles=articles,
            attachments=attachments,
            before=sizes(db),
            text=text_bytes(db),
        )
        generated = True
    if revision(db) != head_revision():
        entry["index"] = migrate(db, "head")
        entry["revision"] = head_revision()
        entry["index_code"] = index_code()
    return generated


def index_code() -> str:
    """A digest of the code that builds the index: a kept desk indexed by other code (the
    same revision, changed since) is not what this mailgate would build."""
    import hashlib

    import mailgate.search
    from mailgate.store.database import MIGRATIONS

    files = sorted(Path(mailgate.search.__file__).parent.glob("*.py"))
    files += sorted((MIGRATIONS / "versions").glob("*.py"))
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]


def print_prepared(db: Db, entry: dict[str, Any], generated: bool) -> None:
    how = "generated" if generated else "reused, generated earlier"
    print(
        f"{db.kind}: {entry['tickets']} tickets, {entry['articles']} articles, "
        f"{entry['attachments']} attachments, text {entry['text'] / MB:.1f} MB; "
        f"{how} in {entry['generated']:.1f} s"
    )
    if "index" in entry:
        print(
            f"{db.kind}: index built by the migration to {entry['revision']} in "
            f"{entry['index']:.1f} s"
        )
    else:
        print(f"{db.kind}: no migration after 0015 (no search index in this mailgate)")
    if entry.get("index_code", index_code()) != index_code():
        print(
            f"{db.kind}: WARNING: the kept index was built by other code than this "
            "mailgate's: run without --reuse to build it anew"
        )


# Sizes --------------------------------------------------------------------------------------


def print_sizes(db: Db, entry: dict[str, Any]) -> None:
    """The objects the migration added are the index; existing tables that grew (a column
    added to them) count as index too."""
    before: dict[str, list[Any]] = entry["before"]
    after = sizes(db)
    tables = sum(size for name, (_, size) in after.items() if name in before)
    new = {name: size for name, (_, size) in after.items() if name not in before}
    grown = {
        name: size - before[name][1]
        for name, (_, size) in after.items()
        if name in before and size > before[name][1] * 1.02 and not name.startswith("sqlite_")
    }
    article = sum(
        size for name, (table, size) in after.items() if table == "article" and name in before
    )
    index = sum(new.values()) + sum(grown.values())
    text = entry["text"]
    print(f"sizes ({db.kind}):")
    print(
        f"  tables and their indexes before the search index: {tables / MB:.1f} MB "
        f"(article with its indexes {article / MB:.1f} MB)"
    )
    top = sorted(new.items(), key=lambda item: -item[1])
    listed = ", ".join(f"{name} {size / MB:.1f}" for name, size in top[:8])
    print(f"  search index: {index / MB:.1f} MB in {len(new)} new objects ({listed or '-'})")
    if grown:
        print("  grown: " + ", ".join(f"{n} +{s / MB:.1f} MB" for n, s in grown.items()))
    ratio = index / text if text else 0.0
    verdict = "ok" if ratio <= SIZE_TARGET else "OVER"
    print(
        f"  index / text it indexes ({text / MB:.1f} MB): {ratio:.2f}x "
        f"(target <= {SIZE_TARGET:.1f}x: {verdict}); index / tables {index / max(tables, 1):.2f}x"
    )


def print_plans(db: Db, rows: list[Row], limit: int) -> None:
    """Each plan once (on SQLite most slow queries share theirs)."""
    shown: dict[str, str] = {}
    for label, query_text, _, _, p95 in rows:
        if p95 > P95_TARGET_MS:
            plan = "\n".join(explain(db, query_text, limit))
            if plan in shown and db.kind == "sqlite":
                print(f"plan of {label}: {query_text} ({db.kind}): as for {shown[plan]}")
                continue
            shown[plan] = label
            print(f"plan of {label}: {query_text} ({db.kind}):")
            print(plan)


# Run ----------------------------------------------------------------------------------------


def print_queries(db: Db, timed: Iterator[Row], args: Any) -> list[Row]:
    """Each query's row as soon as it is measured (PostgreSQL's take a while)."""
    print()
    print(
        f"queries ({db.kind}, up to {args.limit} hits each, {args.repeat} timed runs after "
        "2 warm-up runs; hits counted up to 10000):"
    )
    print(f"{'query':<58}{'hits':>7}{'p50 ms':>9}{'p95 ms':>9}")
    rows = []
    for label, text, hits, p50, p95 in timed:
        shown = f"{label}: {text}"
        shown = shown if len(shown) <= 56 else shown[:55] + "…"
        counted = f"{hits}+" if hits >= COUNT_LIMIT else str(hits)
        print(f"{shown:<58}{counted:>7}{p50:>9.1f}{p95:>9.1f}", flush=True)
        rows.append((label, text, hits, p50, p95))
    slow = [label for label, _, _, _, p95 in rows if p95 > P95_TARGET_MS]
    print(
        f"p95 <= {P95_TARGET_MS:.0f} ms: {len(rows) - len(slow)} of {len(rows)} queries"
        + (f"; over: {', '.join(slow)}" if slow else "")
    )
    if rows:
        print(f"median p50 {statistics.median(r[3] for r in rows):.1f} ms")
    return rows


def run_one(db: Db, desk: Desk, args: argparse.Namespace, work: Path, state: dict) -> None:
    entry = state.setdefault(db.kind, {})
    generated = prepare(db, desk, args, entry)
    if args.keep:
        save_state(work, state)
    print_prepared(db, entry, generated)
    start = time.perf_counter()
    analyzed = analyze_unanalyzed(db)
    if analyzed:
        print(
            f"{db.kind}: ANALYZE of {', '.join(analyzed)}, never analyzed yet (autovacuum "
            f"had not come to it): {time.perf_counter() - start:.1f} s"
        )
    sys.stdout.flush()
    if args.prepare_only:
        return
    print_sizes(db, entry)
    if args.skip_queries:
        pass
    elif not has_engine():
        print(f"queries ({db.kind}): skipped, this mailgate has no search engine")
    else:
        timed = time_queries(db, probes(db, desk), args.repeat, args.limit)
        rows = print_queries(db, timed, args)
        if args.explain:
            print_plans(db, rows, args.limit)
    print()
    server = args.database.rstrip("/")
    figure = measure_ingest(db.kind, work, server, args.messages, args.seed, args.rounds)
    for line in figure.lines():
        print(line)
    ratio = figure.ratio
    if ratio is not None:
        verdict = "ok" if ratio >= INGEST_TARGET else "UNDER"
        print(f"ingest with / without: {ratio:.3f}x (target >= {INGEST_TARGET}x: {verdict})")
    print()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print("mailgate search benchmark")
    print(
        f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.platform()}"
    )
    print(f"{len(QUERIES)} queries; desk of {args.tickets} tickets, seed {args.seed}")
    if args.pg_set:
        print(f"PostgreSQL searches with {', '.join(args.pg_set)}")
    print()
    with tempfile.TemporaryDirectory(prefix="mailgate-search-") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        state = load_state(work) if args.reuse else {}
        desk = make_desk(args.tickets, args.seed)
        for kind in args.dbs:
            db = kept_db(kind, work, args, bool(args.keep))
            try:
                run_one(db, desk, args, work, state)
            finally:
                if not args.keep:
                    drop(db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
