"""Small helpers the tests share: run a message through the pipeline, read back results."""

from __future__ import annotations

from email import message_from_bytes
from email.message import Message
from email.policy import default

from sqlmodel import col, select

from mailgate.context import Context
from mailgate.intake.spool import accept
from mailgate.models import Article, Outbox, Ticket
from mailgate.pipeline import Outcome, process


def ingest(
    ctx: Context, raw: bytes, source: str = "smtp", envelope_to: tuple[str, ...] = ()
) -> Outcome:
    accepted = accept(ctx.store, raw, source, ctx.clock(), "", envelope_to)
    return process(ctx, accepted.intake_id)


def tickets(ctx: Context) -> list[Ticket]:
    with ctx.store.session() as session:
        return list(session.exec(select(Ticket).order_by(col(Ticket.number))))


def articles(ctx: Context, number: int) -> list[Article]:
    with ctx.store.session() as session:
        ticket = session.exec(select(Ticket).where(Ticket.number == number)).one()
        query = select(Article).where(Article.ticket_id == ticket.id).order_by(col(Article.id))
        return list(session.exec(query))


def outbox(ctx: Context) -> list[Outbox]:
    with ctx.store.session() as session:
        return list(session.exec(select(Outbox).order_by(col(Outbox.id))))


def parsed(raw: bytes) -> Message:
    return message_from_bytes(raw, policy=default)
