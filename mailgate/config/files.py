"""Where the configuration file is found, and what the paths and secrets in it mean: a path
written in the file is relative to the file's folder (not to wherever a command was started),
a `*_file` key may name a systemd credential, and secrets kept in files are read in."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailgate.config import Config

# Searched in this order when neither -c nor $MAILGATE_CONFIG names a file.
LOCAL_CONFIG = Path("mailgate.toml")
SYSTEM_CONFIG = Path("/etc/mailgate/mailgate.toml")

# The keys that hold a path, by table; [[imap]] is a list of such tables.
_PATH_KEYS: dict[str, tuple[str, ...]] = {
    "database": ("password_file",),
    "paths": ("data_dir", "templates"),
    "smtp": ("tls_cert_file", "tls_key_file", "lmtp_socket"),
    "outbound": ("directory", "password_file"),
    "security": ("secret_file",),
    "imap": ("password_file", "tls_ca_file"),
    "oauth": ("client_secret_file", "token_file"),
}
# Files mailgate writes: never a systemd credential, whose folder is read-only.
_WRITTEN = frozenset({"token_file"})
_SQLITE = "sqlite:///"


def searched() -> list[Path]:
    """The files looked for without -c or $MAILGATE_CONFIG, in order."""
    return [LOCAL_CONFIG, SYSTEM_CONFIG]


def find(path: str | os.PathLike[str] | None) -> Path | None:
    """The configuration file to read: `path` (-c), else $MAILGATE_CONFIG, else the first of
    searched() that exists; None: the embedded default."""
    chosen = path or os.environ.get("MAILGATE_CONFIG")
    if chosen:
        return Path(chosen)
    return next((candidate for candidate in searched() if candidate.exists()), None)


def anchored(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The TOML tables with every relative path written in them made relative to `folder`,
    and every `*_file` that names a systemd credential pointed at it."""
    out = dict(data)
    for table, keys in _PATH_KEYS.items():
        value = out.get(table)
        if isinstance(value, dict):
            out[table] = _anchor_table(value, keys, folder)
        elif isinstance(value, list):
            out[table] = [
                _anchor_table(t, keys, folder) if isinstance(t, dict) else t for t in value
            ]
    database = out.get("database")
    if isinstance(database, dict) and isinstance(database.get("url"), str):
        out["database"] = {**database, "url": _anchor_sqlite(database["url"], folder)}
    return out


def _anchor_table(table: dict[str, Any], keys: tuple[str, ...], folder: Path) -> dict[str, Any]:
    out = dict(table)
    for key in keys:
        value = out.get(key)
        if isinstance(value, str) and value:
            credential = key.endswith("_file") and key not in _WRITTEN
            out[key] = _anchor(value, folder, credential=credential)
    return out


def _anchor(value: str, folder: Path, credential: bool) -> str:
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    # A bare name (no slash) is a systemd credential when systemd passes some
    # (LoadCredential=NAME:PATH); run by hand, the same name is a file beside the configuration.
    if credential and credentials and "/" not in value:
        return str(Path(credentials) / value)
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else folder / path)


def _anchor_sqlite(url: str, folder: Path) -> str:
    """sqlite:///var/x.db is relative; sqlite:////srv/x.db (four slashes) is absolute."""
    if not url.startswith(_SQLITE):
        return url
    path = url[len(_SQLITE) :]
    if not path or path.startswith(("/", ":memory:", "file:")):
        return url
    return f"{_SQLITE}{folder / path}"


def with_secrets(cfg: Config, read: Callable[[str, str, str], str]) -> Config:
    """The configuration with the secrets kept in files read in: the database password into
    its URL, the relay's password. IMAP passwords are read at each login instead."""
    import dataclasses

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from mailgate.config import ConfigError

    database, outbound = cfg.database, cfg.outbound
    if database.password_file:
        password = read("", database.password_file, "database.password_file")
        try:
            url = make_url(database.url).set(password=password)
        except ArgumentError as exc:
            raise ConfigError(f"{cfg.source}: database.url: not a database URL ({exc})") from None
        database = dataclasses.replace(database, url=url.render_as_string(hide_password=False))
    if outbound.password_file:
        password = read("", outbound.password_file, "outbound.password_file")
        outbound = dataclasses.replace(outbound, password=password)
    return dataclasses.replace(cfg, database=database, outbound=outbound)
