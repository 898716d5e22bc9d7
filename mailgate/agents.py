"""Staff accounts: adding and listing the agents who answer tickets."""

from __future__ import annotations

from datetime import datetime
from email.utils import parseaddr

from sqlmodel import Session, col, select

from mailgate.models import Agent


class AgentError(ValueError):
    """A request about an agent that cannot be done, worded for the operator."""


def valid_address(text: str) -> str | None:
    """The bare lower-case address if `text` is one plausible address, else None."""
    address = parseaddr(text.strip())[1].lower()
    local, _, domain = address.rpartition("@")
    if not local or not domain or " " in address or address != text.strip().lower():
        return None
    return address


def add_agent(
    session: Session,
    email: str,
    name: str,
    language: str | None,
    now: datetime,
    notify: bool = True,
) -> Agent:
    address = valid_address(email)
    if address is None:
        raise AgentError(f"{email!r} is not an e-mail address")
    agent = session.exec(select(Agent).where(Agent.email == address)).first()
    if agent is not None:
        raise AgentError(f"agent {address} exists already")
    agent = Agent(email=address, name=name, language=language, notify=notify, created_at=now)
    session.add(agent)
    session.flush()
    return agent


def find_agent(session: Session, email: str) -> Agent | None:
    return session.exec(select(Agent).where(Agent.email == email.strip().lower())).first()


def list_agents(session: Session) -> list[Agent]:
    return list(session.exec(select(Agent).order_by(col(Agent.email))))
