"""A ticket's life as people mean it: staff mail on closed tickets, replies long after
closing, confirmations in a few words, and what the customer hears of priority and hold."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from mailgate.desk.agents import add_agent
from mailgate.moments import aware
from mailgate.outbound.context import Context
from mailgate.store.models import Ticket
from tests.helpers import claim_domain, ingest, outbox, parsed
from tests.mails import make_mail
from tests.test_cli import mailgate

AGENT = "anna@example.com"
CUSTOMER = "alice@acme.example"
VERIFIED = {"Authentication-Results": "mx.example.com; dkim=pass header.d=example.com"}


@pytest.fixture
def desk(ctx: Context) -> Context:
    """CID-1000 opened by the customer; one agent, Anna."""
    with ctx.store.session() as session:
        add_agent(session, AGENT, "Anna Agent", "en", ctx.clock())
    claim_domain(ctx, "ACME", "acme.example")  # Alice's colleagues take part in her tickets
    assert ingest(ctx, make_mail(subject="Drucker defekt")).describe() == "ticket CID-1000"
    return ctx


def staff(ctx: Context, body: str, to: str = "support@example.com", tag: str = "CID-1000") -> str:
    """An agent's mail as our MTA hands it over, with its verdict on the sender."""
    subject = f"Re: [{tag}] Drucker defekt"
    raw = make_mail(subject=subject, sender=AGENT, to=to, body=body, headers=VERIFIED)
    return ingest(ctx, raw).describe()


def customer(ctx: Context, body: str, tag: str = "CID-1000", **mail: Any) -> str:
    return ingest(
        ctx, make_mail(subject=f"AW: [{tag}] Drucker defekt", body=body, **mail)
    ).describe()


def customer_mails(ctx: Context, after: int = 0) -> list[tuple[str, Message]]:
    """What reached the customer after outbox row `after`: (template, the mail as read)."""
    return [
        (row.template, parsed(row.raw))
        for row in outbox(ctx)
        if (row.id or 0) > after and CUSTOMER in row.to_addrs
    ]


def last_outbox_id(ctx: Context) -> int:
    rows = outbox(ctx)
    return (rows[-1].id or 0) if rows else 0


def text_of(msg: Message) -> str:
    body = msg.get_body(("plain",)).get_content()  # type: ignore[attr-defined, union-attr]
    return str(body).replace("\r\n", "\n")


def show(ctx: Context, tmp_path: Path, cid: str = "CID-1000") -> dict[str, Any]:
    """`mailgate tickets show CID --format json`, as staff and scripts read a ticket."""
    path = tmp_path / "show.toml"
    path.write_text(
        f'[database]\nurl = "{ctx.config.database.url}"\n'
        f'[paths]\ndata_dir = "{tmp_path}/data"\n'
        '[smtp]\naddresses = ["support@example.com"]\n',
        encoding="utf-8",
    )
    result = mailgate("tickets", "show", cid, "--format", "json", config=path)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def status_events(shown: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["actor"], e["detail"]) for e in shown["events"] if e["action"] == "status"]


def close(ctx: Context) -> None:
    """Staff close the ticket by mail."""
    assert staff(ctx, "#close") == "reply CID-1000"


# --- staff mail on a closed ticket -------------------------------------------------------------


def test_internal_comment_on_a_closed_ticket_leaves_it_closed(
    desk: Context, tmp_path: Path
) -> None:
    close(desk)
    before = last_outbox_id(desk)
    desk.clock.advance(days=2)  # type: ignore[attr-defined]
    assert staff(desk, "Called her, all fine.", to="support-comment@example.com") == (
        "reply CID-1000"
    )
    shown = show(desk, tmp_path)
    assert shown["status"] == "closed"
    assert shown["articles"][-1]["direction"] == "internal"
    assert status_events(shown) == [(AGENT, "open -> closed")]
    assert customer_mails(desk, before) == []


def test_staff_answer_on_a_closed_ticket_is_sent_and_the_ticket_stays_closed(
    desk: Context, tmp_path: Path
) -> None:
    close(desk)
    before = last_outbox_id(desk)
    assert staff(desk, "One more hint: the driver is on our site.") == "reply CID-1000"
    assert show(desk, tmp_path)["status"] == "closed"
    [(template, mail)] = customer_mails(desk, before)
    assert template == "staff_answer"
    assert text_of(mail).startswith("One more hint")


def test_status_working_with_internal_reopens_without_a_word_to_the_customer(
    desk: Context, tmp_path: Path
) -> None:
    close(desk)
    before = last_outbox_id(desk)
    assert staff(desk, "#status working #internal\n\nLooking at the logs again.") == (
        "reply CID-1000"
    )
    shown = show(desk, tmp_path)
    assert shown["status"] == "working"
    assert status_events(shown)[-1] == (AGENT, "closed -> working")
    assert "customer replied" not in json.dumps(shown["events"])
    assert customer_mails(desk, before) == []


def test_reopen_by_command_names_the_agent_and_tells_the_customer(
    desk: Context, tmp_path: Path
) -> None:
    close(desk)
    before = last_outbox_id(desk)
    assert staff(desk, "#reopen\n\nWe found the cause after all.") == "reply CID-1000"
    shown = show(desk, tmp_path)
    assert shown["status"] == "open"
    assert status_events(shown)[-1] == (AGENT, "closed -> open")
    assert [t for t, _ in customer_mails(desk, before)] == ["staff_answer", "reopened"]


def test_internal_delivery_sends_the_customer_nothing(desk: Context, tmp_path: Path) -> None:
    before = last_outbox_id(desk)
    assert staff(desk, "#deliver #internal\n\nShould be fixed.", to="support@example.com") == (
        "reply CID-1000"
    )
    assert show(desk, tmp_path)["status"] == "delivered"
    assert customer_mails(desk, before) == []


# --- staff mail on a ticket closed long ago ---------------------------------------------------


def test_staff_mail_on_a_long_closed_ticket_lands_on_it(desk: Context, tmp_path: Path) -> None:
    close(desk)
    desk.clock.advance(days=desk.config.tickets.reopen_days + 5)  # type: ignore[attr-defined]
    before = last_outbox_id(desk)
    assert staff(desk, "Note for the records.", to="support-comment@example.com") == (
        "reply CID-1000"
    )
    assert staff(desk, "#reopen\n\nThe replacement part has arrived.") == "reply CID-1000"
    with desk.store.session() as session:
        assert len(list(session.exec(select(Ticket)))) == 1
    shown = show(desk, tmp_path)
    assert [a["direction"] for a in shown["articles"]][-2:] == ["internal", "staff"]
    assert shown["status"] == "open"
    assert [t for t, _ in customer_mails(desk, before)] == ["staff_answer", "reopened"]
    assert not [row for row in outbox(desk) if row.template == "command_error"]


# --- customer replies long after closing ------------------------------------------------------


def test_replies_to_a_long_closed_ticket_gather_on_one_follow_up(
    desk: Context, tmp_path: Path
) -> None:
    [ack] = [row for row in outbox(desk) if row.template == "acknowledgement"]
    close(desk)
    desk.clock.advance(days=desk.config.tickets.reopen_days + 1)  # type: ignore[attr-defined]
    assert customer(desk, "Der Drucker ist wieder kaputt.") == "ticket CID-1001"
    assert customer(desk, "Hier noch ein Foto.") == "reply CID-1001"
    colleague = "Bob Kollege <bob@acme.example>"
    assert customer(desk, "Bei mir auch.", sender=colleague) == "reply CID-1001"
    untagged = make_mail(subject="Drucker", body="Und noch etwas.", in_reply_to=ack.message_id)
    assert ingest(desk, untagged).describe() == "reply CID-1001"
    old, follow_up = show(desk, tmp_path, "CID-1000"), show(desk, tmp_path, "CID-1001")
    assert old["status"] == "closed"
    assert [a["direction"] for a in old["articles"]] == ["customer", "staff"]  # and #close
    assert follow_up["linked_ticket"] == "CID-1000"
    assert len(follow_up["articles"]) == 4


def test_a_reply_on_the_old_thread_reopens_a_recently_closed_follow_up(desk: Context) -> None:
    close(desk)
    desk.clock.advance(days=desk.config.tickets.reopen_days + 1)  # type: ignore[attr-defined]
    assert customer(desk, "Wieder kaputt.") == "ticket CID-1001"
    assert staff(desk, "#close", tag="CID-1001") == "reply CID-1001"
    desk.clock.advance(days=3)  # type: ignore[attr-defined]
    assert customer(desk, "Schon wieder.") == "reply CID-1001"
    with desk.store.session() as session:
        statuses = [t.status for t in session.exec(select(Ticket).order_by(Ticket.number))]
    assert statuses == ["closed", "open"]


def test_the_reopen_window_counts_from_closing_not_from_the_last_note(desk: Context) -> None:
    close(desk)
    desk.clock.advance(days=20)  # type: ignore[attr-defined]
    assert staff(desk, "Archived.", to="support-comment@example.com") == "reply CID-1000"
    auto = {"Auto-Submitted": "auto-replied"}
    assert customer(desk, "Ich bin im Urlaub.", headers=auto) == "reply CID-1000"
    desk.clock.advance(days=15)  # 35 days after closing, 15 after the note
    assert customer(desk, "Wieder kaputt.") == "ticket CID-1001"


# --- confirming a delivered ticket ------------------------------------------------------------

SIGNATURE = (
    "\n\nMit freundlichen Grüßen\nHans Kunde\nAcme GmbH\n\n"
    "Diese E-Mail ist vertraulich. Wenn Sie nicht der richtige Adressat sind, "
    "informieren Sie bitte den Absender.\n"
)


@pytest.mark.parametrize(
    "answer",
    [
        "Bestätigt, vielen Dank!",
        "Ja passt, danke",
        "OK danke!",
        "Hallo Frau Agent,\n\nja passt, danke!",
        "ok, vielen Dank für die schnelle Hilfe." + SIGNATURE,
        "Confirmed, thank you!",
        "Yes, works now. Thanks a lot!\n\nBest regards\nAlice\n-- \nNot for the public.",
        "Hi Anna, ok thanks!",
        "Thanks, all good.",  # a thank-you first, then the confirmation
    ],
)
def test_a_confirmation_in_a_few_words_closes(desk: Context, tmp_path: Path, answer: str) -> None:
    assert staff(desk, "#deliver\n\nThe new driver fixes it.") == "reply CID-1000"
    before = last_outbox_id(desk)
    quoted = "\n\nAm 02.11.2026 schrieb Support:\n> Bitte bestätigen Sie nicht.\n"
    assert customer(desk, answer + quoted) == "reply CID-1000"
    shown = show(desk, tmp_path)
    assert shown["status"] == "closed"
    assert status_events(shown)[-1] == (CUSTOMER, "delivered -> closed (customer confirmed)")
    assert [t for t, _ in customer_mails(desk, before)] == ["closed"]


@pytest.mark.parametrize(
    "answer",
    [
        "OK, aber der Drucker druckt immer noch nicht.",
        "Ja, danke.\n\nLeider kommt die Meldung jetzt bei Frau Meier.",
        "Passt nicht, der Fehler ist noch da." + SIGNATURE,
        "Bestätigt. Können Sie uns noch die Rechnung schicken?",
        "OK but the printer still jams.",
        "Yes, thanks. It doesn't print in colour though.",
        "Confirmed? It crashes when I open the tray",
        "Yes, it crashed again.",
        "Ja, das Programm ist wieder abgestürzt.",
        "Thanks, I will try it tomorrow.",  # no confirm word after the thanks: staff decide
    ],
)
def test_a_reply_that_goes_on_to_report_a_problem_reopens(
    desk: Context, tmp_path: Path, answer: str
) -> None:
    assert staff(desk, "#deliver\n\nThe new driver fixes it.") == "reply CID-1000"
    assert customer(desk, answer) == "reply CID-1000"
    shown = show(desk, tmp_path)
    assert shown["status"] == "working"
    assert status_events(shown)[-1] == (CUSTOMER, "delivered -> working (customer replied)")


# --- what the customer hears of priority and hold ---------------------------------------------

GERMAN = (
    "Guten Tag,\n\nunser Drucker druckt seit heute Morgen nicht mehr. "
    "Können Sie uns bitte helfen?\n"
)


@pytest.fixture
def berlin(desk: Context) -> Context:
    """The desk working in Berlin time, and a German-speaking customer on CID-1001."""
    tickets_cfg = dataclasses.replace(desk.config.tickets, timezone="Europe/Berlin")
    ctx = dataclasses.replace(desk, config=dataclasses.replace(desk.config, tickets=tickets_cfg))
    hans = "Hans Kunde <hans@kunde.example>"
    assert ingest(ctx, make_mail(subject="Drucker", body=GERMAN, sender=hans)).created
    return ctx


def mails_to(ctx: Context, address: str, after: int) -> list[tuple[str, str]]:
    """(template, plain text) of each mail to `address` after outbox row `after`."""
    return [
        (row.template, text_of(parsed(row.raw)))
        for row in outbox(ctx)
        if (row.id or 0) > after and address in row.to_addrs
    ]


def test_a_priority_change_tells_the_customer(desk: Context) -> None:
    before = last_outbox_id(desk)
    assert staff(desk, "#priority A") == "reply CID-1000"
    [(template, text)] = mails_to(desk, CUSTOMER, before)
    assert template == "status_changed"
    assert "Priority: B → A" in text
    assert "Status:   open\n" in text and "→ open" not in text
    close(desk)
    before = last_outbox_id(desk)
    assert staff(desk, "#priority C") == "reply CID-1000"
    assert mails_to(desk, CUSTOMER, before) == []  # a closed case is over for the customer


def test_a_priority_change_with_an_answer_or_internal_sends_no_status_mail(desk: Context) -> None:
    before = last_outbox_id(desk)
    assert staff(desk, "#priority A\n\nWe are on it.") == "reply CID-1000"
    assert staff(desk, "#priority C #internal\n\nCan wait.") == "reply CID-1000"
    assert [t for t, _ in mails_to(desk, CUSTOMER, before)] == ["staff_answer"]


def test_the_hold_mail_names_the_day_in_the_customers_language(berlin: Context) -> None:
    before = last_outbox_id(berlin)
    # Stored as 23:00 UTC on the 30th: the day is the desk's, not UTC's.
    assert staff(berlin, "#hold 01.12.2026", tag="CID-1001") == "reply CID-1001"
    assert staff(berlin, "#status hold") == "reply CID-1000"
    [(_, german)] = mails_to(berlin, "hans@kunde.example", before)
    assert "offen → zurückgestellt" in german
    assert "Wir kommen am 1. Dezember 2026 auf Ihr Anliegen zurück." in german
    [html] = [
        parsed(row.raw).get_body(("html",)).get_content()  # type: ignore[union-attr]
        for row in outbox(berlin)
        if (row.id or 0) > before and row.to_addrs == "hans@kunde.example"
    ]
    assert "<strong>1. Dezember 2026</strong>" in html
    [(_, english)] = mails_to(berlin, CUSTOMER, before)
    assert "open → on hold" in english and "come back" not in english  # no date given
    before = last_outbox_id(berlin)
    assert staff(berlin, "#hold 2027-01-15") == "reply CID-1000"
    [(_, later)] = mails_to(berlin, CUSTOMER, before)
    assert "Status:   on hold\n" in later
    assert "We will come back to your request on 15 January 2027." in later


def test_an_answer_with_a_hold_tells_the_day_in_the_same_mail(berlin: Context) -> None:
    before = last_outbox_id(berlin)
    body = "#hold 01.12.2026 #priority A\n\nDas Ersatzteil ist bestellt."
    assert staff(berlin, body, tag="CID-1001") == "reply CID-1001"
    [(template, german)] = mails_to(berlin, "hans@kunde.example", before)
    assert template == "staff_answer"
    assert "Das Ersatzteil ist bestellt." in german
    assert "Status:     offen → zurückgestellt" in german
    assert "Priorität:  B → A" in german
    assert "Wir kommen am 1. Dezember 2026 auf Ihr Anliegen zurück." in german
    before = last_outbox_id(berlin)
    assert staff(berlin, "Nur eine Frage: passt der Termin?", tag="CID-1001") == "reply CID-1001"
    [(_, plain)] = mails_to(berlin, "hans@kunde.example", before)
    assert "Status" not in plain and "Wir kommen am" not in plain


def test_a_signed_answer_has_one_closing(desk: Context) -> None:
    before = last_outbox_id(desk)
    signed = "Hello Alice,\n\nthe driver is fixed.\n\nBest regards\nAnna Agent\n"
    assert staff(desk, signed) == "reply CID-1000"
    assert staff(desk, "The part has shipped.") == "reply CID-1000"
    [(_, first), (_, second)] = mails_to(desk, CUSTOMER, before)
    assert "Anna Agent" in first and "Kind regards" not in first
    assert "Kind regards\nYour support team" in second


def test_a_customer_reply_keeps_the_hold_and_its_date(berlin: Context, tmp_path: Path) -> None:
    assert staff(berlin, "#assign anna\n#hold 2026-12-01", tag="CID-1001") == "reply CID-1001"
    before = last_outbox_id(berlin)
    reply = make_mail(
        subject="AW: [CID-1001] Drucker",
        body="Hier ist das Protokoll.",
        sender="Hans Kunde <hans@kunde.example>",
    )
    assert ingest(berlin, reply).describe() == "reply CID-1001"
    shown = show(berlin, tmp_path, "CID-1001")
    assert shown["status"] == "hold"
    assert [(e["actor"], e["detail"]) for e in shown["events"] if e["action"] == "hold"] == [
        (AGENT, "until 2026-12-01")
    ]
    with berlin.store.session() as session:
        ticket = session.exec(select(Ticket).where(Ticket.number == 1001)).one()
        assert ticket.hold_until is not None
        assert aware(ticket.hold_until) == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    assert [t for t, _ in mails_to(berlin, AGENT, before)] == ["staff_notification"]
    assert mails_to(berlin, "hans@kunde.example", before) == []


def test_an_agent_is_not_told_an_untagged_mail_was_stored(desk: Context) -> None:
    raw = make_mail(
        subject="Kurze Frage", sender=AGENT, body="Wer kennt sich aus?", headers=VERIFIED
    )
    assert ingest(desk, raw).describe().startswith("ignored: staff mail opened no ticket")
    [row] = [row for row in outbox(desk) if row.template == "command_error"]
    text = text_of(parsed(row.raw))
    assert "#customer ADDRESS" in text
    assert "was stored" not in text
    assert "your mail was added to no ticket; nothing was sent to\nanyone" in text
