"""Migration 0016 indexes the tickets, mail, attachments and references already there."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session

from mailgate.search import build
from mailgate.search.engine import search
from mailgate.store.database import Store
from mailgate.store.models import (
    Article,
    Attachment,
    Blob,
    Contact,
    Organisation,
    Ticket,
    TicketReference,
)
from tests.test_migrations import store_at

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def old_desk(session: Session, tickets: int) -> None:
    """Rows as a desk at 0015 holds them: no search index yet."""
    org = Organisation(name="Müller Bau GmbH", created_at=NOW)
    session.add(org)
    session.flush()
    contact = Contact(
        email="juergen@mueller-bau.de", name="Jürgen", organisation_id=org.id or 0, created_at=NOW
    )
    session.add(contact)
    session.add(Blob(sha256="0" * 64, size=4, path="blobs/00"))
    session.flush()
    for n in range(tickets):
        ticket = Ticket(
            number=1000 + n,
            subject=f"Rechnung {n}",
            organisation_id=org.id or 0,
            requester_id=contact.id or 0,
            source="smtp",
            created_at=NOW,
            updated_at=NOW,
            last_action_at=NOW,
        )
        session.add(ticket)
        session.flush()
        article = Article(
            ticket_id=ticket.id or 0,
            direction="customer",
            from_addr="juergen@mueller-bau.de",
            from_name="Jürgen Müller",
            to_addrs="support@example.com",
            text=f"Die Lieferung Nummer {n} kam nicht an.",
            created_at=NOW,
        )
        session.add(article)
        session.flush()
        session.add(
            Attachment(
                article_id=article.id or 0,
                filename=f"lieferschein-{n}.pdf",
                content_type="application/pdf",
                size=4,
                sha256="0" * 64,
            )
        )
        session.add(TicketReference(ticket_id=ticket.id or 0, reference=f"ORDER-{4700 + n}"))
    session.commit()


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_upgrade_indexes_what_the_desk_already_holds(
    db: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_at(db, tmp_path, request, "0015")
    monkeypatch.setattr(build, "BATCH", 7)  # several batches for every table
    with Session(store.engine) as session:
        old_desk(session, tickets=25)
    assert store.upgrade() == store.head_revision()
    with store.session() as session:
        assert [h.cid for h in search(session, "lieferung 17")] == ["CID-1017"]
        assert len(search(session, "mueller", limit=100)) == 25  # the sender, the org
        assert [h.cid for h in search(session, "ref:ORDER-4703")] == ["CID-1003"]
        assert [h.cid for h in search(session, "file:lieferschein-21.pdf")] == ["CID-1021"]
        assert [h.cid for h in search(session, '"rechnung 24"')] == ["CID-1024"]
        assert len(search(session, "org:mueller", limit=100)) == 25
        assert [h.cid for h in search(session, "file:*schein-21")] == ["CID-1021"]
        assert [h.cid for h in search(session, "ref:*r-4703")] == ["CID-1003"]
    # Down and up again: the index goes with its triggers and comes back whole.
    with store.engine.begin() as conn:
        build.remove_parts(conn)
        build.remove_documents(conn)
        build.remove(conn)
        build.install(conn, progress=False)
        build.install_documents(conn, progress=False)
        build.install_parts(conn, progress=False)
    with store.session() as session:
        assert [h.cid for h in search(session, "lieferung 17")] == ["CID-1017"]
        assert [h.cid for h in search(session, "*schein-17")] == ["CID-1017"]
        count = session.connection().execute(text("SELECT count(*) FROM ticket")).scalar()
        assert count == 25
    store.dispose()


def test_the_progress_bar_counts_every_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = store_at("sqlite", tmp_path, None, "0015")  # type: ignore[arg-type]
    with Session(store.engine) as session:
        old_desk(session, tickets=3)
    with store.engine.begin() as conn:
        build.install(conn, progress=True)
    assert "indexing" in capsys.readouterr().err
    store.dispose()


def test_every_table_the_index_reads_keeps_its_triggers_at_head(migrated_sqlite: Path) -> None:
    """A later migration that copies one of these tables on SQLite (batch mode) drops its
    triggers with it, and the index would silently fall behind: it must create them again."""
    from mailgate.search import sqlite

    store = Store(f"sqlite:///{migrated_sqlite}")
    with store.engine.connect() as conn:
        names = set(
            conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars()
        )
    store.dispose()
    wanted = {*sqlite.trigger_names(), *sqlite.trigger_names(sqlite.PARTS)}
    assert wanted <= names


TRICKY = [
    "",
    "Grüße aus der Hauptstraße, Jürgen Müller-Lüdenscheidt (GmbH & Co. KG)",
    "kunde@example.de schrieb:\n> https://shop.example.com/order?id=4711&x=1\n\tTab\r\nCRLF",
    "Preis: 1.299,00 €; Version v2.3.1-rc1, Pfad C:\\Users\\x\\Desktop\\Lieferschein.pdf",
    "“Zitat” – Gedankenstrich … Auslassung · Punkt\u00a0geschützt\u2009schmal ☺ 😀",
    "Ελληνικά und Русский текст, 日本語のテキスト, hyphen-ated e-mail_adresse",
    "Log: " + "a" * 3000 + " after_the_long_word " + "7" * 2100,
    "<p>HTML &amp; entities &#228; <b>fett</b></p>",
    "a.b,c;d:e!f?g-h/i(j)k@l'm\"n<o>p=q&r_s+t*u#v\r\nw\tx|y~z$0%1^2`3{4}5[6]7\\8 -- ..",
]


@pytest.mark.postgres
def test_0019_writes_the_words_0017_wrote(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """0019 splits the folded text itself and replaces the commonest marks before the
    regular expression, which then leaves spaces alone: a document holds the same words as
    0017's functions gave it, and the positioned words (phrases, the organisations' index)
    are the same too."""
    store = store_at("postgres", tmp_path, request, "head")
    unaccent = "unaccent('unaccent'::regdictionary, coalesce(:t, ''))"
    earlier = f"to_tsvector('simple', regexp_replace(lower({unaccent}), '[^[:alnum:]]+', ' ', 'g'))"
    with store.engine.connect() as conn:
        for sample in TRICKY:
            words, lexemes, before = conn.execute(
                text(f"SELECT mailgate_words(:t), mailgate_lexemes(:t), {earlier}"), {"t": sample}
            ).one()
            assert words == before, sample
            assert lexemes == conn.execute(text("SELECT strip(:v)"), {"v": before}).scalar()
    store.dispose()


NUMBERED = [
    "Bestellung 4711 vom 03.11.2026, Fehler 0x80070005, 3er Pack, 2fa, 1st 2nd 10th, 100km",
    "Rechnungen und Lieferscheine: 12 Rechnungsnummern, 99luftballons, 2000er Jahre, 9b3",
]


@pytest.mark.postgres
def test_0025_stems_as_0019_did(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """0025 leaves the words that begin with a digit out of what it stems: a document of
    words and stems is the same as when every word was stemmed."""
    store = store_at("postgres", tmp_path, request, "head")
    listed = "array_to_string(tsvector_to_array(mailgate_lexemes(:t)), ' ')"
    every_word = " || ".join(f"to_tsvector('{c}', {listed})" for c in ("german", "english"))
    with store.engine.connect() as conn:
        for sample in TRICKY + NUMBERED:
            now, before = conn.execute(
                text(
                    "SELECT mailgate_lexemes(:t) || mailgate_stems(mailgate_lexemes(:t)), "
                    f"mailgate_lexemes(:t) || strip({every_word})"
                ),
                {"t": sample},
            ).one()
            assert now == before, sample
        stems = conn.execute(
            text("SELECT mailgate_stems(mailgate_lexemes(:t))"), {"t": NUMBERED[1]}
        ).scalar()
    assert "'rechnung'" in stems and "'12'" not in stems and "'99luftballons'" not in stems
    store.dispose()
