"""The seeds' whole story over SMTP: a customer asks, staff answer and decide by mail."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

from sqlmodel import select

from mailgate.config import OutboundConfig, SecurityConfig
from mailgate.desk.agents import add_agent
from mailgate.desk.customers import get_or_create_organisation
from mailgate.reports.views import find_ticket, ticket_detail
from mailgate.store.models import SENT, OrganisationDomain, Outbox
from tests.daemon_harness import (
    CUSTOMER,
    SUPPORT,
    DaemonThread,
    Sink,
    connect,
    daemon_config,
    relay,
    running,
)
from tests.helpers import poll
from tests.mails import make_mail, new_message_id

__all__ = ["relay"]  # a fixture, used by name

AGENT = "bob@example.com"
COMMENT = "support-comment@example.com"
TRUSTED = "Authentication-Results: mx.example.com; dkim=pass header.d=example.com"


def send(mg: DaemonThread, raw: bytes, sender: str = CUSTOMER, to: str = SUPPORT) -> None:
    with connect(mg.address) as client:
        client.sendmail(sender, [to], raw)


def ticket(mg: DaemonThread) -> dict | None:
    with mg.ctx.store.session() as session:
        found = find_ticket(session, "CID", "CID-1000")
        if found is None:
            return None
        return json.loads(json.dumps(ticket_detail(session, "CID", found)))


def settled(mg: DaemonThread, articles: int) -> dict:
    """The ticket once it has this many articles and every mail it caused went out. Read
    again at the end: on SQLite each read is a snapshot of its own, so the first may have
    read the ticket from before the commit that its articles come from."""

    def done() -> dict | None:
        data = ticket(mg)
        if data is None or len(data["articles"]) < articles:
            return None
        with mg.ctx.store.session() as session:
            if any(o.status != SENT for o in session.exec(select(Outbox))):
                return None
        return ticket(mg)

    return poll(done, timeout=15, what=f"{articles} articles and an empty outbox")


def agent_mail(subject: str, body: str, to: str = SUPPORT) -> bytes:
    raw = make_mail(subject=subject, body=body, sender=f"Bob Agent <{AGENT}>", to=to)
    return TRUSTED.encode() + b"\r\n" + raw


def body_of(received: object) -> str:
    message = received.message  # type: ignore[attr-defined]
    return message.get_body(("plain",)).get_content()


def test_the_whole_story(tmp_path: Path, relay: tuple[Sink, int]) -> None:
    sink, port = relay
    config = dataclasses.replace(
        daemon_config(
            tmp_path,
            outbound=OutboundConfig(
                transport="smtp", host="127.0.0.1", port=port, from_=f"Support <{SUPPORT}>"
            ),
            comment_address=COMMENT,
        ),
        security=SecurityConfig(trusted_authserv_id="mx.example.com"),
    )
    with running(config) as mg:
        with mg.ctx.store.session() as session:
            agent = add_agent(session, AGENT, "Bob Agent", "en", mg.ctx.clock())
            org = get_or_create_organisation(session, "ACME", mg.ctx.clock())
            org.responsible_agent_id = agent.id
            session.add(OrganisationDomain(domain="acme.example", organisation_id=org.id or 0))

        # 1. The customer asks; they get the number, the agent gets the request.
        first = new_message_id()
        send(
            mg,
            make_mail(
                subject="Drucker druckt nicht", body="Hallo, er druckt nicht.\n", message_id=first
            ),
        )
        data = settled(mg, 1)
        assert data["assignee"] == AGENT
        (ack,) = sink.to(CUSTOMER)
        assert str(ack.message["Subject"]) == "[CID-1000] Drucker druckt nicht"
        (note,) = sink.to(AGENT)
        assert "[CID-1000]" in str(note.message["Subject"])
        assert "er druckt nicht" in body_of(note)

        # 2. The agent answers with commands on the first lines and the quote below.
        send(
            mg,
            agent_mail(
                "Re: [CID-1000] Drucker druckt nicht",
                "#status working #priority A #time 30m billable\n\nHallo Alice,\n"
                "bitte den Treiber neu installieren.\n\nOn Mon, 2 Nov 2026, Alice wrote:\n"
                "> Hallo, er druckt nicht.\n",
            ),
            sender=AGENT,
        )
        data = settled(mg, 2)
        assert (data["status"], data["priority"], data["billable"]) == ("working", "A", True)
        answer = sink.to(CUSTOMER)[-1]
        text = body_of(answer)
        assert "Treiber neu installieren" in text
        assert "#status" not in text and "#time" not in text and "> Hallo" not in text
        assert AGENT not in str(answer.message["From"])

        # 3. An internal comment reaches no customer.
        before = len(sink.to(CUSTOMER))
        send(
            mg,
            agent_mail("[CID-1000] intern", "Kunde hat alten Treiber.\n", to=COMMENT),
            sender=AGENT,
            to=COMMENT,
        )
        data = settled(mg, 3)
        assert data["articles"][-1]["direction"] == "internal"
        assert len(sink.to(CUSTOMER)) == before

        # 4. Delivered: the customer is asked to confirm.
        send(
            mg,
            agent_mail("Re: [CID-1000] Drucker druckt nicht", "#deliver\n\nErledigt.\n"),
            sender=AGENT,
        )
        data = settled(mg, 4)
        assert data["status"] == "delivered"
        assert any("ok" in body_of(m).lower() for m in sink.to(CUSTOMER)[before:])

        # 5. "ok" closes the ticket, and the closing mail says it was billable.
        count = len(sink.to(CUSTOMER))
        send(mg, make_mail(subject="AW: [CID-1000] Drucker druckt nicht", body="ok\n\nDanke!\n"))
        data = settled(mg, 5)
        assert data["status"] == "closed"
        closing = sink.to(CUSTOMER)[count:]
        assert closing and any(
            "billable" in body_of(m).lower() or "berechnet" in body_of(m).lower() for m in closing
        )

        # 6. A later reply reopens it.
        send(
            mg,
            make_mail(
                subject="AW: [CID-1000] Drucker druckt nicht", body="Er druckt wieder nicht.\n"
            ),
        )
        data = settled(mg, 6)
        assert data["status"] in ("open", "working")
        assert [e["action"] for e in data["events"]].count("status") >= 4

        # Every mail the customer got is one conversation for Outlook too.
        indexes = {str(m.message["Thread-Index"]) for m in sink.to(CUSTOMER)}
        assert len(indexes) == 1
        assert len(base64.b64decode(indexes.pop())) == 22
