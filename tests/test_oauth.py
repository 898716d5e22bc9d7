"""OAuth 2.0 sign-in (XOAUTH2): `mailgate oauth login` by device code, a real Dovecot that
checks tokens at a local identity provider, a relay that takes AUTH XOAUTH2, and tokens
renewed, rotated and refused."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from mailgate.config import (
    Config,
    ConfigError,
    ImapConfig,
    OAuthConfig,
    OutboundConfig,
    load,
    parse_config,
)
from mailgate.outbound.transports import SmtpTransport, TemporaryFailure
from mailgate.store.models import Ticket
from mailgate.store.oauth import Token, Tokens, read_token, save_token
from tests.daemon_harness import REPO, SUPPORT, Sink, count, daemon_config, relay, running
from tests.dovecot import PLAIN_HOST, Dovecot
from tests.helpers import free_port, poll
from tests.mails import make_mail
from tests.oauth_provider import CLIENT_ID, Provider, provider, provider_server

__all__ = ["provider", "provider_server", "relay"]  # fixtures, used by name
# The XOAUTH2 relay takes AUTH without TLS, on loopback only.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

ACCOUNT = "m365"


@pytest.fixture(scope="module")
def oauth_dovecot(provider_server: Provider) -> Iterator[Dovecot]:
    """A Dovecot that takes XOAUTH2 and OAUTHBEARER, asking the provider about each token."""
    if shutil.which("dovecot") is None or os.geteuid() != 0:
        pytest.fail("needs dovecot, run as root (see tests/dovecot.py)")
    server = Dovecot(oauth_introspection_url=f"{provider_server.url}/introspect")
    try:
        server.start()
        yield server
    finally:
        server.stop()


class OAuthRelay(Sink):
    """A relay that takes mail only after AUTH XOAUTH2 with a token the provider issued to
    the user signing in."""

    def __init__(self, provider: Provider) -> None:
        super().__init__()
        self.provider = provider
        self.auths: list[tuple[str, bool]] = []  # user, accepted

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> AuthResult:
        fields = base64.b64decode(args[1]).decode().split("\x01")
        user = fields[0].removeprefix("user=")
        token = fields[1].removeprefix("auth=Bearer ")
        ok = self.provider.user_of(token) == user
        self.auths.append((user, ok))
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def oauth_relay(provider: Provider) -> Iterator[tuple[OAuthRelay, int]]:
    relay, port = OAuthRelay(provider), free_port()
    controller = Controller(
        relay,
        hostname="127.0.0.1",
        port=port,
        auth_required=True,
        auth_require_tls=False,  # on loopback, for the test only
        auth_exclude_mechanism=["LOGIN", "PLAIN"],
        ready_timeout=5.0,
    )
    controller.start()
    try:
        yield relay, port
    finally:
        controller.stop()


def account(provider: Provider, tmp_path: Path) -> OAuthConfig:
    return OAuthConfig(
        name=ACCOUNT,
        provider="generic",
        client_id=CLIENT_ID,
        token_url=f"{provider.url}/token",
        device_authorization_url=f"{provider.url}/devicecode",
        token_file=str(tmp_path / "tokens" / f"{ACCOUNT}.json"),
    )


def seed(path: Path, access: str, refresh: str, expires_in: float) -> None:
    """A token file as an earlier sign-in left it."""
    save_token(path, Token(ACCOUNT, access, time.time() + expires_in, refresh))


def saved(config: Config) -> Token:
    token = read_token(Path(config.oauth[0].token_file))
    assert token is not None
    return token


# `mailgate oauth login` and `status`, as an operator runs them ----------------------------


def write_config(tmp_path: Path, provider: Provider, extra: str = "") -> Path:
    path = tmp_path / "mailgate.toml"
    path.write_text(
        f'[paths]\ndata_dir = "data"\n'
        f'[[oauth]]\nname = "{ACCOUNT}"\nprovider = "generic"\nclient_id = "{CLIENT_ID}"\n'
        f'token_url = "{provider.url}/token"\n'
        f'device_authorization_url = "{provider.url}/devicecode"\n'
        f'authorization_url = "{provider.url}/authorize"\n'
        'token_file = "tokens/m365.json"\n' + extra,
        encoding="utf-8",
    )
    return path


def mailgate(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "mailgate", "-c", str(config), *args]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=60, env=env)


def test_login_shows_url_and_code_waits_for_the_sign_in_and_saves_the_token(
    tmp_path: Path, provider: Provider
) -> None:
    provider.device_user = "support@example.com"
    config = write_config(tmp_path, provider)

    done = mailgate(config, "oauth", "login", ACCOUNT)

    assert done.returncode == 0, done.stderr
    assert f"open {provider.url}/device" in done.stdout
    assert re.search(r"enter the code \d{8}", done.stdout)
    token_file = tmp_path / "tokens" / "m365.json"  # relative to the configuration's folder
    assert f"signed in: account {ACCOUNT}, token saved to {token_file}" in done.stdout
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = json.loads(token_file.read_text())
    assert provider.refresh[token["refresh_token"]] == "support@example.com"
    assert provider.grants("urn:ietf:params:oauth:grant-type:device_code") == 3  # 2 pending

    status = mailgate(config, "oauth", "status")
    assert status.returncode == 0
    assert f"{ACCOUNT} (generic, used by nothing): signed in; access token valid until" in (
        status.stdout
    )
    rows = json.loads(mailgate(config, "oauth", "status", "--format", "json").stdout)
    assert rows[0]["signed_in"] and rows[0]["renewable"]
    for said in (done.stdout, done.stderr, status.stdout, json.dumps(rows)):
        assert token["access_token"] not in said and token["refresh_token"] not in said


@pytest.mark.parametrize(
    ("outcome", "status", "message"),
    [
        ("deny", 77, f"mailgate: oauth account {ACCOUNT}: the sign-in was declined\n"),
        (
            "expire",
            75,
            f"mailgate: oauth account {ACCOUNT}: the code expired before the sign-in was "
            f"finished; run `mailgate oauth login {ACCOUNT}` again\n",
        ),
    ],
)
def test_a_declined_or_expired_sign_in_says_so_and_saves_nothing(
    tmp_path: Path, provider: Provider, outcome: str, status: int, message: str
) -> None:
    provider.device_outcome = outcome
    config = write_config(tmp_path, provider)

    done = mailgate(config, "oauth", "login", ACCOUNT)

    assert (done.returncode, done.stderr) == (status, message)
    assert not (tmp_path / "tokens" / "m365.json").exists()
    said = mailgate(config, "oauth", "status").stdout
    assert f"not signed in: run `mailgate oauth login {ACCOUNT}`" in said


def test_gmail_device_sign_in_is_refused_by_google_and_the_message_says_what_works(
    tmp_path: Path, provider: Provider
) -> None:
    config = write_config(tmp_path, provider)
    config.write_text(config.read_text().replace('"generic"', '"google"'))

    done = mailgate(config, "oauth", "login", ACCOUNT)

    assert (done.returncode, done.stderr) == (
        77,
        f"mailgate: oauth account {ACCOUNT}: the provider refused: invalid_scope (Invalid "
        f"scope); sign in with `mailgate oauth login {ACCOUNT} --browser`\n",
    )


def test_a_provider_that_cannot_be_reached_is_named(tmp_path: Path) -> None:
    gone = Provider(port=free_port())  # nothing listens there
    config = write_config(tmp_path, gone)

    done = mailgate(config, "oauth", "login", ACCOUNT)

    assert done.returncode == 69
    assert done.stderr.startswith(f"mailgate: cannot reach {gone.url}/devicecode: ")


def test_unknown_account_names_are_refused_with_the_key_and_file(
    tmp_path: Path, provider: Provider
) -> None:
    config = write_config(tmp_path, provider)
    done = mailgate(config, "oauth", "login", "gmail")
    assert done.returncode == 78
    assert f"no [[oauth]] account named 'gmail' (configured: {ACCOUNT})" in done.stderr

    config = write_config(tmp_path, provider, '[[imap]]\nname = "support"\noauth = "gmail"\n')
    done = mailgate(config, "oauth", "status")
    assert (done.returncode, done.stderr) == (
        78,
        f"mailgate: configuration error: {config}: imap.support.oauth: 'gmail' is no "
        f"[[oauth]] account name ({ACCOUNT})\n",
    )


def test_browser_sign_in_takes_the_pasted_address_and_saves_the_token(
    tmp_path: Path, provider: Provider
) -> None:
    provider.device_user = "support@example.com"
    config = write_config(tmp_path, provider)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "mailgate", "-c", str(config)]
    login = subprocess.Popen(
        [*command, "oauth", "login", ACCOUNT, "--browser"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert login.stdout is not None
    while not (line := login.stdout.readline()).startswith(provider.url):
        assert line, login.communicate()[1]
    # The operator's browser, elsewhere: it signs in and ends at an address on localhost.
    no_redirects = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as answer:
        no_redirects.open(line.strip(), timeout=10)
    ended_at = answer.value.headers["Location"]
    answer.value.close()
    assert ended_at.startswith("http://localhost/?code=")

    out, err = login.communicate(ended_at + "\n", timeout=60)

    assert login.returncode == 0, err
    assert f"signed in: account {ACCOUNT}" in out
    token = json.loads((tmp_path / "tokens" / "m365.json").read_text())
    assert provider.refresh[token["refresh_token"]] == "support@example.com"
    asked = provider.requests[0][1]
    assert asked["code_challenge_method"] == "S256" and asked["client_id"] == CLIENT_ID


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


def test_a_refresh_token_obtained_elsewhere_is_checked_then_saved(
    tmp_path: Path, provider: Provider
) -> None:
    config = write_config(tmp_path, provider)
    _, refresh = provider.issue("support@example.com")

    done = mailgate(config, "oauth", "login", ACCOUNT, "--refresh-token-file", "-", stdin=refresh)

    assert done.returncode == 0, done.stderr
    token = json.loads((tmp_path / "tokens" / "m365.json").read_text())
    assert provider.user_of(token["access_token"]) == "support@example.com"
    assert provider.refresh[token["refresh_token"]] == "support@example.com"  # the rotated one

    (tmp_path / "tokens" / "m365.json").unlink()
    done = mailgate(config, "oauth", "login", ACCOUNT, "--refresh-token-file", "-", stdin="bad")
    assert done.returncode == 77
    assert "the provider refused the refresh token (invalid_grant: AADSTS70000)" in done.stderr
    assert not (tmp_path / "tokens" / "m365.json").exists()


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ('name = "a"\n', "oauth.a.client_id: required (the application's ID)"),
        ('client_id = "x"\n', "oauth[0].name: every [[oauth]] account needs a name of its own"),
        (
            'name = "a"\nclient_id = "x"\nprovider = "generic"\n',
            'oauth.a.token_url: required for provider = "generic"',
        ),
        ('name = "a"\nclient_id = "x"\nprovider = "yahoo"\n', "oauth[0].provider: 'yahoo' is"),
        (
            'name = "a"\nclient_id = "x"\n[outbound]\noauth = "a"\n',
            "outbound.username: required with oauth (the mailbox address)",
        ),
    ],
)
def test_oauth_accounts_are_checked_when_the_configuration_is_read(table: str, error: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"f.toml: {error}")):
        parse_config(f"[[oauth]]\n{table}", "f.toml")


def test_client_secret_may_be_a_systemd_credential_but_the_token_file_is_never_one(
    tmp_path: Path, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "m365-secret").write_text("s3cret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    path = write_config(tmp_path, provider, 'client_secret_file = "m365-secret"\n')
    path.write_text(path.read_text().replace("tokens/m365.json", "m365.json"))
    cfg = load(path)
    assert cfg.oauth[0].token_file == str(tmp_path / "m365.json")  # mailgate writes it
    _, refresh = provider.issue(SUPPORT)
    seed(Path(cfg.oauth[0].token_file), "at-old", refresh, expires_in=-1)

    Tokens(cfg, ACCOUNT).access_token()

    assert provider.requests[-1][1]["client_secret"] == "s3cret"


# The daemon: IMAP intake and outbound relay signed in by token ---------------------------


def oauth_daemon(
    tmp_path: Path, provider: Provider, user: str, port: int, relay_port: int | None
) -> Config:
    outbound = None
    if relay_port is not None:
        outbound = OutboundConfig(
            transport="smtp",
            host="127.0.0.1",
            port=relay_port,
            username=user,  # the mailbox address signs in, as with a password
            oauth=ACCOUNT,
            from_=f"Support <{SUPPORT}>",
        )
    mailbox = ImapConfig(
        name="support",
        host=PLAIN_HOST,
        port=port,
        security="none",
        username=user,
        oauth=ACCOUNT,
        poll_interval=3600.0,
    )
    base = daemon_config(tmp_path, outbound=outbound)
    return dataclasses.replace(base, imap=[mailbox], oauth=[account(provider, tmp_path)])


def test_daemon_reads_the_mailbox_and_sends_the_answer_signed_in_by_token(
    tmp_path: Path, provider: Provider, oauth_dovecot: Dovecot, oauth_relay: tuple[OAuthRelay, int]
) -> None:
    relay, relay_port = oauth_relay
    user = oauth_dovecot.add_user()
    config = oauth_daemon(tmp_path, provider, user.name, oauth_dovecot.port, relay_port)
    _, refresh = provider.issue(user.name)
    # Within its lifetime by the file, but revoked at the provider: Dovecot refuses it.
    seed(Path(config.oauth[0].token_file), "at-revoked", refresh, expires_in=3600)
    user.append(make_mail(subject="Printer broken"))

    with running(config) as daemon:
        answers = poll(lambda: relay.to("alice@acme.example"), timeout=30, what="the answer")
        assert count(daemon.ctx, Ticket) == 1

    assert "[CID-1000] Printer broken" in str(answers[0].message["Subject"])
    assert relay.auths == [(user.name, True)]
    assert user.folder("INBOX") == {}
    assert len(user.folder("Processed")) == 1
    # Renewed once, after Dovecot refused the revoked token; the rotated one was saved.
    assert provider.grants("refresh_token") == 1
    token = saved(config)
    assert token.refresh_token != refresh and refresh not in provider.refresh
    assert provider.refresh[token.refresh_token] == user.name


def test_revoked_refresh_token_is_logged_with_the_command_and_polling_goes_on(
    tmp_path: Path,
    provider: Provider,
    oauth_dovecot: Dovecot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    user = oauth_dovecot.add_user()
    config = oauth_daemon(tmp_path, provider, user.name, oauth_dovecot.port, None)
    token_file = Path(config.oauth[0].token_file)
    seed(token_file, "at-old", "rt-revoked", expires_in=-60)
    user.append(make_mail(subject="Waiting for sign-in"))

    with running(config) as daemon:
        poll(lambda: "event=imap_connection_failing" in caplog.text, what="the refusal")
        refused = [r for r in caplog.records if "oauth_refresh_refused" in r.getMessage()]
        assert refused[0].levelno == logging.ERROR
        assert "action='mailgate oauth login m365'" in refused[0].getMessage()
        failing = [
            m
            for m in map(logging.LogRecord.getMessage, caplog.records)
            if "imap_connection_failing" in m
        ]
        assert "run `mailgate oauth login m365`" in failing[0]
        assert count(daemon.ctx, Ticket) == 0
        # The operator signs in again; the poller, still retrying, picks the mail up.
        access, refresh = provider.issue(user.name)
        seed(token_file, access, refresh, expires_in=3600)
        poll(lambda: count(daemon.ctx, Ticket) == 1, timeout=30, what="the ticket")
    assert len(refused) == 1 or all(r.levelno < logging.ERROR for r in refused[1:])


# Renewal, rotation and racing processes ---------------------------------------------------


def test_expired_access_token_is_renewed_before_use_and_the_rotation_saved(
    tmp_path: Path, provider: Provider, oauth_relay: tuple[OAuthRelay, int]
) -> None:
    relay, port = oauth_relay
    config = dataclasses.replace(Config(), oauth=[account(provider, tmp_path)])
    token_file = Path(config.oauth[0].token_file)
    access, refresh = provider.issue(SUPPORT)
    seed(token_file, access, refresh, expires_in=60)  # inside the 5 minute margin
    transport = SmtpTransport("127.0.0.1", port, username=SUPPORT, oauth=Tokens(config, ACCOUNT))

    async def send() -> None:
        raw = make_mail(sender=f"Support <{SUPPORT}>", to="bob@example.org")
        await transport.send(SUPPORT, ["bob@example.org"], raw, "t")
        await transport.close()

    asyncio.run(send())

    assert len(relay.to("bob@example.org")) == 1
    assert relay.auths == [(SUPPORT, True)]  # no refused try first
    token = saved(config)
    assert token.access_token != access and token.refresh_token != refresh
    assert token.expires_at > time.time() + 3000
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600


def test_an_access_token_the_relay_refuses_is_renewed_once_and_tried_again(
    tmp_path: Path, provider: Provider, oauth_relay: tuple[OAuthRelay, int]
) -> None:
    relay, port = oauth_relay
    config = dataclasses.replace(Config(), oauth=[account(provider, tmp_path)])
    _, refresh = provider.issue(SUPPORT)
    seed(Path(config.oauth[0].token_file), "at-revoked", refresh, expires_in=3600)
    transport = SmtpTransport("127.0.0.1", port, username=SUPPORT, oauth=Tokens(config, ACCOUNT))

    async def send() -> None:
        await transport.send(SUPPORT, ["bob@example.org"], make_mail(), "t")
        await transport.close()

    asyncio.run(send())

    assert relay.auths == [(SUPPORT, False), (SUPPORT, True)]
    assert len(relay.to("bob@example.org")) == 1
    assert provider.grants("refresh_token") == 1


def test_relay_sign_in_with_a_revoked_refresh_token_fails_temporarily_naming_the_command(
    tmp_path: Path, provider: Provider, oauth_relay: tuple[OAuthRelay, int]
) -> None:
    _, port = oauth_relay
    config = dataclasses.replace(Config(), oauth=[account(provider, tmp_path)])
    seed(Path(config.oauth[0].token_file), "at-old", "rt-revoked", expires_in=-1)
    transport = SmtpTransport("127.0.0.1", port, username=SUPPORT, oauth=Tokens(config, ACCOUNT))

    with pytest.raises(TemporaryFailure) as failure:
        asyncio.run(transport.send(SUPPORT, ["bob@example.org"], make_mail(), "t"))

    assert "the provider refused the refresh token (invalid_grant: AADSTS70000)" in str(
        failure.value
    )
    assert "run `mailgate oauth login m365`" in str(failure.value)


def test_a_relay_without_xoauth2_is_named_as_the_trouble(
    tmp_path: Path, provider: Provider, relay: tuple[Sink, int]
) -> None:
    _, port = relay
    config = dataclasses.replace(Config(), oauth=[account(provider, tmp_path)])
    access, refresh = provider.issue(SUPPORT)
    seed(Path(config.oauth[0].token_file), access, refresh, expires_in=3600)
    transport = SmtpTransport("127.0.0.1", port, username=SUPPORT, oauth=Tokens(config, ACCOUNT))

    with pytest.raises(TemporaryFailure, match="the relay does not offer AUTH XOAUTH2"):
        asyncio.run(transport.send(SUPPORT, ["bob@example.org"], make_mail(), "t"))


def test_processes_renewing_at_once_spend_the_refresh_token_once(
    tmp_path: Path, provider: Provider
) -> None:
    config = dataclasses.replace(Config(), oauth=[account(provider, tmp_path)])
    _, refresh = provider.issue(SUPPORT)
    seed(Path(config.oauth[0].token_file), "at-old", refresh, expires_in=-1)
    got: list[str] = []
    start = threading.Barrier(4)

    def renew() -> None:
        start.wait()
        got.append(Tokens(config, ACCOUNT).access_token())  # a Tokens each, as processes

    threads = [threading.Thread(target=renew) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert provider.grants("refresh_token") == 1
    assert len(got) == 4 and len(set(got)) == 1 and provider.user_of(got[0]) == SUPPORT
