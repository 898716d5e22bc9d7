"""A duplicate is the same mail from the same sender: a stranger's copy of Alice's Message-ID
and text never keeps her own mail out, by `mailgate ingest` and by SMTP."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from mailgate.outbound.context import Context
from mailgate.store.models import IGNORED, Intake, Ticket
from tests.daemon_harness import CUSTOMER, SUPPORT, connect, count, daemon_config, running
from tests.helpers import poll
from tests.mailroom import Mailroom
from tests.mails import make_mail, new_message_id

ALICE = f"Alice Kunde <{CUSTOMER}>"
STRANGER = "Mallory <mallory@evil.example>"
TEXT = "Our printer does not print.\n"


def test_a_strangers_copy_does_not_pre_empt_alices_mail(room: Mailroom) -> None:
    mid = new_message_id("acme.example")
    assert room.ingest(make_mail(sender=STRANGER, message_id=mid, body=TEXT)) == "ticket CID-1000"
    room.new_mail()
    assert room.ingest(make_mail(sender=ALICE, message_id=mid, body=TEXT)) == "ticket CID-1001"
    (ack,) = room.new_mail()
    assert (str(ack["To"]), str(ack["Subject"])) == (CUSTOMER, "[CID-1001] Printer broken")
    shown = room.show("CID-1001")
    assert shown["requester"] == CUSTOMER
    assert [a["from"] for a in shown["articles"]] == [CUSTOMER]


def test_in_one_batch_too(room: Mailroom) -> None:
    """A batch notes each outcome for the next message's check: the sender is noted too."""
    mid = new_message_id("acme.example")
    forged = make_mail(sender=STRANGER, message_id=mid, body=TEXT)
    real = make_mail(sender=ALICE, message_id=mid, body=TEXT)
    again = b"Received: from relay2.example by mx.example.com\r\n" + real
    assert room.ingest_many(forged, real, again) == [
        "ticket CID-1000",
        "ticket CID-1001",
        "ignored: duplicate of stored message 2",
    ]


def test_her_own_copy_by_another_path_is_still_a_duplicate(room: Mailroom) -> None:
    raw = make_mail(sender=ALICE, body=TEXT)
    assert room.ingest(raw) == "ticket CID-1000"
    again = b"Received: from relay2.example by mx.example.com\r\n" + raw
    assert room.ingest(again) == "ignored: duplicate of stored message 1"


def test_a_reply_to_her_message_id_joins_her_ticket_not_the_strangers(room: Mailroom) -> None:
    """Two tickets hold an article with one Message-ID: the reply that names it goes to the
    ticket its sender takes part in."""
    mid = new_message_id("acme.example")
    assert room.ingest(make_mail(sender=STRANGER, message_id=mid, body=TEXT)) == "ticket CID-1000"
    assert room.ingest(make_mail(sender=ALICE, message_id=mid, body=TEXT)) == "ticket CID-1001"
    follow = make_mail(sender=ALICE, subject="Re: Printer broken", in_reply_to=mid, body="More.")
    assert room.ingest(follow) == "reply CID-1001"
    assert [a["direction"] for a in room.show("CID-1000")["articles"]] == ["customer"]


def send(address: tuple[str, int], envelope_from: str, raw: bytes) -> None:
    with connect(address) as client:
        assert client.sendmail(envelope_from, [SUPPORT], raw) == {}


def test_by_smtp_a_copy_from_another_envelope_sender_is_her_mail(tmp_path: Path) -> None:
    """The stranger even forges her From: his envelope sender is of another domain, so her
    mail is hers; the same mail relayed again (same envelope domain) is a duplicate."""
    mid = new_message_id("acme.example")
    forged = make_mail(sender=ALICE, message_id=mid, body=TEXT, subject="Invoice")
    real = make_mail(sender=ALICE, message_id=mid, body=TEXT, subject="Invoice", to=SUPPORT)
    config = daemon_config(tmp_path)
    with running(config) as mg:
        send(mg.address, "bounce@evil.example", forged)
        poll(lambda: count(mg.ctx, Ticket) == 1, what="the stranger's ticket")
        send(mg.address, "alice@acme.example", b"Received: by mx1.acme.example\r\n" + real)
        poll(lambda: count(mg.ctx, Ticket) == 2, what="her own ticket")
        # Her mail again, by a second relay of her domain (a tagged envelope sender, as
        # BATV writes it): the same mail, changing nothing.
        send(mg.address, "prvs=1234=alice@acme.example", b"Received: by mx2\r\n" + real)
        poll(lambda: count(mg.ctx, Intake) == 3, what="the third message stored")
        ignored = poll(lambda: _reasons(mg.ctx), what="the duplicate's outcome")
        assert count(mg.ctx, Ticket) == 2
    assert ignored == ["duplicate of stored message 2"]
    sent = sorted(Path(config.outbound.directory).glob("*.eml"))
    assert len(sent) == 2, "each ticket acknowledged once"


def _reasons(ctx: Context) -> list[str]:
    with ctx.store.session() as session:
        return [i.reason for i in session.exec(select(Intake).where(Intake.status == IGNORED))]
