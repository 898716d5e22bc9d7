"""Run a search: the tickets a Query finds, best first, each with a snippet of its text.

The same function serves `mailgate search`, `tickets list --text` and the web desk. One SQL
statement ranks and limits in the database: each term is looked up in the index (never a scan
of the tickets), and the filters apply to the tickets the terms found."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, text
from sqlmodel import Session, UTCDateTime

from mailgate.desk.agents import find_agent
from mailgate.desk.lifecycle import Refused, resolve_agent
from mailgate.moments import aware, local_midnight
from mailgate.search import postgres, sqlite
from mailgate.search.query import Query, QueryError, parse
from mailgate.search.snippets import snippet

MAX_LIMIT = 10_000


@dataclass(frozen=True)
class Hit:
    ticket_id: int
    cid: str  # CID-1042
    subject: str
    status: str
    last_activity: datetime
    score: float
    snippet: str

    def as_json(self) -> dict[str, Any]:
        return {
            "ticket_id": self.ticket_id,
            "cid": self.cid,
            "subject": self.subject,
            "status": self.status,
            "last_activity": self.last_activity.isoformat(),
            "score": round(self.score, 6),
            "snippet": self.snippet,
        }


def search(
    session: Session,
    query: Query | str,
    *,
    limit: int = 20,
    now: datetime | None = None,
    zone: str = "UTC",
) -> list[Hit]:
    """The best `limit` tickets for the query; QueryError for a query that cannot be run.
    after:/before: are days in `zone` (the desk's [tickets] timezone)."""
    query = parse(query) if isinstance(query, str) else query
    rows = _ranked(session, query, limit, now or datetime.now(UTC), ZoneInfo(zone))
    sql = _dialect(session)
    articles = _articles(session, [sql.article_of(row.doc) for row in rows])
    return [
        Hit(
            ticket_id=row.id,
            cid=f"CID-{row.number}",
            subject=row.subject,
            status=row.status,
            last_activity=_utc(row.last_action_at),
            score=float(row.score),
            snippet=snippet(articles.get(sql.article_of(row.doc) or 0, ""), query.terms)
            or row.subject,
        )
        for row in rows
    ]


def matching_ids(
    session: Session, query: Query | str, limit: int = MAX_LIMIT, zone: str = "UTC"
) -> list[int]:
    """The ids of the tickets found, best first (for `tickets list --text`)."""
    query = parse(query) if isinstance(query, str) else query
    return [row.id for row in _ranked(session, query, limit, datetime.now(UTC), ZoneInfo(zone))]


def _dialect(session: Session) -> ModuleType:
    return sqlite if session.get_bind().dialect.name == "sqlite" else postgres


def _ranked(session: Session, query: Query, limit: int, now: datetime, zone: ZoneInfo) -> list[Any]:
    sql = _dialect(session)
    limit = max(1, min(int(limit), MAX_LIMIT))
    params: dict[str, Any] = {"now": now, "limit": limit}
    where = _filters(session, query, params, zone)
    for index, term in enumerate(query.excluded):
        params[f"x{index}"] = sql.match(term)
        where.append(f"t.id NOT IN ({sql.excluded(index, term.field)})")
    columns = "t.id, t.number, t.subject, t.status, t.last_action_at"
    condition = " AND ".join(where) or "1 = 1"
    if not query.terms:
        statement = (
            f"SELECT {columns}, 0.0 AS score, 0 AS doc FROM ticket t WHERE {condition} "
            "ORDER BY t.last_action_at DESC, t.id DESC LIMIT :limit"
        )
    else:
        for index, term in enumerate(query.terms):
            params[f"m{index}"] = sql.match(term)
        docs = " UNION ALL ".join(
            sql.term_docs(i, i, term.field) for i, term in enumerate(query.terms)
        )
        # A ticket is found when each term matches one of its rows (not all in one article).
        found = (
            f"SELECT tid, SUM(s) AS s, MAX(CASE WHEN doc % 8 = 0 THEN doc END) AS doc "
            f"FROM ({docs}) AS d GROUP BY tid HAVING COUNT(DISTINCT k) = {len(query.terms)}"
        )
        statement = (
            f"SELECT {columns}, h.s * {sql.RECENCY} AS score, h.doc FROM ({found}) AS h "
            f"JOIN ticket t ON t.id = h.tid WHERE {condition} "
            "ORDER BY score DESC, t.last_action_at DESC, t.id DESC LIMIT :limit"
        )
    moments = [
        bindparam(k, type_=UTCDateTime())
        for k in ("now", "after", "before")
        if f":{k}" in statement
    ]
    bound = text(statement).bindparams(*moments)
    if "statuses" in params:
        bound = bound.bindparams(bindparam("statuses", expanding=True))
    if sql is sqlite:
        return list(session.connection().execute(bound, params))
    # The planner counts the words of each row as computed again when it reads the index,
    # and so may prefer reading the whole table for a term in most rows: where it is only
    # read from the index. A search reads the index, always.
    # And a plan for this query's own words: after a few executions psycopg prepares the
    # statement, and PostgreSQL's generic plan for it (the same for a rare and a common word)
    # made a 2 ms search take 55 ms.
    connection = session.connection()
    connection.execute(text("SET LOCAL enable_seqscan = off"))
    connection.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    try:
        return list(connection.execute(bound, params))
    finally:
        connection.execute(text("SET LOCAL enable_seqscan = on"))
        connection.execute(text("SET LOCAL plan_cache_mode = auto"))


def _filters(session: Session, query: Query, params: dict[str, Any], zone: ZoneInfo) -> list[str]:
    where = []
    if query.cid is not None:
        params["cid"] = query.cid
        where.append("t.number = :cid")
    if query.statuses:
        params["statuses"] = list(query.statuses)
        where.append("t.status IN :statuses")
    if query.assignee == "none":
        where.append("t.assignee_id IS NULL")
    elif query.assignee:
        params["agent"] = _agent_id(session, query.assignee)
        where.append(
            "(t.assignee_id = :agent OR t.id IN "
            "(SELECT ticket_id FROM ticketagent WHERE agent_id = :agent))"
        )
    if query.after:
        params["after"] = local_midnight(query.after, zone)
        where.append("t.last_action_at >= :after")
    if query.before:
        params["before"] = local_midnight(query.before, zone)
        where.append("t.created_at < :before")
    return where


def _agent_id(session: Session, wanted: str) -> int:
    """An agent by address (one who has left too), else by name as `#assign` finds one."""
    agent = find_agent(session, wanted)
    if agent is None:
        try:
            agent = resolve_agent(session, wanted)
        except Refused:
            raise QueryError(f"assignee:{wanted}: no agent by that address or name") from None
    return agent.id or 0


def _articles(session: Session, ids: list[int | None]) -> dict[int, str]:
    wanted = [i for i in ids if i]
    if not wanted:
        return {}
    rows = session.connection().execute(
        text("SELECT id, text FROM article WHERE id IN :ids").bindparams(
            bindparam("ids", expanding=True)
        ),
        {"ids": wanted},
    )
    return {row.id: row.text for row in rows}


def _utc(moment: datetime | str) -> datetime:
    # SQLite hands a text() column back as text.
    return aware(datetime.fromisoformat(moment) if isinstance(moment, str) else moment)
