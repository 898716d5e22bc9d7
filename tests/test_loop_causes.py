"""The loop brakes hold back only what a robot can call for: mail caused by a person goes."""

from __future__ import annotations

import pytest

from tests.helpers import Clock
from tests.mailroom import AGENT, Mailroom, to
from tests.mails import make_mail

CUSTOMER = "alice@acme.example"


def agent_says(room: Mailroom, cid: str, text: str) -> None:
    raw = make_mail(subject=f"Re: [{cid}] Printer broken", body=text, sender=f"Anna <{AGENT}>")
    assert room.ingest(raw) == f"reply {cid}"


def subjects(room: Mailroom) -> list[str]:
    return [str(m["Subject"]) for m in to(room.new_mail(), CUSTOMER)]


def test_a_busy_hour_of_status_mails_never_eats_an_acknowledgement(room: Mailroom) -> None:
    assert room.ingest(make_mail()) == "ticket CID-1000"
    for command in ("#deliver", "#status working") * 3 + ("#close",):
        agent_says(room, "CID-1000", command)
    sent = subjects(room)
    assert len(sent) == 8, sent  # the acknowledgement and seven status mails
    # The customer answers the closed ticket: it reopens, and they are told.
    reply = make_mail(subject="Re: [CID-1000] Printer broken", body="Still broken.")
    assert room.ingest(reply) == "reply CID-1000"
    assert len(subjects(room)) == 1
    # Their next request gets its number.
    assert room.ingest(make_mail(subject="Scanner broken")) == "ticket CID-1001"
    (ack,) = subjects(room)
    assert "[CID-1001]" in ack
    events = room.show("CID-1000")["events"]
    assert not [e for e in events if e["action"] == "mail_suppressed"]


def test_a_robot_without_auto_headers_gets_at_most_the_limit(room: Mailroom) -> None:
    for n in range(20):
        raw = make_mail(subject=f"Alert {n}", sender="monitor@acme.example")
        assert room.ingest(raw) == f"ticket CID-{1000 + n}"
    acks = [m for m in room.new_mail() if "monitor@acme.example" in str(m["To"])]
    assert len(acks) == 5
    held = room.show("CID-1005")["events"]
    assert [e["detail"] for e in held if e["action"] == "mail_suppressed"] == [
        "acknowledgement to monitor@acme.example: rate limit: 5 automatic mails to "
        "monitor@acme.example in the last hour"
    ]


def test_the_desk_wide_breaker_holds_automatic_answers_but_not_people(
    room: Mailroom, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    room.configure("[loops]\nmax_auto_mails_per_hour_total = 3\n")
    senders = [f"user{n}@firm{n}.example" for n in range(5)]
    lines = room.ingest_many(*(make_mail(sender=sender) for sender in senders))
    assert lines == [f"ticket CID-{1000 + n}" for n in range(5)]
    acks = room.new_mail()
    assert sorted(str(m["To"]) for m in acks) == senders[:3]
    events = room.show("CID-1003")["events"]
    assert [e["detail"] for e in events if e["action"] == "mail_suppressed"] == [
        f"acknowledgement to {senders[3]}: desk limit: 3 automatic mails to all addresses "
        "in the last hour"
    ]
    logged = [r.getMessage() for r in caplog.records if "desk limit" in r.getMessage()]
    assert len(logged) == 1, logged  # once an hour, not once per held mail
    # An agent's answer and the status mail their command causes still go out.
    raw = make_mail(
        subject="Re: [CID-1004] Printer broken", body="#deliver\n\nFixed.", sender=AGENT
    )
    assert room.ingest(raw) == "reply CID-1004"
    assert [str(m["To"]) for m in room.new_mail()] == [senders[4], senders[4]]
    # An hour after the first acknowledgement, automatic answers go again.
    clock.advance(minutes=61)
    assert room.ingest(make_mail(sender="late@firm9.example")) == "ticket CID-1005"
    assert [str(m["To"]) for m in room.new_mail()] == ["late@firm9.example"]


def test_the_desk_limit_must_be_positive(room: Mailroom) -> None:
    room.configure("[loops]\nmax_auto_mails_per_hour_total = 0\n")
    result = room.run("config", "check")
    assert result.returncode == 78
    assert f"{room.config}: loops.max_auto_mails_per_hour_total: must be at least 1" in (
        result.stderr
    )


def test_the_breaker_holds_no_mail_a_person_caused(room: Mailroom, clock: Clock) -> None:
    """The customer's auto-responder answered three of our mails within the hour: the
    breaker is open for automatic answers, yet the customer's own reply reopening the
    ticket and the agent's closing are told as always."""
    assert room.ingest(make_mail()) == "ticket CID-1000"
    agent_says(room, "CID-1000", "#close")
    for _ in range(3):
        ooo = make_mail(
            subject="Re: [CID-1000] Printer broken", headers={"Auto-Submitted": "auto-replied"}
        )
        assert room.ingest(ooo) == "reply CID-1000"
        clock.advance(minutes=5)
    room.new_mail()
    reply = make_mail(subject="Re: [CID-1000] Printer broken", body="It broke again.")
    assert room.ingest(reply) == "reply CID-1000"
    agent_says(room, "CID-1000", "#close")
    assert len(subjects(room)) == 2  # reopened, closed
    # A new request from the address is what the breaker holds back.
    assert room.ingest(make_mail(subject="Scanner")) == "ticket CID-1001"
    assert subjects(room) == []
    (held,) = [e for e in room.show("CID-1001")["events"] if e["action"] == "mail_suppressed"]
    assert "circuit breaker" in held["detail"]


def test_a_ticket_staff_open_for_a_customer_is_acknowledged_past_the_limit(
    room: Mailroom,
) -> None:
    for n in range(5):
        assert room.ingest(make_mail(subject=f"Question {n}")) == f"ticket CID-{1000 + n}"
    assert len(subjects(room)) == 5
    phoned = make_mail(
        subject="Phoned: toner", body=f"#customer {CUSTOMER}\n\nShe called.", sender=AGENT
    )
    assert room.ingest(phoned) == "ticket CID-1005"
    (ack,) = subjects(room)
    assert ack.startswith("[CID-1005]")
