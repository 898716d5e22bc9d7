"""The web desk's ASGI application: its pages, its static files, the headers on all of it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from mailgate.service.hosted import Host
from mailgate.store.database import StoreUnavailable
from mailgate.web import (
    api,
    customer_pages,
    customers_pages,
    desk_pages,
    quarantine_pages,
    sign_in,
    stats_page,
    ticket_actions,
)
from mailgate.web.guard import SecurityHeaders
from mailgate.web.pages import page
from mailgate.web.staff import DeskState
from mailgate.web.words import say

log = logging.getLogger("mailgate.web")


def build_app(host: Host) -> SecurityHeaders:
    # Only the JSON API is in the schema; the pages are no interface of their own.
    app = FastAPI(
        title="mailgate",
        summary="The JSON API of mailgate's web desk",
        docs_url=None,  # the interactive docs load script from elsewhere: not on this desk
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    desk = DeskState(host)
    app.state.desk = desk
    app.include_router(api.router)
    app.include_router(sign_in.router)
    app.include_router(desk_pages.router)
    app.include_router(ticket_actions.router)
    app.include_router(customer_pages.router)
    app.include_router(quarantine_pages.router)
    app.include_router(stats_page.router)
    app.include_router(customers_pages.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.add_exception_handler(RequestValidationError, _answer(desk, "bad_request", 400))
    app.add_exception_handler(StoreUnavailable, _answer(desk, "unavailable", 503))
    app.add_exception_handler(Exception, _answer(desk, "failed", 500))
    return SecurityHeaders(BodyLimit(app, desk))


def _answer(desk: DeskState, key: str, status: int) -> Callable[[Request, Exception], Response]:
    """A page that says what went wrong in words, never a traceback; the log has the rest."""

    def answer(request: Request, exc: Exception) -> Response:
        if status >= 500:
            log.error("event=web_failed path=%s error=%r", request.url.path, str(exc))
        if request.url.path.startswith("/api/"):
            if isinstance(exc, RequestValidationError):
                return JSONResponse({"detail": jsonable_encoder(exc.errors())}, 422)
            return JSONResponse({"detail": say(key, "en")}, status)
        lang = desk.browser_lang(request)
        return page(
            "notice", lang, {"text": say(key, lang), "again": False, "staff": None, "q": ""}, status
        )

    return answer


class BodyLimit:
    """A form (with its files) may be as large as a mail may be ([smtp] max_message_size,
    with room for the form's own encoding): a larger one is refused before it is read."""

    def __init__(self, app: ASGIApp, desk: DeskState) -> None:
        self.app, self.desk = app, desk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            limit = self.desk.ctx.config.smtp.max_message_size
            length = dict(scope["headers"]).get(b"content-length", b"")
            if not length.isdigit() or int(length) > limit:
                status = 411 if not length.isdigit() else 413
                lang = self.desk.browser_lang(Request(scope))
                refused = page("notice", lang, _too_large(lang, limit), status)
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _too_large(lang: str, limit: int) -> dict[str, object]:
    return {"text": say("too_large", lang, limit=limit), "again": False, "staff": None, "q": ""}
