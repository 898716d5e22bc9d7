"""Who is signed in: the web desk's state shared by its pages, and the agent of a request."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from mailgate.desk.web_access import current_session
from mailgate.outbound.context import Context
from mailgate.outbound.template_views import local_time
from mailgate.service.hosted import Host
from mailgate.store.models import Agent, Contact, WebSession
from mailgate.web.guard import COOKIE, FailedTokens, form_token_matches, from_our_page
from mailgate.web.pages import page
from mailgate.web.words import browser_language, language, say

log = logging.getLogger("mailgate.web")


class DeskState:
    """What every page of one web desk shares: the daemon's parts, the brake on guessing."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.failed_tokens = FailedTokens()

    @property
    def ctx(self) -> Context:
        return self.host.context()

    def lang(self, agent: Agent | None = None) -> str:
        return self.lang_of(agent.language if agent else None)

    def lang_of(self, chosen: str | None) -> str:
        """A page's language: the one chosen for its reader, else the desk's default."""
        return language(chosen or self.ctx.config.tickets.default_language)

    def browser_lang(self, request: Request, chosen: str | None = None) -> str:
        """The language of a page for a reader not signed in: the one chosen for them (the
        owner of a mailed link), else the first of the browser's languages the pages speak,
        else the desk's default."""
        asked = browser_language(request.headers.get("accept-language", ""))
        return self.lang_of(chosen or asked)

    def when(self, moment: datetime | str | None) -> str:
        """A stored moment as the desk reads it: in [tickets] timezone, to the minute."""
        if isinstance(moment, str):  # from a listing's JSON-ready row
            moment = datetime.fromisoformat(moment)
        return local_time(self.ctx, moment)


@dataclass(frozen=True)
class Staff:
    agent: Agent
    session: WebSession
    lang: str


@dataclass(frozen=True)
class Customer:
    contact: Contact
    session: WebSession
    lang: str


def desk_of(request: Request) -> DeskState:
    desk: DeskState = request.app.state.desk
    return desk


def signed_in(request: Request, db: Session) -> Staff | None:
    """The agent whose open session the request's cookie is, if any."""
    desk = desk_of(request)
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    found = current_session(db, cookie, desk.ctx.clock())
    if found is None or found.agent_id is None:
        return None
    agent = db.get(Agent, found.agent_id)
    if agent is None:
        return None
    return Staff(agent, found, desk.lang(agent))


def customer_of(request: Request, db: Session) -> Customer | None:
    """The customer contact whose open session the request's cookie is, if any."""
    desk = desk_of(request)
    cookie = request.cookies.get(COOKIE)
    found = current_session(db, cookie, desk.ctx.clock()) if cookie else None
    contact = db.get(Contact, found.contact_id) if found and found.contact_id else None
    if found is None or contact is None:
        return None
    chosen = contact.language or desk.ctx.config.tickets.default_language
    return Customer(contact, found, language(chosen))


def client_of(request: Request) -> str:
    return request.client.host if request.client else "-"


def notice(lang: str, key: str, status_code: int, staff: Staff | None = None) -> HTMLResponse:
    context = {"text": say(key, lang), "again": staff is None, "staff": staff, "q": ""}
    return page("notice", lang, context, status_code)


Person = TypeVar("Person", Staff, Customer)


def form_sender(
    request: Request,
    db: Session,
    sent: str | None,
    person: Callable[[Request, Session], Person | None],
) -> Person | Response:
    """The signed-in person (`signed_in` for an agent, `customer_of` for a customer) who sent
    a form from one of our pages with their session's form token; else the response that
    refuses the form (to the sign-in page without a session)."""
    desk = desk_of(request)
    found = person(request, db)
    if found is None:
        return RedirectResponse("/sign-in", status_code=303)
    from_here = from_our_page(request, desk.ctx.config.web.root)
    if not from_here or not form_token_matches(sent, found.session.form_token):
        log.info("event=web_form_refused session=%s", found.session.id)
        staff = found if isinstance(found, Staff) else None
        return notice(found.lang, "refused_form", 403, staff)
    return found
