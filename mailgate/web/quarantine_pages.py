"""The quarantine on the web desk: the messages that could not be processed, with the reason
and their header, and what `mailgate quarantine` does with them: retry, release as a
ticket, drop with a reason (the same pipeline functions)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlmodel import col, select
from starlette.responses import RedirectResponse, Response

from mailgate.flows import pipeline
from mailgate.reports.mail_rows import intake_dict
from mailgate.store.models import QUARANTINED, Intake
from mailgate.web.pages import page
from mailgate.web.staff import Staff, desk_of, form_sender, notice, signed_in

log = logging.getLogger("mailgate.web")
router = APIRouter(include_in_schema=False)
LISTED = 200  # the newest quarantined messages on the page


@router.get("/desk/quarantine")
def quarantine_list(request: Request) -> Response:
    desk = desk_of(request)
    with desk.ctx.store.session() as db:
        staff = signed_in(request, db)
        if staff is None:
            return RedirectResponse("/sign-in", status_code=303)
        query = select(Intake).where(Intake.status == QUARANTINED)
        found = db.exec(query.order_by(col(Intake.id).desc()).limit(LISTED))
        rows = [intake_dict(db, row) for row in found]
        context = {"rows": rows, "staff": staff, "q": "", "when": desk.when, "said": ""}
        return page("quarantine", staff.lang, context)


@router.get("/desk/quarantine/{intake_id}")
def quarantined(request: Request, intake_id: int) -> Response:
    with desk_of(request).ctx.store.session() as db:
        staff = signed_in(request, db)
    if staff is None:
        return RedirectResponse("/sign-in", status_code=303)
    return _message_page(request, staff, intake_id)


def _message_page(request: Request, staff: Staff, intake_id: int, said: str = "") -> Response:
    desk = desk_of(request)
    with desk.ctx.store.session() as db:
        row = db.get(Intake, intake_id)
        if row is None:
            return notice(staff.lang, "not_found", 404, staff)
        message = intake_dict(db, row, with_headers=True)
    context = {"message": message, "staff": staff, "q": "", "when": desk.when, "said": said}
    return page("quarantined", staff.lang, context, 409 if said else 200)


@router.post("/desk/quarantine/{intake_id}/{action}")
def act(
    request: Request,
    intake_id: int,
    action: str,
    form_token: Annotated[str | None, Form()] = None,
    address: Annotated[str, Form(max_length=320)] = "",
    as_customer: Annotated[bool, Form()] = False,
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    desk = desk_of(request)
    ctx = desk.ctx
    with ctx.store.session() as db:
        staff = form_sender(request, db, form_token, signed_in)
        if isinstance(staff, Response):
            return staff
    try:
        if action == "retry":
            [outcome] = pipeline.retry(ctx, [intake_id]) or [None]
            if outcome is None:
                raise pipeline.OperatorError(f"message {intake_id} is not quarantined")
        elif action == "release":
            outcome = pipeline.release(ctx, intake_id, address.strip() or None, as_customer)
        elif action == "drop":
            outcome = pipeline.drop(ctx, intake_id, reason)
        else:
            return notice(staff.lang, "not_found", 404, staff)
    except pipeline.OperatorError as exc:
        return _message_page(request, staff, intake_id, str(exc))
    desk.host.wake_outbox()
    log.info(
        "event=web_quarantine action=%s intake_id=%s agent_id=%s outcome=%r",
        action, intake_id, staff.agent.id, outcome.describe(),
    )  # fmt: skip
    if outcome.status == QUARANTINED:  # retried, and quarantined again: say why
        return _message_page(request, staff, intake_id, outcome.describe())
    if outcome.cid:
        return RedirectResponse(f"/desk/tickets/{outcome.cid}", status_code=303)
    return RedirectResponse("/desk/quarantine", status_code=303)
