"""Search through real ingest of mail, on SQLite and PostgreSQL: every operator, folding of
case and diacritics, ranking and snippets, and the index written in the article's own
transaction."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, update
from sqlmodel import Session, select

from mailgate.config import Config
from mailgate.config.sections import TicketsConfig
from mailgate.desk.agents import add_agent
from mailgate.outbound.context import Context
from mailgate.search import engine
from mailgate.search.engine import Hit, search
from mailgate.search.query import QueryError
from mailgate.store.database import insert_row
from mailgate.store.models import Article, Attachment, Organisation, Ticket, TicketReference
from tests.helpers import Clock, claim_domain, ingest, make_config
from tests.mails import make_mail

ORDER = r"\b(ORDER-\d+)\b"


@pytest.fixture
def config(tmp_path, db_url: str) -> Config:  # type: ignore[no-untyped-def]
    """The desk keeps order numbers as references."""
    return make_config(tmp_path, db_url, tickets=TicketsConfig(reference_patterns=[ORDER]))


def found(ctx: Context, query: str, limit: int = 20) -> list[str]:
    """The CIDs a query finds, best first."""
    return [hit.cid for hit in hits(ctx, query, limit)]


def hits(ctx: Context, query: str, limit: int = 20) -> list[Hit]:
    with ctx.store.session() as session:
        return search(session, query, limit=limit, now=ctx.clock())


@pytest.fixture
def desk(ctx: Context, clock: Clock) -> Context:
    """CID-1000 from Jürgen Müller about a Rechnungsnummer, with an attachment and an order
    number; CID-1001 about a printer, mentioning Mr Mueller; CID-1002 from ACME staff about
    the Straße, to a colleague in Cc."""
    ingest(
        ctx,
        make_mail(
            subject="Rechnungsnummer fehlt",
            body="Sehr geehrte Damen und Herren,\n\nauf der Rechnung zu ORDER-4711 fehlt "
            "die Nummer. Ich bitte um Korrektur.\n",
            sender="Jürgen Müller <juergen@mueller-bau.de>",
            attachments=(("Rechnung März.pdf", "application/pdf", b"%PDF-1.4"),),
        ),
    )
    clock.advance(days=1)
    ingest(
        ctx,
        make_mail(
            subject="Printer broken",
            body="Our printer jams. Mr Mueller from accounting saw it too.\n",
            sender="Bob Smith <bob@example.net>",
        ),
    )
    clock.advance(days=1)
    claim_domain(ctx, "ACME Café GmbH", "acme.example")
    ingest(
        ctx,
        make_mail(
            subject="Lieferung",
            body="Die Lieferung an die Hauptstraße kam nicht an.\n",
            sender="Alice Kunde <alice@acme.example>",
            to="support@example.com",
            headers={"Cc": "carol@acme.example"},
        ),
    )
    return ctx


def test_words_all_must_match_in_any_case(desk: Context) -> None:
    assert found(desk, "printer") == ["CID-1001"]
    assert found(desk, "PRINTER JAMS") == ["CID-1001"]
    assert found(desk, "printer lieferung") == []  # two tickets, neither has both
    # The words of one ticket may sit in different places: subject, text, attachment.
    assert found(desk, "fehlt korrektur märz") == ["CID-1000"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("müller", ["CID-1000", "CID-1001"]),  # Müller and Mueller
        ("mueller", ["CID-1000", "CID-1001"]),
        ("muller", ["CID-1000"]),  # without the dots: Müller only
        ("MÜLLER", ["CID-1000", "CID-1001"]),
        ("jurgen", ["CID-1000"]),
        ("juergen", ["CID-1000"]),
        ("hauptstrasse", ["CID-1002"]),  # ß and ss meet
        ("HAUPTSTRAẞE", ["CID-1002"]),
        ("cafe", ["CID-1002"]),  # the organisation's name, its é folded
        ("rechnung*", ["CID-1000"]),  # a German compound by its first part
        ("rechnungsnum*", ["CID-1000"]),
        ("rechnun", []),  # a word is whole unless it ends in *
    ],
)
def test_case_diacritics_and_german_spellings_meet(
    desk: Context, query: str, expected: list[str]
) -> None:
    assert sorted(found(desk, query)) == expected


def test_postgresql_meets_inflected_words_by_their_german_and_english_stems(
    desk: Context,
) -> None:
    """PostgreSQL keeps the stems of the words too (its german and english configurations):
    `Rechnungen` finds a Rechnung and `printers` a printer. SQLite's FTS5 has no German
    stemmer: there whole words only (or `rechnung*`)."""
    stemmed = desk.store.engine.dialect.name == "postgresql"
    assert found(desk, "rechnungen") == (["CID-1000"] if stemmed else [])
    assert found(desk, "printers") == (["CID-1001"] if stemmed else [])
    assert found(desk, "jam") == (["CID-1001"] if stemmed else [])  # jams
    assert found(desk, "printer -jam") == ([] if stemmed else ["CID-1001"])
    assert found(desk, '"printers jam"') == []  # a phrase: the words as written
    assert found(desk, "rechnun") == []  # a word is still whole


def test_a_phrase_matches_its_words_in_order(desk: Context) -> None:
    assert found(desk, '"printer jams"') == ["CID-1001"]
    assert found(desk, '"jams printer"') == []
    assert found(desk, '"Herr Müller"') == []
    assert found(desk, '"damen und herren"') == ["CID-1000"]


def test_an_excluded_word_drops_its_tickets(desk: Context) -> None:
    assert sorted(found(desk, "müller")) == ["CID-1000", "CID-1001"]
    assert found(desk, "müller -printer") == ["CID-1000"]
    assert found(desk, 'müller -"rechnung zu"') == ["CID-1001"]
    # A phrase excluded drops the tickets with the phrase, not those with its words apart.
    assert sorted(found(desk, 'müller -"zu rechnung"')) == ["CID-1000", "CID-1001"]
    assert found(desk, '"printer jams" -"jams printer"') == ["CID-1001"]
    assert found(desk, "müller -from:mueller-bau.de") == ["CID-1001"]


def test_from_and_to_take_an_address_or_a_domain(desk: Context) -> None:
    assert found(desk, "from:juergen@mueller-bau.de") == ["CID-1000"]
    assert found(desk, "from:mueller-bau.de") == ["CID-1000"]
    assert found(desk, "from:acme.example") == ["CID-1002"]
    assert found(desk, "from:Müller") == ["CID-1000"]  # the sender's name
    # Bob's text names Mueller, but Mueller did not write it.
    assert found(desk, "from:mueller") == ["CID-1000"]
    assert found(desk, "to:carol@acme.example") == ["CID-1002"]
    assert found(desk, "to:acme.example") == ["CID-1002"]
    assert found(desk, "from:carol@acme.example") == []


def test_org_ref_file_and_cid(desk: Context) -> None:
    assert found(desk, "org:acme") == ["CID-1002"]
    assert found(desk, 'org:"ACME Café GmbH"') == ["CID-1002"]
    assert found(desk, "ref:ORDER-4711") == ["CID-1000"]
    assert found(desk, "ref:4711") == ["CID-1000"]
    assert found(desk, "4711") == ["CID-1000"]  # a bare word finds a reference too
    assert found(desk, "file:rechnung") == ["CID-1000"]
    assert found(desk, '"Rechnung März.pdf"') == ["CID-1000"]
    assert found(desk, "file:marz.pdf") == ["CID-1000"]
    assert found(desk, "file:printer") == []
    assert found(desk, "cid:1001") == ["CID-1001"]
    assert found(desk, "CID-1001") == ["CID-1001"]
    assert found(desk, "[cid-1001] printer") == ["CID-1001"]
    assert found(desk, "cid:1001 lieferung") == []


def test_status_assignee_and_dates_filter(desk: Context, clock: Clock) -> None:
    with desk.store.session() as session:
        agent = add_agent(session, "anna@example.com", "Anna Berg", None, clock())
        session.exec(  # type: ignore[call-overload]
            update(Ticket)
            .where(Ticket.number == 1001)
            .values(status="closed", assignee_id=agent.id)
        )
    assert found(desk, "müller is:open") == ["CID-1000"]
    assert found(desk, "müller is:closed") == ["CID-1001"]
    assert sorted(found(desk, "is:open,closed")) == ["CID-1000", "CID-1001", "CID-1002"]
    assert found(desk, "assignee:anna@example.com") == ["CID-1001"]
    assert found(desk, "assignee:Anna") == ["CID-1001"]
    assert sorted(found(desk, "assignee:none")) == ["CID-1000", "CID-1002"]
    # Opened 2 Nov, 3 Nov and 4 Nov 2026.
    assert found(desk, "after:2026-11-03") == ["CID-1002", "CID-1001"]  # newest first
    assert found(desk, "before:2026-11-03") == ["CID-1000"]
    assert found(desk, "müller after:2026-11-03 before:2026-11-04") == ["CID-1001"]


def test_subject_matches_rank_above_text_and_newer_above_older(ctx: Context, clock: Clock) -> None:
    ingest(ctx, make_mail(subject="Question", body="The invoice is attached."))
    clock.advance(days=1)
    ingest(ctx, make_mail(subject="Invoice missing", body="Where is it?", sender="b@x.example"))
    clock.advance(days=1)
    ingest(ctx, make_mail(subject="Other", body="The invoice is attached.", sender="c@x.example"))
    assert found(ctx, "invoice") == ["CID-1001", "CID-1002", "CID-1000"]
    assert found(ctx, "invoice", limit=1) == ["CID-1001"]


def test_a_hit_tells_the_ticket_and_the_words_around_the_match(desk: Context) -> None:
    (hit,) = hits(desk, "korrektur")
    assert (hit.cid, hit.subject, hit.status) == ("CID-1000", "Rechnungsnummer fehlt", "open")
    assert hit.last_activity == datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    assert hit.score > 0
    assert "Ich bitte um Korrektur." in hit.snippet and "\n" not in hit.snippet
    # A sender's mail is what from: found: its text is the snippet, not the subject.
    (hit,) = hits(desk, "from:juergen@mueller-bau.de")
    assert hit.snippet.startswith("Sehr geehrte Damen und Herren, auf der Rechnung")
    long_text = "Lorem ipsum dolor sit amet. " * 40 + "The flux capacitor failed. " + "Et. " * 40
    ingest(desk, make_mail(subject="Long", body=long_text, sender="d@x.example"))
    (hit,) = hits(desk, "capacitor")
    assert "flux capacitor failed" in hit.snippet
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…")
    assert len(hit.snippet) < 200


def test_an_article_is_found_in_the_transaction_that_stores_it(desk: Context) -> None:
    with desk.store.session() as session:
        ticket = session.exec(select(Ticket).where(Ticket.number == 1001)).one()
        note = Article(
            ticket_id=ticket.id or 0,
            direction="internal",
            from_addr="anna@example.com",
            text="Replaced the fuser unit.",
            created_at=desk.clock(),
        )
        insert_row(session, note)
        assert [h.cid for h in search(session, "fuser")] == ["CID-1001"]
        session.rollback()  # the article and its index entry go together
        assert search(session, "fuser") == []
    assert found(desk, "fuser") == []


def new_ticket(session: Session, like: int, number: int, subject: str, now: datetime) -> Ticket:
    """A ticket of the same customer as ticket `like`, inserted as intake inserts one."""
    other = session.exec(select(Ticket).where(Ticket.number == like)).one()
    ticket = Ticket(
        number=number,
        subject=subject,
        organisation_id=other.organisation_id,
        requester_id=other.requester_id,
        source="smtp",
        created_at=now,
        updated_at=now,
        last_action_at=now,
    )
    return insert_row(session, ticket)


def test_a_new_ticket_is_found_in_the_transaction_that_creates_it(desk: Context) -> None:
    """On PostgreSQL a new ticket's document is written at commit; a search before that,
    in the same transaction, has it written first."""
    now = desk.clock()
    with desk.store.session() as session:
        ticket = new_ticket(session, 1001, 4242, "Kaffeemaschine tropft", now)
        said = "Die Kaffeemaschine im Flur tropft seit Montag."
        insert_row(
            session,
            Article(ticket_id=ticket.id or 0, direction="customer", text=said, created_at=now),
        )
        session.add(TicketReference(ticket_id=ticket.id or 0, reference="ORDER-9090"))
        session.flush()
        assert [h.cid for h in search(session, "flur")] == ["CID-4242"]
        assert [h.cid for h in search(session, "ref:ORDER-9090")] == ["CID-4242"]
        # A row added after the search is found too.
        session.add(TicketReference(ticket_id=ticket.id or 0, reference="ORDER-9191"))
        session.flush()
        assert [h.cid for h in search(session, "ref:ORDER-9191 montag")] == ["CID-4242"]
        session.rollback()
        assert search(session, "flur") == []
    assert found(desk, "kaffeemaschine") == []
    with desk.store.session() as session:
        new_ticket(session, 1001, 4243, "Kaffeemaschine tropft", now)
        session.commit()
    assert found(desk, "kaffeemaschine") == ["CID-4243"]
    assert found(desk, "org:nothing kaffeemaschine") == []


def test_a_huge_text_is_stored_and_its_first_100000_characters_found(desk: Context) -> None:
    """Megabytes of unique words (a pasted log) would overflow a PostgreSQL tsvector."""
    log = " ".join(f"{n:016x}" for n in range(100_000))  # 1.7 MB
    with desk.store.session() as session:
        ticket = session.exec(select(Ticket).where(Ticket.number == 1001)).one()
        text = f"Log attached inline: {log} trailingword"
        row = Article(
            ticket_id=ticket.id or 0, direction="customer", text=text, created_at=desk.clock()
        )
        insert_row(session, row)
    assert found(desk, "inline") == ["CID-1001"]
    assert found(desk, "0000000000000010") == ["CID-1001"]
    assert found(desk, "trailingword") == []


def test_a_changed_or_erased_text_is_found_by_what_it_says_now(desk: Context) -> None:
    with desk.store.session() as session:
        session.exec(  # type: ignore[call-overload]
            update(Article).where(Article.from_addr == "bob@example.net").values(text="Toner low.")
        )
        session.exec(  # type: ignore[call-overload]
            update(Ticket).where(Ticket.number == 1002).values(subject="Delivery")
        )
    assert found(desk, "jams") == []
    assert found(desk, "toner") == ["CID-1001"]
    assert found(desk, "lieferung") == ["CID-1002"]  # still in its text
    assert found(desk, "delivery") == ["CID-1002"]


def test_a_part_of_a_word_finds_subjects_file_names_and_references(desk: Context) -> None:
    """`*part`: characters anywhere in a subject, an attachment's name or a reference, in
    any case; not in the mail's text."""
    assert found(desk, "*NUMMER") == ["CID-1000"]  # Rechnungsnummer fehlt
    assert found(desk, "*nummer*") == ["CID-1000"]
    assert found(desk, "file:*rz.pd") == ["CID-1000"]  # Rechnung März.pdf
    assert found(desk, "ref:*der-47") == ["CID-1000"]  # ORDER-4711
    assert found(desk, "*711") == ["CID-1000"]
    assert found(desk, "ref:*nummer") == []  # in the subject, not a reference
    assert found(desk, "*korrektur") == []  # in the text only: words find it
    assert sorted(found(desk, "*ung")) == ["CID-1000", "CID-1002"]  # Rechnungs..., Lieferung
    assert found(desk, "*ung -*nummer") == ["CID-1002"]
    assert found(desk, "*ter printer") == ["CID-1001"]  # with words: both
    assert found(desk, "*50%") == [] and found(desk, "*a_b") == []  # no wildcards in it
    with desk.store.session() as session:
        ticket = session.exec(select(Ticket).where(Ticket.number == 1002)).one()
        session.add(TicketReference(ticket_id=ticket.id or 0, reference="AB-742081"))
        session.exec(  # type: ignore[call-overload]
            update(Ticket).where(Ticket.number == 1001).values(subject="Toner empty")
        )
        session.commit()
    assert found(desk, "*2081") == ["CID-1002"]
    assert found(desk, "*rinter") == []
    assert found(desk, "*oner") == ["CID-1001"]


def test_every_later_change_to_a_ticket_is_found_as_it_is_now(desk: Context) -> None:
    """A reference added later, a ticket moved to another organisation, an attachment and
    an article removed: each is searched as it is after the change."""
    with desk.store.session() as session:
        printer = session.exec(select(Ticket).where(Ticket.number == 1001)).one()
        session.add(TicketReference(ticket_id=printer.id or 0, reference="ORDER-5150"))
        session.commit()
        assert [h.cid for h in search(session, "ref:ORDER-5150")] == ["CID-1001"]
        acme = session.exec(select(Organisation).where(Organisation.name.startswith("ACME"))).one()
        session.exec(  # type: ignore[call-overload]
            update(Ticket).where(Ticket.id == printer.id).values(organisation_id=acme.id)
        )
        session.exec(delete(Attachment))  # type: ignore[call-overload]
        session.exec(  # type: ignore[call-overload]
            delete(Article).where(Article.from_addr == "alice@acme.example")
        )
        session.commit()
        assert [h.cid for h in search(session, "org:acme")] == ["CID-1002", "CID-1001"]
        assert search(session, "file:rechnung") == []
        assert [h.cid for h in search(session, "hauptstrasse")] == []
        assert [h.cid for h in search(session, "lieferung")] == ["CID-1002"]  # its subject
        assert [h.cid for h in search(session, "korrektur")] == ["CID-1000"]


def test_a_thread_longer_than_an_index_entry_holds_is_stored_and_found(desk: Context) -> None:
    """Twelve pasted logs of 100,000 characters of distinct words in one ticket: more than
    a PostgreSQL tsvector holds (1 MB). Every mail is stored; the first ones are found."""
    with desk.store.session() as session:
        ticket = session.exec(select(Ticket).where(Ticket.number == 1001)).one()
        for n in range(12):
            log = " ".join(f"{n:02x}{k:014x}" for k in range(6_000))
            row = Article(
                ticket_id=ticket.id or 0, direction="customer", text=log, created_at=desk.clock()
            )
            insert_row(session, row)
            session.commit()
        stored = session.exec(select(Article).where(Article.ticket_id == ticket.id)).all()
        assert len(stored) == 13
    assert found(desk, "0000000000000005") == ["CID-1001"]
    assert found(desk, "printer") == ["CID-1001"]


def test_a_common_word_ranks_the_newest_tickets_that_have_it(
    ctx: Context, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the newest CANDIDATES tickets with a word are ranked (a subject match first);
    asking for more hits reaches further back."""
    monkeypatch.setattr(engine, "CANDIDATES", 2)
    ingest(ctx, make_mail(subject="Invoice", body="Hello.", sender="a@x.example"))
    for n in range(2):
        clock.advance(days=1)
        body = "The invoice is attached."
        ingest(ctx, make_mail(subject=f"Other {n}", body=body, sender=f"b{n}@x.example"))
    assert found(ctx, "invoice", limit=2) == ["CID-1002", "CID-1001"]
    assert found(ctx, "invoice", limit=3) == ["CID-1000", "CID-1002", "CID-1001"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('"unbalanced quote', "a quote is not closed"),
        ('printer "jams', "a quote is not closed"),
        ("*", "a * goes at the end of a word"),
        (":", "nothing to search for"),
        ("^", "nothing to search for"),
        ("  ", "nothing to search for"),
        ("x" * 10_240, "the query is 10240 characters long; at most 1000"),
        ("is:perhaps", "is:perhaps is not one of open, working, hold, delivered, closed"),
        ("after:2026-13-01", "after:2026-13-01 is not a date (YYYY-MM-DD)"),
        ("after:2026-03-01 before:2026-02-01", "before:2026-02-01 is not after"),
        ("from:", "from: needs a value"),
        ("-is:open", "only words and from, to, org, ref, file: can be excluded"),
        ("assignee:nobody", "assignee:nobody: no agent by that address or name"),
        ("cid:abc", "cid:abc is not a ticket number"),
        (" ".join(f"w{n}" for n in range(30)), "too many words"),
        ("*ab", "a part of a word is at least 3 characters after the *"),
        ("from:*acme", "a part of a word is looked for in subjects, file: and ref: only"),
    ],
)
def test_a_query_that_cannot_run_says_why(desk: Context, query: str, message: str) -> None:
    with pytest.raises(QueryError) as caught:
        hits(desk, query)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("NEAR(printer jams)", []),  # FTS5 syntax is words here: "near" is in no text
        ("printer AND jams", []),  # "and" is a word too: not in that text
        ("printer OR lieferung", []),
        ("printer^", ["CID-1001"]),
        ("printer:", ["CID-1001"]),
        ("col:printer", []),  # an unknown key: its words
        ("{subject}: printer", []),
        ("printer\x00jams", ["CID-1001"]),
        ("'printer' & !jams | x:*", []),  # tsquery syntax too
        ("printer -", ["CID-1001"]),
        ('""', None),
    ],
)
def test_search_syntax_of_the_databases_is_plain_text(
    desk: Context, query: str, expected: list[str] | None
) -> None:
    if expected is None:
        with pytest.raises(QueryError):
            hits(desk, query)
    else:
        assert found(desk, query) == expected
