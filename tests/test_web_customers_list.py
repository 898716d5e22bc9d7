"""Organisations and contacts on the web desk, as `mailgate customers list|show` has them."""

from __future__ import annotations

import re
from pathlib import Path

from sqlmodel import select

from mailgate.desk.customers import add_contingent, get_or_create_organisation
from mailgate.store.models import Contact, OrganisationDomain
from tests.daemon_harness import SUPPORT, connect
from tests.helpers import poll
from tests.mails import make_mail
from tests.web_desk import Desk, web_desk


def test_organisations_and_their_contacts_are_listed_with_flags(tmp_path: Path) -> None:
    with web_desk(tmp_path) as desk, desk.client() as agent:
        desk.add_agent()
        ctx = desk.daemon.ctx
        with ctx.store.session() as session:
            org = get_or_create_organisation(session, "ACME <GmbH>", ctx.clock())
            session.add(OrganisationDomain(domain="acme.example", organisation_id=org.id or 0))
            add_contingent(session, org, 600, "ten hours", "cli", ctx.clock())
        with connect(desk.daemon.address) as client:
            for sender in ("alice@acme.example", "carl@acme.example", "stranger@mail.example"):
                client.sendmail(sender, [SUPPORT], make_mail(subject="Help", sender=sender))
            mail = make_mail(subject="Toner", sender="alice@acme.example")
            client.sendmail("alice@acme.example", [SUPPORT], mail)
        poll(lambda: _contacts(desk) == 3, what="the three contacts")
        with ctx.store.session() as session:
            carl = session.exec(select(Contact).where(Contact.email == "carl@acme.example")).one()
            carl.failing = True
        desk.sign_in(agent)
        companies = agent.get("/desk/customers").text
        names = re.findall(r'class="open" href="/desk/customers/([^"]+)">([^<]*)</a>', companies)
        assert names == [("ACME%20%3CGmbH%3E", "ACME &lt;GmbH&gt;")]  # the stranger's is apart
        assert "0:00 / 10:00, 10:00 left" in companies
        everyone = agent.get("/desk/customers", params={"kind": "all"}).text
        assert "stranger@mail.example" in everyone
        page = agent.get("/desk/customers/ACME%20%3CGmbH%3E").text
        assert "acme.example" in page and "alice@acme.example" in page
        carl_row = re.search(r"<td>carl@acme\.example</td>.*?</tr>", page, re.S)
        assert carl_row is not None and "mail bounces" in carl_row[0]
        assert 'href="/desk?q=org%3A%22ACME%20%3CGmbH%3E%22"' in page
        assert agent.get("/desk/customers/Nobody%20Inc").status_code == 404
        # The queue: the customer waits since their mail; ACME's hours left beside its tickets.
        poll(lambda: "CID-1003" in agent.get("/desk").text, what="the four tickets")
        queue = agent.get("/desk").text
        acme = re.findall(r"<td>ACME &lt;GmbH&gt;</td>.*?</tr>", queue, re.S)
        assert len(acme) == 3 and all("<td>10:00</td>" in row for row in acme)
        stranger = re.search(r"<td>stranger@mail\.example</td>.*?</tr>", queue, re.S)
        assert stranger is not None and "<td>10:00</td>" not in stranger[0]
        # A ticket's page: the customer's side, with the requester's other ticket.
        side = re.search(
            r'<section class="side".*?</section>', agent.get("/desk/tickets/CID-1000").text, re.S
        )
        assert side is not None and "ACME &lt;GmbH&gt;" in side[0] and "10:00 left" in side[0]
        assert re.findall(r"/desk/tickets/(CID-\d+)", side[0]) == ["CID-1003"]


def _contacts(desk: Desk) -> int:
    with desk.daemon.ctx.store.session() as session:
        return len(session.exec(select(Contact)).all())
