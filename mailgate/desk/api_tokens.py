"""Bearer tokens of the JSON API: made, listed and revoked by `mailgate api-token`, checked
on every API request. Shown once when made; only their SHA-256 is stored."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from mailgate.desk.agents import existing_agent
from mailgate.desk.web_access import new_token, token_hash
from mailgate.moments import aware
from mailgate.store.models import Agent, ApiToken

USED_EVERY_SECONDS = 300  # last_used_at is written at most this often


class TokenError(ValueError):
    """Why a token command cannot be carried out, worded for the operator."""


def add_token(
    session: Session, name: str, agent_email: str | None, now: datetime
) -> tuple[str, ApiToken]:
    """A new token (returned once) for an integration; with an agent, it writes as them."""
    name = name.strip()
    if not name:
        raise TokenError("a token needs a name")
    if session.exec(select(ApiToken).where(ApiToken.name == name)).first() is not None:
        raise TokenError(f"a token named {name!r} exists already")
    agent = existing_agent(session, agent_email) if agent_email else None
    token = new_token()
    row = ApiToken(
        name=name,
        token_hash=token_hash(token),
        agent_id=agent.id if agent else None,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return token, row


def revoke_token(session: Session, name: str, now: datetime) -> ApiToken:
    row = session.exec(select(ApiToken).where(ApiToken.name == name.strip())).first()
    if row is None:
        raise TokenError(f"no token named {name!r}")
    row.revoked_at = row.revoked_at or now
    session.add(row)
    return row


def token_rows(session: Session) -> list[dict[str, object]]:
    agents = dict(session.exec(select(Agent.id, Agent.email)).all())
    return [
        {
            "name": t.name,
            "agent": agents.get(t.agent_id) if t.agent_id else None,
            "created_at": t.created_at.isoformat(),
            "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
            "revoked": t.revoked_at is not None,
        }
        for t in session.exec(select(ApiToken).order_by(col(ApiToken.name)))
    ]


def token_in_use(session: Session, token: str, now: datetime) -> ApiToken | None:
    """The open token of a request's bearer token, its use noted; None if unknown or revoked."""
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == token_hash(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    if (
        row.last_used_at is None
        or (now - aware(row.last_used_at)).total_seconds() > USED_EVERY_SECONDS
    ):
        row.last_used_at = now
        session.add(row)
    return row
