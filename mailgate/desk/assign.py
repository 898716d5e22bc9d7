"""Who a new ticket goes to and which category it gets (PRODUCT.md, "Routing")."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from mailgate.config import Config, ImapConfig
from mailgate.desk.agents import find_agent
from mailgate.store.models import Organisation


@dataclass(frozen=True)
class Assignment:
    assignee_id: int | None = None
    category: str | None = None


def mailbox_for_source(cfg: Config, source: str) -> ImapConfig | None:
    """The [[imap]] mailbox a message came from (source `imap:<name>`), if any."""
    kind, _, name = source.partition(":")
    if kind != "imap":
        return None
    return next((m for m in cfg.imap if m.name == name), None)


def assign(
    session: Session,
    cfg: Config,
    organisation_id: int,
    source: str,
    served_address: str = "",
    opened_by: int | None = None,
) -> Assignment:
    """The customer's responsible agent, else the agent who opened the ticket for the
    customer, else the intake mailbox's, else the default agent; the category of the address
    the mail came in on, else the mailbox's."""
    mailbox = mailbox_for_source(cfg, source)
    org = session.get(Organisation, organisation_id)
    assignee = org.responsible_agent_id if org else None
    # The agent who took the call knows the case; only the customer's own agent comes first.
    assignee = assignee if assignee is not None else opened_by
    fallbacks = [mailbox.responsible_agent if mailbox else "", cfg.staff.default_agent]
    for address in filter(None, fallbacks):
        if assignee is not None:
            break
        agent = find_agent(session, address)
        assignee = agent.id if agent else None
    by_address = {a.lower(): c for a, c in cfg.smtp.categories.items()}
    category = by_address.get(served_address.lower()) or (mailbox.category if mailbox else "")
    return Assignment(assignee, category or None)
