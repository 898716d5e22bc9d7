"""What a person does on the web desk, written as the mail they would have sent: an agent's
answer, note or change (status, priority, assignment, time, hold), a customer's reply,
confirmation or new request. Stored and processed by the same pipeline, so its article,
events and the mails it causes are exactly those of a mail. Nothing is possible only on the
web, and nothing works otherwise on it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, make_msgid
from typing import NamedTuple

from fastapi import UploadFile
from sqlmodel import Session, col, select

from mailgate.desk.web_access import WEB_SOURCE
from mailgate.flows import pipeline
from mailgate.flows.pipeline import Outcome
from mailgate.outbound.context import Context
from mailgate.reading import tags
from mailgate.store.models import PRIORITIES, STATUSES, TYPES, Agent, Article, Contact, Ticket
from mailgate.store.spool import accept

FileData = tuple[str, str, bytes]  # name, content type, bytes
_CONTENT_TYPE = re.compile(r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$")


@dataclass(frozen=True)
class Action:
    """A ticket page's form, as typed; empty fields change nothing."""

    text: str = ""
    internal: bool = False  # a note for staff: the customer gets nothing of it
    status: str = ""
    hold_until: str = ""  # YYYY-MM-DD, with status hold
    priority: str = ""
    assign: str = ""  # an agent's address
    minutes: str = ""  # 30, 30m, 1h15m, 1:15
    billable: bool = False
    type: str = ""
    category: str = ""
    cc: str = ""  # an address: a further agent, or a customer who receives the ticket's mail
    files: Sequence[FileData] = field(default_factory=tuple)

    def commands(self) -> list[str]:
        """The command lines the agent would have typed over their mail's text."""
        lines = []
        if self.internal:
            lines.append("#internal")
        if self.status == "hold" and self.hold_until:
            lines.append(f"#hold {self.hold_until}")
        elif self.status in STATUSES:
            lines.append(f"#status {self.status}")
        if self.priority in PRIORITIES:
            lines.append(f"#priority {self.priority}")
        if self.assign:
            lines.append(f"#assign {self.assign}")
        if self.type in TYPES:
            lines.append(f"#type {self.type}")
        if self.category.strip():
            lines.append(f"#category {' '.join(self.category.split())}")
        if self.cc.strip():
            lines.append(f"#cc {self.cc.strip()}")
        if self.minutes.strip():
            minutes = self.minutes.strip()
            minutes = f"{minutes}m" if minutes.isdigit() else minutes
            lines.append(f"#time {minutes} {'billable' if self.billable else 'free'}")
        return lines

    @property
    def empty(self) -> bool:
        return not (self.text.strip() or self.files or self.commands()) or (
            self.commands() == ["#internal"] and not (self.text.strip() or self.files)
        )


def read_upload(upload: UploadFile) -> FileData:
    """A file sent with a form, whole (the form's size is bounded before it is read)."""
    return upload.filename or "file", upload.content_type or "", upload.file.read()


def newest_article(session: Session, ticket: Ticket) -> Article | None:
    query = select(Article).where(col(Article.ticket_id) == ticket.id)
    return session.exec(query.order_by(col(Article.id).desc())).first()


def reply_subject(ctx: Context, ticket: Ticket) -> str:
    return "Re: " + tags.tagged_subject(ticket.subject, ctx.config.tickets.prefix, ticket.number)


class Sender(NamedTuple):
    """Who the mail is from: a signed-in agent or customer, or whom an API call names."""

    name: str
    email: str

    @classmethod
    def of(cls, person: Agent | Contact) -> Sender:
        return cls(person.name, person.email)


def compose(
    ctx: Context,
    sender: Sender,
    subject: str,
    text: str,
    files: Sequence[FileData],
    ticket: Ticket | None,
) -> bytes:
    """The person's mail to the support address (the one the ticket came in on): on a
    ticket, a reply to its newest mail; the text, then the files."""
    mail = EmailMessage(policy=SMTP)
    mail["From"] = formataddr((sender.name, sender.email))
    mail["To"] = _served(ctx, ticket)
    mail["Subject"] = subject
    mail["Date"] = format_datetime(ctx.clock())
    mail["Message-ID"] = make_msgid("web", domain=ctx.own_domain)
    if ticket is not None:
        with ctx.store.session() as session:
            last = newest_article(session, ticket)
        if last is not None and last.message_id:
            mail["In-Reply-To"] = mail["References"] = f"<{last.message_id}>"
    mail.set_content(text.replace("\r\n", "\n").strip() + "\n")
    for name, content_type, data in files:
        kind = content_type.lower() if _CONTENT_TYPE.match(content_type.lower()) else ""
        maintype, subtype = (kind or "application/octet-stream").split("/", 1)
        mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return mail.as_bytes()


def _served(ctx: Context, ticket: Ticket | None) -> str:
    return (ticket.served_address if ticket else "") or ctx.from_address


def send_as(
    ctx: Context,
    sender: Sender,
    subject: str,
    text: str,
    files: Sequence[FileData] = (),
    ticket: Ticket | None = None,
    source: str = WEB_SOURCE,
) -> Outcome:
    """Store the person's mail as the web desk's (or the API's) and bring it to its outcome
    now."""
    raw = compose(ctx, sender, subject, text, files, ticket)
    to = [_served(ctx, ticket)]
    accepted = accept(ctx.store, raw, source, ctx.clock(), sender.email, to)
    return pipeline.process(ctx, accepted.intake_id)


def submit(
    ctx: Context, agent: Agent, ticket: Ticket, action: Action, source: str = WEB_SOURCE
) -> Outcome:
    """The agent's action as their mail: the commands over the text."""
    commands = "\n".join(action.commands())
    text = action.text.strip()
    body = f"{commands}\n\n{text}" if commands else text
    subject = reply_subject(ctx, ticket)
    return send_as(ctx, Sender.of(agent), subject, body, action.files, ticket, source)
