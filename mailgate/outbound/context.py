"""The dependencies the stages share: configuration, store, renderer and clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parseaddr
from functools import cached_property

from mailgate.config import Config
from mailgate.outbound.render import Renderer
from mailgate.store import keys
from mailgate.store.database import Store


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Context:
    config: Config
    store: Store
    renderer: Renderer
    # Aware UTC throughout; the columns refuse naive datetimes.
    clock: Callable[[], datetime] = field(default=utc_now)

    @cached_property
    def from_address(self) -> str:
        return parseaddr(self.config.outbound.from_)[1].lower()

    @cached_property
    def own_domain(self) -> str:
        return self.from_address.rpartition("@")[2]

    @cached_property
    def own_addresses(self) -> frozenset[str]:
        """Addresses whose mail is our own; mail from them is a loop."""
        served = {a.lower() for a in self.config.smtp.addresses if not a.startswith("@")}
        extra = {self.from_address, self.config.smtp.comment_address.lower()}
        return frozenset(a for a in served | extra if a)

    @cached_property
    def secret_key(self) -> bytes:
        """Read once per process: it signs bounce addresses and our Message-IDs."""
        return keys.load_key(keys.key_file(self.config))

    @cached_property
    def logged_at(self) -> dict[str, datetime]:
        """When a line that a flood would repeat was last logged, by key (the loop brakes').
        Held for this context's life: a daemon's, or one command's."""
        return {}

    @cached_property
    def languages(self) -> frozenset[str]:
        """Languages mail can be written in (a template directory exists)."""
        return frozenset(self.renderer.languages)
