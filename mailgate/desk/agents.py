"""Staff accounts: adding and listing the agents who answer tickets, and their signatures."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, col, select

from mailgate.desk.agent_signatures import (
    MAX_SIGNATURE,
    MIN_WORDS,
    endings_of,
    learned_signature,
    word_count,
)
from mailgate.reading.addresses import valid_address
from mailgate.reading.mime.htmltext import html_to_text
from mailgate.store.models import Agent

# Bytes read of a signature file: an HTML signature carries styles, far more than its text.
MAX_SIGNATURE_FILE = 1_000_000


class AgentError(ValueError):
    """A request about an agent that cannot be done, worded for the operator."""


def add_agent(
    session: Session,
    email: str,
    name: str,
    language: str | None,
    now: datetime,
    notify: bool = True,
    signature: str | None = None,
) -> Agent:
    address = valid_address(email)
    if address is None:
        raise AgentError(f"{email!r} is not an e-mail address")
    agent = session.exec(select(Agent).where(Agent.email == address)).first()
    if agent is not None:
        raise AgentError(f"agent {address} exists already")
    agent = Agent(
        email=address,
        name=name,
        language=language,
        notify=notify,
        created_at=now,
        signature=signature,
    )
    session.add(agent)
    session.flush()
    return agent


def find_agent(session: Session, email: str) -> Agent | None:
    return session.exec(select(Agent).where(Agent.email == email.strip().lower())).first()


def existing_agent(session: Session, email: str) -> Agent:
    agent = find_agent(session, email)
    if agent is None:
        raise AgentError(f"no agent {email.strip().lower()}")
    return agent


def list_agents(session: Session) -> list[Agent]:
    return list(session.exec(select(Agent).order_by(col(Agent.email))))


def agent_rows(session: Session) -> list[dict[str, object]]:
    """The agents as `agents list` shows them, by address."""
    return [
        {
            "email": a.email,
            "name": a.name,
            "language": a.language,
            "notify": a.notify,
            "active": a.active,
        }
        for a in list_agents(session)
    ]


def read_signature(path: str) -> str:
    """The signature in a file as text: plain UTF-8 text, or the HTML a mail client keeps
    its signatures in (turned into text as the client turns a mail into text)."""
    try:
        with Path(path).open("rb") as file:
            data = file.read(MAX_SIGNATURE_FILE + 1)
    except OSError as exc:
        raise AgentError(f"cannot read the signature file {path}: {exc.strerror}") from exc
    if len(data) > MAX_SIGNATURE_FILE:
        raise AgentError(f"the signature file {path} is larger than {MAX_SIGNATURE_FILE} bytes")
    # Windows tools write UTF-16 with a byte order mark; anything else must be UTF-8.
    utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff"))
    try:
        text = data.decode("utf-16" if utf16 else "utf-8-sig")
    except UnicodeDecodeError:
        raise AgentError(f"the signature file {path} is not UTF-8 text") from None
    if "<" in text and re.search(r"<(?:html|body|div|p|br|span|table)\b", text, re.IGNORECASE):
        text = html_to_text(text)
    text = "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).strip()
    if len(text) > MAX_SIGNATURE:
        raise AgentError(f"the signature file {path} is longer than {MAX_SIGNATURE} characters")
    if word_count(text) < MIN_WORDS:
        raise AgentError(f"the signature file {path} holds fewer than {MIN_WORDS} words")
    return text


def set_signature(session: Session, email: str, signature: str | None) -> Agent:
    """Register an agent's signature, or clear it (None: learned from their answers again)."""
    agent = existing_agent(session, email)
    agent.signature = signature
    session.add(agent)
    return agent


def set_active(session: Session, email: str, active: bool) -> Agent:
    """Let an agent work again, or stop them: an inactive agent gets no staff mail, is never
    assigned, cannot sign in to the web desk, and their signed-in browsers stop working."""
    agent = existing_agent(session, email)
    agent.active = active
    session.add(agent)
    return agent


def signature_of(agent: Agent) -> tuple[str, str | None]:
    """("registered" | "learned" | "none", the signature) as it is cut from their answers."""
    if agent.signature:
        return "registered", agent.signature
    learned = learned_signature(endings_of(agent))
    return ("learned", learned) if learned else ("none", None)
