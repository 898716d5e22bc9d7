"""Signing in to an IMAP or SMTP server with an OAuth access token (SASL XOAUTH2); a token
the server refuses is renewed once and tried again."""

from __future__ import annotations

import asyncio
import base64

import aiosmtplib
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from mailgate.oauth import Tokens


def imap_login(client: IMAPClient, username: str, tokens: Tokens) -> None:
    """XOAUTH2 login as `username` (the mailbox address). Raises LoginError when the
    renewed token is refused too, LoginNeeded when it cannot be renewed."""
    token = tokens.access_token()
    try:
        client.oauth2_login(username, token)
    except LoginError:
        # Revoked or expired early (a password change, an admin): a renewed one may do.
        client.oauth2_login(username, tokens.access_token(refused=token))


async def smtp_login(client: aiosmtplib.SMTP, username: str, tokens: Tokens) -> None:
    """AUTH XOAUTH2 on a connected client. Renewing may block (a file lock, a request to
    the provider): it runs in a thread, off the event loop."""
    token = await asyncio.to_thread(tokens.access_token)
    try:
        await _xoauth2(client, username, token)
    except aiosmtplib.SMTPAuthenticationError:
        token = await asyncio.to_thread(tokens.access_token, token)
        await _xoauth2(client, username, token)


async def _xoauth2(client: aiosmtplib.SMTP, username: str, token: str) -> None:
    # Sent by hand: aiosmtplib learnt XOAUTH2 only in later releases.
    if client.last_ehlo_response is None:
        await client.ehlo()
    if "xoauth2" not in client.esmtp_extensions.get("auth", "").lower().split():
        raise aiosmtplib.SMTPException("the relay does not offer AUTH XOAUTH2")
    initial = base64.b64encode(f"user={username}\x01auth=Bearer {token}\x01\x01".encode())
    response = await client.execute_command(b"AUTH", b"XOAUTH2", initial)
    if response.code == 334:
        # The server's error details come as a challenge; an empty line ends the exchange.
        response = await client.execute_command(b"")
    if response.code != 235:
        raise aiosmtplib.SMTPAuthenticationError(response.code, response.message)
