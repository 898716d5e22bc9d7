"""The scale benchmark still runs: a desk of 300 tickets with its history, every figure
printed on each database, the desk's counts right, and the big desk as it was after the
mail went into it."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from types import ModuleType

import psycopg
import pytest

from tests.test_benchmarks import load

TICKETS, RECENT = 300, 30
ARGV = ["--tickets", str(TICKETS), "--messages", "8", "--smtp-messages", "8"]
ARGV += ["--clients", "2", "--repeat", "1", "--rounds", "2", "--smtp-rounds", "2"]
NUMBER = r"[\d.]+"


def _desk_line(out: str, kind: str, which: str) -> dict[str, int]:
    line = re.search(rf"^{kind} {which} desk: (.*)$", out, re.M)
    assert line is not None, out
    return {name: int(n) for n, name in re.findall(r"(\d+) ([a-z ]+?)(?:,|$)", line[1])}


def _check_desks(out: str, kind: str) -> None:
    full, recent = _desk_line(out, kind, "full"), _desk_line(out, kind, "recent")
    assert (full["tickets"], recent["tickets"]) == (TICKETS, RECENT)
    # The same people in both; two to six articles a ticket, four on average.
    for counts in (full, recent):
        assert (counts["organisations"], counts["contacts"]) == (TICKETS // 20, TICKETS // 5)
        assert 3 * counts["tickets"] < counts["articles"] < 5 * counts["tickets"]
        # Every article came in as a mail; each answer and request sent mail out.
        assert counts["intake"] == counts["articles"]
        assert counts["outbox"] > counts["articles"]
        assert 0 < counts["time entries"] < counts["articles"]
    assert re.search(rf"^  generated in {NUMBER} s \(\d+ tickets/s", out, re.M), out
    assert f"migrated to {head()}" in out


def head() -> str:
    from mailgate.store.database import head_revision

    return head_revision()


def _check_figures(out: str, kind: str) -> None:
    rows = re.findall(
        rf"^  (.+?)\s+({NUMBER})s\s+({NUMBER})s\s+({NUMBER})x  <= 1.5x.*?(met|NOT met)\s+\((.*)\)$",
        out,
        re.M,
    )
    assert len(rows) == 11, out
    shown = {label: what for label, *_, what in rows}
    assert shown["stats"] == f"{RECENT} tickets in all / {TICKETS} tickets in all"
    # Both desks showed the same tickets: the recent ones are in both.
    for label, what in shown.items():
        if label != "stats":
            assert " / " not in what, (label, what)
    exported = re.match(
        r"(\d+) tickets, (\d+) articles", shown["export --created-from DAY -o x.xlsx"]
    )
    assert exported is not None and 0 < int(exported[1]) <= RECENT
    assert len(re.findall(r"full/recent [\d.]+x -> [\d.]+x$", out, re.M)) == 2, out
    mail = re.findall(
        rf"^  (ingest|SMTP)[^\n]*?\s+({NUMBER})\s+({NUMBER})\s+({NUMBER})x", out, re.M
    )
    assert len(mail) == (4 if kind == "sqlite" else 3), out  # SQLite: ingest before 0023 too
    assert "ingest outcomes: done 16\n" in out
    assert re.search(rf"^{kind}: \d+ of 14 targets met$", out, re.M), out


def _counted(bench: ModuleType, kind: str, keep: Path, argv: list[str], sql: str) -> int:
    db = bench.desk_db(kind, "full", keep, bench.parse_args(argv))
    if kind == "sqlite":
        with sqlite3.connect(db.path) as conn:
            return int(conn.execute(sql).fetchone()[0])
    with psycopg.connect(db.dsn) as pg:
        row = pg.execute(sql).fetchone()  # type: ignore[arg-type]
    return int(row[0]) if row else 0


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_scale_benchmark_runs_on_a_tiny_desk(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load("scale", monkeypatch)
    keep = tmp_path / "keep"
    argv = [*ARGV, "--dbs", kind, "--keep", str(keep)]
    try:
        assert bench.main(argv) == 0
        out = capsys.readouterr().out
        _check_desks(out, kind)
        _check_figures(out, kind)
        # The mail went into the big desk and out again: it is the desk that was generated.
        assert _counted(bench, kind, keep, argv, "SELECT count(*) FROM ticket") == TICKETS
        # And so are the counts `stats` shows.
        tally = "SELECT sum(tickets) FROM ticket_tally"
        assert _counted(bench, kind, keep, argv, tally) == TICKETS
        assert bench.main([*argv, "--reuse", "--prepare-only"]) == 0
        again = capsys.readouterr().out
        assert re.search(rf"^  reused, generated earlier in {NUMBER} s", again, re.M), again
    finally:  # the kept PostgreSQL databases
        args = bench.parse_args(argv)
        for which in ("full", "recent"):
            bench.drop(bench.desk_db(kind, which, keep, args))
