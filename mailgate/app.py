"""The composition root: builds context, store, renderer and transport from a Config."""

from __future__ import annotations

from pathlib import Path

from mailgate import config_files
from mailgate.config import EMBEDDED, Config, ConfigError
from mailgate.context import Context
from mailgate.oauth import Tokens
from mailgate.render import Renderer, builtin_template_dir
from mailgate.store import Store, sqlite_file
from mailgate.transports import FileTransport, SmtpTransport, Transport


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
