"""How each part is made from a Config: context (store and renderer), renderer, transport.
The composition root (app.py) puts them together; worker processes and a reload make them
again from here."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mailgate.config import EMBEDDED, Config, ConfigError, load
from mailgate.config import files as config_files
from mailgate.outbound.context import Context
from mailgate.outbound.file_transport import FileTransport
from mailgate.outbound.render import Renderer, builtin_template_dir
from mailgate.outbound.transports import SmtpTransport, Transport
from mailgate.store.database import Store, sqlite_file
from mailgate.store.oauth import Tokens

# Sections a reload cannot apply: sockets are bound and the database is open.
RESTART_ONLY = ("database", "smtp", "imap", "http", "logging", "processing")


def build_context(config: Config, migrate: bool = True, read_only: bool = False) -> Context:
    """Everything the stages need; the schema is checked (and on SQLite, created) first.
    `read_only`: for a command that only reads (lists, shows, reports): the database must
    exist with this code's schema; a missing one is named, never created empty."""
    if read_only:
        path = sqlite_file(config.database.url)
        if path is not None and not path.is_file():
            raise ConfigError(
                f"no database at {path.absolute()} (database.url of {_described(config)}): "
                "give the configuration with -c or $MAILGATE_CONFIG"
            )
    store = Store(config.database.url, config.database.busy_timeout)
    try:
        if read_only:
            store.check_schema()
        elif migrate:
            store.ensure_schema()
    except BaseException:
        store.dispose()
        raise
    return Context(config=config, store=store, renderer=build_renderer(config))


def _described(config: Config) -> str:
    if config.source != EMBEDDED:
        return config.source
    tried = ", ".join(str(p) if p.is_absolute() else f"./{p}" for p in config_files.searched())
    return f"the embedded default; no -c, $MAILGATE_CONFIG, {tried}"


def build_renderer(config: Config) -> Renderer:
    """The built-in templates, with the operator's directory over them."""
    override = Path(config.paths.templates) if config.paths.templates else None
    return Renderer(builtin_template_dir(), override, config.tickets.default_language)


def build_transport(config: Config) -> Transport:
    out = config.outbound
    if out.transport == "file":
        return FileTransport(Path(out.directory))
    return SmtpTransport(
        out.host,
        out.port,
        out.security,
        out.username or None,
        out.password or None,
        connections=out.connections,
        oauth=Tokens(config, out.oauth) if out.oauth else None,
    )


def renewed_renderer(config: Config) -> Renderer:
    """A new renderer with every template compiled, as `config check` compiles them; the
    current one stays in use until this succeeds. ValueError for a default language that
    is no language tag, TemplateError for a template that cannot be compiled."""
    renderer = build_renderer(config)
    renderer.preload()
    return renderer


def outbound_target(config: Config) -> str:
    out = config.outbound
    return f"file:{out.directory}" if out.transport == "file" else f"smtp:{out.host}:{out.port}"


def reread(old: Config) -> Config:
    """The configuration file again; the embedded default has no file and stays as it is."""
    return old if old.source == EMBEDDED else load(old.source)


def runtime_part(old: Config, fresh: Config) -> Config:
    """The new configuration, with the sections only a restart can change kept as they were."""
    kept = {name: getattr(old, name) for name in RESTART_ONLY}
    return dataclasses.replace(fresh, **kept)
