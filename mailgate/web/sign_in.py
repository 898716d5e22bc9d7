"""Signing in by a mailed link, signing out, and the list of one's signed-in browsers.

The link's page only shows a button: opening it (as mail scanners do with every link) uses
nothing; the button's POST signs in. Whether an address is an agent's is not told: the page
says the same for any address."""

from __future__ import annotations

import logging
import re
from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from mailgate.desk.web_access import (
    LinkRefused,
    agent_by_address,
    contact_by_address,
    current_session,
    issue_link,
    revoke_session,
    sessions_of_agent,
    sign_in,
    usable_link,
)
from mailgate.outbound.sign_in_mail import SIGN_IN_PATH, mail_sign_in_link
from mailgate.store.models import Agent, Contact, WebLink
from mailgate.web.guard import COOKIE, cookie_options, form_token_matches, from_our_page
from mailgate.web.pages import page
from mailgate.web.staff import client_of, desk_of, form_sender, notice, signed_in

log = logging.getLogger("mailgate.web")
router = APIRouter(include_in_schema=False)
_NOT_FOUND = {"unknown"}  # any other refusal: the link existed (410 Gone)
# Where a customer's link leads: one of their requests, by its number.
_CID = re.compile(r"[A-Za-z][A-Za-z0-9]{0,19}-\d{1,12}")


@router.get("/sign-in")
def ask_for_link(request: Request) -> Response:
    desk = desk_of(request)
    return page("sign_in", desk.browser_lang(request), {"sent": False, "staff": None, "q": ""})


@router.post("/sign-in")
def send_link(request: Request, address: Annotated[str, Form(max_length=320)]) -> Response:
    desk = desk_of(request)
    ctx = desk.ctx
    if not from_our_page(request, ctx.config.web.root):
        return notice(desk.browser_lang(request), "refused_form", 403)
    with ctx.store.session() as db:
        person = agent_by_address(db, address) or contact_by_address(db, address)
        if person is not None:
            token = issue_link(db, person, ctx.clock(), ctx.config.web.link_minutes)
            mail_sign_in_link(db, ctx, person, token)
            kind = "agent" if isinstance(person, Agent) else "contact"
    if person is not None:
        desk.host.wake_outbox()
        log.info("event=web_link_sent %s_id=%s client=%s", kind, person.id, client_of(request))
    else:
        log.info("event=web_link_not_sent reason=nobody client=%s", client_of(request))
    context = {"sent": True, "minutes": ctx.config.web.link_minutes, "staff": None, "q": ""}
    return page("sign_in", desk.browser_lang(request), context)


@router.get(SIGN_IN_PATH + "{token}")
def link_page(request: Request, token: str, to: str = "") -> Response:
    """The page a mailed link opens: a button, or why the link does not work. A link used
    before, opened again in the browser it signed in, goes on to where it leads."""
    desk = desk_of(request)
    client = client_of(request)
    if desk.failed_tokens.blocked(client):
        return notice(desk.browser_lang(request), "too_many", 429)
    with desk.ctx.store.session() as db:
        try:
            link = usable_link(db, token, desk.ctx.clock())
        except LinkRefused as refused:
            if refused.reason == "used" and _signed_in_by(request, db, refused.link):
                return RedirectResponse(_target(refused.link, to), status_code=303)
            return _refused(request, refused)
        lang = _owners_language(db, link)
    action = request.url.path + (f"?to={to}" if _CID.fullmatch(to) else "")
    context = {"why": None, "action": action, "staff": None, "q": ""}
    return page("link", desk.browser_lang(request, lang), context)


@router.post(SIGN_IN_PATH + "{token}")
def use_link(request: Request, token: str, to: str = "") -> Response:
    desk = desk_of(request)
    ctx = desk.ctx
    if not from_our_page(request, ctx.config.web.root):
        return notice(desk.browser_lang(request), "refused_form", 403)
    if desk.failed_tokens.blocked(client_of(request)):
        return notice(desk.browser_lang(request), "too_many", 429)
    user_agent = request.headers.get("user-agent", "")
    with ctx.store.session() as db:
        try:
            days = ctx.config.web.session_days
            cookie, opened = sign_in(db, token, ctx.clock(), days, user_agent)
        except LinkRefused as refused:
            return _refused(request, refused)
        log.info(
            "event=web_signed_in agent_id=%s contact_id=%s session=%s",
            opened.agent_id, opened.contact_id, opened.id,
        )  # fmt: skip
        target = "/desk" if opened.agent_id else _target(None, to)
    response = RedirectResponse(target, status_code=303)
    max_age = ctx.config.web.session_days * 86400
    response.set_cookie(COOKIE, cookie, max_age=max_age, **cookie_options(ctx.config.web.root))  # type: ignore[arg-type]
    return response


def _owners_language(db: Session, link: WebLink) -> str | None:
    """The language of whom the link was mailed to: its page names the button as their mail
    did ("Se connecter" for a French customer, whatever the desk's default)."""
    if link.agent_id is not None:
        agent = db.get(Agent, link.agent_id)
        return agent.language if agent is not None else None
    contact = db.get(Contact, link.contact_id) if link.contact_id is not None else None
    return contact.language if contact is not None else None


def _target(link: WebLink | None, to: str) -> str:
    """Where a link leads once signed in: a customer's request (`?to=CID-1042`), else their
    list; an agent's desk."""
    if link is not None and link.agent_id is not None:
        return "/desk"
    return f"/my/tickets/{to}" if _CID.fullmatch(to) else "/my"


def _signed_in_by(request: Request, db: Session, link: WebLink | None) -> bool:
    """Whether this browser has an open session of the link's owner."""
    cookie = request.cookies.get(COOKIE)
    current = current_session(db, cookie, desk_of(request).ctx.clock()) if cookie else None
    if current is None or link is None:
        return False
    same_agent = link.agent_id is not None and current.agent_id == link.agent_id
    return same_agent or (link.contact_id is not None and current.contact_id == link.contact_id)


def _refused(request: Request, refused: LinkRefused) -> Response:
    desk = desk_of(request)
    desk.failed_tokens.failed(client_of(request))
    log.info("event=web_link_refused reason=%s client=%s", refused.reason, client_of(request))
    status = 404 if refused.reason in _NOT_FOUND else 410
    return page(
        "link", desk.browser_lang(request), {"why": refused.reason, "staff": None, "q": ""}, status
    )


@router.post("/sign-out")
def sign_out(request: Request, form_token: Annotated[str | None, Form()] = None) -> Response:
    """Ends the session of the browser that asks (an agent's or a customer's)."""
    desk = desk_of(request)
    ctx = desk.ctx
    cookie = request.cookies.get(COOKIE)
    with ctx.store.session() as db:
        current = current_session(db, cookie, ctx.clock()) if cookie else None
        if current is not None:
            from_here = from_our_page(request, ctx.config.web.root)
            if not from_here or not form_token_matches(form_token, current.form_token):
                return notice(desk.browser_lang(request), "refused_form", 403)
            revoke_session(db, current, current.id or 0, ctx.clock())
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(COOKIE, **cookie_options(ctx.config.web.root))  # type: ignore[arg-type]
    return response


@router.get("/desk/sessions")
def sessions(request: Request) -> Response:
    desk = desk_of(request)
    with desk.ctx.store.session() as db:
        staff = signed_in(request, db)
        if staff is None:
            return RedirectResponse("/sign-in", status_code=303)
        listed = sessions_of_agent(db, staff.agent.id or 0, desk.ctx.clock())
        context = {"sessions": listed, "staff": staff, "q": "", "when": desk.when}
        return page("sessions", staff.lang, context)


@router.post("/desk/sessions/{session_id}/revoke")
def revoke(
    request: Request, session_id: int, form_token: Annotated[str | None, Form()] = None
) -> Response:
    desk = desk_of(request)
    with desk.ctx.store.session() as db:
        staff = form_sender(request, db, form_token, signed_in)
        if isinstance(staff, Response):
            return staff
        if not revoke_session(db, staff.session, session_id, desk.ctx.clock()):
            return notice(staff.lang, "not_found", 404, staff)
    return RedirectResponse("/desk/sessions", status_code=303)
