"""Our own marks on mail: the Message-IDs and bounce addresses we make, signed with the
installation's key, and how a later mail is recognised by them. Outbound makes them; reading
and routing recognise them."""

from __future__ import annotations

import re
import secrets

from mailgate.store import keys

_OUR_MSG_ID = re.compile(
    r"mailgate\.(?P<number>\d{1,18})\.(?P<nonce>[0-9a-f]+)\.(?P<mark>[0-9a-f]+)@(?P<host>.+)\Z",
    re.IGNORECASE,
)
_MESSAGE_ID_MARK = "message-id"  # what the key signs in our Message-IDs
# VERP: each mail's envelope sender names its outbox row, so a bounce finds its ticket even
# when the reporting server returns neither the original headers nor a standard report. The
# row id is signed: ids are a counter anyone can guess, and a bounce marks an address failing.
_BOUNCE_ADDRESS = re.compile(
    r"^(?P<local>[^@\s]+)\+bounce-(?P<id>\d{1,18})(?:-(?P<mark>[0-9a-z]+))?@(?P<domain>[^@\s]+)$"
)
_BOUNCE_MARK = "bounce"  # what the key signs in a VERP address


def message_id(ticket_number: int, host: str, key: bytes) -> str:
    """`<mailgate.1042.<random>.<mark>@host>` for a host already checked to be a domain."""
    nonce = secrets.token_hex(8)
    signed = keys.mark(key, _MESSAGE_ID_MARK, f"{ticket_number}.{nonce}@{host}")
    return f"<mailgate.{ticket_number}.{nonce}.{signed}@{host}>"


def is_our_message_id(message_id: str, domain: str, key: bytes) -> bool:
    """Made by message_id with this key for this domain: a loop of our own mail."""
    match = _OUR_MSG_ID.match(message_id.strip().strip("<>"))
    if match is None or match["host"].lower() != domain.strip().lower():
        return False
    signed = f"{int(match['number'])}.{match['nonce']}@{match['host']}"
    return keys.is_marked(key, _MESSAGE_ID_MARK, signed, match["mark"])


def ticket_number_from_message_id(message_id: str, domain: str, key: bytes) -> int | None:
    """The ticket number in one of our Message-IDs, else None: an id of the same shape
    without our mark names no ticket."""
    if not is_our_message_id(message_id, domain, key):
        return None
    match = _OUR_MSG_ID.match(message_id.strip().strip("<>"))
    return (int(match["number"]) or None) if match else None


def bounce_address(address: str, outbox_id: int, key: bytes) -> str:
    """`support@example.com` and row 42 give `support+bounce-42-<mark>@example.com`."""
    local, at, domain = address.rpartition("@")
    if not (at and local):
        return address
    signed = keys.mark(key, _BOUNCE_MARK, f"{outbox_id}:{address}")
    return f"{local}+bounce-{outbox_id}-{signed}@{domain}"


def is_bounce_address(address: str) -> bool:
    """Shaped as a VERP address of ours, signed or not (old mail, or a forgery)."""
    return _BOUNCE_ADDRESS.match(address.strip().strip("<>").lower()) is not None


def bounce_outbox_id(address: str, key: bytes) -> int | None:
    """The outbox row a VERP bounce address names when its signature holds, else None."""
    match = _BOUNCE_ADDRESS.match(address.strip().strip("<>").lower())
    if match is None or not match["mark"]:
        return None
    base = f"{match['local']}@{match['domain']}"
    return (
        int(match["id"])
        if keys.is_marked(key, _BOUNCE_MARK, f"{match['id']}:{base}", match["mark"])
        else None
    )
