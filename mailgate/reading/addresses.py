"""Addresses as staff and operators type them: one plain address, or nothing."""

from __future__ import annotations

from email.utils import parseaddr


def valid_address(text: str) -> str | None:
    """The bare lower-case address if `text` is one plausible address, else None."""
    address = parseaddr(text.strip())[1].lower()
    local, _, domain = address.rpartition("@")
    if not local or not domain or " " in address or address != text.strip().lower():
        return None
    return address
