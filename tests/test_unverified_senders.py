"""A ticket of an unverified sender (a From that names no single clean address): nothing of it
is mailed to anyone the From names, the agent who answers is told why, and once staff set
the real customer with `#customer`, the ticket is that customer's like any other."""

from __future__ import annotations

from tests.helpers import Clock
from tests.mailroom import AGENT, Mailroom, text_of, to
from tests.mails import make_mail

ALICE = "alice@customer.test"
ATTACKER = "attacker@evil.test"
FROM = f"{ALICE}, {ATTACKER}"


def ambiguous(subject: str = "Invoice 4711 is wrong") -> bytes:
    raw = make_mail(sender="placeholder@example.net", subject=subject, body="Please fix it.\n")
    return raw.replace(b"From: placeholder@example.net\r\n", f"From: {FROM}\r\n".encode())


def agent_mail(body: str, cid: str = "CID-1001") -> bytes:
    return make_mail(subject=f"Re: [{cid}] Invoice 4711 is wrong", body=body, sender=AGENT)


def desk_with_unverified_ticket(room: Mailroom) -> None:
    """CID-1000 is Alice's (acknowledged); CID-1001 came with an ambiguous From naming her."""
    assert room.ingest(make_mail(sender=f"Alice <{ALICE}>", subject="VPN")) == "ticket CID-1000"
    assert len(to(room.new_mail(), ALICE)) == 1
    assert room.ingest(ambiguous()) == "ticket CID-1001 (unverified sender)"
    assert room.new_mail() == []


def test_an_answer_goes_to_nobody_and_the_agent_is_told(room: Mailroom, clock: Clock) -> None:
    desk_with_unverified_ticket(room)
    assert room.ingest(agent_mail("Hello,\n\nwhich invoice do you mean?\n")) == "reply CID-1001"
    (notice,) = room.new_mail()
    assert str(notice["To"]) == AGENT
    assert str(notice["Subject"]) == "[CID-1001] Not sent: the sender is unverified"
    text = text_of(notice)
    assert "was not sent" in text and FROM in text
    assert "#customer Name <address>" in text
    shown = room.show("CID-1001")
    assert shown["articles"][1]["direction"] == "staff"  # the answer is kept on the ticket
    assert any(
        e["action"] == "mail_not_sent" and e["detail"].startswith("staff_answer: unverified sender")
        for e in shown["events"]
    )


def test_status_mails_go_to_nobody(room: Mailroom, clock: Clock) -> None:
    desk_with_unverified_ticket(room)
    assert room.ingest(agent_mail("#deliver")) == "reply CID-1001"
    assert room.show("CID-1001")["status"] == "delivered"
    assert room.new_mail() == []


def test_after_customer_is_set_the_answer_reaches_her(room: Mailroom, clock: Clock) -> None:
    desk_with_unverified_ticket(room)
    assert room.ingest(agent_mail(f"#customer Alice <{ALICE}>")) == "reply CID-1001"
    assert room.new_mail() == []  # setting the customer writes to nobody by itself
    shown = room.show("CID-1001")
    assert (shown["requester"], shown["customer"]) == (ALICE, ALICE)
    assert any(e["action"] == "customer" for e in shown["events"])
    listed = room.json("tickets", "list", "--customer", ALICE)
    assert [t["cid"] for t in listed] == ["CID-1000", "CID-1001"]
    assert room.ingest(agent_mail("Hello Alice,\n\nthe invoice is corrected.\n")) == (
        "reply CID-1001"
    )
    (answer,) = room.new_mail()
    assert str(answer["To"]) == ALICE
    assert "the invoice is corrected" in text_of(answer)
    assert ATTACKER not in str(answer)


def test_customer_and_answer_in_one_mail(room: Mailroom, clock: Clock) -> None:
    desk_with_unverified_ticket(room)
    body = f"#customer {ALICE}\n\nHello Alice,\n\nthe invoice is corrected.\n"
    assert room.ingest(agent_mail(body)) == "reply CID-1001"
    (answer,) = room.new_mail()
    assert str(answer["To"]) == ALICE


def test_her_list_leaves_it_out_until_then(room: Mailroom, clock: Clock) -> None:
    desk_with_unverified_ticket(room)
    assert room.ingest(make_mail(sender=ALICE, subject="list")).startswith("ignored")
    (listing,) = room.new_mail()
    assert "CID-1000" in text_of(listing) and "CID-1001" not in text_of(listing)


def test_the_unverified_sender_is_no_customer(room: Mailroom, clock: Clock) -> None:
    desk_with_unverified_ticket(room)
    names = [org["name"] for org in room.json("customers", "list")]
    assert names == [ALICE]


def test_the_stand_in_cannot_be_moved_into_a_company(room: Mailroom, clock: Clock) -> None:
    """Its tickets would all become that company's: each one's customer is set on its own."""
    desk_with_unverified_ticket(room)
    moved = room.run("customers", "move", "unverified-sender", "Acme GmbH")
    assert moved.returncode == 65
    assert "set each ticket's customer with #customer" in moved.stderr
    assert room.show("CID-1001")["customer"] == "Unverified senders"


def test_customer_on_an_ordinary_ticket_is_refused_and_changes_nothing(
    room: Mailroom, clock: Clock
) -> None:
    # CID-1000 is Alice's: #customer names the customer of a new or an unverified ticket only.
    desk_with_unverified_ticket(room)
    assert room.ingest(agent_mail(f"#customer {ATTACKER}", cid="CID-1000")) == "reply CID-1000"
    (notice,) = to(room.new_mail(), AGENT)
    text = text_of(notice)
    assert f"#customer {ATTACKER}" in text and f"already {ALICE}'s" in text
    assert "customers move" in text
    assert room.show("CID-1000")["requester"] == ALICE
