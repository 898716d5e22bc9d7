"""The device authorization grant (RFC 8628): a sign-in on another device, by URL and code."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mailgate.config import OAuthConfig
from mailgate.store.oauth import (
    OAuthError,
    ProviderUnavailable,
    Token,
    client_fields,
    endpoints,
    post_form,
    token_from,
)

DEFAULT_INTERVAL = 5.0  # RFC 8628 3.2: when the provider names none
SLOW_DOWN_STEP = 5.0  # RFC 8628 3.5: each slow_down adds this to the interval


class SignInDenied(OAuthError):
    """The person at the provider declined, or the provider refused this application."""


class SignInExpired(OAuthError):
    """The code ran out before anyone signed in with it."""


@dataclass(frozen=True)
class Grant:
    """What the person signing in needs, and what we poll with."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: float
    interval: float
    message: str  # Microsoft words the whole instruction; empty elsewhere


def start(account: OAuthConfig) -> Grant:
    """Ask the provider for a device code and a user code."""
    ends = endpoints(account)
    if not ends.device_authorization_url:
        raise OAuthError(
            f"oauth.{account.name}.device_authorization_url: required to sign in "
            f'(provider = "{account.provider}")'
        )
    fields = {"scope": " ".join(ends.scopes), **client_fields(account)}
    status, answer = post_form(ends.device_authorization_url, fields)
    if status != 200:
        said = f"oauth account {account.name}: the provider refused: {_said(answer)}"
        if account.provider == "google":
            # Google's device sign-in grants a short list of scopes, mail not among them.
            said += f"; sign in with `mailgate oauth login {account.name} --browser`"
        raise SignInDenied(said)
    # Google calls it verification_url; RFC 8628 verification_uri.
    uri = answer.get("verification_uri") or answer.get("verification_url")
    if not answer.get("device_code") or not answer.get("user_code") or not uri:
        raise ProviderUnavailable(
            f"oauth account {account.name}: the provider's answer lacks a device or user code"
        )
    return Grant(
        device_code=str(answer["device_code"]),
        user_code=str(answer["user_code"]),
        verification_uri=str(uri),
        verification_uri_complete=str(answer.get("verification_uri_complete", "")),
        expires_in=_number(answer.get("expires_in"), 900.0),
        interval=_number(answer.get("interval"), DEFAULT_INTERVAL),
        message=str(answer.get("message", "")),
    )


def wait_for_token(
    account: OAuthConfig,
    grant: Grant,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], float] = time.time,
) -> Token:
    """Poll the token endpoint until the person has signed in (the token), declined
    (SignInDenied) or the code expired (SignInExpired)."""
    ends = endpoints(account)
    fields = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": grant.device_code,
        **client_fields(account),
    }
    deadline = clock() + grant.expires_in
    interval = grant.interval
    while True:
        if clock() >= deadline:
            raise SignInExpired(_expired(account))
        sleep(interval)
        status, answer = post_form(ends.token_url, fields)
        if status == 200:
            token = token_from(account.name, answer, now())
            if not token.refresh_token:
                raise OAuthError(
                    f"oauth account {account.name}: signed in, but the provider gave no "
                    "refresh token (Microsoft needs the offline_access scope)"
                )
            return token
        error = answer.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += SLOW_DOWN_STEP
            continue
        if error == "expired_token":
            raise SignInExpired(_expired(account))
        if error in ("access_denied", "authorization_declined"):  # the latter: Microsoft's
            raise SignInDenied(f"oauth account {account.name}: the sign-in was declined")
        raise SignInDenied(f"oauth account {account.name}: sign-in refused: {_said(answer)}")


def _expired(account: OAuthConfig) -> str:
    return (
        f"oauth account {account.name}: the code expired before the sign-in was finished; "
        f"run `mailgate oauth login {account.name}` again"
    )


def _said(answer: dict[str, Any]) -> str:
    error = str(answer.get("error", "no error code"))
    detail = str(answer.get("error_description", "")).strip().splitlines()
    return f"{error} ({detail[0]})" if detail else error


def _number(value: Any, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except (TypeError, ValueError):
        return default
