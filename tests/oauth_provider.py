"""A local OAuth 2.0 identity provider standing in for Microsoft's and Google's: device
authorization (RFC 8628), browser sign-in (RFC 6749 4.1 with PKCE), token (refresh tokens
rotated on use) and introspection (RFC 7662) endpoints, over plain HTTP on loopback."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CLIENT_ID = "mailgate-test-client"
GMAIL_SCOPE = "https://mail.google.com/"


@dataclass
class Device:
    user: str
    outcome: str  # "approve" | "deny" | "expire"
    polls_left: int  # authorization_pending answers before the outcome


@dataclass
class Provider:
    """The provider's state; tests set how it behaves and look at what it saw."""

    port: int = 0
    access_lifetime: int = 3600
    polls_before_outcome: int = 2
    device_outcome: str = "approve"
    device_user: str = ""
    access: dict[str, tuple[str, float]] = field(default_factory=dict)  # token: user, expiry
    refresh: dict[str, str] = field(default_factory=dict)  # live refresh token: user
    devices: dict[str, Device] = field(default_factory=dict)
    codes: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self.lock:
            self.access.clear()
            self.refresh.clear()
            self.devices.clear()
            self.codes.clear()
            self.requests.clear()
        self.access_lifetime, self.polls_before_outcome = 3600, 2
        self.device_outcome, self.device_user = "approve", ""

    def issue(self, user: str) -> tuple[str, str]:
        """A fresh access and refresh token for `user`, as a sign-in would give."""
        with self.lock:
            return self._issue(user)

    def _issue(self, user: str) -> tuple[str, str]:
        access, refresh = f"at-{secrets.token_hex(12)}", f"rt-{secrets.token_hex(12)}"
        self.access[access] = (user, time.time() + self.access_lifetime)
        self.refresh[refresh] = user
        return access, refresh

    def revoke(self, refresh: str) -> None:
        with self.lock:
            self.refresh.pop(refresh, None)

    def user_of(self, access: str) -> str | None:
        """Whose token this is, while it is valid."""
        with self.lock:
            user, expiry = self.access.get(access, ("", 0.0))
        return user if expiry > time.time() else None

    def grants(self, kind: str) -> int:
        with self.lock:
            return sum(1 for path, form in self.requests if form.get("grant_type") == kind)

    # Endpoints -----------------------------------------------------------------------------

    def answer(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append((path, form))
            if path == "/introspect":
                user, expiry = self.access.get(form.get("token", ""), ("", 0.0))
                if expiry > time.time():
                    return 200, {"active": True, "username": user}
                return 200, {"active": False}
            if form.get("client_id") != CLIENT_ID:
                return 400, {"error": "invalid_client"}
            if path == "/devicecode" and form.get("scope") == GMAIL_SCOPE:
                # As Google's: its device sign-in grants a short list of scopes, not mail.
                return 400, {"error": "invalid_scope", "error_description": "Invalid scope"}
            if path == "/devicecode":
                return self._device_code()
            if path == "/token" and form.get("grant_type") == DEVICE_GRANT:
                return self._device_token(form.get("device_code", ""))
            if path == "/token" and form.get("grant_type") == "authorization_code":
                return self._code_token(form)
            if path == "/token" and form.get("grant_type") == "refresh_token":
                user = self.refresh.pop(form.get("refresh_token", ""), None)  # spent: rotated
                if user is None:
                    return 400, {"error": "invalid_grant", "error_description": "AADSTS70000"}
                return 200, self._tokens(user)
            return 404, {"error": "not_found"}

    def authorize(self, query: dict[str, str]) -> str:
        """The address the browser is sent on to once the user has answered: the redirect
        URI with a code, or with an error when the user declines."""
        with self.lock:
            self.requests.append(("/authorize", query))
            if self.device_outcome == "deny":
                answer = {"error": "access_denied", "state": query["state"]}
            else:
                code = secrets.token_hex(8)
                self.codes[code] = (self.device_user, query)
                answer = {"code": code, "state": query["state"]}
        return f"{query['redirect_uri']}/?{urllib.parse.urlencode(answer)}"

    def _code_token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        user, asked = self.codes.pop(form.get("code", ""), ("", {}))
        verifier = form.get("code_verifier", "").encode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        if not user or asked["redirect_uri"] != form.get("redirect_uri"):
            return 400, {"error": "invalid_grant"}
        if asked["code_challenge"] != challenge.decode():  # RFC 7636 4.6
            return 400, {"error": "invalid_grant", "error_description": "PKCE mismatch"}
        return 200, self._tokens(user)

    def _device_code(self) -> tuple[int, dict[str, Any]]:
        code = secrets.token_hex(8)
        outcome, polls = self.device_outcome, self.polls_before_outcome
        self.devices[code] = Device(self.device_user, outcome, polls)
        user_code = f"{secrets.randbelow(10**8):08d}"
        return 200, {
            "device_code": code,
            "user_code": user_code,
            "verification_uri": f"{self.url}/device",
            "expires_in": 600,
            "interval": 0.2,
        }

    def _device_token(self, code: str) -> tuple[int, dict[str, Any]]:
        device = self.devices.get(code)
        if device is None:
            return 400, {"error": "invalid_grant"}
        if device.polls_left > 0:
            device.polls_left -= 1
            return 400, {"error": "authorization_pending"}
        if device.outcome == "deny":
            return 400, {"error": "access_denied", "error_description": "the user declined"}
        if device.outcome == "expire":
            return 400, {"error": "expired_token"}
        del self.devices[code]
        return 200, self._tokens(device.user)

    def _tokens(self, user: str) -> dict[str, Any]:
        access, refresh = self._issue(user)
        return {
            "token_type": "Bearer",
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": self.access_lifetime,
            "scope": "mail",
        }


class _Handler(BaseHTTPRequestHandler):
    provider: Provider

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        status, answer = self.provider.answer(self.path, form)
        body = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/authorize":
            self.send_error(404)
            return
        location = self.provider.authorize(dict(urllib.parse.parse_qsl(url.query)))
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_provider() -> Iterator[Provider]:
    provider = Provider()
    handler = type("Handler", (_Handler,), {"provider": provider})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    provider.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="oauth-provider", daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def provider_server() -> Iterator[Provider]:
    yield from serve_provider()


@pytest.fixture
def provider(provider_server: Provider) -> Provider:
    provider_server.reset()
    return provider_server
