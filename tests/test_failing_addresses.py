"""A failing address is not a black hole: the agent is told, a new mail clears it, staff can."""

from __future__ import annotations

from email.message import EmailMessage

from tests.conftest import FIXTURES
from tests.helpers import Clock
from tests.mailroom import AGENT, Mailroom, answering, text_of
from tests.mails import make_mail

CUSTOMER = "alice@acme.example"
BOUNCE = FIXTURES / "bounces" / "german-text-unzustellbar.eml"


def bounced_ticket(room: Mailroom, clock: Clock) -> None:
    """CID-1000 from Alice, then a bounce 30 minutes later marks her address failing."""
    assert room.ingest(make_mail()) == "ticket CID-1000"
    (ack,) = room.new_mail()
    clock.advance(minutes=30)
    assert room.ingest(answering(BOUNCE.read_bytes(), ack)) == "reply CID-1000"
    assert room.new_mail() == []


def events(room: Mailroom, action: str, cid: str = "CID-1000") -> list[str]:
    return [e["detail"] for e in room.show(cid)["events"] if e["action"] == action]


def answer(room: Mailroom, body: str = "Please reinstall the driver.") -> list[EmailMessage]:
    raw = make_mail(subject="Re: [CID-1000] Printer broken", body=body, sender=f"Anna <{AGENT}>")
    assert room.ingest(raw) == "reply CID-1000"
    return room.new_mail()


def test_the_agent_is_told_when_their_answer_cannot_go_out(room: Mailroom, clock: Clock) -> None:
    bounced_ticket(room, clock)
    (notice,) = answer(room)
    assert str(notice["To"]) == AGENT
    assert str(notice["Subject"]) == (
        "[CID-1000] Not sent to alice@acme.example: the address bounced"
    )
    assert notice["Auto-Submitted"] == "auto-generated"
    text = text_of(notice)
    assert "was not sent to alice@acme.example" in text
    assert "2026-11-02 09:30 UTC" in text  # when the bounce came
    assert "konnte nicht zugestellt werden" in text  # what it said
    assert "mailgate customers clear-failing alice@acme.example" in text
    (detail,) = events(room, "mail_not_sent")
    assert detail.startswith("staff_answer to alice@acme.example: address failing since ")


def test_the_notice_is_in_the_agents_language(room: Mailroom, clock: Clock) -> None:
    assert (
        room.run(
            "agents", "add", "bert@example.com", "--name", "Bert", "--language", "de"
        ).returncode
        == 0
    )
    bounced_ticket(room, clock)
    raw = make_mail(
        subject="AW: [CID-1000] Printer broken", body="Hallo.", sender="bert@example.com"
    )
    assert room.ingest(raw) == "reply CID-1000"
    (notice,) = room.new_mail()
    assert str(notice["Subject"]).startswith("[CID-1000] Nicht gesendet an alice@acme.example")
    assert "mailgate customers clear-failing alice@acme.example" in text_of(notice)


def test_status_mails_left_out_leave_the_reason(room: Mailroom, clock: Clock) -> None:
    bounced_ticket(room, clock)
    assert answer(room, "#deliver") == []  # only a status mail: nothing goes, nobody to tell
    (detail,) = events(room, "mail_not_sent")
    assert detail.startswith("delivered to alice@acme.example: address failing since ")


def test_a_new_mail_from_the_address_clears_it_and_is_acknowledged(
    room: Mailroom, clock: Clock
) -> None:
    bounced_ticket(room, clock)
    assert room.ingest(make_mail(subject="Scanner broken")) == "ticket CID-1001"
    (ack,) = room.new_mail()
    assert (str(ack["To"]), str(ack["Subject"])) == (CUSTOMER, "[CID-1001] Scanner broken")
    assert events(room, "address_cleared") == [f"{CUSTOMER}: wrote again"]
    # The agent's answer reaches her again.
    (sent,) = answer(room)
    assert str(sent["To"]) == CUSTOMER


def test_an_automatic_mail_from_the_address_does_not_clear_it(room: Mailroom, clock: Clock) -> None:
    bounced_ticket(room, clock)
    ooo = make_mail(subject="Automatic reply: [CID-1000] Printer broken")
    assert room.ingest(ooo) == "reply CID-1000"
    assert events(room, "address_cleared") == []
    (notice,) = answer(room)
    assert str(notice["To"]) == AGENT


def test_staff_clear_it_from_the_command_line(room: Mailroom, clock: Clock) -> None:
    bounced_ticket(room, clock)
    result = room.run("customers", "clear-failing", "Alice@Acme.example")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"{CUSTOMER}: cleared (bounced 2026-11-02 09:30 UTC on CID-1000)"
    )
    assert events(room, "address_cleared") == [f"{CUSTOMER}: cleared by staff"]
    (sent,) = answer(room)
    assert str(sent["To"]) == CUSTOMER
    again = room.run("customers", "clear-failing", CUSTOMER)
    assert (again.returncode, again.stdout.strip()) == (0, f"{CUSTOMER}: not failing")


def test_clearing_an_unknown_address_exits_65(room: Mailroom) -> None:
    result = room.run("customers", "clear-failing", "nobody@nowhere.example")
    assert result.returncode == 65
    assert "no contact with the address nobody@nowhere.example" in result.stderr


def test_a_ticket_opened_by_staff_for_a_failing_address_leaves_the_reason(
    room: Mailroom, clock: Clock
) -> None:
    bounced_ticket(room, clock)
    raw = make_mail(
        subject="Phoned: toner",
        body=f"#customer {CUSTOMER}\n\nShe called about toner.",
        sender=AGENT,
    )
    assert room.ingest(raw) == "ticket CID-1001"
    assert room.new_mail() == []
    (detail,) = events(room, "mail_not_sent", "CID-1001")
    assert detail.startswith("acknowledgement to alice@acme.example: address failing since ")


def test_a_reply_from_the_address_clears_it(room: Mailroom, clock: Clock) -> None:
    bounced_ticket(room, clock)
    reply = make_mail(subject="AW: [CID-1000] Printer broken", body="Mailbox is fixed now.")
    assert room.ingest(reply) == "reply CID-1000"
    assert events(room, "address_cleared") == [f"{CUSTOMER}: wrote again"]
    (sent,) = answer(room)
    assert str(sent["To"]) == CUSTOMER
