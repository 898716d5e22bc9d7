"""The staff pages: the queues (the command line's filters and search), a ticket with its
mails and history, a mail's HTML in a sandboxed frame, and attachments to download."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from sqlmodel import Session, col, select
from starlette.responses import HTMLResponse, RedirectResponse, Response

from mailgate.desk.customers import contingent_status
from mailgate.moments import hhmm
from mailgate.reading.mime.htmltext import sanitize_html
from mailgate.reports.detail import find_ticket, ticket_detail
from mailgate.reports.filters import FilterError, checked, make_filter
from mailgate.reports.listing import ticket_rows
from mailgate.search.engine import Hit, search
from mailgate.search.query import QueryError
from mailgate.store import blobs
from mailgate.store.models import (
    PRIORITIES,
    STATUSES,
    TYPES,
    Agent,
    Article,
    Attachment,
    Organisation,
    Ticket,
    TimeEntry,
)
from mailgate.web.pages import download, page
from mailgate.web.staff import DeskState, Staff, desk_of, notice, signed_in
from mailgate.web.words import say

router = APIRouter(include_in_schema=False)
QUEUE_SIZE = 50  # tickets on a queue's page, the newest activity first
SEARCH_HITS = 50  # tickets a search shows, the best first
# Queue -> the `tickets list` options that make it ("me": the signed-in agent).
QUEUES: dict[str, dict[str, Any]] = {
    "unassigned": {"assignee": "none", "status": ("open,working,hold,delivered",)},
    "mine": {"assignee": "me", "status": ("open,working,hold,delivered",)},
    "open": {"status": ("open,working",)},
    "waiting": {"waiting": "customer", "status": ("open,working",)},
    "hold_due": {"status": ("hold",)},  # and the hold date has come (_queue_rows)
    "hold": {"status": ("hold",)},
    "delivered": {"status": ("delivered",)},
    "closed": {"status": ("closed",)},
}
# A mail's HTML, cleaned, in a frame of its own: no script, no request anywhere, no forms.
FRAME_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; frame-ancestors 'self'"
)


@router.get("/")
def home() -> Response:
    return RedirectResponse("/desk", status_code=303)


@router.get("/desk")
def queue(request: Request, queue: str = "open", q: str = "", n: int = 1) -> Response:
    """A queue, newest activity first; with words in the search box, the tickets they find
    in every queue, the best first, each with the place it was found (`mailgate search`)."""
    desk = desk_of(request)
    with desk.ctx.store.session() as db:
        staff = signed_in(request, db)
        if staff is None:
            return RedirectResponse("/sign-in", status_code=303)
        chosen = queue if queue in QUEUES else "open"
        rows: list[dict[str, Any]] = []
        hits: list[Hit] = []
        error = ""
        try:
            if q.strip():
                zone = desk.ctx.config.tickets.timezone
                hits = search(db, q, limit=SEARCH_HITS, now=desk.ctx.clock(), zone=zone)
            else:
                rows = _queue_rows(db, desk, staff, chosen, max(1, n))
        except (FilterError, QueryError) as exc:
            error = str(exc)
        names = {r["customer"] for r in rows[:QUEUE_SIZE] if r["customer"]}
        context = {
            "hours_left": _hours_left(db, names),
            "rows": rows[:QUEUE_SIZE],
            "more": len(rows) > QUEUE_SIZE,
            "number": max(1, n),
            "hits": hits,
            "queue": "" if q.strip() else chosen,
            "queues": list(QUEUES),
            "q": q,
            "error": error,
            "staff": staff,
            "when": desk.when,
        }
        return page("queue", staff.lang, context)


def _hours_left(db: Session, names: set[str]) -> dict[str, str]:
    """The support hours left (h:mm) of those organisations that bought any, by name."""
    query = select(Organisation).where(
        col(Organisation.name).in_(names), col(Organisation.support_minutes) != 0
    )
    return {org.name: hhmm(contingent_status(db, org).left) for org in db.exec(query)}


def _customer_side(db: Session, ticket: Ticket) -> dict[str, Any]:
    """The ticket's customer: the organisation, its support hours, the requester's other
    tickets (the latest ten)."""
    org = db.get(Organisation, ticket.organisation_id)
    hours = contingent_status(db, org) if org is not None else None
    others = db.exec(
        select(Ticket)
        .where(Ticket.requester_id == ticket.requester_id, Ticket.id != ticket.id)
        .order_by(col(Ticket.last_action_at).desc())
        .limit(10)
    ).all()
    shown = hours is not None and bool(hours.total or hours.used)
    return {
        "org": org,
        "hours": {"total": hhmm(hours.total), "used": hhmm(hours.used), "left": hhmm(hours.left)}
        if hours is not None and shown
        else None,
        "others": others,
    }


def _time_entries(db: Session, ticket: Ticket) -> list[dict[str, Any]]:
    """The time booked on the ticket, oldest first, with whose it is."""
    query = (
        select(TimeEntry, Agent.name, Agent.email)
        .join(Agent, col(Agent.id) == col(TimeEntry.agent_id), isouter=True)
        .where(TimeEntry.ticket_id == ticket.id)
        .order_by(col(TimeEntry.id))
    )
    return [
        {"entry": entry, "who": name or email or "", "hhmm": hhmm(entry.minutes)}
        for entry, name, email in db.exec(query)
    ]


def _queue_rows(
    db: Session, desk: DeskState, staff: Staff, queue: str, number: int
) -> list[dict[str, Any]]:
    """The queue's page `number`, one ticket more than a page holds (there is a next page
    when it is there)."""
    options = dict(QUEUES[queue])
    if options.get("assignee") == "me":
        options["assignee"] = staff.agent.email
    flt = make_filter(**options, sort="last-action", desc=True, limit=QUEUE_SIZE + 1)
    flt = replace(
        checked(db, flt, desk.ctx.config.tickets.timezone),
        offset=QUEUE_SIZE * (number - 1),
        hold_due=queue == "hold_due",
    )
    return ticket_rows(db, desk.ctx.config, flt, desk.ctx.clock())


@router.get("/desk/tickets/{cid}")
def ticket_page(request: Request, cid: str, refused: int = 0) -> Response:
    desk = desk_of(request)
    with desk.ctx.store.session() as db:
        staff = signed_in(request, db)
        if staff is None:
            return RedirectResponse("/sign-in", status_code=303)
        ticket = find_ticket(db, desk.ctx.config.tickets.prefix, cid)
        if ticket is None:
            return notice(staff.lang, "not_found", 404, staff)
        warnings = [say("commands_refused", staff.lang)] if refused else []
        return show_ticket(db, desk, staff, ticket, warnings=warnings)


def show_ticket(
    db: Session,
    desk: DeskState,
    staff: Staff,
    ticket: Ticket,
    typed: Mapping[str, object] | None = None,
    warnings: Sequence[str] = (),
    status_code: int = 200,
) -> Response:
    """The ticket's page; `typed`: what the agent had typed in its form (kept when it was not
    sent), `warnings`: why not, in the agent's words."""
    detail = ticket_detail(db, desk.ctx.config.tickets.prefix, ticket)
    articles = detail["articles"]
    agents = db.exec(select(Agent).where(col(Agent.active)).order_by(col(Agent.email))).all()
    context = {
        "ticket": detail,
        "files": _files(db, [a["id"] for a in articles]),
        "seen": articles[-1]["id"] if articles else 0,
        "agents": agents,
        "statuses": STATUSES,
        "priorities": PRIORITIES,
        "types": TYPES,
        "typed": typed or {},
        "side": _customer_side(db, ticket),
        "entries": _time_entries(db, ticket),
        "prefix": desk.ctx.config.tickets.prefix,
        "quote": quote,
        "warnings": warnings,
        "staff": staff,
        "q": "",
        "when": desk.when,
    }
    return page("ticket", staff.lang, context, status_code)


def _files(db: Session, article_ids: list[int]) -> dict[int, list[Attachment]]:
    found: dict[int, list[Attachment]] = defaultdict(list)
    query = select(Attachment).where(col(Attachment.article_id).in_(article_ids))
    for attachment in db.exec(query.order_by(col(Attachment.id))):
        found[attachment.article_id].append(attachment)
    return found


@router.get("/desk/articles/{article_id}/html")
def article_html(request: Request, article_id: int) -> Response:
    desk = desk_of(request)
    with desk.ctx.store.session() as db:
        staff = signed_in(request, db)
        article = db.get(Article, article_id) if staff is not None else None
        if staff is None or article is None or not article.html:
            return _gone(desk, staff)
        cleaned = sanitize_html(article.html)
    headers = {"Content-Security-Policy": FRAME_POLICY, "X-Frame-Options": "SAMEORIGIN"}
    return HTMLResponse(cleaned, headers=headers)


@router.get("/desk/files/{attachment_id}")
def attachment_file(request: Request, attachment_id: int) -> Response:
    desk = desk_of(request)
    with desk.ctx.store.session() as db:
        staff = signed_in(request, db)
        attachment = db.get(Attachment, attachment_id) if staff is not None else None
        if staff is None or attachment is None:
            return _gone(desk, staff)
        data = blobs.read_in(db, desk.ctx.config.data_dir, attachment.sha256)
    return download(data, attachment.filename)


def _gone(desk: DeskState, staff: Staff | None) -> Response:
    if staff is None:
        return RedirectResponse("/sign-in", status_code=303)
    return notice(staff.lang, "not_found", 404, staff)
