"""The composition root: builds context, store, renderer and transport from a Config."""

from __future__ import annotations

from pathlib import Path

from mailgate.config import Config
from mailgate.context import Context
from mailgate.render import Renderer, builtin_template_dir
from mailgate.store import Store
from mailgate.transports import FileTransport, SmtpTransport, Transport


def build_context(config: Config, migrate: bool = True) -> Context:
    """Everything the stages need; the schema is checked (and on SQLite, created) first."""
    store = Store(config.database.url, config.database.busy_timeout)
    if migrate:
        store.ensure_schema()
    return Context(config=config, store=store, renderer=build_renderer(config))


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
    )
