"""A customer's mail as it came, beside what the ticket kept of it: `tickets show` says how
much of it is hidden (the quoted history, the signature) and `--quoted` shows it all.

Nothing is stored for this: the text is read again from the message kept as received."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from mailgate.flows.retention import removed_intakes, removed_note
from mailgate.reading.parse import parse
from mailgate.store.models import Article
from mailgate.store.spool import stored_raws


def add_received(session: Session, detail: dict[str, Any], with_text: bool) -> None:
    """Give each customer article of a `tickets show` detail `hidden_lines` (lines of the
    mail as received that its kept text leaves out) and, `with_text`, `received_text`."""
    articles = [a for a in detail["articles"] if a["direction"] == "customer"]
    ids = [a["id"] for a in articles]
    query = select(Article.id, Article.intake_id).where(col(Article.id).in_(ids))
    intake_of = dict(session.exec(query).all())
    removed = removed_intakes(session, [i for i in intake_of.values() if i is not None])
    for article in articles:
        intake_id = intake_of.get(article["id"])
        if intake_id is None:
            continue  # not from a mail (imported, say): nothing was cut
        if intake_id in removed:  # its bytes are gone: say so instead of the text
            if with_text:
                note = removed_note(*removed[intake_id])
                article["received_text"] = article["received_removed"] = note
            continue
        # One message at a time: a ticket's mails may carry large attachments.
        raw = stored_raws(session, [intake_id]).get(intake_id)
        if raw is None:
            continue
        received = parse(raw).text.strip()
        article["hidden_lines"] = max(0, _lines(received) - _lines(article["text"]))
        if with_text:
            article["received_text"] = received


def _lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip())
