"""The customer's side of the web desk: their requests (their company's, for a company's
contacts: the ticket list mail's rule), a request's mails without staff's internal notes, a
reply with files, "solved" and "not solved yet" on a delivered request, and a new request.
Everything a customer does here is written as their mail (web/actions.py) and answered as
that mail is."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, UploadFile
from sqlmodel import Session, col, select
from starlette.responses import RedirectResponse, Response

from mailgate.desk.customers import contingent_status, visible_tickets
from mailgate.moments import hhmm
from mailgate.reports.detail import find_ticket
from mailgate.store import blobs
from mailgate.store.models import (
    COMPANY,
    DONE,
    PERSONAL,
    RECEIVED,
    Article,
    Attachment,
    Organisation,
    Ticket,
)
from mailgate.web.actions import Sender, read_upload, reply_subject, send_as
from mailgate.web.pages import download, page
from mailgate.web.staff import Customer, DeskState, customer_of, desk_of, form_sender, notice
from mailgate.web.words import say

router = APIRouter(include_in_schema=False)
SHOWN = ("customer", "staff")  # a customer reads the mails; internal notes and system notes not
REFERENCE_LINE = {"en": "Order number", "de": "Bestellnummer", "fr": "Numéro de commande"}


def _visible(db: Session, customer: Customer, cid: str, prefix: str) -> Ticket | None:
    """The ticket if this customer may see it; None for one that is not theirs, exactly as
    for one that does not exist."""
    ticket = find_ticket(db, prefix, cid)
    if ticket is None:
        return None
    mine = visible_tickets(db, customer.contact, closed=True).where(Ticket.id == ticket.id)
    return ticket if db.exec(mine).first() is not None else None


def _context(desk: DeskState, customer: Customer, **more: Any) -> dict[str, Any]:
    prefix = desk.ctx.config.tickets.prefix
    return {
        "customer": customer,
        "staff": None,
        "q": "",
        "when": desk.when,
        "prefix": prefix,
        **more,
    }


@router.get("/my")
def my_requests(request: Request) -> Response:
    desk = desk_of(request)
    with desk.ctx.store.session() as db:
        customer = customer_of(request, db)
        if customer is None:
            return RedirectResponse("/sign-in", status_code=303)
        tickets = list(db.exec(visible_tickets(db, customer.contact, closed=True)))
        tickets.sort(key=lambda t: (t.status == "closed", -t.last_action_at.timestamp()))
        hours = _support_hours(db, customer)
        context = _context(desk, customer, tickets=tickets, hours=hours)
        return page("my_list", customer.lang, context)


def _support_hours(db: Session, customer: Customer) -> dict[str, str] | None:
    """The support time the customer's organisation bought, used and has left (h:mm), when
    it has any; never the pool's, which strangers share."""
    org = db.get(Organisation, customer.contact.organisation_id)
    if org is None or org.kind not in (COMPANY, PERSONAL):
        return None
    status = contingent_status(db, org)
    if not status.total:  # none bought: the billable time used, with nothing to subtract
        return {"key": "support_hours_used", "used": hhmm(status.used)} if status.used else None
    figures = {"bought": hhmm(status.total), "used": hhmm(status.used), "left": hhmm(status.left)}
    return {"key": "support_hours", **figures}


@router.get("/my/tickets/{cid}")
def my_ticket(request: Request, cid: str) -> Response:
    desk = desk_of(request)
    with desk.ctx.store.session() as db:
        customer = customer_of(request, db)
        if customer is None:
            return RedirectResponse("/sign-in", status_code=303)
        ticket = _visible(db, customer, cid, desk.ctx.config.tickets.prefix)
        if ticket is None:
            return notice(customer.lang, "not_found", 404)
        return _ticket_page(db, desk, customer, ticket)


def _ticket_page(
    db: Session, desk: DeskState, customer: Customer, ticket: Ticket, warning: str = ""
) -> Response:
    articles = list(
        db.exec(
            select(Article)
            .where(Article.ticket_id == ticket.id, col(Article.direction).in_(SHOWN))
            .order_by(col(Article.id))
        )
    )
    files: dict[int, list[Attachment]] = {}
    query = select(Attachment).where(col(Attachment.article_id).in_([a.id for a in articles]))
    for attachment in db.exec(query.order_by(col(Attachment.id))):
        files.setdefault(attachment.article_id, []).append(attachment)
    prefix = desk.ctx.config.tickets.prefix
    context = _context(
        desk,
        customer,
        ticket=ticket,
        cid=f"{prefix}-{ticket.number}",
        articles=articles,
        files=files,
        warning=warning,
    )
    return page("my_ticket", customer.lang, context, 422 if warning else 200)


@router.post("/my/tickets/{cid}/mail")
def my_reply(
    request: Request,
    cid: str,
    form_token: Annotated[str | None, Form()] = None,
    text: Annotated[str, Form(max_length=200_000)] = "",
    answer: Annotated[str, Form()] = "reply",  # reply | solved | not_solved
    files: Annotated[list[UploadFile] | None, Form()] = None,
) -> Response:
    desk = desk_of(request)
    ctx = desk.ctx
    uploads = tuple(read_upload(f) for f in files or () if f.filename)
    with ctx.store.session() as db:
        customer = form_sender(request, db, form_token, customer_of)
        if isinstance(customer, Response):
            return customer
        ticket = _visible(db, customer, cid, ctx.config.tickets.prefix)
        if ticket is None:
            return notice(customer.lang, "not_found", 404)
        if answer in ("solved", "not_solved"):
            text = say(f"said_{answer}", customer.lang)  # what the same mail would say
        elif not (text.strip() or uploads):
            return _ticket_page(db, desk, customer, ticket, say("nothing_to_send", customer.lang))
    outcome = send_as(
        ctx, Sender.of(customer.contact), reply_subject(ctx, ticket), text, uploads, ticket
    )
    desk.host.wake_outbox()
    if outcome.status not in (DONE, RECEIVED):
        with ctx.store.session() as db:
            why = say("not_taken", customer.lang, reason=outcome.reason)
            return _ticket_page(db, desk, customer, ticket, why)
    return RedirectResponse(f"/my/tickets/{quote(cid)}#last", status_code=303)


@router.get("/my/new")
def new_request_page(request: Request) -> Response:
    desk = desk_of(request)
    with desk.ctx.store.session() as db:
        customer = customer_of(request, db)
        if customer is None:
            return RedirectResponse("/sign-in", status_code=303)
        return page("my_new", customer.lang, _context(desk, customer, typed={}, warning=""))


@router.post("/my/new")
def new_request(
    request: Request,
    form_token: Annotated[str | None, Form()] = None,
    subject: Annotated[str, Form(max_length=500)] = "",
    text: Annotated[str, Form(max_length=200_000)] = "",
    reference: Annotated[str, Form(max_length=100)] = "",
    files: Annotated[list[UploadFile] | None, Form()] = None,
) -> Response:
    desk = desk_of(request)
    ctx = desk.ctx
    uploads = tuple(read_upload(f) for f in files or () if f.filename)
    with ctx.store.session() as db:
        customer = form_sender(request, db, form_token, customer_of)
        if isinstance(customer, Response):
            return customer
        if not subject.strip() or not text.strip():
            typed = {"subject": subject, "text": text, "reference": reference}
            warning = say("subject_and_text", customer.lang)
            context = _context(desk, customer, typed=typed, warning=warning)
            return page("my_new", customer.lang, context, 422)
    body = text.strip()
    if reference.strip():  # as a customer would write it: the desk finds it there
        body = f"{REFERENCE_LINE[customer.lang]}: {reference.strip()}\n\n{body}"
    outcome = send_as(ctx, Sender.of(customer.contact), " ".join(subject.split()), body, uploads)
    desk.host.wake_outbox()
    if outcome.status != DONE or not outcome.cid:
        return notice(customer.lang, "request_queued", 202)
    return RedirectResponse(f"/my/tickets/{quote(outcome.cid)}", status_code=303)


@router.get("/my/files/{attachment_id}")
def my_file(request: Request, attachment_id: int) -> Response:
    desk = desk_of(request)
    prefix = desk.ctx.config.tickets.prefix
    with desk.ctx.store.session() as db:
        customer = customer_of(request, db)
        if customer is None:
            return RedirectResponse("/sign-in", status_code=303)
        attachment = db.get(Attachment, attachment_id)
        article = db.get(Article, attachment.article_id) if attachment else None
        ticket = db.get(Ticket, article.ticket_id) if article else None
        cid = f"{prefix}-{ticket.number}" if ticket else ""
        if (
            attachment is None
            or article is None
            or article.direction not in SHOWN
            or (_visible(db, customer, cid, prefix) is None)
        ):
            return notice(customer.lang, "not_found", 404)
        data = blobs.read_in(db, desk.ctx.config.data_dir, attachment.sha256)
    return download(data, attachment.filename)
