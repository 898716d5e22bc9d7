"""The form on a ticket's page: an answer or a note with files, and changes, sent as the
agent's mail (web/actions.py). Before it goes, a check that nobody else wrote on the ticket
since the page was opened: if someone did, the page comes back with their mail and what was
typed, unsent."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request, UploadFile
from sqlalchemy import func
from sqlmodel import Session, col, select
from starlette.responses import RedirectResponse, Response

from mailgate.outbound.context import Context
from mailgate.reports.detail import find_ticket
from mailgate.store.models import DONE, RECEIVED, Outbox, Ticket
from mailgate.web.actions import Action, newest_article, read_upload, submit
from mailgate.web.desk_pages import show_ticket
from mailgate.web.staff import Staff, desk_of, form_sender, notice, signed_in
from mailgate.web.words import say

log = logging.getLogger("mailgate.web")
router = APIRouter(include_in_schema=False)


@router.post("/desk/tickets/{cid}/mail")
def ticket_mail(
    request: Request,
    cid: str,
    form_token: Annotated[str | None, Form()] = None,
    seen: Annotated[int, Form()] = 0,
    text: Annotated[str, Form(max_length=200_000)] = "",
    kind: Annotated[str, Form()] = "answer",
    status: Annotated[str, Form()] = "",
    hold_until: Annotated[str, Form()] = "",
    priority: Annotated[str, Form()] = "",
    assign: Annotated[str, Form()] = "",
    minutes: Annotated[str, Form(max_length=20)] = "",
    billable: Annotated[bool, Form()] = False,
    type: Annotated[str, Form(max_length=20)] = "",
    category: Annotated[str, Form(max_length=100)] = "",
    cc: Annotated[str, Form(max_length=320)] = "",
    files: Annotated[list[UploadFile] | None, Form()] = None,
) -> Response:
    desk = desk_of(request)
    ctx = desk.ctx
    action = Action(
        text=text,
        internal=kind == "note",
        status=status,
        hold_until=hold_until,
        priority=priority,
        assign=assign,
        minutes=minutes,
        billable=billable,
        type=type,
        category=category,
        cc=cc,
        files=tuple(read_upload(f) for f in files or () if f.filename),
    )
    typed = {**action.__dict__, "kind": kind, "files": ()}
    with ctx.store.session() as db:
        staff = form_sender(request, db, form_token, signed_in)
        if isinstance(staff, Response):
            return staff
        ticket = find_ticket(db, ctx.config.tickets.prefix, cid)
        if ticket is None:
            return notice(staff.lang, "not_found", 404, staff)
        warning = _why_not_now(db, staff, ticket, action, seen)
        if warning:
            return show_ticket(db, desk, staff, ticket, typed, [warning], 409)
        agent = staff.agent
        before = db.exec(select(func.max(Outbox.id))).one() or 0
    outcome = submit(ctx, agent, ticket, action)
    desk.host.wake_outbox()
    log.info(
        "event=web_mail agent_id=%s ticket=%s intake_id=%s outcome=%r",
        agent.id, cid, outcome.intake_id, outcome.describe(),
    )  # fmt: skip
    if outcome.status not in (DONE, RECEIVED):
        with ctx.store.session() as db:
            why = say("not_taken", staff.lang, reason=outcome.reason)
            return show_ticket(db, desk, staff, ticket, typed, [why], 422)
    if _told_what_was_wrong(ctx, ticket, before):
        return RedirectResponse(f"/desk/tickets/{cid}?refused=1#write", status_code=303)
    return RedirectResponse(f"/desk/tickets/{cid}#last", status_code=303)


def _told_what_was_wrong(ctx: Context, ticket: Ticket, before: int) -> bool:
    """Whether processing the agent's mail refused a command: the desk mailed them why
    (command_error), as for a mailed command; the page says so too."""
    query = select(Outbox.id).where(
        Outbox.ticket_id == ticket.id, Outbox.template == "command_error", col(Outbox.id) > before
    )
    with ctx.store.session() as db:
        return db.exec(query).first() is not None


def _why_not_now(db: Session, staff: Staff, ticket: Ticket, action: Action, seen: int) -> str:
    """Why the form is not sent now: nothing in it, or someone else wrote since the page was
    opened (sent anyway when the agent presses again on the page that shows it)."""
    if action.empty:
        return say("nothing_to_send", staff.lang)
    newest = newest_article(db, ticket)
    if newest is not None and (newest.id or 0) > seen and newest.from_addr != staff.agent.email:
        return say("written_meanwhile", staff.lang, who=newest.from_name or newest.from_addr)
    return ""
