"""`mailgate search` and `tickets list --text` as staff run them, on both databases."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import Clock
from tests.mailroom import Mailroom
from tests.mails import make_mail
from tests.test_cli_startup import HEAVY, REPO
from tests.test_retention import console

JANE = "jane@acme.example"


def test_mail_is_found_as_soon_as_ingest_returns(room: Mailroom, clock: Clock) -> None:
    room.ingest(
        make_mail(
            subject="Drucker streikt", body="Der Drucker im 2. Stock zieht kein Papier ein.\n"
        )
    )
    clock.advance(hours=1)
    room.ingest(make_mail(subject="Papier bestellen", body="Bitte 10 Kartons.\n", sender=JANE))
    done = console(room, "search", "papier", "--format", "json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["cid"] for r in rows] == ["CID-1001", "CID-1000"]  # the subject match first
    assert set(rows[0]) == {
        "ticket_id", "cid", "subject", "status", "last_activity", "score", "snippet"
    }  # fmt: skip
    assert rows[1]["subject"] == "Drucker streikt" and rows[1]["status"] == "open"
    assert "zieht kein Papier ein." in rows[1]["snippet"]
    assert rows[1]["last_activity"] == "2026-11-02T09:00:00+00:00"


def test_the_table_shows_ticket_status_subject_and_the_match(room: Mailroom) -> None:
    room.ingest(make_mail(subject="Printer broken", body="It jams on every second page.\n"))
    result = room.run("search", "jams")
    assert result.returncode == 0, result.stderr
    for shown in (
        "CID-1000",
        "open",
        "Printer broken",
        "It jams on every second page.",
        "1 ticket found",
    ):
        assert shown in result.stdout
    assert room.run("search", "nothing-like-it").stdout.endswith("0 tickets found\n")


def test_a_leading_dash_excludes_and_limit_cuts(room: Mailroom, clock: Clock) -> None:
    for subject in ("Printer broken", "Printer jams", "Printer toner"):
        room.ingest(make_mail(subject=subject))
        clock.advance(minutes=5)
    rows = room.json("search", "printer", "-jams")
    assert [r["subject"] for r in rows] == ["Printer toner", "Printer broken"]
    assert [r["subject"] for r in room.json("search", "printer", "--limit", "1")] == [
        "Printer toner"
    ]


def test_a_bad_query_is_one_line_and_exit_64(room: Mailroom) -> None:
    room.ingest(make_mail())
    for query, message in (
        ('"printer', "a quote is not closed"),
        ("x" * 10_240, "the query is 10240 characters long; at most 1000"),
        ("*", "a * goes at the end of a word"),
        ("is:maybe", "is:maybe is not one of open, working, hold, delivered, closed"),
    ):
        done = console(room, "search", query)
        assert (done.returncode, done.stdout) == (64, ""), done.stderr
        assert done.stderr.startswith(f"mailgate: search: {message}"), done.stderr
        assert done.stderr.count("\n") == 1
        assert "Traceback" not in done.stderr and "fts5" not in done.stderr


def test_tickets_list_text_is_a_search_and_the_other_filters_apply(room: Mailroom) -> None:
    room.ingest(make_mail(subject="Rechnungsnummer fehlt", body="Herr Müller fragt nach.\n"))
    room.ingest(make_mail(subject="Other", body="Mr Mueller again.\n", sender=JANE))
    assert [r["cid"] for r in room.json("tickets", "list", "--text", "mueller")] == [
        "CID-1000",
        "CID-1001",
    ]
    assert [r["cid"] for r in room.json("tickets", "list", "--text", "rechnung*")] == ["CID-1000"]
    listed = room.json("tickets", "list", "--text", "mueller", "--status", "closed")
    assert listed == []
    bad = room.run("tickets", "list", "--text", '"open')
    assert bad.returncode == 64
    assert bad.stderr.startswith("mailgate: --text: a quote is not closed")


def test_a_forgotten_customers_words_are_no_longer_found(room: Mailroom) -> None:
    room.ingest(
        make_mail(
            subject="Kündigung",
            body="Ich kündige zum 31.12., Jane Roe, Lindenweg 5.\n",
            sender=f"Jane Roe <{JANE}>",
            attachments=(("kuendigung-roe.pdf", "application/pdf", b"%PDF-1.4"),),
        )
    )
    assert [r["cid"] for r in room.json("search", "lindenweg")] == ["CID-1000"]
    assert room.run("customers", "forget", JANE, "--yes").returncode == 0
    for query in ("lindenweg", f"from:{JANE}", "from:roe", "file:kuendigung-roe.pdf"):
        assert room.json("search", query) == [], query


def test_search_help_loads_no_database_library() -> None:
    probe = (
        "import json, sys\n"
        "from mailgate.cli import run_cli\n"
        "status = run_cli(['search', '--help'])\n"
        f"heavy = sorted(m for m in sys.modules if m.partition('.')[0] in {HEAVY!r})\n"
        "print(json.dumps({'status': status, 'heavy': heavy}), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert json.loads(result.stderr.strip().splitlines()[-1]) == {"status": 0, "heavy": []}
    assert "from:ADDRESS-OR-DOMAIN" in result.stdout
