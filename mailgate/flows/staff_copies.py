"""An agent's answer without a copy of our own mail to staff in it.

An agent answers a ticket by replying to what mailgate sent them: a notification, a
reminder, a warning about mail from outside the ticket. Their client quotes it below the
answer, and mailgate cuts the quote where it knows the client's marks (languages.toml).
Where it does not (an Outlook in a language whose header block it has not learned), the copy
would go on to the customer with the answer: the ticket's organisation and open tickets,
another person's mail, a warning meant for staff. So a copy of one of the ticket's mails to
staff is looked for by what mailgate itself wrote, whatever the language of the client: its
subject in a header field, or the first line of its text that is longer than a greeting;
the answer ends above the header block that introduces it.
"""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage

from sqlmodel import Session, col, select

from mailgate.store.models import Outbox

# Every mail to staff that concerns one ticket (outbound/staff_mail.py, agent_replies.py).
STAFF_TEMPLATES = (
    "staff_notification",
    "hold_reminder",
    "sla_breach",
    "command_error",
    "answer_not_sent",
    "attachments_not_sent",
)
# A first line shorter than this ("Guten Tag,") could be the agent's own words.
_KEY_LINE_CHARS = 25
_QUOTE_MARKS = "> \t\u00a0"
# A header block's line ("Feladó: Support <...>", "Tárgy: [CID-1000] ...") or separator.
_FIELD = re.compile(r"[^\s:][^:]{0,30}\s?:\s")
_SEPARATOR = re.compile(r"[-_=*]{5,}")


def without_staff_copies(session: Session, ticket_id: int, text: str) -> str:
    """The text up to where a copy of one of the ticket's mails to staff begins."""
    subjects, key_lines = _our_staff_mail(session, ticket_id)
    if not subjects:
        return text
    lines = text.split("\n")
    for index, line in enumerate(lines):
        plain = _plain(line)
        if _FIELD.match(plain) and plain.split(":", 1)[1].strip() in subjects:
            return _above(lines, _block_start(lines, index))
        if plain in key_lines:
            start = index
            while start > 0 and not lines[start - 1].strip():
                start -= 1
            return _above(lines, _block_start(lines, start))
    return text


def _our_staff_mail(session: Session, ticket_id: int) -> tuple[set[str], set[str]]:
    """The subjects and first lines of the ticket's mails to staff (of those whose bytes
    retention has not dropped)."""
    query = select(Outbox.subject, Outbox.raw).where(
        Outbox.ticket_id == ticket_id, col(Outbox.template).in_(STAFF_TEMPLATES)
    )
    subjects, key_lines = set(), set()
    for subject, raw in session.exec(query):
        subjects.add(" ".join(subject.split()))
        if raw:  # its bytes may have gone with retention
            key = _key_line(raw)
            if key:
                key_lines.add(key)
    return subjects, key_lines


def _key_line(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(("plain",))
    if body is None:
        return ""
    # Past the greeting ("Guten Tag,"): the first line only mailgate writes.
    lines = (_plain(line) for line in body.get_content().splitlines())
    return next((line for line in lines if len(line) >= _KEY_LINE_CHARS), "")


def _plain(line: str) -> str:
    return " ".join(line.lstrip(_QUOTE_MARKS).split())


def _block_start(lines: list[str], index: int) -> int:
    """The first line of the header block (and the separator above it) that ends at
    `index`; `index` itself when the lines above are not such a block."""
    start = index
    while start > 0:
        above = _plain(lines[start - 1])
        if not (_FIELD.match(above) or _SEPARATOR.fullmatch(above)):
            break
        start -= 1
    return start


def _above(lines: list[str], start: int) -> str:
    return "\n".join(lines[:start]).rstrip()
