"""Our own mail is known by a keyed mark in its Message-ID, which nobody else can make; an
X-Loop naming our address or a Message-ID of our shape is what anyone can write."""

from __future__ import annotations

from email.message import EmailMessage

from mailgate.outbound.compose import make_message_id
from tests.mailroom import Mailroom, to
from tests.mails import make_mail

CUSTOMER = "alice@acme.example"
STRANGER = "mallory@evil.example"
OUR_SHAPE = "mailgate.1000.0123456789abcdef@example.com"


def opened(room: Mailroom) -> EmailMessage:
    assert room.ingest(make_mail()) == "ticket CID-1000"
    (ack,) = room.new_mail()
    return ack


def acknowledged(room: Mailroom, address: str) -> EmailMessage:
    (ack,) = to(room.new_mail(), address)
    return ack


def test_a_forged_x_loop_naming_us_gets_a_ticket_and_an_acknowledgement(room: Mailroom) -> None:
    raw = make_mail(headers={"X-Loop": "support@example.com"})
    assert room.ingest(raw) == "ticket CID-1000"
    assert str(acknowledged(room, CUSTOMER)["Subject"]) == "[CID-1000] Printer broken"


def test_a_message_id_of_our_shape_gets_a_ticket_and_an_acknowledgement(room: Mailroom) -> None:
    for shape in (OUR_SHAPE, "mailgate.1000.0123456789abcdef.0123456789abcdef@example.com"):
        raw = make_mail(subject=f"Printer {shape[:13]}", message_id=shape)
        assert room.ingest(raw).startswith("ticket CID-")
        acknowledged(room, CUSTOMER)


def test_our_own_mail_looped_back_is_ignored(room: Mailroom) -> None:
    ack = opened(room)
    assert room.ingest(ack.as_bytes()) == "ignored: loop: sent from our own address " + (
        "support@example.com"
    )
    # A forwarder or list that rewrites From still passes our Message-ID on.
    del ack["From"]
    ack["From"] = "Alice via Lists <lists@lists.example>"
    assert room.ingest(ack.as_bytes()) == "ignored: loop: carries our own Message-ID"
    assert room.new_mail() == []


def test_a_reply_quoting_our_id_threads_and_a_forged_one_does_not(room: Mailroom) -> None:
    ack = opened(room)
    reply = make_mail(subject="Still broken", in_reply_to=str(ack["Message-ID"]).strip("<>"))
    assert room.ingest(reply) == "reply CID-1000"
    # An id of ours for the ticket that no stored mail carries still threads by its number.
    key = bytes.fromhex((room.tmp_path / "data" / "secret.key").read_text().strip())
    signed = make_message_id(1000, "example.com", key).strip("<>")
    assert room.ingest(make_mail(subject="Hello again", in_reply_to=signed)) == "reply CID-1000"
    # The same shape without our mark names no ticket: the stranger gets a ticket of their own.
    forged = make_mail(subject="Your invoice", sender=STRANGER, in_reply_to=OUR_SHAPE)
    assert room.ingest(forged) == "ticket CID-1001"
    assert "[CID-1001]" in str(acknowledged(room, STRANGER)["Subject"])
    assert all(STRANGER not in a["from"] for a in room.show("CID-1000")["articles"])
