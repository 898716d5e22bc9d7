"""What an agent does on a ticket's page goes the way the same thing by mail goes: the answer
reaches the customer with its files, a note reaches nobody, changes and time are booked, and
the article, events and outgoing mail are those of the same mail."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from mailgate.config import SecurityConfig
from mailgate.desk.web_access import WEB_SOURCE
from mailgate.store.models import (
    Article,
    Attachment,
    Contact,
    Event,
    Intake,
    Outbox,
    Participant,
    Ticket,
    TimeEntry,
)
from tests.daemon_harness import SUPPORT, connect
from tests.helpers import parsed, poll
from tests.mails import make_mail
from tests.web_desk import AGENT, Desk, web_desk

ALICE, CARLA = "Alice Kunde <alice@acme.example>", "Carla Shop <carla@shop.example>"
ZIP = b"PK\x03\x04" + bytes(range(256)) * 8
ANSWER = "Hello Alice,\n\nplease install the new driver attached.\n\nKind regards\nBob"


def customer_writes(desk: Desk, sender: str, subject: str, count: int) -> None:
    """A customer's mail over SMTP; waits until the desk holds `count` articles."""
    address = re.findall(r"<(.+)>", sender)[0]
    with connect(desk.daemon.address) as client:
        client.sendmail(address, [SUPPORT], make_mail(subject=subject, sender=sender))
    poll(lambda: len(rows(desk, Article)) >= count, what="the customer's mail stored")


def rows(desk: Desk, model: Any) -> list[Any]:
    with desk.daemon.ctx.store.session() as session:
        return list(session.exec(select(model).order_by(col(model.id))))


def post(
    desk: Desk, client: httpx.Client, cid: str, fields: dict[str, str], **data: str
) -> httpx.Response:
    files = [("files", ("driver.zip", ZIP, "application/zip"))] if data.pop("zip", "") else None
    return client.post(
        f"/desk/tickets/{cid}/mail", data={**fields, **data}, files=files, headers=desk.origin
    )


def mails_to(desk: Desk, address: str, template: str) -> list[Any]:
    paths = sorted(desk.sent.glob(f"*-{template}.eml"))
    return [m for m in (parsed(p.read_bytes()) for p in paths) if address in str(m["To"])]


def test_an_answer_made_on_the_web_reaches_the_customer_with_its_file(tmp_path: Path) -> None:
    """Agents' mail must be verified here ([security] as shipped): the web's is, by sign-in."""
    with web_desk(tmp_path) as desk, desk.client() as browser:
        desk.add_agent()
        customer_writes(desk, ALICE, "Printer broken", 1)
        desk.sign_in(browser)
        fields = desk.form_fields(browser, "CID-1000")
        sent = post(desk, browser, "CID-1000", fields, text=ANSWER, kind="answer",
                    status="working", minutes="30", billable="true", zip="1")  # fmt: skip
        assert sent.status_code == 303, sent.text
        [answer] = poll(lambda: mails_to(desk, "alice@acme.example", "staff_answer"),
                        what="the answer at the customer")  # fmt: skip
        text = answer.get_body(("plain",)).get_content()
        assert "please install the new driver attached." in text
        files = {p.get_filename(): p.get_payload(decode=True) for p in answer.iter_attachments()}
        assert files == {"driver.zip": ZIP}
        assert "[CID-1000]" in answer["Subject"] and "#status" not in answer.as_string()
        [ticket] = rows(desk, Ticket)
        assert (ticket.status, ticket.first_response_at is not None) == ("working", True)
        [entry] = rows(desk, TimeEntry)
        assert (entry.minutes, entry.billable) == (30, True)
        article = rows(desk, Article)[-1]
        assert (article.direction, article.from_addr, article.note) == ("staff", AGENT, "")
        assert [a.filename for a in rows(desk, Attachment)] == ["driver.zip"]
        assert rows(desk, Intake)[-1].source == WEB_SOURCE
        page = browser.get("/desk/tickets/CID-1000").text
        assert "please install the new driver attached." in page and "driver.zip" in page
        booked = re.search(r'<table class="list" id="time-entries">.*?</table>', page, re.S)
        assert booked is not None and "Bob Agent" in booked[0] and "0:30" in booked[0]
        assert "billable" in booked[0]


def _story(desk: Desk, ticket: Ticket) -> dict[str, Any]:
    """What a ticket holds after one staff answer, with the ticket's own ids left out."""
    with desk.daemon.ctx.store.session() as session:
        articles = session.exec(select(Article).where(Article.ticket_id == ticket.id)).all()
        staff = [a for a in articles if a.direction != "customer"]
        files = session.exec(
            select(Attachment).where(col(Attachment.article_id).in_([a.id for a in staff]))
        ).all()
        events = session.exec(select(Event).where(Event.ticket_id == ticket.id)).all()
        outbox = session.exec(select(Outbox).where(Outbox.ticket_id == ticket.id)).all()
        entries = session.exec(select(TimeEntry).where(TimeEntry.ticket_id == ticket.id)).all()
        fresh = session.get(Ticket, ticket.id)
        assert fresh is not None
    number = str(ticket.number)
    return {
        "articles": [(a.direction, a.from_addr, a.text, a.note) for a in staff],
        "files": [(f.filename, f.size, f.sha256) for f in files],
        "events": [(e.actor, e.action, e.detail.replace(number, "N")) for e in events[1:]],
        "outbox": [(o.template, o.to_addrs.split("@")[1]) for o in outbox],
        "time": [(t.minutes, t.billable) for t in entries],
        "ticket": (fresh.status, fresh.priority, fresh.assignee_id),
    }


def test_the_web_and_the_mail_client_make_the_same_answer(tmp_path: Path) -> None:
    none = SecurityConfig(agent_verification="none")
    with web_desk(tmp_path, security=none) as desk, desk.client() as browser:
        desk.add_agent()
        customer_writes(desk, ALICE, "Printer broken", 1)
        customer_writes(desk, "Bert Kunde <bert@acme.example>", "Printer broken", 2)
        mailed = make_mail(
            subject="AW: [CID-1000] Printer broken",
            sender=f"Bob Agent <{AGENT}>",
            body=f"#priority A\n#time 30m billable\n\n{ANSWER}\n",
            attachments=(("driver.zip", "application/zip", ZIP),),
        )
        with connect(desk.daemon.address) as client:
            client.sendmail(AGENT, [SUPPORT], mailed)
        poll(lambda: len(rows(desk, Article)) == 3, what="the mailed answer")
        desk.sign_in(browser)
        fields = desk.form_fields(browser, "CID-1001")
        sent = post(desk, browser, "CID-1001", fields, text=ANSWER, priority="A",
                    minutes="30", billable="true", zip="1")  # fmt: skip
        assert sent.status_code == 303, sent.text
        by_mail, by_web = (_story(desk, t) for t in rows(desk, Ticket))
    assert by_web == by_mail
    assert by_web["outbox"][-1] == ("staff_answer", "acme.example")
    assert by_web["ticket"][1] == "A" and by_web["time"] == [(30, True)]


def test_a_note_reaches_no_customer(tmp_path: Path) -> None:
    with web_desk(tmp_path) as desk, desk.client() as browser:
        desk.add_agent()
        customer_writes(desk, ALICE, "Printer broken", 1)
        desk.sign_in(browser)
        fields = desk.form_fields(browser, "CID-1000")
        note = "Customer is on the old driver; checked with the vendor."
        assert post(desk, browser, "CID-1000", fields, text=note, kind="note").status_code == 303
        article = rows(desk, Article)[-1]
        assert (article.direction, article.text) == ("internal", note)
        assert mails_to(desk, "alice@acme.example", "staff_answer") == []
        assert [o.template for o in rows(desk, Outbox) if o.ticket_id] == ["acknowledgement"]


def test_a_mail_that_came_meanwhile_stops_the_answer_until_it_is_read(tmp_path: Path) -> None:
    with web_desk(tmp_path) as desk, desk.client() as browser:
        desk.add_agent()
        customer_writes(desk, ALICE, "Printer broken", 1)
        desk.sign_in(browser)
        fields = desk.form_fields(browser, "CID-1000")
        customer_writes(desk, ALICE, "Re: [CID-1000] Printer broken", 2)  # works again!
        held = post(desk, browser, "CID-1000", fields, text="Try the new driver.")
        assert held.status_code == 409
        assert "Alice Kunde wrote on this ticket since you opened it" in held.text
        assert ">Try the new driver.</textarea>" in held.text  # kept, not sent
        assert mails_to(desk, "alice@acme.example", "staff_answer") == []
        again = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', held.text))
        assert int(again["seen"]) > int(fields["seen"])
        assert post(desk, browser, "CID-1000", again, text="Try it.").status_code == 303
        poll(lambda: mails_to(desk, "alice@acme.example", "staff_answer"), what="the answer")


def test_bad_forms_get_a_clear_answer_and_send_nothing(tmp_path: Path) -> None:
    with web_desk(tmp_path) as desk, desk.client() as browser:
        desk.add_agent()
        customer_writes(desk, ALICE, "Printer broken", 1)
        desk.sign_in(browser)
        fields = desk.form_fields(browser, "CID-1000")
        empty = post(desk, browser, "CID-1000", fields, text="  ")
        assert empty.status_code == 409 and "Nothing to send" in empty.text
        huge = browser.post(
            "/desk/tickets/CID-1000/mail",
            data=fields,
            files=[("files", ("big.bin", b"x" * 1_100_000, "application/octet-stream"))],
            headers=desk.origin,
        )
        assert huge.status_code == 413 and "at most 1000000 bytes" in huge.text
        unsigned = post(desk, browser, "CID-1000", {"seen": fields["seen"]}, text="Hi")
        assert unsigned.status_code == 403
        assert post(desk, browser, "CID-9999", fields, text="Hi").status_code == 404
        # A command the desk refuses is answered as by mail: the agent is told what was wrong.
        wrong = post(desk, browser, "CID-1000", fields, text="", assign="nobody@example.com")
        assert wrong.status_code == 303 and "?refused=1" in wrong.headers["location"]
        said = browser.get(wrong.headers["location"]).text
        assert "the desk has mailed you what was wrong" in said
        [told] = poll(lambda: mails_to(desk, AGENT, "command_error"), what="the command error")
        assert "nobody@example.com" in told.get_body(("plain",)).get_content()
    assert len(rows(desk, Article)) == 2  # the refused command's mail is kept as stored
    assert [o.template for o in rows(desk, Outbox) if o.ticket_id] == [
        "acknowledgement",
        "command_error",
    ]


@pytest.mark.parametrize(
    ("lang", "kinds", "nothing"),
    [
        ("de", ("Antwort an den Kunden", "Interne Notiz"), "Nichts zu senden"),
        ("fr", ("Réponse au client", "Note interne"), "Rien à envoyer"),
    ],
)
def test_the_form_speaks_the_agents_language(
    tmp_path: Path, lang: str, kinds: tuple[str, str], nothing: str
) -> None:
    with web_desk(tmp_path) as desk, desk.client() as browser:
        desk.add_agent(lang=lang)
        customer_writes(desk, ALICE, "Drucker kaputt", 1)
        desk.sign_in(browser)
        page = browser.get("/desk/tickets/CID-1000").text
        assert f'<html lang="{lang}">' in page and all(kind in page for kind in kinds)
        fields = desk.form_fields(browser, "CID-1000")
        empty = post(desk, browser, "CID-1000", fields, text="")
        assert nothing in empty.text


def test_a_mails_note_is_in_the_agents_language(tmp_path: Path) -> None:
    with web_desk(tmp_path) as desk, desk.client() as browser:
        desk.add_agent(lang="de")
        customer_writes(desk, ALICE, "Drucker kaputt", 1)
        # Someone who is not part of the ticket writes with its tag.
        customer_writes(desk, CARLA, "Re: [CID-1000] Drucker kaputt", 2)
        desk.sign_in(browser)
        page = browser.get("/desk/tickets/CID-1000").text
        note = '<span class="note">Absender nicht bestätigt: gehört nicht zu diesem Ticket</span>'
        assert note in page


def test_the_history_is_in_the_agents_language(tmp_path: Path) -> None:
    with web_desk(tmp_path) as desk, desk.client() as browser:
        desk.add_agent(lang="de")
        customer_writes(desk, ALICE, "Drucker kaputt", 1)
        desk.sign_in(browser)
        fields = desk.form_fields(browser, "CID-1000")
        sent = post(desk, browser, "CID-1000", fields, text=ANSWER, kind="answer", status="working")
        assert sent.status_code == 303, sent.text
        page = browser.get("/desk/tickets/CID-1000").text
        history = page[page.index('<ul class="events">') :]
        for said in (
            "eröffnet: von alice@acme.example",
            "Mail: vom Team",
            "Status: offen → in Bearbeitung",
        ):
            assert said in history, said
        assert "open -> working" not in history


def test_type_category_and_a_further_person_are_set_on_the_form(tmp_path: Path) -> None:
    with web_desk(tmp_path) as desk, desk.client() as browser:
        desk.add_agent()
        customer_writes(desk, ALICE, "Printer broken", 1)
        desk.sign_in(browser)
        fields = desk.form_fields(browser, "CID-1000")
        sent = post(desk, browser, "CID-1000", fields, text="Checking.", kind="note",
                    type="bug", category="Hardware", cc="carol@acme.example")  # fmt: skip
        assert sent.status_code == 303 and "refused" not in sent.headers["location"]
        [ticket] = rows(desk, Ticket)
        assert (ticket.type, ticket.category) == ("bug", "Hardware")
        with desk.daemon.ctx.store.session() as session:
            taking_part = session.exec(select(Contact.email).join(
                Participant, col(Participant.contact_id) == col(Contact.id))).all()  # fmt: skip
        assert list(taking_part) == ["carol@acme.example"]
        page = browser.get("/desk/tickets/CID-1000").text
        assert "<dd>bug</dd>" in page and "<dd>Hardware</dd>" in page


def test_the_hold_due_queue_lists_holds_whose_date_has_come(tmp_path: Path) -> None:
    with web_desk(tmp_path) as desk, desk.client() as browser:
        desk.add_agent()
        customer_writes(desk, ALICE, "Printer broken", 1)
        customer_writes(desk, CARLA, "Invoice wrong", 2)
        desk.sign_in(browser)
        for cid in ("CID-1000", "CID-1001"):
            fields = desk.form_fields(browser, cid)
            post(desk, browser, cid, fields, kind="note", text="Waiting for the vendor.",
                 status="hold", hold_until="2099-01-01")  # fmt: skip
        with desk.daemon.ctx.store.session() as session:
            ticket = session.exec(select(Ticket).where(Ticket.number == 1000)).one()
            ticket.hold_until = desk.daemon.ctx.clock() - timedelta(days=1)  # its day has come
        due = browser.get("/desk", params={"queue": "hold_due"}).text
        held = browser.get("/desk", params={"queue": "hold"}).text
    assert re.findall(r'class="open" href="/desk/tickets/(CID-\d+)"', due) == ["CID-1000"]
    assert sorted(re.findall(r'class="open" href="/desk/tickets/(CID-\d+)"', held)) == [
        "CID-1000",
        "CID-1001",
    ]
