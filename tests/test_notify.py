"""Notification mails: recipients, subjects, threading headers, language and attachments."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import Message

import openpyxl
import pytest
from sqlmodel import Session, col, select

from mailgate.config import SecurityConfig, StaffConfig
from mailgate.outbound import notify
from mailgate.outbound.context import Context
from mailgate.reading.parse import parse
from mailgate.store.models import (
    Agent,
    Article,
    Contact,
    Organisation,
    Outbox,
    Participant,
    Ticket,
    TimeEntry,
)
from tests.helpers import Clock, claim_domain, ingest, outbox, parsed
from tests.mails import make_mail, new_message_id

SUPPORT = "support@example.com"


def new_ticket(ctx: Context, **mail: object) -> int:
    outcome = ingest(ctx, make_mail(**mail))  # type: ignore[arg-type]
    assert outcome.created, outcome
    return int(outcome.cid.rpartition("-")[2])


def mark(ctx: Context) -> int:
    """The last outbox id so far: the pipeline queues mail of its own while a test sets up."""
    rows = outbox(ctx)
    return (rows[-1].id or 0) if rows else 0


def rows_after(ctx: Context, template: str, after: int) -> list[Outbox]:
    return [r for r in outbox(ctx) if r.template == template and (r.id or 0) > after]


def sent(ctx: Context, template: str, after: int = 0) -> list[Message]:
    return [parsed(row.raw) for row in rows_after(ctx, template, after)]


def text_of(msg: Message) -> str:
    # The wire form has CRLF line ends; the tests compare lines.
    body = msg.get_body(("plain",)).get_content()  # type: ignore[attr-defined, union-attr]
    return str(body).replace("\r\n", "\n")


def html_of(msg: Message) -> str:
    return msg.get_body(("html",)).get_content()  # type: ignore[attr-defined, union-attr]


@contextmanager
def loaded(ctx: Context, number: int) -> Iterator[tuple[Session, Ticket, Article]]:
    """The ticket and its latest article, in a session that commits at the end."""
    with ctx.store.session() as session:
        ticket = session.exec(select(Ticket).where(Ticket.number == number)).one()
        query = select(Article).where(Article.ticket_id == ticket.id)
        article = session.exec(query.order_by(col(Article.id).desc())).first()
        assert article is not None
        yield session, ticket, article


def with_staff(ctx: Context, **settings: object) -> Context:
    staff = StaffConfig(**settings)  # type: ignore[arg-type]
    return dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, staff=staff))


def add_agent(session: Session, ctx: Context, email: str, **fields: object) -> Agent:
    agent = Agent(email=email, name="Bea Agent", created_at=ctx.clock(), **fields)
    session.add(agent)
    session.flush()
    return agent


def requester(session: Session, ticket: Ticket) -> Contact:
    contact = session.get(Contact, ticket.requester_id)
    assert contact is not None
    return contact


def add_participant(
    session: Session, ctx: Context, ticket: Ticket, email: str, **fields: object
) -> Contact:
    contact = Contact(
        email=email, organisation_id=ticket.organisation_id, created_at=ctx.clock(), **fields
    )
    session.add(contact)
    session.flush()
    session.add(Participant(ticket_id=ticket.id or 0, contact_id=contact.id or 0))
    return contact


# --- staff notification ------------------------------------------------------------------------


def test_staff_notification_goes_to_the_team_address_without_an_assignee(ctx: Context) -> None:
    ctx = with_staff(ctx, team_address="team@example.com")
    customer_id = new_message_id()
    number = new_ticket(ctx, message_id=customer_id, body="The printer jams on page 2.\n")
    before = mark(ctx)
    with loaded(ctx, number) as (session, ticket, article):
        notify.notify_staff(session, ctx, ticket, article, "new")
    [msg] = sent(ctx, "staff_notification", before)
    assert msg["To"] == "team@example.com"
    assert msg["Subject"] == f"[CID-{number}] New ticket: Printer broken"
    assert msg["Reply-To"] == f"Support <{SUPPORT}>"
    assert msg["From"] == f"Support <{SUPPORT}>"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["In-Reply-To"] == f"<{customer_id}>"
    assert f"mailgate.{number}." in msg["Message-ID"]
    text = text_of(msg)
    assert "The printer jams on page 2." in text
    assert "acme.example" in text  # the organisation
    assert "alice@acme.example" in text
    assert "#internal" in text and "#status" in text
    # Customer text in red in the HTML part.
    assert 'color:#c62828; white-space:pre-wrap;">The printer jams on page 2.' in html_of(msg)


def test_staff_notification_goes_to_the_assignee_in_their_language(ctx: Context) -> None:
    ctx = with_staff(ctx, team_address="team@example.com")
    number = new_ticket(ctx)
    new_ticket(ctx, subject="Second problem")
    before = mark(ctx)
    with loaded(ctx, number) as (session, ticket, article):
        agent = add_agent(session, ctx, "bea@example.com", language="de")
        ticket.assignee_id = agent.id
        org = session.get(Organisation, ticket.organisation_id)
        assert org is not None
        org.support_minutes = 600
        session.add(
            TimeEntry(ticket_id=ticket.id or 0, minutes=90, billable=True, created_at=ctx.clock())
        )
        session.add(TimeEntry(ticket_id=ticket.id or 0, minutes=45, created_at=ctx.clock()))
        notify.notify_staff(session, ctx, ticket, article, "reply")
    [msg] = sent(ctx, "staff_notification", before)
    assert msg["To"] == "bea@example.com"
    assert msg["Subject"] == f"[CID-{number}] Antwort des Kunden: Printer broken"
    text = text_of(msg)
    assert "1:30 verbraucht, 8:30 übrig (von 10:00)" in text  # non-billable time not counted
    assert "Offene Tickets:  2" in text
    assert "fast aufgebraucht" not in text  # 8:30 left is above the warning level
    # The status in the words of German mails (and of German commands), not the stored value.
    assert "Status:          offen\n" in text
    assert "<td>offen</td>" in html_of(msg)


@pytest.mark.parametrize(
    ("language", "line"),
    [("en", "Status:        working\n"), ("fr", "Statut :            en cours\n")],
)
def test_staff_notification_names_the_status_in_the_agents_words(
    ctx: Context, language: str, line: str
) -> None:
    number = new_ticket(ctx)
    before = mark(ctx)
    with loaded(ctx, number) as (session, ticket, article):
        agent = add_agent(session, ctx, "bea@example.com", language=language)
        ticket.assignee_id, ticket.status = agent.id, "working"
        notify.notify_staff(session, ctx, ticket, article, "reply")
    [msg] = sent(ctx, "staff_notification", before)
    assert line in text_of(msg)


def test_without_assignee_or_team_the_agents_who_answered_hear_of_the_reply(
    ctx: Context,
) -> None:
    """No one assigned and no team address (the defaults): the customer's reply reaches the
    agents who answered the ticket, the latest first, not nobody. One who takes no
    notifications or has left is not told."""
    number = new_ticket(ctx)
    with loaded(ctx, number) as (session, ticket, _):
        ticket.first_response_at = ctx.clock()  # as mailing the first answer does
        for email, fields in (
            ("bea@example.com", {}),
            ("carl@example.com", {"notify": False}),
            ("dora@example.com", {"active": False}),
            ("emil@example.com", {}),
        ):
            add_agent(session, ctx, email, **fields)
            session.add(
                Article(
                    ticket_id=ticket.id or 0,
                    direction="staff",
                    from_addr=email,
                    text="We are on it.",
                    created_at=ctx.clock(),
                )
            )
    ingest(ctx, make_mail(subject=f"Re: [CID-{number}] Printer broken", body="Still broken."))
    before = mark(ctx)
    with loaded(ctx, number) as (session, ticket, article):
        assert ticket.assignee_id is None
        notify.notify_staff(session, ctx, ticket, article, "reply")
    assert [m["To"] for m in sent(ctx, "staff_notification", before)] == [
        "emil@example.com",
        "bea@example.com",
    ]


@pytest.mark.parametrize(("contingent", "warned"), [(600, True), (0, False)])
def test_low_support_hours_warning(ctx: Context, contingent: int, warned: bool) -> None:
    ctx = with_staff(ctx, team_address="team@example.com")
    number = new_ticket(ctx)
    before = mark(ctx)
    with loaded(ctx, number) as (session, ticket, article):
        org = session.get(Organisation, ticket.organisation_id)
        assert org is not None
        org.support_minutes = contingent
        if contingent:
            session.add(
                TimeEntry(
                    ticket_id=ticket.id or 0,
                    minutes=contingent - 60,
                    billable=True,
                    created_at=ctx.clock(),
                )
            )
        notify.notify_staff(session, ctx, ticket, article, "reply")
    [msg] = sent(ctx, "staff_notification", before)
    assert ("almost no support hours left" in text_of(msg)) == warned


def test_the_hours_line_is_there_only_for_hours_bought_or_time_booked(ctx: Context) -> None:
    """A customer without a contingent and no billable time: nothing to say of hours; time
    booked is shown (billed by the hour) though none was bought."""
    ctx = with_staff(ctx, team_address="team@example.com")
    number = new_ticket(ctx)
    before = mark(ctx)
    with loaded(ctx, number) as (session, ticket, article):
        notify.notify_staff(session, ctx, ticket, article, "reply")
        session.add(
            TimeEntry(ticket_id=ticket.id or 0, minutes=30, billable=True, created_at=ctx.clock())
        )
        session.flush()
        notify.notify_staff(session, ctx, ticket, article, "reply")
    quiet, booked = sent(ctx, "staff_notification", before)
    assert "Support hours" not in text_of(quiet) and "Support hours" not in html_of(quiet)
    assert "Support hours: 0:30 billable, none bought" in text_of(booked)
    assert "0:30 billable, none bought" in html_of(booked)


@pytest.mark.parametrize("notify_flag", [False])
def test_no_staff_notification_without_anyone_to_tell(ctx: Context, notify_flag: bool) -> None:
    number = new_ticket(ctx)
    before = mark(ctx)
    with loaded(ctx, number) as (session, ticket, article):
        ticket.assignee_id = add_agent(session, ctx, "bea@example.com", notify=notify_flag).id
        notify.notify_staff(session, ctx, ticket, article, "new")
    assert sent(ctx, "staff_notification", before) == []


def test_attachments_over_the_limit_are_listed_not_attached(ctx: Context) -> None:
    ctx = with_staff(ctx, team_address="team@example.com", notification_attachment_limit=1000)
    files = (
        ("small.txt", "text/plain", b"x" * 300),
        ("huge.bin", "application/octet-stream", b"y" * 5000),
        ("note.txt", "text/plain", b"z" * 400),
    )
    number = new_ticket(ctx, attachments=files)
    before = mark(ctx)
    with loaded(ctx, number) as (session, ticket, article):
        notify.notify_staff(session, ctx, ticket, article, "new")
    [msg] = sent(ctx, "staff_notification", before)
    attached = {part.get_filename(): part.get_content() for part in msg.iter_attachments()}  # type: ignore[attr-defined]
    assert set(attached) == {"small.txt", "note.txt"}
    assert attached["small.txt"] == "x" * 300
    text = text_of(msg)
    assert "huge.bin (5.0 kB) - too large to attach" in text
    assert "small.txt (300 Bytes)\n" in text


@pytest.mark.parametrize(
    ("language", "files", "said"),
    [
        ("en", True, "(no text, only attachments)"),
        ("de", True, "(kein Text, nur Anhänge)"),
        ("fr", True, "(pas de texte, seulement des pièces jointes)"),
        ("de", False, "(kein Text)"),
    ],
)
def test_a_mail_without_text_says_so_to_staff(
    ctx: Context, language: str, files: bool, said: str
) -> None:
    # A photo sent from a phone comes without a word: an empty frame would read as a fault.
    photo = (("IMG_2034.jpg", "image/jpeg", b"\xff\xd8\xff\xe0" * 300),) if files else ()
    number = new_ticket(ctx, body="\n", attachments=photo)
    before = mark(ctx)
    with loaded(ctx, number) as (session, ticket, article):
        ticket.assignee_id = add_agent(session, ctx, "bea@example.com", language=language).id
        notify.notify_staff(session, ctx, ticket, article, "reply")
    [msg] = sent(ctx, "staff_notification", before)
    rule = "-" * 72
    assert f"{rule}\n{said}\n{rule}" in text_of(msg)
    assert f'white-space:pre-wrap;">{said}</div>' in html_of(msg)


@pytest.mark.parametrize(
    ("language", "note", "said"),
    [
        (
            "de",
            "unverified sender: not part of this ticket",
            "WARNUNG: Absender nicht bestätigt: gehört nicht zu diesem Ticket.",
        ),
        (
            "fr",
            "sender not verified: dmarc=fail for acme.example",
            "ATTENTION : expéditeur non vérifié : dmarc=fail for acme.example.",
        ),
        (
            "en",
            "sender not verified: dkim=fail",
            "WARNING: sender not verified: dkim=fail.",
        ),
        ("de", "automatic reply", None),
    ],
)
def test_the_warning_about_a_mail_is_in_the_agents_language(
    ctx: Context, language: str, note: str, said: str | None
) -> None:
    number = new_ticket(ctx)
    before = mark(ctx)
    with loaded(ctx, number) as (session, ticket, article):
        ticket.assignee_id = add_agent(session, ctx, "bea@example.com", language=language).id
        article.note = note
        notify.notify_staff(session, ctx, ticket, article, "reply")
    [msg] = sent(ctx, "staff_notification", before)
    text = " ".join(text_of(msg).split())  # the warning is wrapped
    if said is None:
        assert "WARNUNG" not in text
    else:
        assert said in text
        assert said.partition(": ")[2].rstrip(".") in " ".join(html_of(msg).split())


def test_a_notification_stays_within_what_the_relay_takes(ctx: Context) -> None:
    ctx = with_staff(ctx, team_address="team@example.com")
    outbound = dataclasses.replace(ctx.config.outbound, max_message_size=100_000)
    ctx = dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, outbound=outbound))
    files = (("dump.bin", "application/octet-stream", b"d" * 80_000), ("a.txt", "text/plain", b"a"))
    new_ticket(ctx, attachments=files)
    [row] = rows_after(ctx, "staff_notification", 0)
    assert len(row.raw) <= 100_000
    msg = parsed(row.raw)
    assert [p.get_filename() for p in msg.iter_attachments()] == ["a.txt"]  # type: ignore[attr-defined]
    assert "dump.bin (80.0 kB) - too large to attach, see the ticket" in text_of(msg)


def test_a_lost_file_is_listed_as_unreadable_not_as_too_large(ctx: Context) -> None:
    ctx = with_staff(ctx, team_address="team@example.com")
    number = new_ticket(ctx, attachments=(("trace.log", "text/plain", b"t" * 300),))
    for path in (ctx.config.data_dir / "blobs").rglob("*"):
        if path.is_file():
            path.unlink()
    before = mark(ctx)
    with loaded(ctx, number) as (session, ticket, article):
        notify.notify_staff(session, ctx, ticket, article, "new")
    [msg] = sent(ctx, "staff_notification", before)
    assert list(msg.iter_attachments()) == []  # type: ignore[attr-defined]
    assert "trace.log (300 Bytes) - could not be read, see the ticket" in text_of(msg)
    assert "could not be read, see the ticket" in html_of(msg)


# --- mails to the customer ---------------------------------------------------------------------


def test_staff_answer_reaches_everyone_but_failing_contacts(ctx: Context) -> None:
    customer_id = new_message_id()
    number = new_ticket(ctx, message_id=customer_id)
    before = mark(ctx)
    with loaded(ctx, number) as (session, ticket, _):
        # A staff answer is not optional: opting out of status mail does not stop it.
        requester(session, ticket).opted_out = True
        requester(session, ticket).language = "de"
        add_participant(session, ctx, ticket, "carl@acme.example")
        add_participant(session, ctx, ticket, "dora@acme.example", failing=True)
        answer = Article(
            ticket_id=ticket.id or 0, direction="staff", from_addr="bea@example.com",
            from_name="Bea Agent", message_id="private-1@agent-laptop.example",
            text="Please restart the printer.", created_at=ctx.clock(),
        )  # fmt: skip
        session.add(answer)
        session.flush()
        notify.send_staff_answer(session, ctx, ticket, answer)
    [row] = rows_after(ctx, "staff_answer", before)
    msg = parsed(row.raw)
    assert msg["To"] == "alice@acme.example" and msg["Cc"] == "carl@acme.example"
    assert row.to_addrs == "alice@acme.example, carl@acme.example"
    assert msg["Subject"] == f"[CID-{number}] Printer broken"
    assert msg["From"] == msg["Reply-To"] == f"Support <{SUPPORT}>"
    assert msg["Auto-Submitted"] is None  # a person's answer
    assert msg["In-Reply-To"] == f"<{customer_id}>"
    [ack] = sent(ctx, "acknowledgement")
    assert msg["References"].split() == [f"<{customer_id}>", ack["Message-ID"]]
    assert b"bea@example.com" not in row.raw and b"agent-laptop" not in row.raw
    text = text_of(msg)
    assert text.startswith("Please restart the printer.")
    assert "Ihr Support-Team" in text


def test_a_staff_answer_goes_to_the_customer_with_its_files(ctx: Context) -> None:
    security = SecurityConfig(agent_verification="none")
    ctx = dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, security=security))
    with ctx.store.session() as session:
        add_agent(session, ctx, "bea@example.com")
    number = new_ticket(ctx, attachments=(("photo.jpg", "image/jpeg", b"j" * 300),))
    before = mark(ctx)
    manual = b"%PDF-1.4\n" + b"m" * 3000
    answer = make_mail(
        subject=f"Re: [CID-{number}] Printer broken",
        sender="Bea Agent <bea@example.com>",
        body="Please see the manual.",
        attachments=(("manual.pdf", "application/pdf", manual),),
    )
    assert ingest(ctx, answer).cid == f"CID-{number}"
    [msg] = sent(ctx, "staff_answer", before)
    files = {p.get_filename(): p.get_content() for p in msg.iter_attachments()}  # type: ignore[attr-defined]
    assert files == {"manual.pdf": manual}  # and not the customer's own photo
    assert sent(ctx, "attachments_not_sent", before) == []


def test_status_mail_in_the_contacts_language(ctx: Context) -> None:
    number = new_ticket(ctx)
    before = mark(ctx)
    with loaded(ctx, number) as (session, ticket, _):
        requester(session, ticket).language = "de"
        ticket.status, ticket.priority = "working", "A"
        notify.send_status_change(session, ctx, ticket, "open", "working", old_priority="B")
    [msg] = sent(ctx, "status_changed", before)
    assert msg["To"] == "alice@acme.example"
    assert msg["Subject"] == f"[CID-{number}] Printer broken"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Reply-To"] == f"Support <{SUPPORT}>"
    text = text_of(msg)
    assert "offen → in Bearbeitung" in text
    assert "Priorität:  B → A" in text


def test_status_mail_in_english_without_a_priority_change(ctx: Context) -> None:
    number = new_ticket(ctx)
    before = mark(ctx)
    with loaded(ctx, number) as (session, ticket, _):
        notify.send_status_change(session, ctx, ticket, "open", "hold", old_priority="B")
    text = text_of(sent(ctx, "status_changed", before)[0])
    assert "open → on hold" in text
    assert "Priority" not in text


def test_opted_out_and_failing_contacts_get_no_status_mail(ctx: Context) -> None:
    number = new_ticket(ctx)
    before = mark(ctx)
    with loaded(ctx, number) as (session, ticket, _):
        requester(session, ticket).opted_out = True
        add_participant(session, ctx, ticket, "dora@acme.example", failing=True)
        notify.send_status_change(session, ctx, ticket, "open", "working")
    assert sent(ctx, "status_changed", before) == []


def test_delivered_closed_and_reopened(ctx: Context) -> None:
    number = new_ticket(ctx)
    before = mark(ctx)
    with loaded(ctx, number) as (session, ticket, _):
        notify.send_status_change(session, ctx, ticket, "working", "delivered", "delivered")
        notify.send_status_change(session, ctx, ticket, "delivered", "closed", "closed")
        session.add(
            TimeEntry(ticket_id=ticket.id or 0, minutes=75, billable=True, created_at=ctx.clock())
        )
        notify.send_status_change(session, ctx, ticket, "delivered", "closed", "closed")
        notify.send_status_change(session, ctx, ticket, "closed", "open", "reopened")
        with pytest.raises(ValueError):
            notify.send_status_change(session, ctx, ticket, "open", "open", "acknowledgement")
    [delivered] = sent(ctx, "delivered", before)
    assert '"ok" on the' in text_of(delivered)
    free, billable = sent(ctx, "closed", before)
    assert "free of charge" in text_of(free)
    assert "Time charged to your support hours: 1:15 h." in text_of(billable)
    [reopened] = sent(ctx, "reopened", before)
    assert reopened["Subject"] == f"[CID-{number}] Printer broken"
    assert "reopened" in text_of(reopened)


def test_no_header_injection_through_the_subject(ctx: Context) -> None:
    number = new_ticket(ctx)
    before = mark(ctx)
    with loaded(ctx, number) as (session, ticket, _):
        ticket.subject = "Printer\r\nBcc: evil@attacker.example\r\n\r\nbody"
        notify.send_status_change(session, ctx, ticket, "open", "working")
    [row] = rows_after(ctx, "status_changed", before)
    msg = parsed(row.raw)
    assert msg["Bcc"] is None
    assert b"\r\nBcc:" not in row.raw
    assert msg["Subject"] == f"[CID-{number}] Printer Bcc: evil@attacker.example body"
    assert "attacker" not in row.to_addrs


# --- to agents ---------------------------------------------------------------------------------


def test_command_errors_go_to_the_agent(ctx: Context) -> None:
    number = new_ticket(ctx)
    before = mark(ctx)
    with loaded(ctx, number) as (session, ticket, _):
        add_agent(session, ctx, "bea@example.com", language="de")
        errors = ["#priority X: keine gültige Priorität", "#assign zed: unknown agent"]
        report = notify.CommandReport(errors, ["#status working"], "stored")
        notify.send_command_errors(
            session, ctx, "bea@example.com", ticket, report, "Re: [CID-1000] x"
        )
        report = notify.CommandReport(["#foo"], [], "stored")
        notify.send_command_errors(session, ctx, "tom@example.com", None, report, "Hello")
    german, english = sent(ctx, "command_error", before)
    assert german["To"] == "bea@example.com"
    assert german["Subject"] == f"[CID-{number}] Befehle nicht ausgeführt: Printer broken"
    assert "  - #priority X: keine gültige Priorität" in text_of(german)
    assert "#assign zed: unknown agent" in text_of(german)
    assert english["To"] == "tom@example.com"
    assert english["Subject"] == "Commands not applied: Hello"
    assert "stored" in text_of(english)


# --- answers to a mail -------------------------------------------------------------------------


def test_ticket_list_holds_only_the_senders_organisation(ctx: Context) -> None:
    claim_domain(ctx, "acme.example", "acme.example")
    first = new_ticket(ctx, subject='=HYPERLINK("http://x")')
    done = new_ticket(ctx, subject="Old matter")
    second = new_ticket(ctx, sender="Carl <carl@acme.example>", subject="Scanner")
    other = new_ticket(ctx, sender="Bob <bob@other.example>", subject="Secret")
    request = make_mail(subject="list", message_id=new_message_id())
    before = mark(ctx)
    with loaded(ctx, done) as (session, ticket, _):
        ticket.status = "closed"
        contact = requester(session, ticket)
        notify.send_ticket_list(session, ctx, contact, parse(request))
    [msg] = sent(ctx, "ticket_list", before)
    assert msg["To"] == "alice@acme.example"
    assert msg["Subject"] == "Open tickets of acme.example (2026-11-02)"
    assert msg["In-Reply-To"] == f"<{parse(request).message_id}>"
    text = text_of(msg)
    assert f"CID-{first}" in text and f"CID-{second}" in text
    assert f"CID-{done}" not in text and f"CID-{other}" not in text and "Secret" not in text
    # acme.example has bought no support hours: the list says nothing of hours.
    assert "Support hours" not in text and "Support hours" not in html_of(msg)
    assert "at the moment" not in text and "\n\n\n" not in text
    assert text.startswith("Hello Alice Kunde,\n\nhere are the open tickets")
    assert text.rstrip().endswith("Your support team\n\nThis message was sent automatically.")
    [sheet] = list(msg.iter_attachments())  # type: ignore[attr-defined]
    assert sheet.get_filename() == "tickets-2026-11-02.xlsx"
    book = openpyxl.load_workbook(io.BytesIO(sheet.get_content()))
    rows = list(book["Tickets"].values)
    assert rows[0][0] == "Ticket"
    assert [r[0] for r in rows[1:]] == [f"CID-{first}", f"CID-{second}"]
    # A subject that looks like a formula stays text.
    assert book["Tickets"]["B2"].data_type == "s"


def list_late_in_berlin(ctx: Context, clock: Clock, language: str | None = None) -> Message:
    """The ticket list a customer of a desk in Berlin time gets for their new ticket, asked
    for at 23:30 UTC: already the next day in Berlin."""
    clock.now = datetime(2026, 11, 2, 23, 30, tzinfo=UTC)
    tickets = dataclasses.replace(ctx.config.tickets, timezone="Europe/Berlin")
    berlin = dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, tickets=tickets))
    claim_domain(ctx, "acme.example", "acme.example")
    number = new_ticket(berlin)
    before = mark(berlin)
    with loaded(berlin, number) as (session, ticket, _):
        contact = requester(session, ticket)
        contact.language = language
        notify.send_ticket_list(session, berlin, contact, parse(make_mail()))
    [msg] = sent(berlin, "ticket_list", before)
    return msg


def test_ticket_list_shows_the_desks_date_and_times(ctx: Context, clock: Clock) -> None:
    msg = list_late_in_berlin(ctx, clock)
    assert msg["Subject"] == "Open tickets of acme.example (2026-11-03)"
    text = text_of(msg)
    assert "as of 2026-11-03 (times in Europe/Berlin)" in text
    assert "2026-11-03 00:30 you" in text
    [sheet] = list(msg.iter_attachments())  # type: ignore[attr-defined]
    book = openpyxl.load_workbook(io.BytesIO(sheet.get_content()))
    heading, row = list(book["Tickets"].values)[:2]
    # The heading names the zone the times are in: the desk's, as in the mail's table.
    assert heading[5] == "Last action (Europe/Berlin)"
    assert row[2:] == ("open", "B", "you", datetime(2026, 11, 3, 0, 30))


@pytest.mark.parametrize(
    ("language", "subject", "line"),
    [
        ("de", "Offene Tickets von acme.example (03.11.2026)", "03.11.2026 00:30 Sie"),
        ("fr", "Tickets ouverts de acme.example (03/11/2026)", "03/11/2026 00:30 vous"),
    ],
)
def test_the_ticket_list_writes_days_as_its_reader_does(
    ctx: Context, clock: Clock, language: str, subject: str, line: str
) -> None:
    """The context's days are ISO; a German or French list writes them the reader's way."""
    msg = list_late_in_berlin(ctx, clock, language)
    assert msg["Subject"] == subject
    assert line in text_of(msg)
    assert "2026-11-03" not in text_of(msg)


def test_rejected_sender_and_too_large(ctx: Context) -> None:
    with ctx.store.session() as session:
        notify.send_rejected_sender(
            session, ctx, "stranger@nowhere.example", "Hi there", "abc@nowhere.example"
        )
        notify.send_too_large(
            session, ctx, "alice@acme.example", "Scans", 30_000_000, 26_214_400, language="de"
        )
    [rejected] = sent(ctx, "rejected_sender")
    assert rejected["To"] == "stranger@nowhere.example"
    assert rejected["In-Reply-To"] == "<abc@nowhere.example>"
    assert rejected["Auto-Submitted"] == "auto-replied"
    assert "known" in text_of(rejected) or "existing customers" in text_of(rejected)
    [large] = sent(ctx, "message_too_large")
    assert large["Subject"] == "Ihre Nachricht war zu groß: Scans"
    assert "30,0 MB" in text_of(large)  # German writes a decimal comma


def test_further_agents_are_notified_with_the_assignee(ctx: Context) -> None:
    from mailgate.desk.agents import add_agent
    from mailgate.store.models import Article, TicketAgent

    ingest(ctx, make_mail())
    with ctx.store.session() as session:
        bob = add_agent(session, "bob@example.com", "Bob", "en", ctx.clock())
        eva = add_agent(session, "eva@example.com", "Eva", "de", ctx.clock())
        quiet = add_agent(session, "quiet@example.com", "Q", "en", ctx.clock(), notify=False)
        ticket = session.exec(select(Ticket)).one()
        ticket.assignee_id = bob.id
        session.add(ticket)
        for agent in (eva, quiet):
            session.add(TicketAgent(ticket_id=ticket.id or 0, agent_id=agent.id or 0))
        session.flush()
        article = session.exec(select(Article)).one()
        mark = len(list(session.exec(select(Outbox))))
        notify.notify_staff(session, ctx, ticket, article, "reply")
    sent = [(o.template, o.to_addrs) for o in outbox(ctx)[mark:]]
    assert sent == [
        ("staff_notification", "bob@example.com"),
        ("staff_notification", "eva@example.com"),
    ]


def test_agents_sharing_a_language_share_one_rendering(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailgate.desk.agents import add_agent
    from mailgate.store.models import TicketAgent

    ingest(ctx, make_mail())
    rendered: list[tuple[str, str | None]] = []
    render = ctx.renderer.render

    def counted(name: str, language: str | None, context: object) -> object:
        rendered.append((name, language))
        return render(name, language, context)  # type: ignore[arg-type]

    monkeypatch.setattr(ctx.renderer, "render", counted)
    with loaded(ctx, 1000) as (session, ticket, article):
        agents = [
            add_agent(session, f"{name}@example.com", name, language, ctx.clock())
            for name, language in (("bob", "en"), ("eva", "de"), ("tom", "en"))
        ]
        ticket.assignee_id = agents[0].id
        for agent in agents[1:]:
            session.add(TicketAgent(ticket_id=ticket.id or 0, agent_id=agent.id or 0))
        session.flush()
        before = mark(ctx)
        notify.notify_staff(session, ctx, ticket, article, "reply")
    assert sorted(rendered) == [("staff_notification", "de"), ("staff_notification", "en")]
    mails = {m["To"]: m for m in sent(ctx, "staff_notification", before)}
    assert sorted(mails) == ["bob@example.com", "eva@example.com", "tom@example.com"]
    assert text_of(mails["bob@example.com"]) == text_of(mails["tom@example.com"])
    assert text_of(mails["eva@example.com"]) != text_of(mails["bob@example.com"])
