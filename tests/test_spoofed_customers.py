"""Customer mail our MTA says is forged (dmarc=fail) is stored with a warning and changes
nothing: it confirms, reopens, unsubscribes, sets no priority and gets no list or answer."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mailgate import cli
from tests.helpers import Clock
from tests.mailroom import AGENT, Mailroom, text_of, to
from tests.mails import make_mail, new_message_id

CUSTOMER = "alice@acme.example"
FAIL = (
    "mx.example.com; spf=fail smtp.mailfrom=acme.example; dkim=none;"
    " dmarc=fail header.from=acme.example"
)
PASS = (
    "mx.example.com; spf=pass smtp.mailfrom=acme.example;"
    " dkim=pass header.d=acme.example; dmarc=pass header.from=acme.example"
)
WARNING = "sender not verified: dmarc=fail for acme.example"
TEAM = "team@example.com"
CHECKED = (
    'customer_verification = "authentication-results"\ntrusted_authserv_id = "mx.example.com"\n'
    f'[staff]\nteam_address = "{TEAM}"\n'
)


def desk(tmp_path: Path, db_url: str, clock: Clock, mp: pytest.MonkeyPatch, extra: str) -> Mailroom:
    real = cli.build_context
    mp.setattr(
        cli, "build_context", lambda cfg, **kw: dataclasses.replace(real(cfg, **kw), clock=clock)
    )
    room = Mailroom(tmp_path, db_url, extra)
    assert room.run("agents", "add", AGENT, "--name", "Anna").returncode == 0
    return room


@pytest.fixture
def checked(tmp_path: Path, db_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Mailroom:
    return desk(tmp_path, db_url, clock, monkeypatch, CHECKED)


def from_alice(body: str, verdict: str, subject: str = "Re: [CID-1000] Printer broken") -> bytes:
    headers = {"Authentication-Results": verdict}
    return make_mail(subject=subject, body=body, headers=headers)


def delivered(room: Mailroom) -> None:
    """CID-1000 from Alice, delivered by Anna; the mail so far read."""
    assert room.ingest(from_alice("Our printer does not print.\n", PASS, "Printer broken")) == (
        "ticket CID-1000"
    )
    answer = make_mail(
        subject="Re: [CID-1000] Printer broken", body="#deliver\n\nFixed.", sender=AGENT
    )
    assert room.ingest(answer) == "reply CID-1000"
    assert room.show("CID-1000")["status"] == "delivered"
    room.new_mail()


def test_a_forged_ok_leaves_the_ticket_delivered_with_a_warning(checked: Mailroom) -> None:
    delivered(checked)
    assert checked.ingest(from_alice("ok, thanks\n", FAIL)) == f"reply CID-1000 ({WARNING})"
    shown = checked.show("CID-1000")
    assert shown["status"] == "delivered"
    last = shown["articles"][-1]
    assert (last["direction"], last["note"], last["text"]) == ("customer", WARNING, "ok, thanks")
    mail = checked.new_mail()
    assert to(mail, CUSTOMER) == [], "nothing goes to the address the mail names"
    (notice,) = to(mail, TEAM)
    assert WARNING in text_of(notice)
    assert "it changed nothing" in " ".join(text_of(notice).split())


def test_the_same_ok_with_dmarc_pass_closes(checked: Mailroom) -> None:
    delivered(checked)
    assert checked.ingest(from_alice("ok, thanks\n", PASS)) == "reply CID-1000"
    assert checked.show("CID-1000")["status"] == "closed"
    (closed,) = to(checked.new_mail(), CUSTOMER)
    assert "closed" in text_of(closed).lower()


def test_a_forged_reply_does_not_reopen_a_closed_ticket(checked: Mailroom) -> None:
    delivered(checked)
    assert checked.ingest(from_alice("ok\n", PASS)) == "reply CID-1000"
    checked.new_mail()
    assert (
        checked.ingest(from_alice("It is broken again.\n", FAIL)) == f"reply CID-1000 ({WARNING})"
    )
    assert checked.show("CID-1000")["status"] == "closed"
    assert to(checked.new_mail(), CUSTOMER) == []


def opted_out(room: Mailroom) -> bool:
    (org,) = room.json("customers", "list")
    shown = room.json("customers", "show", org["name"])
    (contact,) = [c for c in shown["contacts"] if c["email"] == CUSTOMER]
    return bool(contact["opted_out"])


def test_a_forged_unsubscribe_does_not_opt_her_out(checked: Mailroom) -> None:
    delivered(checked)
    assert checked.ingest(from_alice("unsubscribe\n", FAIL)) == f"reply CID-1000 ({WARNING})"
    assert not opted_out(checked)
    assert checked.ingest(from_alice("unsubscribe\n", PASS)) == "reply CID-1000"
    assert opted_out(checked)


def test_a_forged_list_request_gets_nothing(checked: Mailroom) -> None:
    delivered(checked)
    assert (
        checked.ingest(from_alice("", FAIL, "list")) == f"ignored: ticket list not sent: {WARNING}"
    )
    assert checked.new_mail() == []
    assert checked.ingest(from_alice("", PASS, "list")) == "ignored: answered with the ticket list"
    (answer,) = checked.new_mail()
    assert str(answer["To"]) == CUSTOMER


def test_a_forged_new_request_is_kept_for_staff_and_not_acknowledged(checked: Mailroom) -> None:
    raw = from_alice("Priority: A\n\nPlease send the invoice to me.\n", FAIL, "Invoice")
    assert checked.ingest(raw) == f"ticket CID-1000 ({WARNING})"
    shown = checked.show("CID-1000")
    assert shown["priority"] == "B", "a forged mail sets no priority"
    assert shown["articles"][0]["note"] == WARNING
    mail = checked.new_mail()
    assert to(mail, CUSTOMER) == [], "no acknowledgement to the address it names"
    (notice,) = to(mail, TEAM)
    assert WARNING in text_of(notice)
    # Staff decide: their answer goes out as any other.
    answer = make_mail(subject="Re: [CID-1000] Invoice", body="Here it is.", sender=AGENT)
    assert checked.ingest(answer) == "reply CID-1000"
    assert len(to(checked.new_mail(), CUSTOMER)) == 1


def test_spf_fail_without_a_dkim_pass_counts_as_forged(checked: Mailroom) -> None:
    spf = "mx.example.com; spf=fail smtp.mailfrom=acme.example; dkim=none"
    raw = from_alice("Hello\n", spf, "Question")
    expected = "sender not verified: spf=fail for acme.example and no dkim=pass for acme.example"
    assert checked.ingest(raw) == f"ticket CID-1000 ({expected})"
    signed = "mx.example.com; spf=fail smtp.mailfrom=acme.example; dkim=pass header.d=acme.example"
    assert checked.ingest(from_alice("Hello\n", signed, "Other question")) == "ticket CID-1001"


def test_a_header_not_from_our_mta_says_nothing(checked: Mailroom) -> None:
    forged = FAIL.replace("mx.example.com", "mx.evil.example")
    assert checked.ingest(from_alice("Hello\n", forged, "Question")) == "ticket CID-1000"


def test_a_forged_copy_does_not_pre_empt_her_real_mail(checked: Mailroom) -> None:
    """The forger copies her From, Message-ID and text: her own mail is still hers."""
    mid = new_message_id("acme.example")
    body = "Please call me back.\n"
    forged = make_mail(body=body, message_id=mid, headers={"Authentication-Results": FAIL})
    real = make_mail(body=body, message_id=mid, headers={"Authentication-Results": PASS})
    assert checked.ingest(forged) == f"ticket CID-1000 ({WARNING})"
    assert checked.ingest(real) == "ticket CID-1001"
    (ack,) = to(checked.new_mail(), CUSTOMER)
    assert str(ack["Subject"]) == "[CID-1001] Printer broken"


@pytest.mark.parametrize(
    ("security", "checks"),
    [
        ('agent_verification = "authentication-results"\n', True),
        ('agent_verification = "none"\n', False),
        ('agent_verification = "authentication-results"\ncustomer_verification = "none"\n', False),
        ('agent_verification = "none"\ncustomer_verification = "authentication-results"\n', True),
    ],
)
def test_on_by_default_where_agents_are_verified(
    tmp_path: Path,
    db_url: str,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    security: str,
    checks: bool,
) -> None:
    room = desk(tmp_path, db_url, clock, monkeypatch, "")
    text = room.config.read_text().replace('agent_verification = "none"\n', security)
    room.config.write_text(text)
    outcome = room.ingest(from_alice("Hello\n", FAIL, "Question"))
    assert outcome == (f"ticket CID-1000 ({WARNING})" if checks else "ticket CID-1000")


def report_on(message_id: str) -> bytes:
    """A delivery report naming our mail and Alice: her address is failing from then on."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.acme.example>\r\n"
        "To: support@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <{new_message_id('mx.acme.example')}>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="R"\r\n\r\n'
        "--R\r\nContent-Type: text/plain\r\n\r\nMailbox unknown.\r\n"
        "--R\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        f"Final-Recipient: rfc822; {CUSTOMER}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--R\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{message_id}>\r\nSubject: [CID-1000] Printer broken\r\n\r\n--R--\r\n"
    ).encode()


def test_a_forged_mail_does_not_clear_a_failing_address(checked: Mailroom) -> None:
    raw = from_alice("Our printer does not print.\n", PASS, "Printer broken")
    assert checked.ingest(raw) == "ticket CID-1000"
    (ack,) = to(checked.new_mail(), CUSTOMER)
    assert checked.ingest(report_on(str(ack["Message-ID"]).strip("<>"))) == "reply CID-1000"

    def cleared() -> list[str]:
        events = checked.show("CID-1000")["events"] + checked.show("CID-1001")["events"]
        return [e["detail"] for e in events if e["action"] == "address_cleared"]

    assert checked.ingest(from_alice("Scanner too.\n", FAIL, "Scanner")) == (
        f"ticket CID-1001 ({WARNING})"
    )
    assert cleared() == []
    assert checked.ingest(from_alice("Printer is fine now.\n", PASS)) == "reply CID-1000"
    assert cleared() == [f"{CUSTOMER}: wrote again"]


def test_a_forged_mail_adds_no_colleague_to_the_ticket(checked: Mailroom) -> None:
    assert checked.run("customers", "claim", "Acme", "acme.example").returncode == 0
    headers = {"Authentication-Results": FAIL, "Cc": "Bob <bob@acme.example>"}
    raw = make_mail(subject="Invoice", body="Send it to Bob too.\n", headers=headers)
    assert checked.ingest(raw) == f"ticket CID-1000 ({WARNING})"
    events = checked.show("CID-1000")["events"]
    assert [e for e in events if e["action"] == "cc"] == []
    assert to(checked.new_mail(), "bob@acme.example") == []
