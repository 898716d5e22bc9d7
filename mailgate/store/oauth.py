"""OAuth 2.0 tokens of the [[oauth]] accounts: kept in a token file, renewed before expiry."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import json
import logging
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from mailgate.config import Config, ConfigError, OAuthConfig, read_secret
from mailgate.store.disk import sync_directory

log = logging.getLogger("mailgate.oauth")
T = TypeVar("T")

HTTP_TIMEOUT = 30.0  # seconds for one request to the provider
# What a provider preset fills in; {tenant} is the account's tenant.
_MICROSOFT = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0"
PRESETS: dict[str, dict[str, Any]] = {
    "microsoft": {
        "token_url": _MICROSOFT + "/token",
        "device_authorization_url": _MICROSOFT + "/devicecode",
        "authorization_url": _MICROSOFT + "/authorize",
        # offline_access: without it Microsoft hands out no refresh token.
        "scopes": [
            "offline_access",
            "https://outlook.office.com/IMAP.AccessAsUser.All",
            "https://outlook.office.com/SMTP.Send",
        ],
    },
    "google": {
        "token_url": "https://oauth2.googleapis.com/token",
        "device_authorization_url": "https://oauth2.googleapis.com/device/code",
        "authorization_url": "https://accounts.google.com/o/oauth2/v2/auth",
        # Google hands out a refresh token only when asked for offline access.
        "authorization_params": {"access_type": "offline", "prompt": "consent"},
        "scopes": ["https://mail.google.com/"],
    },
    "generic": {
        "token_url": "",
        "device_authorization_url": "",
        "authorization_url": "",
        "scopes": [],
    },
}


class OAuthError(Exception):
    """Signing in with OAuth did not work; the message names the account."""


class LoginNeeded(OAuthError):
    """No usable refresh token: only an operator running `mailgate oauth login` helps."""


class ProviderUnavailable(OAuthError):
    """The provider could not be asked or answered with a failure of its own: try later."""


@dataclass(frozen=True)
class Endpoints:
    token_url: str
    device_authorization_url: str
    authorization_url: str
    scopes: list[str]
    authorization_params: dict[str, str]


def endpoints(account: OAuthConfig) -> Endpoints:
    """The account's URLs and scopes: what it sets, else its provider's."""
    preset = PRESETS[account.provider]

    def pick(key: str) -> str:
        value = getattr(account, key) or preset[key]
        return str(value).replace("{tenant}", urllib.parse.quote(account.tenant, safe=""))

    scopes = account.scopes or list(preset["scopes"])
    return Endpoints(
        token_url=pick("token_url"),
        device_authorization_url=pick("device_authorization_url"),
        authorization_url=pick("authorization_url"),
        scopes=scopes,
        authorization_params=dict(preset.get("authorization_params", {})),
    )


def account_named(cfg: Config, name: str) -> OAuthConfig:
    for account in cfg.oauth:
        if account.name == name:
            return account
    known = ", ".join(a.name for a in cfg.oauth) or "none"
    raise ConfigError(f"{cfg.source}: no [[oauth]] account named {name!r} (configured: {known})")


def token_path(cfg: Config, account: OAuthConfig) -> Path:
    return (
        Path(account.token_file)
        if account.token_file
        else cfg.data_dir / "oauth" / (f"{account.name}.json")
    )


def client_fields(account: OAuthConfig) -> dict[str, str]:
    """client_id, and the secret of a confidential client (read at each use: it may rotate)."""
    where = f"oauth.{account.name}.client_secret_file"
    secret = read_secret(account.client_secret, account.client_secret_file, where)
    return {"client_id": account.client_id, **({"client_secret": secret} if secret else {})}


def post_form(url: str, fields: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """POST a form to the provider; its status and JSON answer. ProviderUnavailable when
    it cannot be reached or answers no JSON."""
    body = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(url, body, {"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:  # 4xx/5xx: OAuth errors come as JSON with 400
        with exc:
            status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise ProviderUnavailable(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from None
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise ProviderUnavailable(f"{url} answered HTTP {status} without a JSON object")
    return status, answer


@dataclass(frozen=True)
class Token:
    """What the token file holds. expires_at: seconds since the epoch."""

    account: str
    access_token: str
    expires_at: float
    refresh_token: str
    scope: str = ""


def token_from(account: str, answer: dict[str, Any], now: float, old_refresh: str = "") -> Token:
    """The token in a provider's answer; a provider that rotates nothing keeps the old one."""
    access = answer.get("access_token")
    if not isinstance(access, str) or not access:
        raise ProviderUnavailable(f"oauth account {account}: the answer holds no access_token")
    lifetime = answer.get("expires_in", 3600)
    try:
        lifetime = float(lifetime)
    except (TypeError, ValueError):
        lifetime = 3600.0
    refresh = answer.get("refresh_token") or old_refresh
    return Token(account, access, now + lifetime, str(refresh), str(answer.get("scope", "")))


def read_token(path: Path) -> Token | None:
    """The saved token; None when there is none yet. A damaged file is an OAuthError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Token(**{k: data[k] for k in Token.__dataclass_fields__ if k in data})
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        raise OAuthError(f"{path}: not a token file mailgate can read ({exc})") from None


def save_token(path: Path, token: Token) -> None:
    """Write the token file atomically, readable by its owner only: a crash leaves the old
    file or the new one, never half of one (the old refresh token may be spent already)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(token), out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    sync_directory(path.parent)  # the rename itself survives a power cut


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Only one process (or thread) at a time reads, refreshes and writes this token: a
    rotated refresh token is spent once, by whoever holds the lock."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # lets go of the lock too


def login_hint(name: str) -> str:
    return f"run `mailgate oauth login {name}`"


class Tokens:
    """The access token of one account, renewed with the refresh token when it is within
    refresh_margin_seconds of expiring, or when a server has refused it."""

    def __init__(self, cfg: Config, name: str, clock: Callable[[], float] = time.time) -> None:
        self.account = account_named(cfg, name)
        self.path = token_path(cfg, self.account)
        self.clock = clock
        self.refused_refresh = ""  # logged once per refresh token the provider refuses

    @property
    def name(self) -> str:
        return self.account.name

    def access_token(self, refused: str | None = None) -> str:
        """A valid access token. `refused`: one a server has just turned down, renewed
        unless another process has renewed it meanwhile."""
        with locked(self.path):
            token = read_token(self.path)
            if token is None:
                raise LoginNeeded(
                    f"oauth account {self.name}: not signed in yet ({self.path} holds no "
                    f"token); {login_hint(self.name)}"
                )
            fresh = token.expires_at - self.account.refresh_margin_seconds > self.clock()
            if fresh and token.access_token != refused:
                return token.access_token
            renewed = self._refresh(token)
            save_token(self.path, renewed)
            log.info(
                "event=oauth_token_renewed account=%s valid_until=%s rotated=%s",
                self.name,
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(renewed.expires_at)),
                renewed.refresh_token != token.refresh_token,
            )
            return renewed.access_token

    def _refresh(self, token: Token) -> Token:
        try:
            return renew(self.account, token, self.clock())
        except RefreshRefused as exc:
            level = logging.DEBUG if self.refused_refresh == token.refresh_token else logging.ERROR
            self.refused_refresh = token.refresh_token
            log.log(level, "event=oauth_refresh_refused account=%s error=%r action=%r",
                    self.name, exc.said, f"mailgate oauth login {self.name}")  # fmt: skip
            raise


class RefreshRefused(LoginNeeded):
    """The provider refused the refresh token: revoked, expired, or a password change."""

    def __init__(self, message: str, said: str) -> None:
        super().__init__(message)
        self.said = said


def renew(account: OAuthConfig, token: Token, now: float) -> Token:
    """A new access token for the refresh token (RFC 6749 6), and the rotated refresh
    token where the provider rotates it."""
    name = account.name
    if not token.refresh_token:
        raise LoginNeeded(
            f"oauth account {name}: the saved token cannot be renewed (no refresh token); "
            f"{login_hint(name)}"
        )
    ends = endpoints(account)
    fields = {
        "grant_type": "refresh_token",
        "refresh_token": token.refresh_token,
        "scope": " ".join(ends.scopes),
        **client_fields(account),
    }
    status, answer = post_form(ends.token_url, fields)
    if status == 200:
        return token_from(name, answer, now, token.refresh_token)
    error = str(answer.get("error", f"HTTP {status}"))
    said = f"{error}: {answer.get('error_description', '')}".strip(": ")
    # Only a new sign-in helps these; anything else (a 5xx, throttling) may pass by itself.
    if error in ("invalid_grant", "invalid_client", "unauthorized_client", "invalid_scope"):
        message = (
            f"oauth account {name}: the provider refused the refresh token ({said}); "
            f"{login_hint(name)}"
        )
        raise RefreshRefused(message, said)
    raise ProviderUnavailable(f"oauth account {name}: renewing the token failed: {said}")


def signed_in(tokens: Tokens, sign_in: Callable[[str], T], refused: type[Exception]) -> T:
    """sign_in(access token); a token the server refuses (`refused` raised: revoked early,
    a password change) is renewed and tried once more."""
    token = tokens.access_token()
    try:
        return sign_in(token)
    except refused:
        return sign_in(tokens.access_token(refused=token))


async def signed_in_async(
    tokens: Tokens, sign_in: Callable[[str], Awaitable[T]], refused: type[Exception]
) -> T:
    """signed_in for a server spoken to from the event loop; renewing may block (the lock,
    a request to the provider), so it runs in a thread."""
    token = await asyncio.to_thread(tokens.access_token)
    try:
        return await sign_in(token)
    except refused:
        return await sign_in(await asyncio.to_thread(tokens.access_token, token))


def xoauth2(username: str, token: str) -> bytes:
    """The SASL XOAUTH2 initial response, base64-encoded, as IMAP and SMTP send it."""
    return base64.b64encode(f"user={username}\x01auth=Bearer {token}\x01\x01".encode())
