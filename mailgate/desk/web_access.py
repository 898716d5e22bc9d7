"""Signing in to the web desk: links mailed to a person, and the sessions they open.

A token is 32 random bytes, shown once (in the mail, in the cookie) and kept only as its
SHA-256: a copy of the database signs nobody in. A link is used up by the sign-in it makes,
a POST from the page it opens: a mail scanner that opens every link in a mail (a GET) uses
nothing. A session is an agent's or a customer contact's; it ends when it expires, when its
owner signs out, or when it is revoked from the list of their sessions."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from mailgate.desk.customers import contact_by_email
from mailgate.desk.unverified import is_unverified_sender
from mailgate.moments import aware
from mailgate.store.models import Agent, Contact, WebLink, WebSession

TOKEN_BYTES = 32
# The source of a mail the web desk wrote for a signed-in agent (an answer, a note, a change):
# stored and processed as their mail would be, and taken as verified (mailgate.flows.apply).
WEB_SOURCE = "web"
API_SOURCE = "api"  # the same, written for the agent of a JSON API token
SIGNED_IN_SOURCES = frozenset({WEB_SOURCE, API_SOURCE})
# A session's last use is written at most this often: a page view is then a read only.
SEEN_EVERY = timedelta(minutes=5)


class LinkRefused(Exception):
    """A sign-in link that signs nobody in; `reason` says why, in a word."""

    def __init__(self, reason: str, link: WebLink | None = None) -> None:
        super().__init__(reason)
        self.reason = reason  # unknown | used | expired | revoked | inactive
        self.link = link


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def agent_by_address(session: Session, address: str) -> Agent | None:
    """The active agent with this address (as typed, any case)."""
    found = session.exec(select(Agent).where(col(Agent.email) == address.strip().lower())).first()
    return found if found is not None and found.active else None


def contact_by_address(session: Session, address: str) -> Contact | None:
    """The customer contact with this address who may sign in: one whose mail reaches them
    and who is not the desk's placeholder for unverified senders."""
    contact = contact_by_email(session, address.strip().lower())
    if contact is None or contact.failing or is_unverified_sender(contact):
        return None
    return contact


def issue_link(session: Session, owner: Agent | Contact, now: datetime, minutes: int) -> str:
    """A new sign-in link's token for an agent or a customer contact (kept hashed)."""
    token = new_token()
    session.add(
        WebLink(
            token_hash=token_hash(token),
            agent_id=owner.id if isinstance(owner, Agent) else None,
            contact_id=owner.id if isinstance(owner, Contact) else None,
            created_at=now,
            expires_at=now + timedelta(minutes=minutes),
        )
    )
    return token


def usable_link(session: Session, token: str, now: datetime) -> WebLink:
    """The link of `token` if it can still sign in; LinkRefused otherwise. Changes nothing."""
    link = session.exec(select(WebLink).where(col(WebLink.token_hash) == token_hash(token))).first()
    if link is None:
        raise LinkRefused("unknown")
    if link.revoked_at is not None:
        raise LinkRefused("revoked", link)
    if link.used_at is not None:
        raise LinkRefused("used", link)
    if aware(link.expires_at) <= now:
        raise LinkRefused("expired", link)
    if link.agent_id is not None:
        agent = session.get(Agent, link.agent_id)
        if agent is None or not agent.active:
            raise LinkRefused("inactive")
    if link.contact_id is not None and session.get(Contact, link.contact_id) is None:
        raise LinkRefused("inactive")  # forgotten (mailgate.flows.forget) meanwhile
    return link


def sign_in(
    session: Session, token: str, now: datetime, days: int, user_agent: str = ""
) -> tuple[str, WebSession]:
    """Use the link up and open a session: the session's cookie token, and its row."""
    link = usable_link(session, token, now)
    link.used_at = now
    session.add(link)
    cookie = new_token()
    opened = WebSession(
        token_hash=token_hash(cookie),
        agent_id=link.agent_id,
        contact_id=link.contact_id,
        form_token=new_token(),
        user_agent=user_agent[:300],
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(days=days),
    )
    session.add(opened)
    session.flush()
    return cookie, opened


def current_session(session: Session, cookie: str, now: datetime) -> WebSession | None:
    """The open session of a cookie's token: not expired, not revoked, its agent active."""
    found = session.exec(
        select(WebSession).where(col(WebSession.token_hash) == token_hash(cookie))
    ).first()
    if found is None or found.revoked_at is not None or aware(found.expires_at) <= now:
        return None
    if found.agent_id is not None:
        agent = session.get(Agent, found.agent_id)
        if agent is None or not agent.active:
            return None
    if now - aware(found.last_seen_at) >= SEEN_EVERY:
        found.last_seen_at = now
        session.add(found)
    return found


def sessions_of_agent(session: Session, agent_id: int, now: datetime) -> list[WebSession]:
    """The agent's open sessions, the latest used first."""
    return list(
        session.exec(
            select(WebSession)
            .where(
                col(WebSession.agent_id) == agent_id,
                col(WebSession.revoked_at).is_(None),
                col(WebSession.expires_at) > now,
            )
            .order_by(col(WebSession.last_seen_at).desc(), col(WebSession.id).desc())
        )
    )


def revoke_session(session: Session, owner: WebSession, session_id: int, now: datetime) -> bool:
    """End one of the owner's sessions (their own included); False if it is not theirs."""
    target = session.get(WebSession, session_id)
    mine = target is not None and (
        (owner.agent_id is not None and target.agent_id == owner.agent_id)
        or (owner.contact_id is not None and target.contact_id == owner.contact_id)
    )
    if target is None or not mine:
        return False
    if target.revoked_at is None:
        target.revoked_at = now
        session.add(target)
    return True


def sign_out_everywhere(
    session: Session, person: Agent | Contact, now: datetime
) -> tuple[int, int]:
    """Revoke every link of theirs that could still sign in and end every session of theirs:
    (links, sessions) revoked. For a forwarded mail, a lost phone, a person who left."""
    owner = WebLink.agent_id if isinstance(person, Agent) else WebLink.contact_id
    links = session.exec(
        select(WebLink).where(
            col(owner) == person.id,
            col(WebLink.used_at).is_(None),
            col(WebLink.revoked_at).is_(None),
            col(WebLink.expires_at) > now,
        )
    ).all()
    of = WebSession.agent_id if isinstance(person, Agent) else WebSession.contact_id
    sessions = session.exec(
        select(WebSession).where(col(of) == person.id, col(WebSession.revoked_at).is_(None))
    ).all()
    for row in (*links, *sessions):
        row.revoked_at = now
        session.add(row)
    return len(links), len(sessions)
