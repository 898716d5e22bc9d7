"""Typed settings from a TOML file; every error names the dotted key and the file.

The bottom of the house: every package may import it, it imports nothing of mailgate's.
`sections` holds the typed sections, `checks` what types cannot say, `files` where the file
is found and how secrets in files are read; this module reads a file into a Config."""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from pathlib import Path
from typing import Any, Literal

from mailgate.config import files as config_files
from mailgate.config.checks import WEEKDAYS, parse_duration, validate
from mailgate.config.sections import (
    EMBEDDED,
    Config,
    ConfigError,
    CustomersConfig,
    DatabaseConfig,
    DigestConfig,
    HttpConfig,
    ImapConfig,
    LoggingConfig,
    LoopsConfig,
    OAuthConfig,
    OutboundConfig,
    PathsConfig,
    ProcessingConfig,
    RemindersConfig,
    RetentionConfig,
    SecurityConfig,
    SlaConfig,
    SmtpConfig,
    StaffConfig,
    TicketsConfig,
    WebConfig,
)

__all__ = [
    "EMBEDDED",
    "WEEKDAYS",
    "Config",
    "ConfigError",
    "CustomersConfig",
    "DatabaseConfig",
    "DigestConfig",
    "HttpConfig",
    "ImapConfig",
    "LoggingConfig",
    "LoopsConfig",
    "OAuthConfig",
    "OutboundConfig",
    "PathsConfig",
    "ProcessingConfig",
    "RemindersConfig",
    "RetentionConfig",
    "SecurityConfig",
    "SlaConfig",
    "SmtpConfig",
    "StaffConfig",
    "TicketsConfig",
    "WebConfig",
    "load",
    "parse_config",
    "parse_duration",
    "read_secret",
]


def _toml_name(f: dataclasses.Field[Any]) -> str:
    # `from` is a Python keyword, so the field is `from_`.
    return f.name.rstrip("_")


def _check_type(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is Literal:
        if value not in typing.get_args(hint):
            allowed = " | ".join(str(a) for a in typing.get_args(hint))
            raise ConfigError(f"{where}: {value!r} is not one of {allowed}")
        return value
    if origin is list:
        (item_hint,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return [_check_type(v, item_hint, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, item_hint = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {type(value).__name__}")
        return {k: _check_type(v, item_hint, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    # bool is an int in Python, but `port = true` is still a mistake.
    wrong_bool = isinstance(value, bool) and hint is not bool
    if isinstance(hint, type) and (wrong_bool or not isinstance(value, hint)):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {type(value).__name__}")
    return value


def _build(cls: Any, table: Any, where: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table, got {type(table).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {_toml_name(f): f for f in dataclasses.fields(cls) if f.name != "source"}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in fields:
            raise ConfigError(f"{where + '.' if where else ''}{key}: unknown key")
        f = fields[key]
        values[f.name] = _check_type(value, hints[f.name], f"{where + '.' if where else ''}{key}")
    return cls(**values)


def parse_config(text: str, source: str, folder: Path | None = None) -> Config:
    """Build a Config from TOML text; `source` names the file in every error. `folder`:
    the file's, which relative paths in it are relative to."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    if folder is not None:
        data = config_files.anchored(data, folder)
    try:
        cfg = _build(Config, data, "")
        cfg = dataclasses.replace(cfg, source=source)
        validate(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return cfg


def load(path: str | os.PathLike[str] | None) -> Config:
    """The configuration named by `path`, else $MAILGATE_CONFIG, else ./mailgate.toml, else
    /etc/mailgate/mailgate.toml, else the embedded default; secrets in files read in."""
    file = config_files.find(path)
    if file is None:
        return Config()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read: {exc}") from None
    cfg = parse_config(text, str(file), file.absolute().parent)
    return config_files.with_secrets(cfg, read_secret)


def read_secret(value: str, file: str, where: str) -> str:
    """A password given inline or in a file of its own (trimmed). `where` names the key."""
    if not file:
        return value
    try:
        return Path(file).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot read {file}: {exc}") from None
