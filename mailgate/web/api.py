"""The JSON API for integrations (a shop, a CRM): tickets listed, shown and searched as the
command line's JSON has them, a ticket opened as its customer's mail, an article written as
the token's agent's mail. A bearer token from `mailgate api-token add`; the schema is served
at /api/openapi.json."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from pydantic import BaseModel, Field

from mailgate.desk.api_tokens import token_in_use
from mailgate.desk.web_access import API_SOURCE
from mailgate.flows.pipeline import Outcome
from mailgate.reading.addresses import valid_address
from mailgate.reports.detail import find_ticket, ticket_detail
from mailgate.reports.filters import FilterError, checked, make_filter
from mailgate.reports.listing import ticket_rows
from mailgate.search.engine import search
from mailgate.search.query import QueryError
from mailgate.store.models import DONE, Agent
from mailgate.web.actions import Action, Sender, send_as, submit
from mailgate.web.staff import DeskState, desk_of

log = logging.getLogger("mailgate.web")
router = APIRouter(prefix="/api/v1", tags=["tickets"])
REFERENCE_LINE = "Order number"  # as the customer's new-request form writes it


@dataclass(frozen=True)
class Caller:
    name: str  # the token's
    agent: Agent | None


def caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> Caller:
    """The token of `Authorization: Bearer TOKEN`: 401 without one that is open."""
    desk = desk_of(request)
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "an Authorization: Bearer token is needed")
    with desk.ctx.store.session() as db:
        found = token_in_use(db, token.strip(), desk.ctx.clock())
        if found is None:
            raise HTTPException(401, "this token is not known, or it was revoked")
        agent = db.get(Agent, found.agent_id) if found.agent_id else None
        if agent is not None and not agent.active:
            raise HTTPException(401, "this token's agent is deactivated")
        return Caller(found.name, agent)


Authorised = Annotated[Caller, Depends(caller)]


class NewTicket(BaseModel):
    from_address: str = Field(description="the customer's mail address")
    from_name: str = Field("", max_length=200)
    subject: str = Field(min_length=1, max_length=500)
    text: str = Field(min_length=1, max_length=200_000)
    reference: str = Field("", max_length=100, description="an order number, if any")


class NewArticle(BaseModel):
    text: str = Field(min_length=1, max_length=200_000)
    internal: bool = Field(False, description="a note for staff: the customer gets nothing")


class Written(BaseModel):
    cid: str
    outcome: str


@router.get("/tickets")
def list_tickets(
    request: Request,
    who: Authorised,
    status: Annotated[list[str] | None, Query()] = None,
    assignee: str | None = None,
    customer: str | None = None,
    q: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[dict[str, Any]]:
    """Tickets as `tickets list --format json` lists them, newest activity first."""
    desk = desk_of(request)
    with desk.ctx.store.session() as db:
        try:
            flt = make_filter(status=tuple(status or ()), assignee=assignee, customer=customer,
                              text=q, sort="last-action", desc=True, limit=limit)  # fmt: skip
            flt = checked(db, flt, desk.ctx.config.tickets.timezone)
        except FilterError as exc:
            raise HTTPException(400, str(exc)) from None
        return ticket_rows(db, desk.ctx.config, flt, desk.ctx.clock())


@router.get("/tickets/{cid}")
def show_ticket(request: Request, who: Authorised, cid: str) -> dict[str, Any]:
    """One ticket as `tickets show --format json` has it: its articles and events."""
    desk = desk_of(request)
    prefix = desk.ctx.config.tickets.prefix
    with desk.ctx.store.session() as db:
        ticket = find_ticket(db, prefix, cid)
        if ticket is None:
            raise HTTPException(404, f"no ticket {cid}")
        return ticket_detail(db, prefix, ticket)


@router.get("/search")
def search_tickets(
    request: Request,
    who: Authorised,
    q: str,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> list[dict[str, Any]]:
    """The best tickets for a query of `mailgate search`'s language, with snippets."""
    desk = desk_of(request)
    zone = desk.ctx.config.tickets.timezone
    with desk.ctx.store.session() as db:
        try:
            hits = search(db, q, limit=limit, now=desk.ctx.clock(), zone=zone)
        except QueryError as exc:
            raise HTTPException(400, str(exc)) from None
    return [hit.as_json() for hit in hits]


@router.post("/tickets", status_code=201)
def open_ticket(request: Request, who: Authorised, new: NewTicket) -> Written:
    """A new ticket, written as the customer's own mail to the support address: answered as
    that mail is (their acknowledgement, staff told)."""
    desk = desk_of(request)
    address = valid_address(new.from_address)
    if address is None:
        raise HTTPException(422, f"{new.from_address!r} is not a mail address")
    text = new.text.strip()
    if new.reference.strip():
        text = f"{REFERENCE_LINE}: {new.reference.strip()}\n\n{text}"
    sender = Sender(new.from_name, address)
    outcome = send_as(desk.ctx, sender, " ".join(new.subject.split()), text, source=API_SOURCE)
    return _written(desk, who, outcome)


@router.post("/tickets/{cid}/articles", status_code=201)
def write_article(request: Request, who: Authorised, cid: str, new: NewArticle) -> Written:
    """An answer to the customer (or an internal note), written as the token's agent's mail."""
    desk = desk_of(request)
    if who.agent is None:
        raise HTTPException(403, "this token has no agent: make one with --agent to write")
    with desk.ctx.store.session() as db:
        ticket = find_ticket(db, desk.ctx.config.tickets.prefix, cid)
    if ticket is None:
        raise HTTPException(404, f"no ticket {cid}")
    action = Action(text=new.text, internal=new.internal)
    return _written(desk, who, submit(desk.ctx, who.agent, ticket, action, API_SOURCE))


def _written(desk: DeskState, who: Caller, outcome: Outcome) -> Written:
    desk.host.wake_outbox()
    log.info(
        "event=api_mail token=%s intake_id=%s outcome=%r",
        who.name, outcome.intake_id, outcome.describe(),
    )  # fmt: skip
    if outcome.status != DONE or not outcome.cid:
        raise HTTPException(422, f"not taken: {outcome.describe()}")
    return Written(cid=outcome.cid, outcome=outcome.describe())
