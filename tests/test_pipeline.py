"""The pipeline's outcomes for the kinds of mail the core tells apart, on both databases."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from mailgate.flows import apply
from mailgate.flows.pipeline import process_batch
from mailgate.outbound.context import Context
from mailgate.store import blobs
from mailgate.store.models import Attachment, Contact, Intake, Ticket
from mailgate.store.spool import Incoming, accept_many, stored_raw
from tests.helpers import articles, claim_domain, ingest, outbox, parsed, tickets
from tests.mails import make_mail, new_message_id


def test_new_mail_opens_ticket_and_queues_acknowledgement(ctx: Context) -> None:
    mid = new_message_id()
    assert ingest(ctx, make_mail(message_id=mid)).describe() == "ticket CID-1000"
    (ticket,) = tickets(ctx)
    assert (ticket.subject, ticket.status, ticket.source) == ("Printer broken", "open", "smtp")
    (ack,) = outbox(ctx)
    assert (ack.template, ack.to_addrs, ack.status) == (
        "acknowledgement",
        "alice@acme.example",
        "queued",
    )
    sent = parsed(ack.raw)
    assert sent["Subject"] == "[CID-1000] Printer broken"
    assert sent["In-Reply-To"] == f"<{mid}>"
    assert sent["Auto-Submitted"] == "auto-replied"
    assert "support@example.com" in sent["Reply-To"]
    assert sent["Message-ID"].endswith("@example.com>")


def test_same_bytes_twice_leave_one_article(ctx: Context) -> None:
    raw = make_mail()
    ingest(ctx, raw)
    ingest(ctx, raw)
    assert len(articles(ctx, 1000)) == 1
    assert len(outbox(ctx)) == 1


def test_same_message_by_another_path_is_ignored_as_duplicate(ctx: Context) -> None:
    raw = make_mail()
    ingest(ctx, raw)
    outcome = ingest(ctx, b"Received: from relay2.example by mx\r\n" + raw, source="imap:support")
    assert outcome.status == "ignored"
    assert outcome.reason.startswith("duplicate of stored message")
    assert len(articles(ctx, 1000)) == 1


def test_same_message_twice_in_one_batch_is_one_ticket(ctx: Context) -> None:
    """The duplicate check of a batch reads its Message-IDs once, and still sees what the
    batch itself has done (the first copy's ticket) by the time the second copy comes."""
    raw = make_mail()
    other = make_mail(subject="Something else")
    copies = [raw, other, b"Received: from relay2.example by mx\r\n" + raw]
    stored = accept_many(ctx.store, [Incoming(r, "smtp", ctx.clock()) for r in copies])
    outcomes = process_batch(ctx, [a.intake_id for a in stored])
    assert [o.describe() for o in outcomes[:2]] == ["ticket CID-1000", "ticket CID-1001"]
    assert outcomes[2].status == "ignored"
    assert outcomes[2].reason == f"duplicate of stored message {stored[0].intake_id}"
    assert len(tickets(ctx)) == 2


def test_automatic_mail_opens_ticket_without_acknowledgement(ctx: Context) -> None:
    raw = make_mail(headers={"Auto-Submitted": "auto-generated"})
    assert ingest(ctx, raw).describe() == "ticket CID-1000"
    assert outbox(ctx) == []


def test_precedence_bulk_gets_no_acknowledgement(ctx: Context) -> None:
    ingest(ctx, make_mail(headers={"Precedence": "bulk"}))
    assert outbox(ctx) == []


def test_our_own_mail_is_ignored_as_loop(ctx: Context) -> None:
    outcome = ingest(ctx, make_mail(sender="Support <support@example.com>"))
    assert (outcome.status, outcome.reason) == (
        "ignored",
        "loop: sent from our own address support@example.com",
    )
    assert tickets(ctx) == []


def test_mail_without_sender_is_quarantined(ctx: Context) -> None:
    raw = b"To: support@example.com\r\nSubject: who am I\r\n\r\nbody\r\n"
    outcome = ingest(ctx, raw)
    assert (outcome.status, outcome.reason) == ("quarantined", "no usable sender address in From")
    with ctx.store.session() as session:
        assert stored_raw(session, outcome.intake_id) == raw


def _bounce_for(message_id: str, recipient: str) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\n"
        "To: support@example.com\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <bounce-1@mx.example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour mail could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{message_id}>\r\nSubject: [CID-1000] Printer broken\r\n\r\n"
        "--B--\r\n"
    ).encode()


def test_bounce_of_acknowledgement_is_a_system_note_and_marks_contact(ctx: Context) -> None:
    ingest(ctx, make_mail())
    ack_id = outbox(ctx)[0].message_id
    outcome = ingest(ctx, _bounce_for(ack_id, "alice@acme.example"))
    assert outcome.describe() == "reply CID-1000"
    assert [a.direction for a in articles(ctx, 1000)] == ["customer", "system"]
    assert len(tickets(ctx)) == 1 and len(outbox(ctx)) == 1
    with ctx.store.session() as session:
        contact = session.exec(select(Contact).where(Contact.email == "alice@acme.example")).one()
        assert contact.failing


def test_bounce_about_unknown_mail_is_ignored(ctx: Context) -> None:
    outcome = ingest(ctx, _bounce_for("nothing@elsewhere.example", "x@acme.example"))
    assert (outcome.status, outcome.reason) == ("ignored", "bounce about no ticket of ours")
    assert tickets(ctx) == [] and outbox(ctx) == []


def test_attachment_content_is_stored_once(ctx: Context) -> None:
    payload = b"%PDF-1.4 invoice" * 100
    files = (("Rechnung März.pdf", "application/pdf", payload),)
    ingest(ctx, make_mail(attachments=files))
    ingest(ctx, make_mail(subject="Re: [CID-1000] Printer broken", attachments=files))
    with ctx.store.session() as session:
        stored = list(session.exec(select(Attachment)))
    assert [a.filename for a in stored] == ["Rechnung März.pdf"] * 2
    assert len({a.sha256 for a in stored}) == 1
    assert blobs.read(Path(ctx.config.paths.data_dir), stored[0].sha256) == payload


def test_sender_matched_by_claimed_domain_joins_organisation(ctx: Context) -> None:
    claim_domain(ctx, "ACME", "acme.example")
    ingest(ctx, make_mail(sender="alice@acme.example"))
    ingest(ctx, make_mail(sender="bob@acme.example", subject="Another thing"))
    first, second = tickets(ctx)
    assert first.organisation_id == second.organisation_id
    assert first.requester_id != second.requester_id


def test_free_mail_senders_get_separate_organisations(ctx: Context) -> None:
    ingest(ctx, make_mail(sender="a@gmail.com"))
    ingest(ctx, make_mail(sender="b@gmail.com", subject="Other"))
    first, second = tickets(ctx)
    assert first.organisation_id != second.organisation_id


def test_unknown_sender_rejected_by_policy(ctx: Context) -> None:
    policy = dataclasses.replace(ctx.config.customers, unknown_sender="reject")
    ctx2 = dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, customers=policy))
    outcome = ingest(ctx2, make_mail(sender="stranger@nowhere.example"))
    assert outcome.status == "ignored"
    assert "rejected by policy" in outcome.reason
    (refusal,) = outbox(ctx)
    assert (refusal.template, refusal.to_addrs) == ("rejected_sender", "stranger@nowhere.example")
    ingest(
        ctx2, make_mail(sender="robot@nowhere.example", headers={"Auto-Submitted": "auto-replied"})
    )
    assert len(outbox(ctx)) == 1  # an automatic mail is never answered


def test_german_contact_gets_german_acknowledgement(ctx: Context) -> None:
    with ctx.store.session() as session:
        from mailgate.desk.customers import ensure_contact

        contact = ensure_contact(
            session, "kunde@firma.example", "Kunde", ctx.config.customers, ctx.clock()
        )
        contact.language = "de"
        session.add(contact)
    ingest(ctx, make_mail(sender="kunde@firma.example", subject="Drucker"))
    text = parsed(outbox(ctx)[0].raw).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "CID-1000" in text
    assert "vielen Dank für Ihre Nachricht" in text


def test_served_address_rule_for_several_recipients(ctx: Context) -> None:
    raw = make_mail(to="support-comment@example.com, support@example.com")
    ingest(ctx, raw)
    assert tickets(ctx)[0].served_address == "support@example.com"


def test_failure_in_a_stage_quarantines_with_reason_and_retry_processes(ctx: Context) -> None:
    broken = dataclasses.replace(ctx, renderer=None)  # type: ignore[arg-type]
    outcome = ingest(broken, make_mail())
    assert outcome.status == "quarantined"
    assert "AttributeError" in outcome.reason
    assert tickets(ctx) == []  # the failed transaction left nothing half-written
    from mailgate.flows.pipeline import retry

    (again,) = retry(ctx, [outcome.intake_id])
    assert again.describe() == "ticket CID-1000"


def test_new_contact_language_from_content_language(ctx: Context) -> None:
    ingest(ctx, make_mail(sender="juergen@firma.example", headers={"Content-Language": "de-DE"}))
    # Italian is no template language: the next one listed is.
    ingest(ctx, make_mail(sender="jane@corp.example", headers={"Content-Language": "it, en"}))
    ingest(ctx, make_mail(sender="claire@client.example", headers={"Content-Language": "fr-FR"}))
    german, english, french = (parsed(o.raw) for o in outbox(ctx))
    assert "vielen Dank" in german.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "thank you" in english.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Nous vous remercions" in french.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_mailbox_routing_sets_category_and_assignee(ctx: Context) -> None:
    from mailgate.config import ImapConfig
    from mailgate.desk.agents import add_agent

    with ctx.store.session() as session:
        add_agent(session, "bea@example.com", "Bea", "de", ctx.clock())
    box = ImapConfig(name="billing", category="billing", responsible_agent="bea@example.com")
    routed = dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, imap=[box]))
    ingest(routed, make_mail(subject="Rechnung"), source="imap:billing")
    ingest(routed, make_mail(subject="Other", sender="x@other.example"), source="smtp")
    billing, other = tickets(ctx)
    assert (billing.category, billing.assignee_id is not None) == ("billing", True)
    assert (other.category, other.assignee_id) == (None, None)


def test_organisations_responsible_agent_wins(ctx: Context) -> None:
    from mailgate.desk.agents import add_agent
    from mailgate.desk.customers import get_or_create_organisation
    from mailgate.store.models import OrganisationDomain

    with ctx.store.session() as session:
        own = add_agent(session, "carl@example.com", "Carl", None, ctx.clock())
        org = get_or_create_organisation(session, "ACME", ctx.clock())
        org.responsible_agent_id = own.id
        session.add(OrganisationDomain(domain="acme.example", organisation_id=org.id or 0))
    ingest(ctx, make_mail())
    (ticket,) = tickets(ctx)
    assert ticket.assignee_id == own.id


def test_cc_to_colleague_makes_participant_but_not_a_stranger(ctx: Context) -> None:
    from mailgate.store.models import Participant

    claim_domain(ctx, "ACME", "acme.example")
    ingest(ctx, make_mail(sender="alice@acme.example"))
    raw = make_mail(
        subject="Re: [CID-1000] Printer broken",
        to="support@example.com, bob@acme.example",
        headers={"Cc": "carol@acme.example, eve@evil.example"},
    )
    ingest(ctx, raw)
    with ctx.store.session() as session:
        rows = session.exec(
            select(Participant, Contact).where(Participant.contact_id == Contact.id)
        ).all()
        emails = sorted(contact.email for _, contact in rows)
        strangers = session.exec(select(Contact).where(Contact.email == "eve@evil.example")).all()
    assert emails == ["bob@acme.example", "carol@acme.example"]
    assert strangers == []


def test_list_subject_answers_with_own_organisations_tickets(ctx: Context) -> None:
    import io

    import openpyxl

    claim_domain(ctx, "ACME", "acme.example")
    ingest(ctx, make_mail(sender="alice@acme.example", subject="First problem"))
    ingest(ctx, make_mail(sender="zed@other.example", subject="Someone else's"))
    outcome = ingest(ctx, make_mail(sender="bob@acme.example", subject="Re: list"))
    ingest(ctx, make_mail(sender="alice@acme.example", subject="Meine Tickets"))
    assert (outcome.status, outcome.reason) == ("ignored", "answered with the ticket list")
    assert len(tickets(ctx)) == 2
    reply = next(o for o in outbox(ctx) if o.template == "ticket_list")
    assert reply.to_addrs == "bob@acme.example"
    sheet = next(
        p
        for p in parsed(reply.raw).iter_attachments()
        if (p.get_filename() or "").endswith(".xlsx")
    )
    book = openpyxl.load_workbook(io.BytesIO(sheet.get_content()))
    cells = [str(c.value) for row in book.active.iter_rows() for c in row if c.value]
    assert "CID-1000" in cells and "First problem" in cells
    assert "CID-1001" not in cells and "Someone else's" not in cells


VERIFIED = {"Authentication-Results": "mx.example.com; dkim=pass header.d=example.com"}


def test_agent_opens_ticket_for_customer_who_phoned(ctx: Context) -> None:
    from mailgate.desk.agents import add_agent

    with ctx.store.session() as session:
        add_agent(session, "bob@example.com", "Bob", "en", ctx.clock())
    raw = make_mail(
        sender="bob@example.com",
        subject="Anruf: Drucker",
        body="#customer alice@acme.example #priority A\n\nKundin rief an: Drucker defekt.\n",
        headers=VERIFIED,
    )
    assert ingest(ctx, raw).describe() == "ticket CID-1000"
    (ticket,) = tickets(ctx)
    (article,) = articles(ctx, 1000)
    assert (ticket.priority, article.direction) == ("A", "internal")
    assert article.text.strip() == "Kundin rief an: Drucker defekt."
    with ctx.store.session() as session:
        requester = session.get(Contact, ticket.requester_id)
        assert requester is not None and requester.email == "alice@acme.example"
    assert [(o.template, o.to_addrs) for o in outbox(ctx)] == [
        ("acknowledgement_on_behalf", "alice@acme.example")
    ]


def test_agent_mail_without_tag_or_customer_is_answered_not_ticketed(ctx: Context) -> None:
    from mailgate.desk.agents import add_agent

    with ctx.store.session() as session:
        add_agent(session, "bob@example.com", "Bob", "en", ctx.clock())
    outcome = ingest(ctx, make_mail(sender="bob@example.com", headers=VERIFIED))
    assert outcome.status == "ignored"
    assert tickets(ctx) == []
    assert [(o.template, o.to_addrs) for o in outbox(ctx)] == [("command_error", "bob@example.com")]


def test_customer_given_priority_type_and_reference(ctx: Context) -> None:
    from mailgate.config import TicketsConfig
    from mailgate.store.models import TicketReference

    patterns = [r"(?i)\border\s*#?\s*(\d{5,})"]
    cfg = dataclasses.replace(ctx.config, tickets=TicketsConfig(reference_patterns=patterns))
    body = "Priority: A\nType: bug\n\nOrder #123456 crashes the shop.\n"
    ingest(dataclasses.replace(ctx, config=cfg), make_mail(body=body))
    (ticket,) = tickets(ctx)
    assert (ticket.priority, ticket.type) == ("A", "bug")
    with ctx.store.session() as session:
        refs = [r.reference for r in session.exec(select(TicketReference))]
    assert refs == ["123456"]


def test_category_from_the_served_address(ctx: Context) -> None:
    from mailgate.config import SmtpConfig

    smtp = SmtpConfig(
        addresses=["support@example.com", "billing@example.com"],
        categories={"Billing@example.com": "billing"},
    )
    routed = dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, smtp=smtp))
    ingest(routed, make_mail(to="billing@example.com", subject="Rechnung falsch"))
    ingest(routed, make_mail(to="support@example.com", subject="Drucker"))
    assert [t.category for t in tickets(ctx)] == ["billing", None]


def test_default_agent_takes_what_nobody_else_assigns(ctx: Context) -> None:
    from mailgate.config import StaffConfig
    from mailgate.desk.agents import add_agent

    with ctx.store.session() as session:
        dora = add_agent(session, "dora@example.com", "Dora", "en", ctx.clock())
    staff = StaffConfig(default_agent="dora@example.com")
    routed = dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, staff=staff))
    ingest(routed, make_mail())
    assert tickets(ctx)[0].assignee_id == dora.id


def _deliver(ctx: Context) -> None:
    with ctx.store.session() as session:
        ticket = session.exec(select(Ticket)).one()
        ticket.status = "delivered"
        session.add(ticket)


@pytest.mark.parametrize(
    ("first_line", "status"),
    [("ok", "closed"), ("Bestätigt.", "closed"), ("OK!", "closed"), ("Not yet", "working")],
)
def test_customer_reply_to_delivered_ticket(ctx: Context, first_line: str, status: str) -> None:
    ingest(ctx, make_mail())
    _deliver(ctx)
    ingest(ctx, make_mail(subject="Re: [CID-1000] Printer broken", body=f"{first_line}\n\nThanks"))
    assert tickets(ctx)[0].status == status
    templates = [o.template for o in outbox(ctx)]
    assert ("closed" in templates) == (status == "closed")


@pytest.mark.parametrize("word", ["abmelden", "Unsubscribe", "Se désabonner"])
def test_opt_out_word_stops_optional_status_mail(ctx: Context, word: str) -> None:
    ingest(ctx, make_mail())
    ingest(ctx, make_mail(subject="Re: [CID-1000] Printer broken", body=f"{word}\n"))
    with ctx.store.session() as session:
        contact = session.exec(select(Contact).where(Contact.email == "alice@acme.example")).one()
    assert contact.opted_out


def test_ignore_list_stores_and_ignores(ctx: Context) -> None:
    from mailgate.config import LoopsConfig

    loops = LoopsConfig(ignore_senders=["orders@shop.example", "*@newsletter.example"])
    cfg = dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, loops=loops))
    first = ingest(cfg, make_mail(sender="Shop <Orders@shop.example>", subject="Order 4711"))
    second = ingest(cfg, make_mail(sender="news@newsletter.example", subject="News"))
    assert (first.status, first.reason) == (
        "ignored",
        "ignore list: sender matches orders@shop.example",
    )
    assert second.reason == "ignore list: sender matches *@newsletter.example"
    assert tickets(ctx) == [] and outbox(ctx) == []


def test_unwritable_data_directory_defers_instead_of_quarantining(
    ctx: Context, tmp_path: Path
) -> None:
    from mailgate.config import PathsConfig
    from mailgate.flows.pipeline import process
    from mailgate.store.database import StoreUnavailable
    from mailgate.store.spool import accept

    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the data directory should be")
    broken = dataclasses.replace(
        ctx, config=dataclasses.replace(ctx.config, paths=PathsConfig(data_dir=str(blocked)))
    )
    raw = make_mail(attachments=(("a.pdf", "application/pdf", b"%PDF-1.4"),))
    stored = accept(ctx.store, raw, "smtp", ctx.clock())
    with pytest.raises(StoreUnavailable, match="data directory"):
        process(broken, stored.intake_id)
    with ctx.store.session() as session:
        waiting = session.get(Intake, stored.intake_id)
        assert waiting is not None and waiting.status == "received"
    assert process(ctx, stored.intake_id).describe() == "ticket CID-1000"


def _stored(ctx: Context, *raws: bytes) -> list[int]:
    now = ctx.clock()
    return [a.intake_id for a in accept_many(ctx.store, [Incoming(r, "smtp", now) for r in raws])]


def test_batch_threads_a_reply_to_the_ticket_opened_earlier_in_it(ctx: Context) -> None:
    ids = _stored(
        ctx,
        make_mail(subject="Printer broken"),
        make_mail(subject="Re: [CID-1000] Printer broken", body="It is on fire now."),
        make_mail(sender="bob@other.example", subject="VPN down"),
    )
    outcomes = process_batch(ctx, ids)
    assert [o.describe() for o in outcomes] == [
        "ticket CID-1000",
        "reply CID-1000",
        "ticket CID-1001",
    ]
    assert len(articles(ctx, 1000)) == 2
    assert sorted(o.to_addrs for o in outbox(ctx)) == ["alice@acme.example", "bob@other.example"]


def test_a_failing_message_in_a_batch_is_quarantined_alone(
    ctx: Context, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_route = apply.route

    def route_failing_on_poison(*args: Any, **kwargs: Any) -> Any:
        if args[1].subject == "poison":
            raise RuntimeError("stage broke")
        return real_route(*args, **kwargs)

    monkeypatch.setattr(apply, "route", route_failing_on_poison)
    ids = _stored(
        ctx,
        make_mail(subject="first"),
        make_mail(subject="poison", sender="mallory@evil.example"),
        make_mail(subject="third", sender="bob@other.example"),
    )
    with caplog.at_level("INFO", logger="mailgate.pipeline"):
        outcomes = process_batch(ctx, ids)
    assert [o.describe() for o in outcomes] == [
        "ticket CID-1000",
        "quarantined: RuntimeError: stage broke",
        "ticket CID-1001",
    ]
    assert "event=batch_split messages=3" in caplog.text
    assert [t.subject for t in tickets(ctx)] == ["first", "third"]
    assert len(outbox(ctx)) == 2  # the rolled-back first try queued nothing twice


def test_batch_reports_messages_already_done_or_missing(ctx: Context) -> None:
    (done,) = _stored(ctx, make_mail())
    process_batch(ctx, [done])
    (fresh,) = _stored(ctx, make_mail(subject="Another", sender="bob@other.example"))
    outcomes = process_batch(ctx, [done, fresh, 999_999])
    assert [o.describe() for o in outcomes] == [
        "done: already processed",
        "ticket CID-1001",
        "quarantined: no such stored message",
    ]
    assert [o.source for o in outcomes] == ["", "smtp", ""]
