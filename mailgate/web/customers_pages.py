"""Organisations and their contacts on the web desk, as `mailgate customers list|show` has
them: kind, claimed domains, contacts with their failing and opted-out flags, support hours."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from mailgate.desk import directory
from mailgate.desk.customers import ContingentError
from mailgate.store.models import COMPANY
from mailgate.web.pages import page
from mailgate.web.staff import desk_of, notice, signed_in

router = APIRouter(include_in_schema=False)


@router.get("/desk/customers")
def organisations(request: Request, kind: str = COMPANY) -> Response:
    """The companies by default: a desk of years has a personal organisation per stranger."""
    desk = desk_of(request)
    with desk.ctx.store.session() as db:
        staff = signed_in(request, db)
        if staff is None:
            return RedirectResponse("/sign-in", status_code=303)
        rows = directory.organisations(db, None if kind == "all" else kind)
    context = {"rows": rows, "kind": kind, "staff": staff, "q": "", "quote": quote}
    return page("customers", staff.lang, context)


@router.get("/desk/customers/{name:path}")
def organisation(request: Request, name: str) -> Response:
    desk = desk_of(request)
    with desk.ctx.store.session() as db:
        staff = signed_in(request, db)
        if staff is None:
            return RedirectResponse("/sign-in", status_code=303)
        try:
            org = directory.organisation(db, name)
        except ContingentError:
            return notice(staff.lang, "not_found", 404, staff)
    tickets = "/desk?q=" + quote(f'org:"{org["name"]}"')
    context = {"org": org, "tickets": tickets, "staff": staff, "q": ""}
    return page("organisation", staff.lang, context)
