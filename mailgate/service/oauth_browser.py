"""Sign-in in a browser (authorization code with PKCE, RFC 6749 4.1 and RFC 7636) for a
machine without one: the operator opens the address anywhere and pastes back the address
the browser ends up at, which carries the code."""

from __future__ import annotations

import base64
import hashlib
import secrets
import urllib.parse
from dataclasses import dataclass

from mailgate.config import OAuthConfig
from mailgate.service.oauth_device import SignInDenied
from mailgate.store.oauth import OAuthError, Token, client_fields, endpoints, post_form, token_from

# Registered with the provider as the application's redirect address ("Mobile and desktop
# applications" at Microsoft, a "Desktop app" client at Google). Nothing needs to listen
# there: the browser shows an error page, and its address bar holds the code.
REDIRECT_URI = "http://localhost"


@dataclass(frozen=True)
class Request:
    """One sign-in: the address to open, and what proves the answer belongs to it."""

    url: str
    state: str
    verifier: str


def start(account: OAuthConfig) -> Request:
    ends = endpoints(account)
    if not ends.authorization_url:
        raise OAuthError(
            f"oauth.{account.name}.authorization_url: required to sign in with --browser "
            f'(provider = "{account.provider}")'
        )
    verifier = secrets.token_urlsafe(64)  # RFC 7636 4.1: 43 to 128 characters
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    state = secrets.token_urlsafe(16)
    query = {
        "client_id": account.client_id,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": " ".join(ends.scopes),
        "state": state,
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        **ends.authorization_params,
    }
    separator = "&" if "?" in ends.authorization_url else "?"
    url = ends.authorization_url + separator + urllib.parse.urlencode(query)
    return Request(url, state, verifier)


def finish(account: OAuthConfig, request: Request, pasted: str, now: float) -> Token:
    """The token for the code in the address the browser was sent to."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(pasted.strip()).query)
    name = account.name
    if "error" in query:
        detail = query.get("error_description", query["error"])[0]
        raise SignInDenied(f"oauth account {name}: sign-in refused: {detail}")
    if query.get("state") != [request.state] or not query.get("code"):
        raise OAuthError(
            f"oauth account {name}: that is not the address this sign-in ended at (it "
            "should begin with http://localhost and carry code= and state=)"
        )
    fields = {
        "grant_type": "authorization_code",
        "code": query["code"][0],
        "redirect_uri": REDIRECT_URI,
        "code_verifier": request.verifier,
        **client_fields(account),
    }
    status, answer = post_form(endpoints(account).token_url, fields)
    if status != 200:
        said = answer.get("error_description") or answer.get("error") or f"HTTP {status}"
        raise SignInDenied(f"oauth account {name}: the code was refused: {said}")
    token = token_from(name, answer, now)
    if not token.refresh_token:
        raise OAuthError(f"oauth account {name}: signed in, but the provider gave no refresh token")
    return token
