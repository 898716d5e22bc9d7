"""What keeps the web desk safe: headers on every response, forms accepted only from the
desk's own pages, a session cookie a script cannot read, and a brake on guessing links."""

from __future__ import annotations

import hmac
import threading
import time
from collections import deque
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "mailgate_session"
# No script but the desk's own files, no inline script or style, no framing by others.
# htmx fetches parts of pages from the desk itself (connect-src).
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # a page's address (a link's token) goes nowhere
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
# Failed link tokens from one client address: at most FAILED_LIMIT in FAILED_WINDOW seconds.
FAILED_LIMIT = 10
FAILED_WINDOW = 600.0


class SecurityHeaders:
    """Adds HEADERS to every response that does not set its own (the HTML mail's frame)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def from_our_page(request: Request, root: str) -> bool:
    """A POST a browser sent from one of our pages. Browsers say where a request comes from
    (Sec-Fetch-Site); one that does not is asked its Origin, which with no-referrer pages
    may be "null". A client that sends neither is no browser a forged page could drive (and
    signed-in forms also carry the session's form token)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("origin")
    return origin is None or origin.lower() == origin_of(root)


def form_token_matches(sent: str | None, expected: str) -> bool:
    return sent is not None and hmac.compare_digest(sent.encode(), expected.encode())


def cookie_options(root: str) -> dict[str, object]:
    """HttpOnly (no script reads it), SameSite=Lax (sent when a link in a mail is clicked,
    never with another site's form), Secure behind TLS."""
    return {
        "httponly": True,
        "samesite": "lax",
        "secure": root.startswith("https://"),
        "path": "/",
    }


class FailedTokens:
    """Link tokens that failed, by client address: too many in a while and the address is
    refused for a while, so that nobody can try tokens at speed."""

    def __init__(self, limit: int = FAILED_LIMIT, window: float = FAILED_WINDOW) -> None:
        self.limit, self.window = limit, window
        self._times: dict[str, deque[float]] = {}
        self._lock = threading.Lock()  # page handlers run in threads

    def blocked(self, client: str) -> bool:
        with self._lock:
            return len(self._recent(client)) >= self.limit

    def failed(self, client: str) -> None:
        with self._lock:
            self._recent(client)
            self._times.setdefault(client, deque()).append(time.monotonic())

    def _recent(self, client: str) -> deque[float]:
        """The client's failures within the window; a client with none is forgotten, so the
        table does not grow with every address seen."""
        times = self._times.get(client, deque())
        while times and times[0] <= time.monotonic() - self.window:
            times.popleft()
        if not times:
            self._times.pop(client, None)
        return times
