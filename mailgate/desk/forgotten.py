"""A contact erased on request (`customers forget`): known by its placeholder address."""

from __future__ import annotations

from mailgate.store.models import Contact

# The placeholder has no "@": no From ever parses to it, so no later mail is taken for the
# forgotten person, and no mail can go to it.
FORGOTTEN_PREFIX = "forgotten-"


def is_forgotten(contact: Contact) -> bool:
    return contact.email.startswith(FORGOTTEN_PREFIX) and "@" not in contact.email
