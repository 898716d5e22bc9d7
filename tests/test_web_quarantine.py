"""The quarantine on the web desk: what `mailgate quarantine` does (list, show, retry,
release, drop), by an agent's forms, with the same outcomes."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from sqlmodel import col, select

from mailgate.config import SecurityConfig
from mailgate.store.models import IGNORED, QUARANTINED, Intake, Ticket
from tests.daemon_harness import SUPPORT, connect
from tests.helpers import poll
from tests.mails import make_mail
from tests.web_desk import Desk, web_desk

# A From that names two people is matched to nobody; with this setting it waits in quarantine.
TWO_SENDERS = "Eve <eve@evil.example>, Mallory <mallory@evil.example>"


def intakes(desk: Desk) -> list[Intake]:
    with desk.daemon.ctx.store.session() as session:
        return list(session.exec(select(Intake).order_by(col(Intake.id))))


def act(desk: Desk, agent: httpx.Client, number: int, action: str, **data: str) -> httpx.Response:
    page = agent.get(f"/desk/quarantine/{number}").text
    token = re.search(r'name="form_token" value="([^"]+)"', page)
    assert token is not None
    return agent.post(f"/desk/quarantine/{number}/{action}",
                      data={"form_token": token[1], **data}, headers=desk.origin)  # fmt: skip


def test_quarantined_mail_is_retried_released_and_dropped_on_the_web(tmp_path: Path) -> None:
    strict = SecurityConfig(ambiguous_from="quarantine")
    with web_desk(tmp_path, security=strict) as desk, desk.client() as agent:
        desk.add_agent()
        with connect(desk.daemon.address) as client:
            for subject in ("<b>Invoice</b> attached", "Prize!"):
                mail = make_mail(subject=subject, sender=TWO_SENDERS)
                client.sendmail("eve@evil.example", [SUPPORT], mail)
        poll(lambda: [i.status for i in intakes(desk)] == [QUARANTINED] * 2, what="quarantine")
        desk.sign_in(agent)
        listed = agent.get("/desk/quarantine").text
        assert "&lt;b&gt;Invoice&lt;/b&gt; attached" in listed and "Prize!" in listed
        shown = agent.get("/desk/quarantine/1").text
        assert "Subject: &lt;b&gt;Invoice&lt;/b&gt; attached" in shown  # the header, as text
        # Retried, it is quarantined again for the same reason: the page says so.
        again = act(desk, agent, 1, "retry")
        assert again.status_code == 409 and re.search(r"id=\"said\">quarantined: ", again.text)
        refused = act(desk, agent, 1, "drop", reason=" ")
        assert refused.status_code == 409 and "give a reason" in refused.text
        released = act(desk, agent, 1, "release", address="eve@evil.example", as_customer="true")
        assert (released.status_code, released.headers["location"]) == (
            303,
            "/desk/tickets/CID-1000",
        )
        dropped = act(desk, agent, 2, "drop", reason="a prize scam")
        assert dropped.headers["location"] == "/desk/quarantine"
        assert [(i.status, i.ticket_id is not None) for i in intakes(desk)] == [
            ("done", True),
            (IGNORED, False),
        ]
        assert intakes(desk)[1].reason == "dropped by operator: a prize scam"
        with desk.daemon.ctx.store.session() as session:
            ticket = session.exec(select(Ticket)).one()
        assert ticket.subject == "<b>Invoice</b> attached"
        assert "Nothing in quarantine." in agent.get("/desk/quarantine").text
        gone = act(desk, agent, 2, "release")
        assert gone.status_code == 409 and "is ignored, not quarantined" in gone.text
