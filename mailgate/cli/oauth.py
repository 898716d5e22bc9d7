"""`mailgate oauth`: sign an [[oauth]] account in by device code, and show what is signed in."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, TextIO

import click

from mailgate.cli.exits import EX_NOPERM, EX_OK, EX_TEMPFAIL, EX_UNAVAILABLE

if TYPE_CHECKING:
    from mailgate.cli.shared import State
    from mailgate.config import Config, OAuthConfig
    from mailgate.store.oauth import Token


def _state() -> State:
    state: State = click.get_current_context().find_root().obj
    return state


@click.group("oauth")
def oauth_group() -> None:
    """OAuth 2.0 sign-in (XOAUTH2) for [[imap]] mailboxes and the [outbound] relay."""


@oauth_group.command("login")
@click.argument("name")
@click.option(
    "--refresh-token-file",
    "refresh_file",
    type=click.File("r"),
    default=None,
    help="take a refresh token obtained elsewhere from this file ('-': standard input) "
    "instead of signing in by device code",
)
@click.option(
    "--browser",
    is_flag=True,
    help="sign in in a browser and paste back the address it ends at (Gmail needs this)",
)
def oauth_login(name: str, refresh_file: TextIO | None, browser: bool) -> int:
    """Sign account NAME in: open the URL shown, enter the code, and the token is saved."""
    from mailgate.service import oauth_device
    from mailgate.store import oauth

    cfg = _state().config
    account = oauth.account_named(cfg, name)
    path = oauth.token_path(cfg, account)
    try:
        if refresh_file is not None:
            given = oauth.Token(name, "", 0.0, refresh_file.read().strip())
            token = oauth.renew(account, given, time.time())  # proves it works before saving
        elif browser:
            token = _browser_sign_in(account)
        else:
            token = _device_sign_in(account)
        with oauth.locked(path):
            oauth.save_token(path, token)
    except oauth_device.SignInDenied as exc:
        return _failed(exc, EX_NOPERM)
    except oauth_device.SignInExpired as exc:
        return _failed(exc, EX_TEMPFAIL)
    except oauth.ProviderUnavailable as exc:
        return _failed(exc, EX_UNAVAILABLE)
    except oauth.OAuthError as exc:
        return _failed(exc, EX_NOPERM)
    click.echo(f"signed in: account {name}, token saved to {path}")
    click.echo(f"access token valid until {_when(token.expires_at)}; renewed automatically")
    return EX_OK


def _browser_sign_in(account: OAuthConfig) -> Token:
    from mailgate.service import oauth_browser

    request = oauth_browser.start(account)
    click.echo(f"To sign in account {account.name}, open this address in a browser:")
    click.echo(request.url)
    click.echo("Sign in as the mailbox's user. The browser then goes to a page on localhost")
    click.echo("that does not load: copy that page's address from the address bar.")
    click.echo("Address: ", nl=False)
    pasted = click.get_text_stream("stdin").readline()
    return oauth_browser.finish(account, request, pasted, time.time())


def _device_sign_in(account: OAuthConfig) -> Token:
    from mailgate.service import oauth_device

    grant = oauth_device.start(account)
    click.echo(f"To sign in account {account.name}, open {grant.verification_uri}")
    click.echo(f"and enter the code {grant.user_code}")
    if grant.verification_uri_complete:
        click.echo(f"(or open {grant.verification_uri_complete}, which carries the code)")
    minutes = max(round(grant.expires_in / 60), 1)
    click.echo(f"Sign in as the mailbox's user. Waiting up to {minutes} min …")
    return oauth_device.wait_for_token(account, grant)


@oauth_group.command("status")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for people, json for scripts",
)
def oauth_status(fmt: str) -> int:
    """Each account: whether it is signed in and until when its access token is valid.
    Never shows a token."""
    from mailgate.cli.shared import print_json

    rows = [_status(_state().config, account.name) for account in _state().config.oauth]
    if fmt == "json":
        print_json(rows)
        return EX_OK
    if not rows:
        click.echo("no [[oauth]] accounts are configured")
    for row in rows:
        used = ", ".join(row["used_by"]) or "nothing"
        click.echo(f"{row['name']} ({row['provider']}, used by {used}): {row['state']}")
        click.echo(f"  token file {row['token_file']}")
    return EX_OK


def _status(cfg: Config, name: str) -> dict[str, Any]:
    from mailgate.store import oauth

    account = oauth.account_named(cfg, name)
    path = oauth.token_path(cfg, account)
    used_by = [f"imap.{box.name}" for box in cfg.imap if box.oauth == name]
    if cfg.outbound.oauth == name:
        used_by.append("outbound")
    row: dict[str, Any] = {
        "name": name,
        "provider": account.provider,
        "token_file": str(path),
        "used_by": used_by,
        "signed_in": False,
        "access_valid_until": None,
        "renewable": False,
    }
    try:
        token = oauth.read_token(path)
    except oauth.OAuthError as exc:
        return {**row, "state": f"unreadable token file: {exc}"}
    if token is None:
        return {**row, "state": f"not signed in: run `mailgate oauth login {name}`"}
    valid = token.expires_at > time.time()
    row.update(
        signed_in=True,
        access_valid_until=_when(token.expires_at),
        renewable=bool(token.refresh_token),
    )
    if not token.refresh_token:
        return {**row, "state": f"cannot renew: run `mailgate oauth login {name}`"}
    if valid:
        return {**row, "state": f"signed in; access token valid until {_when(token.expires_at)}"}
    said = f"access token expired at {_when(token.expires_at)}, renewed at its next use"
    return {**row, "state": f"signed in; {said}"}


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _failed(exc: Exception, status: int) -> int:
    click.echo(f"mailgate: {exc}", err=True)
    return status
